//! The boundary between the pallet and the attestation verifier.
//!
//! The pallet never parses hardware evidence itself: it hands the evidence, the collateral that
//! travelled with it, the policy the job or the registration names and the current time to
//! [`AttestationVerifier::verify`], and acts on the typed result. The runtime plugs in the
//! no_std verifier crate; the mock runtime plugs in a verifier over a test signing scheme.

use crate::types::{Ed25519Key, GpuChip, GpuVersion, Measurement, PolicyId, TeeKind, TeeKindSet};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::frame_support::PalletError;
use scale_info::TypeInfo;

/// What a successful verification established.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedAttestation {
    /// The ed25519 key the evidence binds (the TEE's receipt-signing key).
    pub key: Ed25519Key,
    /// The kind of TEE that produced the evidence.
    pub tee: TeeKind,
    /// The launch measurement (SEV-SNP `MEASUREMENT`, TDX `MRTD`).
    pub measurement: Measurement,
    /// The 32-byte challenge the evidence binds together with `key`.
    pub nonce: [u8; 32],
    /// The evidence, and the collateral it was checked with, are valid until this Unix time in
    /// milliseconds (exclusive).
    pub expires_at_ms: u64,
    /// How many GPU reports verified with the evidence (each bound to `key`).
    pub gpu_count: u32,
    /// The chip the verified GPU reports name (e.g. `GH100`), when they all name the same one;
    /// empty without GPUs or when they differ.
    pub gpu_chip: GpuChip,
    /// The driver version the verified GPU reports carry, when they all carry the same one.
    pub gpu_driver: GpuVersion,
    /// The VBIOS version the verified GPU reports carry, when they all carry the same one.
    pub gpu_vbios: GpuVersion,
    /// The X25519 sealing (HPKE) key the evidence binds with `key` (binding v2), if any:
    /// what buyers seal a confidential job's secrets to.
    pub sealing_key: Option<[u8; 32]>,
}

/// What the chain needs to know of a policy document, read by the verifier that will appraise
/// evidence under it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PolicySummary {
    /// The policy's id: the hash of its canonical bytes.
    pub id: PolicyId,
    /// The TEE kinds whose evidence it accepts.
    pub tees: TeeKindSet,
    /// `None` when it pins what runs on every hardware TEE kind it accepts (or accepts only
    /// simulated evidence); otherwise the rule a tier-3 policy must set (e.g.
    /// `snp.measurements`), as [`PolicyRejection::NotPinned`] reports it.
    pub unpinned: Option<PolicyRejection>,
    /// How long an attested key stays valid after its evidence was produced, if the policy
    /// limits it (milliseconds).
    pub key_lifetime_ms: Option<u64>,
}

/// Why a policy document was refused, or cannot serve tier 3.
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
    PalletError,
)]
pub enum PolicyRejection {
    /// The bytes do not decode as a policy document of a known version.
    Malformed,
    /// The bytes decode, but are not the document's canonical encoding (unsorted or duplicate
    /// list entries, a non-canonical spelling): the same rules would get two ids.
    NotCanonical,
    /// A value is outside its domain (a wrong-length hash, an unknown name).
    InvalidValue,
    /// The policy accepts SEV-SNP evidence without pinning `snp.measurements`.
    SnpMeasurementNotPinned,
    /// The policy accepts TDX evidence without pinning `tdx.mrtds`.
    TdxMrtdNotPinned,
}

/// Why evidence was refused. Carried inside the pallet's `AttestationRejected` error.
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
    PalletError,
)]
pub enum AttestationFailure {
    /// The evidence or the collateral does not parse.
    Malformed,
    /// The policy id names no policy the verifier knows.
    UnknownPolicy,
    /// The signing chain does not lead to a pinned vendor root.
    UntrustedSigner,
    /// A signature over the evidence or the collateral does not verify.
    BadSignature,
    /// The collateral or a certificate is not valid at the verification time.
    OutsideValidity,
    /// The measurement is not one the policy accepts.
    MeasurementRejected,
    /// The TCB is below the policy's minimum, or its status is not allowed.
    TcbRejected,
    /// The TEE runs in debug mode.
    DebugEnabled,
    /// Simulated evidence, and the policy does not allow it.
    SimulatedRejected,
    /// The evidence comes from a TEE kind the verifier or the policy does not support.
    UnsupportedTee,
    /// The hardware evidence does not bind the key it is presented for: its REPORT_DATA (or a
    /// GPU report's nonce) is not the binding of that key and nonce, so the TEE never vouched
    /// for the key.
    KeyNotBound,
    /// The platform's hardware identity (SEV-SNP `CHIP_ID`, TDX FMSPC or PPID) is denied by the
    /// policy, or not on its allow list.
    PlatformRejected,
    /// The GPU reports do not meet the policy: too few, another chip, or not in confidential
    /// mode.
    GpusRejected,
}

