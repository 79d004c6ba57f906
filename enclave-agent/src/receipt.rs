//! Building a receipt body from a finished job (pure: no I/O, no clock).

use attestation_verifier::crypto::Crypto;
use attestation_verifier::merkle::{MerkleError, OutputTree};
use attestation_verifier::receipt::{
    EvidenceRef, RECEIPT_VERSION, ReceiptBody, ReceiptError, Usage,
};

/// What the receipt says about a finished job.
#[derive(Clone, Debug)]
pub struct FinishedJob<'a> {
    /// The job id.
    pub job_id: [u8; 32],
    /// SHA-256 of the job specification.
    pub job_spec_hash: [u8; 32],
    /// Market tier (1..=3).
    pub tier: u8,
    /// Outputs: name (path relative to the output directory) and SHA-256 of the content.
    pub outputs: &'a [(String, [u8; 32])],
    /// Start, Unix ms.
    pub started_at_ms: u64,
    /// End, Unix ms.
    pub finished_at_ms: u64,
    /// Exit code (negative: the signal that killed it).
    pub exit_code: i32,
    /// Resources used.
    pub usage: Usage,
}

/// Why a body cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptBuildError {
    /// The outputs do not form a tree (duplicate or invalid names).
    #[error("outputs: {0}")]
    Outputs(#[from] MerkleError),
    /// The body breaks a structural rule.
    #[error(transparent)]
    Body(#[from] ReceiptError),
}

/// The body for `job`, signed by `provider`, bound to `evidence`; with the
/// output tree (for inclusion proofs).
pub fn build_body<C: Crypto + ?Sized>(
    crypto: &C,
    provider: [u8; 32],
    job: &FinishedJob<'_>,
    evidence: EvidenceRef,
) -> Result<(ReceiptBody, OutputTree), ReceiptBuildError> {
    let tree = OutputTree::new(
        crypto,
        job.outputs
            .iter()
            .map(|(name, sha)| (name.as_bytes().to_vec(), *sha)),
    )?;
    let body = ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: job.job_id,
        job_spec_hash: job.job_spec_hash,
        provider,
        tier: job.tier,
        result_commitment: tree.root(crypto),
        output_count: tree.len(),
        started_at_ms: job.started_at_ms,
        finished_at_ms: job.finished_at_ms,
        exit_code: job.exit_code,
        usage: job.usage,
        evidence,
    };
    body.check()?;
    Ok((body, tree))
}

#[cfg(test)]
mod tests;
