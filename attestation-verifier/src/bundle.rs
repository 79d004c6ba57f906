//! The evidence bundle: everything a verifier needs to check the hardware
//! evidence behind an agent key, in one SCALE-encoded file.
//!
//! ```text
//! EvidenceBundle = magic "SGEB" | version u8 | tee TeeKind | agent_key [32]
//!                | nonce [32] | cpu CpuEvidence | gpus Vec<GpuEvidence>
//!                | gpu_collateral GpuCollateral          (versions 2 and 3)
//!                | cpu_collateral CpuCollateral          (versions 3 and 4)
//!                | sealing_key Option<[32]>              (versions 4 and 5)
//!                | measured MeasuredBoot                 (version 5)
//! digest         = SHA-256("sigil.evidence.v1\0" || SCALE(bundle))
//! ```
//!
//! Version 2 adds the GPUs' collateral (NVIDIA RIMs and OCSP responses) after
//! the GPU entries; version 3 adds the CPU evidence's collateral after it (the
//! AMD CRL of an SEV-SNP chip's product line); version 4 adds the agent's
//! X25519 sealing (HPKE) key, which the evidence then binds with the signing
//! key (binding v2); version 5 adds measured-boot evidence: the firmware's
//! event log, the agent's own measurement events and a vTPM's quote
//! ([`MeasuredBoot`]). Versions 1 to 4 are still read. The CPU evidence's
//! REPORT_DATA and every GPU report's nonce are derived from the keys and
//! `nonce` ([`crate::binding`]). The format is documented in
//! `docs/evidence-bundle.md`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeAll, Encode, Input, Output};
#[cfg(feature = "scale")]
use scale_info::TypeInfo;

use crate::crypto::Crypto;
use crate::receipt::TeeKind;

/// First four bytes of every bundle.
pub const BUNDLE_MAGIC: [u8; 4] = *b"SGEB";
/// The bundle format version this crate writes (it also reads
/// [`BUNDLE_VERSION_4`], [`BUNDLE_VERSION_3`], [`BUNDLE_VERSION_2`] and
/// [`BUNDLE_VERSION_1`]).
pub const BUNDLE_VERSION: u8 = 5;
/// The fourth version: the sealing key, no measured-boot evidence.
pub const BUNDLE_VERSION_4: u8 = 4;
/// The third version: CPU collateral, no sealing key.
pub const BUNDLE_VERSION_3: u8 = 3;
/// The second version: GPU collateral, no CPU collateral.
pub const BUNDLE_VERSION_2: u8 = 2;
/// The first version: no GPU collateral.
pub const BUNDLE_VERSION_1: u8 = 1;
/// Domain separator of the bundle digest.
pub const EVIDENCE_DOMAIN: &[u8] = b"sigil.evidence.v1\0";
/// Largest bundle accepted (a TDX quote with collateral and eight GPUs fit easily).
pub const MAX_BUNDLE_LEN: usize = 4 << 20;
/// Most GPUs one bundle may carry.
pub const MAX_GPUS: usize = 16;
/// Most RIMs one bundle may carry (a driver and a VBIOS RIM per GPU model).
pub const MAX_RIMS: usize = 2 * MAX_GPUS;
/// Most OCSP responses one bundle may carry (device intermediates and RIM
/// signing certificates of every GPU model).
pub const MAX_OCSP: usize = 8 * MAX_GPUS;
/// Largest AMD CRL a bundle may carry (KDS's CRLs are a few KiB).
pub const MAX_CRL_LEN: usize = 256 << 10;
/// Largest firmware event log a bundle may carry (a TDX CCEL is a few KiB to
/// a few tens of KiB; the ACPI table reserves 64 KiB by default).
pub const MAX_EVENT_LOG_LEN: usize = 1 << 20;
/// Most agent measurement events one bundle may carry (two per agent start).
pub const MAX_AGENT_EVENTS: usize = 64;
/// Largest TPM quote part (`TPMS_ATTEST` or `TPMT_SIGNATURE`): a TPM answers
/// in at most 4 KiB.
pub const MAX_TPM_PART_LEN: usize = 4096;
/// Most PCR values a TPM quote may come with (24 per bank, two banks).
pub const MAX_TPM_PCRS: usize = 48;

