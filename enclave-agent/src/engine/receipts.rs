//! Receipts: the result commitment over a job's outputs, the body, the evidence binding of
//! the job's mode and the signature; inclusion proofs of outputs.

use std::sync::Arc;
use std::time::Instant;

use attestation_verifier::merkle::OutputTree;
use attestation_verifier::receipt::{EvidenceRef, RECEIPT_VERSION, ReceiptBody, Usage};

use crate::job::{JobRecord, OutputMeta};
use crate::workload::spec::{Evidence, JobPlan};

use super::{AgentError, CRYPTO, Engine, sha256};

/// A signed receipt and what is stored with it.
#[derive(Clone, Debug)]
pub struct IssuedReceipt {
    /// SCALE(SignedReceipt).
    pub signed: Vec<u8>,
    /// Digest of the evidence bundle it references (zero without evidence).
    pub evidence_digest: [u8; 32],
    /// A bundle collected for this receipt (fresh-quote mode): digest and SCALE bytes.
    pub bundle: Option<([u8; 32], Vec<u8>)>,
    /// The outputs' metadata, in leaf order.
    pub outputs: Vec<OutputMeta>,
}

impl Engine {
    /// Builds the receipt of a finished job: the result commitment over `outputs` (in
    /// path order), the body from the record, the evidence binding of the plan's mode, and
    /// the signature.
    pub async fn make_receipt(
        &self,
        plan: &JobPlan,
        r: &JobRecord,
        outputs: &[(String, Vec<u8>)],
    ) -> Result<IssuedReceipt, AgentError> {
        let hashed: Vec<(String, [u8; 32])> = outputs
            .iter()
            .map(|(n, d)| (n.clone(), sha256(d)))
            .collect();
        let tree = OutputTree::new(
            &CRYPTO,
            hashed.iter().map(|(n, h)| (n.as_bytes().to_vec(), *h)),
        )
        .map_err(|e| AgentError::Internal(format!("result commitment: {e}")))?;
        let metas = hashed
            .iter()
            .zip(outputs)
            .zip(0u32..)
            .map(|(((path, sha), (_, data)), index)| OutputMeta {
                path: path.clone(),
                size: u64::try_from(data.len()).unwrap_or(u64::MAX),
                sha256: *sha,
                index,
            })
            .collect();
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            job_id: r.job_id,
            job_spec_hash: r.spec_hash,
            provider: self.attestor.public_key(),
            tier: plan.tier,
            result_commitment: tree.root(&CRYPTO),
            output_count: tree.len(),
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms.max(r.started_at_ms),
            exit_code: r.exit_code.unwrap_or(i32::MIN),
            usage: Usage {
                wall_ms: r.usage.wall_ms,
                cpu_ms: r.usage.cpu_ms,
                peak_memory_bytes: r.usage.peak_memory_bytes,
                gpu_ms: r.usage.gpu_ms,
                gpu_energy_mj: r.usage.gpu_energy_mj,
            },
            evidence: EvidenceRef::NONE,
        };
        let (signed, bundle) = match plan.evidence {
            Evidence::None => (self.attestor.sign_receipt(body), None),
            Evidence::AttestedKey => {
                // The bundle was stored when it was collected (`refresh_evidence`).
                let signed = self
                    .attestor
                    .sign_attested(body)
                    .map_err(|e| AgentError::Evidence(e.to_string()))?;
                (signed, None)
            }
            Evidence::FreshQuote => {
                let attestor = Arc::clone(&self.attestor);
                let t = Instant::now();
                let (signed, bundle) =
                    tokio::task::spawn_blocking(move || attestor.sign_fresh(body))
                        .await
                        .map_err(|e| AgentError::Internal(e.to_string()))?
                        .map_err(|e| AgentError::Evidence(e.to_string()))?;
                self.metrics.evidence("fresh_quote", t.elapsed());
                let bytes = bundle.to_bytes();
                (signed, Some((bundle.digest(&CRYPTO), bytes)))
            }
        };
        let digest = bundle.as_ref().map_or_else(
            || signed.body().map(|b| b.evidence.digest).unwrap_or([0; 32]),
            |(d, _)| *d,
        );
        Ok(IssuedReceipt {
            signed: signed.to_bytes(),
            evidence_digest: digest,
            bundle,
            outputs: metas,
        })
    }

    /// Inclusion proof of an output, SCALE-encoded.
    pub fn output_proof(&self, r: &JobRecord, path: &str) -> Option<Vec<u8>> {
        let tree = OutputTree::new(
            &CRYPTO,
            r.outputs
                .iter()
                .map(|o| (o.path.as_bytes().to_vec(), o.sha256)),
        )
        .ok()?;
        tree.prove(&CRYPTO, path.as_bytes()).map(|p| p.to_bytes())
    }
}
