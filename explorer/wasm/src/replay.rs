//! A job's verification replayed from its on-chain record, as `sigil audit replay` does it.
//!
//! The page reads the record from the node's storage (pallet `Market`: `Jobs`, `Receipts`,
//! `Attestations`, `Policies`, `Providers`, `Settlements`) and passes it here as a
//! [`ReplayInput`]. Steps, as in the chain client's audit:
//! 1. every receipt against the job: the body decodes and names this job, its spec hash and
//!    tier, the stored result commitment and digest are the receipt's, the signing key is the
//!    provider's registered key;
//! 2. for tier 3, the evidence: the stored bundle's digest is the receipt's, it binds the
//!    receipt's key (and the policy, for fresh quotes), and `check_receipt` verifies receipt,
//!    bundle and policy at the time the chain verified the evidence, under the policy document
//!    the chain stores for the job (which must hash to the job's policy id);
//! 3. the settlement: the payees are the providers whose receipts committed to the settled
//!    result, as many as the terms settle on, and their shares sum to the price; a refund
//!    returned the whole price.
//!
//! Each receipt's reasons are the audit's, in its order; [`Check`]s sort the same findings by
//! what they are about (receipt signature, evidence binding, signature chain, TCB, measurement,
//! GPU reports, result commitment, other policy rules) for the page.

use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::{Policy, genesis};
use attestation_verifier::receipt::{EvidenceMode, ReceiptBody, SignedReceipt};
use attestation_verifier::{
    ReceiptClaims, ReceiptVerifier, ReceiptVerifyError, UnixTime, Verdict, check_receipt,
    evaluate_receipt,
};
use serde::{Deserialize, Serialize};

/// Bytes as hex in JSON (`0x` prefix optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.strip_prefix("0x").unwrap_or(&s);
        hex::decode(s).map(Hex).map_err(serde::de::Error::custom)
    }
}

impl Hex {
    fn array<const N: usize>(&self) -> Option<[u8; N]> {
        self.0.as_slice().try_into().ok()
    }
}

/// A registered provider: its account and its receipt-signing key.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderInput {
    /// The account (32 bytes).
    pub account: Hex,
    /// Its registered ed25519 signing key.
    pub signing_key: Hex,
}

/// A stored receipt (`Receipts(job, provider)`).
#[derive(Clone, Debug, Deserialize)]
pub struct ReceiptInput {
    /// The provider's account.
    pub provider: Hex,
    /// `SCALE(ReceiptBody)` as signed.
    pub body: Hex,
    /// The ed25519 signature.
    pub signature: Hex,
    /// The digest the chain stored.
    pub digest: Hex,
    /// The result commitment the chain stored.
    pub result_commitment: Hex,
    /// The evidence digest the chain stored (tier 3).
    #[serde(default)]
    pub evidence_digest: Option<Hex>,
}

/// A verified-evidence record (`Attestations(digest)`).
#[derive(Clone, Debug, Deserialize)]
pub struct AttestationInput {
    /// Its digest (the storage key).
    pub digest: Hex,
    /// `SCALE(EvidenceBundle)`.
    pub evidence: Hex,
    /// The key it binds.
    pub key: Hex,
    /// The policy it was verified under.
    pub policy: Hex,
    /// When the chain verified it (Unix ms).
    pub verified_at_ms: u64,
}

/// A payee and its share (planck, decimal).
#[derive(Clone, Debug, Deserialize)]
pub struct PayeeInput {
    /// The provider's account.
    pub account: Hex,
    /// The amount.
    pub amount: String,
}

/// A settlement (`Settlements(job)`): paid, or refunded.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementInput {
    /// Paid to the providers whose receipts committed to `result_commitment`.
    Paid {
        /// The settled result.
        result_commitment: Hex,
        /// Who was paid what.
        payees: Vec<PayeeInput>,
    },
    /// The price returned to the buyer.
    Refunded {
        /// The amount (planck, decimal).
        amount: String,
    },
}

