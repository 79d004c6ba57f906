//! Tests of every call's success and failure paths, settlement of all three tiers, and the
//! escrow rules. Each test ends with the pallet's `do_try_state` invariants.

// Tests may panic on broken expectations and index fixed test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use crate::{
    self as market, AttestationFailure, AttestationSubmission, Attestations, Bindings,
    Capabilities, Error, Event, GpuModel, HoldReason, JobId, JobStatus, Jobs, Outcome,
    ProviderClass, Providers, Receipts, Settlements, TeeKind, Tier, TierTerms, TotalEscrow,
    key_proof_message,
    mock::*,
    receipt::{
        EvidenceMode, EvidenceRef, NO_EVIDENCE, RECEIPT_VERSION, ReceiptBody, ReceiptTee, Usage,
        digest as receipt_digest_of, evidence_digest, fresh_quote_nonce, receipt_tee,
    },
};
use codec::Encode;
use polkadot_sdk::{
    frame_support::{
        BoundedVec, assert_noop, assert_ok,
        traits::{
            fungible::{Inspect, InspectHold},
            tokens::{Fortitude, Preservation},
        },
    },
    sp_core::{Pair, ed25519},
    sp_io,
    sp_runtime::{DispatchError, TokenError},
};

// ---- fixtures --------------------------------------------------------------------------------

const BUYER: u64 = 1;
const P1: u64 = 2;
const P2: u64 = 3;
const P3: u64 = 4;
const P4: u64 = 5;
const P5: u64 = 6;
const STRANGER: u64 = 9;
const PRICE: Balance = 1_000;
const SPEC: [u8; 32] = [0x5E; 32];
const JOB: JobId = [0x10; 32];
const JOB2: JobId = [0x20; 32];
const RESULT_A: [u8; 32] = [0xAA; 32];
const RESULT_B: [u8; 32] = [0xBB; 32];
const DEADLINE: u64 = 50;
const GPU: &[u8] = b"NVIDIA H100 80GB HBM3";

fn pair_of(account: u64) -> ed25519::Pair {
    ed25519::Pair::from_seed(&[u8::try_from(account).unwrap(); 32])
}

fn key_of(account: u64) -> [u8; 32] {
    pair_of(account).public().0
}

fn proof_of(account: u64) -> [u8; 64] {
    pair_of(account).sign(&key_proof_message(&account)).0
}

fn caps(tiers: &[Tier], tees: &[TeeKind], gpu: &[u8]) -> Capabilities {
    Capabilities {
        tiers: tiers.to_vec().try_into().unwrap(),
        tee_kinds: tees.to_vec().try_into().unwrap(),
        gpu_model: gpu.to_vec().try_into().unwrap(),
    }
}

fn gpu(model: &[u8]) -> GpuModel {
    model.to_vec().try_into().unwrap()
}

fn now_ms() -> u64 {
    NowMs::get()
}

fn statement(key: [u8; 32], tee: TeeKind, nonce: [u8; 32]) -> MockStatement {
    MockStatement {
        tee,
        key,
        measurement: GOOD_MEASUREMENT,
        nonce,
        debug: false,
        issued_at_ms: now_ms(),
    }
}

fn good_collateral() -> MockCollateral {
    make_collateral(&root_pair(), &platform_pair(), now_ms() + 30 * 24 * HOUR_MS)
}

fn submission(
    evidence: &MockEvidence,
    collateral: &MockCollateral,
    policy: [u8; 32],
) -> AttestationSubmission<Test> {
    AttestationSubmission {
        evidence: evidence.encode().try_into().unwrap(),
        collateral: collateral.encode().try_into().unwrap(),
        policy,
    }
}

fn attestation_of(account: u64, tee: TeeKind) -> AttestationSubmission<Test> {
    let evidence = make_evidence(&platform_pair(), statement(key_of(account), tee, [0; 32]));
    submission(&evidence, &good_collateral(), POLICY_PROD)
}

fn register(account: u64, tiers: &[Tier]) {
    assert_ok!(Market::register_provider(
        RuntimeOrigin::signed(account),
        key_of(account),
        proof_of(account),
        caps(tiers, &[], GPU),
        None,
    ));
}

fn register_attested(account: u64, tee: TeeKind) {
    assert_ok!(Market::register_provider(
        RuntimeOrigin::signed(account),
        key_of(account),
        proof_of(account),
        caps(
            &[Tier::Signed, Tier::Attested],
            &[TeeKind::SevSnp, TeeKind::Tdx],
            GPU
        ),
        Some(attestation_of(account, tee)),
    ));
}

fn attested_policy(fresh_quote: bool) -> TierTerms {
    TierTerms::Attested {
        policy: POLICY_PROD,
        fresh_quote,
    }
}

fn fund(job_id: JobId, terms: TierTerms, price: Balance) {
    assert_ok!(Market::fund_job(
        RuntimeOrigin::signed(BUYER),
        job_id,
        SPEC,
        terms,
        ProviderClass::default(),
        price,
        DEADLINE,
    ));
}

fn bind(job_id: JobId, providers: &[u64]) {
    assert_ok!(Market::bind(
        RuntimeOrigin::signed(DISPATCHER),
        job_id,
        providers.to_vec().try_into().unwrap()
    ));
}

fn body(job_id: JobId, account: u64, tier: Tier, result: [u8; 32]) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id,
        job_spec_hash: SPEC,
        provider: key_of(account),
        tier: tier.code(),
        result_commitment: result,
        output_count: 3,
        started_at_ms: now_ms() - 10_000,
        finished_at_ms: now_ms() - 1_000,
        exit_code: 0,
        usage: Usage {
            wall_ms: 9_000,
            cpu_ms: 17_000,
            peak_memory_bytes: 1 << 30,
            gpu_ms: 8_000,
            gpu_energy_mj: 2_400_000,
        },
        evidence: NO_EVIDENCE,
    }
}

fn sign_with(pair: &ed25519::Pair, body: &ReceiptBody) -> (BoundedVec<u8, MaxReceipt>, [u8; 64]) {
    (
        body.encode().try_into().unwrap(),
        pair.sign(&receipt_digest_of(body)).0,
    )
}

type MaxReceipt = <Test as market::Config>::MaxReceiptLen;

fn submit(
    account: u64,
    job_id: JobId,
    body: &ReceiptBody,
    fresh: Option<AttestationSubmission<Test>>,
) -> polkadot_sdk::frame_support::dispatch::DispatchResultWithPostInfo {
    let (bytes, signature) = sign_with(&pair_of(account), body);
    Market::submit_receipt(
        RuntimeOrigin::signed(account),
        job_id,
        bytes,
        signature,
        fresh,
    )
}

fn held(account: u64) -> Balance {
    Balances::balance_on_hold(&HoldReason::JobEscrow.into(), &account)
}

