//! How evidence binds the agent key, the GPUs and a nonce together.
//!
//! ```text
//! binding v1 (bundles without a sealing key):
//! gpu_nonce        = SHA-256("sigil.gpu-nonce.v1\0"   || agent_key || nonce)
//! REPORT_DATA      = SHA-512("sigil.report-data.v1\0" || agent_key || gpu_digest || nonce)
//! binding v2 (bundle version 4 with a sealing key):
//! gpu_nonce        = SHA-256("sigil.gpu-nonce.v2\0"   || agent_key || sealing_key || nonce)
//! REPORT_DATA      = SHA-512("sigil.report-data.v2\0" || agent_key || sealing_key
//!                             || gpu_digest || nonce)
//! both:
//! gpu_digest       = SHA-256("sigil.gpu-evidence.v1\0" || SCALE(gpus))   (32 zero bytes without GPUs)
//! fresh-quote nonce = SHA-256("sigil.fresh.v1\0" || SCALE(body with evidence.digest zeroed))
//! ```
//!
//! The agent first asks each GPU for a report over its `gpu_nonce`, then the CPU
//! for a report whose REPORT_DATA commits to the keys, the GPU reports and the
//! nonce. A verifier that accepts the CPU report therefore accepts the signing
//! key, the sealing key (the X25519 HPKE key buyers seal inputs to, see
//! `docs/confidential-jobs.md`) and the exact GPU evidence next to them. Which
//! binding a bundle uses follows from the bundle itself ([`Binding::of`]): the
//! version-1 derivations stay verifiable for every receipt that rests on them.

use alloc::vec::Vec;
use parity_scale_codec::Encode;

use crate::bundle::{EvidenceBundle, GpuEvidence};
use crate::crypto::Crypto;
use crate::receipt::ReceiptBody;

/// Domain of the CPU REPORT_DATA derivation.
pub const REPORT_DATA_DOMAIN: &[u8] = b"sigil.report-data.v1\0";
/// Domain of the GPU nonce derivation.
pub const GPU_NONCE_DOMAIN: &[u8] = b"sigil.gpu-nonce.v1\0";
/// Domain of the GPU evidence digest.
pub const GPU_EVIDENCE_DOMAIN: &[u8] = b"sigil.gpu-evidence.v1\0";
/// Domain of the fresh-quote nonce derivation.
pub const FRESH_NONCE_DOMAIN: &[u8] = b"sigil.fresh.v1\0";
/// Domain of the CPU REPORT_DATA derivation of binding v2 (with a sealing key).
pub const REPORT_DATA_DOMAIN_V2: &[u8] = b"sigil.report-data.v2\0";
/// Domain of the GPU nonce derivation of binding v2 (with a sealing key).
pub const GPU_NONCE_DOMAIN_V2: &[u8] = b"sigil.gpu-nonce.v2\0";

/// The keys a bundle's evidence binds: the receipt-signing key and, from binding
/// v2 on, the sealing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding<'a> {
    /// Binding v1: the ed25519 signing key only.
    V1 {
        /// The agent's ed25519 public key.
        agent_key: &'a [u8; 32],
    },
    /// Binding v2: the signing key and the X25519 sealing (HPKE) key.
    V2 {
        /// The agent's ed25519 public key.
        agent_key: &'a [u8; 32],
        /// The agent's X25519 HPKE public key.
        sealing_key: &'a [u8; 32],
    },
}

impl<'a> Binding<'a> {
    /// The binding `bundle` uses: v2 when it carries a sealing key, v1 otherwise.
    pub fn of(bundle: &'a EvidenceBundle) -> Self {
        match &bundle.sealing_key {
            Some(sealing_key) => Self::V2 {
                agent_key: &bundle.agent_key,
                sealing_key,
            },
            None => Self::V1 {
                agent_key: &bundle.agent_key,
            },
        }
    }

    /// The binding's version number (1 or 2).
    pub const fn version(&self) -> u8 {
        match self {
            Self::V1 { .. } => 1,
            Self::V2 { .. } => 2,
        }
    }

    /// The 64-byte REPORT_DATA the CPU evidence must carry.
    pub fn report_data<C: Crypto + ?Sized>(
        &self,
        crypto: &C,
        gpu_evidence_digest: &[u8; 32],
        nonce: &[u8; 32],
    ) -> [u8; 64] {
        match self {
            Self::V1 { agent_key } => report_data(crypto, agent_key, gpu_evidence_digest, nonce),
            Self::V2 {
                agent_key,
                sealing_key,
            } => crypto.sha512(&concat(&[
                REPORT_DATA_DOMAIN_V2,
                *agent_key,
                *sealing_key,
                gpu_evidence_digest,
                nonce,
            ])),
        }
    }

    /// The nonce every GPU report must be requested with.
    pub fn gpu_nonce<C: Crypto + ?Sized>(&self, crypto: &C, nonce: &[u8; 32]) -> [u8; 32] {
        match self {
            Self::V1 { agent_key } => gpu_nonce(crypto, agent_key, nonce),
            Self::V2 {
                agent_key,
                sealing_key,
            } => crypto.sha256(&concat(&[
                GPU_NONCE_DOMAIN_V2,
                *agent_key,
                *sealing_key,
                nonce,
            ])),
        }
    }
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    let mut v = Vec::with_capacity(len);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// The 64-byte REPORT_DATA of binding v1 (see [`Binding::report_data`]).
pub fn report_data<C: Crypto + ?Sized>(
    crypto: &C,
    agent_key: &[u8; 32],
    gpu_evidence_digest: &[u8; 32],
    nonce: &[u8; 32],
) -> [u8; 64] {
    crypto.sha512(&concat(&[
        REPORT_DATA_DOMAIN,
        agent_key,
        gpu_evidence_digest,
        nonce,
    ]))
}

/// The GPU nonce of binding v1 (see [`Binding::gpu_nonce`]).
pub fn gpu_nonce<C: Crypto + ?Sized>(
    crypto: &C,
    agent_key: &[u8; 32],
    nonce: &[u8; 32],
) -> [u8; 32] {
    crypto.sha256(&concat(&[GPU_NONCE_DOMAIN, agent_key, nonce]))
}

/// Digest of the GPU evidence in a bundle; 32 zero bytes when there is none.
pub fn gpu_evidence_digest<C: Crypto + ?Sized>(crypto: &C, gpus: &[GpuEvidence]) -> [u8; 32] {
    if gpus.is_empty() {
        return [0; 32];
    }
    crypto.sha256(&concat(&[GPU_EVIDENCE_DOMAIN, &gpus.encode()]))
}

/// The nonce of fresh-quote evidence for a receipt: a commitment to the whole
/// body except the evidence digest (which is the digest of that evidence).
pub fn fresh_nonce<C: Crypto + ?Sized>(crypto: &C, body: &ReceiptBody) -> [u8; 32] {
    let mut b = body.clone();
    b.evidence.digest = [0; 32];
    crypto.sha256(&concat(&[FRESH_NONCE_DOMAIN, &b.encode()]))
}

#[cfg(test)]
mod tests;
