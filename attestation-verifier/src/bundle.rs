//! The evidence bundle: everything a verifier needs to check the hardware
//! evidence behind an agent key, in one SCALE-encoded file.
//!
//! ```text
//! EvidenceBundle = magic "SGEB" | version u8 | tee TeeKind | agent_key [32]
//!                | nonce [32] | cpu CpuEvidence | gpus Vec<GpuEvidence>
//! digest         = SHA-256("sigil.evidence.v1\0" || SCALE(bundle))
//! ```
//!
//! The CPU evidence's REPORT_DATA and every GPU report's nonce are derived from
//! `agent_key` and `nonce` ([`crate::binding`]). The format is documented in
//! `docs/evidence-bundle.md`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeAll, Encode};
#[cfg(feature = "scale")]
use scale_info::TypeInfo;

use crate::crypto::Crypto;
use crate::receipt::TeeKind;

/// First four bytes of every bundle.
pub const BUNDLE_MAGIC: [u8; 4] = *b"SGEB";
/// The bundle format version this crate writes and reads.
pub const BUNDLE_VERSION: u8 = 1;
/// Domain separator of the bundle digest.
pub const EVIDENCE_DOMAIN: &[u8] = b"sigil.evidence.v1\0";
/// Largest bundle accepted (a TDX quote with collateral and eight GPUs fit easily).
pub const MAX_BUNDLE_LEN: usize = 4 << 20;
/// Most GPUs one bundle may carry.
pub const MAX_GPUS: usize = 16;

/// The CPU TEE's evidence. Variant indices equal the [`TeeKind`] indices.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub enum CpuEvidence {
    /// An SEV-SNP attestation report with its certificates (DER).
    #[codec(index = 1)]
    SevSnp {
        /// The raw report (0x4A0 bytes).
        report: Vec<u8>,
        /// The VCEK or VLEK certificate, DER.
        vek: Vec<u8>,
        /// The ASK or ASVK, DER, when the platform supplied it.
        intermediate: Option<Vec<u8>>,
        /// The ARK, DER, when the platform supplied it (must be the pinned one).
        ark: Option<Vec<u8>>,
    },
    /// A TDX quote (v4 or v5) and, optionally, its DCAP collateral as JSON.
    #[codec(index = 2)]
    Tdx {
        /// The quote.
        quote: Vec<u8>,
        /// Collateral (TCB info, QE identity, CRLs) as JSON, when bundled.
        collateral_json: Option<Vec<u8>>,
    },
    /// The simulator's report ([`crate::evidence::simulated`]). Not a TEE.
    #[codec(index = 3)]
    Simulated {
        /// The encoded simulated report.
        report: Vec<u8>,
    },
}

impl CpuEvidence {
    /// The TEE this evidence claims to come from.
    pub const fn tee(&self) -> TeeKind {
        match self {
            Self::SevSnp { .. } => TeeKind::SevSnp,
            Self::Tdx { .. } => TeeKind::Tdx,
            Self::Simulated { .. } => TeeKind::Simulated,
        }
    }
}

/// One NVIDIA GPU's attestation evidence.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct GpuEvidence {
    /// The SPDM `GET_MEASUREMENTS` request and signed response, as NVML returned them.
    pub report: Vec<u8>,
    /// The GPU's attestation certificate chain, PEM, leaf first.
    pub cert_chain_pem: String,
    /// The nonce the report was requested for ([`crate::binding::gpu_nonce`]).
    pub nonce: [u8; 32],
    /// The GPU's UUID (`GPU-...`).
    pub uuid: String,
}

/// Hardware evidence for one agent key.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct EvidenceBundle {
    /// [`BUNDLE_MAGIC`].
    pub magic: [u8; 4],
    /// [`BUNDLE_VERSION`].
    pub version: u8,
    /// The CPU TEE; equals `cpu.tee()`.
    pub tee: TeeKind,
    /// The agent's ed25519 public key the evidence binds.
    pub agent_key: [u8; 32],
    /// The nonce: a verifier's challenge, the agent's own (attested-key mode at
    /// start) or [`crate::binding::fresh_nonce`] of a receipt (fresh-quote mode).
    pub nonce: [u8; 32],
    /// The CPU evidence.
    pub cpu: CpuEvidence,
    /// The GPUs' evidence (empty without GPUs).
    pub gpus: Vec<GpuEvidence>,
}

