#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;
use std::vec;

const FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0, 0, 0];

#[test]
fn base_urls_are_normalised_works() {
    for u in [
        "https://pccs.example:8081",
        "https://pccs.example:8081/",
        "https://pccs.example:8081/sgx/certification/v4",
        "https://pccs.example:8081/tdx/certification/v4/",
        " https://pccs.example:8081// ",
    ] {
        assert_eq!(base_url(u), "https://pccs.example:8081", "{u}");
    }
    assert!(is_intel_pcs(
        "https://api.trustedservices.intel.com/sgx/certification/v4/"
    ));
    assert!(!is_intel_pcs("https://pccs.example"));
}

#[test]
fn intel_pcs_urls_work() {
    let u = collateral_urls(INTEL_PCS_URL, &FMSPC, PckCaKind::Platform);
    assert_eq!(
        u.pck_crl,
        "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
    );
    assert_eq!(
        u.tcb_info,
        "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=B0C06F000000"
    );
    assert_eq!(
        u.qe_identity,
        "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity"
    );
    assert_eq!(u.root_ca_crl, INTEL_ROOT_CA_CRL_URL);
}

#[test]
fn pccs_urls_work() {
    let u = collateral_urls("https://pccs.local:8081/", &FMSPC, PckCaKind::Processor);
    assert_eq!(
        u.pck_crl,
        "https://pccs.local:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
    );
    assert_eq!(
        u.root_ca_crl,
        "https://pccs.local:8081/sgx/certification/v4/rootcacrl"
    );
}

#[test]
fn percent_decoding_works() {
    assert_eq!(
        percent_decode("-----BEGIN%20CERTIFICATE-----%0AMIIC%2Bw%3D%3D%0A"),
        b"-----BEGIN CERTIFICATE-----\nMIIC+w==\n"
    );
    // Malformed escapes are kept as they are.
    assert_eq!(percent_decode("100%"), b"100%");
    assert_eq!(percent_decode("%zz%4"), b"%zz%4");
}

#[test]
fn crl_bodies_der_or_hex_work() {
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
    assert_eq!(der_or_hex("u", &der).unwrap(), der);
    assert_eq!(der_or_hex("u", b"3003020101\n").unwrap(), der);
    assert!(matches!(
        der_or_hex("u", b"nope"),
        Err(FetchError::Body { .. })
    ));
}

#[test]
fn cache_files_are_per_service_and_platform_works() {
    let dir = Path::new("/cache");
    let a = cache_file(dir, "https://pccs.a", &FMSPC, PckCaKind::Platform);
    let b = cache_file(dir, "https://pccs.b/", &FMSPC, PckCaKind::Platform);
    let c = cache_file(dir, "https://pccs.a/", &FMSPC, PckCaKind::Processor);
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_eq!(
        a,
        cache_file(
            dir,
            "https://pccs.a/sgx/certification/v4",
            &FMSPC,
            PckCaKind::Platform
        )
    );
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("tdx-b0c06f000000-platform-"), "{name}");
}

#[test]
fn headers_are_case_insensitive_works() {
    let r = HttpResponse {
        status: 200,
        headers: vec![("tcb-info-issuer-chain".into(), "x".into())],
        body: vec![],
    };
    assert_eq!(r.header("TCB-Info-Issuer-Chain"), Some("x"));
    assert_eq!(r.header("SGX-TCB-Info-Issuer-Chain"), None);
}
