//! Sigil receipts: what a provider signs when a job finishes.
//!
//! A receipt body is encoded canonically with SCALE (the chain's codec) and
//! signed with the agent's ed25519 key over a domain-separated SHA-256 digest:
//!
//! ```text
//! digest    = SHA-256(RECEIPT_DOMAIN || SCALE(ReceiptBody))
//! signature = Ed25519(agent key, digest)
//! ```
//!
//! Ed25519 because it is deterministic (no per-signature randomness inside the
//! TEE to get wrong), cheap to verify in the runtime through its host function,
//! the agent's public key is directly a Substrate account
//! (`MultiSigner::Ed25519`), and both crypto backends implement it. The
//! signed bytes travel as they were signed ([`SignedReceipt::body`]); nobody
//! re-encodes them. See `docs/receipts.md`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
#[cfg(feature = "scale")]
use parity_scale_codec::MaxEncodedLen;
use parity_scale_codec::{Decode, DecodeAll, Encode};
#[cfg(feature = "scale")]
use scale_info::TypeInfo;

use crate::crypto::{Crypto, SignatureError};

/// Domain separator of the receipt digest.
pub const RECEIPT_DOMAIN: &[u8] = b"sigil.receipt.v1\0";

/// The receipt format version this crate writes and reads.
pub const RECEIPT_VERSION: u8 = 1;

/// Upper bound on the size of an encoded [`SignedReceipt`] accepted by [`SignedReceipt::decode_bytes`].
pub const MAX_SIGNED_RECEIPT_LEN: usize = 4096;

/// Resources a job used.
#[derive(Encode, Decode, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo, MaxEncodedLen))]
pub struct Usage {
    /// Wall-clock time, milliseconds.
    pub wall_ms: u64,
    /// CPU time (user + system), milliseconds.
    pub cpu_ms: u64,
    /// Peak resident memory, bytes.
    pub peak_memory_bytes: u64,
    /// GPU time, milliseconds (utilisation-weighted).
    pub gpu_ms: u64,
    /// GPU energy, millijoules.
    pub gpu_energy_mj: u64,
}

/// How a receipt is bound to hardware evidence.
#[derive(Encode, Decode, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "scale", derive(TypeInfo, MaxEncodedLen))]
pub enum EvidenceMode {
    /// No evidence (tiers 1 and 2).
    #[codec(index = 0)]
    None,
    /// The agent key's evidence is referenced by digest; it was produced at start
    /// (or on refresh) and is verified once per key.
    #[codec(index = 1)]
    AttestedKey,
    /// Evidence produced for this receipt: its nonce is derived from the body.
    #[codec(index = 2)]
    FreshQuote,
}

impl EvidenceMode {
    /// The name used in claims and documents.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AttestedKey => "attested-key",
            Self::FreshQuote => "fresh-quote",
        }
    }
}

/// The kind of trusted execution environment evidence comes from.
#[derive(Encode, Decode, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "scale", derive(TypeInfo, MaxEncodedLen))]
pub enum TeeKind {
    /// No TEE.
    #[codec(index = 0)]
    None,
    /// AMD SEV-SNP.
    #[codec(index = 1)]
    SevSnp,
    /// Intel TDX.
    #[codec(index = 2)]
    Tdx,
    /// The agent's simulator: no hardware protection at all.
    #[codec(index = 3)]
    Simulated,
}

impl TeeKind {
    /// The name used in claims, configuration and documents.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
            Self::Simulated => "simulated",
        }
    }
}

impl core::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which evidence a receipt relies on.
#[derive(Encode, Decode, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo, MaxEncodedLen))]
pub struct EvidenceRef {
    /// How the receipt is bound to the evidence.
    pub mode: EvidenceMode,
    /// The TEE the evidence comes from.
    pub tee: TeeKind,
    /// [`crate::bundle::bundle_digest`] of the evidence bundle; zero when `mode` is `None`.
    pub digest: [u8; 32],
}

impl EvidenceRef {
    /// The reference of a receipt without evidence.
    pub const NONE: Self = Self {
        mode: EvidenceMode::None,
        tee: TeeKind::None,
        digest: [0; 32],
    };
}

/// The signed content of a receipt. Field order is part of the format.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo, MaxEncodedLen))]
pub struct ReceiptBody {
    /// Format version, [`RECEIPT_VERSION`].
    pub version: u8,
    /// The job, as the market names it.
    pub job_id: [u8; 32],
    /// SHA-256 of the job specification the agent ran.
    pub job_spec_hash: [u8; 32],
    /// The agent's ed25519 public key (the provider's account).
    pub provider: [u8; 32],
    /// Market tier: 1, 2 or 3.
    pub tier: u8,
    /// Root of the output hash tree ([`crate::merkle`]).
    pub result_commitment: [u8; 32],
    /// Number of outputs under `result_commitment`.
    pub output_count: u32,
    /// When the job started, Unix milliseconds.
    pub started_at_ms: u64,
    /// When the job finished, Unix milliseconds.
    pub finished_at_ms: u64,
    /// The workload's exit code (negative: killed by a signal).
    pub exit_code: i32,
    /// Resources used.
    pub usage: Usage,
    /// The evidence this receipt is bound to.
    pub evidence: EvidenceRef,
}

