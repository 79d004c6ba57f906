#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests

use super::*;
use crate::crypto::RustCrypto;
use crate::evidence::rim::parse_rim;
use crate::roots::nvidia;
use alloc::vec::Vec;

fn extra(name: &str) -> Vec<u8> {
    sigil_test_support::vector(&alloc::format!("nvgpu-extra/{name}"))
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