fn free(account: u64) -> Balance {
    Balances::free_balance(account)
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Market(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn last_event() -> Event<Test> {
    events().pop().expect("a market event")
}

fn status(job_id: JobId) -> JobStatus {
    Jobs::<Test>::get(job_id).unwrap().status
}

/// A bound tier-1 job with provider P1.
fn bound_signed_job() {
    register(P1, &[Tier::Signed]);
    fund(JOB, TierTerms::Signed, PRICE);
    bind(JOB, &[P1]);
}

/// A bound tier-3 job with attested provider P1.
fn bound_attested_job(fresh_quote: bool) {
    register_attested(P1, TeeKind::SevSnp);
    fund(JOB, attested_policy(fresh_quote), PRICE);
    bind(JOB, &[P1]);
}

fn attested_key_body(account: u64) -> ReceiptBody {
    let attested = Providers::<Test>::get(account).unwrap().attested.unwrap();
    let mut b = body(JOB, account, Tier::Attested, RESULT_A);
    b.evidence = EvidenceRef {
        mode: EvidenceMode::AttestedKey,
        tee: receipt_tee(attested.tee),
        digest: attested.evidence_digest,
    };
    b
}

/// A fresh-quote receipt body for `account` on JOB, and evidence bound to it.
fn fresh_quote(account: u64, result: [u8; 32]) -> (ReceiptBody, AttestationSubmission<Test>) {
    let mut b = body(JOB, account, Tier::Attested, result);
    b.evidence = EvidenceRef {
        mode: EvidenceMode::FreshQuote,
        tee: ReceiptTee::SevSnp,
        digest: [0; 32],
    };
    let sub = fresh_evidence_for(&b, MockStatement::clone);
    b.evidence.digest = evidence_digest(&sub.evidence);
    (b, sub)
}

/// Evidence by the provider named in `b`, binding `b`'s fresh-quote nonce, after `edit`.
fn fresh_evidence_for(
    b: &ReceiptBody,
    edit: impl Fn(&MockStatement) -> MockStatement,
) -> AttestationSubmission<Test> {
    let st = statement(b.provider, TeeKind::SevSnp, fresh_quote_nonce(b));
    let evidence = make_evidence(&platform_pair(), edit(&st));
    submission(&evidence, &good_collateral(), [0; 32])
}

// ---- register_provider -----------------------------------------------------------------------

#[test]
fn register_provider_works() {
    build_and_execute(|| {
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Signed, Tier::Quorum], &[], GPU),
            None,
        ));
        let info = Providers::<Test>::get(P1).unwrap();
        assert_eq!(info.signing_key, key_of(P1));
        assert_eq!(info.capabilities.gpu_model, gpu(GPU));
        assert_eq!(info.attested, None);
        assert_eq!(info.registered_at, 1);
        assert_eq!(info.active_jobs, 0);
        assert_eq!(
            last_event(),
            Event::ProviderRegistered {
                provider: P1,
                signing_key: key_of(P1),
                tiers: vec![Tier::Signed, Tier::Quorum].try_into().unwrap(),
                attested: None,
            }
        );
    });
}

#[test]
fn register_attested_provider_works() {
    build_and_execute(|| {
        let sub = attestation_of(P1, TeeKind::Tdx);
        let digest = evidence_digest(&sub.evidence);
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Attested], &[TeeKind::Tdx], GPU),
            Some(sub.clone()),
        ));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.tee, TeeKind::Tdx);
        assert_eq!(attested.measurement, GOOD_MEASUREMENT);
        assert_eq!(attested.policy, POLICY_PROD);
        assert_eq!(attested.evidence_digest, digest);
        assert_eq!(attested.verified_at_ms, now_ms());
        // The evidence's own lifetime is shorter than MaxAttestationValidityMs.
        assert_eq!(attested.expires_at_ms, now_ms() + EVIDENCE_LIFETIME_MS);
        let record = Attestations::<Test>::get(digest).unwrap();
        assert_eq!(record.evidence, sub.evidence);
        assert_eq!(record.collateral, sub.collateral);
        assert_eq!(record.key, key_of(P1));
        assert_eq!(
            last_event(),
            Event::ProviderRegistered {
                provider: P1,
                signing_key: key_of(P1),
                tiers: vec![Tier::Attested].try_into().unwrap(),
                attested: Some((TeeKind::Tdx, now_ms() + EVIDENCE_LIFETIME_MS)),
            }
        );
    });
}

#[test]
fn register_attested_provider_expiry_is_capped_works() {
    build_and_execute(|| {
        // Evidence issued in the future would outlive the cap; the verifier refuses it, so cap
        // through a long-lived policy instead: simulated evidence under the simulated policy.
        let evidence = make_evidence(
            &platform_pair(),
            MockStatement {
                measurement: BAD_MEASUREMENT,
                ..statement(key_of(P1), TeeKind::Simulated, [0; 32])
            },
        );
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Attested], &[TeeKind::Simulated], b""),
            Some(submission(&evidence, &good_collateral(), POLICY_SIMULATED)),
        ));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.tee, TeeKind::Simulated);
        assert!(attested.expires_at_ms <= now_ms() + 7 * 24 * HOUR_MS);
    });
}

#[test]
fn register_provider_origin_rejects() {
    build_and_execute(|| {
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::register_provider(
                    origin,
                    key_of(P1),
                    proof_of(P1),
                    caps(&[Tier::Signed], &[], b""),
                    None
                ),
                DispatchError::BadOrigin
            );
        }
    });
}

#[test]
fn register_provider_bad_input_rejects() {
    build_and_execute(|| {
        let reg =
            |caps: Capabilities, proof: [u8; 64], att: Option<AttestationSubmission<Test>>| {
                Market::register_provider(RuntimeOrigin::signed(P1), key_of(P1), proof, caps, att)
            };
        assert_noop!(
            reg(caps(&[], &[], b""), proof_of(P1), None),
            Error::<Test>::NoTiers
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed, Tier::Signed], &[], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::DuplicateTier
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed], &[TeeKind::Tdx, TeeKind::Tdx], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::DuplicateTeeKind
        );
        assert_noop!(
            reg(
                caps(&[Tier::Attested], &[TeeKind::SevSnp], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::AttestationRequired
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed], &[TeeKind::SevSnp], b""),
                proof_of(P1),
                Some(attestation_of(P1, TeeKind::SevSnp))
            ),
            Error::<Test>::UnexpectedAttestation
        );
        // A proof by another key, and a proof for another account.
        assert_noop!(
            reg(caps(&[Tier::Signed], &[], b""), proof_of(P2), None),
            Error::<Test>::BadKeyProof
        );
        let wrong_account = pair_of(P1).sign(&key_proof_message(&P2)).0;
        assert_noop!(
            reg(caps(&[Tier::Signed], &[], b""), wrong_account, None),
            Error::<Test>::BadKeyProof
        );
    });
}

#[test]
fn register_provider_twice_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        assert_noop!(
            Market::register_provider(
                RuntimeOrigin::signed(P1),
                key_of(P1),
                proof_of(P1),
                caps(&[Tier::Quorum], &[], b""),
                None
            ),
            Error::<Test>::AlreadyRegistered
        );
    });
}

fn register_with(sub: AttestationSubmission<Test>) -> polkadot_sdk::sp_runtime::DispatchResult {
    Market::register_provider(
        RuntimeOrigin::signed(P1),
        key_of(P1),
        proof_of(P1),
        caps(&[Tier::Attested], &[TeeKind::SevSnp], b""),
        Some(sub),
    )
}

fn rejected(reason: AttestationFailure) -> Error<Test> {
    Error::<Test>::AttestationRejected { reason }
}

