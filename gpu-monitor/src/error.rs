//! Typed errors: one enum for talking to the driver, one for checking evidence.

/// An error from a [`GpuProbe`](crate::GpuProbe) call.
///
/// On a machine without the NVIDIA driver every entry point returns
/// [`GpuError::DriverNotLoaded`]; callers such as the agent treat that as "no GPUs" and carry on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The NVIDIA driver library (`libnvidia-ml.so.1`) could not be loaded, or the kernel
    /// driver is not running.
    #[error("NVIDIA driver not loaded: {detail}")]
    DriverNotLoaded {
        /// What the loader or NVML said.
        detail: String,
    },
    /// The driver is loaded but reports no GPU.
    #[error("no NVIDIA GPU found")]
    NoGpu,
    /// A GPU index past the end of the device list.
    #[error("no GPU with index {index} ({count} GPUs present)")]
    NoSuchGpu {
        /// The index asked for.
        index: u32,
        /// How many GPUs the driver reports.
        count: u32,
    },
    /// No GPU has the given UUID.
    #[error("no GPU with UUID {uuid}")]
    UnknownUuid {
        /// The UUID asked for.
        uuid: String,
    },
    /// The call is not supported by this GPU or driver (for instance confidential-computing
    /// calls on a GPU that is not CC capable, or energy counters before Volta).
    #[error("{call} is not supported by this GPU or driver")]
    NotSupported {
        /// The NVML function.
        call: &'static str,
    },
    /// The driver library lacks the entry point (a driver older than the call).
    #[error("the NVIDIA driver library has no {symbol} (driver too old for this call)")]
    SymbolMissing {
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The caller lacks the privilege (setting the ready state needs root).
    #[error("{call}: permission denied")]
    NoPermission {
        /// The NVML function.
        call: &'static str,
    },
    /// The GPU has fallen off the bus or is otherwise inaccessible.
    #[error("GPU {index} is lost (fallen off the bus or inaccessible)")]
    GpuLost {
        /// The GPU's index.
        index: u32,
    },
    /// Any other driver error.
    #[error("{call} failed: {detail}")]
    Driver {
        /// The NVML function.
        call: &'static str,
        /// NVML's description of the failure.
        detail: String,
    },
    /// The driver returned evidence that fails the structural checks.
    #[error("GPU {uuid}: {source}")]
    Evidence {
        /// The GPU that produced it.
        uuid: String,
        /// What is wrong with it.
        #[source]
        source: EvidenceError,
    },
    /// The metering thread could not be started or ended abnormally.
    #[error("meter thread: {detail}")]
    MeterThread {
        /// What happened.
        detail: String,
    },
}

/// A structural problem with GPU attestation evidence or its inputs.
///
/// These are sanity checks made before the evidence leaves this crate (so that a stale or
/// truncated report is caught at the source); they are not verification, which belongs to the
/// verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// A nonce that is not 32 bytes of hex.
    #[error("nonce must be 64 hex digits (32 bytes), got {len} characters")]
    NonceLength {
        /// Length of the text given.
        len: usize,
    },
    /// A nonce with a character that is not a hex digit.
    #[error("nonce is not hex: {detail}")]
    NonceNotHex {
        /// The decoder's message.
        detail: String,
    },
    /// The report is shorter than an SPDM GET_MEASUREMENTS request.
    #[error("attestation report is {len} bytes, shorter than the {min}-byte SPDM request")]
    ReportTooShort {
        /// Its length.
        len: usize,
        /// The least acceptable length.
        min: usize,
    },
    /// The report does not start with an SPDM GET_MEASUREMENTS request.
    #[error(
        "attestation report does not start with an SPDM GET_MEASUREMENTS request \
         (version {version:#04x}, code {code:#04x})"
    )]
    NotSpdmMeasurements {
        /// The SPDM version byte found.
        version: u8,
        /// The request code found.
        code: u8,
    },
    /// The nonce inside the report is not the one asked for (a stale or replayed report).
    #[error("report carries nonce {found}, expected {expected}")]
    NonceMismatch {
        /// The nonce asked for, hex.
        expected: String,
        /// The nonce in the report's request, hex.
        found: String,
    },
    /// The certificate chain is not text.
    #[error("certificate chain is not UTF-8 text at byte {offset}")]
    CertChainNotText {
        /// Where the first bad byte is.
        offset: usize,
    },
    /// The certificate chain is not PEM.
    #[error("certificate chain is not PEM: {detail}")]
    CertChainNotPem {
        /// The PEM parser's message.
        detail: String,
    },
    /// The certificate chain holds no certificate, or a PEM block that is not a certificate.
    #[error("certificate chain: {detail}")]
    CertChainContent {
        /// What is wrong.
        detail: String,
    },
}
