//! The market's records and events as this client presents them: plain Rust types with JSON
//! forms (bytes as `0x` hex, accounts as SS58, balances as decimal strings, since JSON numbers
//! lose precision past 2^53), converted from the types generated from the runtime's metadata.

use serde::{Serialize, Serializer};
use subxt::utils::AccountId32;

use crate::runtime::runtime_types::pallet_sigil_market as rt_market;
use crate::runtime::runtime_types::pallet_sigil_market::types as rt;

/// A job id, chosen by the buyer.
pub type JobId = [u8; 32];
/// MINT in its smallest unit (12 decimals).
pub type Balance = u128;
/// A block number.
pub type BlockNumber = u32;

/// One MINT in the smallest unit.
pub const MINT: Balance = 1_000_000_000_000;

/// Serializes bytes as `0x` hex.
pub fn hex_bytes<S: Serializer, B: AsRef<[u8]>>(b: &B, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", hex::encode(b.as_ref())))
}

fn hex_opt<S: Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => hex_bytes(b, s),
        None => s.serialize_none(),
    }
}

/// Serializes an account as SS58 (generic prefix 42).
pub fn ss58<S: Serializer>(a: &AccountId32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&a.to_string())
}

fn hex_vec<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| format!("0x{}", hex::encode(b))))
}

fn ss58_vec<S: Serializer>(v: &[AccountId32], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

/// Serializes an optional account as SS58 or null.
pub fn ss58_opt<S: Serializer>(a: &Option<AccountId32>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => ss58(a, s),
        None => s.serialize_none(),
    }
}

/// Serializes a balance as a decimal string.
pub fn balance_str<S: Serializer>(b: &Balance, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&b.to_string())
}

/// How a job settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Tier {
    /// Tier 1: one provider-signed receipt.
    Signed,
    /// Tier 2: k of n matching receipts.
    Quorum,
    /// Tier 3: a hardware-attested key.
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

    pub(crate) fn to_gen(self) -> rt::Tier {
        match self {
            Self::Signed => rt::Tier::Signed,
            Self::Quorum => rt::Tier::Quorum,
            Self::Attested => rt::Tier::Attested,
        }
    }

    pub(crate) fn from_gen(t: &rt::Tier) -> Self {
        match t {
            rt::Tier::Signed => Self::Signed,
            rt::Tier::Quorum => Self::Quorum,
            rt::Tier::Attested => Self::Attested,
        }
    }
}

/// A kind of TEE, as the chain names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TeeKind {
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel TDX.
    Tdx,
    /// The agent's simulator (no TEE).
    Simulated,
}

impl TeeKind {
    pub(crate) fn to_gen(self) -> rt::TeeKind {
        match self {
            Self::SevSnp => rt::TeeKind::SevSnp,
            Self::Tdx => rt::TeeKind::Tdx,
            Self::Simulated => rt::TeeKind::Simulated,
        }
    }

    pub(crate) fn from_gen(t: &rt::TeeKind) -> Self {
        match t {
            rt::TeeKind::SevSnp => Self::SevSnp,
            rt::TeeKind::Tdx => Self::Tdx,
            rt::TeeKind::Simulated => Self::Simulated,
        }
    }

    /// The receipt's TEE kind for this chain TEE kind.
    pub fn receipt_tee(self) -> attestation_verifier::receipt::TeeKind {
        use attestation_verifier::receipt::TeeKind as R;
        match self {
            Self::SevSnp => R::SevSnp,
            Self::Tdx => R::Tdx,
            Self::Simulated => R::Simulated,
        }
    }
}

/// A job's tier and its tier-specific terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "tier")]
#[non_exhaustive]
pub enum TierTerms {
    /// Tier 1.
    Signed,
    /// Tier 2: `n` providers bound, `k` matching results settle (`k` a strict majority).
    Quorum {
        /// Matching receipts needed.
        k: u32,
        /// Providers bound.
        n: u32,
    },
    /// Tier 3 under an attestation policy.
    Attested {
        /// The policy id.
        #[serde(serialize_with = "hex_bytes")]
        policy: [u8; 32],
        /// Whether each receipt must carry evidence bound to itself.
        fresh_quote: bool,
    },
}

impl TierTerms {
    /// The tier.
    pub const fn tier(&self) -> Tier {
        match self {
            Self::Signed => Tier::Signed,
            Self::Quorum { .. } => Tier::Quorum,
            Self::Attested { .. } => Tier::Attested,
        }
    }

