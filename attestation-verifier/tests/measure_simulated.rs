//! `sigil-verify measure simulated`: the measurement the agent's simulator reports for an agent
//! executable is the SHA-384 of its bytes, printed as JSON or as the `[simulated]` policy
//! fragment that `Policy::from_toml` reads back; a missing file is exit 2.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::process::Command;

use attestation_verifier::policy::{HexBytes, Policy};
use sha2::{Digest, Sha384};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(["measure", "simulated"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn measure_simulated_works() {
    let dir = tempfile_dir();
    let agent = dir.join("sigil-agent");
    // More than one read buffer (64 KiB) of bytes that are not all alike.
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect();
    std::fs::write(&agent, &bytes).unwrap();
    let expected: [u8; 48] = Sha384::digest(&bytes).into();

    let (code, out) = run(&["--agent", agent.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["measurement"], hex::encode(expected));

    let (code, out) = run(&["--agent", agent.to_str().unwrap(), "--format", "policy"]);
    assert_eq!(code, 0, "{out}");
    let p = Policy::from_toml(&format!("allow_simulated = true\n{out}")).unwrap();
    assert_eq!(p.simulated.measurements, vec![HexBytes(expected.to_vec())]);

    let m = attestation_verifier::evidence::simulated::executable_measurement(&bytes[..]).unwrap();
    assert_eq!(m, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn measure_simulated_missing_file_rejects() {
    let (code, _) = run(&["--agent", "/nonexistent/sigil-agent"]);
    assert_eq!(code, 2);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sigil-measure-simulated-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
