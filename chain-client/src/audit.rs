//! Audit: a job's full record from the chain, and its verification replayed offline.
//!
//! [`replay`] re-checks, with the `attestation-verifier` crate (the code the runtime runs, its
//! pure-Rust backend) and without the chain:
//! 1. every stored receipt: the body decodes and names this job, its spec hash and tier; the
//!    ed25519 signature verifies under the key in the body; the digest is the stored one; the
//!    key is the one the job's binding recorded for the provider (the key it was bound under,
//!    even if it rotated or deregistered since);
//! 2. for tier 3, the evidence the receipt rests on: the stored bundle's digest is the
//!    receipt's evidence digest, the bundle binds the receipt's key (and, for fresh quotes, the
//!    receipt's nonce), its signatures and certificate chains verify to the pinned roots at the
//!    time the chain verified it, and it satisfies the job's policy: the policy document the
//!    chain stores for the job's policy id, which must hash to that id;
//! 3. the settlement: a paid job's payees are exactly the providers whose receipts committed to
//!    the settled result, at least the quorum for tier 2, and their shares sum to the price; a
//!    refunded job returned the whole price.

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::receipt::{EvidenceMode, ReceiptBody};
use attestation_verifier::time::UnixTime;
use attestation_verifier::{ReceiptVerifier, check_receipt};
use serde::Serialize;
use subxt::utils::AccountId32;

use crate::policy;
use crate::types::{
    AttestationRecord, Binding, Job, JobId, JobStatus, Outcome, PolicyInfo, Provider, Settlement,
    StoredReceipt, TierTerms, hex_bytes, ss58,
};

/// Everything the chain keeps about a job, read at one block.
#[derive(Clone, Debug, Serialize)]
pub struct JobRecord {
    /// The job.
    #[serde(serialize_with = "hex_bytes")]
    pub job_id: JobId,
    /// The block it was read at.
    pub at_block: u64,
    /// The job as funded, with its status.
    pub job: Job,
    /// Tier 3: the policy the job names, as the chain stores it (`None` if it is not
    /// registered, or not tier 3).
    pub policy: Option<PolicyInfo>,
    /// Its binding, once bound.
    pub binding: Option<Binding>,
    /// Accepted receipts, in binding order.
    pub receipts: Vec<StoredReceipt>,
    /// Its settlement, once closed.
    pub settlement: Option<Settlement>,
    /// The bound providers: as registered at `at_block`, or for one that deregistered since,
    /// as it stood when its receipt was accepted.
    pub providers: Vec<Provider>,
    /// Providers penalised on the job (unresponsive, or dissenting from the settled result).
    pub penalties: Vec<crate::types::Penalty>,
    /// The verified evidence its receipts and providers' keys rest on; a record pruned since
    /// is read from the state at the block that accepted its receipt (`archived_at`).
    pub attestations: Vec<AttestationRecord>,
}

/// The replay of one receipt.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptReplay {
    /// Its provider.
    #[serde(serialize_with = "ss58")]
    pub provider: AccountId32,
    /// Its digest.
    #[serde(serialize_with = "hex_bytes")]
    pub digest: [u8; 32],
    /// Its evidence mode (`none`, `attested-key`, `fresh-quote`).
    pub evidence_mode: Option<&'static str>,
    /// The policy its evidence was re-appraised under: its id, and its genesis name if it has
    /// one.
    pub policy: Option<String>,
    /// Whether everything verified.
    pub verified: bool,
    /// Every reason it did not.
    pub reasons: Vec<String>,
}

/// The offline replay of a job's verification.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The job.
    #[serde(serialize_with = "hex_bytes")]
    pub job_id: JobId,
    /// The job's status.
    pub status: JobStatus,
    /// Whether every receipt and the settlement verified.
    pub verified: bool,
    /// Each receipt.
    pub receipts: Vec<ReceiptReplay>,
    /// Reasons the settlement does not follow from the receipts.
    pub settlement_reasons: Vec<String>,
}

/// Replays a job's verification offline (see the module documentation).
pub fn replay(record: &JobRecord) -> ReplayReport {
    let mut verifier = ReceiptVerifier::new(RustCrypto).ok();
    let receipts: Vec<ReceiptReplay> = record
        .receipts
        .iter()
        .map(|r| replay_receipt(record, r, verifier.as_mut()))
        .collect();
    let settlement_reasons = check_settlement(record);
    ReplayReport {
        job_id: record.job_id,
        status: record.job.status,
        verified: receipts.iter().all(|r| r.verified) && settlement_reasons.is_empty(),
        receipts,
        settlement_reasons,
    }
}