    /// The policy id for tier 3.
    pub const fn policy(&self) -> Option<[u8; 32]> {
        match self {
            Self::Attested { policy, .. } => Some(*policy),
            _ => None,
        }
    }

    pub(crate) fn to_gen(self) -> rt::TierTerms {
        match self {
            Self::Signed => rt::TierTerms::Signed,
            Self::Quorum { k, n } => rt::TierTerms::Quorum { k, n },
            Self::Attested {
                policy,
                fresh_quote,
            } => rt::TierTerms::Attested {
                policy,
                fresh_quote,
            },
        }
    }

    pub(crate) fn from_gen(t: &rt::TierTerms) -> Self {
        match t {
            rt::TierTerms::Signed => Self::Signed,
            rt::TierTerms::Quorum { k, n } => Self::Quorum { k: *k, n: *n },
            rt::TierTerms::Attested {
                policy,
                fresh_quote,
            } => Self::Attested {
                policy: *policy,
                fresh_quote: *fresh_quote,
            },
        }
    }
}

/// What a job demands of its providers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProviderClass {
    /// Acceptable TEE kinds (empty: any).
    pub tee_kinds: Vec<TeeKind>,
    /// Required GPU model (empty: any). Tier 3 matches it against the chip of the provider's
    /// verified GPU reports; tiers 1 and 2 against the model the provider declares.
    pub gpu_model: String,
    /// Fewest GPUs (tier 3 only: verified GPU reports bound to the provider's key).
    pub gpu_count: u32,
}

impl ProviderClass {
    pub(crate) fn to_gen(&self) -> rt::ProviderClass {
        rt::ProviderClass {
            tee_kinds: bounded(self.tee_kinds.iter().map(|t| t.to_gen()).collect()),
            gpu_model: bounded(self.gpu_model.as_bytes().to_vec()),
            gpu_count: self.gpu_count,
        }
    }

    pub(crate) fn from_gen(c: &rt::ProviderClass) -> Self {
        Self {
            tee_kinds: c.tee_kinds.0.iter().map(TeeKind::from_gen).collect(),
            gpu_model: String::from_utf8_lossy(&c.gpu_model.0).into_owned(),
            gpu_count: c.gpu_count,
        }
    }
}

/// What a provider offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Tiers served.
    pub tiers: Vec<Tier>,
    /// TEE kinds run (empty for none).
    pub tee_kinds: Vec<TeeKind>,
    /// GPU model (empty for none).
    pub gpu_model: String,
}

impl Capabilities {
    pub(crate) fn to_gen(&self) -> rt::Capabilities {
        rt::Capabilities {
            tiers: bounded(self.tiers.iter().map(|t| t.to_gen()).collect()),
            tee_kinds: bounded(self.tee_kinds.iter().map(|t| t.to_gen()).collect()),
            gpu_model: bounded(self.gpu_model.as_bytes().to_vec()),
        }
    }

    pub(crate) fn from_gen(c: &rt::Capabilities) -> Self {
        Self {
            tiers: c.tiers.0.iter().map(Tier::from_gen).collect(),
            tee_kinds: c.tee_kinds.0.iter().map(TeeKind::from_gen).collect(),
            gpu_model: String::from_utf8_lossy(&c.gpu_model.0).into_owned(),
        }
    }
}

pub(crate) fn bounded<T>(
    v: Vec<T>,
) -> crate::runtime::runtime_types::bounded_collections::bounded_vec::BoundedVec<T> {
    crate::runtime::runtime_types::bounded_collections::bounded_vec::BoundedVec(v)
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum JobStatus {
    /// Escrow held, waiting for the chain to bind its providers.
    Funded,
    /// All its providers bound, receipts awaited.
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

    fn from_gen(s: &rt::JobStatus) -> Self {
        match s {
            rt::JobStatus::Funded => Self::Funded,
            rt::JobStatus::Bound => Self::Bound,
            rt::JobStatus::Settled => Self::Settled,
            rt::JobStatus::Refunded => Self::Refunded,
        }
    }
}

/// A funded job, as stored on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Who funded it.
    #[serde(serialize_with = "ss58")]
    pub buyer: AccountId32,
    /// Hash of the job specification.
    #[serde(serialize_with = "hex_bytes")]
    pub spec_hash: [u8; 32],
    /// Tier and terms.
    pub terms: TierTerms,
    /// What providers must offer.
    pub class: ProviderClass,
    /// Escrowed price.
    #[serde(serialize_with = "balance_str")]
    pub price: Balance,
    /// Last block for receipts; refundable after it.
    pub deadline: BlockNumber,
    /// Block of funding.
    pub funded_at: BlockNumber,
    /// Blocks a bound provider has to deliver, from its binding (0: until the deadline).
    pub response_blocks: BlockNumber,
    /// Status.
    pub status: JobStatus,
}