/// Whether this crate reads bundles of `version`.
const fn readable(version: u8) -> bool {
    matches!(
        version,
        BUNDLE_VERSION | BUNDLE_VERSION_4 | BUNDLE_VERSION_3 | BUNDLE_VERSION_2 | BUNDLE_VERSION_1
    )
}

/// The CPU TEE's evidence. Variant indices 1-3 equal the [`TeeKind`] indices;
/// later variants are other paths to one of those TEEs (see [`CpuEvidence::tee`]).
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
    /// SEV-SNP on an Azure confidential VM: the paravisor's HCL report from the
    /// vTPM ([`crate::evidence::azure_hcl`]), which wraps the SNP report and the
    /// runtime claims its REPORT_DATA commits to; the claims' `"user-data"`
    /// carries the binding. The TEE is [`TeeKind::SevSnp`].
    #[codec(index = 4)]
    AzureSnpVtpm {
        /// The HCL report (NV index 0x01400001), without trailing padding.
        hcl_report: Vec<u8>,
        /// The VCEK certificate, DER.
        vek: Vec<u8>,
        /// The ASK, DER, when supplied.
        intermediate: Option<Vec<u8>>,
        /// The ARK, DER, when supplied (must be the pinned one).
        ark: Option<Vec<u8>>,
    },
    /// TDX on an Azure confidential VM: the paravisor's HCL report from the vTPM,
    /// which carries the TD report and the runtime claims (their `"user-data"`
    /// carries the binding), and the TD quote Azure's quoting service made of that TD
    /// report (IMDS `/acc/tdquote`), whose REPORT_DATA is the claims' digest. The TEE
    /// is [`TeeKind::Tdx`].
    #[codec(index = 5)]
    AzureTdxVtpm {
        /// The HCL report (NV index 0x01400001), without trailing padding.
        hcl_report: Vec<u8>,
        /// The TD quote (v4 or v5).
        td_quote: Vec<u8>,
        /// The quote's DCAP collateral (TCB info, QE identity, CRLs) as JSON, when
        /// bundled.
        collateral_json: Option<Vec<u8>>,
    },
}

impl CpuEvidence {
    /// The TEE this evidence claims to come from.
    pub const fn tee(&self) -> TeeKind {
        match self {
            Self::SevSnp { .. } | Self::AzureSnpVtpm { .. } => TeeKind::SevSnp,
            Self::Tdx { .. } | Self::AzureTdxVtpm { .. } => TeeKind::Tdx,
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

/// What the NVIDIA verifier needs beside the GPUs' reports and device chains
/// (bundle version 2). Shared by all GPUs of the bundle. Nothing here is
/// trusted: every RIM and response is verified against NVIDIA's pinned roots.
#[derive(Encode, Decode, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct GpuCollateral {
    /// Driver and VBIOS RIMs (SWID XML, as NVIDIA publishes them).
    pub rims: Vec<Vec<u8>>,
    /// DER OCSP responses for device-chain intermediates and RIM signing certificates.
    pub ocsp: Vec<Vec<u8>>,
}

impl GpuCollateral {
    /// True when it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.rims.is_empty() && self.ocsp.is_empty()
    }
}

/// What the CPU evidence's verifier needs beside the evidence itself (bundle
/// version 3). Nothing here is trusted: the CRL must verify under AMD's pinned
/// ARK of the report's product.
#[derive(Encode, Decode, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct CpuCollateral {
    /// SEV-SNP: AMD's certificate revocation list (DER) for the chip's product
    /// line and endorsement key kind, as KDS serves it
    /// (`/vcek/v1/{product}/crl` or `/vlek/v1/{product}/crl`). Only with SEV-SNP
    /// evidence; at most [`MAX_CRL_LEN`] bytes.
    pub snp_crl: Option<Vec<u8>>,
}

impl CpuCollateral {
    /// True when it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.snp_crl.is_none()
    }
}

/// What an agent measured into a TDX runtime register, in the order it extended it.
#[derive(Encode, Decode, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub enum AgentEventKind {
    /// SHA-384 of the agent's executable file.
    #[codec(index = 1)]
    Binary,
    /// SHA-384 of the agent's effective configuration (its canonical JSON form).
    #[codec(index = 2)]
    Config,
}

