//! Types the pallet stores, takes as call arguments and emits in events.

use crate::Config;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::{
    frame_support::{
        CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
        pallet_prelude::{BoundedVec, ConstU32},
        traits::fungible,
    },
    frame_system::pallet_prelude::BlockNumberFor,
};
use scale_info::TypeInfo;

/// An ed25519 public key.
pub type Ed25519Key = [u8; 32];
/// An ed25519 signature.
pub type Ed25519Signature = [u8; 64];
/// A 48-byte launch measurement (SEV-SNP `MEASUREMENT`, TDX `MRTD`).
pub type Measurement = [u8; 48];
/// Names an attestation policy registered on chain ([`crate::Policies`]): the hash of the
/// policy document's canonical bytes, so an id always means the same rules.
pub type PolicyId = [u8; 32];
/// A job identifier chosen by the buyer.
pub type JobId = [u8; 32];
/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Most bytes of a GPU model name.
pub const MAX_GPU_MODEL_LEN: u32 = 64;
/// A GPU model name such as `NVIDIA H100 80GB HBM3`; empty for none or any.
pub type GpuModel = BoundedVec<u8, ConstU32<MAX_GPU_MODEL_LEN>>;
/// Most bytes of a GPU chip name.
pub const MAX_GPU_CHIP_LEN: u32 = 16;
/// A GPU chip name as NVIDIA's device certificate gives it, such as `GH100`; empty for none.
pub type GpuChip = BoundedVec<u8, ConstU32<MAX_GPU_CHIP_LEN>>;
/// Most bytes of a GPU driver or VBIOS version.
pub const MAX_GPU_VERSION_LEN: u32 = 32;
/// A GPU driver or VBIOS version as the signed report gives it (`550.90.07`, `96.00.9f.00.01`);
/// empty for none.
pub type GpuVersion = BoundedVec<u8, ConstU32<MAX_GPU_VERSION_LEN>>;
/// A set of tiers (no duplicates).
pub type TierSet = BoundedVec<Tier, ConstU32<3>>;
/// A set of TEE kinds (no duplicates).
pub type TeeKindSet = BoundedVec<TeeKind, ConstU32<3>>;

/// The balance type of the market's currency.
pub type BalanceOf<T> = <<T as Config>::Currency as fungible::Inspect<
    <T as polkadot_sdk::frame_system::Config>::AccountId,
>>::Balance;

/// How a job settles.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum Tier {
    /// Tier 1: one provider-signed receipt.
    #[codec(index = 1)]
    Signed,
    /// Tier 2: k of n bound providers commit the same result.
    #[codec(index = 2)]
    Quorum,
    /// Tier 3: a receipt signed by a hardware-attested key.
    #[codec(index = 3)]
    Attested,
}

impl Tier {
    /// The tier number written in receipts.
    pub const fn code(self) -> u8 {
        match self {
            Self::Signed => 1,
            Self::Quorum => 2,
            Self::Attested => 3,
        }
    }
}

/// A kind of trusted execution environment.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum TeeKind {
    /// AMD SEV-SNP confidential VM.
    #[codec(index = 1)]
    SevSnp,
    /// Intel TDX trust domain.
    #[codec(index = 2)]
    Tdx,
    /// Simulated evidence from a machine without a TEE; verifiers refuse it unless the policy
    /// explicitly allows it.
    #[codec(index = 3)]
    Simulated,
}

impl TeeKind {
    /// The TEE code written in receipts (`evidence.tee`).
    pub const fn code(self) -> u8 {
        match self {
            Self::SevSnp => 1,
            Self::Tdx => 2,
            Self::Simulated => 3,
        }
    }
}

/// The tier of a job with its tier-specific terms.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum TierTerms {
    /// Tier 1.
    #[codec(index = 1)]
    Signed,
    /// Tier 2: `n` providers are bound, the first `k` matching result commitments settle.
    /// `k` must be a strict majority of `n`, so two disjoint quorums cannot exist.
    #[codec(index = 2)]
    Quorum {
        /// Matching receipts needed.
        k: u32,
        /// Providers bound.
        n: u32,
    },
    /// Tier 3.
    #[codec(index = 3)]
    Attested {
        /// The attestation policy the provider's evidence must satisfy.
        policy: PolicyId,
        /// Demand evidence bound to the receipt itself instead of a registered attested key.
        fresh_quote: bool,
    },
}

impl TierTerms {
    /// The tier these terms belong to.
    pub const fn tier(&self) -> Tier {
        match self {
            Self::Signed => Tier::Signed,
            Self::Quorum { .. } => Tier::Quorum,
            Self::Attested { .. } => Tier::Attested,
        }
    }

    /// How many providers a binding must name.
    pub const fn provider_count(&self) -> u32 {
        match self {
            Self::Quorum { n, .. } => *n,
            Self::Signed | Self::Attested { .. } => 1,
        }
    }
}