impl Job {
    pub(crate) fn from_gen(j: &rt::Job) -> Self {
        Self {
            buyer: j.buyer,
            spec_hash: j.spec_hash,
            terms: TierTerms::from_gen(&j.terms),
            class: ProviderClass::from_gen(&j.class),
            price: j.price,
            deadline: j.deadline,
            funded_at: j.funded_at,
            response_blocks: j.response_blocks,
            status: JobStatus::from_gen(&j.status),
        }
    }
}

/// What a buyer funds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOrder {
    /// The job's id (the buyer chooses it; unique on chain).
    pub job_id: JobId,
    /// SHA-256 of the job specification.
    pub spec_hash: [u8; 32],
    /// Tier and terms.
    pub terms: TierTerms,
    /// Provider class.
    pub class: ProviderClass,
    /// Price to escrow.
    pub price: Balance,
    /// Last block for receipts.
    pub deadline: BlockNumber,
    /// Blocks a bound provider has to deliver before anyone may reassign the job and take a
    /// share of its bond (0: until the deadline).
    pub response_blocks: BlockNumber,
}

/// The providers bound to a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// In the order the chain's dispatch rule picked them.
    #[serde(serialize_with = "ss58_vec")]
    pub providers: Vec<AccountId32>,
    /// The receipt key each provider (same position) was bound under: its receipt must be
    /// signed by it, even if the provider rotated its key since.
    #[serde(serialize_with = "hex_vec")]
    pub keys: Vec<[u8; 32]>,
    /// Block of the binding.
    pub bound_at: BlockNumber,
}

impl Binding {
    pub(crate) fn from_gen(b: &rt::Binding) -> Self {
        Self {
            providers: b.providers.0.clone(),
            keys: b.keys.0.clone(),
            bound_at: b.bound_at,
        }
    }

    /// The key `provider` was bound under, if it is bound.
    pub fn key_of(&self, provider: &AccountId32) -> Option<[u8; 32]> {
        self.providers
            .iter()
            .position(|p| p == provider)
            .and_then(|i| self.keys.get(i).copied())
    }
}

/// A provider's attested key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttestedKey {
    /// TEE holding the key.
    pub tee: TeeKind,
    /// Launch measurement.
    #[serde(serialize_with = "hex_bytes")]
    pub measurement: [u8; 48],
    /// Policy satisfied.
    #[serde(serialize_with = "hex_bytes")]
    pub policy: [u8; 32],
    /// Digest of the registration evidence (key into the attestation records).
    #[serde(serialize_with = "hex_bytes")]
    pub evidence_digest: [u8; 32],
    /// Verified at (Unix ms).
    pub verified_at_ms: u64,
    /// Expires at (Unix ms).
    pub expires_at_ms: u64,
    /// GPU reports verified with the evidence, each bound to the key.
    pub gpu_count: u32,
    /// Their chip (e.g. `GH100`), when they all name one.
    pub gpu_chip: String,
    /// Their driver version, when they all report one.
    pub gpu_driver: String,
    /// Their VBIOS version, when they all report one.
    pub gpu_vbios: String,
    /// The X25519 sealing key the evidence binds (`0x` hex), if any: what a buyer seals a
    /// confidential job's secrets to, after verifying the agent itself.
    pub sealing_key: Option<String>,
    /// The evidence the last refresh replaced: receipts signed before the refresh may still
    /// reference it until its own expiry.
    pub previous: Option<PreviousEvidence>,
}

/// Attested-key evidence replaced by a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PreviousEvidence {
    /// Its digest.
    #[serde(serialize_with = "hex_bytes")]
    pub evidence_digest: [u8; 32],
    /// Expires at (Unix ms).
    pub expires_at_ms: u64,
}

impl AttestedKey {
    /// Whether the chain takes attested-key receipts that reference `digest` (the current
    /// evidence or the one it replaced; expiry is checked by the chain at submission).
    pub fn honours(&self, digest: &[u8; 32]) -> bool {
        self.evidence_digest == *digest
            || self.previous.is_some_and(|p| p.evidence_digest == *digest)
    }
}