#[test]
fn register_attested_provider_bad_evidence_rejects() {
    build_and_execute(|| {
        let good = make_evidence(
            &platform_pair(),
            statement(key_of(P1), TeeKind::SevSnp, [0; 32]),
        );
        let coll = good_collateral();

        // Tampered evidence: a measurement changed after signing.
        let mut tampered = good.clone();
        tampered.statement.measurement[0] ^= 1;
        assert_noop!(
            register_with(submission(&tampered, &coll, POLICY_PROD)),
            rejected(AttestationFailure::BadSignature)
        );
        // Tampered signature bytes.
        let mut bad_sig = good.clone();
        bad_sig.signature[10] ^= 0x80;
        assert_noop!(
            register_with(submission(&bad_sig, &coll, POLICY_PROD)),
            rejected(AttestationFailure::BadSignature)
        );
        // Evidence signed by a platform key the root never endorsed.
        let rogue = ed25519::Pair::from_seed(&[0x66; 32]);
        let rogue_evidence = make_evidence(&rogue, statement(key_of(P1), TeeKind::SevSnp, [0; 32]));
        assert_noop!(
            register_with(submission(&rogue_evidence, &coll, POLICY_PROD)),
            rejected(AttestationFailure::BadSignature)
        );
        // ... with collateral endorsing it by a rogue root.
        let rogue_coll = make_collateral(&rogue, &rogue, now_ms() + HOUR_MS);
        assert_noop!(
            register_with(submission(&rogue_evidence, &rogue_coll, POLICY_PROD)),
            rejected(AttestationFailure::UntrustedSigner)
        );
        // Expired collateral.
        let old_coll = make_collateral(&root_pair(), &platform_pair(), now_ms() - 1);
        assert_noop!(
            register_with(submission(&good, &old_coll, POLICY_PROD)),
            rejected(AttestationFailure::OutsideValidity)
        );
        // Stale evidence.
        let stale = make_evidence(
            &platform_pair(),
            MockStatement {
                issued_at_ms: now_ms() - EVIDENCE_LIFETIME_MS,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&stale, &coll, POLICY_PROD)),
            rejected(AttestationFailure::OutsideValidity)
        );
        // Garbage.
        let garbage = AttestationSubmission::<Test> {
            evidence: vec![1, 2, 3].try_into().unwrap(),
            collateral: coll.encode().try_into().unwrap(),
            policy: POLICY_PROD,
        };
        assert_noop!(
            register_with(garbage),
            rejected(AttestationFailure::Malformed)
        );
        // Policy appraisal.
        assert_noop!(
            register_with(submission(&good, &coll, [0x77; 32])),
            rejected(AttestationFailure::UnknownPolicy)
        );
        let bad_measurement = make_evidence(
            &platform_pair(),
            MockStatement {
                measurement: BAD_MEASUREMENT,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&bad_measurement, &coll, POLICY_PROD)),
            rejected(AttestationFailure::MeasurementRejected)
        );
        let debug = make_evidence(
            &platform_pair(),
            MockStatement {
                debug: true,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&debug, &coll, POLICY_PROD)),
            rejected(AttestationFailure::DebugEnabled)
        );
        let simulated = make_evidence(
            &platform_pair(),
            statement(key_of(P1), TeeKind::Simulated, [0; 32]),
        );
        assert_noop!(
            register_with(submission(&simulated, &coll, POLICY_PROD)),
            rejected(AttestationFailure::SimulatedRejected)
        );
        assert_noop!(
            register_with(submission(&good, &coll, POLICY_TDX_ONLY)),
            rejected(AttestationFailure::UnsupportedTee)
        );
    });
}

#[test]
fn register_attested_provider_binding_rejects() {
    build_and_execute(|| {
        // Evidence attesting another key than the one registered.
        assert_noop!(
            register_with(attestation_of(P2, TeeKind::SevSnp)),
            Error::<Test>::AttestedKeyMismatch
        );
        // Evidence from a TEE kind the provider does not list.
        assert_noop!(
            register_with(attestation_of(P1, TeeKind::Tdx)),
            Error::<Test>::TeeKindNotOffered
        );
        assert!(Attestations::<Test>::iter().next().is_none());
    });
}

// ---- fund_job --------------------------------------------------------------------------------

#[test]
fn fund_job_works() {
    build_and_execute(|| {
        let issuance = Balances::total_issuance();
        let class = ProviderClass {
            tee_kinds: vec![TeeKind::SevSnp].try_into().unwrap(),
            gpu_model: gpu(GPU),
        };
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            attested_policy(false),
            class.clone(),
            PRICE,
            DEADLINE,
        ));
        assert_eq!(held(BUYER), PRICE);
        assert_eq!(free(BUYER), INITIAL_BALANCE - PRICE);
        assert_eq!(TotalEscrow::<Test>::get(), PRICE);
        assert_eq!(Balances::total_issuance(), issuance);
        let job = Jobs::<Test>::get(JOB).unwrap();
        assert_eq!(job.buyer, BUYER);
        assert_eq!(job.spec_hash, SPEC);
        assert_eq!(job.class, class);
        assert_eq!(job.price, PRICE);
        assert_eq!(job.deadline, DEADLINE);
        assert_eq!(job.status, JobStatus::Funded);
        assert_eq!(
            last_event(),
            Event::JobFunded {
                job_id: JOB,
                buyer: BUYER,
                tier: Tier::Attested,
                price: PRICE,
                deadline: DEADLINE
            }
        );
        // A second job from the same buyer adds to the same hold.
        fund(JOB2, TierTerms::Quorum { k: 2, n: 3 }, 500);
        assert_eq!(held(BUYER), PRICE + 500);
        assert_eq!(TotalEscrow::<Test>::get(), PRICE + 500);
    });
}

#[test]
fn fund_job_bad_terms_rejects() {
    build_and_execute(|| {
        let f = |job_id: JobId, terms: TierTerms, price: Balance, deadline: u64| {
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                job_id,
                SPEC,
                terms,
                ProviderClass::default(),
                price,
                deadline,
            )
        };
        assert_noop!(
            f(JOB, TierTerms::Signed, 9, DEADLINE),
            Error::<Test>::PriceTooLow
        );
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, 1),
            Error::<Test>::DeadlineInPast
        );
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, 1_002),
            Error::<Test>::DeadlineTooFar
        );
        assert_ok!(f(JOB2, TierTerms::Signed, PRICE, 1_001));
        for (k, n) in [(0, 1), (3, 2), (6, 6), (2, 4), (1, 2), (3, 6)] {
            assert_noop!(
                f(JOB, TierTerms::Quorum { k, n }, PRICE, DEADLINE),
                Error::<Test>::InvalidQuorum
            );
        }
        // Tier 2 needs at least one unit per paid provider.
        MinimumPrice::set(1);
        assert_noop!(
            f(JOB, TierTerms::Quorum { k: 3, n: 5 }, 2, DEADLINE),
            Error::<Test>::PriceTooLow
        );
        MinimumPrice::set(10);
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            TierTerms::Quorum { k: 3, n: 5 },
            ProviderClass::default(),
            10,
            DEADLINE
        ));
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, DEADLINE),
            Error::<Test>::JobExists
        );
        let dup = ProviderClass {
            tee_kinds: vec![TeeKind::Tdx, TeeKind::Tdx].try_into().unwrap(),
            gpu_model: gpu(b""),
        };
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                [9; 32],
                SPEC,
                TierTerms::Signed,
                dup,
                PRICE,
                DEADLINE
            ),
            Error::<Test>::DuplicateTeeKind
        );
    });
}

#[test]
fn fund_job_insufficient_balance_rejects() {
    build_and_execute(|| {
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                JOB,
                SPEC,
                TierTerms::Signed,
                ProviderClass::default(),
                INITIAL_BALANCE + 1,
                DEADLINE
            ),
            TokenError::FundsUnavailable
        );
        // An account that does not exist has nothing to hold.
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(42),
                JOB,
                SPEC,
                TierTerms::Signed,
                ProviderClass::default(),
                PRICE,
                DEADLINE
            ),
            TokenError::FundsUnavailable
        );
    });
}

#[test]
fn fund_job_origin_rejects() {
    build_and_execute(|| {
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::fund_job(
                    origin,
                    JOB,
                    SPEC,
                    TierTerms::Signed,
                    ProviderClass::default(),
                    PRICE,
                    DEADLINE
                ),
                DispatchError::BadOrigin
            );
        }
    });
}

// ---- bind ------------------------------------------------------------------------------------

#[test]
fn bind_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3] {
            register(p, &[Tier::Quorum]);
        }
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE);
        System::set_block_number(7);
        bind(JOB, &[P3, P1, P2]);
        let binding = Bindings::<Test>::get(JOB).unwrap();
        assert_eq!(binding.providers.to_vec(), vec![P3, P1, P2]);
        assert_eq!(binding.bound_at, 7);
        assert_eq!(status(JOB), JobStatus::Bound);
        for p in [P1, P2, P3] {
            assert_eq!(Providers::<Test>::get(p).unwrap().active_jobs, 1);
        }
        assert_eq!(
            last_event(),
            Event::JobBound {
                job_id: JOB,
                providers: vec![P3, P1, P2].try_into().unwrap()
            }
        );
    });
}

#[test]
fn bind_origin_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        fund(JOB, TierTerms::Signed, PRICE);
        for origin in [
            RuntimeOrigin::root(),
            RuntimeOrigin::signed(BUYER),
            RuntimeOrigin::signed(P1),
            RuntimeOrigin::none(),
        ] {
            assert_noop!(
                Market::bind(origin, JOB, vec![P1].try_into().unwrap()),
                DispatchError::BadOrigin
            );
        }
    });
}

