#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use ed25519_dalek::{Signer, SigningKey};

use super::*;
use crate::binding::{self, gpu_evidence_digest, gpu_nonce, report_data};
use crate::bundle::{CpuEvidence, EvidenceBundle, GpuEvidence};
use crate::crypto::RustCrypto;
use crate::evidence::simulated::{SimulatedBody, SimulatedKey};
use crate::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptError, SignedReceipt, Usage,
};
use crate::verify::receipt::ReceiptVerifyError;

const NOW: UnixTime = UnixTime(1_800_000_000);

fn agent() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

fn simulated_report(rd: [u8; 64]) -> Vec<u8> {
    let sim = SigningKey::from_bytes(&[42; 32]);
    let body = SimulatedBody::new(
        rd,
        [0x5E; 48],
        SimulatedKey::Ed25519(sim.verifying_key().to_bytes()),
    );
    let sig = sim.sign(&body.signed_message());
    SimulatedReport {
        body,
        signature: sig.to_bytes().to_vec(),
    }
    .to_bytes()
}

fn sim_bundle(agent: &SigningKey, nonce: [u8; 32], gpus: Vec<GpuEvidence>) -> EvidenceBundle {
    let key = agent.verifying_key().to_bytes();
    let rd = report_data(
        &RustCrypto,
        &key,
        &gpu_evidence_digest(&RustCrypto, &gpus),
        &nonce,
    );
    EvidenceBundle::new(
        key,
        nonce,
        CpuEvidence::Simulated {
            report: simulated_report(rd),
        },
        gpus,
    )
}

fn body(agent: &SigningKey, mode: EvidenceMode, tee: TeeKind) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: agent.verifying_key().to_bytes(),
        tier: if mode == EvidenceMode::None { 1 } else { 3 },
        result_commitment: [3; 32],
        output_count: 1,
        started_at_ms: 1_000,
        finished_at_ms: 2_000,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef {
            mode,
            tee,
            digest: [0; 32],
        },
    }
}

fn sign(agent: &SigningKey, body: &ReceiptBody) -> Vec<u8> {
    let d = body.digest(&RustCrypto);
    SignedReceipt::new(body, agent.sign(&d).to_bytes()).to_bytes()
}

/// An attested-key receipt over a simulated bundle: (receipt, bundle).
fn attested(agent: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let bundle = sim_bundle(agent, [9; 32], vec![]);
    let mut b = body(agent, EvidenceMode::AttestedKey, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    (sign(agent, &b), bundle.to_bytes())
}

fn fresh(agent: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let mut b = body(agent, EvidenceMode::FreshQuote, TeeKind::Simulated);
    let nonce = binding::fresh_nonce(&RustCrypto, &b);
    let bundle = sim_bundle(agent, nonce, vec![]);
    b.evidence.digest = bundle.digest(&RustCrypto);
    (sign(agent, &b), bundle.to_bytes())
}

fn allow() -> Policy {
    Policy {
        allow_simulated: true,
        ..Policy::default()
    }
}

fn verifiers() -> Vec<ReceiptVerifier<&'static dyn Crypto>> {
    let mut v: Vec<&'static dyn Crypto> = vec![&RustCrypto];
    #[cfg(feature = "native")]
    v.push(&crate::crypto::AwsLc);
    v.into_iter()
        .map(|c| ReceiptVerifier::new(c).unwrap())
        .collect()
}

fn check(receipt: &[u8], bundle: Option<&[u8]>, policy: &Policy) -> Outcome<ReceiptClaims> {
    let mut outcomes = verifiers()
        .into_iter()
        .map(|mut v| check_receipt(&mut v, receipt, bundle, policy, NOW));
    let first = outcomes.next().unwrap();
    for o in outcomes {
        assert_eq!(o, first, "backends disagree");
    }
    first
}

#[test]
fn simulated_attested_key_allowed_works() {
    let (r, b) = attested(&agent());
    let o = check(&r, Some(&b), &allow());
    assert!(o.accepted(), "{:?}", o.reasons);
    let c = o.claims.unwrap();
    assert_eq!(c.tee, "simulated");
    assert_eq!(c.evidence_mode, "attested-key");
    let e = c.evidence.unwrap();
    assert!(e.simulated);
    assert!(matches!(e.cpu, Some(CpuClaims::Simulated(ref s)) if s.simulated));
}

#[test]
fn simulated_without_allow_rejects() {
    let (r, b) = attested(&agent());
    let o = check(&r, Some(&b), &Policy::default());
    assert!(!o.accepted());
    assert_eq!(o.reasons.len(), 1, "{:?}", o.reasons);
    assert!(o.reasons[0].contains("allow_simulated"), "{:?}", o.reasons);
}