/// A registered provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Provider {
    /// The account.
    #[serde(serialize_with = "ss58")]
    pub account: AccountId32,
    /// The ed25519 receipt key.
    #[serde(serialize_with = "hex_bytes")]
    pub signing_key: [u8; 32],
    /// Offer.
    pub capabilities: Capabilities,
    /// For tier 3.
    pub attested: Option<AttestedKey>,
    /// Block of registration.
    pub registered_at: BlockNumber,
    /// Bound jobs still open.
    pub active_jobs: u32,
    /// Its standing offer, if it takes jobs.
    pub offer: Option<Offer>,
    /// The storage deposit held for its record (returned when it deregisters).
    #[serde(serialize_with = "balance_str")]
    pub deposit: Balance,
    /// The key it rotated away from, kept while jobs bound under it are open.
    pub retiring: Option<RetiringKey>,
}

/// A receipt key a provider rotated away from while jobs bound under it were open: their
/// receipts are still checked against it until the last of them closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetiringKey {
    /// The replaced key.
    #[serde(serialize_with = "hex_bytes")]
    pub signing_key: [u8; 32],
    /// Its attestation (tier 3) as it stood at the rotation.
    pub attested: Option<AttestedKey>,
    /// Open jobs bound under it.
    pub open_jobs: u32,
}

/// A provider's standing offer: the chain binds it to jobs that pay at least `price` while it
/// has free capacity and its bond is at least the chain's minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// The least a job pays it (tier 2: its share, the price over `k`).
    #[serde(serialize_with = "balance_str")]
    pub price: Balance,
    /// Most jobs bound at once; 0 pauses the offer.
    pub capacity: u32,
    /// Bond held on the provider; shares go to buyers whose jobs it fails.
    #[serde(serialize_with = "balance_str")]
    pub bond: Balance,
}

/// Why a provider lost part of its bond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyReason {
    /// No receipt within the job's response window.
    Unresponsive,
    /// A tier-2 receipt disagreeing with the settled result.
    Dissent,
}

impl PenaltyReason {
    pub(crate) fn from_gen(r: &rt::PenaltyReason) -> Self {
        match r {
            rt::PenaltyReason::Unresponsive => Self::Unresponsive,
            rt::PenaltyReason::Dissent => Self::Dissent,
        }
    }
}

/// A provider penalised on a job (it is never bound to that job again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Penalty {
    /// The provider.
    #[serde(serialize_with = "ss58")]
    pub provider: AccountId32,
    /// Why.
    pub reason: PenaltyReason,
    /// Bond moved to the buyer.
    #[serde(serialize_with = "balance_str")]
    pub amount: Balance,
    /// Block of the penalty.
    pub at: BlockNumber,
}

impl Penalty {
    pub(crate) fn from_gen(p: &rt::Penalty) -> Self {
        Self {
            provider: p.provider,
            reason: PenaltyReason::from_gen(&p.reason),
            amount: p.amount,
            at: p.at,
        }
    }
}

impl Provider {
    pub(crate) fn from_gen(account: AccountId32, p: &rt::ProviderInfo) -> Self {
        Self {
            account,
            signing_key: p.signing_key,
            capabilities: Capabilities::from_gen(&p.capabilities),
            attested: p.attested.as_ref().map(AttestedKey::from_gen),
            registered_at: p.registered_at,
            active_jobs: p.active_jobs,
            offer: p.offer.as_ref().map(|o| Offer {
                price: o.price,
                capacity: o.capacity,
                bond: o.bond,
            }),
            deposit: p.deposit,
            retiring: p.retiring.as_ref().map(|r| RetiringKey {
                signing_key: r.signing_key,
                attested: r.attested.as_ref().map(AttestedKey::from_gen),
                open_jobs: r.open_jobs,
            }),
        }
    }
}

impl AttestedKey {
    pub(crate) fn from_gen(a: &rt::AttestedKey) -> Self {
        Self {
            tee: TeeKind::from_gen(&a.tee),
            measurement: a.measurement,
            policy: a.policy,
            evidence_digest: a.evidence_digest,
            verified_at_ms: a.verified_at_ms,
            expires_at_ms: a.expires_at_ms,
            gpu_count: a.gpu_count,
            gpu_chip: String::from_utf8_lossy(&a.gpu_chip.0).into_owned(),
            gpu_driver: String::from_utf8_lossy(&a.gpu_driver.0).into_owned(),
            gpu_vbios: String::from_utf8_lossy(&a.gpu_vbios.0).into_owned(),
            sealing_key: a.sealing_key.map(|k| format!("0x{}", hex::encode(k))),
            previous: a.previous.as_ref().map(|p| PreviousEvidence {
                evidence_digest: p.evidence_digest,
                expires_at_ms: p.expires_at_ms,
            }),
        }
    }
}

