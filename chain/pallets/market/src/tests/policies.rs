//! Policies as on-chain data (registration, deposits, retirement, tier-3 pins), fresh
//! registrations (anchored nonces, refresh with new evidence only) and GPUs verified, not
//! declared.

use super::*;
use crate::{
    GpuChip, Policies, PolicyRecord, PolicyRejection, gpu_model_matches_chip,
    mock::{MockPolicy, POLICY_DEPOSIT_BASE, POLICY_DEPOSIT_PER_BYTE, unpinned_policy},
};

fn policy_held(account: u64) -> Balance {
    Balances::balance_on_hold(&HoldReason::PolicyDeposit.into(), &account)
}

fn register_policy(account: u64, policy: &MockPolicy) -> [u8; 32] {
    assert_ok!(Market::register_policy(
        RuntimeOrigin::signed(account),
        policy.document().try_into().unwrap()
    ));
    policy.id()
}

fn record(id: [u8; 32]) -> PolicyRecord<Test> {
    Policies::<Test>::get(id).unwrap()
}

/// A policy no genesis entry has: SEV-SNP only, pinned, keys valid for one hour.
fn hourly_policy() -> MockPolicy {
    MockPolicy {
        key_lifetime_ms: Some(HOUR_MS),
        ..MockPolicy::pinned(&[TeeKind::SevSnp])
    }
}

/// Registers `account` for tier 3 under `policy` with evidence carrying `gpus` GPUs of `chip`.
fn register_attested_under(
    account: u64,
    policy: [u8; 32],
    gpus: u32,
    chip: &[u8],
) -> polkadot_sdk::sp_runtime::DispatchResult {
    let evidence = make_evidence(
        &platform_pair(),
        MockStatement {
            gpu_count: gpus,
            gpu_chip: chip.to_vec(),
            gpu_driver: if gpus > 0 {
                b"550.90.07".to_vec()
            } else {
                Vec::new()
            },
            gpu_vbios: if gpus > 0 {
                b"96.00.9f.00.01".to_vec()
            } else {
                Vec::new()
            },
            ..statement(key_of(account), TeeKind::SevSnp, reg_nonce(account))
        },
    );
    Market::register_provider(
        RuntimeOrigin::signed(account),
        key_of(account),
        proof_of(account),
        caps(&[Tier::Attested], &[TeeKind::SevSnp], b"NVIDIA B200"),
        Some(submission(&evidence, &good_collateral(), policy)),
    )
}

fn fund_class(job_id: JobId, policy: [u8; 32], model: &[u8], count: u32) -> DispatchResult {
    Market::fund_job(
        RuntimeOrigin::signed(BUYER),
        job_id,
        SPEC,
        TierTerms::Attested {
            policy,
            fresh_quote: false,
        },
        ProviderClass {
            tee_kinds: BoundedVec::new(),
            gpu_model: gpu(model),
            gpu_count: count,
        },
        PRICE,
        DEADLINE,
        0,
    )
    .map(|_| ())
    .map_err(|e| e.error)
}

type DispatchResult = polkadot_sdk::sp_runtime::DispatchResult;

// ---- registration and retirement -------------------------------------------------------------

#[test]
fn genesis_policies_are_registered_without_owner_works() {
    build_and_execute(|| {
        for id in [policy_prod(), policy_tdx_only(), policy_simulated()] {
            let r = record(id);
            assert_eq!(r.owner, None);
            assert_eq!(r.deposit, 0);
            assert_eq!(r.unpinned, None);
        }
        assert_eq!(
            record(policy_simulated()).tees.to_vec(),
            vec![TeeKind::Simulated]
        );
        // Nobody can retire a genesis policy.
        assert_noop!(
            Market::retire_policy(RuntimeOrigin::signed(BUYER), policy_prod()),
            Error::<Test>::NotPolicyOwner
        );
    });
}

