//! The council's path to new code: proposal, approvals to the threshold, the announced delay,
//! enactment by anyone, cancellation by one member, and every refusal.

// Tests may panic on broken expectations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `construct_runtime!` makes `Test` public, so the types in its configuration must be public too.
#![allow(unreachable_pub)]

use crate::{self as upgrades, Approved, Error, Event, Members, Pending, Threshold};
use polkadot_sdk::{
    frame_support::{
        self, assert_noop, assert_ok, derive_impl,
        traits::{ConstU32, ConstU64},
    },
    frame_system,
    sp_core::H256,
    sp_io,
    sp_runtime::{BuildStorage, DispatchError},
};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Upgrades: upgrades,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

impl upgrades::Config for Test {
    type MaxMembers = ConstU32<5>;
    type EnactmentDelay = ConstU64<DELAY>;
}

const DELAY: u64 = 100;
const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const OUTSIDER: u64 = 9;
const CODE: H256 = H256::repeat_byte(0xC0);

fn ext(members: Vec<u64>, threshold: u32) -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    upgrades::GenesisConfig::<Test> { members, threshold }
        .assimilate_storage(&mut storage)
        .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Upgrades(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn signed(who: u64) -> RuntimeOrigin {
    RuntimeOrigin::signed(who)
}

#[test]
fn upgrade_after_threshold_and_delay_works() {
    ext(vec![A, B, C], 2).execute_with(|| {
        assert_eq!(Members::<Test>::get().to_vec(), vec![A, B, C]);
        assert_eq!(Threshold::<Test>::get(), 2);
        assert_ok!(Upgrades::propose_upgrade(signed(A), CODE));
        assert!(Pending::<Test>::get().is_some());
        assert!(Approved::<Test>::get().is_none());
        System::set_block_number(5);
        assert_ok!(Upgrades::approve_upgrade(signed(B), CODE));
        assert!(Pending::<Test>::get().is_none());
        let scheduled = Approved::<Test>::get().unwrap();
        assert_eq!(scheduled.enact_at, 5 + DELAY);
        assert!(events().contains(&Event::UpgradeScheduled {
            code_hash: CODE,
            enact_at: 5 + DELAY
        }));
        // Not before the announced block, whoever asks.
        System::set_block_number(5 + DELAY - 1);
        assert_noop!(
            Upgrades::enact_upgrade(signed(OUTSIDER)),
            Error::<Test>::TooEarly
        );
        assert!(frame_system::Pallet::<Test>::authorized_upgrade().is_none());
        System::set_block_number(5 + DELAY);
        assert_ok!(Upgrades::enact_upgrade(signed(OUTSIDER)));
        let authorized = frame_system::Pallet::<Test>::authorized_upgrade().unwrap();
        assert_eq!(authorized.code_hash(), &CODE);
        assert!(Approved::<Test>::get().is_none());
        assert_eq!(
            events().last(),
            Some(&Event::UpgradeEnacted { code_hash: CODE })
        );
        // Done: the next upgrade starts from a new proposal.
        assert_noop!(
            Upgrades::enact_upgrade(signed(A)),
            Error::<Test>::NothingScheduled
        );
    });
}

#[test]
fn threshold_of_one_schedules_at_once_works() {
    ext(vec![A], 1).execute_with(|| {
        assert_ok!(Upgrades::propose_upgrade(signed(A), CODE));
        assert_eq!(Approved::<Test>::get().unwrap().enact_at, 1 + DELAY);
    });
}

#[test]
fn below_threshold_or_outsider_rejects() {
    ext(vec![A, B, C], 3).execute_with(|| {
        assert_noop!(
            Upgrades::propose_upgrade(signed(OUTSIDER), CODE),
            Error::<Test>::NotMember
        );
        assert_noop!(
            Upgrades::propose_upgrade(RuntimeOrigin::root(), CODE),
            DispatchError::BadOrigin
        );
        assert_ok!(Upgrades::propose_upgrade(signed(A), CODE));
        assert_noop!(
            Upgrades::propose_upgrade(signed(B), H256::repeat_byte(1)),
            Error::<Test>::UpgradeInProgress
        );
        assert_noop!(
            Upgrades::approve_upgrade(signed(A), CODE),
            Error::<Test>::AlreadyApproved
        );
        assert_noop!(
            Upgrades::approve_upgrade(signed(B), H256::repeat_byte(1)),
            Error::<Test>::NoSuchProposal
        );
        assert_noop!(
            Upgrades::approve_upgrade(signed(OUTSIDER), CODE),
            Error::<Test>::NotMember
        );
        assert_ok!(Upgrades::approve_upgrade(signed(B), CODE));
        // Two of three: still pending, nothing to enact.
        assert!(Approved::<Test>::get().is_none());
        System::set_block_number(10 * DELAY);
        assert_noop!(
            Upgrades::enact_upgrade(signed(A)),
            Error::<Test>::NothingScheduled
        );
        assert_noop!(
            Upgrades::enact_upgrade(RuntimeOrigin::none()),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn one_member_cancels_works() {
    ext(vec![A, B, C], 2).execute_with(|| {
        assert_noop!(
            Upgrades::cancel_upgrade(signed(A)),
            Error::<Test>::NothingToCancel
        );
        assert_ok!(Upgrades::propose_upgrade(signed(A), CODE));
        assert_ok!(Upgrades::cancel_upgrade(signed(C)));
        assert!(Pending::<Test>::get().is_none());
        // Scheduled upgrades too, until they are enacted.
        assert_ok!(Upgrades::propose_upgrade(signed(A), CODE));
        assert_ok!(Upgrades::approve_upgrade(signed(B), CODE));
        assert_noop!(
            Upgrades::cancel_upgrade(signed(OUTSIDER)),
            Error::<Test>::NotMember
        );
        assert_ok!(Upgrades::cancel_upgrade(signed(C)));
        assert!(Approved::<Test>::get().is_none());
        assert_eq!(
            events().last(),
            Some(&Event::UpgradeCancelled {
                code_hash: CODE,
                by: C
            })
        );
        System::set_block_number(1 + DELAY);
        assert_noop!(
            Upgrades::enact_upgrade(signed(A)),
            Error::<Test>::NothingScheduled
        );
    });
}

#[test]
#[should_panic(expected = "1 <= threshold <= members")]
fn genesis_threshold_above_members_rejects() {
    ext(vec![A, B], 3);
}

#[test]
#[should_panic(expected = "1 <= threshold <= members")]
fn genesis_duplicate_members_rejects() {
    ext(vec![A, A], 1);
}

#[test]
fn no_council_never_upgrades_works() {
    ext(vec![], 0).execute_with(|| {
        for who in [A, B, OUTSIDER] {
            assert_noop!(
                Upgrades::propose_upgrade(signed(who), CODE),
                Error::<Test>::NotMember
            );
        }
        assert_noop!(
            Upgrades::enact_upgrade(signed(A)),
            Error::<Test>::NothingScheduled
        );
    });
}
