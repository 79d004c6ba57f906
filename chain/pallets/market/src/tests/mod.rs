//! Tests of every call's success and failure paths, settlement of all three tiers, and the
//! escrow rules. Each test ends with the pallet's `do_try_state` invariants.
//!
//! One file per subject: `registration`, `funding`, `binding`, `tier1`, `tier2`, `tier3`,
//! `refunds`, `invariants`. This module holds the fixtures they share.

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

mod binding;
mod deposits;
mod funding;
mod invariants;
mod policies;
mod refunds;
mod registration;
mod rotation;
mod tier1;
mod tier2;
mod tier3;

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
        gpu_count: 0,
        gpu_chip: Vec::new(),
        gpu_driver: Vec::new(),
        gpu_vbios: Vec::new(),
        sealing_key: Some([0x5e; 32]),
    }
}

/// Moves to block `n`, recording a distinct hash for each block passed, as the chain does.
fn go_to_block(n: u64) {
    let mut b = System::block_number();
    while b < n {
        polkadot_sdk::frame_system::BlockHash::<Test>::insert(
            b,
            polkadot_sdk::sp_core::H256::repeat_byte(u8::try_from(b % 200).unwrap() + 1),
        );
        b += 1;
        System::set_block_number(b);
    }
}

/// The registration nonce of `account` anchored at block 0 (the mock's genesis hash).
fn reg_nonce(account: u64) -> [u8; 32] {
    reg_nonce_at(account, 0)
}

/// The registration nonce of `account` anchored at block `anchor`.
fn reg_nonce_at(account: u64, anchor: u64) -> [u8; 32] {
    market::registration_nonce(
        System::block_hash(0).as_ref(),
        System::block_hash(anchor).as_ref(),
        &account,
    )
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
        anchor: 0,
    }
}

fn attestation_of(account: u64, tee: TeeKind) -> AttestationSubmission<Test> {
    let evidence = make_evidence(
        &platform_pair(),
        statement(key_of(account), tee, reg_nonce(account)),
    );
    submission(&evidence, &good_collateral(), policy_prod())
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
        policy: policy_prod(),
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
        0,
    ));
}

/// Sets `account`'s offer.
fn offer(account: u64, price: Balance, capacity: u32, bond: Balance) {
    assert_ok!(Market::set_offer(
        RuntimeOrigin::signed(account),
        price,
        capacity,
        bond
    ));
}

/// Has the chain bind exactly `providers` to a waiting job: they offer in that order (price 1,
/// capacity 10, bond 0, unless they already offer), every other offer pauses, and anyone runs
/// the dispatch rule. Asserts the binding names them.
fn bind(job_id: JobId, providers: &[u64]) {
    for provider in providers {
        match Providers::<Test>::get(provider).unwrap().offer {
            Some(o) if o.capacity == 0 => offer(*provider, o.price, 10, o.bond),
            Some(_) => {}
            None => offer(*provider, 1, 10, 0),
        }
    }
    let others: Vec<(u64, market::Offer<Test>)> = Providers::<Test>::iter()
        .filter(|(p, _)| !providers.contains(p))
        .filter_map(|(p, info)| info.offer.map(|o| (p, o)))
        .collect();
    for (provider, o) in others {
        if o.capacity > 0 {
            offer(provider, o.price, 0, o.bond);
        }
    }
    // A job already bound at funding (its providers were offering) needs no dispatch.
    if status(job_id) == JobStatus::Funded {
        assert_ok!(Market::dispatch_job(
            RuntimeOrigin::signed(STRANGER),
            job_id
        ));
    }
    let mut bound = Bindings::<Test>::get(job_id).unwrap().providers.to_vec();
    bound.sort();
    let mut expected = providers.to_vec();
    expected.sort();
    assert_eq!(bound, expected);
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

fn rejected(reason: AttestationFailure) -> Error<Test> {
    Error::<Test>::AttestationRejected { reason }
}
