//! # Sigil upgrades pallet
//!
//! The only way new runtime code reaches the Sigil chain. The runtime has no sudo: no account
//! holds root. A council fixed at genesis (changed only by an upgrade it enacts) approves a
//! runtime code hash by a threshold of its members; the approval is announced on chain
//! ([`Event::UpgradeScheduled`]) and can be enacted only [`Config::EnactmentDelay`] blocks
//! later, by anyone ([`Pallet::enact_upgrade`]), which authorises exactly that code hash with
//! `frame_system` (`do_authorize_upgrade`, the spec-version check on); anyone then submits the
//! code itself with `System::apply_authorized_upgrade`. Providers, buyers and auditors have the
//! whole delay to read the new runtime (its hash is public) and leave the market if they do
//! not accept it. Any one member may cancel a pending proposal or a scheduled upgrade, so a
//! single honest member can stop an upgrade it objects to, but no member, and no number of
//! members below the threshold, can make one.
//!
//! The council touches nothing else: it cannot move escrow, bonds or deposits, edit a policy or
//! a job, or dispatch as root; only new code, announced and delayed.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(test)]
mod tests;

// The FRAME macros expand to code that calls `expect` on values they construct themselves.
#[allow(clippy::expect_used)]
#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use polkadot_sdk::{
        frame_support::pallet_prelude::*,
        frame_system::{self, pallet_prelude::*},
        sp_runtime::traits::Saturating,
    };

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// Most council members.
        #[pallet::constant]
        type MaxMembers: Get<u32>;

        /// Blocks from the approval of an upgrade to the first block it can be enacted in.
        #[pallet::constant]
        type EnactmentDelay: Get<BlockNumberFor<Self>>;
    }

    /// A code hash proposed by a member, with the members that approved it.
    #[derive(
        Encode,
        Decode,
        CloneNoBound,
        PartialEqNoBound,
        EqNoBound,
        DebugNoBound,
        TypeInfo,
        MaxEncodedLen,
    )]
    #[scale_info(skip_type_params(T))]
    pub struct Proposal<T: Config> {
        /// The hash of the proposed runtime code.
        pub code_hash: T::Hash,
        /// The members that approved it, the proposer first.
        pub approvals: BoundedVec<T::AccountId, T::MaxMembers>,
        /// Block of the proposal.
        pub proposed_at: BlockNumberFor<T>,
    }

    /// An approved upgrade waiting for its enactment block.
    #[derive(
        Encode,
        Decode,
        CloneNoBound,
        PartialEqNoBound,
        EqNoBound,
        DebugNoBound,
        TypeInfo,
        MaxEncodedLen,
    )]
    #[scale_info(skip_type_params(T))]
    pub struct Scheduled<T: Config> {
        /// The hash of the approved runtime code.
        pub code_hash: T::Hash,
        /// The first block in which anyone may enact it.
        pub enact_at: BlockNumberFor<T>,
    }

    /// The council.
    #[pallet::storage]
    pub type Members<T: Config> =
        StorageValue<_, BoundedVec<T::AccountId, T::MaxMembers>, ValueQuery>;

    /// Approvals an upgrade needs.
    #[pallet::storage]
    pub type Threshold<T: Config> = StorageValue<_, u32, ValueQuery>;

    /// The proposal being approved, if any (one at a time).
    #[pallet::storage]
    pub type Pending<T: Config> = StorageValue<_, Proposal<T>>;

    /// The approved upgrade waiting for its enactment block, if any.
    #[pallet::storage]
    pub type Approved<T: Config> = StorageValue<_, Scheduled<T>>;

    #[pallet::genesis_config]
    #[derive(polkadot_sdk::frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// The council; empty (with threshold 0) for a chain that is never upgraded.
        pub members: alloc::vec::Vec<T::AccountId>,
        /// Approvals an upgrade needs.
        pub threshold: u32,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        // A chain spec whose council cannot approve anything, or has duplicates, must not
        // produce a chain; genesis building has no error path (as FRAME's own builders).
        #[allow(clippy::panic)]
        fn build(&self) {
            let members = &self.members;
            let unique = members
                .iter()
                .enumerate()
                .all(|(i, a)| !members.iter().skip(i.saturating_add(1)).any(|b| a == b));
            let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
            // No council (and threshold 0) is a chain that can never be upgraded.
            let frozen = count == 0 && self.threshold == 0;
            if !unique || !(frozen || (self.threshold >= 1 && self.threshold <= count)) {
                panic!(
                    "upgrades genesis: members must be unique and 1 <= threshold <= members (or no members and threshold 0)"
                );
            }
            let Ok(bounded) = BoundedVec::try_from(members.clone()) else {
                panic!("upgrades genesis: more members than MaxMembers");
            };
            Members::<T>::put(bounded);
            Threshold::<T>::put(self.threshold);
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A member proposed new runtime code.
        UpgradeProposed {
            /// Its hash.
            code_hash: T::Hash,
            /// The proposer.
            by: T::AccountId,
        },
        /// A member approved the pending proposal.
        UpgradeApproved {
            /// Its hash.
            code_hash: T::Hash,
            /// The member.
            by: T::AccountId,
            /// Approvals so far.
            approvals: u32,
        },
        /// The threshold approved an upgrade: it can be enacted from `enact_at` on.
        UpgradeScheduled {
            /// Its hash.
            code_hash: T::Hash,
            /// The first block it can be enacted in.
            enact_at: BlockNumberFor<T>,
        },
        /// A member cancelled a pending proposal or a scheduled upgrade.
        UpgradeCancelled {
            /// Its hash.
            code_hash: T::Hash,
            /// The member.
            by: T::AccountId,
        },
        /// The upgrade was authorised with `frame_system`: anyone may now submit the code
        /// (`System::apply_authorized_upgrade`).
        UpgradeEnacted {
            /// Its hash.
            code_hash: T::Hash,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The caller is not a council member.
        NotMember,
        /// A proposal is pending or an upgrade is scheduled.
        UpgradeInProgress,
        /// No proposal with this code hash is pending.
        NoSuchProposal,
        /// The member already approved the proposal.
        AlreadyApproved,
        /// Nothing is pending or scheduled.
        NothingToCancel,
        /// No upgrade is scheduled.
        NothingScheduled,
        /// The scheduled upgrade's enactment block has not come.
        TooEarly,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(
                T::MaxMembers::get() >= 1,
                "the council must have room for a member"
            );
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Proposes runtime code by its hash, approved by the proposer (a member). With a
        /// threshold of one it is scheduled at once.
        #[pallet::call_index(0)]
        #[pallet::weight(T::DbWeight::get().reads_writes(4, 2).saturating_add(Weight::from_parts(20_000_000, 0)))]
        pub fn propose_upgrade(origin: OriginFor<T>, code_hash: T::Hash) -> DispatchResult {
            let who = Self::ensure_member(origin)?;
            ensure!(
                !Pending::<T>::exists() && !Approved::<T>::exists(),
                Error::<T>::UpgradeInProgress
            );
            let approvals = BoundedVec::try_from(alloc::vec![who.clone()])
                .map_err(|_| Error::<T>::NotMember)?;
            Self::deposit_event(Event::UpgradeProposed { code_hash, by: who });
            Self::record(Proposal {
                code_hash,
                approvals,
                proposed_at: frame_system::Pallet::<T>::block_number(),
            });
            Ok(())
        }

        /// Approves the pending proposal (a member, once). The approval that reaches the
        /// threshold schedules the upgrade `EnactmentDelay` blocks ahead.
        #[pallet::call_index(1)]
        #[pallet::weight(T::DbWeight::get().reads_writes(4, 2).saturating_add(Weight::from_parts(20_000_000, 0)))]
        pub fn approve_upgrade(origin: OriginFor<T>, code_hash: T::Hash) -> DispatchResult {
            let who = Self::ensure_member(origin)?;
            let mut proposal = Pending::<T>::get()
                .filter(|p| p.code_hash == code_hash)
                .ok_or(Error::<T>::NoSuchProposal)?;
            ensure!(
                !proposal.approvals.contains(&who),
                Error::<T>::AlreadyApproved
            );
            proposal
                .approvals
                .try_push(who.clone())
                .map_err(|_| Error::<T>::AlreadyApproved)?;
            Self::deposit_event(Event::UpgradeApproved {
                code_hash,
                by: who,
                approvals: u32::try_from(proposal.approvals.len()).unwrap_or(u32::MAX),
            });
            Self::record(proposal);
            Ok(())
        }

        /// Cancels the pending proposal or the scheduled upgrade (any one member).
        #[pallet::call_index(2)]
        #[pallet::weight(T::DbWeight::get().reads_writes(3, 2).saturating_add(Weight::from_parts(15_000_000, 0)))]
        pub fn cancel_upgrade(origin: OriginFor<T>) -> DispatchResult {
            let who = Self::ensure_member(origin)?;
            let code_hash = match (Pending::<T>::take(), Approved::<T>::take()) {
                (Some(p), _) => p.code_hash,
                (None, Some(s)) => s.code_hash,
                (None, None) => return Err(Error::<T>::NothingToCancel.into()),
            };
            Self::deposit_event(Event::UpgradeCancelled { code_hash, by: who });
            Ok(())
        }

        /// Enacts the scheduled upgrade once its block has come (anyone): authorises its code
        /// hash with `frame_system`, after which anyone may submit the code with
        /// `System::apply_authorized_upgrade`.
        #[pallet::call_index(3)]
        #[pallet::weight(T::DbWeight::get().reads_writes(2, 2).saturating_add(Weight::from_parts(15_000_000, 0)))]
        pub fn enact_upgrade(origin: OriginFor<T>) -> DispatchResult {
            ensure_signed(origin)?;
            let scheduled = Approved::<T>::get().ok_or(Error::<T>::NothingScheduled)?;
            ensure!(
                frame_system::Pallet::<T>::block_number() >= scheduled.enact_at,
                Error::<T>::TooEarly
            );
            Approved::<T>::kill();
            frame_system::Pallet::<T>::do_authorize_upgrade(scheduled.code_hash, true);
            Self::deposit_event(Event::UpgradeEnacted {
                code_hash: scheduled.code_hash,
            });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        fn ensure_member(origin: OriginFor<T>) -> Result<T::AccountId, DispatchError> {
            let who = ensure_signed(origin)?;
            ensure!(Members::<T>::get().contains(&who), Error::<T>::NotMember);
            Ok(who)
        }

        /// Stores `proposal` as pending, or schedules it when it has the threshold.
        fn record(proposal: Proposal<T>) {
            let approvals = u32::try_from(proposal.approvals.len()).unwrap_or(u32::MAX);
            if approvals >= Threshold::<T>::get() {
                Pending::<T>::kill();
                let enact_at = frame_system::Pallet::<T>::block_number()
                    .saturating_add(T::EnactmentDelay::get());
                Approved::<T>::put(Scheduled {
                    code_hash: proposal.code_hash,
                    enact_at,
                });
                Self::deposit_event(Event::UpgradeScheduled {
                    code_hash: proposal.code_hash,
                    enact_at,
                });
            } else {
                Pending::<T>::put(proposal);
            }
        }
    }
}