fn try_bind(job_id: JobId, providers: &[u64]) -> polkadot_sdk::sp_runtime::DispatchResult {
    Market::bind(
        RuntimeOrigin::signed(DISPATCHER),
        job_id,
        providers.to_vec().try_into().unwrap(),
    )
}

#[test]
fn bind_job_state_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::UnknownJob);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(try_bind(JOB, &[]), Error::<Test>::WrongProviderCount);
        assert_noop!(try_bind(JOB, &[P1, P2]), Error::<Test>::WrongProviderCount);
        bind(JOB, &[P1]);
        assert_noop!(try_bind(JOB, &[P2]), Error::<Test>::NotBindable);
        fund(JOB2, TierTerms::Signed, PRICE);
        System::set_block_number(DEADLINE + 1);
        assert_noop!(try_bind(JOB2, &[P2]), Error::<Test>::JobExpired);
    });
}

#[test]
fn bind_quorum_providers_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Quorum]);
        register(P2, &[Tier::Quorum]);
        register(P3, &[Tier::Signed]);
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE);
        assert_noop!(try_bind(JOB, &[P1, P2]), Error::<Test>::WrongProviderCount);
        assert_noop!(
            try_bind(JOB, &[P1, P2, P1]),
            Error::<Test>::DuplicateProvider
        );
        assert_noop!(
            try_bind(JOB, &[P1, P2, STRANGER]),
            Error::<Test>::NotRegistered
        );
        assert_noop!(try_bind(JOB, &[P1, P2, P3]), Error::<Test>::TierNotOffered);
    });
}

#[test]
fn bind_provider_class_rejects() {
    build_and_execute(|| {
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Signed], &[TeeKind::Tdx], b"NVIDIA A100"),
            None
        ));
        let fund_class = |job_id: JobId, tees: &[TeeKind], model: &[u8]| {
            assert_ok!(Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                job_id,
                SPEC,
                TierTerms::Signed,
                ProviderClass {
                    tee_kinds: tees.to_vec().try_into().unwrap(),
                    gpu_model: gpu(model)
                },
                PRICE,
                DEADLINE
            ));
        };
        fund_class(JOB, &[], GPU);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::GpuModelMismatch);
        fund_class(JOB2, &[TeeKind::SevSnp], b"");
        assert_noop!(try_bind(JOB2, &[P1]), Error::<Test>::TeeKindMismatch);
        fund_class([3; 32], &[TeeKind::SevSnp, TeeKind::Tdx], b"NVIDIA A100");
        assert_ok!(try_bind([3; 32], &[P1]));
    });
}

#[test]
fn bind_attested_provider_rejects() {
    build_and_execute(|| {
        register(P2, &[Tier::Signed, Tier::Quorum]);
        register_attested(P1, TeeKind::SevSnp);
        fund(JOB, attested_policy(false), PRICE);
        // Not serving tier 3.
        assert_noop!(try_bind(JOB, &[P2]), Error::<Test>::TierNotOffered);
        // Attested under another policy than the job's.
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB2,
            SPEC,
            TierTerms::Attested {
                policy: POLICY_TDX_ONLY,
                fresh_quote: false
            },
            ProviderClass::default(),
            PRICE,
            DEADLINE
        ));
        assert_noop!(try_bind(JOB2, &[P1]), Error::<Test>::PolicyMismatch);
        // A TEE kind the job does not accept.
        let tdx_only = [3; 32];
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            tdx_only,
            SPEC,
            attested_policy(false),
            ProviderClass {
                tee_kinds: vec![TeeKind::Tdx].try_into().unwrap(),
                gpu_model: gpu(b"")
            },
            PRICE,
            DEADLINE
        ));
        assert_noop!(try_bind(tdx_only, &[P1]), Error::<Test>::TeeKindMismatch);
        // Expired attested key.
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::AttestationExpired);
    });
}

// ---- tier 1 ----------------------------------------------------------------------------------

#[test]
fn submit_receipt_tier1_settles_works() {
    build_and_execute(|| {
        bound_signed_job();
        let issuance = Balances::total_issuance();
        let provider_before = free(P1);
        let b = body(JOB, P1, Tier::Signed, RESULT_A);
        let (bytes, signature) = sign_with(&pair_of(P1), &b);
        System::set_block_number(9);
        assert_ok!(Market::submit_receipt(
            RuntimeOrigin::signed(P1),
            JOB,
            bytes.clone(),
            signature,
            None
        ));

        assert_eq!(held(BUYER), 0);
        assert_eq!(free(BUYER), INITIAL_BALANCE - PRICE);
        assert_eq!(free(P1), provider_before + PRICE);
        assert_eq!(Balances::total_issuance(), issuance);
        assert_eq!(TotalEscrow::<Test>::get(), 0);
        assert_eq!(status(JOB), JobStatus::Settled);
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 0);

        let stored = Receipts::<Test>::get(JOB, P1).unwrap();
        assert_eq!(stored.body, bytes);
        assert_eq!(stored.signature, signature);
        assert_eq!(stored.digest, receipt_digest_of(&b));
        assert_eq!(stored.result_commitment, RESULT_A);
        assert_eq!(stored.evidence_digest, None);
        assert_eq!(stored.submitted_at, 9);
        let settlement = Settlements::<Test>::get(JOB).unwrap();
        assert_eq!(settlement.at, 9);
        assert_eq!(
            settlement.outcome,
            Outcome::Paid {
                result_commitment: RESULT_A,
                payees: vec![(P1, PRICE)].try_into().unwrap()
            }
        );
        let evs = events();
        assert_eq!(
            evs[evs.len() - 2],
            Event::ReceiptAccepted {
                job_id: JOB,
                provider: P1,
                receipt_digest: receipt_digest_of(&b),
                result_commitment: RESULT_A
            }
        );
        assert_eq!(
            evs[evs.len() - 1],
            Event::JobSettled {
                job_id: JOB,
                result_commitment: RESULT_A,
                payees: vec![(P1, PRICE)].try_into().unwrap()
            }
        );
        // The audit record stays.
        assert!(Jobs::<Test>::contains_key(JOB) && Bindings::<Test>::contains_key(JOB));
    });
}

#[test]
fn submit_receipt_state_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        let b = body(JOB, P1, Tier::Signed, RESULT_A);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::UnknownJob);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::JobNotBound);
        bind(JOB, &[P1]);
        // Another registered provider, not bound to the job, even with a body naming itself.
        assert_noop!(
            submit(P2, JOB, &body(JOB, P2, Tier::Signed, RESULT_A), None),
            Error::<Test>::NotBoundProvider
        );
        // Someone relaying P1's correctly signed receipt is not P1.
        let (bytes, sig) = sign_with(&pair_of(P1), &b);
        assert_noop!(
            Market::submit_receipt(
                RuntimeOrigin::signed(STRANGER),
                JOB,
                bytes.clone(),
                sig,
                None
            ),
            Error::<Test>::NotBoundProvider
        );
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::submit_receipt(origin, JOB, bytes.clone(), sig, None),
                DispatchError::BadOrigin
            );
        }
        System::set_block_number(DEADLINE + 1);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::JobExpired);
    });
}

