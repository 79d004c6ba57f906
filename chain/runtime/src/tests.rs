//! The runtime natively: its genesis, its integrity tests, and the market's flows through the
//! runtime's own configuration (dispatch by the chain from offers, the real attestation
//! verifier, MINT holds), and that no origin stands above the market's rules.

// Tests may panic on broken expectations and use plain arithmetic on test amounts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::*;
use crate::genesis_config_presets::{DEV_ENDOWMENT, dev_accounts, development_config};
use attestation_verifier::binding;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use codec::Encode;
use frame_support::{
    assert_noop, assert_ok,
    traits::{
        IntegrityTest,
        fungible::{Inspect, InspectHold},
    },
};
use pallet_sigil_market::{
    AttestationSubmission, Capabilities, JobStatus, ProviderClass, TeeKind, Tier, TierTerms,
    receipt::{
        self as market_receipt, EvidenceMode, EvidenceRef, ReceiptBody, Usage, evidence_digest,
    },
};
use sigil_verifier_adapter::policies;
use sp_core::{Pair, ed25519};
use sp_keyring::Sr25519Keyring;
use sp_runtime::{BuildStorage, DispatchError, traits::Dispatchable};

/// 2026-01-01T00:00:00Z.
const NOW_MS: u64 = 1_767_225_600_000;

fn new_ext() -> sp_io::TestExternalities {
    let storage = development_config()
        .expect("development preset")
        .build_storage()
        .expect("genesis storage");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        pallet_timestamp::Now::<Runtime>::put(NOW_MS);
    });
    ext
}

fn account(k: Sr25519Keyring) -> AccountId {
    k.to_account_id()
}

fn signed(who: &AccountId) -> RuntimeOrigin {
    RuntimeOrigin::signed(who.clone())
}

/// A provider: its ed25519 receipt key is its account.
fn provider(seed: u8) -> (ed25519::Pair, AccountId) {
    let pair = ed25519::Pair::from_seed(&[seed; 32]);
    let who = AccountId::from(pair.public().0);
    assert_ok!(Balances::transfer_keep_alive(
        signed(&account(Sr25519Keyring::Alice)),
        who.clone().into(),
        100 * MINT
    ));
    (pair, who)
}

fn key_proof(pair: &ed25519::Pair, who: &AccountId) -> [u8; 64] {
    pair.sign(&pallet_sigil_market::key_proof_message(who)).0
}

/// Simulated evidence binding `key`, as the agent's simulator makes it.
fn simulated_bundle(key: [u8; 32], nonce: [u8; 32]) -> Vec<u8> {
    let crypto = RustCrypto;
    let rd = binding::report_data(&crypto, &key, &[0; 32], &nonce);
    let simulator = ed25519::Pair::from_seed(&[0x5e; 32]);
    let body = SimulatedBody::new(rd, [0x11; 48], SimulatedKey::Ed25519(simulator.public().0));
    let signature = simulator.sign(&body.signed_message()).0.to_vec();
    let report = SimulatedReport { body, signature }.to_bytes();
    EvidenceBundle::new(key, nonce, CpuEvidence::Simulated { report }, Vec::new()).to_bytes()
}

fn submission(evidence: Vec<u8>, policy: [u8; 32]) -> AttestationSubmission<Runtime> {
    AttestationSubmission {
        evidence: evidence.try_into().expect("within MaxEvidenceLen"),
        collateral: Default::default(),
        policy,
        anchor: 0,
    }
}

/// The registration nonce of `who` anchored at block 0 (the tests run at block 1).
fn registration_nonce(who: &AccountId) -> [u8; 32] {
    pallet_sigil_market::registration_nonce(
        System::block_hash(0).as_ref(),
        System::block_hash(0).as_ref(),
        who,
    )
}

fn receipt(
    job_id: [u8; 32],
    spec: [u8; 32],
    key: [u8; 32],
    tier: u8,
    ev: EvidenceRef,
) -> ReceiptBody {
    ReceiptBody {
        version: 1,
        job_id,
        job_spec_hash: spec,
        provider: key,
        tier,
        result_commitment: [0xcc; 32],
        output_count: 1,
        started_at_ms: NOW_MS - 5_000,
        finished_at_ms: NOW_MS,
        exit_code: 0,
        usage: Usage::default(),
        evidence: ev,
    }
}