/// An accepted receipt as the chain stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredReceipt {
    /// The provider that submitted it.
    #[serde(serialize_with = "ss58")]
    pub provider: AccountId32,
    /// SCALE receipt body as signed.
    #[serde(serialize_with = "hex_bytes")]
    pub body: Vec<u8>,
    /// Ed25519 signature over the digest.
    #[serde(serialize_with = "hex_bytes")]
    pub signature: [u8; 64],
    /// Receipt digest.
    #[serde(serialize_with = "hex_bytes")]
    pub digest: [u8; 32],
    /// Result commitment.
    #[serde(serialize_with = "hex_bytes")]
    pub result_commitment: [u8; 32],
    /// Evidence it rests on (tier 3).
    #[serde(serialize_with = "hex_opt")]
    pub evidence_digest: Option<[u8; 32]>,
    /// Block of submission.
    pub submitted_at: BlockNumber,
}

impl StoredReceipt {
    pub(crate) fn from_gen(provider: AccountId32, r: &rt::StoredReceipt) -> Self {
        Self {
            provider,
            body: r.body.0.clone(),
            signature: r.signature,
            digest: r.digest,
            result_commitment: r.result_commitment,
            evidence_digest: r.evidence_digest,
            submitted_at: r.submitted_at,
        }
    }

    /// The receipt as the agent and `sigil-verify receipt` read it: `SCALE(SignedReceipt)`.
    pub fn signed_receipt_bytes(&self) -> Vec<u8> {
        attestation_verifier::receipt::SignedReceipt {
            body: self.body.clone(),
            signature: self.signature,
        }
        .to_bytes()
    }
}

/// A payee and its share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Payee {
    /// The provider.
    #[serde(serialize_with = "ss58")]
    pub account: AccountId32,
    /// Its share.
    #[serde(serialize_with = "balance_str")]
    pub amount: Balance,
}

/// How a closed job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
#[non_exhaustive]
pub enum Outcome {
    /// Paid to the providers whose receipts settled it.
    Paid {
        /// The settled result.
        #[serde(serialize_with = "hex_bytes")]
        result_commitment: [u8; 32],
        /// Payees and shares (summing to the price).
        payees: Vec<Payee>,
    },
    /// Returned to the buyer.
    Refunded {
        /// Amount.
        #[serde(serialize_with = "balance_str")]
        amount: Balance,
    },
}

/// A settlement record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// What happened to the escrow.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Block of settlement.
    pub at: BlockNumber,
}

pub(crate) fn payees_from_gen(p: &[(AccountId32, u128)]) -> Vec<Payee> {
    p.iter()
        .map(|(account, amount)| Payee {
            account: *account,
            amount: *amount,
        })
        .collect()
}

impl Settlement {
    pub(crate) fn from_gen(s: &rt::Settlement) -> Self {
        let outcome = match &s.outcome {
            rt::Outcome::Paid {
                result_commitment,
                payees,
            } => Outcome::Paid {
                result_commitment: *result_commitment,
                payees: payees_from_gen(&payees.0),
            },
            rt::Outcome::Refunded { amount } => Outcome::Refunded { amount: *amount },
        };
        Self { outcome, at: s.at }
    }
}

/// Evidence the chain verified, by content digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttestationRecord {
    /// `sha256("sigil.evidence.v1\0" || evidence)`.
    #[serde(serialize_with = "hex_bytes")]
    pub digest: [u8; 32],
    /// The evidence bundle.
    #[serde(serialize_with = "hex_bytes")]
    pub evidence: Vec<u8>,
    /// The collateral it was verified with.
    #[serde(serialize_with = "hex_bytes")]
    pub collateral: Vec<u8>,
    /// The policy it satisfied.
    #[serde(serialize_with = "hex_bytes")]
    pub policy: [u8; 32],
    /// The key it binds.
    #[serde(serialize_with = "hex_bytes")]
    pub key: [u8; 32],
    /// Its TEE.
    pub tee: TeeKind,
    /// Launch measurement.
    #[serde(serialize_with = "hex_bytes")]
    pub measurement: [u8; 48],
    /// The nonce it binds.
    #[serde(serialize_with = "hex_bytes")]
    pub nonce: [u8; 32],
    /// Verified at (Unix ms).
    pub verified_at_ms: u64,
    /// Valid until (Unix ms, exclusive).
    pub expires_at_ms: u64,
    /// Who submitted it and holds its storage deposit.
    #[serde(serialize_with = "ss58")]
    pub depositor: AccountId32,
    /// The deposit, returned when the expired record is pruned.
    #[serde(serialize_with = "balance_str")]
    pub deposit: Balance,
    /// Read from the state at this block because it had been pruned since (`None`: read at
    /// the record's block).
    pub archived_at: Option<u64>,
}

