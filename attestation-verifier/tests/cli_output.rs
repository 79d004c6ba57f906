//! `sigil-verify` when its result cannot be written: a full disk (`/dev/full`) is exit 2 with
//! the reason on stderr, never a panic (exit 101). Regression test for a finding of the outside
//! mutation campaign (issue 21: a failed write to stdout panicked).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::fs::OpenOptions;
use std::process::{Command, Stdio};

use sigil_test_support::Case;

fn to_dev_full(args: &[&str]) -> (i32, String) {
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(args)
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verdict_to_full_disk_rejects() {
    let c = Case::load("snp", "milan-v2-virtee-sev");
    let at = c
        .expected("verification_time")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string();
    let (report, vcek) = (c.dir.join("report.bin"), c.dir.join("vcek.der"));
    for format in ["json", "text"] {
        let (code, stderr) = to_dev_full(&[
            "snp",
            "--report",
            report.to_str().unwrap(),
            "--cert",
            vcek.to_str().unwrap(),
            "--at",
            &at,
            "--format",
            format,
        ]);
        assert_eq!(code, 2, "--format {format}: {stderr}");
        assert!(stderr.contains("writing the result to stdout"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn measure_to_full_disk_rejects() {
    let c = Case::load("measured/tdx-mrtd", "debian-bookworm-ovmf");
    let ovmf = c.dir.join("OVMF.fd");
    for format in ["json", "policy"] {
        let (code, stderr) = to_dev_full(&[
            "measure",
            "tdx",
            "--tdvf",
            ovmf.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(code, 2, "--format {format}: {stderr}");
        assert!(stderr.contains("writing the result to stdout"), "{stderr}");
    }
}