/// What a provider offers.
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct Capabilities {
    /// Tiers the provider serves.
    pub tiers: TierSet,
    /// TEE kinds the provider runs (empty for none).
    pub tee_kinds: TeeKindSet,
    /// The provider's GPU model (empty for none).
    pub gpu_model: GpuModel,
}

/// The GPU products each chip is sold as, for matching a tier-3 job's `gpu_model` against the
/// chip its provider's GPU reports verified: a job's model matches a chip when it equals the
/// chip's name or contains one of its product names (`NVIDIA H100 80GB HBM3` contains `H100`).
/// Longer product names come first, so `H200` is never read as `H20`.
pub const GPU_PRODUCTS: &[(&[u8], &[&[u8]])] = &[
    (b"GH100", &[b"GH200", b"H200", b"H100", b"H800"]),
    (b"GB100", &[b"GB200", b"B200", b"B100"]),
];

/// Whether a job's `model` (ASCII, case-insensitive) names the verified `chip`.
pub fn gpu_model_matches_chip(model: &[u8], chip: &[u8]) -> bool {
    if chip.is_empty() {
        return false;
    }
    if model.eq_ignore_ascii_case(chip) {
        return true;
    }
    let contains = |needle: &[u8]| {
        !needle.is_empty()
            && model
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
    };
    // The first product name the model contains decides, so that it names one chip only.
    GPU_PRODUCTS
        .iter()
        .flat_map(|(c, products)| products.iter().map(move |p| (*c, *p)))
        .find(|(_, product)| contains(product))
        .is_some_and(|(c, _)| c.eq_ignore_ascii_case(chip))
}

/// What a job demands of its providers.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    PartialEq,
    Eq,
    Debug,
    Default,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct ProviderClass {
    /// Acceptable TEE kinds (empty: any).
    pub tee_kinds: TeeKindSet,
    /// Required GPU model (empty: any). Tier 3 matches it against the chip of the provider's
    /// verified GPU reports ([`gpu_model_matches_chip`]); tiers 1 and 2 against the model the
    /// provider declares.
    pub gpu_model: GpuModel,
    /// Fewest GPUs (tier 3: verified GPU reports bound to the provider's attested key; 0 for
    /// none). Tiers 1 and 2 cannot check a count and refuse a class that sets one.
    pub gpu_count: u32,
}

/// Hardware evidence submitted in an extrinsic, with the collateral needed to verify it.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    CloneNoBound,
    PartialEqNoBound,
    EqNoBound,
    DebugNoBound,
    TypeInfo,
    MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct AttestationSubmission<T: Config> {
    /// The evidence (CPU report or quote, optional GPU report, and the bound key and nonce).
    pub evidence: BoundedVec<u8, T::MaxEvidenceLen>,
    /// Collateral the runtime cannot fetch (VCEK/VLEK, TDX collateral, GPU chains).
    pub collateral: BoundedVec<u8, T::MaxCollateralLen>,
    /// The policy to verify against (registration only; receipts use the job's policy).
    pub policy: PolicyId,
    /// Registration and refresh only: the recent block whose hash the evidence's nonce derives
    /// from ([`crate::registration_nonce`]). Receipts bind their own nonce and leave it 0.
    pub anchor: BlockNumberFor<T>,
}

/// Where a job is in its life. A job waits as `Funded` until the chain binds every provider
/// it needs; a tier-2 job whose unresponsive providers were removed goes back to `Funded` with
/// the providers that delivered still bound.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum JobStatus {
    /// Escrow held, waiting for the chain to bind its providers (none, or fewer than it needs).
    Funded,
    /// All its providers bound, waiting for receipts.
    Bound,
    /// Escrow paid to providers.
    Settled,
    /// Escrow returned to the buyer.
    Refunded,
}

impl JobStatus {
    /// Whether the job still holds escrow.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Funded | Self::Bound)
    }
}

/// A funded job. Kept after settlement for audit.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Job<T: Config> {
    /// Who funded the job; the escrow is held on this account.
    pub buyer: T::AccountId,
    /// Hash of the job specification.
    pub spec_hash: Digest,
    /// Tier and its terms.
    pub terms: TierTerms,
    /// What providers must offer.
    pub class: ProviderClass,
    /// The escrowed price.
    pub price: BalanceOf<T>,
    /// Last block in which a receipt is accepted; refundable after it.
    pub deadline: BlockNumberFor<T>,
    /// Block in which the job was funded.
    pub funded_at: BlockNumberFor<T>,
    /// Blocks a bound provider has, from its binding, to deliver its receipt before anyone may
    /// reassign the job and take a share of its bond ([`crate::Pallet::reassign`]); 0 for
    /// none (the provider has until the deadline).
    pub response_blocks: BlockNumberFor<T>,
    /// Current status.
    pub status: JobStatus,
}