impl AttestationRecord {
    pub(crate) fn from_gen(digest: [u8; 32], a: &rt::AttestationRecord) -> Self {
        Self {
            digest,
            evidence: a.evidence.0.clone(),
            collateral: a.collateral.0.clone(),
            policy: a.policy,
            key: a.key,
            tee: TeeKind::from_gen(&a.tee),
            measurement: a.measurement,
            nonce: a.nonce,
            verified_at_ms: a.verified_at_ms,
            expires_at_ms: a.expires_at_ms,
            depositor: a.depositor,
            deposit: a.deposit,
            archived_at: None,
        }
    }
}

/// Why the chain refused evidence (the market's `AttestationFailure`), by name.
pub(crate) fn attestation_failure_name(f: &rt_market::attestation::AttestationFailure) -> String {
    format!("{f:?}")
}

/// A market event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
#[non_exhaustive]
pub enum MarketEvent {
    /// A provider registered.
    ProviderRegistered {
        /// Account.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// Receipt key.
        #[serde(serialize_with = "hex_bytes")]
        signing_key: [u8; 32],
        /// Tiers.
        tiers: Vec<Tier>,
        /// TEE and key expiry (Unix ms) for tier 3.
        attested: Option<(TeeKind, u64)>,
    },
    /// A provider deregistered.
    ProviderDeregistered {
        /// Account.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
    },
    /// A provider replaced its receipt key; jobs bound under the old one still settle with it.
    KeyRotated {
        /// Account.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// The replaced key.
        #[serde(serialize_with = "hex_bytes")]
        old_key: [u8; 32],
        /// The new key.
        #[serde(serialize_with = "hex_bytes")]
        new_key: [u8; 32],
        /// TEE and key expiry (Unix ms) for tier 3.
        attested: Option<(TeeKind, u64)>,
        /// Open jobs bound under the old key.
        open_jobs: u32,
    },
    /// The last job bound under a rotated-away key closed: the key is dropped.
    KeyRetired {
        /// Account.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// The dropped key.
        #[serde(serialize_with = "hex_bytes")]
        key: [u8; 32],
    },
    /// An expired attestation record was removed from state; its deposit returned.
    AttestationPruned {
        /// Its digest.
        #[serde(serialize_with = "hex_bytes")]
        evidence_digest: [u8; 32],
        /// Who had submitted it.
        #[serde(serialize_with = "ss58")]
        depositor: AccountId32,
        /// The deposit returned.
        #[serde(serialize_with = "balance_str")]
        deposit: Balance,
    },
    /// A tier-3 provider replaced its attested key's evidence.
    AttestationRefreshed {
        /// Account.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// Digest of the new evidence.
        #[serde(serialize_with = "hex_bytes")]
        evidence_digest: [u8; 32],
        /// The key's new expiry (Unix ms).
        expires_at_ms: u64,
    },
    /// A job was funded.
    JobFunded {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Buyer.
        #[serde(serialize_with = "ss58")]
        buyer: AccountId32,
        /// Tier.
        tier: Tier,
        /// Escrowed price.
        #[serde(serialize_with = "balance_str")]
        price: Balance,
        /// Deadline block.
        deadline: BlockNumber,
    },
    /// Providers were bound.
    JobBound {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Providers.
        #[serde(serialize_with = "ss58_vec")]
        providers: Vec<AccountId32>,
    },
    /// No offer could serve a funded job yet: it waits.
    JobWaiting {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
    },
    /// A provider set its offer.
    OfferSet {
        /// Provider.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// Price.
        #[serde(serialize_with = "balance_str")]
        price: Balance,
        /// Capacity.
        capacity: u32,
        /// Bond.
        #[serde(serialize_with = "balance_str")]
        bond: Balance,
    },
    /// A provider withdrew its offer.
    OfferWithdrawn {
        /// Provider.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
    },
    /// A provider lost part of its bond to a job's buyer.
    ProviderPenalised {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Provider.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// Why.
        reason: PenaltyReason,
        /// Amount moved to the buyer.
        #[serde(serialize_with = "balance_str")]
        amount: Balance,
    },
    /// A buyer cancelled a job no provider was bound to.
    JobCancelled {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Buyer.
        #[serde(serialize_with = "ss58")]
        buyer: AccountId32,
        /// Amount released.
        #[serde(serialize_with = "balance_str")]
        amount: Balance,
    },
    /// A receipt verified.
    ReceiptAccepted {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Provider.
        #[serde(serialize_with = "ss58")]
        provider: AccountId32,
        /// Receipt digest.
        #[serde(serialize_with = "hex_bytes")]
        receipt_digest: [u8; 32],
        /// Result commitment.
        #[serde(serialize_with = "hex_bytes")]
        result_commitment: [u8; 32],
    },
    /// A job settled.
    JobSettled {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Result.
        #[serde(serialize_with = "hex_bytes")]
        result_commitment: [u8; 32],
        /// Payees.
        payees: Vec<Payee>,
    },
    /// An attestation policy was registered.
    PolicyRegistered {
        /// Its id.
        #[serde(serialize_with = "hex_bytes")]
        policy: [u8; 32],
        /// Who registered it (none at genesis).
        #[serde(serialize_with = "ss58_opt")]
        owner: Option<AccountId32>,
        /// Whether tier-3 jobs may name it.
        pinned: bool,
    },
    /// An attestation policy was retired.
    PolicyRetired {
        /// Its id.
        #[serde(serialize_with = "hex_bytes")]
        policy: [u8; 32],
    },
    /// A job's escrow returned to its buyer.
    JobRefunded {
        /// Job.
        #[serde(serialize_with = "hex_bytes")]
        job_id: JobId,
        /// Buyer.
        #[serde(serialize_with = "ss58")]
        buyer: AccountId32,
        /// Amount.
        #[serde(serialize_with = "balance_str")]
        amount: Balance,
    },
}