/// One measurement the agent extended into RTMR3 at start: `RTMR3 :=
/// SHA-384(RTMR3 || digest)`. The verifier replays these after the firmware
/// log's RTMR3 events and compares the result with the quote.
#[derive(Encode, Decode, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct AgentEvent {
    /// What was measured.
    pub kind: AgentEventKind,
    /// The value extended (SHA-384).
    pub digest: [u8; 48],
}

/// A TPM 2.0 quote as the vTPM returned it (`TPM2_Quote`), with the PCR values
/// it covers. Nothing here is trusted: the signature must verify under the
/// attestation key the hardware report vouches for, and the PCR values must
/// hash to the quote's `pcrDigest`.
#[derive(Encode, Decode, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct TpmQuote {
    /// `TPMS_ATTEST`, marshaled (the contents of the response's `TPM2B_ATTEST`).
    pub attest: Vec<u8>,
    /// `TPMT_SIGNATURE`, marshaled.
    pub signature: Vec<u8>,
    /// The selected PCR values, in the quote's selection order.
    pub pcrs: Vec<Vec<u8>>,
}

/// Measured-boot evidence (bundle version 5): what lets a verifier see which
/// software the measured registers stand for. Every part is optional; each
/// present part is checked against the hardware evidence, never trusted.
#[derive(Encode, Decode, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct MeasuredBoot {
    /// The firmware's event log as the platform exposes it: a TDX CCEL
    /// (TCG2 crypto-agile, [`crate::eventlog`]) or a vTPM's TCG log; at most
    /// [`MAX_EVENT_LOG_LEN`] bytes.
    pub event_log: Option<Vec<u8>>,
    /// The agent's own RTMR3 events (TDX), at most [`MAX_AGENT_EVENTS`].
    pub agent_events: Vec<AgentEvent>,
    /// A vTPM quote (Azure confidential VMs).
    pub tpm_quote: Option<TpmQuote>,
}

impl MeasuredBoot {
    /// True when it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.event_log.is_none() && self.agent_events.is_empty() && self.tpm_quote.is_none()
    }
}

/// Hardware evidence for one agent key.
///
/// SCALE encoding is written out by hand (below) because the last four fields
/// exist only from versions 2, 3, 4 and 5 on; the fields are otherwise encoded
/// as derived. (`TypeInfo` describes the version 5 layout.)
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct EvidenceBundle {
    /// [`BUNDLE_MAGIC`].
    pub magic: [u8; 4],
    /// [`BUNDLE_VERSION`] or an earlier version this crate reads.
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
    /// RIMs and OCSP responses for the GPU evidence (always empty in version 1).
    pub gpu_collateral: GpuCollateral,
    /// The CPU evidence's collateral (always empty before version 3).
    pub cpu_collateral: CpuCollateral,
    /// The agent's X25519 HPKE public key (RFC 9180), generated in the TEE with the
    /// signing key: buyers seal inputs to it once the evidence verified (always
    /// `None` before version 4; with it, the evidence uses binding v2).
    pub sealing_key: Option<[u8; 32]>,
    /// Measured-boot evidence (always empty before version 5).
    pub measured: MeasuredBoot,
}

impl Encode for EvidenceBundle {
    fn size_hint(&self) -> usize {
        let mut collateral = 0usize;
        if self.version >= BUNDLE_VERSION_2 {
            collateral = collateral.saturating_add(self.gpu_collateral.size_hint());
        }
        if self.version >= BUNDLE_VERSION_3 {
            collateral = collateral.saturating_add(self.cpu_collateral.size_hint());
        }
        if self.version >= BUNDLE_VERSION_4 {
            collateral = collateral.saturating_add(self.sealing_key.size_hint());
        }
        if self.version >= BUNDLE_VERSION {
            collateral = collateral.saturating_add(self.measured.size_hint());
        }
        self.magic
            .size_hint()
            .saturating_add(1)
            .saturating_add(self.tee.size_hint())
            .saturating_add(64)
            .saturating_add(self.cpu.size_hint())
            .saturating_add(self.gpus.size_hint())
            .saturating_add(collateral)
    }

