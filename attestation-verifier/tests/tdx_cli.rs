//! `sigil-verify tdx`: the contract (exit codes, JSON envelope, claim keys) on the
//! real vectors, with collateral as a bundle JSON and as a directory of PCS files.

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

fn time(c: &Case) -> String {
    c.expected("verification_time")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
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

fn verify_case(c: &Case, collateral: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let quote = c.dir.join("quote.bin");
    let at = time(c);
    let mut args = vec![
        "tdx",
        "--quote",
        quote.to_str().unwrap(),
        "--collateral",
        collateral,
        "--at",
        &at,
        "--format",
        "json",
    ];
    args.extend(extra);
    let (code, stdout, stderr) = run(&args);
    assert!(code == 0 || code == 1, "{}: exit {code}: {stderr}", c.name);
    (code, serde_json::from_str(&stdout).unwrap())
}

#[test]
fn cli_contract_on_every_vector_works() {
    for c in common::cases("tdx") {
        let json = c.dir.join("collateral.json");
        let (code, v) = verify_case(&c, json.to_str().unwrap(), &[]);
        let dir = c.dir.to_str().unwrap().to_string();
        let (code_dir, v_dir) = verify_case(&c, &dir, &[]);
        assert_eq!((code, &v), (code_dir, &v_dir), "{}", c.name);
        let tdx = c.toml.get("kind").and_then(|k| k.as_str()) == Some("tdx");
        // The default policy accepts genuine TDX evidence whose status is UpToDate.
        let up_to_date = c
            .facts()
            .unwrap()
            .get("tcb_status")
            .and_then(|s| s.as_str())
            == Some("UpToDate");
        let accepted = c.expected_valid() && tdx && up_to_date;
        assert_eq!(code, if accepted { 0 } else { 1 }, "{}: {v}", c.name);
        assert_eq!(
            v["verdict"],
            if accepted { "accepted" } else { "rejected" },
            "{}",
            c.name
        );
        assert_eq!(v["reasons"].as_array().unwrap().is_empty(), accepted);
        if !tdx {
            assert!(v["claims"].is_null());
            assert!(
                v["reasons"][0]
                    .as_str()
                    .unwrap()
                    .contains("not a TDX quote")
            );
            continue;
        }
        let claims = v["claims"].as_object().unwrap();
        for key in [
            "quote_version",
            "tee",
            "mrtd",
            "rtmr0",
            "rtmr1",
            "rtmr2",
            "rtmr3",
            "mrconfigid",
            "mrowner",
            "mrseam",
            "report_data",
            "td_attributes",
            "fmspc",
            "advisory_ids",
        ] {
            assert!(claims.contains_key(key), "{}: claims lack {key}", c.name);
        }
        assert_eq!(claims["tee"], "TDX");
        let fmspc = claims["fmspc"].as_str().unwrap();
        assert_eq!(fmspc, fmspc.to_lowercase());
        if accepted {
            assert_eq!(
                claims["tcb_status"].as_str(),
                c.facts().unwrap()["tcb_status"].as_str()
            );
        }
    }
}

#[test]
fn cli_policy_and_text_output_work() {
    let c = common::cases("tdx")
        .into_iter()
        .find(|c| c.name == "invalid-tdx-v4-trustee-debug-td")
        .unwrap();
    let json = c.dir.join("collateral.json");
    let (code, v) = verify_case(&c, json.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        v["reasons"][0],
        "policy tdx.allow_debug: TD_ATTRIBUTES.DEBUG is set"
    );
    let policy = std::env::temp_dir().join(format!("sigil-tdx-cli-{}.toml", std::process::id()));
    std::fs::write(&policy, "[tdx]\nallow_debug = true\n").unwrap();
    let (code, v) = verify_case(
        &c,
        json.to_str().unwrap(),
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{v}");
    std::fs::remove_file(&policy).unwrap();
    let quote = c.dir.join("quote.bin");
    let (code, stdout, _) = run(&[
        "tdx",
        "--quote",
        quote.to_str().unwrap(),
        "--collateral",
        json.to_str().unwrap(),
        "--at",
        &time(&c),
    ]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("verdict: rejected\n"), "{stdout}");
    assert!(stdout.contains("\n  tee: TDX\n"), "{stdout}");
}

#[test]
fn cli_usage_errors_exit_2_rejects() {
    let c = common::cases("tdx").into_iter().next().unwrap();
    let quote = c.dir.join("quote.bin");
    // Neither collateral nor a PCCS.
    let (code, _, stderr) = run(&["tdx", "--quote", quote.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--collateral"), "{stderr}");
    // A missing file.
    let (code, _, stderr) = run(&[
        "tdx",
        "--quote",
        "/nonexistent/quote.bin",
        "--collateral",
        "/nonexistent/c.json",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("quote.bin"), "{stderr}");
    // Malformed collateral is evidence that does not decode: a rejection (issue 21).
    let (code, _, _) = run(&[
        "tdx",
        "--quote",
        quote.to_str().unwrap(),
        "--collateral",
        quote.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    // Both offline collateral and a PCCS.
    let (code, _, _) = run(&[
        "tdx",
        "--quote",
        quote.to_str().unwrap(),
        "--collateral",
        "x.json",
        "--pccs-url",
        "https://pccs.test",
    ]);
    assert_eq!(code, 2);
}
