// Tests may unwrap and index: a failure is the test's report.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use attestation_verifier::binding;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle, bundle_digest};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::receipt::{EvidenceRef, SignedReceipt, TeeKind as RTee, Usage};

use super::*;
use crate::keys::Ed25519Keypair;
use crate::policy::{SEV_SNP_V1, SIMULATED_V1};
use crate::types::PolicyInfo;
use crate::types::{AttestedKey, Capabilities, Payee, ProviderClass, TeeKind, Tier};
use attestation_verifier::policy::{HexBytes, Policy};

const PRICE: u128 = 5_000_000_000_000;

fn key(uri: &str) -> Ed25519Keypair {
    Ed25519Keypair::from_uri(uri).unwrap()
}

fn body(
    job_id: [u8; 32],
    spec: [u8; 32],
    k: &Ed25519Keypair,
    tier: u8,
    ev: EvidenceRef,
) -> ReceiptBody {
    ReceiptBody {
        version: 1,
        job_id,
        job_spec_hash: spec,
        provider: k.public_key(),
        tier,
        result_commitment: [7; 32],
        output_count: 1,
        started_at_ms: 1_000,
        finished_at_ms: 2_000,
        exit_code: 0,
        usage: Usage::default(),
        evidence: ev,
    }
}

fn stored(k: &Ed25519Keypair, b: &ReceiptBody, evidence: Option<[u8; 32]>) -> StoredReceipt {
    let digest = b.digest(&RustCrypto);
    let signed = SignedReceipt::new(b, k.sign(&digest));
    StoredReceipt {
        provider: AccountId32(k.public_key()),
        body: signed.body,
        signature: signed.signature,
        digest,
        result_commitment: b.result_commitment,
        evidence_digest: evidence,
        submitted_at: 3,
    }
}

fn provider(k: &Ed25519Keypair, attested: Option<AttestedKey>) -> Provider {
    Provider {
        account: AccountId32(k.public_key()),
        signing_key: k.public_key(),
        capabilities: Capabilities {
            tiers: vec![Tier::Signed],
            tee_kinds: vec![],
            gpu_model: String::new(),
        },
        attested,
        registered_at: 1,
        active_jobs: 0,
        offer: None,
        deposit: 0,
        retiring: None,
    }
}

fn record(terms: TierTerms, receipts: Vec<StoredReceipt>, providers: Vec<Provider>) -> JobRecord {
    let payees = receipts
        .iter()
        .map(|r| Payee {
            account: r.provider,
            amount: PRICE,
        })
        .collect();
    JobRecord {
        job_id: [1; 32],
        at_block: 4,
        policy: None,
        job: Job {
            buyer: AccountId32([9; 32]),
            spec_hash: [2; 32],
            terms,
            class: ProviderClass::default(),
            price: PRICE,
            deadline: 100,
            funded_at: 1,
            response_blocks: 0,
            status: JobStatus::Settled,
        },
        binding: Some(Binding {
            providers: providers.iter().map(|p| p.account).collect(),
            keys: providers.iter().map(|p| p.signing_key).collect(),
            bound_at: 2,
        }),
        receipts,
        settlement: Some(Settlement {
            outcome: Outcome::Paid {
                result_commitment: [7; 32],
                payees,
            },
            at: 3,
        }),
        providers,
        penalties: vec![],
        attestations: vec![],
    }
}

fn tier1() -> JobRecord {
    let k = key("//Audit1");
    let b = body([1; 32], [2; 32], &k, 1, EvidenceRef::NONE);
    record(
        TierTerms::Signed,
        vec![stored(&k, &b, None)],
        vec![provider(&k, None)],
    )
}

#[test]
fn tier1_replay_works() {
    let report = replay(&tier1());
    assert!(report.verified, "{report:#?}");
    assert_eq!(report.receipts[0].evidence_mode, Some("none"));
}

