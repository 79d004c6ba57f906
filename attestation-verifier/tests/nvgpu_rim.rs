//! NVIDIA RIM parsing and XML-DSig verification on the real RIMs in
//! `../shared/vectors/nvgpu-extra` (NVIDIA's signatures over Canonical XML 1.1,
//! checked at fixed times inside their certificates' windows), NVIDIA's own
//! negative RIMs, the RIM ids of real reports, and the RIM service client
//! (URL building, response decoding, file cache) over a fake transport.
//! Synthetic RIMs (match/mismatch paths) are in `nvgpu_synthetic.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::cell::Cell;

use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::nvgpu::parse_nvgpu_report;
use attestation_verifier::evidence::rim::{Rim, RimParseError, parse_rim};
use attestation_verifier::evidence::xml::C14n;
use attestation_verifier::pcs::{FetchError, HttpGet, HttpResponse};
use attestation_verifier::rim_service::{
    NVIDIA_RIM_SERVICE_URL, RimFetcher, decode_service_response, rim_ids, rim_url, valid_rim_id,
};
use attestation_verifier::roots::nvidia;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::rim::{RimVerifyError, verify_rim};
use attestation_verifier::verify::x509::{Cert, X509Error};
use base64ct::Encoding;

fn extra(name: &str) -> Vec<u8> {
    std::fs::read(common::vectors_dir().join("nvgpu-extra").join(name)).unwrap()
}

fn root() -> Cert {
    Cert::from_der("root", nvidia::RIM_ROOT_CA).unwrap()
}

/// 2024-06-01T00:00:00Z: inside every certificate window of the nvtrust samples.
const JUNE_2024: UnixTime = UnixTime(1_717_200_000);
/// 2025-06-01T00:00:00Z: inside the windows of the attestation-SDK driver RIM.
const JUNE_2025: UnixTime = UnixTime(1_748_736_000);

fn nvtrust_rims() -> Vec<(String, Vec<u8>)> {
    let dir = common::vectors_dir().join("nvgpu-extra/rims-nvtrust");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 20);
    out
}

#[test]
fn every_nvtrust_rim_verifies_works() {
    for (name, bytes) in nvtrust_rims() {
        let rim = parse_rim(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rim.signature.signed_info_c14n, C14n::Inclusive11, "{name}");
        for crypto in [
            &RustCrypto as &dyn attestation_verifier::crypto::Crypto,
            &AwsLc,
        ] {
            let v = verify_rim(crypto, &rim, &root(), JUNE_2024)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(v.chain.len(), 3, "{name}");
        }
        assert_eq!(rim.measurements.len(), 64, "{name}");
        assert_eq!(rim.product.as_deref(), Some("GH100"), "{name}");
        // VBIOS RIMs are named after the version they describe.
        if !name.starts_with("Driver") {
            let version_in_name = name.split('_').nth(3).unwrap();
            assert_eq!(
                rim.colloquial_version.replace('.', ""),
                version_in_name,
                "{name}"
            );
        }
    }
}