/// A job's record, as the page read it from the chain.
#[derive(Clone, Debug, Deserialize)]
pub struct ReplayInput {
    /// The job id.
    pub job_id: Hex,
    /// The spec hash it was funded with.
    pub spec_hash: Hex,
    /// Its tier (1, 2 or 3).
    pub tier: u8,
    /// Tier 2: the quorum.
    #[serde(default)]
    pub k: Option<u32>,
    /// Tier 3: the policy id.
    #[serde(default)]
    pub policy_id: Option<Hex>,
    /// Tier 3: the document the chain stores for it.
    #[serde(default)]
    pub policy_document: Option<Hex>,
    /// `funded`, `bound`, `settled` or `refunded`.
    pub status: String,
    /// Its price (planck, decimal).
    pub price: String,
    /// The bound providers still registered.
    #[serde(default)]
    pub providers: Vec<ProviderInput>,
    /// Its accepted receipts.
    #[serde(default)]
    pub receipts: Vec<ReceiptInput>,
    /// The evidence records its receipts name.
    #[serde(default)]
    pub attestations: Vec<AttestationInput>,
    /// Its settlement, once closed.
    #[serde(default)]
    pub settlement: Option<SettlementInput>,
}

/// What a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The receipt decodes and its ed25519 signature verifies; the digest is the stored one.
    ReceiptSignature,
    /// The receipt names this job, spec and tier and is signed by the provider's key.
    Job,
    /// The stored result commitment is the receipt's.
    ResultCommitment,
    /// The bundle is the receipt's, binds its key, nonce and GPU evidence.
    EvidenceBinding,
    /// The hardware evidence's signatures and certificate chains verify to the pinned roots.
    SignatureChain,
    /// TCB floors of the policy.
    Tcb,
    /// Launch measurement and measured boot against the policy.
    Measurement,
    /// GPU reports: verified, bound, and as the policy requires.
    Gpu,
    /// The job's policy document and its other rules (TEE kinds, debug, simulated evidence).
    Policy,
}

impl CheckKind {
    const ALL: [CheckKind; 9] = [
        Self::ReceiptSignature,
        Self::Job,
        Self::ResultCommitment,
        Self::EvidenceBinding,
        Self::SignatureChain,
        Self::Tcb,
        Self::Measurement,
        Self::Gpu,
        Self::Policy,
    ];

    fn tier3_only(self) -> bool {
        !matches!(
            self,
            Self::ReceiptSignature | Self::Job | Self::ResultCommitment
        )
    }

    /// The kind of a verification failure.
    pub fn of_failure(e: &ReceiptVerifyError) -> Self {
        use ReceiptVerifyError as E;
        match e {
            E::Receipt(_) => Self::ReceiptSignature,
            E::BundleMissing { .. }
            | E::UnexpectedBundle
            | E::Bundle(_)
            | E::EvidenceDigestMismatch { .. }
            | E::TeeMismatch { .. }
            | E::AgentKeyMismatch { .. }
            | E::FreshNonceMismatch { .. }
            | E::ReportDataMismatch { .. } => Self::EvidenceBinding,
            E::GpuNonceMismatch { .. } | E::GpuParse { .. } | E::GpuCertChain { .. } => Self::Gpu,
            E::Gpu { .. } => Self::Gpu,
            // The boot log or the agent's events do not replay to the quote's registers.
            E::MeasuredBoot(_) => Self::Measurement,
            _ => Self::SignatureChain,
        }
    }

