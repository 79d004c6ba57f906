//! `rotate_key`: a provider replaces its signing key while jobs bound under the old one are
//! open; each job's receipt is checked against the key it was bound under.

use super::*;
use crate::SigningKeys;

/// `account`'s second key.
fn pair2_of(account: u64) -> ed25519::Pair {
    ed25519::Pair::from_seed(&[u8::try_from(account + 100).unwrap(); 32])
}

fn key2_of(account: u64) -> [u8; 32] {
    pair2_of(account).public().0
}

fn proof2_of(account: u64) -> [u8; 64] {
    pair2_of(account).sign(&key_proof_message(&account)).0
}

fn rotate(account: u64) -> polkadot_sdk::frame_support::dispatch::DispatchResult {
    Market::rotate_key(
        RuntimeOrigin::signed(account),
        key2_of(account),
        proof2_of(account),
        None,
    )
}

/// Submits `b` signed by `pair`.
fn submit_signed(
    pair: &ed25519::Pair,
    account: u64,
    job_id: JobId,
    b: &ReceiptBody,
) -> polkadot_sdk::frame_support::dispatch::DispatchResultWithPostInfo {
    let (bytes, signature) = sign_with(pair, b);
    Market::submit_receipt(
        RuntimeOrigin::signed(account),
        job_id,
        bytes,
        signature,
        None,
    )
}

#[test]
fn rotate_key_with_open_jobs_works() {
    build_and_execute(|| {
        bound_signed_job();
        assert_ok!(rotate(P1));
        let info = Providers::<Test>::get(P1).unwrap();
        assert_eq!(info.signing_key, key2_of(P1));
        assert_eq!(
            info.retiring,
            Some(crate::RetiringKey {
                signing_key: key_of(P1),
                attested: None,
                open_jobs: 1
            })
        );
        assert_eq!(SigningKeys::<Test>::get(key_of(P1)), Some(P1));
        assert_eq!(SigningKeys::<Test>::get(key2_of(P1)), Some(P1));
        assert_eq!(
            last_event(),
            Event::KeyRotated {
                provider: P1,
                old_key: key_of(P1),
                new_key: key2_of(P1),
                attested: None,
                open_jobs: 1
            }
        );
        // A job bound now is bound under the new key.
        fund(JOB2, TierTerms::Signed, PRICE);
        bind(JOB2, &[P1]);
        assert_eq!(
            Bindings::<Test>::get(JOB2).unwrap().keys.to_vec(),
            vec![key2_of(P1)]
        );
        // The first job takes only the old key's receipt.
        let mut new_body = body(JOB, P1, Tier::Signed, RESULT_A);
        new_body.provider = key2_of(P1);
        assert_noop!(
            submit_signed(&pair2_of(P1), P1, JOB, &new_body),
            Error::<Test>::WrongSigner
        );
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Settled);
        // Its last job closed: the old key is dropped and free for anyone.
        assert!(events().contains(&Event::KeyRetired {
            provider: P1,
            key: key_of(P1)
        }));
        assert_eq!(Providers::<Test>::get(P1).unwrap().retiring, None);
        assert!(!SigningKeys::<Test>::contains_key(key_of(P1)));
        // The second job takes only the new key's receipt.
        let mut old_body = body(JOB2, P1, Tier::Signed, RESULT_A);
        assert_noop!(
            submit_signed(&pair_of(P1), P1, JOB2, &old_body),
            Error::<Test>::WrongSigner
        );
        old_body.provider = key2_of(P1);
        assert_ok!(submit_signed(&pair2_of(P1), P1, JOB2, &old_body));
        assert_eq!(status(JOB2), JobStatus::Settled);
    });
}

#[test]
fn rotate_key_without_open_jobs_drops_the_old_key_works() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        assert_ok!(rotate(P1));
        assert_eq!(Providers::<Test>::get(P1).unwrap().retiring, None);
        assert_eq!(
            last_event(),
            Event::KeyRetired {
                provider: P1,
                key: key_of(P1)
            }
        );
        // The old key is free: another account can register it.
        let proof = pair_of(P1).sign(&key_proof_message(&P2)).0;
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P2),
            key_of(P1),
            proof,
            caps(&[Tier::Signed], &[], GPU),
            None,
        ));
    });
}