#[test]
fn submit_receipt_body_rejects() {
    build_and_execute(|| {
        bound_signed_job();
        let good = body(JOB, P1, Tier::Signed, RESULT_A);
        let check = |b: ReceiptBody, e: Error<Test>| {
            assert_noop!(submit(P1, JOB, &b, None), e);
        };
        check(
            ReceiptBody { version: 2, ..good },
            Error::<Test>::UnsupportedReceiptVersion,
        );
        check(
            ReceiptBody {
                job_id: JOB2,
                ..good
            },
            Error::<Test>::ReceiptJobMismatch,
        );
        check(
            ReceiptBody {
                job_spec_hash: [0; 32],
                ..good
            },
            Error::<Test>::ReceiptJobMismatch,
        );
        check(
            ReceiptBody { tier: 2, ..good },
            Error::<Test>::ReceiptTierMismatch,
        );
        check(
            ReceiptBody {
                started_at_ms: good.finished_at_ms + 1,
                ..good
            },
            Error::<Test>::InvalidTiming,
        );
        check(
            ReceiptBody {
                finished_at_ms: now_ms() + 60_001,
                started_at_ms: now_ms(),
                ..good
            },
            Error::<Test>::InvalidTiming,
        );
        check(
            ReceiptBody {
                evidence: EvidenceRef {
                    mode: EvidenceMode::AttestedKey,
                    tee: ReceiptTee::SevSnp,
                    digest: [1; 32],
                },
                ..good
            },
            Error::<Test>::UnexpectedEvidence,
        );
        // Evidence mode none, but a TEE or a digest filled in.
        check(
            ReceiptBody {
                evidence: EvidenceRef {
                    mode: EvidenceMode::None,
                    tee: ReceiptTee::SevSnp,
                    digest: [0; 32],
                },
                ..good
            },
            Error::<Test>::UnexpectedEvidence,
        );
        check(
            ReceiptBody {
                evidence: EvidenceRef {
                    mode: EvidenceMode::None,
                    tee: ReceiptTee::None,
                    digest: [1; 32],
                },
                ..good
            },
            Error::<Test>::UnexpectedEvidence,
        );
        // A body naming another key than the provider's registered one, signed by that key.
        let other = ReceiptBody {
            provider: key_of(P2),
            ..good
        };
        let (bytes, sig) = sign_with(&pair_of(P2), &other);
        assert_noop!(
            Market::submit_receipt(RuntimeOrigin::signed(P1), JOB, bytes, sig, None),
            Error::<Test>::WrongSigner
        );
        // Fresh evidence on a tier-1 receipt.
        assert_noop!(
            submit(P1, JOB, &good, Some(attestation_of(P1, TeeKind::SevSnp))),
            Error::<Test>::UnexpectedEvidence
        );
        // Drift within the allowance is fine.
        assert_ok!(submit(
            P1,
            JOB,
            &ReceiptBody {
                finished_at_ms: now_ms() + 60_000,
                started_at_ms: now_ms(),
                ..good
            },
            None
        ));
    });
}

#[test]
fn submit_receipt_encoding_rejects() {
    build_and_execute(|| {
        bound_signed_job();
        let b = body(JOB, P1, Tier::Signed, RESULT_A);
        let (bytes, sig) = sign_with(&pair_of(P1), &b);
        // Trailing bytes.
        let mut long = bytes.to_vec();
        long.push(0);
        assert_noop!(
            Market::submit_receipt(
                RuntimeOrigin::signed(P1),
                JOB,
                long.try_into().unwrap(),
                sig,
                None
            ),
            Error::<Test>::MalformedReceipt
        );
        // Truncated.
        let short = bytes[..bytes.len() - 1].to_vec();
        assert_noop!(
            Market::submit_receipt(
                RuntimeOrigin::signed(P1),
                JOB,
                short.try_into().unwrap(),
                sig,
                None
            ),
            Error::<Test>::MalformedReceipt
        );
        // One byte of the signed body changed (the output count).
        let mut tampered = bytes.to_vec();
        tampered[1 + 32 * 3 + 1 + 32] ^= 1;
        assert_noop!(
            Market::submit_receipt(
                RuntimeOrigin::signed(P1),
                JOB,
                tampered.try_into().unwrap(),
                sig,
                None
            ),
            Error::<Test>::BadSignature
        );
        // Signature flipped.
        let mut bad = sig;
        bad[0] ^= 1;
        assert_noop!(
            Market::submit_receipt(RuntimeOrigin::signed(P1), JOB, bytes.clone(), bad, None),
            Error::<Test>::BadSignature
        );
        // Signed by another key while naming the provider's key.
        let (_, foreign) = sign_with(&pair_of(P2), &b);
        assert_noop!(
            Market::submit_receipt(RuntimeOrigin::signed(P1), JOB, bytes.clone(), foreign, None),
            Error::<Test>::BadSignature
        );
        // Signed over the plain body instead of the domain-separated digest.
        let plain = pair_of(P1).sign(&sp_io::hashing::sha2_256(&b.encode())).0;
        assert_noop!(
            Market::submit_receipt(RuntimeOrigin::signed(P1), JOB, bytes, plain, None),
            Error::<Test>::BadSignature
        );
    });
}

#[test]
fn submit_receipt_same_receipt_twice_rejects() {
    build_and_execute(|| {
        bound_signed_job();
        let b = body(JOB, P1, Tier::Signed, RESULT_A);
        assert_ok!(submit(P1, JOB, &b, None));
        let paid = free(P1);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::JobClosed);
        assert_eq!(free(P1), paid);
    });
}

#[test]
fn submit_receipt_racing_in_one_block_rejects() {
    build_and_execute(|| {
        bound_signed_job();
        fund(JOB2, TierTerms::Signed, PRICE);
        // Two different receipts for one job in the same block: only the first settles.
        let first = body(JOB, P1, Tier::Signed, RESULT_A);
        let second = body(JOB, P1, Tier::Signed, RESULT_B);
        assert_ok!(submit(P1, JOB, &first, None));
        assert_noop!(submit(P1, JOB, &second, None), Error::<Test>::JobClosed);
        assert_eq!(
            Settlements::<Test>::get(JOB).unwrap().outcome,
            Outcome::Paid {
                result_commitment: RESULT_A,
                payees: vec![(P1, PRICE)].try_into().unwrap()
            }
        );
        // The second job's escrow is untouched.
        assert_eq!(held(BUYER), PRICE);
    });
}

#[test]
fn submit_receipt_settlement_is_atomic_works() {
    build_and_execute(|| {
        use polkadot_sdk::frame_support::traits::{fungible::MutateHold, tokens::Precision};
        bound_signed_job();
        // Break the currency under the pallet: release the escrow hold behind its back, so the
        // payout fails after the receipt verified. Nothing of the receipt may remain.
        let reason: RuntimeHoldReason = HoldReason::JobEscrow.into();
        assert_ok!(<Balances as MutateHold<u64>>::release(
            &reason,
            &BUYER,
            PRICE,
            Precision::Exact
        ));
        let b = body(JOB, P1, Tier::Signed, RESULT_A);
        // pallet-balances reports the missing held funds as frozen.
        assert_noop!(submit(P1, JOB, &b, None), TokenError::Frozen);
        assert!(Receipts::<Test>::get(JOB, P1).is_none());
        assert_eq!(status(JOB), JobStatus::Bound);
        // Restore the hold so the invariants hold again, then the same receipt settles.
        assert_ok!(<Balances as MutateHold<u64>>::hold(&reason, &BUYER, PRICE));
        assert_ok!(submit(P1, JOB, &b, None));
    });
}

// ---- tier 2 ----------------------------------------------------------------------------------

fn quorum_job(k: u32, n: u32, price: Balance, providers: &[u64]) {
    for p in providers {
        register(*p, &[Tier::Quorum]);
    }
    fund(JOB, TierTerms::Quorum { k, n }, price);
    bind(JOB, providers);
}