    /// The kind of a policy rule (`snp.min_tcb`, `gpu.models`, ...).
    pub fn of_rule(rule: &str) -> Self {
        if rule.starts_with("gpu.") {
            Self::Gpu
        } else if rule.contains("tcb") || rule.contains("svn") || rule.contains("advisory") {
            Self::Tcb
        } else if rule.contains("measurement")
            || rule.contains("mrtd")
            || rule.contains("mrconfig")
            || rule.contains("mrowner")
            || rule.contains("mrseam")
            || rule.contains("rtmr")
            || rule.contains("host_data")
            || rule.ends_with("_digests")
            || rule == "tdx.events"
            || rule == "vtpm.pcrs"
        {
            Self::Measurement
        } else {
            Self::Policy
        }
    }
}

/// One check of a receipt: passed, failed (with its reasons), or not applicable.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What it is about.
    pub kind: CheckKind,
    /// `pass`, `fail`, `n/a` (tiers 1 and 2) or `not run` (the replay stopped before it).
    pub verdict: &'static str,
    /// Why it failed.
    pub reasons: Vec<String>,
}

/// The replay of one receipt.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptReplay {
    /// Its provider's account, hex.
    pub provider: String,
    /// Its stored digest, hex.
    pub digest: String,
    /// `none`, `attested-key` or `fresh-quote`.
    pub evidence_mode: Option<&'static str>,
    /// The policy its evidence was appraised under (hex id, and genesis name).
    pub policy: Option<String>,
    /// The verification time used (Unix seconds): the chain's, when it verified the evidence.
    pub at_secs: u64,
    /// Whether everything verified.
    pub verified: bool,
    /// Every reason it did not, as `sigil audit replay` lists them.
    pub reasons: Vec<String>,
    /// The same findings by subject.
    pub checks: Vec<Check>,
    /// What the receipt and its evidence say (`sigil-verify receipt`'s claims).
    pub claims: Option<ReceiptClaims>,
}

/// The replay of a job.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The job, hex.
    pub job_id: String,
    /// Whether every receipt and the settlement verified.
    pub verified: bool,
    /// Each receipt.
    pub receipts: Vec<ReceiptReplay>,
    /// Reasons the settlement does not follow from the receipts.
    pub settlement_reasons: Vec<String>,
    /// Set when the record itself could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// [`replay`] over JSON: a malformed record is a report with `error` set.
pub fn replay_json(json: &str) -> String {
    let report = match serde_json::from_str::<ReplayInput>(json) {
        Ok(input) => replay(&input),
        Err(e) => ReplayReport {
            job_id: String::new(),
            verified: false,
            receipts: Vec::new(),
            settlement_reasons: Vec::new(),
            error: Some(format!("the job record does not decode: {e}")),
        },
    };
    to_json(&report)
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The genesis policy's name for `id`, if it is one.
fn genesis_name(id: &[u8; 32]) -> Option<&'static str> {
    genesis::NAMES
        .into_iter()
        .find(|n| genesis::named(n).is_some_and(|p| p.id() == *id))
}

/// A policy from a stored document, checked to be the one `id` names.
pub fn from_document(id: &[u8; 32], document: &[u8]) -> Result<Policy, String> {
    let policy = Policy::from_canonical_bytes(document).map_err(|e| e.to_string())?;
    if policy.id() == *id {
        Ok(policy)
    } else {
        Err(format!(
            "the document stored for policy 0x{} hashes to 0x{}",
            hex::encode(id),
            hex::encode(policy.id())
        ))
    }
}

#[derive(Serialize)]
struct PolicyView {
    id: String,
    name: Option<&'static str>,
    tees: Vec<String>,
    toml: String,
}

/// [`crate::policy_document`].
pub fn policy_document_json(id_hex: &str, document_hex: &str) -> String {
    let parse = |s: &str| hex::decode(s.strip_prefix("0x").unwrap_or(s));
    let result = match (parse(id_hex), parse(document_hex)) {
        (Ok(id), Ok(doc)) => match <[u8; 32]>::try_from(id.as_slice()) {
            Ok(id) => from_document(&id, &doc).map(|p| PolicyView {
                id: hex::encode(id),
                name: genesis_name(&id),
                tees: p.accepted_tees().iter().map(ToString::to_string).collect(),
                toml: p.to_toml(),
            }),
            Err(_) => Err("a policy id is 32 bytes".into()),
        },
        _ => Err("the policy id or document is not hex".into()),
    };
    match result {
        Ok(v) => to_json(&v),
        Err(e) => to_json(&serde_json::json!({ "error": e })),
    }
}

