//! Storage deposits for provider and attestation records, and pruning of expired attestation
//! records.

use super::*;
use crate::{AttestationRecord, SigningKeys};

fn on_hold(reason: HoldReason, account: u64) -> Balance {
    Balances::balance_on_hold(&reason.into(), &account)
}

/// Deposits of 50 per provider record, 10 + 1 per byte per attestation record.
fn set_deposits() {
    ProviderDeposit::set(50);
    AttestationDepositBase::set(10);
    AttestationDepositPerByte::set(1);
}

fn record_deposit(sub: &AttestationSubmission<Test>) -> Balance {
    10 + (sub.evidence.len() + sub.collateral.len()) as Balance
}

fn record(digest: [u8; 32]) -> AttestationRecord<Test> {
    Attestations::<Test>::get(digest).expect("an attestation record")
}

#[test]
fn provider_deposit_is_held_and_returned_works() {
    build_and_execute(|| {
        set_deposits();
        let before = free(P1);
        register(P1, &[Tier::Signed]);
        assert_eq!(on_hold(HoldReason::ProviderDeposit, P1), 50);
        assert_eq!(Providers::<Test>::get(P1).unwrap().deposit, 50);
        assert_eq!(free(P1), before - 50);
        // A deposit changed by a later runtime does not change what this record holds.
        ProviderDeposit::set(70);
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert_eq!(on_hold(HoldReason::ProviderDeposit, P1), 0);
        assert_eq!(free(P1), before);
    });
}

#[test]
fn provider_deposit_unaffordable_rejects() {
    build_and_execute(|| {
        set_deposits();
        // Account 42 has no balance: nothing is registered.
        let poor = 42u64;
        let proof = pair_of(poor).sign(&key_proof_message(&poor)).0;
        assert!(
            Market::register_provider(
                RuntimeOrigin::signed(poor),
                key_of(poor),
                proof,
                caps(&[Tier::Signed], &[], GPU),
                None,
            )
            .is_err()
        );
        assert!(!Providers::<Test>::contains_key(poor));
        assert!(!SigningKeys::<Test>::contains_key(key_of(poor)));
    });
}

#[test]
fn attestation_deposit_is_held_and_pruned_works() {
    build_and_execute(|| {
        set_deposits();
        let sub = attestation_of(P1, TeeKind::SevSnp);
        let first = evidence_digest(&sub.evidence);
        let first_deposit = record_deposit(&sub);
        register_attested(P1, TeeKind::SevSnp);
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P1), first_deposit);
        let r = record(first);
        assert_eq!((r.depositor, r.deposit), (P1, first_deposit));

        // Not expired: kept.
        assert_noop!(
            Market::prune_attestation(RuntimeOrigin::signed(STRANGER), first),
            Error::<Test>::AttestationNotExpired
        );
        // Refreshed an hour later: the new evidence is the key's, the old one its previous.
        NowMs::set(now_ms() + HOUR_MS);
        let anchor = System::block_number();
        go_to_block(anchor + 1);
        let evidence = make_evidence(
            &platform_pair(),
            statement(key_of(P1), TeeKind::SevSnp, reg_nonce_at(P1, anchor)),
        );
        let refresh = AttestationSubmission {
            anchor,
            ..submission(&evidence, &good_collateral(), policy_prod())
        };
        let second = evidence_digest(&refresh.evidence);
        let second_deposit = record_deposit(&refresh);
        assert_ok!(Market::refresh_attestation(
            RuntimeOrigin::signed(P1),
            refresh
        ));
        assert_eq!(
            on_hold(HoldReason::AttestationDeposit, P1),
            first_deposit + second_deposit
        );
        // Past the first record's expiry, anyone prunes it and P1 gets its deposit back.
        NowMs::set(r.expires_at_ms);
        let free_before = free(P1);
        assert_ok!(Market::prune_attestation(
            RuntimeOrigin::signed(STRANGER),
            first
        ));
        assert!(!Attestations::<Test>::contains_key(first));
        assert_eq!(free(P1), free_before + first_deposit);
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P1), second_deposit);
        assert_eq!(
            last_event(),
            Event::AttestationPruned {
                evidence_digest: first,
                depositor: P1,
                deposit: first_deposit
            }
        );
        assert_noop!(
            Market::prune_attestation(RuntimeOrigin::signed(STRANGER), first),
            Error::<Test>::UnknownAttestation
        );
        // The current key's record stays while the key rests on it, even expired.
        NowMs::set(record(second).expires_at_ms);
        assert_noop!(
            Market::prune_attestation(RuntimeOrigin::signed(STRANGER), second),
            Error::<Test>::AttestationInUse
        );
        // Once the provider is gone it can go too.
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert_ok!(Market::prune_attestation(
            RuntimeOrigin::signed(STRANGER),
            second
        ));
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P1), 0);
    });
}

#[test]
fn attestation_deposit_unaffordable_rejects() {
    build_and_execute(|| {
        set_deposits();
        AttestationDepositBase::set(INITIAL_BALANCE);
        let sub = attestation_of(P1, TeeKind::SevSnp);
        assert!(
            Market::register_provider(
                RuntimeOrigin::signed(P1),
                key_of(P1),
                proof_of(P1),
                caps(&[Tier::Signed, Tier::Attested], &[TeeKind::SevSnp], GPU),
                Some(sub.clone()),
            )
            .is_err()
        );
        assert!(!Providers::<Test>::contains_key(P1));
        assert!(!Attestations::<Test>::contains_key(evidence_digest(
            &sub.evidence
        )));
    });
}