#[test]
fn simulated_bundle_tees_and_gpu_count_rejects() {
    let (r, b) = attested(&agent());
    // Listed explicitly, the simulator is accepted.
    let listed = Policy {
        tees: vec![crate::policy::PolicyTee::Simulated],
        ..allow()
    };
    assert!(check(&r, Some(&b), &listed).accepted());
    // allow_simulated, but tees names only hardware.
    let hardware = Policy {
        tees: vec![crate::policy::PolicyTee::SevSnp],
        ..allow()
    };
    let o = check(&r, Some(&b), &hardware);
    assert_eq!(o.reasons.len(), 1, "{:?}", o.reasons);
    assert!(o.reasons[0].starts_with("policy tees:"), "{:?}", o.reasons);
    // A bundle without GPU reports under gpu.min_count = 1.
    let mut gpus = allow();
    gpus.gpu.min_count = 1;
    let o = check(&r, Some(&b), &gpus);
    assert_eq!(o.reasons.len(), 1, "{:?}", o.reasons);
    assert!(
        o.reasons[0].starts_with("policy gpu.min_count:"),
        "{:?}",
        o.reasons
    );
    // Refused by allow_simulated, the simulator is not refused twice by tees.
    let o = check(&r, Some(&b), &Policy::default());
    assert_eq!(o.reasons.len(), 1, "{:?}", o.reasons);
}

#[test]
fn simulated_fresh_quote_works() {
    let (r, b) = fresh(&agent());
    let o = check(&r, Some(&b), &allow());
    assert!(o.accepted(), "{:?}", o.reasons);
    assert_eq!(o.claims.unwrap().evidence_mode, "fresh-quote");
}

