#![allow(clippy::indexing_slicing)] // tests

use super::*;

#[test]
fn every_kind_has_cases_with_a_verification_time_works() {
    for kind in ["snp", "tdx", "nvgpu"] {
        for case in cases(kind) {
            assert!(case.verification_time() > 1_600_000_000, "{}", case.name);
            assert_eq!(case.dir.file_name().unwrap().to_str(), Some(&*case.name));
        }
    }
}

#[test]
fn case_load_works() {
    let case = Case::load("snp", "milan-v3-oak-oc-release");
    assert!(case.expected_valid());
    assert_eq!(case.verification_time(), 1_739_568_114);
    assert_eq!(case.facts().unwrap()["product"].as_str(), Some("Milan"));
    assert!(case.has("report.bin"));
    assert_eq!(case.file("report.bin").len(), 1184);
    assert_eq!(vector("snp/milan-v3-oak-oc-release/report.bin").len(), 1184);
}

#[test]
fn invalid_case_is_not_valid_works() {
    assert!(!Case::load("nvgpu", "invalid-hopper-wrong-nonce").expected_valid());
}