#[test]
fn register_policy_works() {
    build_and_execute(|| {
        let policy = hourly_policy();
        let len = Balance::try_from(policy.document().len()).unwrap();
        let before = free(BUYER);
        let id = register_policy(BUYER, &policy);
        let deposit = POLICY_DEPOSIT_BASE + POLICY_DEPOSIT_PER_BYTE * len;
        assert_eq!(policy_held(BUYER), deposit);
        assert_eq!(free(BUYER), before - deposit);
        let r = record(id);
        assert_eq!(r.document.to_vec(), policy.document());
        assert_eq!(r.owner, Some(BUYER));
        assert_eq!(r.key_lifetime_ms, Some(HOUR_MS));
        assert_eq!(r.users, 0);
        assert_eq!(
            last_event(),
            Event::PolicyRegistered {
                policy: id,
                owner: Some(BUYER),
                pinned: true
            }
        );
        // The same document is the same id: registering it again is refused, by anyone.
        assert_noop!(
            Market::register_policy(
                RuntimeOrigin::signed(P1),
                policy.document().try_into().unwrap()
            ),
            Error::<Test>::PolicyExists
        );
    });
}

#[test]
fn register_policy_rejects() {
    build_and_execute(|| {
        let refused = |doc: Vec<u8>, reason| {
            assert_noop!(
                Market::register_policy(RuntimeOrigin::signed(BUYER), doc.try_into().unwrap()),
                Error::<Test>::PolicyRejected { reason }
            );
        };
        refused(vec![1, 2, 3], PolicyRejection::Malformed);
        let mut trailing = hourly_policy().document();
        trailing.push(0);
        refused(trailing, PolicyRejection::Malformed);
        // The same rules in another order would get another id: refused.
        let unsorted = MockPolicy {
            measurements: vec![[2; 48], [1; 48]],
            ..hourly_policy()
        };
        refused(unsorted.document(), PolicyRejection::NotCanonical);
        let simulated_without_allow = MockPolicy {
            allow_simulated: false,
            ..MockPolicy::pinned(&[TeeKind::Simulated])
        };
        refused(
            simulated_without_allow.document(),
            PolicyRejection::InvalidValue,
        );
        // A deposit the caller cannot hold.
        let poor = 42_u64;
        assert_noop!(
            Market::register_policy(
                RuntimeOrigin::signed(poor),
                hourly_policy().document().try_into().unwrap()
            ),
            TokenError::FundsUnavailable
        );
    });
}

#[test]
fn retire_policy_works() {
    build_and_execute(|| {
        let id = register_policy(BUYER, &hourly_policy());
        let before = free(BUYER);
        let deposit = policy_held(BUYER);
        // In use by an attested key, then by an open job.
        assert_ok!(register_attested_under(P1, id, 0, b""));
        assert_eq!(record(id).users, 1);
        assert_ok!(fund_class(JOB, id, b"", 0));
        assert_eq!(record(id).users, 2);
        assert_noop!(
            Market::retire_policy(RuntimeOrigin::signed(P1), id),
            Error::<Test>::NotPolicyOwner
        );
        assert_noop!(
            Market::retire_policy(RuntimeOrigin::signed(BUYER), id),
            Error::<Test>::PolicyInUse
        );
        // Bound, the job is held by P1's key; it settles, the provider leaves: nothing uses the
        // policy any more.
        bind(JOB, &[P1]);
        assert_eq!(record(id).users, 1);
        assert_ok!(submit(P1, JOB, &attested_key_body(P1), None));
        assert_eq!(record(id).users, 1);
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert_eq!(record(id).users, 0);
        assert_ok!(Market::retire_policy(RuntimeOrigin::signed(BUYER), id));
        assert!(!Policies::<Test>::contains_key(id));
        assert_eq!(policy_held(BUYER), 0);
        assert_eq!(free(BUYER), before + deposit - PRICE);
        assert_eq!(last_event(), Event::PolicyRetired { policy: id });
        assert_noop!(
            Market::retire_policy(RuntimeOrigin::signed(BUYER), id),
            Error::<Test>::UnknownPolicy
        );
    });
}