/// What verifying a piece of evidence will cost, read from its bytes before it is verified:
/// the counts of the items whose checks dominate the verifier's work, and all its bytes. The
/// pallet charges [`crate::WeightInfo::verify_evidence`] at these values before dispatch.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct EvidenceCost {
    /// GPU reports (each: a device chain, a report signature, RIM comparisons).
    pub gpus: u32,
    /// Reference integrity manifests (each: an XML signature and its signing chain).
    pub rims: u32,
    /// OCSP responses (each parsed and matched against the checked certificates).
    pub ocsp: u32,
    /// Bytes of the evidence and its collateral.
    pub bytes: u32,
}

/// Verifies hardware evidence for the pallet. Time is an input; implementations read no clock.
pub trait AttestationVerifier {
    /// The cost of verifying `evidence` with `collateral`, read without verifying anything.
    ///
    /// It runs before dispatch (in the weight of the calls that carry evidence), so it must be
    /// cheap (bounded work, independent of the bytes' content beyond length prefixes), total
    /// (never fails, never panics) and conservative: what it cannot read counts at the
    /// verifier's caps, so no evidence is charged less than its verification may cost.
    fn evidence_cost(evidence: &[u8], collateral: &[u8]) -> EvidenceCost;

    /// Reads a policy document (its canonical bytes): its id and what the pallet enforces
    /// itself. Refuses a document the verifier could not appraise evidence under.
    fn inspect_policy(document: &[u8]) -> Result<PolicySummary, PolicyRejection>;

    /// Verifies `evidence` with `collateral` against the policy document `policy` (bytes that
    /// [`Self::inspect_policy`] accepted) at Unix time `now_ms`.
    fn verify(
        evidence: &[u8],
        collateral: &[u8],
        policy: &[u8],
        now_ms: u64,
    ) -> Result<VerifiedAttestation, AttestationFailure>;
}

/// Produces evidence that the configured verifier accepts, for benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper {
    /// Evidence and collateral of the largest size the runtime allows, attesting `key` and
    /// `nonce`, valid at `now_ms`, and the policy document under which they verify.
    fn attestation(
        key: Ed25519Key,
        nonce: [u8; 32],
        now_ms: u64,
    ) -> (
        alloc::vec::Vec<u8>,
        alloc::vec::Vec<u8>,
        alloc::vec::Vec<u8>,
    );

    /// A valid, canonical policy document as large as the helper can make it within `len`
    /// bytes (for the `register_policy` benchmark, whose range starts at 256 bytes).
    fn policy_document(len: u32) -> alloc::vec::Vec<u8>;

    /// The most of each item the verifier reads in one piece of evidence (its caps): the
    /// ranges of the `verify_evidence` benchmark's components (`bytes` is not used).
    fn evidence_bounds() -> EvidenceCost;

    /// Evidence for the `verify_evidence` benchmark carrying `cost.gpus` GPU reports,
    /// `cost.rims` RIMs and `cost.ocsp` OCSP responses, each as costly to verify as the helper
    /// can make it (for the runtime: genuine hardware evidence, and adversarial copies that
    /// fail as late as possible), plus `cost.bytes` bytes in what the verifier reads at the
    /// highest cost per byte. `None` when the helper has none to give; the benchmark then
    /// stops rather than price the verification with cheaper evidence.
    fn evidence(cost: EvidenceCost) -> Option<BenchmarkEvidence>;
}

/// Evidence for the `verify_evidence` benchmark and the outcome the verifier must reach.
#[cfg(feature = "runtime-benchmarks")]
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BenchmarkEvidence {
    /// The evidence bytes.
    pub evidence: alloc::vec::Vec<u8>,
    /// The separate collateral.
    pub collateral: alloc::vec::Vec<u8>,
    /// The policy document it is verified under.
    pub policy: alloc::vec::Vec<u8>,
    /// The verification time, Unix milliseconds.
    pub now_ms: u64,
    /// `None` when the verifier must accept it, else the reason it must give. Recorded
    /// hardware evidence cannot bind a key chosen here, so it is verified in full (signatures,
    /// certificate chains, collateral, RIMs) and then refused with
    /// [`AttestationFailure::KeyNotBound`]: the cost is the same as an acceptance's.
    pub expected: Option<AttestationFailure>,
}
