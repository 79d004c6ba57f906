//! Tier 3 (attested): receipts under the attested key, `refresh_attestation`, and fresh-quote
//! receipts with their own evidence.

use super::*;

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

/// Fresh evidence for `account`'s key under the production policy: one block later, binding
/// the registration nonce anchored at the block before.
fn refreshed_attestation(account: u64) -> AttestationSubmission<Test> {
    let anchor = System::block_number();
    go_to_block(anchor + 1);
    let evidence = make_evidence(
        &platform_pair(),
        statement(
            key_of(account),
            TeeKind::SevSnp,
            reg_nonce_at(account, anchor),
        ),
    );
    AttestationSubmission {
        anchor,
        ..submission(&evidence, &good_collateral(), policy_prod())
    }
}

#[test]
fn refresh_attestation_works() {
    build_and_execute(|| {
        bound_attested_job(false);
        // A receipt signed under the registration evidence, submitted after the refresh.
        let old_receipt = attested_key_body(P1);
        let old = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        NowMs::set(now_ms() + HOUR_MS);
        let refresh = refreshed_attestation(P1);
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
            refreshed_attestation(P1)
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
            refreshed_attestation(P1)
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
        let sub = refreshed_attestation(P1);
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), sub),
            Error::<Test>::NotRegistered
        );
        register(P2, &[Tier::Signed]);
        let sub = refreshed_attestation(P2);
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P2), sub),
            Error::<Test>::NotAttested
        );
        register_attested(P1, TeeKind::SevSnp);
        // Evidence of another key.
        let sub = refreshed_attestation(P2);
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), sub),
            Error::<Test>::AttestedKeyMismatch
        );
        // Another policy than the registration's.
        let mut other_policy = refreshed_attestation(P1);
        other_policy.policy = [0x77; 32];
        assert_noop!(
            Market::refresh_attestation(RuntimeOrigin::signed(P1), other_policy),
            Error::<Test>::PolicyMismatch
        );
        // Evidence that does not verify.
        let mut forged = refreshed_attestation(P1);
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
        assert_eq!(record.policy, policy_prod());
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
        other_policy.policy = policy_simulated();
        assert_ok!(submit(P1, JOB, &b, Some(other_policy)));
        assert_eq!(
            Attestations::<Test>::get(b.evidence.digest).unwrap().policy,
            policy_prod()
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