#[test]
fn real_rim_contents_work() {
    let rim = parse_rim(&extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    assert_eq!(rim.colloquial_version, "96.00.5E.00.01");
    let m2 = rim.measurements.iter().find(|m| m.index == 2).unwrap();
    assert!(m2.active);
    assert_eq!(
        hex::encode(&m2.values[0]),
        "c23e539823255226ef4798b03be55ab38793f768ba4c71c853fd9b475729144df89b3139854cfcb299ddd2498381a50a"
    );
    assert!(rim.measurements.iter().any(|m| m.values.len() == 4));
    let driver = parse_rim(&extra("nvat/NV_GPU_DRIVER_GH100_550.144.03.xml")).unwrap();
    assert_eq!(driver.colloquial_version, "550.144.03");
    let m32 = driver.measurements.iter().find(|m| m.index == 32).unwrap();
    assert_eq!(m32.values.len(), 2);
    let v = verify_rim(&RustCrypto, &driver, &root(), JUNE_2025).unwrap();
    assert_eq!(v.signer, "HCC RIM L4 Signer");
}

#[test]
fn rim_outside_its_window_rejects() {
    let rim = parse_rim(&extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    // The L4 signer expired on 2025-06-22.
    let e = verify_rim(&RustCrypto, &rim, &root(), UnixTime(1_767_225_600)).unwrap_err();
    assert!(
        matches!(e, RimVerifyError::Certificate(X509Error::Expired { .. })),
        "{e}"
    );
}

#[test]
fn nvidia_negative_rims_reject() {
    let bad_sig = parse_rim(&extra("nvat/incorrect_signature_driver_rim.xml")).unwrap();
    let e = verify_rim(&RustCrypto, &bad_sig, &root(), JUNE_2025).unwrap_err();
    assert!(
        matches!(
            e,
            RimVerifyError::DigestMismatch | RimVerifyError::Signature(_)
        ),
        "{e}"
    );
    let bad_chain = parse_rim(&extra("nvat/incorrect_cert_chain_driver_rim.xml")).unwrap();
    let e = verify_rim(&RustCrypto, &bad_chain, &root(), JUNE_2025).unwrap_err();
    assert!(
        matches!(
            e,
            RimVerifyError::UntrustedChain { .. }
                | RimVerifyError::Certificate(_)
                | RimVerifyError::NotCa(_)
        ),
        "{e}"
    );
    // A genuine RIM does not verify under a root NVIDIA did not use.
    let pem = String::from_utf8(extra("nvat/incorrect_rim_root.crt")).unwrap();
    let wrong_root = attestation_verifier::evidence::nvgpu::split_pem_chain(&pem).unwrap();
    let wrong_root = Cert::from_der("wrong root", &wrong_root[0]).unwrap();
    let good = parse_rim(&extra("nvat/NV_GPU_DRIVER_GH100_550.144.03.xml")).unwrap();
    assert!(verify_rim(&RustCrypto, &good, &wrong_root, JUNE_2025).is_err());
}

#[test]
fn modified_real_rim_rejects() {
    let text =
        String::from_utf8(extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    let check = |t: String| {
        let rim: Rim = parse_rim(t.as_bytes()).unwrap();
        verify_rim(&RustCrypto, &rim, &root(), JUNE_2024).unwrap_err()
    };
    // A golden value changed.
    let e = check(text.replacen("c23e5398", "c23e5399", 1));
    assert_eq!(e, RimVerifyError::DigestMismatch);
    // An index switched off.
    let e = check(text.replacen(
        "index=\"2\" active=\"True\"",
        "index=\"2\" active=\"False\"",
        1,
    ));
    assert_eq!(e, RimVerifyError::DigestMismatch);
    // Whitespace outside the root and a comment inside are not signed content.
    let rim = parse_rim(
        format!(
            "<?xml version=\"1.0\"?>\n{}\n",
            text.replacen("<ns0:Payload", "<!-- c --><ns0:Payload", 1)
        )
        .as_bytes(),
    )
    .unwrap();
    assert!(verify_rim(&RustCrypto, &rim, &root(), JUNE_2024).is_ok());
    // CRLF line ends are normalised like any XML processor does.
    let rim = parse_rim(text.replace('\n', "\r\n").as_bytes()).unwrap();
    assert!(verify_rim(&RustCrypto, &rim, &root(), JUNE_2024).is_ok());
}

#[test]
fn malformed_rims_reject() {
    assert_eq!(parse_rim(b"\xff\xfe"), Err(RimParseError::NotUtf8));
    assert!(matches!(parse_rim(b"<a/>"), Err(RimParseError::NotSwid(_))));
    let text =
        String::from_utf8(extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag")).unwrap();
    // Two signatures.
    let sig_start = text.find("<ds:Signature").unwrap();
    let sig_end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let sig = &text[sig_start..sig_end];
    let doubled = text.replacen(sig, &format!("{sig}{sig}"), 1);
    assert_eq!(
        parse_rim(doubled.as_bytes()),
        Err(RimParseError::Repeated("ds:Signature"))
    );
    // An entity declaration.
    let dtd = format!("<!DOCTYPE x [<!ENTITY e \"y\">]>{text}");
    assert!(matches!(
        parse_rim(dtd.as_bytes()),
        Err(RimParseError::Xml(_))
    ));
    // An unsupported canonicalisation.
    let other = text.replace(
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://example.com/c14n",
    );
    assert!(matches!(
        parse_rim(other.as_bytes()),
        Err(RimParseError::Unsupported { .. })
    ));
}

#[test]
fn rim_ids_of_real_reports_work() {
    let case = common::cases("nvgpu")
        .into_iter()
        .find(|c| c.name == "hopper-nvtrust-sample")
        .unwrap();
    let r = parse_nvgpu_report(&case.file("report.bin")).unwrap();
    assert_eq!(
        rim_ids(&r, "GH100"),
        vec![
            "NV_GPU_DRIVER_GH100_550.90.07".to_string(),
            "NV_GPU_VBIOS_1010_0200_882_96009F0001".to_string()
        ]
    );
    let case = common::cases("nvgpu")
        .into_iter()
        .find(|c| c.name == "hopper-ppcie-hgx-gpu0")
        .unwrap();
    let r = parse_nvgpu_report(&case.file("report.bin")).unwrap();
    assert_eq!(
        r.vbios_rim_id().unwrap(),
        "NV_GPU_VBIOS_G520_0200_885_9600A50001"
    );
}

/// Serves one RIM as NVIDIA's service would, counting requests.
struct FakeService {
    id: String,
    xml: Vec<u8>,
    calls: Cell<usize>,
}

impl HttpGet for FakeService {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        self.calls.set(self.calls.get() + 1);
        if url != rim_url("https://rim.test", &self.id) {
            return Ok(HttpResponse {
                status: 404,
                ..Default::default()
            });
        }
        let body = format!(
            "{{\"id\":\"{}\",\"rim\":\"{}\",\"sha256\":\"\",\"rim_format\":\"SWID\"}}",
            self.id,
            base64ct::Base64::encode_string(&self.xml)
        );
        Ok(HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: body.into_bytes(),
        })
    }
}

#[test]
fn rim_service_urls_and_cache_work() {
    assert_eq!(
        rim_url(NVIDIA_RIM_SERVICE_URL, "NV_GPU_DRIVER_GH100_550.90.07"),
        "https://rim.attestation.nvidia.com/v1/rim/NV_GPU_DRIVER_GH100_550.90.07"
    );
    assert_eq!(
        rim_url("https://rim.test/", "X"),
        "https://rim.test/v1/rim/X"
    );
    assert!(valid_rim_id("NV_GPU_VBIOS_1010_0200_882_96009F0001"));
    for bad in ["", "../etc/passwd", "a/b", ".hidden", "a b", "x?y"] {
        assert!(!valid_rim_id(bad), "{bad}");
    }
    let id = "NV_GPU_DRIVER_GH100_550.144.03";
    let xml = extra("nvat/NV_GPU_DRIVER_GH100_550.144.03.xml");
    let dir = std::env::temp_dir().join(format!("sigil-rim-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let service = FakeService {
        id: id.into(),
        xml: xml.clone(),
        calls: Cell::new(0),
    };
    let fetcher = RimFetcher::new(&service, "https://rim.test", Some(&dir));
    assert_eq!(fetcher.fetch(id).unwrap(), xml);
    assert_eq!(fetcher.fetch(id).unwrap(), xml);
    assert_eq!(
        service.calls.get(),
        1,
        "second fetch must come from the cache"
    );
    assert!(fetcher.cache_path(id).unwrap().exists());
    // What was fetched verifies like the file.
    let rim = parse_rim(&fetcher.fetch(id).unwrap()).unwrap();
    assert!(verify_rim(&RustCrypto, &rim, &root(), JUNE_2025).is_ok());
    // Unknown ids: the service's error status is reported, nothing cached.
    let e = fetcher.fetch("NV_GPU_DRIVER_GH100_1.2.3").unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
    assert!(
        !fetcher
            .cache_path("NV_GPU_DRIVER_GH100_1.2.3")
            .unwrap()
            .exists()
    );
    // Ids that are not ids never reach the network.
    let before = service.calls.get();
    assert!(fetcher.fetch("../../x").is_err());
    assert_eq!(service.calls.get(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

impl HttpGet for &FakeService {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        (**self).get(url)
    }
}

#[test]
fn rim_service_responses_decode() {
    let ok = decode_service_response("u", "A", b"{\"id\":\"A\",\"rim\":\"PGEvPg==\"}").unwrap();
    assert_eq!(ok, b"<a/>");
    assert!(decode_service_response("u", "A", b"{\"id\":\"B\",\"rim\":\"PGEvPg==\"}").is_err());
    assert!(decode_service_response("u", "A", b"{\"id\":\"A\"}").is_err());
    assert!(decode_service_response("u", "A", b"{\"rim\":\"***\"}").is_err());
    assert!(decode_service_response("u", "A", b"<html>").is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Parsing and verifying a RIM with any one byte changed never panics and
    /// never verifies unless the change is outside the signed content.
    #[test]
    fn mutated_rim_never_panics(pos in 0usize..20_466, byte in proptest::num::u8::ANY) {
        let mut bytes = extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag");
        let p = pos % bytes.len();
        let before = bytes[p];
        // Whitespace between attributes is not content: swapping one whitespace
        // byte for another keeps the canonical form.
        let changed = before != byte && !(before.is_ascii_whitespace() && byte.is_ascii_whitespace());
        bytes[p] = byte;
        if let Ok(rim) = parse_rim(&bytes) {
            let ok = verify_rim(&RustCrypto, &rim, &root(), JUNE_2024).is_ok();
            // Changing a byte may keep the signature valid only where the change
            // is not signed content (e.g. whitespace inside base64 text).
            if ok && changed {
                let original = extra("rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag");
                let sig_start = String::from_utf8_lossy(&original).find("<ds:SignatureValue>").unwrap();
                proptest::prop_assert!(p >= sig_start, "change at {p} kept the signature valid");
            }
        }
    }
}
