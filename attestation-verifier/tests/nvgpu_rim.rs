//! NVIDIA RIM parsing, XML-DSig verification and golden-value comparison on
//! the real RIMs in `../shared/vectors/nvgpu-extra` and on synthetic RIMs
//! signed by a test chain.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

mod common;

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::rim::parse_rim;
use attestation_verifier::roots::nvidia;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::rim::verify_rim;
use attestation_verifier::verify::x509::Cert;

fn extra(name: &str) -> Vec<u8> {
    std::fs::read(common::vectors_dir().join("nvgpu-extra").join(name)).unwrap()
}

/// 2024-06-01T00:00:00Z: inside every certificate window of the nvtrust samples.
const JUNE_2024: UnixTime = UnixTime(1_717_200_000);

#[test]
fn real_vbios_rim_signature_works() {
    let rim = parse_rim(&extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    let root = Cert::from_der("root", nvidia::RIM_ROOT_CA).unwrap();
    let v = verify_rim(&RustCrypto, &rim, &root, JUNE_2024).unwrap();
    assert_eq!(v.chain.len(), 3);
    assert_eq!(rim.colloquial_version, "96.00.5E.00.01");
}