#[test]
fn submit_receipt_quorum_with_disagreement_works() {
    build_and_execute(|| {
        quorum_job(2, 3, 101, &[P1, P2, P3]);
        let issuance = Balances::total_issuance();
        let before: Vec<Balance> = [P1, P2, P3].iter().map(|p| free(*p)).collect();

        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Bound);
        assert_eq!(
            last_event(),
            Event::ReceiptAccepted {
                job_id: JOB,
                provider: P1,
                receipt_digest: receipt_digest_of(&body(JOB, P1, Tier::Quorum, RESULT_A)),
                result_commitment: RESULT_A
            }
        );
        // P2 disagrees: no quorum yet.
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Quorum, RESULT_B),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Bound);
        assert_eq!(held(BUYER), 101);
        // P3 agrees with P1: two of three, settled. 101 / 2 = 50 rest 1, the first in
        // binding order gets the odd unit.
        assert_ok!(submit(
            P3,
            JOB,
            &body(JOB, P3, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Settled);
        assert_eq!(free(P1), before[0] + 51);
        assert_eq!(free(P2), before[1]);
        assert_eq!(free(P3), before[2] + 50);
        assert_eq!(held(BUYER), 0);
        assert_eq!(Balances::total_issuance(), issuance);
        let payees: BoundedVec<(u64, Balance), _> = vec![(P1, 51), (P3, 50)].try_into().unwrap();
        assert_eq!(
            last_event(),
            Event::JobSettled {
                job_id: JOB,
                result_commitment: RESULT_A,
                payees: payees.clone()
            }
        );
        assert_eq!(
            Settlements::<Test>::get(JOB).unwrap().outcome,
            Outcome::Paid {
                result_commitment: RESULT_A,
                payees
            }
        );
        // The minority receipt stays on record, unpaid.
        assert_eq!(
            Receipts::<Test>::get(JOB, P2).unwrap().result_commitment,
            RESULT_B
        );
        for p in [P1, P2, P3] {
            assert_eq!(Providers::<Test>::get(p).unwrap().active_jobs, 0);
        }
    });
}

#[test]
fn submit_receipt_quorum_rounding_follows_binding_order_works() {
    build_and_execute(|| {
        // 3 of 5 with price 1_001: 333 each, remainder 2 to the first two matching in binding
        // order (P4 before P2 before P1).
        quorum_job(3, 5, 1_001, &[P4, P5, P2, P3, P1]);
        let before: Vec<Balance> = [P1, P2, P3, P4, P5].iter().map(|p| free(*p)).collect();
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Quorum, RESULT_A),
            None
        ));
        assert_ok!(submit(
            P3,
            JOB,
            &body(JOB, P3, Tier::Quorum, RESULT_B),
            None
        ));
        assert_ok!(submit(
            P5,
            JOB,
            &body(JOB, P5, Tier::Quorum, RESULT_B),
            None
        ));
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Bound);
        assert_ok!(submit(
            P4,
            JOB,
            &body(JOB, P4, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Settled);
        let gained: Vec<Balance> = [P1, P2, P3, P4, P5]
            .iter()
            .zip(&before)
            .map(|(p, b)| free(*p) - b)
            .collect();
        assert_eq!(gained, vec![333, 334, 0, 334, 0]);
        assert_eq!(gained.iter().sum::<Balance>(), 1_001);
    });
}

#[test]
fn submit_receipt_quorum_late_and_duplicate_rejects() {
    build_and_execute(|| {
        quorum_job(2, 3, PRICE, &[P1, P2, P3]);
        let a1 = body(JOB, P1, Tier::Quorum, RESULT_A);
        assert_ok!(submit(P1, JOB, &a1, None));
        // The same provider again, with the same or another result.
        assert_noop!(
            submit(P1, JOB, &a1, None),
            Error::<Test>::ReceiptAlreadySubmitted
        );
        assert_noop!(
            submit(P1, JOB, &body(JOB, P1, Tier::Quorum, RESULT_B), None),
            Error::<Test>::ReceiptAlreadySubmitted
        );
        // Two matching receipts racing in one block: the second of them settles, the third
        // (also matching) arrives after settlement and is refused and unpaid.
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Quorum, RESULT_A),
            None
        ));
        let p3 = free(P3);
        assert_noop!(
            submit(P3, JOB, &body(JOB, P3, Tier::Quorum, RESULT_A), None),
            Error::<Test>::JobClosed
        );
        assert_eq!(free(P3), p3);
        assert!(Receipts::<Test>::get(JOB, P3).is_none());
    });
}

#[test]
fn submit_receipt_quorum_without_agreement_refunds_works() {
    build_and_execute(|| {
        quorum_job(2, 3, PRICE, &[P1, P2, P3]);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Quorum, RESULT_A),
            None
        ));
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Quorum, RESULT_B),
            None
        ));
        assert_ok!(submit(
            P3,
            JOB,
            &body(JOB, P3, Tier::Quorum, [0xCC; 32]),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Bound);
        System::set_block_number(DEADLINE + 1);
        assert_ok!(Market::refund_expired(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(free(BUYER), INITIAL_BALANCE);
        assert_eq!(status(JOB), JobStatus::Refunded);
        for p in [P1, P2, P3] {
            assert_eq!(Providers::<Test>::get(p).unwrap().active_jobs, 0);
            assert!(Receipts::<Test>::contains_key(JOB, p));
        }
    });
}

// ---- tier 3, attested key --------------------------------------------------------------------

#[test]
fn submit_receipt_attested_key_works() {
    build_and_execute(|| {
        bound_attested_job(false);
        let b = attested_key_body(P1);
        let before = free(P1);
        assert_ok!(submit(P1, JOB, &b, None));
        assert_eq!(free(P1), before + PRICE);
        assert_eq!(status(JOB), JobStatus::Settled);
        let stored = Receipts::<Test>::get(JOB, P1).unwrap();
        assert_eq!(stored.evidence_digest, Some(b.evidence.digest));
        // The evidence behind the key is on record for replay.
        assert_eq!(
            Attestations::<Test>::get(b.evidence.digest).unwrap().key,
            key_of(P1)
        );
        assert_eq!(
            last_event(),
            Event::JobSettled {
                job_id: JOB,
                result_commitment: RESULT_A,
                payees: vec![(P1, PRICE)].try_into().unwrap()
            }
        );
    });
}

#[test]
fn submit_receipt_attested_key_expired_rejects() {
    build_and_execute(|| {
        bound_attested_job(false);
        let b = attested_key_body(P1);
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::AttestationExpired);
        NowMs::set(now_ms() - 1);
        assert_ok!(submit(P1, JOB, &b, None));
    });
}

#[test]
fn submit_receipt_attested_key_evidence_rejects() {
    build_and_execute(|| {
        bound_attested_job(false);
        let good = attested_key_body(P1);
        let mut b = good.clone();
        b.evidence.digest[0] ^= 1;
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::EvidenceMismatch);
        let mut b = good.clone();
        b.evidence.tee = ReceiptTee::Tdx;
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::EvidenceMismatch);
        // An evidence mode the receipt format does not define (the reference is the body's
        // last 34 bytes: mode, TEE, digest), signed by the provider, does not decode.
        let mut bytes = good.encode();
        bytes[crate::receipt::RECEIPT_BODY_LEN - 34] = 3;
        let sig = pair_of(P1)
            .sign(&crate::receipt::digest_of_encoded(&bytes))
            .0;
        assert_noop!(
            Market::submit_receipt(
                RuntimeOrigin::signed(P1),
                JOB,
                bytes.try_into().unwrap(),
                sig,
                None
            ),
            Error::<Test>::MalformedReceipt
        );
        let mut b = good.clone();
        b.evidence = NO_EVIDENCE;
        assert_noop!(
            submit(P1, JOB, &b, None),
            Error::<Test>::UnsupportedEvidenceMode
        );
        assert_noop!(
            submit(P1, JOB, &good, Some(attestation_of(P1, TeeKind::SevSnp))),
            Error::<Test>::UnexpectedEvidence
        );
        // A tier-1 receipt for a tier-3 job.
        assert_noop!(
            submit(P1, JOB, &ReceiptBody { tier: 1, ..good }, None),
            Error::<Test>::ReceiptTierMismatch
        );
        assert_ok!(submit(P1, JOB, &good, None));
    });
}

#[test]
fn submit_receipt_attested_key_required_fresh_quote_rejects() {
    build_and_execute(|| {
        bound_attested_job(true);
        assert_noop!(
            submit(P1, JOB, &attested_key_body(P1), None),
            Error::<Test>::FreshQuoteRequired
        );
    });
}

// ---- attestation refresh ---------------------------------------------------------------------

