//! `sigil-verify gpu` end to end on the real vectors: exit codes, the JSON
//! envelope, the claims the issue names, and how RIMs and OCSP inputs surface.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn case_dir(name: &str) -> PathBuf {
    common::vectors_dir().join("nvgpu").join(name)
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-gpu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(case: &str, report: &Path, nonce: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let dir = case_dir(case);
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .arg("gpu")
        .arg("--report")
        .arg(report)
        .arg("--cert-chain")
        .arg(dir.join("cert_chain.pem"))
        .args([
            "--nonce",
            nonce,
            "--at",
            "2025-06-01T00:00:00Z",
            "--format",
            "json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let json = if code == 2 {
        serde_json::Value::String(String::from_utf8_lossy(&out.stderr).into_owned())
    } else {
        serde_json::from_slice(&out.stdout).unwrap()
    };
    (code, json)
}

fn nonce(case: &str) -> String {
    std::fs::read_to_string(case_dir(case).join("nonce.hex"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn gpu_cli_works() {
    let case = "hopper-trustee-coco-ci";
    let policy = scratch("genuine.toml", b"[gpu]\nrim_match_required = false\n");
    let (code, json) = run(
        case,
        &case_dir(case).join("report.bin"),
        &nonce(case),
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["reasons"], serde_json::json!([]));
    let c = &json["claims"];
    assert_eq!(c["arch"], "Hopper");
    assert_eq!(c["nonce"], nonce(case));
    assert_eq!(c["driver_version"], "580.95.05");
    assert_eq!(c["vbios_version"], "96.00.74.00.1a");
    assert_eq!(c["measurement_count"], 64);
    assert_eq!(c["trailing_bytes"], 1);
    assert!(c["fwid"].as_str().unwrap().starts_with("f1ae7d00"));
    assert!(c.get("rim").is_none());
    // The hex form of the report is accepted too.
    let (code, _) = run(
        case,
        &case_dir(case).join("report.hex"),
        &nonce(case),
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(code, 0);
}

#[test]
fn gpu_cli_rejects_with_reasons() {
    let case = "hopper-nvtrust-sample";
    let report = case_dir(case).join("report.bin");
    // Default policy: genuine but no RIMs.
    let (code, json) = run(case, &report, &nonce(case), &[]);
    assert_eq!(code, 1);
    assert_eq!(json["verdict"], "rejected");
    assert_eq!(json["reasons"].as_array().unwrap().len(), 2);
    // Wrong nonce.
    let (code, json) = run(case, &report, &"00".repeat(32), &[]);
    assert_eq!(code, 1);
    assert!(json["reasons"][0].as_str().unwrap().contains("nonce"));
    // A genuine RIM for another driver version.
    let rim = common::vectors_dir().join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml");
    let (code, json) = run(
        case,
        &report,
        &nonce(case),
        &["--rim", rim.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        json["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .contains("matches neither the driver (550.90.07)")),
        "{json}"
    );
    // An OCSP "response" that is not one.
    let junk = scratch("junk.der", &[0x30, 0x81, 0x03, 0x0a, 0x01, 0x01]);
    let (code, json) = run(
        case,
        &report,
        &nonce(case),
        &["--ocsp", junk.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        json["reasons"][0].as_str().unwrap().starts_with("OCSP"),
        "{json}"
    );
}

#[test]
fn gpu_cli_errors_exit_2() {
    let case = "hopper-nvtrust-sample";
    let report = case_dir(case).join("report.bin");
    let (code, err) = run(case, &report, "abcd", &[]);
    assert_eq!(code, 2);
    assert!(err.as_str().unwrap().contains("32 bytes"));
    let (code, _) = run(
        case,
        Path::new("/nonexistent/report.bin"),
        &nonce(case),
        &[],
    );
    assert_eq!(code, 2);
    let bad_policy = scratch("bad.toml", b"[gpu]\nallowed_modes = [\"on\"]\n");
    let (code, _) = run(
        case,
        &report,
        &nonce(case),
        &["--policy", bad_policy.to_str().unwrap()],
    );
    assert_eq!(code, 2);
}
