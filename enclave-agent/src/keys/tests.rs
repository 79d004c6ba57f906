#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;

#[test]
fn generated_keys_differ_works() {
    let a = AgentKey::generate().unwrap();
    let b = AgentKey::generate().unwrap();
    assert_ne!(a.public_key(), b.public_key());
}

#[test]
fn debug_hides_the_secret_works() {
    let k = AgentKey::from_seed(&[7; 32]);
    let s = format!("{k:?}");
    assert!(s.contains(&hex::encode(k.public_key())));
    assert!(!s.contains(&hex::encode([7u8; 32])));
}

#[test]
fn key_file_is_created_once_and_reused_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.key");
    let a = AgentKey::load_or_generate(&path).unwrap();
    let b = AgentKey::load_or_generate(&path).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn bad_key_file_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.key");
    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        AgentKey::load_or_generate(&path),
        Err(KeyError::FileLength { len: 5, .. })
    ));
}

#[test]
fn receipt_signature_verifies_works() {
    use attestation_verifier::crypto::RustCrypto;
    use attestation_verifier::receipt::{EvidenceRef, RECEIPT_VERSION, Usage};
    let k = AgentKey::from_seed(&[7; 32]);
    let body = ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: k.public_key(),
        tier: 1,
        result_commitment: [3; 32],
        output_count: 0,
        started_at_ms: 1,
        finished_at_ms: 2,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef::NONE,
    };
    let signed = k.sign_receipt(&body);
    assert_eq!(signed.verify(&RustCrypto).unwrap().body, body);
}
