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

// ---- --tpm: a TPM's TCG event log (a vTPM's), against given PCRs and [vtpm] events ----

mod tpm {
    use super::*;
    use sigil_test_support::tcg_log::{self, LogEvent};

    /// A temporary directory with a synthetic vTPM log of a sample boot, the PCR values
    /// it replays to (`pcrs.json`), and whatever else a test writes.
    struct Files {
        dir: std::path::PathBuf,
        events: Vec<LogEvent>,
    }

    impl Files {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("sigil-eventlog-tpm-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let events = tcg_log::sample_boot();
            std::fs::write(dir.join("log.bin"), tcg_log::log(&events)).unwrap();
            let f = Self { dir, events };
            f.write_pcrs("pcrs.json", |_, v| v);
            f
        }

        fn path(&self, name: &str) -> String {
            self.dir.join(name).to_str().unwrap().to_string()
        }

        /// Writes the replayed values of PCR 0..9, each through `edit`.
        fn write_pcrs(&self, name: &str, edit: impl Fn(usize, [u8; 32]) -> [u8; 32]) {
            let replayed = tcg_log::replay(&self.events);
            let map: serde_json::Map<String, Value> = (0..10)
                .map(|i| {
                    (
                        format!("pcr{i:02}"),
                        Value::String(hex::encode(edit(i, replayed[i]))),
                    )
                })
                .collect();
            std::fs::write(self.dir.join(name), Value::Object(map).to_string()).unwrap();
        }

