//! Refunds: `refund_expired` before and after the deadline, and escrow that cannot move.

use super::*;

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
            DEADLINE,
            0
        ));
        assert!(Balances::force_transfer(RuntimeOrigin::root(), BUYER, STRANGER, 101).is_err());
        assert!(
            Balances::reducible_balance(&BUYER, Preservation::Expendable, Fortitude::Force) <= 100
        );
        assert_eq!(held(BUYER), INITIAL_BALANCE - 100);
        assert_eq!(free(STRANGER), INITIAL_BALANCE);
    });
}
