//! The attestor: the agent key plus its evidence sources.
//!
//! * [`Attestor::attest`] answers a nonce with an evidence bundle (version 5): GPU
//!   reports for the derived GPU nonce, then CPU evidence whose REPORT_DATA binds the
//!   agent key, its sealing key, the GPU evidence and the nonce (binding v2,
//!   [`attestation_verifier::binding`]).
//! * Attested-key mode: [`Attestor::refresh`] collects evidence for a nonce of
//!   the agent's own (at start and on a schedule, see [`Attestor::needs_refresh`]);
//!   [`Attestor::sign_attested`] signs receipts that reference the current
//!   bundle by digest.
//! * Fresh-quote mode: [`Attestor::sign_fresh`] collects evidence bound to the
//!   receipt body itself and signs the receipt that references it.
//! * Collateral: with a [`GpuCollateralSource`], bundles with GPU evidence also
//!   carry the RIMs and OCSP responses its verification needs (bundle version
//!   2); with an [`SnpCrlSource`], SEV-SNP bundles carry AMD's CRL of the chip's
//!   product line (version 3; a CRL that cannot be had is logged and left out, so
//!   it never blocks a job); TDX collateral is added by the configfs-tsm source
//!   ([`crate::collateral`]).
//! * Measured boot (TDX): the firmware event log and the agent's own RTMR3 events,
//!   measured once at start ([`crate::evidence::measured`]).
//!
//! Evidence calls block; async callers use `spawn_blocking`.

use std::sync::{Arc, RwLock};

use attestation_verifier::binding;
use attestation_verifier::bundle::{
    CpuCollateral, CpuEvidence, EvidenceBundle, GpuCollateral, MeasuredBoot,
};
use attestation_verifier::crypto::{Crypto, DefaultCrypto};
use attestation_verifier::evidence::azure_hcl::parse_hcl_report;
use attestation_verifier::evidence::snp::{SnpReport, parse_snp_report};
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, ReceiptBody, SignedReceipt, TeeKind,
};
use gpu_monitor::GpuProbe;

use crate::collateral::gpu::GpuCollateralSource;
use crate::collateral::snp_crl::SnpCrlSource;
pub use crate::evidence::EvidenceError;
use crate::evidence::EvidenceSource;
use crate::evidence::backend::nvidia_gpu::GpuEvidenceSource;
use crate::evidence::detect::{DetectOptions, open_source};
use crate::keys::AgentKey;

/// Domain of the provider-key proof the market chain checks at registration.
pub const PROVIDER_KEY_DOMAIN: &[u8] = b"sigil.provider-key.v1\0";

/// Domain of the agent's own attested-key nonces.
pub const ATTESTED_KEY_NONCE_DOMAIN: &[u8] = b"sigil.attested-key.v1\0";

/// The evidence receipts reference in attested-key mode.
#[derive(Clone, Debug)]
pub struct AttestedKeyEvidence {
    /// The bundle.
    pub bundle: Arc<EvidenceBundle>,
    /// `SCALE(bundle)`, as stored and served.
    pub bytes: Arc<Vec<u8>>,
    /// Its digest (what receipts reference).
    pub digest: [u8; 32],
    /// When it was collected, Unix ms.
    pub collected_at_ms: u64,
}

/// The agent key and its evidence sources.
pub struct Attestor {
    key: AgentKey,
    source: Option<Arc<dyn EvidenceSource>>,
    gpus: Option<GpuEvidenceSource>,
    gpu_collateral: Option<Arc<dyn GpuCollateralSource>>,
    snp_crl: Option<Arc<dyn SnpCrlSource>>,
    measured: Option<Arc<MeasuredBoot>>,
    current: RwLock<Option<AttestedKeyEvidence>>,
}

impl std::fmt::Debug for Attestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestor")
            .field("key", &self.key)
            .field("source", &self.source.as_ref().map(|s| s.name()))
            .field("gpus", &self.gpus.is_some())
            .field("gpu_collateral", &self.gpu_collateral.is_some())
            .field("snp_crl", &self.snp_crl.is_some())
            .field("measured", &self.measured.is_some())
            .finish_non_exhaustive()
    }
}

impl Attestor {
    /// An attestor over `source` (none: no TEE) and, when given, the GPUs of `gpu`
    /// at `gpu_indices` (empty: all).
    pub fn new(
        key: AgentKey,
        source: Option<Arc<dyn EvidenceSource>>,
        gpu: Option<Arc<dyn GpuProbe>>,
        gpu_indices: Vec<u32>,
    ) -> Self {
        Self {
            key,
            source,
            gpus: gpu.map(|p| GpuEvidenceSource::new(p, gpu_indices)),
            gpu_collateral: None,
            snp_crl: None,
            measured: None,
            current: RwLock::new(None),
        }
    }

    /// Adds RIMs and OCSP responses to bundles with GPU evidence.
    #[must_use]
    pub fn with_gpu_collateral(mut self, source: Arc<dyn GpuCollateralSource>) -> Self {
        self.gpu_collateral = Some(source);
        self
    }

