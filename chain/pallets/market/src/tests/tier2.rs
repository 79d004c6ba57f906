//! Tier 2 (quorum): agreement, rounding of shares, late and duplicate receipts, no agreement.

use super::*;

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