/// Why receipt bytes are unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The bytes are not a SCALE encoding of the type.
    #[error("{what} is not valid SCALE: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The codec's message.
        detail: String,
    },
    /// The encoding is longer than the format allows.
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A version this crate does not know.
    #[error("receipt version {0} is not supported (this build reads version 1)")]
    Version(u8),
    /// A tier outside 1..=3.
    #[error("receipt tier {0} is not 1, 2 or 3")]
    Tier(u8),
    /// The job finished before it started.
    #[error("receipt finished_at_ms {finished} is before started_at_ms {started}")]
    Times {
        /// Start.
        started: u64,
        /// End.
        finished: u64,
    },
    /// The evidence reference is inconsistent (mode, tee and digest disagree).
    #[error("receipt evidence reference is inconsistent: {0}")]
    EvidenceRef(&'static str),
    /// The signature does not verify under the provider key.
    #[error("receipt signature does not verify with the provider key: {0}")]
    Signature(SignatureError),
}

impl ReceiptBody {
    /// The canonical encoding that is signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes a body; every byte must be consumed. Checks the structural rules
    /// of [`ReceiptBody::check`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let body = Self::decode_all(&mut &*bytes).map_err(|e| ReceiptError::Decode {
            what: "receipt body",
            detail: e.to_string(),
        })?;
        body.check()?;
        Ok(body)
    }

    /// Structural rules: version, tier, times, and a consistent evidence reference.
    pub fn check(&self) -> Result<(), ReceiptError> {
        if self.version != RECEIPT_VERSION {
            return Err(ReceiptError::Version(self.version));
        }
        if !(1..=3).contains(&self.tier) {
            return Err(ReceiptError::Tier(self.tier));
        }
        if self.finished_at_ms < self.started_at_ms {
            return Err(ReceiptError::Times {
                started: self.started_at_ms,
                finished: self.finished_at_ms,
            });
        }
        let e = &self.evidence;
        match e.mode {
            EvidenceMode::None => {
                if e.tee != TeeKind::None || e.digest != [0; 32] {
                    return Err(ReceiptError::EvidenceRef(
                        "mode none must have tee none and a zero digest",
                    ));
                }
                if self.tier == 3 {
                    return Err(ReceiptError::EvidenceRef("a tier-3 receipt needs evidence"));
                }
            }
            EvidenceMode::AttestedKey | EvidenceMode::FreshQuote => {
                if e.tee == TeeKind::None {
                    return Err(ReceiptError::EvidenceRef("evidence with tee none"));
                }
            }
        }
        Ok(())
    }

    /// [`receipt_digest`] of this body.
    pub fn digest<C: Crypto + ?Sized>(&self, crypto: &C) -> [u8; 32] {
        digest_of_encoded(crypto, &self.encode())
    }
}

fn digest_of_encoded<C: Crypto + ?Sized>(crypto: &C, encoded: &[u8]) -> [u8; 32] {
    let mut msg = Vec::with_capacity(RECEIPT_DOMAIN.len().saturating_add(encoded.len()));
    msg.extend_from_slice(RECEIPT_DOMAIN);
    msg.extend_from_slice(encoded);
    crypto.sha256(&msg)
}

/// `SHA-256(RECEIPT_DOMAIN || SCALE(body))`: what the agent signs.
pub fn receipt_digest<C: Crypto + ?Sized>(crypto: &C, body: &ReceiptBody) -> [u8; 32] {
    body.digest(crypto)
}

/// A receipt as it travels: the canonical body bytes and the signature over their digest.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct SignedReceipt {
    /// `SCALE(ReceiptBody)`, exactly as signed.
    pub body: Vec<u8>,
    /// Ed25519 signature by `body.provider` over [`receipt_digest`].
    pub signature: [u8; 64],
}

/// A signed receipt whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedReceipt {
    /// The decoded body.
    pub body: ReceiptBody,
    /// Its digest (what was signed).
    pub digest: [u8; 32],
}

impl SignedReceipt {
    /// Wraps a body and a signature made over its digest.
    pub fn new(body: &ReceiptBody, signature: [u8; 64]) -> Self {
        Self {
            body: body.encode(),
            signature,
        }
    }

    /// The canonical file / wire encoding: `SCALE(SignedReceipt)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes `SCALE(SignedReceipt)`; every byte must be consumed.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_SIGNED_RECEIPT_LEN {
            return Err(ReceiptError::TooLong {
                what: "signed receipt",
                len: bytes.len(),
                max: MAX_SIGNED_RECEIPT_LEN,
            });
        }
        Self::decode_all(&mut &*bytes).map_err(|e| ReceiptError::Decode {
            what: "signed receipt",
            detail: e.to_string(),
        })
    }

    /// Decodes the body (structural rules included) without checking the signature.
    pub fn body(&self) -> Result<ReceiptBody, ReceiptError> {
        ReceiptBody::from_bytes(&self.body)
    }

    /// Decodes the body and checks the signature under `body.provider`.
    ///
    /// SCALE encodings of fixed-size fields are unique, so decoding every byte
    /// means `body` is the canonical encoding; the digest is taken over the bytes
    /// as received.
    pub fn verify<C: Crypto + ?Sized>(&self, crypto: &C) -> Result<CheckedReceipt, ReceiptError> {
        let body = self.body()?;
        let digest = digest_of_encoded(crypto, &self.body);
        crypto
            .verify_ed25519(&body.provider, &digest, &self.signature)
            .map_err(ReceiptError::Signature)?;
        Ok(CheckedReceipt { body, digest })
    }
}

#[cfg(test)]
mod tests;