impl MarketEvent {
    /// The job the event is about, if any.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Self::JobFunded { job_id, .. }
            | Self::JobBound { job_id, .. }
            | Self::JobWaiting { job_id }
            | Self::ProviderPenalised { job_id, .. }
            | Self::JobCancelled { job_id, .. }
            | Self::ReceiptAccepted { job_id, .. }
            | Self::JobSettled { job_id, .. }
            | Self::JobRefunded { job_id, .. } => Some(*job_id),
            Self::ProviderRegistered { .. }
            | Self::ProviderDeregistered { .. }
            | Self::AttestationRefreshed { .. }
            | Self::KeyRotated { .. }
            | Self::KeyRetired { .. }
            | Self::AttestationPruned { .. }
            | Self::OfferSet { .. }
            | Self::OfferWithdrawn { .. }
            | Self::PolicyRegistered { .. }
            | Self::PolicyRetired { .. } => None,
        }
    }

    pub(crate) fn from_gen(e: &rt_market::pallet::Event) -> Self {
        use rt_market::pallet::Event as E;
        match e {
            E::ProviderRegistered {
                provider,
                signing_key,
                tiers,
                attested,
            } => Self::ProviderRegistered {
                provider: *provider,
                signing_key: *signing_key,
                tiers: tiers.0.iter().map(Tier::from_gen).collect(),
                attested: attested
                    .as_ref()
                    .map(|(t, exp)| (TeeKind::from_gen(t), *exp)),
            },
            E::ProviderDeregistered { provider } => Self::ProviderDeregistered {
                provider: *provider,
            },
            E::KeyRotated {
                provider,
                old_key,
                new_key,
                attested,
                open_jobs,
            } => Self::KeyRotated {
                provider: *provider,
                old_key: *old_key,
                new_key: *new_key,
                attested: attested
                    .as_ref()
                    .map(|(t, exp)| (TeeKind::from_gen(t), *exp)),
                open_jobs: *open_jobs,
            },
            E::KeyRetired { provider, key } => Self::KeyRetired {
                provider: *provider,
                key: *key,
            },
            E::AttestationPruned {
                evidence_digest,
                depositor,
                deposit,
            } => Self::AttestationPruned {
                evidence_digest: *evidence_digest,
                depositor: *depositor,
                deposit: *deposit,
            },
            E::AttestationRefreshed {
                provider,
                evidence_digest,
                expires_at_ms,
            } => Self::AttestationRefreshed {
                provider: *provider,
                evidence_digest: *evidence_digest,
                expires_at_ms: *expires_at_ms,
            },
            E::JobFunded {
                job_id,
                buyer,
                tier,
                price,
                deadline,
            } => Self::JobFunded {
                job_id: *job_id,
                buyer: *buyer,
                tier: Tier::from_gen(tier),
                price: *price,
                deadline: *deadline,
            },
            E::JobBound { job_id, providers } => Self::JobBound {
                job_id: *job_id,
                providers: providers.0.clone(),
            },
            E::JobWaiting { job_id } => Self::JobWaiting { job_id: *job_id },
            E::OfferSet {
                provider,
                price,
                capacity,
                bond,
            } => Self::OfferSet {
                provider: *provider,
                price: *price,
                capacity: *capacity,
                bond: *bond,
            },
            E::OfferWithdrawn { provider } => Self::OfferWithdrawn {
                provider: *provider,
            },
            E::ProviderPenalised {
                job_id,
                provider,
                reason,
                amount,
            } => Self::ProviderPenalised {
                job_id: *job_id,
                provider: *provider,
                reason: PenaltyReason::from_gen(reason),
                amount: *amount,
            },
            E::JobCancelled {
                job_id,
                buyer,
                amount,
            } => Self::JobCancelled {
                job_id: *job_id,
                buyer: *buyer,
                amount: *amount,
            },
            E::ReceiptAccepted {
                job_id,
                provider,
                receipt_digest,
                result_commitment,
            } => Self::ReceiptAccepted {
                job_id: *job_id,
                provider: *provider,
                receipt_digest: *receipt_digest,
                result_commitment: *result_commitment,
            },
            E::JobSettled {
                job_id,
                result_commitment,
                payees,
            } => Self::JobSettled {
                job_id: *job_id,
                result_commitment: *result_commitment,
                payees: payees_from_gen(&payees.0),
            },
            E::PolicyRegistered {
                policy,
                owner,
                pinned,
            } => Self::PolicyRegistered {
                policy: *policy,
                owner: *owner,
                pinned: *pinned,
            },
            E::PolicyRetired { policy } => Self::PolicyRetired { policy: *policy },
            E::JobRefunded {
                job_id,
                buyer,
                amount,
            } => Self::JobRefunded {
                job_id: *job_id,
                buyer: *buyer,
                amount: *amount,
            },
        }
    }
}

