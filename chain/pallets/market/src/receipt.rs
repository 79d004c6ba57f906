//! The canonical receipt body that providers sign, and its digest.
//!
//! The receipt body is the `attestation-verifier` crate's [`ReceiptBody`]: the type the enclave
//! agent signs and `sigil-verify` checks, so both sides share one layout. The chain receives
//! the SCALE-encoded body exactly as the provider signed it, decodes it here and checks the
//! provider's ed25519 signature over [`digest_of_encoded`]. Every field has a fixed-width
//! encoding, so a body has exactly one valid encoding: [`decode_canonical`] rejects trailing
//! bytes and unknown evidence modes or TEE kinds, and re-encoding a decoded body reproduces the
//! signed bytes.
//!
//! The hashes are taken here with the runtime's SHA-256 host function (the verifier crate's
//! helpers take its own crypto backend); the domains are that crate's constants, so the
//! digests are the same.

use crate::types::TeeKind;
use attestation_verifier::binding::FRESH_NONCE_DOMAIN;
use attestation_verifier::bundle::EVIDENCE_DOMAIN;
use codec::{DecodeAll, Encode};
use polkadot_sdk::sp_io;

pub use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_DOMAIN, RECEIPT_VERSION, ReceiptBody, TeeKind as ReceiptTee,
    Usage,
};

/// Encoded length of a [`ReceiptBody`] (every field is fixed-width).
pub const RECEIPT_BODY_LEN: usize = 228;

/// Decodes a body, refusing trailing bytes.
pub fn decode_canonical(bytes: &[u8]) -> Result<ReceiptBody, codec::Error> {
    ReceiptBody::decode_all(&mut &bytes[..])
}

/// The digest the provider signs: `sha256(RECEIPT_DOMAIN ++ SCALE(body))`.
pub fn digest(body: &ReceiptBody) -> [u8; 32] {
    digest_of_encoded(&body.encode())
}

/// The nonce that fresh-quote evidence for `body` must bind:
/// `sha256(FRESH_NONCE_DOMAIN ++ SCALE(body with evidence.digest zeroed))`. The evidence
/// therefore commits to the whole receipt (job, result, times, usage) except its own digest.
pub fn fresh_quote_nonce(body: &ReceiptBody) -> [u8; 32] {
    let mut body = body.clone();
    body.evidence.digest = [0; 32];
    hash_with_domain(FRESH_NONCE_DOMAIN, &body.encode())
}

/// The receipt's name of a TEE kind.
pub const fn receipt_tee(tee: TeeKind) -> ReceiptTee {
    match tee {
        TeeKind::SevSnp => ReceiptTee::SevSnp,
        TeeKind::Tdx => ReceiptTee::Tdx,
        TeeKind::Simulated => ReceiptTee::Simulated,
    }
}

/// The reference of a receipt without evidence (tiers 1 and 2).
pub const NO_EVIDENCE: EvidenceRef = EvidenceRef::NONE;

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
    use attestation_verifier::crypto::RustCrypto;

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
            exit_code: -9,
            usage: Usage {
                wall_ms: 10,
                cpu_ms: 15,
                peak_memory_bytes: 1 << 20,
                gpu_ms: 0,
                gpu_energy_mj: 0,
            },
            evidence: NO_EVIDENCE,
        }
    }

    fn fresh_sample() -> ReceiptBody {
        ReceiptBody {
            tier: 3,
            evidence: EvidenceRef {
                mode: EvidenceMode::FreshQuote,
                tee: ReceiptTee::SevSnp,
                digest: [9; 32],
            },
            ..sample()
        }
    }

    #[test]
    fn encoding_is_fixed_width_works() {
        assert_eq!(sample().encode().len(), RECEIPT_BODY_LEN);
        assert_eq!(fresh_sample().encode().len(), RECEIPT_BODY_LEN);
    }

    #[test]
    fn decode_canonical_round_trip_works() {
        for body in [sample(), fresh_sample()] {
            let bytes = body.encode();
            assert_eq!(decode_canonical(&bytes).unwrap(), body);
        }
    }

    #[test]
    fn decode_canonical_trailing_bytes_rejects() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(decode_canonical(&bytes).is_err());
        let short = &sample().encode()[..RECEIPT_BODY_LEN - 1];
        assert!(decode_canonical(short).is_err());
    }

    #[test]
    fn decode_canonical_unknown_evidence_mode_or_tee_rejects() {
        // The evidence reference is the last 34 bytes: mode, tee, digest.
        let mode_at = RECEIPT_BODY_LEN - 34;
        let mut bytes = fresh_sample().encode();
        bytes[mode_at] = 3;
        assert!(decode_canonical(&bytes).is_err());
        let mut bytes = fresh_sample().encode();
        bytes[mode_at + 1] = 4;
        assert!(decode_canonical(&bytes).is_err());
    }

    #[test]
    fn digest_is_domain_separated_works() {
        let body = sample();
        let plain = sp_io::hashing::sha2_256(&body.encode());
        assert_ne!(digest(&body), plain);
        let mut preimage = RECEIPT_DOMAIN.to_vec();
        preimage.extend(body.encode());
        assert_eq!(digest(&body), sp_io::hashing::sha2_256(&preimage));
        let other = ReceiptBody {
            output_count: 8,
            ..body.clone()
        };
        assert_ne!(digest(&other), digest(&body));
    }

    /// The host-function digests equal the verifier crate's, so what the agent signs and
    /// binds is what the chain checks.
    #[test]
    fn digests_match_the_verifier_crate_works() {
        let crypto = RustCrypto;
        for body in [sample(), fresh_sample()] {
            assert_eq!(
                digest(&body),
                attestation_verifier::receipt::receipt_digest(&crypto, &body)
            );
            assert_eq!(
                fresh_quote_nonce(&body),
                attestation_verifier::binding::fresh_nonce(&crypto, &body)
            );
        }
        assert_eq!(
            evidence_digest(&[1, 2, 3]),
            attestation_verifier::bundle::bundle_digest(&crypto, &[1, 2, 3])
        );
    }

    #[test]
    fn fresh_quote_nonce_ignores_only_the_evidence_digest_works() {
        let body = fresh_sample();
        let mut zeroed = body.clone();
        zeroed.evidence.digest = [0; 32];
        assert_eq!(fresh_quote_nonce(&body), fresh_quote_nonce(&zeroed));
        let other_result = ReceiptBody {
            result_commitment: [1; 32],
            ..body.clone()
        };
        assert_ne!(fresh_quote_nonce(&body), fresh_quote_nonce(&other_result));
        let mut preimage = FRESH_NONCE_DOMAIN.to_vec();
        preimage.extend(zeroed.encode());
        assert_eq!(
            fresh_quote_nonce(&body),
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
