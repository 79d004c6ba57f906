//! The canonical receipt body that providers sign, and its digest.
//!
//! The chain receives the SCALE-encoded body exactly as the provider signed it, decodes it
//! here and checks the provider's ed25519 signature over [`ReceiptBody::digest`]. Every field
//! has a fixed-width encoding, so a body has exactly one valid encoding: [`ReceiptBody::decode_canonical`]
//! rejects trailing bytes, and re-encoding a decoded body reproduces the signed bytes.
//!
//! The layout, domains and derivations match the receipt format of the `attestation-verifier`
//! crate (`receipt.rs`, `binding.rs`, `bundle.rs`), so receipts the enclave agent signs decode
//! here. This module is self-contained so that it can later be replaced by that shared type
//! without touching the pallet logic.

use codec::{Decode, DecodeAll, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::sp_io;
use scale_info::TypeInfo;

/// The receipt format version this pallet accepts.
pub const RECEIPT_VERSION: u8 = 1;

/// Domain separator prefixed to the SCALE body before hashing: `sha256(DOMAIN ++ SCALE(body))`.
pub const RECEIPT_DOMAIN: &[u8] = b"sigil.receipt.v1\0";

/// Encoded length of a [`ReceiptBody`] (every field is fixed-width).
pub const RECEIPT_BODY_LEN: usize = 228;

/// Domain separator of the evidence digest: `sha256(EVIDENCE_DOMAIN ++ evidence bytes)`.
pub const EVIDENCE_DOMAIN: &[u8] = b"sigil.evidence.v1\0";

/// Domain separator of the nonce fresh-quote evidence binds.
pub const FRESH_NONCE_DOMAIN: &[u8] = b"sigil.fresh.v1\0";

/// `evidence.mode`: no hardware evidence (tiers 1 and 2).
pub const EVIDENCE_MODE_NONE: u8 = 0;
/// `evidence.mode`: signed by a key attested at provider registration.
pub const EVIDENCE_MODE_ATTESTED_KEY: u8 = 1;
/// `evidence.mode`: evidence bound to this receipt travels with it and is verified on submission.
pub const EVIDENCE_MODE_FRESH_QUOTE: u8 = 2;

/// `evidence.tee`: no TEE.
pub const TEE_NONE: u8 = 0;

/// Resource usage the provider measured for the job.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct Usage {
    /// Wall-clock run time in milliseconds.
    pub wall_ms: u64,
    /// CPU time in milliseconds, summed over cores.
    pub cpu_ms: u64,
    /// Peak resident memory in bytes.
    pub peak_memory_bytes: u64,
    /// GPU busy time in milliseconds, summed over GPUs.
    pub gpu_ms: u64,
    /// GPU energy in millijoules.
    pub gpu_energy_mj: u64,
}

/// Reference from a receipt to the hardware evidence that backs it.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct EvidenceRef {
    /// 0 none, 1 attested key, 2 fresh quote.
    pub mode: u8,
    /// 0 none, 1 SEV-SNP, 2 TDX, 3 simulated.
    pub tee: u8,
    /// SHA-256 of the evidence bytes (all zero when `mode` is 0).
    pub digest: [u8; 32],
}

/// The signed content of a receipt.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct ReceiptBody {
    /// Format version, [`RECEIPT_VERSION`].
    pub version: u8,
    /// The job this receipt settles.
    pub job_id: [u8; 32],
    /// Hash of the job specification the provider ran.
    pub job_spec_hash: [u8; 32],
    /// The provider's ed25519 public key, which signs the receipt.
    pub provider: [u8; 32],
    /// Tier of the job (1, 2 or 3).
    pub tier: u8,
    /// Root of the hash tree over the job's outputs.
    pub result_commitment: [u8; 32],
    /// Number of outputs under `result_commitment`.
    pub output_count: u32,
    /// Start of execution, Unix milliseconds.
    pub started_at_ms: u64,
    /// End of execution, Unix milliseconds.
    pub finished_at_ms: u64,
    /// The workload's exit code (negative: killed by a signal).
    pub exit_code: i32,
    /// Measured resource usage.
    pub usage: Usage,
    /// The evidence backing the receipt.
    pub evidence: EvidenceRef,
}

impl ReceiptBody {
    /// Decodes a body, refusing trailing bytes.
    pub fn decode_canonical(bytes: &[u8]) -> Result<Self, codec::Error> {
        Self::decode_all(&mut &bytes[..])
    }

    /// The digest the provider signs: `sha256(RECEIPT_DOMAIN ++ SCALE(body))`.
    pub fn digest(&self) -> [u8; 32] {
        digest_of_encoded(&self.encode())
    }