#[test]
fn refunded_job_releases_its_policy_works() {
    build_and_execute(|| {
        let id = register_policy(BUYER, &hourly_policy());
        assert_ok!(fund_class(JOB, id, b"", 0));
        assert_eq!(record(id).users, 1);
        System::set_block_number(DEADLINE + 1);
        assert_ok!(Market::refund_expired(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(record(id).users, 0);
    });
}

// ---- tier 3 needs a pinned, registered policy ------------------------------------------------

#[test]
fn unpinned_policy_serves_no_tier3_rejects() {
    build_and_execute(|| {
        let id = register_policy(BUYER, &unpinned_policy());
        assert_eq!(
            record(id).unpinned,
            Some(PolicyRejection::SnpMeasurementNotPinned)
        );
        let not_pinned = || Error::<Test>::PolicyRejected {
            reason: PolicyRejection::SnpMeasurementNotPinned,
        };
        assert_noop!(fund_class(JOB, id, b"", 0), not_pinned());
        assert_noop!(register_attested_under(P1, id, 0, b""), not_pinned());
        assert_noop!(
            fund_class(JOB, [0x77; 32], b"", 0),
            Error::<Test>::UnknownPolicy
        );
    });
}

#[test]
fn policy_key_lifetime_caps_expiry_works() {
    build_and_execute(|| {
        let id = register_policy(BUYER, &hourly_policy());
        assert_ok!(register_attested_under(P1, id, 0, b""));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.expires_at_ms, now_ms() + HOUR_MS);
        assert!(attested.expires_at_ms < now_ms() + EVIDENCE_LIFETIME_MS);
    });
}

// ---- fresh registration ----------------------------------------------------------------------

#[test]
fn registration_nonce_rejects() {
    build_and_execute(|| {
        go_to_block(ANCHOR_WINDOW + 5);
        let with = |nonce: [u8; 32], anchor: u64| {
            let evidence = make_evidence(
                &platform_pair(),
                statement(key_of(P1), TeeKind::SevSnp, nonce),
            );
            Market::register_provider(
                RuntimeOrigin::signed(P1),
                key_of(P1),
                proof_of(P1),
                caps(&[Tier::Attested], &[TeeKind::SevSnp], b""),
                Some(AttestationSubmission {
                    anchor,
                    ..submission(&evidence, &good_collateral(), policy_prod())
                }),
            )
        };
        let now = System::block_number();
        // A nonce of the provider's choosing, or the nonce of another account.
        assert_noop!(with([0; 32], now - 1), Error::<Test>::StaleNonce);
        assert_noop!(
            with(reg_nonce_at(P2, now - 1), now - 1),
            Error::<Test>::StaleNonce
        );
        // A nonce anchored elsewhere than it claims.
        assert_noop!(
            with(reg_nonce_at(P1, now - 2), now - 1),
            Error::<Test>::StaleNonce
        );
        // The current block (its hash is not known yet), a future block, a block too old.
        assert_noop!(with(reg_nonce_at(P1, now), now), Error::<Test>::BadAnchor);
        assert_noop!(with([0; 32], now + 1), Error::<Test>::BadAnchor);
        assert_noop!(
            with(
                reg_nonce_at(P1, now - ANCHOR_WINDOW - 1),
                now - ANCHOR_WINDOW - 1
            ),
            Error::<Test>::BadAnchor
        );
        // The oldest block of the window, and the newest, are accepted.
        assert_ok!(with(
            reg_nonce_at(P1, now - ANCHOR_WINDOW),
            now - ANCHOR_WINDOW
        ));
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert_ok!(with(reg_nonce_at(P1, now - 1), now - 1));
    });
}

#[test]
fn refresh_attestation_needs_new_evidence_rejects() {
    build_and_execute(|| {
        register_attested(P1, TeeKind::SevSnp);
        let first = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        let registration = attestation_of(P1, TeeKind::SevSnp);
        assert_eq!(
            evidence_digest(&registration.evidence),
            first.evidence_digest
        );
        // The same bytes again, later: the expiry does not move.
        NowMs::set(now_ms() + HOUR_MS);
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), registration),
            Error::<Test>::EvidenceNotNew
        );
        // New bytes (a later issue time) binding the same nonce: not new evidence either.
        let same_nonce = attestation_of(P1, TeeKind::SevSnp);
        assert_ne!(evidence_digest(&same_nonce.evidence), first.evidence_digest);
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), same_nonce),
            Error::<Test>::EvidenceNotNew
        );
    });
}

// ---- GPUs verified, not declared -------------------------------------------------------------

