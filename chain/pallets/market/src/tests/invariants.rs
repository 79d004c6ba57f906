//! The pallet's invariants (`do_try_state`) and `integrity_test`.

use super::*;

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
