//! The vTPM's TCG event log against the real Azure vTPM quotes of the shared
//! `measured/azure-vtpm` vectors. No real vTPM log is among the vectors and a log that
//! replays to their PCRs cannot be made (the digests are unknown), so the logs here are
//! synthetic: a plausible boot, which the real quotes must refuse with every extended
//! PCR named, and a log extending nothing, which they accept; both crypto backends
//! verify the quotes. Then `sigil-verify azure-vtpm --eventlog` over the same inputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::bundle::{MeasuredBoot, TpmQuote};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::eventlog::EventLogError;
use attestation_verifier::evidence::azure_hcl::parse_hcl_report_snp_or_tdx;
use attestation_verifier::evidence::azure_vtpm::{
    VtpmQuoteParts, parse_vtpm_evidence_json, parse_vtpm_quote_json,
};
use attestation_verifier::receipt::TeeKind;
use attestation_verifier::verify::azure_vtpm::{VtpmQuote, verify_vtpm_quote};
use attestation_verifier::verify::measured::{MeasuredBootError, verify_measured_vtpm};
use sigil_test_support::tcg_log::{self, LogEvent};
use sigil_test_support::vectors::{Case, cases};

const KIND: &str = "measured/azure-vtpm";

fn parts(case: &Case) -> (VtpmQuoteParts, Vec<u8>) {
    if case.has("evidence.json") {
        let ev = parse_vtpm_evidence_json(&case.file("evidence.json")).unwrap();
        return (ev.tpm_quote, ev.hcl_report);
    }
    (
        parse_vtpm_quote_json(&case.file("tpm_quote.json")).unwrap(),
        case.file("hcl_report.bin"),
    )
}