#[test]
fn development_genesis_works() {
    new_ext().execute_with(|| {
        let accounts = dev_accounts();
        assert_eq!(accounts.len(), 6);
        for a in &accounts {
            assert_eq!(Balances::free_balance(a), DEV_ENDOWMENT);
        }
        assert_eq!(Balances::total_issuance(), DEV_ENDOWMENT * 6);
    });
}

#[test]
fn runtime_has_no_privileged_pallet_works() {
    use frame_support::traits::PalletsInfoAccess;
    let names: Vec<&str> = AllPalletsWithSystem::infos()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "System",
            "Timestamp",
            "Balances",
            "TransactionPayment",
            "Upgrades",
            "Market"
        ]
    );
}

#[test]
fn upgrade_only_by_council_after_delay_works() {
    new_ext().execute_with(|| {
        let [alice, bob, charlie, dave] = [
            Sr25519Keyring::Alice,
            Sr25519Keyring::Bob,
            Sr25519Keyring::Charlie,
            Sr25519Keyring::Dave,
        ]
        .map(account);
        let code_hash = sp_core::H256::repeat_byte(0x42);
        assert_noop!(
            Upgrades::propose_upgrade(signed(&dave), code_hash),
            pallet_sigil_upgrades::Error::<Runtime>::NotMember
        );
        assert_ok!(Upgrades::propose_upgrade(signed(&alice), code_hash));
        // One approval of the two needed: nothing scheduled.
        assert!(pallet_sigil_upgrades::Approved::<Runtime>::get().is_none());
        assert_ok!(Upgrades::approve_upgrade(signed(&charlie), code_hash));
        let scheduled = pallet_sigil_upgrades::Approved::<Runtime>::get().unwrap();
        assert_eq!(scheduled.enact_at, 1 + UPGRADE_DELAY);
        System::set_block_number(UPGRADE_DELAY);
        assert_noop!(
            Upgrades::enact_upgrade(signed(&dave)),
            pallet_sigil_upgrades::Error::<Runtime>::TooEarly
        );
        System::set_block_number(1 + UPGRADE_DELAY);
        assert_ok!(Upgrades::enact_upgrade(signed(&dave)));
        assert_eq!(
            System::authorized_upgrade().unwrap().code_hash(),
            &code_hash
        );
        // The council has no other power: root-only calls stay out of its reach too.
        assert_eq!(
            RuntimeCall::System(frame_system::Call::set_code { code: vec![0; 8] })
                .dispatch(signed(&bob))
                .map_err(|e| e.error),
            Err(DispatchError::BadOrigin)
        );
    });
}

/// Sets `who`'s offer: price 1 milli-MINT, capacity 4, the minimum bond.
fn offer(who: &AccountId) {
    assert_ok!(Market::set_offer(
        signed(who),
        MILLI_MINT,
        4,
        MinProviderBond::get()
    ));
}

#[test]
fn integrity_tests_works() {
    new_ext().execute_with(AllPalletsWithSystem::integrity_test);
}

#[test]
fn presets_works() {
    let names = genesis_config_presets::preset_names();
    assert_eq!(names.len(), 2);
    for name in names {
        let patch = genesis_config_presets::get_preset(&name).expect("preset");
        let value: serde_json::Value = serde_json::from_slice(&patch).expect("json");
        assert!(value.get("balances").is_some());
    }
    assert!(genesis_config_presets::get_preset(&"staging".into()).is_none());
}

