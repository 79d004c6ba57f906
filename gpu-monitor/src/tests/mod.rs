//! Unit tests. Real NVIDIA evidence is read from `../shared/vectors` relative to the repository
//! root (override: `SIGIL_VECTORS`); GPU readings come from [`FakeProbe`](crate::FakeProbe).
// Tests panic on a failed expectation: that is how they report it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod evidence;
mod health;
mod meter;
mod metrics;
#[cfg(feature = "nvml")]
mod nvml;
mod probe;

use std::path::PathBuf;

/// The test-vector root.
pub(crate) fn vectors() -> PathBuf {
    let dir = std::env::var_os("SIGIL_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        PathBuf::from,
    );
    assert!(
        dir.join("nvgpu").is_dir(),
        "test vectors not found at {} (set SIGIL_VECTORS)",
        dir.display()
    );
    dir
}

/// One NVIDIA case: (report, cert chain, nonce).
pub(crate) fn nvgpu_case(name: &str) -> (Vec<u8>, Vec<u8>, crate::Nonce) {
    let dir = vectors().join("nvgpu").join(name);
    let report = std::fs::read(dir.join("report.bin")).unwrap();
    let chain = std::fs::read(dir.join("cert_chain.pem")).unwrap();
    let nonce = std::fs::read_to_string(dir.join("nonce.hex")).unwrap();
    (report, chain, nonce.parse().unwrap())
}

/// Every case directory under `nvgpu/`.
pub(crate) fn nvgpu_cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vectors().join("nvgpu"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