/// Why bundle bytes are unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Longer than [`MAX_BUNDLE_LEN`].
    #[error("evidence bundle is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes do not start with `SGEB`.
    #[error("not an evidence bundle (magic is not SGEB)")]
    Magic,
    /// A version this crate does not read.
    #[error("evidence bundle version {0} is not supported (this build reads version 1)")]
    Version(u8),
    /// Not a SCALE encoding of a bundle.
    #[error("evidence bundle is not valid SCALE: {0}")]
    Decode(String),
    /// Decodes, but is not the canonical encoding of what it decodes to.
    #[error("evidence bundle is not canonically encoded")]
    NonCanonical,
    /// The `tee` field disagrees with the CPU evidence.
    #[error("evidence bundle says {tee} but carries {cpu} evidence")]
    TeeMismatch {
        /// The `tee` field.
        tee: TeeKind,
        /// The CPU evidence's kind.
        cpu: TeeKind,
    },
    /// More GPUs than [`MAX_GPUS`].
    #[error("evidence bundle carries {0} GPUs, more than {MAX_GPUS}")]
    TooManyGpus(usize),
}

impl EvidenceBundle {
    /// A bundle of the current version.
    pub fn new(
        agent_key: [u8; 32],
        nonce: [u8; 32],
        cpu: CpuEvidence,
        gpus: Vec<GpuEvidence>,
    ) -> Self {
        Self {
            magic: BUNDLE_MAGIC,
            version: BUNDLE_VERSION,
            tee: cpu.tee(),
            agent_key,
            nonce,
            cpu,
            gpus,
        }
    }

    /// `SCALE(bundle)`: the file and wire format.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Parses a bundle: size limit, magic, version, canonical SCALE, and
    /// structural consistency. No cryptography.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(BundleError::TooLong {
                len: bytes.len(),
                max: MAX_BUNDLE_LEN,
            });
        }
        if bytes.get(..4) != Some(BUNDLE_MAGIC.as_slice()) {
            return Err(BundleError::Magic);
        }
        match bytes.get(4) {
            Some(&BUNDLE_VERSION) => {}
            Some(&v) => return Err(BundleError::Version(v)),
            None => return Err(BundleError::Decode("truncated".into())),
        }
        let b = Self::decode_all(&mut &*bytes).map_err(|e| BundleError::Decode(e.to_string()))?;
        if b.encode() != bytes {
            return Err(BundleError::NonCanonical);
        }
        b.check()?;
        Ok(b)
    }

    /// Structural rules: magic, version, `tee` matches the CPU evidence, GPU count.
    pub fn check(&self) -> Result<(), BundleError> {
        if self.magic != BUNDLE_MAGIC {
            return Err(BundleError::Magic);
        }
        if self.version != BUNDLE_VERSION {
            return Err(BundleError::Version(self.version));
        }
        if self.tee != self.cpu.tee() {
            return Err(BundleError::TeeMismatch {
                tee: self.tee,
                cpu: self.cpu.tee(),
            });
        }
        if self.gpus.len() > MAX_GPUS {
            return Err(BundleError::TooManyGpus(self.gpus.len()));
        }
        Ok(())
    }

    /// [`bundle_digest`] of this bundle's encoding.
    pub fn digest<C: Crypto + ?Sized>(&self, crypto: &C) -> [u8; 32] {
        bundle_digest(crypto, &self.encode())
    }
}

/// `SHA-256(EVIDENCE_DOMAIN || bytes)` where `bytes` is `SCALE(bundle)`.
pub fn bundle_digest<C: Crypto + ?Sized>(crypto: &C, bytes: &[u8]) -> [u8; 32] {
    let mut msg = Vec::with_capacity(EVIDENCE_DOMAIN.len().saturating_add(bytes.len()));
    msg.extend_from_slice(EVIDENCE_DOMAIN);
    msg.extend_from_slice(bytes);
    crypto.sha256(&msg)
}

#[cfg(test)]
mod tests;
