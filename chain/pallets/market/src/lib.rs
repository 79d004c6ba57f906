//! # Sigil market pallet
//!
//! A market for compute: buyers escrow MINT for a job, the chain binds providers to it from
//! their standing offers, providers return signed receipts, and the chain verifies them and
//! settles in the same extrinsic.
//!
//! ## Tiers
//! | tier | settles on | checked here |
//! |---|---|---|
//! | 1 | one provider-signed receipt | ed25519 signature by the provider's registered key |
//! | 2 | `k` of `n` bound providers committing the same result | `k` matching signed receipts; only they are paid |
//! | 3 | a receipt bound to a hardware-attested TEE | an unexpired attested key, or fresh evidence verified in the extrinsic |
//!
//! ## Dispatch by the chain
//! No account chooses who serves a job. Providers publish an [`Offer`] (price, capacity, bond);
//! the pallet binds a funded job itself, when it is funded, or later (in `on_idle`, or when
//! anyone calls [`Pallet::dispatch_job`]) if no offer matched then. The rule, in bounded work
//! over at most [`Config::MaxOffers`] offers:
//! 1. eligible offers: the provider serves the job's tier and class (tier 3: an unexpired key
//!    attested under the job's policy with the GPUs it asks for), has free capacity, was not
//!    penalised on this job, and asks at most the job's price (tier 2: the price over `k`);
//! 2. the cheapest first; offers at the same price take turns: they are ordered from the
//!    position of the [`DispatchCursor`] in the offer book, which moves on by one at each
//!    binding;
//! 3. a job is bound only when all its providers can be (1 for tiers 1 and 3, `n` for tier 2).
//!
//! A provider that delivers no receipt within the job's response window loses the job: anyone
//! may call [`Pallet::reassign`], which moves [`Config::UnresponsivePenalty`] of its bond to the
//! buyer and binds another offer. A tier-2 provider whose receipt disagrees with the settled
//! result loses [`Config::DissentPenalty`] of its bond to the buyer. A buyer may cancel a job
//! no provider is bound to ([`Pallet::cancel_job`]).
//!
//! ## Escrow rules
//! The price is held on the buyer's account under [`HoldReason::JobEscrow`] when the job is
//! funded. It leaves the hold exactly once: to the paid providers when a receipt settles the job
//! ([`Pallet::submit_receipt`]), or back to the buyer after the deadline
//! ([`Pallet::refund_expired`], [`Pallet::cancel_job`]). No call lets any origin, root included, move escrow otherwise.
//! Every call is transactional: a receipt that fails any check changes nothing.
//!
//! ## Audit
//! Jobs, bindings, receipts, settlements and verified evidence are never deleted, so anyone can
//! fetch a job's full record and replay its verification.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod attestation;
mod functions;
pub mod receipt;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use attestation::{
    AttestationFailure, AttestationVerifier, EvidenceCost, PolicyRejection, PolicySummary,
    VerifiedAttestation,
};
pub use pallet::*;
pub use types::*;
pub use weights::WeightInfo;

use codec::Encode;
use polkadot_sdk::sp_io;

/// Domain separator of the registration key proof.
pub const KEY_PROOF_DOMAIN: &[u8] = b"sigil.provider-key.v1\0";

/// The message a provider signs with its receipt key at registration, proving it holds the
/// key: `sha256(KEY_PROOF_DOMAIN ++ SCALE(account))`.
pub fn key_proof_message<AccountId: Encode>(account: &AccountId) -> [u8; 32] {
    let mut preimage = KEY_PROOF_DOMAIN.to_vec();
    account.encode_to(&mut preimage);
    sp_io::hashing::sha2_256(&preimage)
}

/// Domain separator of registration nonces.
pub const REGISTRATION_NONCE_DOMAIN: &[u8] = b"sigil.registration-nonce.v1\0";

/// The nonce that registration and refresh evidence must bind: `sha256(REGISTRATION_NONCE_DOMAIN
/// ++ genesis hash ++ anchor block hash ++ SCALE(account))`. The anchor is a block within the
/// last [`Config::RegistrationAnchorWindow`] blocks, so the evidence was produced after it: old
/// evidence, or evidence made for another chain or account, cannot register a key.
pub fn registration_nonce<AccountId: Encode>(
    genesis_hash: &[u8],
    anchor_hash: &[u8],
    account: &AccountId,
) -> [u8; 32] {
    let mut preimage = REGISTRATION_NONCE_DOMAIN.to_vec();
    preimage.extend_from_slice(genesis_hash);
    preimage.extend_from_slice(anchor_hash);
    account.encode_to(&mut preimage);
    sp_io::hashing::sha2_256(&preimage)
}

/// Verifies an ed25519 signature through the runtime's host function.
pub fn ed25519_verify(key: &Ed25519Key, message: &[u8], signature: &Ed25519Signature) -> bool {
    use polkadot_sdk::sp_core::ed25519;
    sp_io::crypto::ed25519_verify(
        &ed25519::Signature::from_raw(*signature),
        message,
        &ed25519::Public::from_raw(*key),
    )
}