/// [`crate::genesis_policies`].
pub fn genesis_policies_json() -> String {
    let all: Vec<PolicyView> = genesis::NAMES
        .into_iter()
        .filter_map(|n| {
            genesis::named(n).map(|p| PolicyView {
                id: hex::encode(p.id()),
                name: Some(n),
                tees: p.accepted_tees().iter().map(ToString::to_string).collect(),
                toml: p.to_toml(),
            })
        })
        .collect();
    to_json(&all)
}

/// Replays a job's verification (see the module documentation).
pub fn replay(input: &ReplayInput) -> ReplayReport {
    let mut verifier = ReceiptVerifier::new(RustCrypto).ok();
    let receipts: Vec<ReceiptReplay> = input
        .receipts
        .iter()
        .map(|r| replay_receipt(input, r, verifier.as_mut()))
        .collect();
    let settlement_reasons = check_settlement(input);
    ReplayReport {
        job_id: hex::encode(&input.job_id.0),
        verified: receipts.iter().all(|r| r.verified) && settlement_reasons.is_empty(),
        receipts,
        settlement_reasons,
        error: None,
    }
}

/// Findings sorted into checks, with the audit's flat list beside them.
#[derive(Default)]
struct Findings {
    all: Vec<String>,
    by_kind: Vec<(CheckKind, String)>,
    /// The replay stopped early: checks without findings did not run.
    stopped: bool,
}

impl Findings {
    fn push(&mut self, kind: CheckKind, reason: impl Into<String>) {
        let reason = reason.into();
        self.all.push(reason.clone());
        self.by_kind.push((kind, reason));
    }

    fn checks(&self, tier3: bool) -> Vec<Check> {
        CheckKind::ALL
            .into_iter()
            .map(|kind| {
                let reasons: Vec<String> = self
                    .by_kind
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, r)| r.clone())
                    .collect();
                let verdict = if !reasons.is_empty() {
                    "fail"
                } else if kind.tier3_only() && !tier3 {
                    "n/a"
                } else if self.stopped {
                    "not run"
                } else {
                    "pass"
                };
                Check {
                    kind,
                    verdict,
                    reasons,
                }
            })
            .collect()
    }
}

