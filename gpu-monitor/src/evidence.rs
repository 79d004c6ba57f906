//! GPU attestation evidence as the agent embeds it.
//!
//! NVML's `nvmlDeviceGetConfComputeGpuAttestationReport` returns the SPDM 1.1
//! `GET_MEASUREMENTS` request followed by the GPU's signed response; the 32-byte nonce the caller
//! supplied is bytes 4..36 of that request. `nvmlDeviceGetConfComputeGpuCertificate` returns the
//! attestation certificate chain as PEM (leaf first). [`GpuEvidence`] keeps exactly those bytes
//! plus the nonce and the GPU's UUID; verification is the verifier's job, but the structure is
//! checked here so that a stale, truncated or mislabelled report never leaves the machine.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::EvidenceError;

/// Length of the nonce NVML binds into a GPU attestation report.
pub const NONCE_LEN: usize = 32;

/// Length of the SPDM 1.1 `GET_MEASUREMENTS` request (with signature requested) that starts
/// every report: version, code, param1, param2, 32-byte nonce, slot id.
pub const SPDM_REQUEST_LEN: usize = 37;

/// SPDM request code of `GET_MEASUREMENTS`.
const SPDM_GET_MEASUREMENTS: u8 = 0xE0;
/// Where the nonce sits in the request.
const NONCE_OFFSET: usize = 4;

/// The 32-byte nonce a GPU attestation report is bound to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nonce(#[serde(with = "hex::serde")] [u8; NONCE_LEN]);

impl Nonce {
    /// Wraps 32 bytes.
    pub const fn new(bytes: [u8; NONCE_LEN]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub const fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }

    /// Parses 64 hex digits (an optional `0x` prefix and surrounding whitespace are accepted).
    pub fn from_hex(text: &str) -> Result<Self, EvidenceError> {
        let trimmed = text.trim();
        let digits = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        if digits.len() != NONCE_LEN.saturating_mul(2) {
            return Err(EvidenceError::NonceLength { len: digits.len() });
        }
        let mut bytes = [0u8; NONCE_LEN];
        hex::decode_to_slice(digits, &mut bytes).map_err(|e| EvidenceError::NonceNotHex {
            detail: e.to_string(),
        })?;
        Ok(Self(bytes))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Nonce {
    type Err = EvidenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One GPU's attestation evidence: what the agent embeds and the verifier checks.
///
/// Serialised (JSON, TOML, ...) with the report as hex and the chain as PEM text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuEvidence {
    /// The GPU's UUID as NVML prints it (`GPU-xxxxxxxx-...`).
    pub gpu_uuid: String,
    /// The nonce the report was requested for.
    pub nonce: Nonce,
    /// SPDM `GET_MEASUREMENTS` request || signed response, exactly as NVML returned it.
    #[serde(with = "hex::serde")]
    pub report: Vec<u8>,
    /// The attestation certificate chain, PEM, leaf first, as NVML returned it (trailing NULs
    /// removed).
    pub cert_chain_pem: String,
}

impl GpuEvidence {
    /// Builds evidence from what the driver returned and checks its structure: the report starts
    /// with a `GET_MEASUREMENTS` request that carries `nonce`, and the chain is PEM certificates.
    pub fn from_driver(
        gpu_uuid: impl Into<String>,
        nonce: Nonce,
        report: Vec<u8>,
        cert_chain: &[u8],
    ) -> Result<Self, EvidenceError> {
        // NVML hands back fixed-size buffers; a size field that counts the terminator (or a
        // zero-padded buffer) leaves NULs after the last PEM block.
        let end = cert_chain
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i.saturating_add(1));
        let chain = cert_chain.get(..end).unwrap_or_default();
        let cert_chain_pem = match core::str::from_utf8(chain) {
            Ok(text) => text.to_owned(),
            Err(e) => {
                return Err(EvidenceError::CertChainNotText {
                    offset: e.valid_up_to(),
                });
            }
        };
        let evidence = Self {
            gpu_uuid: gpu_uuid.into(),
            nonce,
            report,
            cert_chain_pem,
        };
        evidence.check()?;
        Ok(evidence)
    }

    /// Re-runs the structural checks (for evidence that was deserialised rather than built).
    pub fn check(&self) -> Result<(), EvidenceError> {
        let found = self.report_nonce()?;
        if found != self.nonce {
            return Err(EvidenceError::NonceMismatch {
                expected: self.nonce.to_hex(),
                found: found.to_hex(),
            });
        }
        self.certificates_der().map(|_| ())
    }

    /// The nonce inside the report's SPDM request.
    pub fn report_nonce(&self) -> Result<Nonce, EvidenceError> {
        report_nonce(&self.report)
    }

    /// The chain's certificates as DER, leaf first.
    pub fn certificates_der(&self) -> Result<Vec<Vec<u8>>, EvidenceError> {
        let blocks =
            pem::parse_many(&self.cert_chain_pem).map_err(|e| EvidenceError::CertChainNotPem {
                detail: e.to_string(),
            })?;
        if blocks.is_empty() {
            return Err(EvidenceError::CertChainContent {
                detail: "no PEM block".into(),
            });
        }
        blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                if block.tag() == "CERTIFICATE" {
                    Ok(block.into_contents())
                } else {
                    Err(EvidenceError::CertChainContent {
                        detail: format!("block {i} is {:?}, not CERTIFICATE", block.tag()),
                    })
                }
            })
            .collect()
    }
}

impl fmt::Debug for GpuEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuEvidence")
            .field("gpu_uuid", &self.gpu_uuid)
            .field("nonce", &self.nonce)
            .field("report_len", &self.report.len())
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .finish()
    }
}

/// The nonce inside an SPDM `GET_MEASUREMENTS` request at the start of `report`.
pub fn report_nonce(report: &[u8]) -> Result<Nonce, EvidenceError> {
    let request = report
        .get(..SPDM_REQUEST_LEN)
        .ok_or(EvidenceError::ReportTooShort {
            len: report.len(),
            min: SPDM_REQUEST_LEN,
        })?;
    let (version, code) = match request {
        [version, code, ..] => (*version, *code),
        _ => (0, 0),
    };
    // SPDM 1.x: major version nibble 1.
    if version >> 4 != 1 || code != SPDM_GET_MEASUREMENTS {
        return Err(EvidenceError::NotSpdmMeasurements { version, code });
    }
    let mut nonce = [0u8; NONCE_LEN];
    let bytes = request
        .get(NONCE_OFFSET..NONCE_OFFSET.saturating_add(NONCE_LEN))
        .ok_or(EvidenceError::ReportTooShort {
            len: report.len(),
            min: SPDM_REQUEST_LEN,
        })?;
    nonce.copy_from_slice(bytes);
    Ok(Nonce(nonce))
}