    fn encode_to<T: Output + ?Sized>(&self, dest: &mut T) {
        self.magic.encode_to(dest);
        self.version.encode_to(dest);
        self.tee.encode_to(dest);
        self.agent_key.encode_to(dest);
        self.nonce.encode_to(dest);
        self.cpu.encode_to(dest);
        self.gpus.encode_to(dest);
        // Version 1 has no collateral field and version 2 no CPU collateral;
        // such values never carry any ([`EvidenceBundle::check`] refuses them).
        if self.version >= BUNDLE_VERSION_2 {
            self.gpu_collateral.encode_to(dest);
        }
        if self.version >= BUNDLE_VERSION_3 {
            self.cpu_collateral.encode_to(dest);
        }
        if self.version >= BUNDLE_VERSION_4 {
            self.sealing_key.encode_to(dest);
        }
        if self.version >= BUNDLE_VERSION {
            self.measured.encode_to(dest);
        }
    }
}

impl Decode for EvidenceBundle {
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        let magic = <[u8; 4]>::decode(input)?;
        let version = u8::decode(input)?;
        if !readable(version) {
            return Err("unsupported evidence bundle version".into());
        }
        let tee = TeeKind::decode(input)?;
        let agent_key = <[u8; 32]>::decode(input)?;
        let nonce = <[u8; 32]>::decode(input)?;
        let cpu = CpuEvidence::decode(input)?;
        let gpus = Vec::<GpuEvidence>::decode(input)?;
        let gpu_collateral = if version >= BUNDLE_VERSION_2 {
            GpuCollateral::decode(input)?
        } else {
            GpuCollateral::default()
        };
        let cpu_collateral = if version >= BUNDLE_VERSION_3 {
            CpuCollateral::decode(input)?
        } else {
            CpuCollateral::default()
        };
        let sealing_key = if version >= BUNDLE_VERSION_4 {
            Option::<[u8; 32]>::decode(input)?
        } else {
            None
        };
        let measured = if version >= BUNDLE_VERSION {
            MeasuredBoot::decode(input)?
        } else {
            MeasuredBoot::default()
        };
        Ok(Self {
            magic,
            version,
            tee,
            agent_key,
            nonce,
            cpu,
            gpus,
            gpu_collateral,
            cpu_collateral,
            sealing_key,
            measured,
        })
    }
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
    #[error("evidence bundle version {0} is not supported (this build reads versions 1 to 5)")]
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
    /// More RIMs or OCSP responses than [`MAX_RIMS`] / [`MAX_OCSP`].
    #[error("evidence bundle carries {count} {what}, more than {max}")]
    TooMuchCollateral {
        /// `RIMs` or `OCSP responses`.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A version-1 bundle value with GPU collateral (version 1 cannot encode it).
    #[error("evidence bundle version 1 cannot carry GPU collateral")]
    CollateralInVersion1,
    /// A version-1 or 2 bundle value with CPU collateral (only version 3 encodes it).
    #[error("evidence bundle version {0} cannot carry CPU collateral (an AMD CRL)")]
    CpuCollateralBeforeVersion3(u8),
    /// A bundle value of a version before 4 with a sealing key (only version 4 encodes it).
    #[error("evidence bundle version {0} cannot carry a sealing key")]
    SealingKeyBeforeVersion4(u8),
    /// A bundle value of a version before 5 with measured-boot evidence.
    #[error("evidence bundle version {0} cannot carry measured-boot evidence")]
    MeasuredBeforeVersion5(u8),
    /// A measured-boot part longer or more numerous than its cap.
    #[error("evidence bundle's {what} is {len}, more than the {max} allowed")]
    MeasuredTooLarge {
        /// Which part: `event log bytes`, `agent events`, `TPM quote bytes`, `TPM PCR values`.
        what: &'static str,
        /// Its size or count.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An AMD CRL with CPU evidence that is not SEV-SNP.
    #[error("evidence bundle carries an AMD CRL but {0} evidence")]
    CrlWithoutSnp(TeeKind),
    /// An AMD CRL longer than [`MAX_CRL_LEN`].
    #[error("evidence bundle's AMD CRL is {len} bytes, more than {max}")]
    CrlTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl EvidenceBundle {
    /// A bundle of the current version, without GPU collateral.
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
            gpu_collateral: GpuCollateral::default(),
            cpu_collateral: CpuCollateral::default(),
            sealing_key: None,
            measured: MeasuredBoot::default(),
        }
    }

    /// The same bundle carrying measured-boot evidence.
    #[must_use]
    pub fn with_measured(mut self, measured: MeasuredBoot) -> Self {
        self.measured = measured;
        self
    }

    /// The same bundle carrying the agent's sealing key (binding v2: the evidence
    /// must then commit to it, see [`crate::binding::Binding`]).
    #[must_use]
    pub fn with_sealing_key(mut self, key: [u8; 32]) -> Self {
        self.sealing_key = Some(key);
        self
    }

    /// The same bundle carrying `collateral` for its GPUs.
    #[must_use]
    pub fn with_gpu_collateral(mut self, collateral: GpuCollateral) -> Self {
        self.gpu_collateral = collateral;
        self
    }

    /// The same bundle carrying `collateral` for its CPU evidence.
    #[must_use]
    pub fn with_cpu_collateral(mut self, collateral: CpuCollateral) -> Self {
        self.cpu_collateral = collateral;
        self
    }

    /// The AMD CRL the bundle carries for its SEV-SNP evidence, if any.
    pub fn snp_crl(&self) -> Option<&[u8]> {
        self.cpu_collateral.snp_crl.as_deref()
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
            Some(&v) if readable(v) => {}
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

    /// Structural rules: magic, version, `tee` matches the CPU evidence, GPU and
    /// collateral counts.
    pub fn check(&self) -> Result<(), BundleError> {
        if self.magic != BUNDLE_MAGIC {
            return Err(BundleError::Magic);
        }
        if !readable(self.version) {
            return Err(BundleError::Version(self.version));
        }
        if self.version == BUNDLE_VERSION_1 && !self.gpu_collateral.is_empty() {
            return Err(BundleError::CollateralInVersion1);
        }
        if self.version < BUNDLE_VERSION_3 && !self.cpu_collateral.is_empty() {
            return Err(BundleError::CpuCollateralBeforeVersion3(self.version));
        }
        if self.version < BUNDLE_VERSION_4 && self.sealing_key.is_some() {
            return Err(BundleError::SealingKeyBeforeVersion4(self.version));
        }
        if self.version < BUNDLE_VERSION && !self.measured.is_empty() {
            return Err(BundleError::MeasuredBeforeVersion5(self.version));
        }
        let m = &self.measured;
        let quote = m.tpm_quote.as_ref();
        for (what, len, max) in [
            (
                "event log bytes",
                m.event_log.as_ref().map_or(0, Vec::len),
                MAX_EVENT_LOG_LEN,
            ),
            ("agent events", m.agent_events.len(), MAX_AGENT_EVENTS),
            (
                "TPM quote bytes",
                quote.map_or(0, |q| q.attest.len().max(q.signature.len())),
                MAX_TPM_PART_LEN,
            ),
            (
                "TPM PCR values",
                quote.map_or(0, |q| q.pcrs.len()),
                MAX_TPM_PCRS,
            ),
            (
                "TPM PCR value bytes",
                quote.map_or(0, |q| q.pcrs.iter().map(Vec::len).max().unwrap_or(0)),
                64,
            ),
        ] {
            if len > max {
                return Err(BundleError::MeasuredTooLarge { what, len, max });
            }
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
        let c = &self.gpu_collateral;
        for (what, count, max) in [
            ("RIMs", c.rims.len(), MAX_RIMS),
            ("OCSP responses", c.ocsp.len(), MAX_OCSP),
        ] {
            if count > max {
                return Err(BundleError::TooMuchCollateral { what, count, max });
            }
        }
        if let Some(crl) = &self.cpu_collateral.snp_crl {
            if self.tee != TeeKind::SevSnp {
                return Err(BundleError::CrlWithoutSnp(self.tee));
            }
            if crl.len() > MAX_CRL_LEN {
                return Err(BundleError::CrlTooLong {
                    len: crl.len(),
                    max: MAX_CRL_LEN,
                });
            }
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

pub mod cost;
#[cfg(test)]
mod tests;