#[test]
fn tampered_receipt_rejects() {
    let mut r = tier1();
    r.receipts[0].body[40] ^= 1;
    assert!(!replay(&r).verified);
    let mut r = tier1();
    r.receipts[0].signature[0] ^= 1;
    assert!(!replay(&r).verified);
    let mut r = tier1();
    r.receipts[0].digest[0] ^= 1;
    assert!(!replay(&r).verified);
}

#[test]
fn receipt_of_another_job_rejects() {
    let mut r = tier1();
    r.job_id = [3; 32];
    let report = replay(&r);
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("another job"))
    );
}

#[test]
fn wrong_signer_rejects() {
    // Bound under another key: the receipt's key is not the one the binding recorded.
    let mut r = tier1();
    if let Some(b) = r.binding.as_mut() {
        b.keys[0] = key("//Other").public_key();
    }
    let report = replay(&r);
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("other than the one the provider was bound under")),
        "{report:#?}"
    );
}

#[test]
fn rotated_key_replay_works() {
    // The provider rotated its key after the job was bound: its registration names the new
    // key, the binding the one the receipt was signed with.
    let mut r = tier1();
    r.providers[0].signing_key = key("//Other").public_key();
    let report = replay(&r);
    assert!(report.verified, "{report:#?}");
}

#[test]
fn unbound_provider_rejects() {
    let mut r = tier1();
    if let Some(b) = r.binding.as_mut() {
        b.providers[0] = AccountId32([0xEE; 32]);
    }
    let report = replay(&r);
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("not bound to the job")),
        "{report:#?}"
    );
}

#[test]
fn wrong_settlement_rejects() {
    let mut r = tier1();
    if let Some(Settlement {
        outcome: Outcome::Paid { payees, .. },
        ..
    }) = &mut r.settlement
    {
        payees[0].amount -= 1;
    }
    let report = replay(&r);
    assert!(!report.verified);
    assert!(!report.settlement_reasons.is_empty());

    let mut r = tier1();
    r.job.status = JobStatus::Bound;
    assert!(!replay(&r).verified);
}

#[test]
fn refund_replay_works() {
    let mut r = tier1();
    r.receipts.clear();
    r.job.status = JobStatus::Refunded;
    r.settlement = Some(Settlement {
        outcome: Outcome::Refunded { amount: PRICE },
        at: 101,
    });
    assert!(replay(&r).verified);
    r.settlement = Some(Settlement {
        outcome: Outcome::Refunded { amount: 1 },
        at: 101,
    });
    assert!(!replay(&r).verified);
}

fn simulated_bundle(k: &Ed25519Keypair) -> Vec<u8> {
    let nonce = [5; 32];
    let report_data = binding::report_data(&RustCrypto, &k.public_key(), &[0; 32], &nonce);
    let sim = key("//Simulator");
    let body = SimulatedBody::new(
        report_data,
        [0x11; 48],
        SimulatedKey::Ed25519(sim.public_key()),
    );
    let signature = sim.sign(&body.signed_message()).to_vec();
    let cpu = CpuEvidence::Simulated {
        report: SimulatedReport { body, signature }.to_bytes(),
    };
    EvidenceBundle::new(k.public_key(), nonce, cpu, vec![]).to_bytes()
}

/// `p` as the chain stores it.
fn on_chain(p: &Policy) -> PolicyInfo {
    PolicyInfo {
        id: p.id(),
        document: p.canonical_bytes(),
        owner: None,
        deposit: 0,
        tees: vec![],
        unpinned: None,
        key_lifetime_ms: None,
        users: 1,
        registered_at: 1,
    }
}

fn genesis(name: &str) -> Policy {
    attestation_verifier::policy::genesis::named(name).unwrap()
}