/// Evidence submitted with a registration or a fresh-quote receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// `SCALE(EvidenceBundle)`.
    pub bundle: Vec<u8>,
    /// The policy to verify it against (registration; receipts use the job's policy).
    pub policy: [u8; 32],
    /// Registration and refresh: the block the evidence's nonce is anchored at (see
    /// [`crate::client::RegistrationAnchor`]); 0 for receipts.
    pub anchor: BlockNumber,
}

/// An attestation policy registered on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// Its id (the hash of its document).
    #[serde(serialize_with = "hex_bytes")]
    pub id: [u8; 32],
    /// The canonical document.
    #[serde(serialize_with = "hex_bytes")]
    pub document: Vec<u8>,
    /// Who registered it and holds its deposit (none for genesis policies).
    #[serde(serialize_with = "ss58_opt")]
    pub owner: Option<AccountId32>,
    /// The deposit held.
    #[serde(serialize_with = "balance_str")]
    pub deposit: Balance,
    /// TEE kinds it accepts.
    pub tees: Vec<TeeKind>,
    /// Whether tier-3 jobs may name it; otherwise the pin it lacks.
    pub unpinned: Option<String>,
    /// How long a key attested under it stays valid (ms), if it limits that.
    pub key_lifetime_ms: Option<u64>,
    /// Open jobs and attested keys using it.
    pub users: u32,
    /// Block of registration.
    pub registered_at: BlockNumber,
}

impl PolicyInfo {
    pub(crate) fn from_gen(id: [u8; 32], p: &rt::PolicyRecord) -> Self {
        Self {
            id,
            document: p.document.0.clone(),
            owner: p.owner,
            deposit: p.deposit,
            tees: p.tees.0.iter().map(TeeKind::from_gen).collect(),
            unpinned: p.unpinned.as_ref().map(|r| format!("{r:?}")),
            key_lifetime_ms: p.key_lifetime_ms,
            users: p.users,
            registered_at: p.registered_at,
        }
    }
}