fn replay_receipt(
    record: &JobRecord,
    r: &StoredReceipt,
    verifier: Option<&mut ReceiptVerifier<RustCrypto>>,
) -> ReceiptReplay {
    let mut out = ReceiptReplay {
        provider: r.provider,
        digest: r.digest,
        evidence_mode: None,
        policy: None,
        verified: false,
        reasons: Vec::new(),
    };
    let reasons = &mut out.reasons;
    let body = match ReceiptBody::from_bytes(&r.body) {
        Ok(b) => b,
        Err(e) => {
            reasons.push(format!("receipt body: {e}"));
            return out;
        }
    };
    out.evidence_mode = Some(body.evidence.mode.name());
    // Step 1: the receipt against the job and the provider.
    let job = &record.job;
    if body.job_id != record.job_id {
        reasons.push("the receipt names another job".into());
    }
    if body.job_spec_hash != job.spec_hash {
        reasons.push("the receipt names another job specification".into());
    }
    if body.tier != job.terms.tier().code() {
        reasons.push(format!(
            "the receipt's tier {} is not the job's {}",
            body.tier,
            job.terms.tier().code()
        ));
    }
    if body.result_commitment != r.result_commitment {
        reasons.push("the stored result commitment is not the receipt's".into());
    }
    match record.binding.as_ref().and_then(|b| b.key_of(&r.provider)) {
        Some(key) if key != body.provider => reasons.push(
            "the receipt is signed by a key other than the one the provider was bound under".into(),
        ),
        Some(_) => {}
        None => reasons.push("the receipt's provider is not bound to the job".into()),
    }
    // Step 2: the evidence (tier 3) and the policy.
    let mut bundle: Option<&AttestationRecord> = None;
    let mut chain_policy = None;
    let mut now = UnixTime(0);
    if let TierTerms::Attested { policy: id, .. } = job.terms {
        out.policy = Some(match policy::genesis_name(&id) {
            Some(name) => format!("0x{} ({name})", hex::encode(id)),
            None => format!("0x{}", hex::encode(id)),
        });
        match record.policy.as_ref().filter(|p| p.id == id) {
            Some(p) => match policy::from_document(&id, &p.document) {
                Ok(p) => chain_policy = Some(p),
                Err(e) => reasons.push(format!("the job's policy document: {e}")),
            },
            None => reasons.push(format!(
                "the job's policy 0x{} is not registered on chain",
                hex::encode(id)
            )),
        }
        match r.evidence_digest {
            None => reasons.push("the tier-3 receipt has no stored evidence".into()),
            Some(d) => {
                if d != body.evidence.digest {
                    reasons.push("the stored evidence digest is not the receipt's".into());
                }
                match record.attestations.iter().find(|a| a.digest == d) {
                    None => reasons.push(format!(
                        "evidence 0x{} is not in the record",
                        hex::encode(d)
                    )),
                    Some(a) => {
                        if a.key != body.provider {
                            reasons.push("the evidence binds another key".into());
                        }
                        if body.evidence.mode == EvidenceMode::FreshQuote && a.policy != id {
                            reasons.push(
                                "the fresh evidence was verified under another policy".into(),
                            );
                        }
                        // The verification time is the chain's: collateral valid then may have
                        // expired since.
                        now = UnixTime(a.verified_at_ms / 1000);
                        bundle = Some(a);
                    }
                }
            }
        }
    } else if r.evidence_digest.is_some() {
        reasons.push("a tier-1/2 receipt with stored evidence".into());
    }
    // Steps 1-2: signature, digest, bindings, evidence and policy, by the verifier.
    let Some(verifier) = verifier else {
        reasons.push("the verifier's pinned roots did not load".into());
        return out;
    };
    let signed = r.signed_receipt_bytes();
    let default_policy = attestation_verifier::policy::Policy::default();
    let appraisal_policy = chain_policy.as_ref().unwrap_or(&default_policy);
    let outcome = check_receipt(
        verifier,
        &signed,
        bundle.map(|a| a.evidence.as_slice()),
        appraisal_policy,
        now,
    );
    reasons.extend(outcome.reasons.iter().cloned());
    let digest = body.digest(&RustCrypto);
    if digest != r.digest {
        reasons.push("the stored digest is not the receipt's".into());
    }
    out.verified = out.reasons.is_empty();
    out
}

fn check_settlement(record: &JobRecord) -> Vec<String> {
    let mut reasons = Vec::new();
    let job = &record.job;
    match (&record.settlement, job.status) {
        (None, JobStatus::Funded | JobStatus::Bound) => {}
        (None, status) => reasons.push(format!("the job is {status:?} without a settlement")),
        (Some(_), JobStatus::Funded | JobStatus::Bound) => {
            reasons.push("an open job has a settlement".into());
        }
        (Some(s), status) => match &s.outcome {
            Outcome::Refunded { amount } => {
                if status != JobStatus::Refunded {
                    reasons.push("a refund recorded on a job not marked refunded".into());
                }
                if *amount != job.price {
                    reasons.push(format!("refunded {amount}, the price is {}", job.price));
                }
            }
            Outcome::Paid {
                result_commitment,
                payees,
            } => {
                if status != JobStatus::Settled {
                    reasons.push("a payment recorded on a job not marked settled".into());
                }
                let total = payees
                    .iter()
                    .try_fold(0u128, |acc, p| acc.checked_add(p.amount));
                if total != Some(job.price) {
                    reasons.push(format!(
                        "the shares sum to {}, the price is {}",
                        total.map_or_else(|| "more than u128".into(), |t| t.to_string()),
                        job.price
                    ));
                }
                let mut matching: Vec<&AccountId32> = record
                    .receipts
                    .iter()
                    .filter(|r| r.result_commitment == *result_commitment)
                    .map(|r| &r.provider)
                    .collect();
                let mut paid: Vec<&AccountId32> = payees.iter().map(|p| &p.account).collect();
                matching.sort_by_key(|a| a.0);
                paid.sort_by_key(|a| a.0);
                // Receipts that arrive after settlement are refused, so the matching receipts
                // are exactly the payees.
                if matching != paid {
                    reasons.push(
                        "the payees are not the providers whose receipts committed to the settled result"
                            .into(),
                    );
                }
                let needed = match job.terms {
                    TierTerms::Quorum { k, .. } => usize::try_from(k).unwrap_or(usize::MAX),
                    _ => 1,
                };
                if paid.len() != needed {
                    reasons.push(format!(
                        "{} payees, the job's terms settle on {needed}",
                        paid.len()
                    ));
                }
            }
        },
    }
    reasons
}

#[cfg(test)]
mod tests;