#[test]
fn rotate_key_rejects() {
    build_and_execute(|| {
        assert_noop!(rotate(P1), Error::<Test>::NotRegistered);
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        assert_noop!(
            Market::rotate_key(RuntimeOrigin::signed(P1), key_of(P1), proof_of(P1), None),
            Error::<Test>::SameKey
        );
        // A proof by another key, or for another account.
        assert_noop!(
            Market::rotate_key(RuntimeOrigin::signed(P1), key2_of(P1), proof_of(P1), None),
            Error::<Test>::BadKeyProof
        );
        assert_noop!(
            Market::rotate_key(RuntimeOrigin::signed(P1), key2_of(P1), proof2_of(P2), None),
            Error::<Test>::BadKeyProof
        );
        // Another provider's key.
        let proof = pair_of(P2).sign(&key_proof_message(&P1)).0;
        assert_noop!(
            Market::rotate_key(RuntimeOrigin::signed(P1), key_of(P2), proof, None),
            Error::<Test>::KeyInUse
        );
        // Evidence for a provider that does not serve tier 3.
        assert_noop!(
            Market::rotate_key(
                RuntimeOrigin::signed(P1),
                key2_of(P1),
                proof2_of(P1),
                Some(attestation_of(P1, TeeKind::SevSnp))
            ),
            Error::<Test>::UnexpectedAttestation
        );
        // One rotation at a time while the old key has open jobs.
        fund(JOB, TierTerms::Signed, PRICE);
        bind(JOB, &[P1]);
        assert_ok!(rotate(P1));
        let third = ed25519::Pair::from_seed(&[0x77; 32]);
        assert_noop!(
            Market::rotate_key(
                RuntimeOrigin::signed(P1),
                third.public().0,
                third.sign(&key_proof_message(&P1)).0,
                None
            ),
            Error::<Test>::RotationPending
        );
        // A provider with jobs under a retiring key cannot leave.
        assert_noop!(
            Market::deregister(RuntimeOrigin::signed(P1)),
            Error::<Test>::HasActiveJobs
        );
    });
}

#[test]
fn rotate_attested_key_works() {
    build_and_execute(|| {
        bound_attested_job(false);
        let old_receipt = attested_key_body(P1);
        let old = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        // Tier 3 needs evidence binding the new key.
        assert_noop!(rotate(P1), Error::<Test>::AttestationRequired);
        let evidence_of = |key| {
            make_evidence(
                &platform_pair(),
                statement(key, TeeKind::Tdx, reg_nonce(P1)),
            )
        };
        let wrong = submission(&evidence_of(key_of(P1)), &good_collateral(), policy_prod());
        assert_noop!(
            Market::rotate_key(
                RuntimeOrigin::signed(P1),
                key2_of(P1),
                proof2_of(P1),
                Some(wrong)
            ),
            Error::<Test>::AttestedKeyMismatch
        );
        let sub = submission(&evidence_of(key2_of(P1)), &good_collateral(), policy_prod());
        let new_digest = evidence_digest(&sub.evidence);
        assert_ok!(Market::rotate_key(
            RuntimeOrigin::signed(P1),
            key2_of(P1),
            proof2_of(P1),
            Some(sub)
        ));
        let info = Providers::<Test>::get(P1).unwrap();
        let now = info.attested.clone().unwrap();
        assert_eq!((now.tee, now.evidence_digest), (TeeKind::Tdx, new_digest));
        assert_eq!(info.retiring.clone().unwrap().attested, Some(old.clone()));
        // The retiring key's evidence is still held.
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS);
        assert_noop!(
            Market::prune_attestation(RuntimeOrigin::signed(STRANGER), old.evidence_digest),
            Error::<Test>::AttestationInUse
        );
        NowMs::set(now_ms() - EVIDENCE_LIFETIME_MS);
        // The open job settles on the old key and its evidence.
        assert_ok!(submit(P1, JOB, &old_receipt, None));
        assert_eq!(status(JOB), JobStatus::Settled);
        assert_eq!(Providers::<Test>::get(P1).unwrap().retiring, None);
        // A new job is bound under the new key and settles on the new evidence.
        fund(JOB2, attested_policy(false), PRICE);
        bind(JOB2, &[P1]);
        let mut b = body(JOB2, P1, Tier::Attested, RESULT_A);
        b.provider = key2_of(P1);
        b.evidence = EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: ReceiptTee::Tdx,
            digest: new_digest,
        };
        assert_ok!(submit_signed(&pair2_of(P1), P1, JOB2, &b));
        assert_eq!(status(JOB2), JobStatus::Settled);
    });
}

#[test]
fn rotate_key_then_reassign_drops_the_old_key_works() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        offer(P1, 1, 10, 0);
        offer(P2, 2, 10, 0);
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            TierTerms::Signed,
            ProviderClass::default(),
            PRICE,
            DEADLINE,
            5,
        ));
        assert_eq!(
            Bindings::<Test>::get(JOB).unwrap().providers.to_vec(),
            vec![P1]
        );
        // The agent restarted with a new key and lost the old one: it cannot deliver.
        assert_ok!(rotate(P1));
        offer(P1, 1, 0, 0);
        go_to_block(System::block_number() + 6);
        assert_ok!(Market::reassign(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(Providers::<Test>::get(P1).unwrap().retiring, None);
        assert!(!SigningKeys::<Test>::contains_key(key_of(P1)));
        assert_eq!(
            Bindings::<Test>::get(JOB).unwrap().providers.to_vec(),
            vec![P2]
        );
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 0);
    });
}