/// Fresh evidence for `account`'s key under the production policy, with `nonce`.
fn refreshed_attestation(account: u64, nonce: [u8; 32]) -> AttestationSubmission<Test> {
    let evidence = make_evidence(
        &platform_pair(),
        statement(key_of(account), TeeKind::SevSnp, nonce),
    );
    submission(&evidence, &good_collateral(), POLICY_PROD)
}

#[test]
fn refresh_attestation_works() {
    build_and_execute(|| {
        bound_attested_job(false);
        // A receipt signed under the registration evidence, submitted after the refresh.
        let old_receipt = attested_key_body(P1);
        let old = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        NowMs::set(now_ms() + HOUR_MS);
        let refresh = refreshed_attestation(P1, [7; 32]);
        let new_digest = evidence_digest(&refresh.evidence);
        assert_ok!(Market::refresh_attestation(
            RuntimeOrigin::signed(P1),
            refresh
        ));
        let now = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(now.evidence_digest, new_digest);
        assert_eq!(now.verified_at_ms, now_ms());
        assert_eq!(now.expires_at_ms, now_ms() + EVIDENCE_LIFETIME_MS);
        assert_eq!(
            now.previous,
            Some(crate::PreviousEvidence {
                evidence_digest: old.evidence_digest,
                expires_at_ms: old.expires_at_ms
            })
        );
        assert_eq!(
            last_event(),
            Event::AttestationRefreshed {
                provider: P1,
                evidence_digest: new_digest,
                expires_at_ms: now.expires_at_ms
            }
        );
        assert!(Attestations::<Test>::contains_key(new_digest));
        // The receipt signed before the refresh still settles the open job.
        assert_ok!(submit(P1, JOB, &old_receipt, None));
        assert_eq!(status(JOB), JobStatus::Settled);
        // Receipts of later jobs may reference the new evidence.
        fund(JOB2, attested_policy(false), PRICE);
        bind(JOB2, &[P1]);
        let mut b = attested_key_body(P1);
        b.job_id = JOB2;
        assert_eq!(b.evidence.digest, new_digest);
        assert_ok!(submit(P1, JOB2, &b, None));
    });
}

#[test]
fn refresh_attestation_previous_evidence_expires_rejects() {
    build_and_execute(|| {
        bound_attested_job(false);
        let old_receipt = attested_key_body(P1);
        NowMs::set(now_ms() + HOUR_MS);
        assert_ok!(Market::refresh_attestation(
            RuntimeOrigin::signed(P1),
            refreshed_attestation(P1, [7; 32])
        ));
        // Past the replaced evidence's own expiry its receipts are refused; the new
        // evidence is still valid.
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS - HOUR_MS);
        assert_noop!(
            submit(P1, JOB, &old_receipt, None),
            Error::<Test>::AttestationExpired
        );
        // Only the evidence replaced last is honoured: after a second refresh the
        // registration evidence is no longer referenced by anything.
        assert_ok!(Market::refresh_attestation(
            RuntimeOrigin::signed(P1),
            refreshed_attestation(P1, [8; 32])
        ));
        NowMs::set(now_ms() - EVIDENCE_LIFETIME_MS + 2 * HOUR_MS);
        assert_noop!(
            submit(P1, JOB, &old_receipt, None),
            Error::<Test>::EvidenceMismatch
        );
    });
}

#[test]
fn refresh_attestation_rejects() {
    build_and_execute(|| {
        // Not registered, or registered without an attested key.
        assert_noop!(
            Market::refresh_attestation(
                RuntimeOrigin::signed(P1),
                refreshed_attestation(P1, [7; 32])
            ),
            Error::<Test>::NotRegistered
        );
        register(P2, &[Tier::Signed]);
        assert_noop!(
            Market::refresh_attestation(
                RuntimeOrigin::signed(P2),
                refreshed_attestation(P2, [7; 32])
            ),
            Error::<Test>::NotAttested
        );
        register_attested(P1, TeeKind::SevSnp);
        // Evidence of another key.
        assert_noop!(
            Market::refresh_attestation(
                RuntimeOrigin::signed(P1),
                refreshed_attestation(P2, [7; 32])
            ),
            Error::<Test>::AttestedKeyMismatch
        );
        // Another policy than the registration's.
        let mut other_policy = refreshed_attestation(P1, [7; 32]);
        other_policy.policy = [0x77; 32];
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), other_policy),
            Error::<Test>::PolicyMismatch
        );
        // Evidence that does not verify.
        let mut forged = refreshed_attestation(P1, [7; 32]);
        let mut bytes = forged.evidence.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        forged.evidence = bytes.try_into().unwrap();
        assert!(matches!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), forged),
            Err(DispatchError::Module(_))
        ));
        assert_eq!(
            Providers::<Test>::get(P1)
                .unwrap()
                .attested
                .unwrap()
                .previous,
            None
        );
    });
}

// ---- tier 3, fresh quote ---------------------------------------------------------------------

#[test]
fn submit_receipt_fresh_quote_works() {
    build_and_execute(|| {
        bound_attested_job(true);
        let (b, sub) = fresh_quote(P1, RESULT_A);
        let digest = b.evidence.digest;
        assert!(!Attestations::<Test>::contains_key(digest));
        let before = free(P1);
        assert_ok!(submit(P1, JOB, &b, Some(sub.clone())));
        assert_eq!(free(P1), before + PRICE);
        let record = Attestations::<Test>::get(digest).unwrap();
        assert_eq!(record.evidence, sub.evidence);
        assert_eq!(record.policy, POLICY_PROD);
        assert_eq!(record.nonce, fresh_quote_nonce(&b));
        assert_eq!(
            Receipts::<Test>::get(JOB, P1).unwrap().evidence_digest,
            Some(digest)
        );
    });
}

#[test]
fn submit_receipt_fresh_quote_also_accepted_without_demand_works() {
    build_and_execute(|| {
        bound_attested_job(false);
        let (b, sub) = fresh_quote(P1, RESULT_A);
        assert_ok!(submit(P1, JOB, &b, Some(sub)));
        assert_eq!(status(JOB), JobStatus::Settled);
    });
}

#[test]
fn submit_receipt_fresh_quote_tampered_evidence_rejects() {
    build_and_execute(|| {
        bound_attested_job(true);
        let (b, sub) = fresh_quote(P1, RESULT_A);
        assert_noop!(submit(P1, JOB, &b, None), Error::<Test>::MissingEvidence);

        // A byte of the evidence changed: it no longer matches the signed receipt.
        let mut tampered = sub.clone();
        let last = tampered.evidence.len() - 1;
        tampered.evidence[last] ^= 1;
        assert_noop!(
            submit(P1, JOB, &b, Some(tampered.clone())),
            Error::<Test>::EvidenceMismatch
        );
        // ... and a receipt re-signed over the tampered evidence: the verifier refuses it.
        let mut resigned = b.clone();
        resigned.evidence.digest = evidence_digest(&tampered.evidence);
        assert_noop!(
            submit(P1, JOB, &resigned, Some(tampered)),
            rejected(AttestationFailure::BadSignature)
        );
        // The job's policy governs, not the one in the submission.
        let mut other_policy = sub.clone();
        other_policy.policy = POLICY_SIMULATED;
        assert_ok!(submit(P1, JOB, &b, Some(other_policy)));
        assert_eq!(
            Attestations::<Test>::get(b.evidence.digest).unwrap().policy,
            POLICY_PROD
        );
    });
}