#[test]
fn tier3_gpu_class_is_matched_against_verified_gpus_works() {
    build_and_execute(|| {
        // P1 declares B200s but its evidence verified two GH100 reports; P2 one GH100; P3 two
        // GB100s.
        assert_ok!(register_attested_under(P1, policy_prod(), 2, b"GH100"));
        assert_ok!(register_attested_under(P2, policy_prod(), 1, b"GH100"));
        assert_ok!(register_attested_under(P3, policy_prod(), 2, b"GB100"));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.gpu_count, 2);
        assert_eq!(attested.gpu_chip, GpuChip::truncate_from(b"GH100".to_vec()));
        assert_eq!(attested.gpu_driver.to_vec(), b"550.90.07".to_vec());
        assert_eq!(attested.gpu_vbios.to_vec(), b"96.00.9f.00.01".to_vec());
        // The sealing key the evidence binds is registered with the attested key.
        assert_eq!(attested.sealing_key, Some([0x5e; 32]));
        // P2 and P3 offer first: neither has the GPUs the job asks for, so it waits.
        offer(P2, 1, 5, 0);
        offer(P3, 1, 5, 0);
        assert_ok!(fund_class(JOB, policy_prod(), b"NVIDIA H100 80GB HBM3", 2));
        assert_eq!(
            Bindings::<Test>::get(JOB).map(|b| b.providers.to_vec()),
            None
        );
        assert_eq!(status(JOB), JobStatus::Funded);
        offer(P1, 1, 5, 0);
        assert_ok!(Market::dispatch_job(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(
            Bindings::<Test>::get(JOB).unwrap().providers.to_vec(),
            vec![P1]
        );
        // A job asking for the model P1 only declares is not P1's: with P3 (verified GB100s)
        // paused it waits, and it goes to P3 once P3 offers again.
        offer(P3, 1, 0, 0);
        assert_ok!(fund_class(JOB2, policy_prod(), b"NVIDIA B200", 1));
        assert_eq!(status(JOB2), JobStatus::Funded);
        assert_noop!(
            Market::dispatch_job(RuntimeOrigin::signed(STRANGER), JOB2),
            Error::<Test>::NoEligibleOffer
        );
        offer(P3, 1, 5, 0);
        assert_ok!(Market::dispatch_job(RuntimeOrigin::signed(STRANGER), JOB2));
        assert_eq!(
            Bindings::<Test>::get(JOB2).unwrap().providers.to_vec(),
            vec![P3]
        );
    });
}

#[test]
fn policy_min_gpus_rejects() {
    build_and_execute(|| {
        let id = register_policy(
            BUYER,
            &MockPolicy {
                min_gpus: 2,
                ..hourly_policy()
            },
        );
        assert_noop!(
            register_attested_under(P1, id, 1, b"GH100"),
            rejected(AttestationFailure::GpusRejected)
        );
        assert_ok!(register_attested_under(P1, id, 2, b"GH100"));
    });
}

#[test]
fn gpu_count_needs_tier3_rejects() {
    build_and_execute(|| {
        for terms in [TierTerms::Signed, TierTerms::Quorum { k: 2, n: 3 }] {
            assert_noop!(
                Market::fund_job(
                    RuntimeOrigin::signed(BUYER),
                    JOB,
                    SPEC,
                    terms,
                    ProviderClass {
                        gpu_count: 1,
                        ..ProviderClass::default()
                    },
                    PRICE,
                    DEADLINE,
                    0,
                ),
                Error::<Test>::GpuCountNeedsAttestation
            );
        }
    });
}

#[test]
fn gpu_model_matches_chip_works() {
    for (model, chip, expected) in [
        (&b"NVIDIA H100 80GB HBM3"[..], &b"GH100"[..], true),
        (b"nvidia h200", b"GH100", true),
        (b"GH100", b"gh100", true),
        (b"NVIDIA H20", b"GH100", false),
        (b"NVIDIA B200", b"GB100", true),
        (b"NVIDIA B200", b"GH100", false),
        (b"NVIDIA H100", b"GB100", false),
        (b"NVIDIA H100", b"", false),
        (b"A100", b"GA100", false),
    ] {
        assert_eq!(
            gpu_model_matches_chip(model, chip),
            expected,
            "{:?} vs {:?}",
            core::str::from_utf8(model),
            core::str::from_utf8(chip)
        );
    }
}