/// The providers the chain bound to a job.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Binding<T: Config> {
    /// Bound providers, in the order the dispatch rule picked them (tier-2 rounding follows
    /// this order); while the job is `Funded` again after a reassignment, those that delivered.
    pub providers: BoundedVec<T::AccountId, T::MaxQuorum>,
    /// The signing key each of `providers` (same position) was bound under: its receipt must
    /// be signed by that key, even if the provider rotated its key since.
    pub keys: BoundedVec<Ed25519Key, T::MaxQuorum>,
    /// Block of the last binding; a provider's response window starts here.
    pub bound_at: BlockNumberFor<T>,
}

impl<T: Config> Binding<T> {
    /// The key `provider` was bound under, if it is bound.
    pub fn key_of(&self, provider: &T::AccountId) -> Option<Ed25519Key> {
        self.providers
            .iter()
            .position(|p| p == provider)
            .and_then(|i| self.keys.get(i).copied())
    }
}

/// A provider's verified attested key (tier 3).
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct AttestedKey {
    /// TEE the key lives in.
    pub tee: TeeKind,
    /// Launch measurement of the TEE.
    pub measurement: Measurement,
    /// Policy the evidence satisfied.
    pub policy: PolicyId,
    /// SHA-256 of the registration evidence; key into `Attestations`.
    pub evidence_digest: Digest,
    /// Verified at this Unix time (ms).
    pub verified_at_ms: u64,
    /// Receipts signed by the key are refused from this Unix time (ms) on.
    pub expires_at_ms: u64,
    /// GPU reports verified with the evidence, each bound to the key.
    pub gpu_count: u32,
    /// Their chip, when they all name one (empty otherwise).
    pub gpu_chip: GpuChip,
    /// Their driver version, when they all report one (empty otherwise).
    pub gpu_driver: GpuVersion,
    /// Their VBIOS version, when they all report one (empty otherwise).
    pub gpu_vbios: GpuVersion,
    /// The X25519 sealing key the evidence binds with the signing key, if any: buyers seal a
    /// confidential job's secrets to it once they verified the agent.
    pub sealing_key: Option<[u8; 32]>,
    /// The evidence this one replaced at its last refresh, still honoured for attested-key
    /// receipts signed before the refresh, until that evidence's own expiry.
    pub previous: Option<PreviousEvidence>,
}

/// Attested-key evidence replaced by a refresh.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct PreviousEvidence {
    /// SHA-256 of the replaced evidence; key into `Attestations`.
    pub evidence_digest: Digest,
    /// Receipts referencing it are refused from this Unix time (ms) on.
    pub expires_at_ms: u64,
}

impl AttestedKey {
    /// Whether an attested-key receipt may reference `digest` at `now_ms`: the current
    /// evidence, or the one it replaced, each until its own expiry.
    pub fn honours(&self, digest: &Digest, now_ms: u64) -> bool {
        (*digest == self.evidence_digest && self.expires_at_ms > now_ms)
            || self
                .previous
                .is_some_and(|p| p.evidence_digest == *digest && p.expires_at_ms > now_ms)
    }
}

/// A registered provider.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct ProviderInfo<T: Config> {
    /// The ed25519 key that signs the provider's receipts.
    pub signing_key: Ed25519Key,
    /// What the provider offers.
    pub capabilities: Capabilities,
    /// The attestation of `signing_key`, for tier-3 providers.
    pub attested: Option<AttestedKey>,
    /// Block of registration.
    pub registered_at: BlockNumberFor<T>,
    /// Jobs bound to the provider that are neither settled nor refunded.
    pub active_jobs: u32,
    /// The provider's standing offer, if it takes jobs.
    pub offer: Option<Offer<T>>,
    /// The storage deposit held for the record under [`crate::HoldReason::ProviderDeposit`],
    /// returned when the provider deregisters.
    pub deposit: BalanceOf<T>,
    /// The key the provider rotated away from, kept while jobs bound under it are open.
    pub retiring: Option<RetiringKey>,
}

/// A signing key replaced by [`crate::Pallet::rotate_key`] while jobs bound under it were open:
/// their receipts are still checked against it (and, for tier 3, its attestation) until the
/// last of them closes; then it is dropped and the key may be registered again.
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct RetiringKey {
    /// The replaced key.
    pub signing_key: Ed25519Key,
    /// Its attestation (tier 3) as it stood at the rotation.
    pub attested: Option<AttestedKey>,
    /// Open jobs bound under it.
    pub open_jobs: u32,
}