#[test]
fn submit_receipt_fresh_quote_binding_rejects() {
    build_and_execute(|| {
        bound_attested_job(true);
        // Evidence bound to a receipt with another result, another job, another finish
        // time or another usage than the one submitted: each changes the nonce.
        let (good, _) = fresh_quote(P1, RESULT_A);
        let variants = [
            ReceiptBody {
                result_commitment: RESULT_B,
                ..good
            },
            ReceiptBody {
                job_id: JOB2,
                ..good
            },
            ReceiptBody {
                finished_at_ms: good.finished_at_ms - 1,
                ..good
            },
            ReceiptBody {
                usage: Usage {
                    gpu_ms: 1,
                    ..good.usage
                },
                ..good
            },
        ];
        for other in variants {
            let sub = fresh_evidence_for(&other, MockStatement::clone);
            let mut b = good.clone();
            b.evidence.digest = evidence_digest(&sub.evidence);
            assert_noop!(
                submit(P1, JOB, &b, Some(sub)),
                Error::<Test>::EvidenceNotBound
            );
        }
        // Evidence attesting another key, with a receipt signed by that key.
        let (mut b, sub) = fresh_quote(P2, RESULT_A);
        b.job_id = JOB;
        let (bytes, sig) = sign_with(&pair_of(P2), &b);
        assert_noop!(
            Market::submit_receipt(RuntimeOrigin::signed(P1), JOB, bytes, sig, Some(sub)),
            Error::<Test>::AttestedKeyMismatch
        );
        // The receipt claims another TEE than the evidence.
        let (mut b, sub) = fresh_quote(P1, RESULT_A);
        b.evidence.tee = ReceiptTee::Tdx;
        assert_noop!(
            submit(P1, JOB, &b, Some(sub)),
            Error::<Test>::EvidenceMismatch
        );
    });
}

#[test]
fn submit_receipt_fresh_quote_policy_rejects() {
    build_and_execute(|| {
        bound_attested_job(true);
        // Debug-mode evidence, correctly bound, is refused by the job's policy.
        let (mut b, _) = fresh_quote(P1, RESULT_A);
        let sub = fresh_evidence_for(&b, |st| MockStatement {
            debug: true,
            ..st.clone()
        });
        b.evidence.digest = evidence_digest(&sub.evidence);
        assert_noop!(
            submit(P1, JOB, &b, Some(sub)),
            rejected(AttestationFailure::DebugEnabled)
        );
        // Evidence issued before the collateral's platform key was endorsed long enough ago to
        // have expired by now.
        let (mut b, _) = fresh_quote(P1, RESULT_A);
        let sub = fresh_evidence_for(&b, |st| MockStatement {
            issued_at_ms: now_ms() - EVIDENCE_LIFETIME_MS,
            ..st.clone()
        });
        b.evidence.digest = evidence_digest(&sub.evidence);
        assert_noop!(
            submit(P1, JOB, &b, Some(sub)),
            rejected(AttestationFailure::OutsideValidity)
        );
    });
}

// ---- refund_expired --------------------------------------------------------------------------

#[test]
fn refund_expired_unbound_job_works() {
    build_and_execute(|| {
        fund(JOB, TierTerms::Signed, PRICE);
        System::set_block_number(DEADLINE + 1);
        assert_ok!(Market::refund_expired(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(held(BUYER), 0);
        assert_eq!(free(BUYER), INITIAL_BALANCE);
        assert_eq!(TotalEscrow::<Test>::get(), 0);
        assert_eq!(status(JOB), JobStatus::Refunded);
        let settlement = Settlements::<Test>::get(JOB).unwrap();
        assert_eq!(settlement.outcome, Outcome::Refunded { amount: PRICE });
        assert_eq!(settlement.at, DEADLINE + 1);
        assert_eq!(
            last_event(),
            Event::JobRefunded {
                job_id: JOB,
                buyer: BUYER,
                amount: PRICE
            }
        );
    });
}

#[test]
fn refund_expired_bound_job_works() {
    build_and_execute(|| {
        bound_signed_job();
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 1);
        System::set_block_number(DEADLINE + 1);
        assert_ok!(Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB));
        assert_eq!(free(BUYER), INITIAL_BALANCE);
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 0);
        // A receipt after the refund is refused.
        assert_noop!(
            submit(P1, JOB, &body(JOB, P1, Tier::Signed, RESULT_A), None),
            Error::<Test>::JobClosed
        );
    });
}

#[test]
fn refund_expired_before_deadline_rejects() {
    build_and_execute(|| {
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB),
            Error::<Test>::DeadlineNotReached
        );
        System::set_block_number(DEADLINE);
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB),
            Error::<Test>::DeadlineNotReached
        );
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB2),
            Error::<Test>::UnknownJob
        );
    });
}

#[test]
fn refund_expired_twice_or_after_settlement_rejects() {
    build_and_execute(|| {
        bound_signed_job();
        fund(JOB2, TierTerms::Signed, PRICE);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        System::set_block_number(DEADLINE + 1);
        // Settled: the escrow is gone to the provider and cannot come back.
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB),
            Error::<Test>::JobClosed
        );
        assert_ok!(Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB2));
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::signed(BUYER), JOB2),
            Error::<Test>::JobClosed
        );
        assert_eq!(free(BUYER), INITIAL_BALANCE - PRICE);
    });
}

#[test]
fn refund_expired_origin_rejects() {
    build_and_execute(|| {
        fund(JOB, TierTerms::Signed, PRICE);
        System::set_block_number(DEADLINE + 1);
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::refund_expired(origin, JOB),
                DispatchError::BadOrigin
            );
        }
    });
}

#[test]
fn escrow_root_cannot_move_rejects() {
    build_and_execute(|| {
        // The buyer escrows almost everything; root's balance powers cannot take held funds.
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            TierTerms::Signed,
            ProviderClass::default(),
            INITIAL_BALANCE - 100,
            DEADLINE
        ));
        assert!(Balances::force_transfer(RuntimeOrigin::root(), BUYER, STRANGER, 101).is_err());
        assert!(
            Balances::reducible_balance(&BUYER, Preservation::Expendable, Fortitude::Force) <= 100
        );
        assert_eq!(held(BUYER), INITIAL_BALANCE - 100);
        assert_eq!(free(STRANGER), INITIAL_BALANCE);
    });
}

// ---- deregister ------------------------------------------------------------------------------

#[test]
fn deregister_works() {
    build_and_execute(|| {
        bound_signed_job();
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert!(!Providers::<Test>::contains_key(P1));
        assert_eq!(last_event(), Event::ProviderDeregistered { provider: P1 });
        // The records it took part in stay.
        assert!(Receipts::<Test>::contains_key(JOB, P1));
        assert!(Settlements::<Test>::contains_key(JOB));
        // It can register again.
        register(P1, &[Tier::Signed]);
    });
}

#[test]
fn deregister_rejects() {
    build_and_execute(|| {
        assert_noop!(
            Market::deregister(RuntimeOrigin::signed(P1)),
            Error::<Test>::NotRegistered
        );
        assert_noop!(
            Market::deregister(RuntimeOrigin::root()),
            DispatchError::BadOrigin
        );
        bound_signed_job();
        assert_noop!(
            Market::deregister(RuntimeOrigin::signed(P1)),
            Error::<Test>::HasActiveJobs
        );
    });
}

// ---- invariants ------------------------------------------------------------------------------

#[test]
fn try_state_detects_broken_escrow_rejects() {
    new_test_ext().execute_with(|| {
        fund(JOB, TierTerms::Signed, PRICE);
        assert_ok!(Market::do_try_state());
        TotalEscrow::<Test>::put(PRICE + 1);
        assert!(Market::do_try_state().is_err());
        TotalEscrow::<Test>::put(PRICE);
        // Held funds without an open job.
        assert_ok!(
            <Balances as polkadot_sdk::frame_support::traits::fungible::MutateHold<u64>>::hold(
                &HoldReason::JobEscrow.into(),
                &BUYER,
                1
            )
        );
        assert!(Market::do_try_state().is_err());
    });
}

#[test]
fn try_state_detects_settled_job_with_held_funds_rejects() {
    new_test_ext().execute_with(|| {
        bound_signed_job();
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_ok!(Market::do_try_state());
        // A settled job whose escrow is still held.
        assert_ok!(
            <Balances as polkadot_sdk::frame_support::traits::fungible::MutateHold<u64>>::hold(
                &HoldReason::JobEscrow.into(),
                &BUYER,
                PRICE
            )
        );
        assert!(Market::do_try_state().is_err());
    });
}

#[test]
fn integrity_test_works() {
    new_test_ext().execute_with(|| {
        use polkadot_sdk::frame_support::traits::Hooks;
        <Market as Hooks<u64>>::integrity_test();
    });
}
