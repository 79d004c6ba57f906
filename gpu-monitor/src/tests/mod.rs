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

/// The test-vector root.
pub(crate) use sigil_test_support::vectors_dir as vectors;

/// One NVIDIA case: (report, cert chain, nonce).
pub(crate) fn nvgpu_case(name: &str) -> (Vec<u8>, Vec<u8>, crate::Nonce) {
    let case = sigil_test_support::Case::load("nvgpu", name);
    let nonce = String::from_utf8(case.file("nonce.hex")).unwrap();
    (
        case.file("report.bin"),
        case.file("cert_chain.pem"),
        nonce.parse().unwrap(),
    )
}

/// Every case under `nvgpu/`, by name.
pub(crate) fn nvgpu_cases() -> Vec<String> {
    sigil_test_support::cases("nvgpu")
        .into_iter()
        .map(|c| c.name)
        .collect()
}
