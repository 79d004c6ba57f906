//! Collateral fetching and its file cache, against an in-process fake PCS / PCCS
//! that serves a vector's raw PCS responses (no network).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use attestation_verifier::crypto::AwsLc;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::pcs::{
    CollateralFetcher, FetchError, HttpGet, HttpResponse, INTEL_PCS_URL, INTEL_ROOT_CA_CRL_URL,
};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{
    PckCaKind, TdxCollateral, TdxVerifier, pck_fmspc_unverified,
};
use common::Case;

fn percent_encode(b: &[u8]) -> String {
    b.iter()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (*c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// Serves one case's files under Intel's URL layout; records every request.
struct FakePcs {
    base: String,
    case: Case,
    /// Serve the root CA CRL hex-encoded, as a PCCS does.
    hex_root_crl: bool,
    fail: Option<(&'static str, u16)>,
    drop_header: Option<&'static str>,
    requests: Mutex<Vec<String>>,
}

impl FakePcs {
    fn new(base: &str, case: Case) -> Self {
        Self {
            base: base.into(),
            case,
            hex_root_crl: false,
            fail: None,
            drop_header: None,
            requests: Mutex::new(Vec::new()),
        }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl HttpGet for &FakePcs {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        self.requests.lock().unwrap().push(url.into());
        if let Some((part, status)) = self.fail
            && url.contains(part)
        {
            return Ok(HttpResponse {
                status,
                ..HttpResponse::default()
            });
        }
        let c = &self.case;
        let with = |body: Vec<u8>, header: &str, file: &str| {
            let mut headers = vec![("Content-Type".into(), "application/octet-stream".into())];
            if self.drop_header != Some(file) {
                headers.push((header.into(), percent_encode(&c.file(file))));
            }
            HttpResponse {
                status: 200,
                headers,
                body,
            }
        };
        let b = &self.base;
        Ok(
            if url == format!("{b}/sgx/certification/v4/pckcrl?ca=platform&encoding=der") {
                with(
                    c.file("pck_crl.der"),
                    "SGX-PCK-CRL-Issuer-Chain",
                    "pck_crl_issuer_chain.pem",
                )
            } else if url.starts_with(&format!("{b}/tdx/certification/v4/tcb?fmspc=")) {
                with(
                    c.file("tcb_info.json"),
                    "TCB-Info-Issuer-Chain",
                    "tcb_info_issuer_chain.pem",
                )
            } else if url == format!("{b}/tdx/certification/v4/qe/identity") {
                with(
                    c.file("qe_identity.json"),
                    "SGX-Enclave-Identity-Issuer-Chain",
                    "qe_identity_issuer_chain.pem",
                )
            } else if url == INTEL_ROOT_CA_CRL_URL
                || url == format!("{b}/sgx/certification/v4/rootcacrl")
            {
                let der = c.file("root_ca_crl.der");
                HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: if self.hex_root_crl {
                        hex::encode(der).into_bytes()
                    } else {
                        der
                    },
                }
            } else {
                HttpResponse {
                    status: 404,
                    ..HttpResponse::default()
                }
            },
        )
    }
}

fn case() -> Case {
    common::cases("tdx")
        .into_iter()
        .find(|c| c.name == "tdx-v4-dcap-qvl-sample")
        .unwrap()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sigil-tdx-pcs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn fetch_from_pcs_and_verify_works() {
    let c = case();
    let now = UnixTime(c.verification_time());
    let q = parse_tdx_quote(&c.file("quote.bin")).unwrap();
    let (fmspc, ca) = pck_fmspc_unverified(&q).unwrap();
    assert_eq!(hex::encode(fmspc), "b0c06f000000");
    assert_eq!(ca, PckCaKind::Platform);
    let bundle = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
    let pcs = FakePcs::new(INTEL_PCS_URL, case());
    let fetched = CollateralFetcher::new(&pcs, INTEL_PCS_URL, None)
        .fetch(&fmspc, ca, now)
        .unwrap();
    assert_eq!(fetched.digest(), bundle.digest());
    assert_eq!(pcs.count(), 4);
    assert!(
        pcs.requests
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == INTEL_ROOT_CA_CRL_URL)
    );
    let mut v = TdxVerifier::new(AwsLc).unwrap();
    let ev = v.verify(&q, &fetched, now).unwrap();
    assert_eq!(ev.tcb_status.name(), "UpToDate");
}

#[test]
fn pccs_hex_root_crl_works() {
    let c = case();
    let mut pcs = FakePcs::new("https://pccs.test:8081", case());
    pcs.hex_root_crl = true;
    let q = parse_tdx_quote(&c.file("quote.bin")).unwrap();
    let (fmspc, ca) = pck_fmspc_unverified(&q).unwrap();
    let fetched =
        CollateralFetcher::new(&pcs, "https://pccs.test:8081/sgx/certification/v4/", None)
            .fetch(&fmspc, ca, UnixTime(c.verification_time()))
            .unwrap();
    let bundle = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
    assert_eq!(fetched.digest(), bundle.digest());
    assert!(
        pcs.requests
            .lock()
            .unwrap()
            .contains(&"https://pccs.test:8081/sgx/certification/v4/rootcacrl".to_string())
    );
}

#[test]
fn cache_is_reused_until_next_update_works() {
    let c = case();
    let now = UnixTime(c.verification_time());
    let q = parse_tdx_quote(&c.file("quote.bin")).unwrap();
    let (fmspc, ca) = pck_fmspc_unverified(&q).unwrap();
    let dir = temp_dir("reuse");
    let pcs = FakePcs::new(INTEL_PCS_URL, case());
    let f = CollateralFetcher::new(&pcs, INTEL_PCS_URL, Some(dir.clone()));
    assert!(f.cached(&fmspc, ca, now).is_none());
    let first = f.fetch(&fmspc, ca, now).unwrap();
    assert_eq!(pcs.count(), 4);
    // Served from the file while fresh.
    let second = f.fetch(&fmspc, ca, now).unwrap();
    assert_eq!(pcs.count(), 4);
    assert_eq!(first.digest(), second.digest());
    // A new fetcher (another process) finds the file too.
    let pcs2 = FakePcs::new(INTEL_PCS_URL, case());
    let f2 = CollateralFetcher::new(&pcs2, INTEL_PCS_URL, Some(dir.clone()));
    f2.fetch(&fmspc, ca, now).unwrap();
    assert_eq!(pcs2.count(), 0);
    // The earliest nextUpdate (the PCK CRL's, 2025-07-19T10:00:35Z) ends reuse.
    assert_eq!(
        first.next_update().unwrap().to_string(),
        "2025-07-19T10:00:35Z"
    );
    let stale = UnixTime(first.next_update().unwrap().as_secs() + 1);
    assert!(f2.cached(&fmspc, ca, stale).is_none());
    f2.fetch(&fmspc, ca, stale).unwrap();
    assert_eq!(pcs2.count(), 4);
    // Another service does not share the entry.
    let pcs3 = FakePcs::new("https://pccs.test", case());
    let f3 = CollateralFetcher::new(&pcs3, "https://pccs.test", Some(dir.clone()));
    assert!(f3.cached(&fmspc, ca, now).is_none());
    // A corrupt cache file is ignored and replaced.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"{not json").unwrap();
    assert!(f2.cached(&fmspc, ca, now).is_none());
    f2.fetch(&fmspc, ca, now).unwrap();
    assert!(f2.cached(&fmspc, ca, now).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn service_errors_are_typed_rejects() {
    let c = case();
    let now = UnixTime(c.verification_time());
    let fmspc = [0xb0, 0xc0, 0x6f, 0, 0, 0];
    let mut pcs = FakePcs::new(INTEL_PCS_URL, case());
    pcs.fail = Some(("/tcb?", 404));
    let e = CollateralFetcher::new(&pcs, INTEL_PCS_URL, None)
        .fetch(&fmspc, PckCaKind::Platform, now)
        .unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
    let mut pcs = FakePcs::new(INTEL_PCS_URL, case());
    pcs.drop_header = Some("qe_identity_issuer_chain.pem");
    let e = CollateralFetcher::new(&pcs, INTEL_PCS_URL, None)
        .fetch(&fmspc, PckCaKind::Platform, now)
        .unwrap_err();
    assert!(
        matches!(
            e,
            FetchError::MissingHeader {
                header: "SGX-Enclave-Identity-Issuer-Chain",
                ..
            }
        ),
        "{e}"
    );
    // The processor CA's CRL is not served by the fake: a 404, not a wrong CRL.
    let pcs = FakePcs::new(INTEL_PCS_URL, case());
    let e = CollateralFetcher::new(&pcs, INTEL_PCS_URL, None)
        .fetch(&fmspc, PckCaKind::Processor, now)
        .unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
}