    /// The nonce that fresh-quote evidence for this receipt must bind:
    /// `sha256(FRESH_NONCE_DOMAIN ++ SCALE(body with evidence.digest zeroed))`. The evidence
    /// therefore commits to the whole receipt (job, result, times, usage) except its own digest.
    pub fn fresh_quote_nonce(&self) -> [u8; 32] {
        let mut body = *self;
        body.evidence.digest = [0; 32];
        hash_with_domain(FRESH_NONCE_DOMAIN, &body.encode())
    }
}

/// The digest a receipt uses to reference evidence: `sha256(EVIDENCE_DOMAIN ++ evidence)`.
pub fn evidence_digest(evidence: &[u8]) -> [u8; 32] {
    hash_with_domain(EVIDENCE_DOMAIN, evidence)
}

/// The receipt digest of an already encoded body.
pub fn digest_of_encoded(encoded_body: &[u8]) -> [u8; 32] {
    hash_with_domain(RECEIPT_DOMAIN, encoded_body)
}

fn hash_with_domain(domain: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut preimage = alloc::vec::Vec::with_capacity(domain.len().saturating_add(bytes.len()));
    preimage.extend_from_slice(domain);
    preimage.extend_from_slice(bytes);
    sp_io::hashing::sha2_256(&preimage)
}

#[cfg(test)]
mod unit {
    // Tests may panic on broken expectations.
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn sample() -> ReceiptBody {
        ReceiptBody {
            version: RECEIPT_VERSION,
            job_id: [1; 32],
            job_spec_hash: [2; 32],
            provider: [3; 32],
            tier: 1,
            result_commitment: [4; 32],
            output_count: 7,
            started_at_ms: 10,
            finished_at_ms: 20,
            exit_code: 0,
            usage: Usage {
                wall_ms: 10,
                cpu_ms: 15,
                peak_memory_bytes: 1 << 20,
                gpu_ms: 0,
                gpu_energy_mj: 0,
            },
            evidence: EvidenceRef::default(),
        }
    }

    #[test]
    fn encoding_is_fixed_width_works() {
        let body = sample();
        assert_eq!(body.encode().len(), RECEIPT_BODY_LEN);
        assert_eq!(ReceiptBody::max_encoded_len(), RECEIPT_BODY_LEN);
    }

    #[test]
    fn decode_canonical_round_trip_works() {
        let body = sample();
        let bytes = body.encode();
        assert_eq!(ReceiptBody::decode_canonical(&bytes).unwrap(), body);
    }

    #[test]
    fn decode_canonical_trailing_bytes_rejects() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(ReceiptBody::decode_canonical(&bytes).is_err());
        let short = &sample().encode()[..RECEIPT_BODY_LEN - 1];
        assert!(ReceiptBody::decode_canonical(short).is_err());
    }

    #[test]
    fn digest_is_domain_separated_works() {
        let body = sample();
        let plain = sp_io::hashing::sha2_256(&body.encode());
        assert_ne!(body.digest(), plain);
        let mut preimage = RECEIPT_DOMAIN.to_vec();
        preimage.extend(body.encode());
        assert_eq!(body.digest(), sp_io::hashing::sha2_256(&preimage));
        let mut other = body;
        other.output_count = 8;
        assert_ne!(other.digest(), body.digest());
    }
}

#[cfg(test)]
mod nonce {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fresh_quote_nonce_ignores_only_the_evidence_digest_works() {
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            tier: 3,
            ..Default::default()
        };
        let mut with_digest = body;
        with_digest.evidence.digest = [9; 32];
        assert_eq!(body.fresh_quote_nonce(), with_digest.fresh_quote_nonce());
        let mut other_result = body;
        other_result.result_commitment = [1; 32];
        assert_ne!(body.fresh_quote_nonce(), other_result.fresh_quote_nonce());
        let mut zeroed = body;
        zeroed.evidence.digest = [0; 32];
        let mut preimage = FRESH_NONCE_DOMAIN.to_vec();
        preimage.extend(zeroed.encode());
        assert_eq!(
            body.fresh_quote_nonce(),
            sp_io::hashing::sha2_256(&preimage)
        );
    }

    #[test]
    fn evidence_digest_is_domain_separated_works() {
        let mut preimage = EVIDENCE_DOMAIN.to_vec();
        preimage.extend([1, 2, 3]);
        assert_eq!(
            evidence_digest(&[1, 2, 3]),
            sp_io::hashing::sha2_256(&preimage)
        );
    }
}
