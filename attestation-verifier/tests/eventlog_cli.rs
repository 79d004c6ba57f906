//! `sigil-verify eventlog`: exit codes (0 replayed/accepted, 1 rejected, 2 error) and the
//! JSON envelope on the real event-log vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::process::Command;

use common::Case;
use serde_json::Value;

const KIND: &str = "measured/tdx-eventlog";

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .arg("eventlog")
        .args(args)
        .env_remove("PCCS_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, stdout, stderr) = run(&a);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    // Exactly one object on stdout.
    assert_eq!(stdout.trim_end().lines().count(), 1, "{stdout}");
    (code, serde_json::from_str(&stdout).unwrap())
}

fn path(c: &Case, f: &str) -> String {
    c.dir.join(f).to_str().unwrap().to_string()
}

fn expected(c: &Case, k: &str) -> String {
    c.expected(k).unwrap().as_str().unwrap().to_string()
}

#[test]
fn replay_without_quote_works() {
    let c = Case::load(KIND, "trustee-ccel-aael-alibabacloud");
    let (code, v) = json(&["--log", &path(&c, "ccel.bin")]);
    assert_eq!(code, 0);
    assert_eq!(v["verdict"], "replayed");
    assert_eq!(v["reasons"], Value::Array(vec![]));
    for r in ["rtmr0", "rtmr1", "rtmr2", "rtmr3"] {
        assert_eq!(v["claims"][r], expected(&c, r), "{r}");
    }
    let events = v["claims"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 87);
    for key in [
        "index",
        "mr_index",
        "rtmr",
        "event_type",
        "event_type_name",
        "sha384",
        "description",
    ] {
        assert!(events[0].get(key).is_some(), "event key {key}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["event_type_name"] == "EV_EVENT_TAG" && e["rtmr"] == 3)
    );
    assert_eq!(v["claims"].get("quote_signature"), None);
}

#[test]
fn matching_quote_accepts_works() {
    for name in ["go-tdx-guest-cos113", "dstack-simulator-json"] {
        let c = Case::load(KIND, name);
        let log = if c.has("ccel.bin") {
            "ccel.bin"
        } else {
            "eventlog.json"
        };
        let (code, v) = json(&["--log", &path(&c, log), "--quote", &path(&c, "quote.bin")]);
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(v["verdict"], "accepted");
        assert_eq!(v["claims"]["quote_signature"], "not_checked");
        assert!(v["reasons"][0].as_str().unwrap().contains("not checked"));
        assert_eq!(v["claims"]["quote"]["rtmr1"], v["claims"]["rtmr1"]);
    }
}

#[test]
fn tampered_log_rejects() {
    let c = Case::load(KIND, "invalid-go-tdx-guest-tampered-digest");
    let (code, v) = json(&[
        "--log",
        &path(&c, "ccel.bin"),
        "--quote",
        &path(&c, "quote.bin"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "rejected");
    let reasons = v["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].as_str().unwrap().contains("RTMR1"),
        "{reasons:?}"
    );
    assert_eq!(v["claims"]["rtmr1"], expected(&c, "replayed_rtmr1"));
}

#[test]
fn unparseable_log_rejects() {
    let c = Case::load(KIND, "go-tdx-guest-cos113");
    let dir = std::env::temp_dir().join(format!("sigil-eventlog-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &c.file("ccel.bin")[..1000]).unwrap();
    let (code, v) = json(&["--log", cut.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["claims"], Value::Null);
    assert!(v["reasons"][0].as_str().unwrap().contains("truncated"));
}

#[test]
fn usage_and_io_errors_exit_2_works() {
    let c = Case::load(KIND, "go-tdx-guest-cos113");
    // Missing file.
    let (code, stdout, stderr) = run(&["--log", "/nonexistent/ccel.bin"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("reading"), "{stderr}");
    // Missing --log.
    assert_eq!(run(&[]).0, 2);
    // --collateral without --quote.
    let (code, _, _) = run(&["--log", &path(&c, "ccel.bin"), "--collateral", "x.json"]);
    assert_eq!(code, 2);
    // Unreadable collateral.
    let (code, _, _) = run(&[
        "--log",
        &path(&c, "ccel.bin"),
        "--quote",
        &path(&c, "quote.bin"),
        "--collateral",
        "/nonexistent/collateral.json",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn text_format_works() {
    let c = Case::load(KIND, "trustee-ccel-ovmf-direct");
    let (code, stdout, _) = run(&["--log", &path(&c, "ccel.bin")]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("verdict: replayed\n"));
    assert!(stdout.contains(&format!("rtmr2: {}", expected(&c, "rtmr2"))));
    assert!(stdout.contains("EV_EFI_PLATFORM_FIRMWARE_BLOB2"));
}

#[test]
fn verified_quote_with_other_log_rejects() {
    // A quote that verifies with its collateral, and a log of another TD: the quote's
    // check runs in full and every differing register is named.
    let t = Case::load("tdx", "tdx-v4-dcap-qvl-sample");
    let at = t
        .expected("verification_time")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string();
    let c = Case::load(KIND, "go-tdx-guest-cos113");
    let (code, v) = json(&[
        "--log",
        &path(&c, "ccel.bin"),
        "--quote",
        &path(&t, "quote.bin"),
        "--collateral",
        &path(&t, "collateral.json"),
        "--at",
        &at,
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["claims"]["quote_signature"], "verified");
    assert!(v["claims"]["quote"]["tcb_status"].is_string(), "{v}");
    let reasons: Vec<&str> = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("RTMR0 replays to")),
        "{reasons:?}"
    );
}