    /// Adds AMD's CRL of the chip's product line to bundles with SEV-SNP evidence.
    #[must_use]
    pub fn with_snp_crl(mut self, source: Arc<dyn SnpCrlSource>) -> Self {
        self.snp_crl = Some(source);
        self
    }

    /// Adds measured-boot evidence (the firmware event log, the agent's RTMR3 events;
    /// [`crate::evidence::measured`]) to every bundle. Nothing is added when it is empty.
    #[must_use]
    pub fn with_measured(mut self, measured: MeasuredBoot) -> Self {
        self.measured = (!measured.is_empty()).then(|| Arc::new(measured));
        self
    }

    /// The measured-boot evidence bundles carry, if any.
    pub fn measured(&self) -> Option<&MeasuredBoot> {
        self.measured.as_deref()
    }

    /// The CPU collateral for `cpu`: the AMD CRL of SEV-SNP evidence when a source is
    /// configured and has one. A CRL that cannot be had is logged and left out: only
    /// policies requiring one (`[snp] crl_max_age_secs`) refuse such a bundle.
    fn cpu_collateral(&self, cpu: &CpuEvidence) -> CpuCollateral {
        let Some(source) = &self.snp_crl else {
            return CpuCollateral::default();
        };
        let report: Option<SnpReport> = match cpu {
            CpuEvidence::SevSnp { report, .. } => parse_snp_report(report).ok(),
            CpuEvidence::AzureSnpVtpm { hcl_report, .. } => parse_hcl_report(hcl_report)
                .ok()
                .and_then(|h| parse_snp_report(&h.snp_report).ok()),
            _ => return CpuCollateral::default(),
        };
        let Some(report) = report else {
            return CpuCollateral::default();
        };
        match source.crl(&report) {
            Ok(crl) => CpuCollateral { snp_crl: Some(crl) },
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no AMD CRL for the SEV-SNP evidence; bundling it without one \
                     (policies with snp.crl_max_age_secs will refuse it)"
                );
                CpuCollateral::default()
            }
        }
    }

    /// Detects or opens the configured backend and builds the attestor.
    pub fn open(
        key: AgentKey,
        opts: &DetectOptions,
        gpu: Option<Arc<dyn GpuProbe>>,
        gpu_indices: Vec<u32>,
    ) -> Result<Self, EvidenceError> {
        Ok(Self::new(key, open_source(opts)?, gpu, gpu_indices))
    }

    /// Whether it collects GPU evidence.
    pub fn has_gpus(&self) -> bool {
        self.gpus.is_some()
    }

    /// A simulated attestor with a fresh key (feature `simulator`; tests and
    /// development machines).
    #[cfg(feature = "simulator")]
    pub fn simulated() -> Result<Self, EvidenceError> {
        let key = AgentKey::generate().map_err(|e| EvidenceError::Rng(e.to_string()))?;
        let source = crate::evidence::backend::simulated::SimulatedEvidenceSource::new()?;
        Ok(Self::new(key, Some(Arc::new(source)), None, Vec::new()))
    }

    /// The agent's public key (the receipts' `provider`).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// The agent's X25519 sealing key (bound by every bundle it makes).
    pub fn sealing_public_key(&self) -> [u8; 32] {
        self.key.sealing().public_key()
    }

    /// A TLS certificate and key for the agent key, made in memory (`tls.attested`).
    pub fn tls_identity(
        &self,
    ) -> Result<(String, zeroize::Zeroizing<String>), crate::keys::KeyError> {
        self.key.tls_identity()
    }

    /// The sealing key itself (opens the secrets buyers sealed to it).
    pub fn sealing(&self) -> &sigil_sealing::SealingKey {
        self.key.sealing()
    }

    /// The CPU TEE (`None` without evidence).
    pub fn tee(&self) -> TeeKind {
        self.source.as_ref().map_or(TeeKind::None, |s| s.tee())
    }

    /// The evidence backend's name (`None` without evidence).
    pub fn backend(&self) -> Option<&'static str> {
        self.source.as_ref().map(|s| s.name())
    }

    /// Evidence bound to the agent key and `nonce` (a buyer's challenge, the
    /// agent's own nonce, or a receipt's fresh-quote nonce).
    pub fn attest(&self, nonce: [u8; 32]) -> Result<EvidenceBundle, EvidenceError> {
        let source = self.source.as_ref().ok_or(EvidenceError::NoTee)?;
        let crypto = DefaultCrypto::default();
        let key = self.public_key();
        let sealing = self.sealing_public_key();
        // Binding v2: the signing and the sealing key, as the bundle below carries them.
        let keys = binding::Binding::V2 {
            agent_key: &key,
            sealing_key: &sealing,
        };
        let gpus = match &self.gpus {
            Some(g) => g.collect(&keys.gpu_nonce(&crypto, &nonce))?,
            None => Vec::new(),
        };
        let gpu_digest = binding::gpu_evidence_digest(&crypto, &gpus);
        let report_data = keys.report_data(&crypto, &gpu_digest, &nonce);
        let collateral = match &self.gpu_collateral {
            Some(c) if !gpus.is_empty() => c.collateral(&gpus)?,
            _ => GpuCollateral::default(),
        };
        let (cpu, measured) = source.collect_measured(&report_data)?;
        let cpu_collateral = self.cpu_collateral(&cpu);
        // The source's measured-boot evidence (Azure: the vTPM quote and its event log),
        // else the one measured at start (TDX: the CCEL and the agent's events).
        let base = self.measured.as_deref().cloned().unwrap_or_default();
        Ok(EvidenceBundle::new(key, nonce, cpu, gpus)
            .with_gpu_collateral(collateral)
            .with_cpu_collateral(cpu_collateral)
            .with_sealing_key(sealing)
            .with_measured(MeasuredBoot {
                tpm_quote: measured.tpm_quote,
                event_log: measured.event_log.or(base.event_log),
                ..base
            }))
    }

    /// The agent key's proof of possession for the market chain: its signature over
    /// `SHA-256("sigil.provider-key.v1\0" || account)`, `account` being the 32-byte id of the
    /// provider account that registers the key. The message is domain-separated, so this
    /// cannot be turned into a receipt signature.
    pub fn sign_provider_key_proof(&self, account: &[u8; 32]) -> [u8; 64] {
        let mut m = Vec::with_capacity(PROVIDER_KEY_DOMAIN.len().saturating_add(32));
        m.extend_from_slice(PROVIDER_KEY_DOMAIN);
        m.extend_from_slice(account);
        self.key.sign(&DefaultCrypto::default().sha256(&m))
    }

    /// Signs a receipt body as it is.
    pub fn sign_receipt(&self, body: ReceiptBody) -> SignedReceipt {
        self.key.sign_receipt(&body)
    }

    /// The nonce of attested-key evidence collected at `now_ms`.
    pub fn attested_key_nonce(&self, now_ms: u64) -> [u8; 32] {
        let mut m = Vec::with_capacity(62);
        m.extend_from_slice(ATTESTED_KEY_NONCE_DOMAIN);
        m.extend_from_slice(&self.public_key());
        m.extend_from_slice(&now_ms.to_le_bytes());
        DefaultCrypto::default().sha256(&m)
    }

    /// Collects attested-key evidence now and makes it current.
    pub fn refresh(&self, now_ms: u64) -> Result<AttestedKeyEvidence, EvidenceError> {
        self.refresh_with(self.attested_key_nonce(now_ms), now_ms)
    }

    /// Collects attested-key evidence for `nonce` (e.g. a chain's registration nonce) and
    /// makes it current.
    pub fn refresh_with(
        &self,
        nonce: [u8; 32],
        now_ms: u64,
    ) -> Result<AttestedKeyEvidence, EvidenceError> {
        let bundle = self.attest(nonce)?;
        let bytes = bundle.to_bytes();
        let digest = attestation_verifier::bundle::bundle_digest(&DefaultCrypto::default(), &bytes);
        let ev = AttestedKeyEvidence {
            bundle: Arc::new(bundle),
            bytes: Arc::new(bytes),
            digest,
            collected_at_ms: now_ms,
        };
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ev.clone());
        Ok(ev)
    }

    /// The current attested-key evidence, if any was collected.
    pub fn current(&self) -> Option<AttestedKeyEvidence> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether attested-key evidence is missing or older than `interval_ms` at `now_ms`.
    pub fn needs_refresh(&self, now_ms: u64, interval_ms: u64) -> bool {
        self.current()
            .is_none_or(|c| now_ms.saturating_sub(c.collected_at_ms) >= interval_ms)
    }

    /// Signs `body` bound to the current attested-key evidence.
    pub fn sign_attested(&self, mut body: ReceiptBody) -> Result<SignedReceipt, EvidenceError> {
        let cur = self.current().ok_or(EvidenceError::Unavailable {
            backend: "attested-key".into(),
            reason: "no attested-key evidence collected yet".into(),
        })?;
        body.evidence = EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: cur.bundle.tee,
            digest: cur.digest,
        };
        Ok(self.sign_receipt(body))
    }

    /// Collects evidence bound to `body` and signs it (fresh-quote mode): the
    /// nonce is derived from the body with a zero evidence digest, then the
    /// digest of the new bundle goes into the signed body.
    pub fn sign_fresh(
        &self,
        mut body: ReceiptBody,
    ) -> Result<(SignedReceipt, EvidenceBundle), EvidenceError> {
        let crypto = DefaultCrypto::default();
        body.evidence = EvidenceRef {
            mode: EvidenceMode::FreshQuote,
            tee: self.tee(),
            digest: [0; 32],
        };
        let bundle = self.attest(binding::fresh_nonce(&crypto, &body))?;
        body.evidence.digest = bundle.digest(&crypto);
        Ok((self.sign_receipt(body), bundle))
    }
}

#[cfg(test)]
mod tests;
