//! Where hardware evidence comes from: one trait, several backends.
//!
//! * [`backend::snp::SevGuestSource`]: SEV-SNP through `/dev/sev-guest` (the `sev`
//!   crate's extended report, with the host's certificate table).
//! * [`backend::tsm::TsmSource`]: SEV-SNP or TDX through the kernel's configfs-tsm
//!   interface (`/sys/kernel/config/tsm/report`). TDX guests use only this path:
//!   the older `/dev/tdx_guest` ioctl would need `unsafe` code here, and kernels
//!   new enough for TDX guests in the clouds ship configfs-tsm.
//! * [`backend::azure_vtpm::AzureVtpmSource`]: SEV-SNP on Azure confidential
//!   VMs, whose paravisor exposes the report through the vTPM (no
//!   `/dev/sev-guest` there).
//! * [`backend::nvidia_gpu::GpuEvidenceSource`]: NVIDIA confidential-computing
//!   GPUs through `gpu-monitor`'s `GpuProbe`.
//! * `backend::simulated::SimulatedEvidenceSource` (feature `simulator`): no
//!   TEE; evidence that says it is simulated everywhere.
//!
//! [`detect`] picks the CPU backend by probing the machine, overridable in config.

use std::path::PathBuf;

use attestation_verifier::bundle::{CpuEvidence, MeasuredBoot};
use attestation_verifier::receipt::TeeKind;

pub mod backend;
pub mod certtable;
pub mod detect;
pub mod measured;
pub mod tpm;

/// A source of CPU TEE evidence.
///
/// Calls block (device I/O, a host round trip for TDX quotes); async callers use
/// `spawn_blocking`.
pub trait EvidenceSource: Send + Sync {
    /// The TEE this source's evidence comes from.
    fn tee(&self) -> TeeKind;
    /// A short name for logs and metrics (`sev-guest`, `tsm`, `simulated`).
    fn name(&self) -> &'static str;
    /// Evidence whose REPORT_DATA is `report_data`.
    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, EvidenceError>;
    /// [`EvidenceSource::collect`] with the measured-boot evidence that goes
    /// with it in a bundle (a vTPM quote on Azure); none by default.
    fn collect_measured(
        &self,
        report_data: &[u8; 64],
    ) -> Result<(CpuEvidence, MeasuredBoot), EvidenceError> {
        Ok((self.collect(report_data)?, MeasuredBoot::default()))
    }
}

/// Why evidence could not be collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// A device could not be opened.
    #[error("opening {path}: {source}")]
    Device {
        /// The device.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The SEV firmware refused the request.
    #[error("SEV-SNP firmware request failed: {0}")]
    Firmware(String),
    /// A configfs-tsm file operation failed.
    #[error("configfs-tsm {op} {path}: {source}")]
    Tsm {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another writer changed the report entry while it was in use.
    #[error(
        "configfs-tsm report was changed concurrently (generation {expected} expected, {found} found)"
    )]
    TsmRace {
        /// The generation this request should have produced.
        expected: u64,
        /// The generation found.
        found: u64,
    },
    /// The configfs-tsm provider is not one this agent knows.
    #[error("configfs-tsm provider {0:?} is neither sev_guest nor tdx_guest")]
    TsmProvider(String),
    /// A configfs-tsm attribute holds something unexpected.
    #[error("configfs-tsm {attribute} is not valid: {detail}")]
    TsmAttribute {
        /// The attribute.
        attribute: &'static str,
        /// What it held.
        detail: String,
    },
    /// The SNP certificate table is malformed.
    #[error(transparent)]
    CertTable(#[from] certtable::CertTableError),
    /// The host supplied no endorsement key certificate (VCEK or VLEK).
    #[error("the host supplied no VCEK or VLEK certificate with the SEV-SNP report")]
    MissingEndorsementKey,
    /// The collected evidence does not parse or does not carry the requested REPORT_DATA.
    #[error("{tee} evidence is unusable: {detail}")]
    Unusable {
        /// The TEE.
        tee: TeeKind,
        /// What is wrong.
        detail: String,
    },
    /// A GPU's evidence could not be collected.
    #[error("GPU {index}: {source}")]
    Gpu {
        /// The GPU's NVML index.
        index: u32,
        /// What failed.
        source: gpu_monitor::GpuError,
    },
    /// The configured backend cannot run on this machine or build.
    #[error("evidence backend {backend}: {reason}")]
    Unavailable {
        /// The backend.
        backend: String,
        /// Why.
        reason: String,
    },
    /// This agent has no TEE (tier-3 jobs are refused).
    #[error("this agent runs without a TEE and cannot produce evidence")]
    NoTee,
    /// The OS RNG failed.
    #[error("operating-system RNG failed: {0}")]
    Rng(String),
    /// Collateral for the evidence (TDX DCAP collateral, GPU RIMs, the Azure VCEK) is unavailable.
    #[error("collateral: {0}")]
    Collateral(#[from] crate::collateral::CollateralError),
    /// A vTPM command failed.
    #[error("vTPM: {0}")]
    Tpm(#[from] tpm::TpmError),
    /// No TD quote came back for an Azure TDX VM's TD report.
    #[error("Azure TD quote: {0}")]
    TdQuote(#[from] backend::azure_vtpm::TdQuoteError),
}

#[cfg(test)]
pub(crate) mod tests;