/// A provider's standing offer: the chain binds it to jobs that match its registration, pay at
/// least its price, while it has free capacity and its bond is at least the chain's minimum.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Offer<T: Config> {
    /// The least a job pays it: a tier-1 or tier-3 job's price, a tier-2 job's price divided
    /// by `k` (each settling provider's share).
    pub price: BalanceOf<T>,
    /// Most jobs bound to it at once; 0 pauses the offer.
    pub capacity: u32,
    /// The bond held on the provider under [`crate::HoldReason::ProviderBond`]. A share goes to
    /// the buyer when the provider misses a job's response window or dissents from a settled
    /// tier-2 result.
    pub bond: BalanceOf<T>,
}

/// Why a provider lost part of its bond.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum PenaltyReason {
    /// It was bound to the job and delivered no receipt within the job's response window.
    Unresponsive,
    /// Its tier-2 receipt committed a result other than the one the quorum settled.
    Dissent,
}

/// A provider penalised on a job, kept for audit; it is never bound to that job again.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Penalty<T: Config> {
    /// The provider.
    pub provider: T::AccountId,
    /// Why.
    pub reason: PenaltyReason,
    /// The bond moved to the buyer.
    pub amount: BalanceOf<T>,
    /// Block of the penalty.
    pub at: BlockNumberFor<T>,
}

/// A verified receipt, kept for audit and replay.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct StoredReceipt<T: Config> {
    /// The SCALE-encoded receipt body exactly as signed.
    pub body: BoundedVec<u8, T::MaxReceiptLen>,
    /// The ed25519 signature over `digest`.
    pub signature: Ed25519Signature,
    /// The receipt digest.
    pub digest: Digest,
    /// The result commitment from the body.
    pub result_commitment: Digest,
    /// Key into `Attestations` of the evidence backing the receipt (tier 3).
    pub evidence_digest: Option<Digest>,
    /// Block of submission.
    pub submitted_at: BlockNumberFor<T>,
}

/// How a job ended.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub enum Outcome<T: Config> {
    /// Escrow paid to the providers whose receipts settled the job.
    Paid {
        /// The result the payees committed to.
        result_commitment: Digest,
        /// Each payee and its share; the shares sum to the job's price.
        payees: BoundedVec<(T::AccountId, BalanceOf<T>), T::MaxQuorum>,
    },
    /// Escrow returned to the buyer after the deadline.
    Refunded {
        /// The amount released.
        amount: BalanceOf<T>,
    },
}

/// The settlement record of a closed job.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Settlement<T: Config> {
    /// What happened to the escrow.
    pub outcome: Outcome<T>,
    /// Block of settlement.
    pub at: BlockNumberFor<T>,
}

/// Evidence that the chain verified, stored by content hash for audit and replay.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct AttestationRecord<T: Config> {
    /// The evidence bytes.
    pub evidence: BoundedVec<u8, T::MaxEvidenceLen>,
    /// The collateral it was verified with.
    pub collateral: BoundedVec<u8, T::MaxCollateralLen>,
    /// The policy it satisfied.
    pub policy: PolicyId,
    /// The key it binds.
    pub key: Ed25519Key,
    /// The TEE that produced it.
    pub tee: TeeKind,
    /// The launch measurement.
    pub measurement: Measurement,
    /// The nonce it binds.
    pub nonce: [u8; 32],
    /// Verified at this Unix time (ms).
    pub verified_at_ms: u64,
    /// Valid until this Unix time (ms), exclusive.
    pub expires_at_ms: u64,
    /// Who submitted it and holds its storage deposit.
    pub depositor: T::AccountId,
    /// The deposit held on `depositor` under [`crate::HoldReason::AttestationDeposit`] until
    /// the record is pruned ([`crate::Pallet::prune_attestation`]).
    pub deposit: BalanceOf<T>,
}

/// An attestation policy registered on chain. Never edited: a stricter policy is a new id.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct PolicyRecord<T: Config> {
    /// The canonical policy document, appraised by the runtime's verifier exactly as stored.
    pub document: BoundedVec<u8, T::MaxPolicyLen>,
    /// Who registered it and holds its deposit; `None` for the chain's genesis policies, which
    /// are never retired.
    pub owner: Option<T::AccountId>,
    /// The deposit held on the owner while the policy is registered.
    pub deposit: BalanceOf<T>,
    /// The TEE kinds it accepts.
    pub tees: TeeKindSet,
    /// `None` when tier-3 jobs and attested keys may use it (it pins what runs on every hardware
    /// TEE kind it accepts, or accepts only simulated evidence); otherwise the missing pin.
    pub unpinned: Option<crate::PolicyRejection>,
    /// How long a key attested under it stays valid after its evidence was produced (ms).
    pub key_lifetime_ms: Option<u64>,
    /// Unbound jobs funded under it plus attested keys registered under it (a bound job is
    /// held by its provider's key, registered under the same policy); it can be retired
    /// only at zero.
    pub users: u32,
    /// Block of registration.
    pub registered_at: BlockNumberFor<T>,
}