        fn write(&self, name: &str, text: &str) -> String {
            std::fs::write(self.dir.join(name), text).unwrap();
            self.path(name)
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    #[test]
    fn tpm_log_replay_works() {
        let f = Files::new("replay");
        let (code, v) = json(&["--tpm", "--log", &f.path("log.bin")]);
        assert_eq!(code, 0);
        assert_eq!(v["verdict"], "replayed");
        let c = &v["claims"];
        assert_eq!(c["log_format"], "tpm");
        let replayed = tcg_log::replay(&f.events);
        // Every PCR the sample boot extends (0-8), with its replayed value; none other.
        let pcrs = c["pcrs"].as_object().unwrap();
        assert_eq!(pcrs.len(), 9, "{pcrs:?}");
        for i in 0..9 {
            assert_eq!(pcrs[&format!("pcr{i:02}")], hex::encode(replayed[i]));
        }
        assert_eq!(c["events"].as_array().unwrap().len(), f.events.len());
        assert_eq!(c["events"][10]["pcr"], 4);
        assert_eq!(
            c["events"][10]["event_type_name"],
            "EV_EFI_BOOT_SERVICES_APPLICATION"
        );
        assert!(c.get("pcrs_given").is_none());
        // Text output names the format and the registers.
        let (code, out, _) = run(&["--tpm", "--log", &f.path("log.bin")]);
        assert_eq!(code, 0);
        assert!(
            out.contains("log format: tpm") && out.contains("pcr04: "),
            "{out}"
        );
    }

    #[test]
    fn tpm_log_against_pcrs_and_rules_works() {
        let f = Files::new("accept");
        let (code, v) = json(&[
            "--tpm",
            "--log",
            &f.path("log.bin"),
            "--pcrs",
            &f.path("pcrs.json"),
        ]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["verdict"], "accepted");
        assert_eq!(v["claims"]["pcrs_given"], "matched");
        // The note says what was not checked.
        assert!(v["reasons"][0].as_str().unwrap().contains("signed quote"));
        // [vtpm] events rules over the log: the boot application on PCR 4.
        let app = &f.events[10];
        let policy = f.write(
            "policy.toml",
            &format!(
                "[vtpm]\nevents = [{{ pcr = 4, digest = \"{}\" }}]\n",
                hex::encode(app.sha256)
            ),
        );
        let (code, v) = json(&["--tpm", "--log", &f.path("log.bin"), "--policy", &policy]);
        assert_eq!((code, v["verdict"].as_str()), (0, Some("accepted")), "{v}");
    }

    #[test]
    fn tpm_log_against_pcrs_and_rules_rejects() {
        let f = Files::new("reject");
        // PCR 4 differs; PCR 8 missing.
        f.write_pcrs("wrong.json", |i, v| if i == 4 { [0xee; 32] } else { v });
        let partial = f.write("partial.json", r#"{"pcr00": "00"}"#);
        let (code, v) = json(&[
            "--tpm",
            "--log",
            &f.path("log.bin"),
            "--pcrs",
            &f.path("wrong.json"),
        ]);
        assert_eq!((code, v["verdict"].as_str()), (1, Some("rejected")), "{v}");
        assert_eq!(v["claims"]["pcrs_given"], "mismatched");
        let reasons = v["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        let replayed4 = hex::encode(tcg_log::replay(&f.events)[4]);
        assert_eq!(
            reasons[0],
            format!(
                "event log: PCR 4 replays to {replayed4} but --pcrs gives {}",
                "ee".repeat(32)
            )
        );
        let (code, _, stderr) = run(&["--tpm", "--log", &f.path("log.bin"), "--pcrs", &partial]);
        assert_eq!(
            code, 2,
            "a PCR value that is not 32 bytes is a usage error: {stderr}"
        );
        let only_zero = {
            let replayed = tcg_log::replay(&f.events);
            f.write(
                "only0.json",
                &format!(r#"{{"pcr00": "{}"}}"#, hex::encode(replayed[0])),
            )
        };
        let (code, v) = json(&["--tpm", "--log", &f.path("log.bin"), "--pcrs", &only_zero]);
        assert_eq!(code, 1);
        // PCRs 1..8 are extended by the log and not given: each named.
        let reasons = v["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 8, "{v}");
        assert_eq!(
            reasons[0],
            "event log: PCR 1 is extended by the log but not in --pcrs"
        );
        // An events rule the log does not hold.
        let policy = f.write(
            "policy.toml",
            &format!(
                "[vtpm]\nevents = [{{ pcr = 4, digest = \"{}\" }}]\n",
                "ab".repeat(32)
            ),
        );
        let (code, v) = json(&["--tpm", "--log", &f.path("log.bin"), "--policy", &policy]);
        assert_eq!(code, 1);
        assert!(
            v["reasons"][0].as_str().unwrap().contains("vtpm.events"),
            "{v}"
        );
        // Not a TPM log (a TDX CCEL lists no SHA-256 bank): rejected, exit 1.
        let c = Case::load(KIND, "trustee-ccel-aael-alibabacloud");
        let (code, v) = json(&["--tpm", "--log", &path(&c, "ccel.bin")]);
        assert_eq!((code, v["verdict"].as_str()), (1, Some("rejected")), "{v}");
        assert!(v["claims"].is_null());
        // Usage errors: bad PCR files, --tpm with a quote, --pcrs without --tpm.
        for (name, text) in [
            ("notjson.json", "pcr00=00"),
            (
                "badname.json",
                &format!(r#"{{"pcr24": "{}"}}"#, "00".repeat(32)),
            ),
            (
                "badname2.json",
                &format!(r#"{{"PCR0": "{}"}}"#, "00".repeat(32)),
            ),
            (
                "nothex.json",
                &format!(r#"{{"pcr01": "{}"}}"#, "zz".repeat(32)),
            ),
        ] {
            let p = f.write(name, text);
            let (code, _, stderr) = run(&["--tpm", "--log", &f.path("log.bin"), "--pcrs", &p]);
            assert_eq!(code, 2, "{name}: {stderr}");
        }
        let (code, _, _) = run(&[
            "--tpm",
            "--log",
            &f.path("log.bin"),
            "--quote",
            &f.path("log.bin"),
        ]);
        assert_eq!(code, 2);
        let (code, _, _) = run(&["--log", &f.path("log.bin"), "--pcrs", &f.path("pcrs.json")]);
        assert_eq!(code, 2);
    }
}