fn replay_receipt(
    input: &ReplayInput,
    r: &ReceiptInput,
    verifier: Option<&mut ReceiptVerifier<RustCrypto>>,
) -> ReceiptReplay {
    let tier3 = input.tier == 3;
    let mut out = ReceiptReplay {
        provider: hex::encode(&r.provider.0),
        digest: hex::encode(&r.digest.0),
        evidence_mode: None,
        policy: None,
        at_secs: 0,
        verified: false,
        reasons: Vec::new(),
        checks: Vec::new(),
        claims: None,
    };
    let mut f = Findings::default();
    let done = |mut out: ReceiptReplay, f: Findings| {
        out.checks = f.checks(tier3);
        out.verified = f.all.is_empty();
        out.reasons = f.all;
        out
    };
    let body = match ReceiptBody::from_bytes(&r.body.0) {
        Ok(b) => b,
        Err(e) => {
            f.push(CheckKind::ReceiptSignature, format!("receipt body: {e}"));
            f.stopped = true;
            return done(out, f);
        }
    };
    let Some(signature) = r.signature.array::<64>() else {
        f.push(
            CheckKind::ReceiptSignature,
            "the stored signature is not 64 bytes",
        );
        f.stopped = true;
        return done(out, f);
    };
    out.evidence_mode = Some(body.evidence.mode.name());
    // Step 1: the receipt against the job and the provider.
    if body.job_id.as_slice() != input.job_id.0.as_slice() {
        f.push(CheckKind::Job, "the receipt names another job");
    }
    if body.job_spec_hash.as_slice() != input.spec_hash.0.as_slice() {
        f.push(
            CheckKind::Job,
            "the receipt names another job specification",
        );
    }
    if body.tier != input.tier {
        f.push(
            CheckKind::Job,
            format!(
                "the receipt's tier {} is not the job's {}",
                body.tier, input.tier
            ),
        );
    }
    if body.result_commitment.as_slice() != r.result_commitment.0.as_slice() {
        f.push(
            CheckKind::ResultCommitment,
            "the stored result commitment is not the receipt's",
        );
    }
    if let Some(p) = input.providers.iter().find(|p| p.account == r.provider)
        && p.signing_key.0.as_slice() != body.provider.as_slice()
    {
        f.push(
            CheckKind::Job,
            "the receipt is signed by a key other than the provider's",
        );
    }
    // Step 2: the evidence (tier 3) and the policy.
    let mut bundle: Option<&AttestationInput> = None;
    let mut chain_policy = None;
    let mut now = UnixTime(0);
    if tier3 {
        match input.policy_id.as_ref().and_then(Hex::array::<32>) {
            None => f.push(CheckKind::Policy, "the tier-3 job names no policy"),
            Some(id) => {
                out.policy = Some(match genesis_name(&id) {
                    Some(name) => format!("0x{} ({name})", hex::encode(id)),
                    None => format!("0x{}", hex::encode(id)),
                });
                match input.policy_document.as_ref() {
                    Some(doc) => match from_document(&id, &doc.0) {
                        Ok(p) => chain_policy = Some(p),
                        Err(e) => {
                            f.push(CheckKind::Policy, format!("the job's policy document: {e}"))
                        }
                    },
                    None => f.push(
                        CheckKind::Policy,
                        format!(
                            "the job's policy 0x{} is not registered on chain",
                            hex::encode(id)
                        ),
                    ),
                }
                match r.evidence_digest.as_ref() {
                    None => f.push(
                        CheckKind::EvidenceBinding,
                        "the tier-3 receipt has no stored evidence",
                    ),
                    Some(d) => {
                        if d.0.as_slice() != body.evidence.digest.as_slice() {
                            f.push(
                                CheckKind::EvidenceBinding,
                                "the stored evidence digest is not the receipt's",
                            );
                        }
                        match input.attestations.iter().find(|a| a.digest == *d) {
                            None => f.push(
                                CheckKind::EvidenceBinding,
                                format!("evidence 0x{} is not in the record", hex::encode(&d.0)),
                            ),
                            Some(a) => {
                                if a.key.0.as_slice() != body.provider.as_slice() {
                                    f.push(
                                        CheckKind::EvidenceBinding,
                                        "the evidence binds another key",
                                    );
                                }
                                if body.evidence.mode == EvidenceMode::FreshQuote
                                    && a.policy.0.as_slice() != id.as_slice()
                                {
                                    f.push(
                                        CheckKind::Policy,
                                        "the fresh evidence was verified under another policy",
                                    );
                                }
                                // The chain's verification time: collateral valid then may
                                // have expired since.
                                now = UnixTime(a.verified_at_ms / 1000);
                                bundle = Some(a);
                            }
                        }
                    }
                }
            }
        }
    } else if r.evidence_digest.is_some() {
        f.push(
            CheckKind::EvidenceBinding,
            "a tier-1/2 receipt with stored evidence",
        );
    }
    out.at_secs = now.0;
    // Steps 1-2: signature, digest, bindings, evidence and policy, by the verifier.
    let Some(verifier) = verifier else {
        f.push(
            CheckKind::SignatureChain,
            "the verifier's pinned roots did not load",
        );
        f.stopped = true;
        return done(out, f);
    };
    let signed = SignedReceipt {
        body: r.body.0.clone(),
        signature,
    }
    .to_bytes();
    let default_policy = Policy::default();
    let policy = chain_policy.as_ref().unwrap_or(&default_policy);
    let evidence = bundle.map(|a| a.evidence.0.as_slice());
    let outcome = check_receipt(verifier, &signed, evidence, policy, now);
    if !outcome.reasons.is_empty() {
        // Sort the verifier's findings by subject: the same run's failures, or, when everything
        // verified, its policy violations (`check_receipt` is exactly this verify + evaluate).
        let mut sorted: Vec<(CheckKind, String)> = match verifier.verify(&signed, evidence, now) {
            Err(failures) => failures
                .0
                .iter()
                .map(|e| (CheckKind::of_failure(e), e.to_string()))
                .collect(),
            Ok(v) => match evaluate_receipt(policy, &v) {
                Verdict::Accept => Vec::new(),
                Verdict::Reject(vs) => vs
                    .iter()
                    .map(|v| (CheckKind::of_rule(v.rule), v.to_string()))
                    .collect(),
            },
        };
        for reason in &outcome.reasons {
            let kind = sorted
                .iter()
                .position(|(_, r)| r == reason)
                .map(|i| sorted.remove(i).0)
                .unwrap_or(CheckKind::Policy);
            f.push(kind, reason.clone());
        }
    }
    out.claims = outcome.claims;
    if body.digest(&RustCrypto).as_slice() != r.digest.0.as_slice() {
        f.push(
            CheckKind::ReceiptSignature,
            "the stored digest is not the receipt's",
        );
    }
    done(out, f)
}