#[test]
fn fresh_quote_with_other_nonce_rejects() {
    // Attested-key evidence relabelled as fresh: the nonce is not derived from the body.
    let a = agent();
    let bundle = sim_bundle(&a, [9; 32], vec![]);
    let mut b = body(&a, EvidenceMode::FreshQuote, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    let o = check(&sign(&a, &b), Some(&bundle.to_bytes()), &allow());
    assert!(!o.accepted());
    assert!(
        o.reasons
            .iter()
            .any(|r| r.contains("fresh-quote evidence nonce")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn tampered_receipt_rejects() {
    let (mut r, b) = attested(&agent());
    // The receipt file is SCALE(SignedReceipt): a two-byte compact length (228),
    // the version byte, then the job id. Flip a bit of the job id.
    assert_eq!(&r[..3], &[0x91, 0x03, 1]);
    r[3] ^= 0x01;
    let o = check(&r, Some(&b), &allow());
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().any(|x| x.contains("signature")),
        "{:?}",
        o.reasons
    );
    let mut v = verifiers().remove(0);
    let f = v.verify(&r, Some(&b), NOW).unwrap_err();
    assert!(f.any(|e| matches!(e, ReceiptVerifyError::Receipt(ReceiptError::Signature(_)))));
}

#[test]
fn tampered_bundle_rejects() {
    let (r, b) = attested(&agent());
    let mut bundle = EvidenceBundle::from_bytes(&b).unwrap();
    bundle.nonce[0] ^= 1;
    let o = check(&r, Some(&bundle.to_bytes()), &allow());
    assert!(!o.accepted());
    // The digest no longer matches, nor does REPORT_DATA.
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("evidence bundle digest")),
        "{:?}",
        o.reasons
    );
    assert!(
        o.reasons.iter().any(|x| x.contains("REPORT_DATA")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn bundle_for_another_key_rejects() {
    // A receipt signed by one agent, pointing at another agent's genuine bundle.
    let a = agent();
    let other = SigningKey::from_bytes(&[22; 32]);
    let bundle = sim_bundle(&other, [9; 32], vec![]);
    let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    let o = check(&sign(&a, &b), Some(&bundle.to_bytes()), &allow());
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().any(|x| x.contains("binds agent key")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn report_data_not_bound_rejects() {
    let a = agent();
    let key = a.verifying_key().to_bytes();
    let bundle = EvidenceBundle::new(
        key,
        [9; 32],
        CpuEvidence::Simulated {
            report: simulated_report([0; 64]),
        },
        vec![],
    );
    let mut v = verifiers().remove(0);
    let f = v
        .verify_bundle(&bundle.to_bytes(), Some(&key), None, NOW)
        .unwrap_err();
    assert!(f.any(|e| matches!(
        e,
        ReceiptVerifyError::ReportDataMismatch {
            tee: TeeKind::Simulated,
            ..
        }
    )));
}

#[test]
fn simulated_signature_tamper_rejects() {
    let a = agent();
    let mut bundle = sim_bundle(&a, [9; 32], vec![]);
    if let CpuEvidence::Simulated { report } = &mut bundle.cpu {
        let n = report.len();
        report[n - 1] ^= 1;
    }
    let mut v = verifiers().remove(0);
    let f = v
        .verify_bundle(&bundle.to_bytes(), None, None, NOW)
        .unwrap_err();
    assert!(f.any(|e| matches!(e, ReceiptVerifyError::Simulated(_))));
}

#[test]
fn simulated_p384_key_works() {
    use p384::ecdsa::signature::Signer as _;
    let a = agent();
    let key = a.verifying_key().to_bytes();
    let rd = report_data(&RustCrypto, &key, &[0; 32], &[9; 32]);
    let sk = p384::ecdsa::SigningKey::from_slice(&[0x33; 48]).unwrap();
    let pk: [u8; 97] = sk
        .verifying_key()
        .to_sec1_point(false)
        .as_bytes()
        .try_into()
        .unwrap();
    let body = SimulatedBody::new(rd, [0; 48], SimulatedKey::EcdsaP384(pk));
    let sig: p384::ecdsa::Signature = sk.sign(&body.signed_message());
    let report = SimulatedReport {
        body,
        signature: sig.to_bytes().to_vec(),
    };
    let bundle = EvidenceBundle::new(
        key,
        [9; 32],
        CpuEvidence::Simulated {
            report: report.to_bytes(),
        },
        vec![],
    );
    for mut v in verifiers() {
        let ok = v.verify_bundle(&bundle.to_bytes(), Some(&key), Some(&[9; 32]), NOW);
        assert!(ok.is_ok(), "{}: {:?}", v.crypto().name(), ok.err());
    }
}

#[test]
fn malformed_gpu_evidence_rejects() {
    // A GPU entry that is bound correctly but whose report and chain do not
    // parse: both are reported, and nothing is accepted.
    let a = agent();
    let key = a.verifying_key().to_bytes();
    let gn = gpu_nonce(&RustCrypto, &key, &[9; 32]);
    let gpu = GpuEvidence {
        report: vec![0x11, 0xE0],
        cert_chain_pem: String::new(),
        nonce: gn,
        uuid: "GPU-test".into(),
    };
    let bundle = sim_bundle(&a, [9; 32], vec![gpu]);
    let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    let o = check(&sign(&a, &b), Some(&bundle.to_bytes()), &allow());
    assert!(!o.accepted());
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("GPU 0 (GPU-test) report")),
        "{:?}",
        o.reasons
    );
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("GPU 0 (GPU-test) certificate chain")),
        "{:?}",
        o.reasons
    );
    assert!(
        !o.reasons.iter().any(|x| x.contains("GPU nonce")),
        "{:?}",
        o.reasons
    );
    let mut v = verifiers().remove(0);
    let f = v
        .verify_bundle(&bundle.to_bytes(), None, None, NOW)
        .unwrap_err();
    assert!(f.any(|e| matches!(e, ReceiptVerifyError::GpuParse { index: 0, .. })));
    assert!(f.any(|e| matches!(e, ReceiptVerifyError::GpuCertChain { index: 0, .. })));
}

#[test]
fn gpu_nonce_not_bound_rejects() {
    let a = agent();
    let gpu = GpuEvidence {
        report: vec![],
        cert_chain_pem: String::new(),
        nonce: [0; 32],
        uuid: "GPU-test".into(),
    };
    let bundle = sim_bundle(&a, [9; 32], vec![gpu]);
    let mut v = verifiers().remove(0);
    let f = v
        .verify_bundle(&bundle.to_bytes(), None, None, NOW)
        .unwrap_err();
    assert!(f.any(|e| matches!(e, ReceiptVerifyError::GpuNonceMismatch { .. })));
}

#[test]
fn tdx_evidence_is_not_accepted_by_this_build_rejects() {
    let a = agent();
    let bundle = EvidenceBundle::new(
        a.verifying_key().to_bytes(),
        [9; 32],
        CpuEvidence::Tdx {
            quote: vec![4, 0, 2, 0],
            collateral_json: None,
        },
        vec![],
    );
    let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::Tdx);
    b.evidence.digest = bundle.digest(&RustCrypto);
    let o = check(&sign(&a, &b), Some(&bundle.to_bytes()), &allow());
    assert!(!o.accepted());
    assert!(!o.reasons.is_empty());
}

#[test]
fn tee_mismatch_rejects() {
    let a = agent();
    let bundle = sim_bundle(&a, [9; 32], vec![]);
    let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::SevSnp);
    b.evidence.digest = bundle.digest(&RustCrypto);
    let o = check(&sign(&a, &b), Some(&bundle.to_bytes()), &allow());
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("receipt says sev-snp evidence")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn receipt_without_evidence_works() {
    let a = agent();
    let b = body(&a, EvidenceMode::None, TeeKind::None);
    let r = sign(&a, &b);
    let o = check(&r, None, &Policy::default());
    assert!(o.accepted(), "{:?}", o.reasons);
    let (_, bundle) = attested(&a);
    let o = check(&r, Some(&bundle), &allow());
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("references no evidence"))
    );
}

#[test]
fn missing_bundle_rejects() {
    let (r, _) = attested(&agent());
    let o = check(&r, None, &allow());
    assert!(!o.accepted());
    assert!(o.reasons[0].contains("no evidence bundle was given"));
    assert!(o.claims.is_some());
}

#[test]
fn garbage_rejects() {
    let o = check(b"nonsense", Some(b"SGEB"), &allow());
    assert!(!o.accepted());
    assert!(o.claims.is_none());
    let (r, _) = attested(&agent());
    let o = check(&r, Some(b"SGEB\x01"), &allow());
    assert!(!o.accepted());
    assert!(o.claims.is_some());
}
