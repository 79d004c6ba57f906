//! Tier 1 (signed): `submit_receipt` settling a job, and every way a receipt is refused.

use super::*;

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
