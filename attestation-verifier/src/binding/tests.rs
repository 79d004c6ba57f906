#![allow(clippy::unwrap_used, clippy::panic)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use super::*;
use crate::crypto::RustCrypto;
use crate::receipt::{EvidenceMode, EvidenceRef, RECEIPT_VERSION, TeeKind, Usage};
use sha2::Digest;

fn body() -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: [3; 32],
        tier: 3,
        result_commitment: [4; 32],
        output_count: 1,
        started_at_ms: 10,
        finished_at_ms: 20,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef {
            mode: EvidenceMode::FreshQuote,
            tee: TeeKind::SevSnp,
            digest: [5; 32],
        },
    }
}

#[test]
fn report_data_is_sha512_of_domain_key_gpu_nonce_works() {
    let mut h = sha2::Sha512::new();
    h.update(b"sigil.report-data.v1\0");
    h.update([1u8; 32]);
    h.update([2u8; 32]);
    h.update([3u8; 32]);
    let want: [u8; 64] = h.finalize().into();
    assert_eq!(report_data(&RustCrypto, &[1; 32], &[2; 32], &[3; 32]), want);
}

#[test]
fn gpu_nonce_is_sha256_of_domain_key_nonce_works() {
    let mut h = sha2::Sha256::new();
    h.update(b"sigil.gpu-nonce.v1\0");
    h.update([1u8; 32]);
    h.update([3u8; 32]);
    let want: [u8; 32] = h.finalize().into();
    assert_eq!(gpu_nonce(&RustCrypto, &[1; 32], &[3; 32]), want);
}

#[test]
fn gpu_digest_is_zero_without_gpus_works() {
    assert_eq!(gpu_evidence_digest(&RustCrypto, &[]), [0; 32]);
    let g = GpuEvidence {
        report: vec![1],
        cert_chain_pem: String::new(),
        nonce: [0; 32],
        uuid: "GPU-1".into(),
    };
    let d1 = gpu_evidence_digest(&RustCrypto, core::slice::from_ref(&g));
    assert_ne!(d1, [0; 32]);
    let mut g2 = g.clone();
    g2.report = vec![2];
    assert_ne!(gpu_evidence_digest(&RustCrypto, &[g2]), d1);
}

#[test]
fn fresh_nonce_ignores_only_the_evidence_digest_works() {
    let b = body();
    let n = fresh_nonce(&RustCrypto, &b);
    let mut other = b.clone();
    other.evidence.digest = [9; 32];
    assert_eq!(fresh_nonce(&RustCrypto, &other), n);
    let mut other = b.clone();
    other.exit_code = 1;
    assert_ne!(fresh_nonce(&RustCrypto, &other), n);
    let mut other = b;
    other.evidence.mode = EvidenceMode::AttestedKey;
    assert_ne!(fresh_nonce(&RustCrypto, &other), n);
}

#[test]
fn domains_are_distinct_works() {
    // Equal inputs under different derivations never collide.
    let key = [1; 32];
    let nonce = [3; 32];
    let g = gpu_nonce(&RustCrypto, &key, &nonce);
    let r = report_data(&RustCrypto, &key, &[0; 32], &nonce);
    assert_ne!(&r[..32], &g[..]);
}

#[test]
fn binding_v2_commits_to_the_sealing_key_works() {
    let (key, sealing, gpu, nonce) = ([1u8; 32], [6u8; 32], [2u8; 32], [3u8; 32]);
    let v2 = Binding::V2 {
        agent_key: &key,
        sealing_key: &sealing,
    };
    let mut h = sha2::Sha512::new();
    h.update(b"sigil.report-data.v2\0");
    h.update(key);
    h.update(sealing);
    h.update(gpu);
    h.update(nonce);
    let want: [u8; 64] = h.finalize().into();
    assert_eq!(v2.report_data(&RustCrypto, &gpu, &nonce), want);
    let mut h = sha2::Sha256::new();
    h.update(b"sigil.gpu-nonce.v2\0");
    h.update(key);
    h.update(sealing);
    h.update(nonce);
    let want: [u8; 32] = h.finalize().into();
    assert_eq!(v2.gpu_nonce(&RustCrypto, &nonce), want);
    // Another sealing key, another binding; v1 is the earlier derivation, unchanged.
    let other = Binding::V2 {
        agent_key: &key,
        sealing_key: &[7; 32],
    };
    assert_ne!(
        other.report_data(&RustCrypto, &gpu, &nonce),
        v2.report_data(&RustCrypto, &gpu, &nonce)
    );
    let v1 = Binding::V1 { agent_key: &key };
    assert_eq!(
        v1.report_data(&RustCrypto, &gpu, &nonce),
        report_data(&RustCrypto, &key, &gpu, &nonce)
    );
    assert_eq!((v1.version(), v2.version()), (1, 2));
}
