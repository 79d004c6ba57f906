//! `sigil-gpu` as a process: without a usable driver it exits non-zero with one line on stderr,
//! never a panic or a backtrace.
// Tests panic on a failed expectation: that is how they report it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};

const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

fn sigil_gpu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil-gpu"))
        .args(args)
        // A backtrace would show up if anything panicked.
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn assert_one_line_failure(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("sigil-gpu: "), "{what}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{what}: {stderr}"
    );
    stderr
}

const COMMANDS: &[&[&str]] = &[
    &["inventory"],
    &["--format", "json", "inventory"],
    &["watch", "--count", "1"],
    &["attest", "--nonce", NONCE],
    &["attest", "--nonce", NONCE, "--format", "json", "--gpu", "0"],
    &["ready"],
    &["metrics"],
];

#[test]
fn missing_driver_rejects() {
    for args in COMMANDS {
        let mut all = vec!["--nvml-library", "/nonexistent/libnvidia-ml.so.1"];
        all.extend_from_slice(args);
        let out = sigil_gpu(&all);
        let stderr = assert_one_line_failure(&out, &format!("{args:?}"));
        assert!(
            stderr.contains("NVIDIA driver not loaded"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn system_driver_works_or_rejects() {
    // On a machine with GPUs this succeeds; without a driver or GPU it is a one-line failure.
    for args in COMMANDS.iter().filter(|a| !a.contains(&"attest")) {
        let out = sigil_gpu(args);
        if out.status.success() {
            assert!(!out.stdout.is_empty(), "{args:?}");
        } else {
            let stderr = assert_one_line_failure(&out, &format!("{args:?}"));
            assert!(
                stderr.contains("NVIDIA driver not loaded") || stderr.contains("no NVIDIA GPU"),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn bad_nonce_rejects() {
    // Rejected by argument parsing, before the driver is touched.
    for nonce in ["abcd", &"zz".repeat(32)] {
        let out = sigil_gpu(&["attest", "--nonce", nonce]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("--nonce"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn help_works() {
    let out = sigil_gpu(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["inventory", "watch", "attest", "ready", "metrics"] {
        assert!(text.contains(command), "{text}");
    }
}