#[test]
fn tier1_job_bound_by_the_chain_works() {
    new_ext().execute_with(|| {
        let bob = account(Sr25519Keyring::Bob);
        let (pair, who) = provider(1);
        let caps = Capabilities {
            tiers: vec![Tier::Signed].try_into().unwrap(),
            tee_kinds: Default::default(),
            gpu_model: Default::default(),
        };
        assert_ok!(Market::register_provider(
            signed(&who),
            pair.public().0,
            key_proof(&pair, &who),
            caps,
            None
        ));
        offer(&who);
        let bond = RuntimeHoldReason::Market(pallet_sigil_market::HoldReason::ProviderBond);
        assert_eq!(
            Balances::balance_on_hold(&bond, &who),
            MinProviderBond::get()
        );
        let (job, spec, price) = ([1; 32], [2; 32], 5 * MINT);
        assert_ok!(Market::fund_job(
            signed(&bob),
            job,
            spec,
            TierTerms::Signed,
            ProviderClass::default(),
            price,
            100,
            10
        ));
        let escrow = RuntimeHoldReason::Market(pallet_sigil_market::HoldReason::JobEscrow);
        assert_eq!(Balances::balance_on_hold(&escrow, &bob), price);
        // Bound by the chain at funding: nobody chose the provider.
        let binding = pallet_sigil_market::Bindings::<Runtime>::get(job).unwrap();
        assert_eq!(binding.providers.to_vec(), vec![who.clone()]);

        let body = receipt(job, spec, pair.public().0, 1, EvidenceRef::NONE);
        let before = Balances::free_balance(&who);
        assert_ok!(Market::submit_receipt(
            signed(&who),
            job,
            body.encode().try_into().unwrap(),
            pair.sign(&market_receipt::digest(&body)).0,
            None
        ));
        assert_eq!(Balances::free_balance(&who), before + price);
        assert_eq!(Balances::balance_on_hold(&escrow, &bob), 0);
        let status = pallet_sigil_market::Jobs::<Runtime>::get(job)
            .unwrap()
            .status;
        assert_eq!(status, JobStatus::Settled);
    });
}

#[test]
fn tier3_attested_key_through_the_runtime_verifier_works() {
    new_ext().execute_with(|| {
        let bob = account(Sr25519Keyring::Bob);
        let (pair, who) = provider(3);
        let key = pair.public().0;
        let simulated = policies::id_of(policies::SIMULATED_V1).unwrap();
        let caps = Capabilities {
            tiers: vec![Tier::Attested].try_into().unwrap(),
            tee_kinds: vec![TeeKind::Simulated].try_into().unwrap(),
            gpu_model: Default::default(),
        };
        let bundle = simulated_bundle(key, registration_nonce(&who));

        // Refused under a genesis hardware policy (it pins no measurement), under a pinned
        // hardware policy a buyer registers (simulated evidence), with a nonce of the
        // provider's choosing, and when tampered.
        let unpinned = policies::id_of(policies::CONFIDENTIAL_VM_V1).unwrap();
        assert_noop!(
            Market::register_provider(
                signed(&who),
                key,
                key_proof(&pair, &who),
                caps.clone(),
                Some(submission(bundle.clone(), unpinned))
            ),
            pallet_sigil_market::Error::<Runtime>::PolicyRejected {
                reason: pallet_sigil_market::PolicyRejection::SnpMeasurementNotPinned
            }
        );
        let mut pinned =
            attestation_verifier::policy::genesis::named(policies::SEV_SNP_V1).unwrap();
        pinned.snp.measurements = vec![attestation_verifier::policy::HexBytes(vec![0x11; 48])];
        assert_ok!(Market::register_policy(
            signed(&bob),
            pinned.canonical_bytes().try_into().unwrap()
        ));
        assert_noop!(
            Market::register_provider(
                signed(&who),
                key,
                key_proof(&pair, &who),
                caps.clone(),
                Some(submission(bundle.clone(), pinned.id()))
            ),
            pallet_sigil_market::Error::<Runtime>::AttestationRejected {
                reason: pallet_sigil_market::AttestationFailure::SimulatedRejected
            }
        );
        assert_noop!(
            Market::register_provider(
                signed(&who),
                key,
                key_proof(&pair, &who),
                caps.clone(),
                Some(submission(simulated_bundle(key, [7; 32]), simulated))
            ),
            pallet_sigil_market::Error::<Runtime>::StaleNonce
        );
        // The simulated report's last byte is the end of its signature.
        let mut decoded = EvidenceBundle::from_bytes(&bundle).unwrap();
        let CpuEvidence::Simulated { report } = &mut decoded.cpu else {
            panic!("a simulated bundle")
        };
        *report.last_mut().unwrap() ^= 1;
        let tampered = decoded.to_bytes();
        assert_noop!(
            Market::register_provider(
                signed(&who),
                key,
                key_proof(&pair, &who),
                caps.clone(),
                Some(submission(tampered, simulated))
            ),
            pallet_sigil_market::Error::<Runtime>::AttestationRejected {
                reason: pallet_sigil_market::AttestationFailure::BadSignature
            }
        );

        assert_ok!(Market::register_provider(
            signed(&who),
            key,
            key_proof(&pair, &who),
            caps,
            Some(submission(bundle.clone(), simulated))
        ));
        let digest = evidence_digest(&bundle);
        assert!(pallet_sigil_market::Attestations::<Runtime>::contains_key(
            digest
        ));

        let (job, spec, price) = ([3; 32], [4; 32], 7 * MINT);
        let class = ProviderClass {
            tee_kinds: vec![TeeKind::Simulated].try_into().unwrap(),
            gpu_model: Default::default(),
            gpu_count: 0,
        };
        let terms = TierTerms::Attested {
            policy: simulated,
            fresh_quote: false,
        };
        offer(&who);
        assert_ok!(Market::fund_job(
            signed(&bob),
            job,
            spec,
            terms,
            class,
            price,
            100,
            0
        ));
        let binding = pallet_sigil_market::Bindings::<Runtime>::get(job).unwrap();
        assert_eq!(binding.providers.to_vec(), vec![who.clone()]);
        let ev = EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: market_receipt::ReceiptTee::Simulated,
            digest,
        };
        let body = receipt(job, spec, key, 3, ev);
        let before = Balances::free_balance(&who);
        assert_ok!(Market::submit_receipt(
            signed(&who),
            job,
            body.encode().try_into().unwrap(),
            pair.sign(&market_receipt::digest(&body)).0,
            None
        ));
        assert_eq!(Balances::free_balance(&who), before + price);
    });
}