fn amount(s: &str) -> Option<u128> {
    s.parse().ok()
}

fn check_settlement(input: &ReplayInput) -> Vec<String> {
    let mut reasons = Vec::new();
    let open = matches!(input.status.as_str(), "funded" | "bound");
    let Some(price) = amount(&input.price) else {
        return vec![format!("the price {:?} is not an amount", input.price)];
    };
    match &input.settlement {
        None if open => {}
        None => reasons.push(format!("the job is {} without a settlement", input.status)),
        Some(_) if open => reasons.push("an open job has a settlement".into()),
        Some(SettlementInput::Refunded { amount: a }) => {
            if input.status != "refunded" {
                reasons.push("a refund recorded on a job not marked refunded".into());
            }
            if amount(a) != Some(price) {
                reasons.push(format!("refunded {a}, the price is {price}"));
            }
        }
        Some(SettlementInput::Paid {
            result_commitment,
            payees,
        }) => {
            if input.status != "settled" {
                reasons.push("a payment recorded on a job not marked settled".into());
            }
            let total = payees.iter().try_fold(0u128, |acc, p| {
                amount(&p.amount).and_then(|a| acc.checked_add(a))
            });
            if total != Some(price) {
                reasons.push(format!(
                    "the shares sum to {}, the price is {price}",
                    total.map_or_else(|| "no amount".into(), |t| t.to_string())
                ));
            }
            let mut matching: Vec<&[u8]> = input
                .receipts
                .iter()
                .filter(|r| r.result_commitment == *result_commitment)
                .map(|r| r.provider.0.as_slice())
                .collect();
            let mut paid: Vec<&[u8]> = payees.iter().map(|p| p.account.0.as_slice()).collect();
            matching.sort();
            paid.sort();
            // Receipts that arrive after settlement are refused, so the matching receipts are
            // exactly the payees.
            if matching != paid {
                reasons.push(
                    "the payees are not the providers whose receipts committed to the settled result"
                        .into(),
                );
            }
            let needed = match (input.tier, input.k) {
                (2, Some(k)) => usize::try_from(k).unwrap_or(usize::MAX),
                _ => 1,
            };
            if paid.len() != needed {
                reasons.push(format!(
                    "{} payees, the job's terms settle on {needed}",
                    paid.len()
                ));
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests;
