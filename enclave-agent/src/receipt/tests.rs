#![allow(clippy::unwrap_used)] // tests

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::merkle::verify_inclusion;
use attestation_verifier::receipt::{EvidenceMode, TeeKind};

use super::*;

fn job(outputs: &[(String, [u8; 32])], tier: u8) -> FinishedJob<'_> {
    FinishedJob {
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        tier,
        outputs,
        started_at_ms: 10,
        finished_at_ms: 20,
        exit_code: -9,
        usage: Usage::default(),
    }
}

#[test]
fn body_commits_to_outputs_works() {
    let outputs = vec![
        ("b.txt".to_string(), [2; 32]),
        ("a.txt".to_string(), [1; 32]),
    ];
    let (body, tree) =
        build_body(&RustCrypto, [3; 32], &job(&outputs, 1), EvidenceRef::NONE).unwrap();
    assert_eq!(body.output_count, 2);
    assert_eq!(body.exit_code, -9);
    assert_eq!(body.result_commitment, tree.root(&RustCrypto));
    let p = tree.prove(&RustCrypto, b"b.txt").unwrap();
    verify_inclusion(
        &RustCrypto,
        &body.result_commitment,
        2,
        b"b.txt",
        &[2; 32],
        &p,
    )
    .unwrap();
}

#[test]
fn duplicate_outputs_reject() {
    let outputs = vec![("a".to_string(), [2; 32]), ("a".to_string(), [1; 32])];
    assert!(matches!(
        build_body(&RustCrypto, [3; 32], &job(&outputs, 1), EvidenceRef::NONE),
        Err(ReceiptBuildError::Outputs(_))
    ));
}

#[test]
fn tier3_without_evidence_rejects() {
    assert!(matches!(
        build_body(&RustCrypto, [3; 32], &job(&[], 3), EvidenceRef::NONE),
        Err(ReceiptBuildError::Body(_))
    ));
    let ev = EvidenceRef {
        mode: EvidenceMode::FreshQuote,
        tee: TeeKind::SevSnp,
        digest: [0; 32],
    };
    build_body(&RustCrypto, [3; 32], &job(&[], 3), ev).unwrap();
}