#[test]
fn no_origin_moves_escrow_or_storage_rejects() {
    new_ext().execute_with(|| {
        let bob = account(Sr25519Keyring::Bob);
        let charlie = account(Sr25519Keyring::Charlie);
        let price = 9 * MINT;
        assert_ok!(Market::fund_job(
            signed(&bob),
            [9; 32],
            [8; 32],
            TierTerms::Signed,
            ProviderClass::default(),
            price,
            100,
            0
        ));
        let escrow = RuntimeHoldReason::Market(pallet_sigil_market::HoldReason::JobEscrow);
        let job_key = pallet_sigil_market::Jobs::<Runtime>::hashed_key_for([9u8; 32]);
        let everything = Balances::total_balance(&bob);
        // Every call that could rewrite a job, a hold or the code needs root, and no account
        // (nor an unsigned extrinsic) is root: there is no sudo.
        let calls = [
            RuntimeCall::System(frame_system::Call::set_storage {
                items: vec![(job_key.clone(), vec![0])],
            }),
            RuntimeCall::System(frame_system::Call::kill_storage {
                keys: vec![job_key.clone()],
            }),
            RuntimeCall::System(frame_system::Call::kill_prefix {
                prefix: job_key.iter().take(32).copied().collect(),
                subkeys: 1,
            }),
            RuntimeCall::System(frame_system::Call::set_code { code: vec![0; 8] }),
            RuntimeCall::System(frame_system::Call::authorize_upgrade {
                code_hash: Default::default(),
            }),
            RuntimeCall::Balances(pallet_balances::Call::force_transfer {
                source: bob.clone().into(),
                dest: charlie.clone().into(),
                value: everything,
            }),
            RuntimeCall::Balances(pallet_balances::Call::force_set_balance {
                who: bob.clone().into(),
                new_free: 0,
            }),
            RuntimeCall::Balances(pallet_balances::Call::force_unreserve {
                who: bob.clone().into(),
                amount: price,
            }),
        ];
        let mut origins: Vec<RuntimeOrigin> = dev_accounts().iter().map(signed).collect();
        origins.push(RuntimeOrigin::none());
        for call in calls {
            for origin in &origins {
                let result = call.clone().dispatch(origin.clone());
                assert_eq!(
                    result.map_err(|e| e.error),
                    Err(DispatchError::BadOrigin),
                    "{call:?}"
                );
            }
        }
        assert_eq!(Balances::balance_on_hold(&escrow, &bob), price);
        let job = pallet_sigil_market::Jobs::<Runtime>::get([9; 32]).unwrap();
        assert_eq!(job.status, JobStatus::Funded);
        // Refund stays impossible before the deadline, and root's refund is refused too.
        assert_noop!(
            Market::refund_expired(RuntimeOrigin::root(), [9; 32]),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Market::refund_expired(signed(&charlie), [9; 32]),
            pallet_sigil_market::Error::<Runtime>::DeadlineNotReached
        );
    });
}
