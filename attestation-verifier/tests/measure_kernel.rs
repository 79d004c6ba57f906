//! The RTMR1 kernel event of `sigil-verify measure tdx --kernel` on a real, signed
//! distribution kernel: the Authenticode digest is computed over the same bytes its
//! Secure Boot signer hashed (the SHA-256 digest computed here equals the one inside the
//! kernel's own signature, made by the distribution's signing service), and the CLI
//! prints the SHA-384 over them.
//!
//! The kernel is Debian's cloud kernel (`linux-image-*-cloud-amd64`, whose `vmlinuz` is a
//! signed PE32+ image), at `SIGIL_TEST_KERNEL`; `scripts/test.sh` downloads and extracts
//! it. Without it the test says so and passes, unless `SIGIL_REQUIRE_REFERENCE_TOOLS` is
//! set (CI sets it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::process::Command;

use attestation_verifier::measure::tdx_boot::{kernel_digest, kernel_digest_sha256};

fn kernel() -> Option<Vec<u8>> {
    let path = std::env::var_os("SIGIL_TEST_KERNEL");
    let required = std::env::var_os("SIGIL_REQUIRE_REFERENCE_TOOLS").is_some_and(|v| !v.is_empty());
    match path.as_ref().map(std::fs::read) {
        Some(Ok(k)) => Some(k),
        other => {
            let msg = format!(
                "measure_kernel: no signed kernel at SIGIL_TEST_KERNEL ({other:?}); \
                 scripts/test.sh downloads Debian's"
            );
            assert!(!required, "{msg} (SIGIL_REQUIRE_REFERENCE_TOOLS is set)");
            eprintln!("{msg}: skipped");
            None
        }
    }
}

#[test]
fn kernel_authenticode_matches_its_signature_works() {
    let Some(k) = kernel() else { return };
    let pe = object::read::pe::PeFile64::parse(&*k).unwrap();
    let mut signed = Vec::new();
    for cert in authenticode::AttributeCertificateIterator::new(&pe)
        .unwrap()
        .expect("a signed kernel has a certificate table")
    {
        let sig = cert.unwrap().get_authenticode_signature().unwrap();
        signed.push(sig.digest().to_vec());
    }
    assert!(!signed.is_empty(), "the kernel carries a signature");
    let ours = kernel_digest_sha256(&k).unwrap();
    assert!(
        signed.iter().any(|d| d.as_slice() == ours.as_slice()),
        "computed {} not among the signed digests",
        hex::encode(ours)
    );

    // The CLI prints the SHA-384 over the same bytes as the RTMR1 event.
    let path = std::env::var_os("SIGIL_TEST_KERNEL").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(["measure", "tdx", "--tdvf"])
        .arg(tdvf())
        .arg("--kernel")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kernel_event = &v["boot_events"][0];
    assert_eq!(kernel_event["rtmr"], 1);
    assert_eq!(
        kernel_event["digest"].as_str().unwrap(),
        hex::encode(kernel_digest(&k).unwrap())
    );
}

/// Debian's OVMF (installed by `scripts/test.sh`), or a stand-in TDVF the measure tests
/// already use when it is missing.
fn tdvf() -> std::path::PathBuf {
    let debian = std::path::PathBuf::from("/usr/share/ovmf/OVMF.fd");
    if debian.exists() {
        return debian;
    }
    sigil_test_support::vectors::vectors_dir()
        .join("measured/tdx-mrtd/debian-bookworm-ovmf/OVMF.fd")
}
