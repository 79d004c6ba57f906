//! NVIDIA confidential-computing GPUs through `gpu-monitor`'s [`GpuProbe`]:
//! one attestation report per GPU for the bundle's GPU nonce.
//!
//! Before any report is collected, NVML's confidential-computing state must be on, in
//! production, and not in developer-tools mode: the signed report shows the CC mode (SPT, MPT,
//! PPCIe) but not developer-tools mode, so the agent refuses to attest GPUs it can see are not
//! confidential rather than hand out evidence that looks as if they were.

use std::sync::Arc;

use attestation_verifier::bundle::GpuEvidence;
use gpu_monitor::{GpuProbe, Nonce};

use crate::evidence::EvidenceError;

/// Collects GPU evidence.
pub struct GpuEvidenceSource {
    probe: Arc<dyn GpuProbe>,
    indices: Vec<u32>,
}

impl GpuEvidenceSource {
    /// Evidence from the GPUs at `indices` (NVML indices; empty = every GPU).
    pub fn new(probe: Arc<dyn GpuProbe>, indices: Vec<u32>) -> Self {
        Self { probe, indices }
    }

    fn indices(&self) -> Result<Vec<u32>, EvidenceError> {
        if !self.indices.is_empty() {
            return Ok(self.indices.clone());
        }
        let count = self
            .probe
            .gpu_count()
            .map_err(|source| EvidenceError::Gpu { index: 0, source })?;
        Ok((0..count).collect())
    }

    /// Each GPU's report for `gpu_nonce`, in index order; refused unless the GPUs are in
    /// confidential mode.
    pub fn collect(&self, gpu_nonce: &[u8; 32]) -> Result<Vec<GpuEvidence>, EvidenceError> {
        let unavailable = |reason: String| EvidenceError::Unavailable {
            backend: "nvidia-gpu".into(),
            reason,
        };
        let cc = self.probe.cc_state().map_err(|e| {
            unavailable(format!(
                "the driver does not report the confidential-computing state ({e}): GPUs are not attested"
            ))
        })?;
        if let Some(why) = cc.not_confidential() {
            return Err(unavailable(format!("{why}: GPUs are not attested")));
        }
        let nonce = Nonce::new(*gpu_nonce);
        self.indices()?
            .into_iter()
            .map(|index| {
                let e = self
                    .probe
                    .attestation_evidence(index, &nonce)
                    .map_err(|source| EvidenceError::Gpu { index, source })?;
                Ok(GpuEvidence {
                    report: e.report,
                    cert_chain_pem: e.cert_chain_pem,
                    nonce: *e.nonce.as_bytes(),
                    uuid: e.gpu_uuid,
                })
            })
            .collect()
    }
}
