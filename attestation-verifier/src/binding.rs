//! How evidence binds the agent key, the GPUs and a nonce together.
//!
//! ```text
//! gpu_nonce        = SHA-256("sigil.gpu-nonce.v1\0"   || agent_key || nonce)
//! gpu_digest       = SHA-256("sigil.gpu-evidence.v1\0" || SCALE(gpus))   (32 zero bytes without GPUs)
//! REPORT_DATA      = SHA-512("sigil.report-data.v1\0" || agent_key || gpu_digest || nonce)
//! fresh-quote nonce = SHA-256("sigil.fresh.v1\0" || SCALE(body with evidence.digest zeroed))
//! ```
//!
//! The agent first asks each GPU for a report over its `gpu_nonce`, then the CPU
//! for a report whose REPORT_DATA commits to the key, the GPU reports and the
//! nonce. A verifier that accepts the CPU report therefore accepts the key and
//! the exact GPU evidence next to it.

use alloc::vec::Vec;
use parity_scale_codec::Encode;

use crate::bundle::GpuEvidence;
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

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    let mut v = Vec::with_capacity(len);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// The 64-byte REPORT_DATA the CPU evidence must carry.
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

/// The nonce every GPU report must be requested with.
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