fn nonce(case: &Case) -> Vec<u8> {
    hex::decode(
        case.expected("expected_nonce_hex")
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

fn quote<C: Crypto>(crypto: &C, case: &Case) -> VtpmQuote {
    let (q, hcl) = parts(case);
    let hcl = parse_hcl_report_snp_or_tdx(&hcl).unwrap();
    verify_vtpm_quote(
        crypto,
        &hcl.claims,
        &q.attest,
        &q.signature,
        &q.pcrs,
        &nonce(case),
    )
    .unwrap()
    .into_inner()
}

fn measured(log: Vec<u8>) -> MeasuredBoot {
    MeasuredBoot {
        event_log: Some(log),
        agent_events: Vec::new(),
        tpm_quote: Some(TpmQuote::default()),
    }
}

fn valid_cases() -> Vec<Case> {
    let all: Vec<Case> = cases(KIND)
        .into_iter()
        .filter(Case::expected_valid)
        .collect();
    assert!(!all.is_empty(), "no valid {KIND} vectors");
    all
}

#[test]
fn real_quote_with_unmatched_log_rejects() {
    let events = tcg_log::sample_boot();
    let log = tcg_log::log(&events);
    for case in valid_cases() {
        for crypto in [&AwsLc as &dyn Crypto, &RustCrypto] {
            let q = quote(&crypto, &case);
            let errors =
                match verify_measured_vtpm(&measured(log.clone()), &q, TeeKind::SevSnp).unwrap() {
                    Ok(_) => panic!("{}: a synthetic log matched a real quote", case.name),
                    Err(e) => e,
                };
            // Every PCR the log extends is named, in PCR order.
            let named: Vec<u8> = errors
                .iter()
                .map(|e| match e {
                    MeasuredBootError::Replay(
                        EventLogError::PcrMismatch { pcr, .. }
                        | EventLogError::PcrNotQuoted { pcr },
                    ) => *pcr,
                    other => panic!("{}: {other}", case.name),
                })
                .collect();
            // Those are the PCRs whose replay differs from the quote: a real Azure boot
            // extends PCRs 2 and 3 with only the separator event, as the synthetic log
            // does, so those two replay equal.
            let replayed = tcg_log::replay(&events);
            let differ: Vec<u8> = (0u8..=8)
                .filter(|i| q.pcr(*i) != Some(&replayed[usize::from(*i)]))
                .collect();
            assert_eq!(named, differ, "{}", case.name);
            assert!(named.contains(&0) && named.contains(&4), "{}", case.name);
            // The real PCR values are those of the quote.
            if let Some(MeasuredBootError::Replay(EventLogError::PcrMismatch {
                pcr,
                expected,
                ..
            })) = errors.first()
            {
                assert_eq!(q.pcr(*pcr), Some(expected));
            }
        }
    }
}

#[test]
fn real_quote_with_log_extending_nothing_works() {
    // Only the StartupLocality event: no PCR is extended, none is compared.
    let log = tcg_log::log(&[LogEvent::startup_locality(3)]);
    for case in valid_cases() {
        let q = quote(&RustCrypto, &case);
        let v = verify_measured_vtpm(&measured(log.clone()), &q, TeeKind::SevSnp)
            .unwrap()
            .unwrap();
        assert!(v.get().pcrs_covered.is_empty());
        assert_eq!(v.get().tpm_log.as_ref().unwrap().startup_locality, Some(3));
    }
}

// ---- `sigil-verify azure-vtpm --eventlog` ----

fn at_of(case: &Case) -> Option<String> {
    if let Some(t) = case.expected("verification_time") {
        return t.as_str().map(String::from);
    }
    let base = case.toml["source"].get("base_case")?.as_str()?;
    at_of(&Case::load(KIND, base.rsplit('/').next()?))
}

fn cli(case: &Case, tag: &str, log: &[u8]) -> (i32, serde_json::Value) {
    cli_with(case, tag, log, &[])
}

fn cli_with(case: &Case, tag: &str, log: &[u8], extra: &[&str]) -> (i32, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("sigil-vtpm-eventlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{tag}.bin", case.name));
    std::fs::write(&path, log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sigil-verify"));
    cmd.arg("azure-vtpm")
        .arg("--evidence")
        .arg(case.dir.join("evidence.json"))
        .args([
            "--nonce",
            case.expected("expected_nonce_hex")
                .unwrap()
                .as_str()
                .unwrap(),
        ])
        .arg("--eventlog")
        .arg(&path)
        .args(["--format", "json"])
        .args(extra);
    if let Some(t) = at_of(case) {
        cmd.args(["--at", &t]);
    }
    let out = cmd.output().unwrap();
    std::fs::remove_file(&path).ok();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn azure_vtpm_cli_eventlog_works() {
    let snp: Vec<Case> = valid_cases()
        .into_iter()
        .filter(|c| c.has("evidence.json") && !c.has("td_quote.bin") && c.name.contains("snp"))
        .collect();
    assert!(!snp.is_empty());
    for case in snp {
        let log = tcg_log::log(&[LogEvent::startup_locality(0)]);
        let (code, out) = cli(&case, "nothing", &log);
        assert_eq!(
            (code, out["verdict"].as_str()),
            (0, Some("accepted")),
            "{}: {out}",
            case.name
        );
        let mb = &out["claims"]["measured_boot"];
        assert_eq!(mb["verified"], true);
        assert_eq!(mb["log_format"], "tpm");
        assert_eq!(mb["pcr_events"][0]["event_type_name"], "EV_NO_ACTION");
        // A policy requiring an event the log does not hold.
        let dir = std::env::temp_dir().join(format!("sigil-vtpm-eventlog-{}", std::process::id()));
        let policy = dir.join(format!("{}-policy.toml", case.name));
        std::fs::write(
            &policy,
            format!(
                "[vtpm]\nevents = [{{ pcr = 4, digest = \"{}\" }}]\n",
                "ab".repeat(32)
            ),
        )
        .unwrap();
        let (code, out) = cli_with(
            &case,
            "policy",
            &log,
            &["--policy", policy.to_str().unwrap()],
        );
        std::fs::remove_file(&policy).ok();
        assert_eq!(code, 1, "{out}");
        assert!(out["reasons"].to_string().contains("vtpm.events"), "{out}");
    }
}

#[test]
fn azure_vtpm_cli_eventlog_rejects() {
    let case = valid_cases()
        .into_iter()
        .find(|c| c.has("evidence.json") && c.name.contains("snp"))
        .unwrap();
    let events = tcg_log::sample_boot();
    let (code, out) = cli(&case, "boot", &tcg_log::log(&events));
    assert_eq!(
        (code, out["verdict"].as_str()),
        (1, Some("rejected")),
        "{out}"
    );
    let reasons = out["reasons"].to_string();
    for pcr in [0, 1, 4, 5, 6, 7, 8] {
        assert!(
            reasons.contains(&format!("PCR {pcr} replays to")),
            "PCR {pcr} not named: {reasons}"
        );
    }
    // PCRs 2 and 3 hold only a separator on Azure, as in the synthetic log.
    assert!(
        !reasons.contains("PCR 2 ") && !reasons.contains("PCR 3 "),
        "{reasons}"
    );
    let mb = &out["claims"]["measured_boot"];
    assert_eq!(mb["verified"], false);
    assert_eq!(mb["pcr_events"].as_array().unwrap().len(), events.len());
    // Garbage and truncated logs: rejected with the parse error.
    let good = tcg_log::log(&events);
    for (tag, bad) in [
        ("garbage", b"garbage".to_vec()),
        ("cut", good[..good.len() - 1].to_vec()),
    ] {
        let (code, out) = cli(&case, tag, &bad);
        assert_eq!(code, 1);
        assert!(out["reasons"].to_string().contains("event log: "), "{out}");
    }
}
