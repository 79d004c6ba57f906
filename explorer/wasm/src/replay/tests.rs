// Tests may unwrap and index: a failure is the test's report.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

use super::*;
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, TeeKind, Usage, receipt_digest,
};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

const PRICE: u128 = 5_000_000_000_000;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn body(tier: u8) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: key().verifying_key().to_bytes(),
        tier,
        result_commitment: [3; 32],
        output_count: 1,
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_001_000,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef::NONE,
    }
}

fn h(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A settled tier-1 job with one receipt, as the page reads it from the chain.
fn record(tier: u8) -> Value {
    let b = body(tier);
    let digest = receipt_digest(&RustCrypto, &b);
    let sig = key().sign(&digest).to_bytes();
    json!({
        "job_id": h(&[1; 32]), "spec_hash": h(&[2; 32]), "tier": tier, "status": "settled",
        "price": PRICE.to_string(),
        "providers": [{"account": h(&[9; 32]), "signing_key": h(&b.provider)}],
        "receipts": [{"provider": h(&[9; 32]), "body": h(&b.to_bytes()), "signature": h(&sig),
            "digest": h(&digest), "result_commitment": h(&[3; 32]), "evidence_digest": null}],
        "settlement": {"paid": {"result_commitment": h(&[3; 32]),
            "payees": [{"account": h(&[9; 32]), "amount": PRICE.to_string()}]}}
    })
}

fn run(v: &Value) -> Value {
    serde_json::from_str(&replay_json(&v.to_string())).unwrap()
}

fn verdict(report: &Value, kind: &str) -> String {
    report["receipts"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap()["verdict"]
        .as_str()
        .unwrap()
        .into()
}

#[test]
fn replay_tier1_works() {
    let r = run(&record(1));
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(r["receipts"][0]["reasons"], json!([]));
    assert_eq!(verdict(&r, "receipt-signature"), "pass");
    assert_eq!(verdict(&r, "signature-chain"), "n/a");
    assert_eq!(r["receipts"][0]["claims"]["tier"], 1);
}

#[test]
fn replay_bad_signature_rejects() {
    let mut v = record(1);
    let mut sig = hex::decode(&v["receipts"][0]["signature"].as_str().unwrap()[2..]).unwrap();
    sig[0] ^= 1;
    v["receipts"][0]["signature"] = json!(h(&sig));
    let r = run(&v);
    assert_eq!(r["verified"], false);
    assert_eq!(verdict(&r, "receipt-signature"), "fail");
    assert_eq!(verdict(&r, "job"), "pass");
    assert!(!r["receipts"][0]["reasons"].as_array().unwrap().is_empty());
}

#[test]
fn replay_other_job_and_key_rejects() {
    let mut v = record(1);
    v["job_id"] = json!(h(&[4; 32]));
    v["providers"][0]["signing_key"] = json!(h(&[5; 32]));
    let r = run(&v);
    let reasons = r["receipts"][0]["reasons"].to_string();
    assert!(reasons.contains("another job"), "{reasons}");
    assert!(
        reasons.contains("a key other than the provider's"),
        "{reasons}"
    );
    assert_eq!(verdict(&r, "job"), "fail");
}

#[test]
fn replay_settlement_rejects() {
    let mut v = record(1);
    v["price"] = json!("6000000000000");
    let r = run(&v);
    assert_eq!(r["verified"], false);
    assert_eq!(r["receipts"][0]["verified"], true);
    assert!(
        r["settlement_reasons"][0]
            .as_str()
            .unwrap()
            .contains("the shares sum to")
    );
    let mut v = record(1);
    v["status"] = json!("bound");
    assert_eq!(
        run(&v)["settlement_reasons"],
        json!(["an open job has a settlement"])
    );
}

#[test]
fn replay_tier3_without_evidence_rejects() {
    // A tier-3 receipt bound to simulated evidence that the record does not hold, under a
    // policy the chain does not store.
    let mut b = body(3);
    b.evidence = EvidenceRef {
        mode: EvidenceMode::AttestedKey,
        tee: TeeKind::Simulated,
        digest: [6; 32],
    };
    let digest = receipt_digest(&RustCrypto, &b);
    let mut v = record(3);
    v["receipts"][0]["body"] = json!(h(&b.to_bytes()));
    v["receipts"][0]["signature"] = json!(h(&key().sign(&digest).to_bytes()));
    v["receipts"][0]["digest"] = json!(h(&digest));
    v["receipts"][0]["evidence_digest"] = json!(h(&[6; 32]));
    v["policy_id"] = json!(h(&[8; 32]));
    let r = run(&v);
    assert_eq!(r["verified"], false);
    assert_eq!(verdict(&r, "receipt-signature"), "pass", "{r}");
    assert_eq!(verdict(&r, "policy"), "fail", "{r}");
    assert_eq!(verdict(&r, "evidence-binding"), "fail", "{r}");
    let reasons = r["receipts"][0]["reasons"].to_string();
    assert!(reasons.contains("is not registered on chain"), "{reasons}");
    assert!(reasons.contains("is not in the record"), "{reasons}");
    assert!(
        reasons.contains("no evidence bundle was given"),
        "{reasons}"
    );
}

#[test]
fn replay_stops_at_a_body_that_does_not_decode() {
    let mut v = record(3);
    v["policy_id"] = json!(h(&[8; 32]));
    let r = run(&v);
    // A tier-3 body without evidence does not decode: nothing after it ran.
    assert_eq!(verdict(&r, "receipt-signature"), "fail", "{r}");
    assert_eq!(verdict(&r, "policy"), "not run", "{r}");
    assert_eq!(verdict(&r, "signature-chain"), "not run", "{r}");
}

#[test]
fn replay_malformed_record_rejects() {
    for bad in ["", "{", "[]", r#"{"job_id": "0xzz"}"#] {
        let r: Value = serde_json::from_str(&replay_json(bad)).unwrap();
        assert_eq!(r["verified"], false);
        assert!(r["error"].as_str().unwrap().contains("does not decode"));
    }
    let mut v = record(1);
    v["receipts"][0]["body"] = json!("0x00");
    v["receipts"][0]["signature"] = json!("0x01");
    let r = run(&v);
    assert_eq!(verdict(&r, "receipt-signature"), "fail");
}

#[test]
fn check_kinds_works() {
    assert_eq!(CheckKind::of_rule("snp.min_tcb"), CheckKind::Tcb);
    assert_eq!(CheckKind::of_rule("tdx.mrtds"), CheckKind::Measurement);
    assert_eq!(
        CheckKind::of_rule("simulated.measurements"),
        CheckKind::Measurement
    );
    assert_eq!(CheckKind::of_rule("gpu.min_count"), CheckKind::Gpu);
    assert_eq!(CheckKind::of_rule("tees"), CheckKind::Policy);
    for rule in ["tdx.events", "tdx.agent_digests", "tdx.config_digests"] {
        assert_eq!(CheckKind::of_rule(rule), CheckKind::Measurement, "{rule}");
    }
}

#[test]
fn policy_documents_works() {
    let all: Value = serde_json::from_str(&genesis_policies_json()).unwrap();
    assert_eq!(all.as_array().unwrap().len(), genesis::NAMES.len());
    let p = genesis::named(genesis::SIMULATED_V1).unwrap();
    let v: Value =
        serde_json::from_str(&policy_document_json(&h(&p.id()), &h(&p.canonical_bytes()))).unwrap();
    assert_eq!(v["name"], genesis::SIMULATED_V1);
    assert!(
        v["toml"]
            .as_str()
            .unwrap()
            .contains("allow_simulated = true")
    );
    let v: Value = serde_json::from_str(&policy_document_json(
        &h(&[0; 32]),
        &h(&p.canonical_bytes()),
    ))
    .unwrap();
    assert!(v["error"].as_str().unwrap().contains("hashes to"));
}

#[test]
fn files_reject_without_panicking() {
    let v: Value = serde_json::from_str(&crate::files::check_receipt_json(
        b"garbage", None, "", false, 1.7e9,
    ))
    .unwrap();
    assert_eq!(v["verdict"], "rejected");
    assert!(!v["reasons"].as_array().unwrap().is_empty());
    let v: Value = serde_json::from_str(&crate::files::check_receipt_json(
        b"",
        None,
        "not = [toml",
        false,
        1.7e9,
    ))
    .unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("policy"));
    let v: Value = serde_json::from_str(&crate::files::check_bundle_json(
        b"x",
        "zz",
        "",
        "",
        false,
        f64::NAN,
    ))
    .unwrap();
    assert!(v["error"].is_string());
}

#[test]
fn evidence_files_reject_without_panicking() {
    use crate::files::{SnpFiles, check_snp_json, check_tdx_json};
    let files = SnpFiles {
        vek: b"not a certificate",
        ask: None,
        ark: None,
        crl: None,
    };
    let v: Value = serde_json::from_str(&check_snp_json(&[0; 1184], &files, "", 1.7e9)).unwrap();
    assert_eq!(v["verdict"], "rejected", "{v}");
    assert!(!v["reasons"].as_array().unwrap().is_empty());
    let v: Value = serde_json::from_str(&check_tdx_json(b"quote", b"{", "", 1.7e9)).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("the TDX collateral"),
        "{v}"
    );
}