/// A settled tier-3 job under `p` (registered), with a simulated attested key.
fn tier3(p: &Policy) -> JobRecord {
    let policy = p.id();
    let k = key("//Audit3");
    let bundle = simulated_bundle(&k);
    let digest = bundle_digest(&RustCrypto, &bundle);
    let ev = EvidenceRef {
        mode: attestation_verifier::receipt::EvidenceMode::AttestedKey,
        tee: RTee::Simulated,
        digest,
    };
    let b = body([1; 32], [2; 32], &k, 3, ev);
    let attested = AttestedKey {
        tee: TeeKind::Simulated,
        measurement: [0x11; 48],
        policy,
        evidence_digest: digest,
        verified_at_ms: 1_000,
        expires_at_ms: 10_000,
        gpu_count: 0,
        gpu_chip: String::new(),
        gpu_driver: String::new(),
        gpu_vbios: String::new(),
        sealing_key: None,
        previous: None,
    };
    let mut r = record(
        TierTerms::Attested {
            policy,
            fresh_quote: false,
        },
        vec![stored(&k, &b, Some(digest))],
        vec![provider(&k, Some(attested))],
    );
    r.attestations.push(AttestationRecord {
        digest,
        evidence: bundle,
        collateral: vec![],
        policy,
        key: k.public_key(),
        tee: TeeKind::Simulated,
        measurement: [0x11; 48],
        nonce: [5; 32],
        verified_at_ms: 1_000,
        expires_at_ms: 10_000,
        depositor: AccountId32(k.public_key()),
        deposit: 0,
        archived_at: None,
    });
    r.policy = Some(on_chain(p));
    r
}

#[test]
fn tier3_replay_works() {
    let p = genesis(SIMULATED_V1);
    let report = replay(&tier3(&p));
    assert!(report.verified, "{report:#?}");
    assert_eq!(
        report.receipts[0].policy,
        Some(format!("0x{} ({SIMULATED_V1})", hex::encode(p.id())))
    );
    // A registered policy pinning the simulated measurement the evidence carries.
    let mut pinned = genesis(SIMULATED_V1);
    pinned.simulated.measurements = vec![HexBytes(vec![0x11; 48])];
    let report = replay(&tier3(&pinned));
    assert!(report.verified, "{report:#?}");
}

#[test]
fn tier3_tampered_evidence_rejects() {
    let mut r = tier3(&genesis(SIMULATED_V1));
    let n = r.attestations[0].evidence.len();
    // A byte inside the simulator's signature (the bundle ends with its GPU lists).
    let at = r.attestations[0]
        .evidence
        .iter()
        .rposition(|b| *b != 0)
        .unwrap_or(n - 1);
    r.attestations[0].evidence[at] ^= 1;
    assert!(!replay(&r).verified);
}

#[test]
fn tier3_policy_rejects() {
    // Simulated evidence under a policy that does not allow it.
    let report = replay(&tier3(&genesis(crate::policy::CONFIDENTIAL_VM_V1)));
    assert!(!report.verified);
    // A policy pinning another agent build.
    let mut pinned = genesis(SIMULATED_V1);
    pinned.simulated.measurements = vec![HexBytes(vec![0x22; 48])];
    let report = replay(&tier3(&pinned));
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("simulated.measurements")),
        "{report:#?}"
    );
    // A policy the chain does not have.
    let mut r = tier3(&genesis(SIMULATED_V1));
    r.policy = None;
    let report = replay(&r);
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("not registered on chain"))
    );
    // A stored document that is not the one the id names.
    let mut r = tier3(&genesis(SIMULATED_V1));
    if let Some(p) = r.policy.as_mut() {
        p.document = genesis(SEV_SNP_V1).canonical_bytes();
    }
    let report = replay(&r);
    assert!(!report.verified);
    assert!(
        report.receipts[0]
            .reasons
            .iter()
            .any(|x| x.contains("hashes to")),
        "{report:#?}"
    );
}

#[test]
fn tier3_missing_evidence_rejects() {
    let mut r = tier3(&genesis(SIMULATED_V1));
    r.attestations.clear();
    assert!(!replay(&r).verified);
}
