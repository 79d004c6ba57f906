//! `sigil-verify`'s one exit rule: 1 when the evidence is rejected, whatever layer refused it
//! (PEM, hex, JSON, DER or binary layout), 2 when the command could not run (usage, I/O, an
//! input over its maximum size). Regression tests for findings of the outside mutation
//! campaign (issue 21: malformed PEM/JSON/hex was exit 2 while malformed DER was exit 1, and
//! `--report /dev/zero` read until memory ran out).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::process::Command;

use sigil_test_support::Case;

fn run(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-cli-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn snp_case() -> (Case, String) {
    let c = Case::load("snp", "milan-v3-oak-oc-release");
    let at = c
        .expected("verification_time")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string();
    (c, at)
}

fn assert_rejected(code: i32, json: &serde_json::Value, stderr: &str, reason: &str) {
    assert_eq!(code, 1, "{json} {stderr}");
    assert_eq!(json["verdict"], "rejected", "{json}");
    let reasons = json["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r.as_str().unwrap().contains(reason)),
        "{json}"
    );
}

#[test]
fn oversized_input_rejects() {
    let (c, at) = snp_case();
    let vcek = c.dir.join("vcek.der");
    for (flag, other) in [("--report", "--cert"), ("--cert", "--report")] {
        let other_path = if other == "--cert" {
            vcek.clone()
        } else {
            c.dir.join("report.bin")
        };
        let (code, json, stderr) = run(&[
            "snp",
            flag,
            "/dev/zero",
            other,
            other_path.to_str().unwrap(),
            "--at",
            &at,
            "--format",
            "json",
        ]);
        assert_eq!(code, 2, "{flag}: {stderr}");
        assert!(json.is_null(), "{json}");
        assert!(stderr.contains("larger than its maximum"), "{stderr}");
    }
    let (code, _, stderr) = run(&["receipt", "--receipt", "/dev/zero"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("receipt is larger than its maximum of 1048576 bytes"),
        "{stderr}"
    );
}

#[test]
fn malformed_pem_certificate_rejects() {
    let (c, at) = snp_case();
    let report = c.dir.join("report.bin");
    let bad_pem = scratch("bad.pem", b"-----BEGIN CERTIFICATE-----\n!!!!\n");
    let bad_der = scratch("bad.der", &[0x30, 0x82, 0xff, 0xff, 0x00, 0x80]);
    for (cert, reason) in [(&bad_pem, "not PEM"), (&bad_der, "not valid DER")] {
        let (code, json, stderr) = run(&[
            "snp",
            "--report",
            report.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--at",
            &at,
            "--format",
            "json",
        ]);
        assert_rejected(code, &json, &stderr, reason);
    }
    // The supplied ARK too.
    let (code, json, stderr) = run(&[
        "snp",
        "--report",
        report.to_str().unwrap(),
        "--cert",
        c.dir.join("vcek.der").to_str().unwrap(),
        "--ark",
        bad_pem.to_str().unwrap(),
        "--at",
        &at,
        "--format",
        "json",
    ]);
    assert_rejected(code, &json, &stderr, "not PEM");
}

#[test]
fn malformed_collateral_json_rejects() {
    let c = Case::load("tdx", "tdx-v4-dcap-qvl-sample");
    let bad = scratch("collateral.json", b"{\"tcb_info\": 7");
    let (code, json, stderr) = run(&[
        "tdx",
        "--quote",
        c.dir.join("quote.bin").to_str().unwrap(),
        "--collateral",
        bad.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_rejected(code, &json, &stderr, "TDX collateral");
}

#[test]
fn malformed_gpu_hex_and_chain_rejects() {
    let c = Case::load("nvgpu", "hopper-nvtrust-sample");
    let nonce = String::from_utf8(c.file("nonce.hex")).unwrap();
    let odd_hex = scratch("report.hex", b"abc");
    let chain = c.dir.join("cert_chain.pem");
    let (code, json, stderr) = run(&[
        "gpu",
        "--report",
        odd_hex.to_str().unwrap(),
        "--cert-chain",
        chain.to_str().unwrap(),
        "--nonce",
        nonce.trim(),
        "--format",
        "json",
    ]);
    assert_rejected(code, &json, &stderr, "not hex");
    let not_utf8 = scratch("chain.pem", &[0xff, 0xfe, 0x00]);
    let (code, json, stderr) = run(&[
        "gpu",
        "--report",
        c.dir.join("report.bin").to_str().unwrap(),
        "--cert-chain",
        not_utf8.to_str().unwrap(),
        "--nonce",
        nonce.trim(),
        "--format",
        "json",
    ]);
    assert_rejected(code, &json, &stderr, "not a PEM certificate chain");
}

#[test]
fn text_rejection_of_malformed_input_works() {
    let (c, at) = snp_case();
    let bad_pem = scratch("bad-text.pem", b"-----BEGIN CERTIFICATE-----\n!!!!\n");
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args([
            "snp",
            "--report",
            c.dir.join("report.bin").to_str().unwrap(),
            "--cert",
            bad_pem.to_str().unwrap(),
            "--at",
            &at,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("verdict: rejected\nreason: certificate "),
        "{stdout}"
    );
}