// The FRAME macros expand to code that calls `expect` on values they construct themselves; the
// pallet's own logic lives in `functions.rs`, where the lints apply in full.
#[allow(clippy::expect_used)]
#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    #[cfg(feature = "runtime-benchmarks")]
    use crate::attestation::BenchmarkHelper;
    use polkadot_sdk::{
        frame_support::{
            pallet_prelude::*,
            traits::{UnixTime, fungible},
        },
        frame_system::{self, pallet_prelude::*},
        sp_runtime::{
            Perbill,
            traits::{One, Saturating, Zero},
        },
    };

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Why the pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A buyer's escrow for an open job.
        #[codec(index = 0)]
        JobEscrow,
        /// The deposit of a registered attestation policy, returned when it is retired.
        #[codec(index = 1)]
        PolicyDeposit,
        /// A provider's offer bond: shares of it go to buyers whose jobs it failed.
        #[codec(index = 2)]
        ProviderBond,
        /// The storage deposit of a provider record, returned when it deregisters.
        #[codec(index = 3)]
        ProviderDeposit,
        /// The storage deposit of a stored attestation record, returned when it is pruned.
        #[codec(index = 4)]
        AttestationDeposit,
    }

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The chain's native currency (MINT); escrow is a hold on the buyer's balance.
        type Currency: fungible::Inspect<Self::AccountId>
            + fungible::Mutate<Self::AccountId>
            + fungible::MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

        /// The overarching hold reason, which includes this pallet's [`HoldReason`].
        type RuntimeHoldReason: From<HoldReason>;

        /// Wall-clock time, for attestation expiry and receipt timing.
        type UnixTime: UnixTime;

        /// Verifies hardware evidence at registration and in fresh-quote receipts.
        type AttestationVerifier: AttestationVerifier;

        /// Most providers one job can bind (tier-2 `n`).
        #[pallet::constant]
        type MaxQuorum: Get<u32>;

        /// Most bytes of hardware evidence in one extrinsic.
        #[pallet::constant]
        type MaxEvidenceLen: Get<u32>;

        /// Most bytes of collateral accompanying the evidence.
        #[pallet::constant]
        type MaxCollateralLen: Get<u32>;

        /// Most bytes of an encoded receipt body.
        #[pallet::constant]
        type MaxReceiptLen: Get<u32>;

        /// Smallest price a job can escrow.
        #[pallet::constant]
        type MinimumPrice: Get<BalanceOf<Self>>;

        /// Longest time, in blocks, from funding to a job's deadline.
        #[pallet::constant]
        type MaxJobDuration: Get<BlockNumberFor<Self>>;

        /// Longest time, in milliseconds, an attested key stays valid after registration,
        /// whatever the evidence's own expiry.
        #[pallet::constant]
        type MaxAttestationValidityMs: Get<u64>;

        /// How far, in milliseconds, a receipt's finish time may lie ahead of the chain's clock.
        #[pallet::constant]
        type MaxClockDriftMs: Get<u64>;

        /// Most bytes of a policy document.
        #[pallet::constant]
        type MaxPolicyLen: Get<u32>;

        /// Deposit held for each registered policy, on top of the per-byte deposit.
        #[pallet::constant]
        type PolicyDepositBase: Get<BalanceOf<Self>>;

        /// Deposit held for each provider record (its entry in `Providers` and its key's in
        /// `SigningKeys`), returned when the provider deregisters.
        #[pallet::constant]
        type ProviderDeposit: Get<BalanceOf<Self>>;

        /// Deposit held for each stored attestation record, on top of the per-byte deposit.
        #[pallet::constant]
        type AttestationDepositBase: Get<BalanceOf<Self>>;

        /// Deposit held per byte of a stored attestation record's evidence and collateral.
        #[pallet::constant]
        type AttestationDepositPerByte: Get<BalanceOf<Self>>;

        /// Deposit held per byte of a registered policy document.
        #[pallet::constant]
        type PolicyDepositPerByte: Get<BalanceOf<Self>>;

        /// How many blocks back a registration nonce's anchor block may lie.
        #[pallet::constant]
        type RegistrationAnchorWindow: Get<BlockNumberFor<Self>>;

        /// Most standing offers in the offer book (the dispatch rule reads each at most once).
        #[pallet::constant]
        type MaxOffers: Get<u32>;

        /// Smallest bond an offer must hold to be bound to jobs.
        #[pallet::constant]
        type MinProviderBond: Get<BalanceOf<Self>>;

        /// Share of its bond a provider loses to the buyer when it misses a job's response
        /// window.
        #[pallet::constant]
        type UnresponsivePenalty: Get<Perbill>;

        /// Share of its bond a tier-2 provider loses to the buyer when its receipt disagrees
        /// with the settled result.
        #[pallet::constant]
        type DissentPenalty: Get<Perbill>;

        /// Most penalised providers recorded per job; a job that reaches it is not bound again
        /// (its escrow returns to the buyer at the deadline).
        #[pallet::constant]
        type MaxPenalties: Get<u32>;

        /// Most waiting jobs `on_idle` tries to bind in one block.
        #[pallet::constant]
        type MaxDispatchPerBlock: Get<u32>;

        /// Most attestation records `on_idle` looks at for pruning in one block.
        #[pallet::constant]
        type MaxPrunePerBlock: Get<u32>;

        /// Weights of the calls.
        type WeightInfo: WeightInfo;

        /// Produces evidence the configured verifier accepts, for benchmarks.
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: BenchmarkHelper;
    }

    /// Registered providers.
    #[pallet::storage]
    pub type Providers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, ProviderInfo<T>>;

    /// The account each registered receipt-signing key belongs to: a key serves one provider
    /// account only, so one operator's key cannot be counted as several quorum members.
    #[pallet::storage]
    pub type SigningKeys<T: Config> = StorageMap<_, Blake2_128Concat, Ed25519Key, T::AccountId>;

    /// Every job ever funded, by id.
    #[pallet::storage]
    pub type Jobs<T: Config> = StorageMap<_, Blake2_128Concat, JobId, Job<T>>;

    /// The providers bound to each job.
    #[pallet::storage]
    pub type Bindings<T: Config> = StorageMap<_, Blake2_128Concat, JobId, Binding<T>>;

    /// Accepted receipts, by job and provider.
    #[pallet::storage]
    pub type Receipts<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        JobId,
        Blake2_128Concat,
        T::AccountId,
        StoredReceipt<T>,
    >;

    /// How each closed job ended.
    #[pallet::storage]
    pub type Settlements<T: Config> = StorageMap<_, Blake2_128Concat, JobId, Settlement<T>>;

    /// Verified evidence, by the SHA-256 of its bytes.
    #[pallet::storage]
    pub type Attestations<T: Config> = StorageMap<_, Identity, Digest, AttestationRecord<T>>;

    /// Attestation policies, by id (the hash of the document). A registered policy never
    /// changes; it is removed only by its owner once no open job or attested key uses it.
    #[pallet::storage]
    pub type Policies<T: Config> = StorageMap<_, Identity, PolicyId, PolicyRecord<T>>;

    /// Sum of the escrow of all open jobs.
    #[pallet::storage]
    pub type TotalEscrow<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

    /// The offers the dispatch rule reads: `(price, provider)` for each provider whose offer
    /// has capacity and at least the minimum bond, cheapest first (equal prices in the order
    /// they were set).
    #[pallet::storage]
    pub type OfferBook<T: Config> =
        StorageValue<_, BoundedVec<(BalanceOf<T>, T::AccountId), T::MaxOffers>, ValueQuery>;

    /// Where the rotation among equally priced offers starts; moves on by one at each binding.
    #[pallet::storage]
    pub type DispatchCursor<T: Config> = StorageValue<_, u32, ValueQuery>;

    /// Funded jobs waiting for the chain to bind their providers.
    #[pallet::storage]
    pub type Waiting<T: Config> = StorageMap<_, Blake2_128Concat, JobId, ()>;

    /// Where `on_idle` resumes its pass over [`Waiting`] (the last job it tried).
    #[pallet::storage]
    pub type WaitingCursor<T: Config> = StorageValue<_, JobId>;

    /// Where `on_idle`'s pruning pass resumes over [`Attestations`] (the last record it looked
    /// at).
    #[pallet::storage]
    pub type PruneCursor<T: Config> = StorageValue<_, Digest>;

    /// Providers penalised on each job (never bound to it again), kept for audit.
    #[pallet::storage]
    pub type Penalties<T: Config> =
        StorageMap<_, Blake2_128Concat, JobId, BoundedVec<Penalty<T>, T::MaxPenalties>, ValueQuery>;

    /// The chain's genesis policies: canonical documents, registered without an owner.
    #[pallet::genesis_config]
    #[derive(polkadot_sdk::frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Canonical policy documents.
        pub policies: alloc::vec::Vec<alloc::vec::Vec<u8>>,
        #[serde(skip)]
        #[doc(hidden)]
        pub _config: core::marker::PhantomData<T>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        // Genesis building has no error path: a chain spec naming an unusable policy must not
        // produce a chain, so it stops here (as FRAME's own genesis builders do).
        #[allow(clippy::panic)]
        fn build(&self) {
            for document in &self.policies {
                // A chain spec with an unusable policy must not start.
                if let Err(e) = Pallet::<T>::insert_policy(document, None, Zero::zero()) {
                    panic!("genesis policy refused: {e:?}");
                }
            }
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A provider registered.
        ProviderRegistered {
            /// The provider's account.
            provider: T::AccountId,
            /// Its receipt-signing key.
            signing_key: Ed25519Key,
            /// Tiers it serves.
            tiers: TierSet,
            /// For tier 3: the TEE holding the key and the key's expiry (Unix ms).
            attested: Option<(TeeKind, u64)>,
        },
        /// A provider deregistered.
        ProviderDeregistered {
            /// The provider's account.
            provider: T::AccountId,
        },
        /// A provider replaced its signing key. Jobs bound under the old key (`open_jobs`)
        /// still settle with receipts signed by it; new jobs are bound under the new key.
        KeyRotated {
            /// The provider's account.
            provider: T::AccountId,
            /// The replaced key.
            old_key: Ed25519Key,
            /// The new key.
            new_key: Ed25519Key,
            /// For tier 3: the TEE holding the new key and the key's expiry (Unix ms).
            attested: Option<(TeeKind, u64)>,
            /// Open jobs bound under the old key (0: the old key is dropped at once).
            open_jobs: u32,
        },
        /// The last job bound under a rotated-away key closed: the key is dropped.
        KeyRetired {
            /// The provider's account.
            provider: T::AccountId,
            /// The dropped key.
            key: Ed25519Key,
        },
        /// An expired attestation record no provider holds was removed from state; its
        /// deposit returned to whoever submitted it. Its digest stays in the receipts and
        /// events that named it, and its bytes in the blocks that carried and stored it.
        AttestationPruned {
            /// Its digest.
            evidence_digest: Digest,
            /// Who had submitted it.
            depositor: T::AccountId,
            /// The deposit returned.
            deposit: BalanceOf<T>,
        },
        /// A tier-3 provider replaced its attested key's evidence.
        AttestationRefreshed {
            /// The provider's account.
            provider: T::AccountId,
            /// Digest of the new evidence (key into `Attestations`).
            evidence_digest: Digest,
            /// The key's new expiry (Unix ms).
            expires_at_ms: u64,
        },
        /// An attestation policy was registered.
        PolicyRegistered {
            /// Its id.
            policy: PolicyId,
            /// Who registered it (`None` at genesis).
            owner: Option<T::AccountId>,
            /// Whether tier-3 jobs may name it.
            pinned: bool,
        },
        /// An attestation policy was retired and its deposit returned.
        PolicyRetired {
            /// Its id.
            policy: PolicyId,
        },
        /// A buyer funded a job; the price is held in escrow.
        JobFunded {
            /// The job.
            job_id: JobId,
            /// The buyer.
            buyer: T::AccountId,
            /// Its tier.
            tier: Tier,
            /// The escrowed price.
            price: BalanceOf<T>,
            /// Last block for receipts.
            deadline: BlockNumberFor<T>,
        },
        /// The chain bound providers to a job (after a reassignment: all of them, those that
        /// had delivered first).
        JobBound {
            /// The job.
            job_id: JobId,
            /// The bound providers.
            providers: BoundedVec<T::AccountId, T::MaxQuorum>,
        },
        /// No offer could serve a funded job yet: it waits for one.
        JobWaiting {
            /// The job.
            job_id: JobId,
        },
        /// A provider set its offer.
        OfferSet {
            /// The provider.
            provider: T::AccountId,
            /// Its price.
            price: BalanceOf<T>,
            /// Its capacity.
            capacity: u32,
            /// Its bond.
            bond: BalanceOf<T>,
        },
        /// A provider withdrew its offer; its bond was released.
        OfferWithdrawn {
            /// The provider.
            provider: T::AccountId,
        },
        /// A provider lost part of its bond to a job's buyer.
        ProviderPenalised {
            /// The job.
            job_id: JobId,
            /// The provider.
            provider: T::AccountId,
            /// Why.
            reason: PenaltyReason,
            /// The bond moved to the buyer.
            amount: BalanceOf<T>,
        },
        /// A buyer cancelled a job no provider was bound to; its escrow returned.
        JobCancelled {
            /// The job.
            job_id: JobId,
            /// The buyer.
            buyer: T::AccountId,
            /// The amount released.
            amount: BalanceOf<T>,
        },
        /// A receipt verified and was recorded.
        ReceiptAccepted {
            /// The job.
            job_id: JobId,
            /// The provider that submitted it.
            provider: T::AccountId,
            /// The receipt digest.
            receipt_digest: Digest,
            /// The committed result.
            result_commitment: Digest,
        },
        /// A job settled: the escrow went to the payees.
        JobSettled {
            /// The job.
            job_id: JobId,
            /// The result that settled it.
            result_commitment: Digest,
            /// Each payee and its share.
            payees: BoundedVec<(T::AccountId, BalanceOf<T>), T::MaxQuorum>,
        },
        /// An expired job's escrow returned to its buyer.
        JobRefunded {
            /// The job.
            job_id: JobId,
            /// The buyer.
            buyer: T::AccountId,
            /// The amount released.
            amount: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The account is already a registered provider.
        AlreadyRegistered,
        /// The account is not a registered provider.
        NotRegistered,
        /// The signing key is registered by another provider account.
        KeyInUse,
        /// A provider must serve at least one tier.
        NoTiers,
        /// A tier is listed twice.
        DuplicateTier,
        /// A TEE kind is listed twice.
        DuplicateTeeKind,
        /// The key proof is not a signature by the signing key over the account.
        BadKeyProof,
        /// Serving tier 3 requires attestation evidence.
        AttestationRequired,
        /// Attestation evidence was given without tier 3.
        UnexpectedAttestation,
        /// The attestation verifier refused the evidence.
        AttestationRejected {
            /// Why.
            reason: AttestationFailure,
        },
        /// The evidence attests a different key than the one registered or signing.
        AttestedKeyMismatch,
        /// The evidence comes from a TEE kind the provider does not list.
        TeeKindNotOffered,
        /// The attestation has expired.
        AttestationExpired,
        /// The provider still has bound jobs that are not closed.
        HasActiveJobs,
        /// A job with this id exists.
        JobExists,
        /// No job has this id.
        UnknownJob,
        /// The price is below the minimum (or, for tier 2, below `k` times the existential
        /// deposit, so that every payee's share keeps an account alive).
        PriceTooLow,
        /// The deadline is not after the current block.
        DeadlineInPast,
        /// The deadline is further than `MaxJobDuration` away.
        DeadlineTooFar,
        /// Tier-2 terms need `0 < k <= n <= MaxQuorum` and `k` a strict majority of `n`.
        InvalidQuorum,
        /// The job's deadline has passed.
        JobExpired,
        /// The job accepts none of the TEE kinds its policy accepts.
        TeeKindMismatch,
        /// The provider has no attested key.
        NotAttested,
        /// The provider's attestation satisfied a different policy than the job's.
        PolicyMismatch,
        /// The job has no providers bound yet.
        JobNotBound,
        /// The job is settled or refunded.
        JobClosed,
        /// The caller is not bound to the job.
        NotBoundProvider,
        /// The provider already submitted a receipt for this job.
        ReceiptAlreadySubmitted,
        /// The receipt body does not decode (or has trailing bytes).
        MalformedReceipt,
        /// The receipt version is not supported.
        UnsupportedReceiptVersion,
        /// The receipt names another job or job specification.
        ReceiptJobMismatch,
        /// The receipt's tier is not the job's.
        ReceiptTierMismatch,
        /// The receipt's times are inconsistent or in the future.
        InvalidTiming,
        /// The receipt names a key other than the one that must sign it.
        WrongSigner,
        /// The receipt signature does not verify.
        BadSignature,
        /// The receipt carries evidence its tier does not use.
        UnexpectedEvidence,
        /// A fresh-quote receipt came without its evidence.
        MissingEvidence,
        /// The job demands a fresh quote.
        FreshQuoteRequired,
        /// The receipt's evidence mode is unknown.
        UnsupportedEvidenceMode,
        /// The receipt's evidence reference does not match the evidence.
        EvidenceMismatch,
        /// The fresh evidence does not bind this receipt.
        EvidenceNotBound,
        /// The job's deadline has not passed.
        DeadlineNotReached,
        /// An amount overflowed.
        Overflow,
        /// The policy document was refused, or cannot serve tier 3.
        PolicyRejected {
            /// Why.
            reason: PolicyRejection,
        },
        /// No policy has this id.
        UnknownPolicy,
        /// A policy with this id is registered.
        PolicyExists,
        /// The caller did not register the policy (genesis policies have no owner).
        NotPolicyOwner,
        /// Open jobs or attested keys still use the policy.
        PolicyInUse,
        /// The registration nonce's anchor is not a block of the last
        /// `RegistrationAnchorWindow` blocks (or is the current block).
        BadAnchor,
        /// The evidence does not bind the registration nonce of its anchor and the account.
        StaleNonce,
        /// A refresh must carry new evidence: this evidence is already the key's.
        EvidenceNotNew,
        /// Too few verified GPUs, or not the job's GPU model.
        GpuRequirementUnmet,
        /// Tiers 1 and 2 cannot verify a GPU count: their provider class must not set one.
        GpuCountNeedsAttestation,
        /// The offer's bond is below the chain's minimum.
        BondTooLow,
        /// A bond cannot shrink while jobs bound to the provider are open.
        BondLocked,
        /// The offer book is full.
        OfferBookFull,
        /// The provider has no offer.
        NoOffer,
        /// No offer can serve the job now.
        NoEligibleOffer,
        /// The job is not waiting to be bound.
        NotWaiting,
        /// Only the job's buyer may cancel it.
        NotBuyer,
        /// A job with a bound provider cannot be cancelled.
        NotCancellable,
        /// Every bound provider delivered, or the job has no response window.
        NothingToReassign,
        /// The bound providers' response window has not passed.
        ResponseWindowOpen,
        /// The response window is longer than the longest job.
        ResponseWindowTooLong,
        /// The new key is the provider's current key.
        SameKey,
        /// The provider's previous key still has open jobs: one rotation at a time.
        RotationPending,
        /// No attestation record has this digest.
        UnknownAttestation,
        /// The attestation record has not expired yet.
        AttestationNotExpired,
        /// A provider's current or retiring attested key rests on the record.
        AttestationInUse,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(T::MaxQuorum::get() >= 1, "MaxQuorum must be at least 1");
            assert!(
                !T::MinimumPrice::get().is_zero(),
                "MinimumPrice must be at least 1"
            );
            assert!(
                T::MinimumPrice::get()
                    >= <T::Currency as fungible::Inspect<T::AccountId>>::minimum_balance(),
                "MinimumPrice must be at least the existential deposit (a payout must never fail)"
            );
            assert!(
                !T::MaxJobDuration::get().is_zero(),
                "MaxJobDuration must be at least 1"
            );
            assert!(
                !T::RegistrationAnchorWindow::get().is_zero(),
                "RegistrationAnchorWindow must be at least 1"
            );
            assert!(
                usize::try_from(T::MaxReceiptLen::get()).unwrap_or(usize::MAX)
                    >= receipt::RECEIPT_BODY_LEN,
                "MaxReceiptLen must hold a receipt body"
            );
        }

        /// Tries to bind waiting jobs, at most [`Config::MaxDispatchPerBlock`] and as many as
        /// the block's spare weight pays for, resuming where the last block's pass stopped; then
        /// with what is left, prunes expired attestation records no key rests on (at most
        /// [`Config::MaxPrunePerBlock`] looked at), returning their deposits.
        fn on_idle(_n: BlockNumberFor<T>, remaining: Weight) -> Weight {
            let used = Self::dispatch_waiting(remaining);
            used.saturating_add(Self::prune_expired(remaining.saturating_sub(used)))
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(
            _n: BlockNumberFor<T>,
        ) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Registers the caller as a provider.
        ///
        /// `key_proof` is the signature by `signing_key` over [`key_proof_message`] of the
        /// caller. Tier-3 providers pass `attestation`: evidence binding `signing_key`, verified
        /// here against `attestation.policy`; the key, its TEE kind, measurement and expiry are
        /// stored.
        #[pallet::call_index(0)]
        #[pallet::weight(match attestation {
            Some(a) => T::WeightInfo::register_attested_provider()
                .saturating_add(Pallet::<T>::evidence_weight(a)),
            None => T::WeightInfo::register_provider(),
        })]
        pub fn register_provider(
            origin: OriginFor<T>,
            signing_key: Ed25519Key,
            key_proof: Ed25519Signature,
            capabilities: Capabilities,
            attestation: Option<AttestationSubmission<T>>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(
                !Providers::<T>::contains_key(&who),
                Error::<T>::AlreadyRegistered
            );
            ensure!(!capabilities.tiers.is_empty(), Error::<T>::NoTiers);
            ensure!(
                !has_duplicates(&capabilities.tiers),
                Error::<T>::DuplicateTier
            );
            ensure!(
                !has_duplicates(&capabilities.tee_kinds),
                Error::<T>::DuplicateTeeKind
            );
            Self::ensure_new_key(
                &who,
                &capabilities,
                &signing_key,
                &key_proof,
                attestation.is_some(),
            )?;
            Self::do_register_provider(who, signing_key, capabilities, attestation)
        }

        /// Funds a job: holds `price` on the caller's balance until the job settles, expires or
        /// is cancelled, and binds its providers from the offer book (see *Dispatch by the
        /// chain*); if no offer serves it yet, the job waits. A bound provider has
        /// `response_blocks` blocks to deliver its receipt (0: until the deadline).
        #[pallet::call_index(1)]
        #[pallet::weight(
            T::WeightInfo::fund_job().saturating_add(T::WeightInfo::dispatch_job(T::MaxOffers::get()))
        )]
        #[allow(clippy::too_many_arguments)]
        pub fn fund_job(
            origin: OriginFor<T>,
            job_id: JobId,
            spec_hash: Digest,
            terms: TierTerms,
            class: ProviderClass,
            price: BalanceOf<T>,
            deadline: BlockNumberFor<T>,
            response_blocks: BlockNumberFor<T>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            ensure!(!Jobs::<T>::contains_key(job_id), Error::<T>::JobExists);
            ensure!(price >= T::MinimumPrice::get(), Error::<T>::PriceTooLow);
            let now = frame_system::Pallet::<T>::block_number();
            ensure!(deadline > now, Error::<T>::DeadlineInPast);
            ensure!(
                deadline.saturating_sub(now) <= T::MaxJobDuration::get(),
                Error::<T>::DeadlineTooFar
            );
            ensure!(
                response_blocks <= T::MaxJobDuration::get(),
                Error::<T>::ResponseWindowTooLong
            );
            if let TierTerms::Quorum { k, n } = terms {
                ensure!(
                    k > 0
                        && k <= n
                        && n <= T::MaxQuorum::get()
                        && u64::from(k).saturating_mul(2) > u64::from(n),
                    Error::<T>::InvalidQuorum
                );
                // Each of the `k` payees gets at least the existential deposit, so no payout can
                // fail on an account that would not exist after it.
                let floor = <T::Currency as fungible::Inspect<T::AccountId>>::minimum_balance()
                    .max(One::one())
                    .saturating_mul(BalanceOf::<T>::from(k));
                ensure!(price >= floor, Error::<T>::PriceTooLow);
            }
            ensure!(
                terms.provider_count() <= T::MaxQuorum::get(),
                Error::<T>::InvalidQuorum
            );
            ensure!(
                !has_duplicates(&class.tee_kinds),
                Error::<T>::DuplicateTeeKind
            );
            ensure!(
                class.gpu_count == 0 || matches!(terms, TierTerms::Attested { .. }),
                Error::<T>::GpuCountNeedsAttestation
            );
            Self::do_fund_job(
                who,
                job_id,
                spec_hash,
                terms,
                class,
                price,
                deadline,
                response_blocks,
            )
        }

        /// Submits a receipt for a bound job and settles it when it completes the job.
        ///
        /// `body` is the SCALE-encoded [`receipt::ReceiptBody`] as signed; `signature` is the
        /// ed25519 signature over its digest. Tier-3 fresh-quote receipts carry the evidence
        /// in `fresh_evidence`, verified here under the job's policy. Verification and
        /// settlement happen together: on any failure nothing changes.
        #[pallet::call_index(3)]
        #[pallet::weight(Pallet::<T>::submit_receipt_max_weight(fresh_evidence.as_ref()))]
        pub fn submit_receipt(
            origin: OriginFor<T>,
            job_id: JobId,
            body: BoundedVec<u8, T::MaxReceiptLen>,
            signature: Ed25519Signature,
            fresh_evidence: Option<AttestationSubmission<T>>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let job = Jobs::<T>::get(job_id).ok_or(Error::<T>::UnknownJob)?;
            ensure!(job.status.is_open(), Error::<T>::JobClosed);
            ensure!(
                frame_system::Pallet::<T>::block_number() <= job.deadline,
                Error::<T>::JobExpired
            );
            let binding = Bindings::<T>::get(job_id).ok_or(Error::<T>::JobNotBound)?;
            ensure!(
                binding.providers.contains(&who),
                Error::<T>::NotBoundProvider
            );
            ensure!(
                !Receipts::<T>::contains_key(job_id, &who),
                Error::<T>::ReceiptAlreadySubmitted
            );
            Self::do_submit_receipt(who, job_id, job, binding, body, signature, fresh_evidence)
        }

        /// Returns an expired job's escrow to its buyer. Anyone may call it once the deadline
        /// has passed and the job has not settled.
        #[pallet::call_index(4)]
        #[pallet::weight(
            T::WeightInfo::refund_expired(T::MaxQuorum::get())
                .saturating_add(Pallet::<T>::key_drop_weight(T::MaxQuorum::get()))
        )]
        pub fn refund_expired(origin: OriginFor<T>, job_id: JobId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let job = Jobs::<T>::get(job_id).ok_or(Error::<T>::UnknownJob)?;
            ensure!(job.status.is_open(), Error::<T>::JobClosed);
            ensure!(
                frame_system::Pallet::<T>::block_number() > job.deadline,
                Error::<T>::DeadlineNotReached
            );
            Self::do_refund_expired(job_id, job)
        }

        /// Removes the caller's provider registration and its offer (the bond is released).
        /// Refused while jobs bound to it are open. Records it took part in (receipts,
        /// settlements, evidence) stay.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::deregister())]
        pub fn deregister(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(info.active_jobs == 0, Error::<T>::HasActiveJobs);
            Self::do_deregister(who)
        }

        /// Replaces the caller's attested-key evidence with fresh evidence binding the same
        /// key, verified here under the policy the key was registered with; the key's expiry
        /// moves to the new evidence's. Attested-key receipts signed before the refresh may
        /// still reference the replaced evidence until its own expiry, so a provider refreshes
        /// without deregistering and without stranding receipts of open jobs.
        ///
        /// Weighed as an attested registration (the same verification and one provider write)
        /// plus the evidence verification.
        #[pallet::call_index(6)]
        #[pallet::weight(
            T::WeightInfo::register_attested_provider()
                .saturating_add(Pallet::<T>::evidence_weight(attestation))
        )]
        pub fn refresh_attestation(
            origin: OriginFor<T>,
            attestation: AttestationSubmission<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            Self::do_refresh_attestation(who, info, attestation)
        }

        /// Registers an attestation policy: `document` is its canonical encoding (see
        /// `docs/policy.md`), read by the runtime's verifier; its id is the hash of those bytes.
        /// A deposit of `PolicyDepositBase + PolicyDepositPerByte x len` is held on the caller
        /// until the policy is retired. Anyone may register a policy; nobody can change one.
        #[pallet::call_index(7)]
        #[pallet::weight(T::WeightInfo::register_policy(len_u32_items(document.len())))]
        pub fn register_policy(
            origin: OriginFor<T>,
            document: BoundedVec<u8, T::MaxPolicyLen>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let deposit = T::PolicyDepositPerByte::get()
                .saturating_mul(BalanceOf::<T>::from(len_u32_items(document.len())))
                .saturating_add(T::PolicyDepositBase::get());
            Self::do_register_policy(who, document, deposit)
        }

        /// Retires a policy the caller registered, returning its deposit. Refused while an
        /// attested key or a job not yet bound uses it (a bound job's provider holds an attested
        /// key under the policy until the job closes). Its id may be registered again later, with the
        /// same meaning (the id is the document's hash).
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::retire_policy())]
        pub fn retire_policy(origin: OriginFor<T>, policy: PolicyId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let record = Policies::<T>::get(policy).ok_or(Error::<T>::UnknownPolicy)?;
            ensure!(
                record.owner.as_ref() == Some(&who),
                Error::<T>::NotPolicyOwner
            );
            ensure!(record.users == 0, Error::<T>::PolicyInUse);
            Self::do_retire_policy(who, policy, record)
        }

        /// Sets the caller's standing offer: the least it takes per job (`price`), how many jobs
        /// it serves at once (`capacity`, 0 pauses it) and its `bond`, held under
        /// [`HoldReason::ProviderBond`] (at least `MinProviderBond`; it may grow at any time,
        /// and shrink only while no job bound to the provider is open).
        #[pallet::call_index(9)]
        #[pallet::weight(T::WeightInfo::set_offer())]
        pub fn set_offer(
            origin: OriginFor<T>,
            price: BalanceOf<T>,
            capacity: u32,
            bond: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(bond >= T::MinProviderBond::get(), Error::<T>::BondTooLow);
            Self::do_set_offer(
                who,
                info,
                Offer {
                    price,
                    capacity,
                    bond,
                },
            )
        }

        /// Withdraws the caller's offer and releases its bond. Refused while jobs bound to it
        /// are open (their bond secures them).
        #[pallet::call_index(10)]
        #[pallet::weight(T::WeightInfo::withdraw_offer())]
        pub fn withdraw_offer(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(info.offer.is_some(), Error::<T>::NoOffer);
            ensure!(info.active_jobs == 0, Error::<T>::HasActiveJobs);
            Self::do_withdraw_offer(who, info)
        }

        /// Cancels a job no provider is bound to, returning its escrow to the buyer at once.
        /// Only the buyer may call it.
        #[pallet::call_index(11)]
        #[pallet::weight(T::WeightInfo::cancel_job())]
        pub fn cancel_job(origin: OriginFor<T>, job_id: JobId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let job = Jobs::<T>::get(job_id).ok_or(Error::<T>::UnknownJob)?;
            ensure!(job.buyer == who, Error::<T>::NotBuyer);
            ensure!(job.status.is_open(), Error::<T>::JobClosed);
            ensure!(
                job.status == JobStatus::Funded
                    && Bindings::<T>::get(job_id).is_none_or(|b| b.providers.is_empty()),
                Error::<T>::NotCancellable
            );
            Self::do_cancel_job(job_id, job)
        }

        /// Runs the dispatch rule for a waiting job now. Anyone may call it: the rule, not the
        /// caller, picks the providers.
        #[pallet::call_index(12)]
        #[pallet::weight(T::WeightInfo::dispatch_job(T::MaxOffers::get()))]
        pub fn dispatch_job(origin: OriginFor<T>, job_id: JobId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let job = Jobs::<T>::get(job_id).ok_or(Error::<T>::UnknownJob)?;
            ensure!(
                job.status == JobStatus::Funded && Waiting::<T>::contains_key(job_id),
                Error::<T>::NotWaiting
            );
            ensure!(
                frame_system::Pallet::<T>::block_number() <= job.deadline,
                Error::<T>::JobExpired
            );
            let (bound, scanned) = Self::try_dispatch(job_id, job);
            ensure!(bound, Error::<T>::NoEligibleOffer);
            Ok(Some(T::WeightInfo::dispatch_job(scanned)).into())
        }

        /// Takes a job from the bound providers that delivered no receipt within its response
        /// window: each loses `UnresponsivePenalty` of its bond to the buyer and is never bound
        /// to the job again, and the dispatch rule binds others (or the job waits). Anyone may
        /// call it once the window has passed.
        #[pallet::call_index(13)]
        #[pallet::weight(
            T::WeightInfo::reassign(T::MaxQuorum::get())
                .saturating_add(Pallet::<T>::key_drop_weight(T::MaxQuorum::get()))
                .saturating_add(T::WeightInfo::dispatch_job(T::MaxOffers::get()))
        )]
        pub fn reassign(origin: OriginFor<T>, job_id: JobId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let job = Jobs::<T>::get(job_id).ok_or(Error::<T>::UnknownJob)?;
            ensure!(job.status.is_open(), Error::<T>::JobClosed);
            let now = frame_system::Pallet::<T>::block_number();
            ensure!(now <= job.deadline, Error::<T>::JobExpired);
            let binding = Bindings::<T>::get(job_id).ok_or(Error::<T>::JobNotBound)?;
            ensure!(
                !job.response_blocks.is_zero(),
                Error::<T>::NothingToReassign
            );
            ensure!(
                now > binding.bound_at.saturating_add(job.response_blocks),
                Error::<T>::ResponseWindowOpen
            );
            Self::do_reassign(job_id, job, binding)
        }

        /// Replaces the caller's signing key with `signing_key` (a restarted or upgraded agent
        /// has a new one), proven by `key_proof` as at registration; tier-3 providers pass
        /// `attestation` binding the new key, verified under `attestation.policy` with the
        /// caller's registration nonce. New jobs are bound under the new key; jobs bound under
        /// the old one still settle with receipts signed by it (and, for tier 3, resting on its
        /// attestation) until the last of them closes, when the old key is dropped
        /// ([`Event::KeyRetired`]). Refused while an earlier rotated-away key still has open
        /// jobs.
        #[pallet::call_index(14)]
        #[pallet::weight(match attestation {
            Some(a) => Pallet::<T>::rotate_key_weight()
                .saturating_add(T::WeightInfo::register_attested_provider())
                .saturating_add(Pallet::<T>::evidence_weight(a)),
            None => Pallet::<T>::rotate_key_weight(),
        })]
        pub fn rotate_key(
            origin: OriginFor<T>,
            signing_key: Ed25519Key,
            key_proof: Ed25519Signature,
            attestation: Option<AttestationSubmission<T>>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(signing_key != info.signing_key, Error::<T>::SameKey);
            ensure!(info.retiring.is_none(), Error::<T>::RotationPending);
            Self::ensure_new_key(
                &who,
                &info.capabilities,
                &signing_key,
                &key_proof,
                attestation.is_some(),
            )?;
            Self::do_rotate_key(who, info, signing_key, attestation)
        }

        /// Removes an expired attestation record from state and returns its deposit to whoever
        /// submitted it. Anyone may call it: a record can be pruned once no key can use it (past
        /// its evidence's expiry or `MaxAttestationValidityMs` after its verification) and no
        /// provider's current or retiring attested key rests on it. Receipts keep its digest; its bytes stay in the blocks that carried
        /// and stored it, where audits read them (`sigil audit` falls back to the state at the
        /// block of the receipt).
        #[pallet::call_index(15)]
        #[pallet::weight(T::WeightInfo::prune_attestation())]
        pub fn prune_attestation(origin: OriginFor<T>, evidence_digest: Digest) -> DispatchResult {
            ensure_signed(origin)?;
            let record =
                Attestations::<T>::get(evidence_digest).ok_or(Error::<T>::UnknownAttestation)?;
            Self::check_prunable(&evidence_digest, &record, Self::now_ms())?;
            Self::do_prune_attestation(evidence_digest, record)
        }
    }
}

/// A count of items as a `u32` (bounded collections never exceed it).
pub(crate) fn len_u32_items(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Whether a short list repeats an element (quadratic; the lists hold at most a few items).
fn has_duplicates<X: PartialEq>(items: &[X]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items.iter().skip(i.saturating_add(1)).any(|b| a == b))
}