#[test]
fn fresh_quote_record_deposit_and_prune_keep_the_audit_trail_works() {
    build_and_execute(|| {
        bound_attested_job(true);
        set_deposits();
        let (b, sub) = fresh_quote(P1, RESULT_A);
        let digest = evidence_digest(&sub.evidence);
        let deposit = record_deposit(&sub);
        let hold_before = on_hold(HoldReason::AttestationDeposit, P1);
        assert_ok!(submit(P1, JOB, &b, Some(sub)));
        assert_eq!(status(JOB), JobStatus::Settled);
        assert_eq!(
            on_hold(HoldReason::AttestationDeposit, P1),
            hold_before + deposit
        );
        NowMs::set(record(digest).expires_at_ms);
        assert_ok!(Market::prune_attestation(
            RuntimeOrigin::signed(BUYER),
            digest
        ));
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P1), hold_before);
        // The receipt and settlement keep the digest and the outcome.
        assert_eq!(
            Receipts::<Test>::get(JOB, P1).unwrap().evidence_digest,
            Some(digest)
        );
        assert!(Settlements::<Test>::contains_key(JOB));
    });
}

#[test]
fn on_idle_prunes_expired_records_works() {
    use polkadot_sdk::frame_support::{traits::Hooks, weights::Weight};
    build_and_execute(|| {
        set_deposits();
        // Three providers register (three records), then two deregister.
        for p in [P1, P2, P3] {
            register_attested(p, TeeKind::SevSnp);
        }
        let digests: Vec<[u8; 32]> = [P1, P2, P3]
            .iter()
            .map(|p| {
                Providers::<Test>::get(p)
                    .unwrap()
                    .attested
                    .unwrap()
                    .evidence_digest
            })
            .collect();
        for p in [P1, P2] {
            assert_ok!(Market::deregister(RuntimeOrigin::signed(p)));
        }
        // Not expired: nothing goes, however much weight is left.
        Market::on_idle(System::block_number(), Weight::MAX);
        assert_eq!(Attestations::<Test>::iter().count(), 3);
        // Expired: with no weight nothing is looked at.
        NowMs::set(record(digests[0]).expires_at_ms);
        assert_eq!(
            Market::on_idle(System::block_number(), Weight::zero()),
            Weight::zero()
        );
        assert_eq!(Attestations::<Test>::iter().count(), 3);
        // At most two records are looked at a block (the mock's MaxPrunePerBlock); the pass
        // resumes where it stopped, and P3's record stays (its key rests on it).
        let free_before = [free(P1), free(P2)];
        Market::on_idle(System::block_number(), Weight::MAX);
        Market::on_idle(System::block_number(), Weight::MAX);
        assert!(!Attestations::<Test>::contains_key(digests[0]));
        assert!(!Attestations::<Test>::contains_key(digests[1]));
        assert!(Attestations::<Test>::contains_key(digests[2]));
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P1), 0);
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P2), 0);
        assert!(free(P1) > free_before[0] && free(P2) > free_before[1]);
        assert!(events().iter().any(|e| matches!(
            e,
            Event::AttestationPruned { depositor, .. } if *depositor == P1
        )));
    });
}

#[test]
fn record_of_long_lived_evidence_is_pruned_after_the_key_cap_works() {
    build_and_execute(|| {
        set_deposits();
        // Evidence whose own expiry is far away (the simulator's never expires): no key made
        // from it outlives the chain's cap on an attested key's life, so neither does the record.
        let digest = [0xAB; 32];
        let deposit = 30;
        assert_ok!(
            <Balances as polkadot_sdk::frame_support::traits::fungible::MutateHold<u64>>::hold(
                &HoldReason::AttestationDeposit.into(),
                &P4,
                deposit
            )
        );
        Attestations::<Test>::insert(
            digest,
            AttestationRecord {
                evidence: vec![1, 2, 3].try_into().unwrap(),
                collateral: BoundedVec::new(),
                policy: policy_prod(),
                key: key_of(P4),
                tee: TeeKind::Simulated,
                measurement: GOOD_MEASUREMENT,
                nonce: [0; 32],
                verified_at_ms: now_ms(),
                expires_at_ms: u64::MAX,
                depositor: P4,
                deposit,
            },
        );
        let cap = <<Test as market::Config>::MaxAttestationValidityMs as polkadot_sdk::frame_support::traits::Get<u64>>::get();
        NowMs::set(now_ms() + cap - 1);
        assert_noop!(
            Market::prune_attestation(RuntimeOrigin::signed(STRANGER), digest),
            Error::<Test>::AttestationNotExpired
        );
        NowMs::set(now_ms() + 1);
        assert_ok!(Market::prune_attestation(
            RuntimeOrigin::signed(STRANGER),
            digest
        ));
        assert_eq!(on_hold(HoldReason::AttestationDeposit, P4), 0);
    });
}
