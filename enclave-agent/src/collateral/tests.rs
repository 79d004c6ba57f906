//! Collateral providers against a local HTTP server (a real socket, the real
//! HTTP client) that serves the TDX vectors' raw PCS responses, NVIDIA RIMs from
//! the vectors, and OCSP responses signed by a test PKI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::bundle::GpuEvidence;
use attestation_verifier::crypto::DefaultCrypto;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::ocsp::{
    BasicResponse, CertStatusDer, ID_PKIX_OCSP_BASIC, OcspResponseDer, ResponderId, ResponseBytes,
    ResponseData, ResponseStatus, SingleResponse, parse_ocsp,
};
use attestation_verifier::verify::tdx::TdxCollateral;
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer as _;

use super::gpu::{GpuCollateralProvider, OcspRequest};
use super::tdx::TdxCollateralProvider;
use super::*;
use crate::evidence::tests::vectors;
use sigil_test_support::nvgpu::{ChainSpec, DevicePki, key};

// ---- a local HTTP/1.1 server ----

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct SeenRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) body: Vec<u8>,
}

type Handler = dyn Fn(&SeenRequest) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// Serves `handler` on 127.0.0.1 (one thread, one request per connection).
pub(crate) struct FakeServer {
    pub(crate) url: String,
    pub(crate) seen: Arc<Mutex<Vec<SeenRequest>>>,
    /// When non-zero, every request is answered with this status instead.
    pub(crate) fail_with: Arc<AtomicU16>,
}

impl FakeServer {
    pub(crate) fn start(handler: Box<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail_with = Arc::new(AtomicU16::new(0));
        let (s, f) = (Arc::clone(&seen), Arc::clone(&fail_with));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let req = SeenRequest {
                    method,
                    target,
                    body,
                };
                s.lock().unwrap().push(req.clone());
                let (status, headers, body) = match f.load(Ordering::Relaxed) {
                    0 => handler(&req),
                    code => (code, vec![], b"unavailable".to_vec()),
                };
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Self {
            url,
            seen,
            fail_with,
        }
    }

    pub(crate) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

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

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// ---- TDX ----

pub(crate) const TDX: &str = "tdx/tdx-v4-dcap-qvl-sample";
/// The vector's verification time (inside its collateral's window).
pub(crate) const TDX_TIME: u64 = 1_750_415_547;

/// A PCCS serving `case`'s raw PCS responses under the v4 API.
pub(crate) fn fake_pccs(case: &str) -> FakeServer {
    let dir = vectors().join(case);
    FakeServer::start(Box::new(move |r| {
        let chain = |f: &str| percent_encode(&read(&dir.join(f)));
        let t = r.target.as_str();
        if t.starts_with("/sgx/certification/v4/pckcrl?ca=") {
            (
                200,
                vec![(
                    "SGX-PCK-CRL-Issuer-Chain".into(),
                    chain("pck_crl_issuer_chain.pem"),
                )],
                read(&dir.join("pck_crl.der")),
            )
        } else if t.starts_with("/tdx/certification/v4/tcb?fmspc=") {
            (
                200,
                vec![(
                    "TCB-Info-Issuer-Chain".into(),
                    chain("tcb_info_issuer_chain.pem"),
                )],
                read(&dir.join("tcb_info.json")),
            )
        } else if t == "/tdx/certification/v4/qe/identity" {
            (
                200,
                vec![(
                    "SGX-Enclave-Identity-Issuer-Chain".into(),
                    chain("qe_identity_issuer_chain.pem"),
                )],
                read(&dir.join("qe_identity.json")),
            )
        } else if t == "/sgx/certification/v4/rootcacrl" {
            (
                200,
                vec![],
                hex::encode(read(&dir.join("root_ca_crl.der"))).into_bytes(),
            )
        } else {
            (404, vec![], b"not found".to_vec())
        }
    }))
}

pub(crate) fn settings(cache: &Path, now: Arc<Mutex<u64>>) -> FetchSettings {
    FetchSettings {
        cache_dir: cache.to_path_buf(),
        timeout: Duration::from_secs(5),
        refresh_before_secs: 7 * 86_400,
        retry_secs: 300,
        clock: Arc::new(move || UnixTime(*now.lock().unwrap())),
    }
}

/// A TDX collateral provider fetching from the PCCS at `url` only, caching under `cache`, on
/// the test clock `now`.
fn pccs_provider(cache: &Path, now: &Arc<Mutex<u64>>, url: &str) -> TdxCollateralProvider {
    TdxCollateralProvider::new(settings(cache, Arc::clone(now)), Some(url), None)
}

fn quote() -> Vec<u8> {
    read(&vectors().join(TDX).join("quote.bin"))
}

fn expected_collateral() -> TdxCollateral {
    TdxCollateral::from_json(&read(&vectors().join(TDX).join("collateral.json"))).unwrap()
}

#[test]
fn tdx_collateral_fetched_cached_and_reused_works() {
    let pccs = fake_pccs(TDX);
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(TDX_TIME));
    let p = pccs_provider(cache.path(), &now, &pccs.url);
    let json = p.collateral_for(&quote()).unwrap();
    let c = TdxCollateral::from_json(&json).unwrap();
    assert_eq!(c.digest(), expected_collateral().digest());
    assert_eq!(pccs.requests(), 4);
    assert!(
        pccs.seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.target == "/tdx/certification/v4/tcb?fmspc=B0C06F000000"),
        "{:?}",
        pccs.seen.lock().unwrap()
    );
    // Memory, then the disk cache of a new provider: no request.
    assert_eq!(p.collateral_for(&quote()).unwrap(), json);
    let again = pccs_provider(cache.path(), &now, &pccs.url);
    assert_eq!(again.collateral_for(&quote()).unwrap(), json);
    assert_eq!(pccs.requests(), 4);
}

#[test]
fn tdx_collateral_refreshed_before_next_update_works() {
    let pccs = fake_pccs(TDX);
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(TDX_TIME));
    let p = pccs_provider(cache.path(), &now, &pccs.url);
    let json = p.collateral_for(&quote()).unwrap();
    let next = expected_collateral().next_update().unwrap().0;
    // Two days before nextUpdate (inside the 7-day margin): fetched again.
    *now.lock().unwrap() = next - 2 * 86_400;
    assert_eq!(p.collateral_for(&quote()).unwrap(), json);
    assert_eq!(pccs.requests(), 8);
    // The service had nothing newer: not asked again within retry_secs...
    *now.lock().unwrap() += 60;
    p.collateral_for(&quote()).unwrap();
    assert_eq!(pccs.requests(), 8);
    // ...but after it.
    *now.lock().unwrap() += 300;
    p.collateral_for(&quote()).unwrap();
    assert_eq!(pccs.requests(), 12);
    // The service fails: what is held and still valid is used.
    pccs.fail_with.store(503, Ordering::Relaxed);
    *now.lock().unwrap() += 600;
    assert_eq!(p.collateral_for(&quote()).unwrap(), json);
    // A new provider without memory falls back to the disk cache.
    let fresh = pccs_provider(cache.path(), &now, &pccs.url);
    assert_eq!(fresh.collateral_for(&quote()).unwrap(), json);
}

#[test]
fn tdx_collateral_stale_or_unreachable_rejects() {
    let pccs = fake_pccs(TDX);
    let cache = tempfile::tempdir().unwrap();
    let next = expected_collateral().next_update().unwrap().0;
    // After nextUpdate the service only has the expired collateral.
    let now = Arc::new(Mutex::new(next + 1));
    let p = pccs_provider(cache.path(), &now, &pccs.url);
    let e = p.collateral_for(&quote()).unwrap_err();
    assert!(matches!(e, CollateralError::Stale { .. }), "{e}");
    // An unreachable service and nothing cached.
    *now.lock().unwrap() = TDX_TIME;
    pccs.fail_with.store(500, Ordering::Relaxed);
    let empty = tempfile::tempdir().unwrap();
    let p = pccs_provider(empty.path(), &now, &pccs.url);
    let e = p.collateral_for(&quote()).unwrap_err();
    assert!(matches!(e, CollateralError::Fetch { .. }), "{e}");
    // A closed port within the timeout.
    let dead = pccs_provider(empty.path(), &now, "http://127.0.0.1:9");
    assert!(matches!(
        dead.collateral_for(&quote()).unwrap_err(),
        CollateralError::Fetch { .. }
    ));
}

#[test]
fn tdx_collateral_file_works() {
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(TDX_TIME));
    let file = vectors().join(TDX).join("collateral.json");
    let p = TdxCollateralProvider::new(settings(cache.path(), Arc::clone(&now)), None, Some(file));
    let json = p.collateral_for(&quote()).unwrap();
    assert_eq!(
        TdxCollateral::from_json(&json).unwrap().digest(),
        expected_collateral().digest()
    );
    // Expired.
    *now.lock().unwrap() = expected_collateral().next_update().unwrap().0 + 1;
    let p2 = TdxCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        Some(vectors().join(TDX).join("collateral.json")),
    );
    assert!(matches!(
        p2.collateral_for(&quote()).unwrap_err(),
        CollateralError::Stale { .. }
    ));
}

#[test]
fn tdx_collateral_for_other_platform_rejects() {
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(TDX_TIME));
    let other = vectors().join("tdx/invalid-tdx-v4-wrong-fmspc-collateral/collateral.json");
    let p = TdxCollateralProvider::new(settings(cache.path(), now), None, Some(other));
    let e = p.collateral_for(&quote()).unwrap_err();
    assert!(matches!(e, CollateralError::WrongPlatform { .. }), "{e}");
    // Not a quote at all.
    assert!(matches!(
        p.collateral_for(b"garbage").unwrap_err(),
        CollateralError::Invalid { .. }
    ));
}

// ---- NVIDIA GPUs ----

const GPU: &str = "nvgpu/hopper-nvtrust-sample";
/// The real driver RIM (its id is not the one the report names; the agent does
/// not judge applicability, the verifier does).
const DRIVER_RIM: &str = "nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml";
const VBIOS_RIM: &str = "nvgpu-extra/rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag";
/// 2025-06-01, inside the device chain's and the RIM signers' windows.
const GPU_TIME: u64 = 1_748_736_000;

fn real_gpu() -> GpuEvidence {
    GpuEvidence {
        report: read(&vectors().join(GPU).join("report.bin")),
        cert_chain_pem: String::from_utf8(read(&vectors().join(GPU).join("cert_chain.pem")))
            .unwrap(),
        nonce: [0; 32],
        uuid: "GPU-real".into(),
    }
}

/// The RIM ids the real report names.
fn real_ids() -> (String, String) {
    let r = attestation_verifier::evidence::nvgpu::parse_nvgpu_report(&real_gpu().report).unwrap();
    (r.driver_rim_id("GH100").unwrap(), r.vbios_rim_id().unwrap())
}

fn fake_rim_service() -> FakeServer {
    let (driver, vbios) = real_ids();
    FakeServer::start(Box::new(move |r| {
        let id = r.target.strip_prefix("/v1/rim/").unwrap_or_default();
        let file = if id == driver {
            DRIVER_RIM
        } else if id == vbios {
            VBIOS_RIM
        } else {
            return (404, vec![], b"{}".to_vec());
        };
        let xml = read(&vectors().join(file));
        let b64 = base64_encode(&xml);
        (
            200,
            vec![],
            format!("{{\"id\":\"{id}\",\"rim\":\"{b64}\"}}").into_bytes(),
        )
    }))
}

/// Standard base64 (test helper; the agent only decodes).
fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn rims_from_service_are_cached_works() {
    let svc = fake_rim_service();
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(GPU_TIME));
    let p = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        Some(&svc.url),
        None,
    );
    let c = p.collateral_for(&[real_gpu()]).unwrap();
    assert_eq!(c.rims.len(), 2);
    assert_eq!(c.rims[0], read(&vectors().join(DRIVER_RIM)));
    assert_eq!(c.rims[1], read(&vectors().join(VBIOS_RIM)));
    assert!(c.ocsp.is_empty());
    assert_eq!(svc.requests(), 2);
    // Two GPUs of one model need the same two RIMs; memory answers.
    let mut second = real_gpu();
    second.uuid = "GPU-second".into();
    assert_eq!(
        p.collateral_for(&[real_gpu(), second]).unwrap().rims.len(),
        2
    );
    assert_eq!(svc.requests(), 2);
    // A new provider reads the disk cache.
    let p2 = GpuCollateralProvider::new(settings(cache.path(), now), None, Some(&svc.url), None);
    assert_eq!(p2.collateral_for(&[real_gpu()]).unwrap(), c);
    assert_eq!(svc.requests(), 2);
}

#[test]
fn rims_from_directory_works() {
    let (driver, vbios) = real_ids();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(format!("{driver}.xml")),
        read(&vectors().join(DRIVER_RIM)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(format!("{vbios}.xml")),
        read(&vectors().join(VBIOS_RIM)),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(GPU_TIME));
    let p = GpuCollateralProvider::new(
        settings(cache.path(), now),
        Some(dir.path().to_path_buf()),
        None,
        None,
    );
    assert_eq!(p.collateral_for(&[real_gpu()]).unwrap().rims.len(), 2);
}

/// GPUs whose drivers and VBIOS differ (two real reports): each report's RIMs, once each.
#[test]
fn rims_of_gpus_of_different_versions_works() {
    const OTHER: &str = "nvgpu/hopper-trustee-coco-ci";
    let other = GpuEvidence {
        report: read(&vectors().join(OTHER).join("report.bin")),
        cert_chain_pem: String::from_utf8(read(&vectors().join(OTHER).join("cert_chain.pem")))
            .unwrap(),
        nonce: [0; 32],
        uuid: "GPU-other".into(),
    };
    let r = attestation_verifier::evidence::nvgpu::parse_nvgpu_report(&other.report).unwrap();
    let (driver, vbios) = real_ids();
    let ids = [
        driver,
        vbios,
        r.driver_rim_id("GH100").unwrap(),
        r.vbios_rim_id().unwrap(),
    ];
    assert_ne!(ids[0], ids[2], "the two reports name one driver");
    assert_ne!(ids[1], ids[3], "the two reports name one VBIOS");
    let dir = tempfile::tempdir().unwrap();
    // The content is any real RIM: the provider fetches by id and does not judge
    // applicability (the verifier does). Driver files and VBIOS files alternate.
    for (i, id) in ids.iter().enumerate() {
        let file = if i % 2 == 0 { DRIVER_RIM } else { VBIOS_RIM };
        std::fs::write(
            dir.path().join(format!("{id}.xml")),
            read(&vectors().join(file)),
        )
        .unwrap();
    }
    // A provider with a fresh cache, reading RIMs from the directory only.
    let provider = |cache: &tempfile::TempDir| {
        GpuCollateralProvider::new(
            settings(cache.path(), Arc::new(Mutex::new(GPU_TIME))),
            Some(dir.path().to_path_buf()),
            None,
            None,
        )
    };
    let cache = tempfile::tempdir().unwrap();
    let c = provider(&cache)
        .collateral_for(&[real_gpu(), other.clone(), real_gpu()])
        .unwrap();
    assert_eq!(c.rims.len(), 4);
    // Without the second GPU's RIMs the bundle cannot be made.
    std::fs::remove_file(dir.path().join(format!("{}.xml", ids[3]))).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let p = provider(&cache);
    assert!(p.collateral_for(&[real_gpu()]).is_ok());
    assert!(p.collateral_for(&[real_gpu(), other]).is_err());
}

#[test]
fn missing_rim_rejects() {
    let svc = FakeServer::start(Box::new(|_| (404, vec![], b"{}".to_vec())));
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(GPU_TIME));
    let p = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        Some(&svc.url),
        None,
    );
    assert!(matches!(
        p.collateral_for(&[real_gpu()]).unwrap_err(),
        CollateralError::Fetch { .. }
    ));
    let empty = tempfile::tempdir().unwrap();
    let p = GpuCollateralProvider::new(
        settings(cache.path(), now),
        Some(empty.path().to_path_buf()),
        None,
        None,
    );
    assert!(matches!(
        p.collateral_for(&[real_gpu()]).unwrap_err(),
        CollateralError::File { .. }
    ));
}

/// The test device PKI (root, intermediate, leaf) of a GPU.
fn test_chain() -> DevicePki {
    DevicePki::new(ChainSpec::default())
}

fn gtime(secs: u64) -> GeneralizedTime {
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).unwrap()
}

/// An OCSP responder for the test chain's intermediate: answers a request for
/// it with `good`, valid for two weeks from `this_update`, signed by `signer`.
fn fake_ocsp(chain: &DevicePki, this_update: u64, signer: p384::ecdsa::SigningKey) -> FakeServer {
    let inter = attestation_verifier::verify::x509::Cert::from_der("t", &chain.inter).unwrap();
    let root = attestation_verifier::verify::x509::Cert::from_der("t", &chain.root).unwrap();
    let expected = attestation_verifier::verify::ocsp::cert_id_sha384(
        &DefaultCrypto::default(),
        &inter,
        &root,
    )
    .unwrap();
    FakeServer::start(Box::new(move |r| {
        let Ok(req) = OcspRequest::from_der(&r.body) else {
            return (400, vec![], vec![]);
        };
        let [one] = req.tbs_request.request_list.as_slice() else {
            return (400, vec![], vec![]);
        };
        if r.method != "POST" || one.req_cert != expected {
            return (404, vec![], vec![]);
        }
        let data = ResponseData {
            version: 0,
            responder_id: ResponderId::ByKey(OctetString::new(vec![0u8; 20]).unwrap()),
            produced_at: gtime(this_update),
            responses: vec![SingleResponse {
                cert_id: one.req_cert.clone(),
                cert_status: CertStatusDer::Good(der::asn1::Null),
                this_update: gtime(this_update),
                next_update: Some(gtime(this_update + 14 * 86_400)),
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let sig: p384::ecdsa::Signature = signer.sign(&data.to_der().unwrap());
        let basic = BasicResponse {
            tbs_response_data: data,
            signature_algorithm: spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
                parameters: None,
            },
            signature: BitString::from_bytes(sig.to_der().as_bytes()).unwrap(),
            certs: None,
        };
        let body = OcspResponseDer {
            response_status: ResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ID_PKIX_OCSP_BASIC,
                response: OctetString::new(basic.to_der().unwrap()).unwrap(),
            }),
        }
        .to_der()
        .unwrap();
        (
            200,
            vec![("Content-Type".into(), "application/ocsp-response".into())],
            body,
        )
    }))
}

fn gpu_with(chain: &DevicePki) -> GpuEvidence {
    GpuEvidence {
        cert_chain_pem: chain.chain_pem(),
        ..real_gpu()
    }
}

#[test]
fn ocsp_fetched_verified_and_cached_works() {
    let chain = test_chain();
    let t0 = 1_900_000_000;
    let ocsp = fake_ocsp(&chain, t0, chain.root_key.sk.clone());
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(t0 + 60));
    let p = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        None,
        Some(&ocsp.url),
    );
    let c = p.collateral_for(&[gpu_with(&chain)]).unwrap();
    assert!(c.rims.is_empty());
    assert_eq!(c.ocsp.len(), 1, "one intermediate below the root");
    let r = parse_ocsp(&c.ocsp[0]).unwrap();
    let inter = attestation_verifier::verify::x509::Cert::from_der("t", &chain.inter).unwrap();
    let root = attestation_verifier::verify::x509::Cert::from_der("t", &chain.root).unwrap();
    assert!(r.covers(&DefaultCrypto::default(), &inter, &root));
    assert_eq!(ocsp.requests(), 1);
    let seen = ocsp.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "POST");
    // Reused from memory and from disk.
    assert_eq!(p.collateral_for(&[gpu_with(&chain)]).unwrap(), c);
    let p2 = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        None,
        Some(&ocsp.url),
    );
    assert_eq!(p2.collateral_for(&[gpu_with(&chain)]).unwrap(), c);
    assert_eq!(ocsp.requests(), 1);
    // Inside the refresh margin (six days before nextUpdate): asked again.
    *now.lock().unwrap() = t0 + 8 * 86_400;
    let p3 = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        None,
        Some(&ocsp.url),
    );
    p3.collateral_for(&[gpu_with(&chain)]).unwrap();
    assert_eq!(ocsp.requests(), 2);
    // Responder down: the cached response, still valid, is used.
    ocsp.fail_with.store(503, Ordering::Relaxed);
    *now.lock().unwrap() += 3600;
    let p4 = GpuCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        None,
        None,
        Some(&ocsp.url),
    );
    assert_eq!(
        p4.collateral_for(&[gpu_with(&chain)]).unwrap().ocsp.len(),
        1
    );
    // After nextUpdate and with the responder down: left out, not an error.
    *now.lock().unwrap() = t0 + 15 * 86_400;
    let p5 = GpuCollateralProvider::new(settings(cache.path(), now), None, None, Some(&ocsp.url));
    assert!(
        p5.collateral_for(&[gpu_with(&chain)])
            .unwrap()
            .ocsp
            .is_empty()
    );
}

#[test]
fn ocsp_response_that_does_not_verify_is_left_out_rejects() {
    let chain = test_chain();
    let t0 = 1_900_000_000;
    let stranger = key().sk;
    let ocsp = fake_ocsp(&chain, t0, stranger);
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(t0 + 60));
    let p = GpuCollateralProvider::new(settings(cache.path(), now), None, None, Some(&ocsp.url));
    let c = p.collateral_for(&[gpu_with(&chain)]).unwrap();
    assert!(c.ocsp.is_empty());
    assert_eq!(ocsp.requests(), 1);
    assert!(
        !cache.path().join("ocsp").exists()
            || std::fs::read_dir(cache.path().join("ocsp"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn config_builds_providers_works() {
    let mut cfg = crate::config::Config::default();
    assert!(tdx_from_config(&cfg.collateral, &cfg.state_dir).is_some());
    assert!(gpu_from_config(&cfg.collateral, &cfg.state_dir).is_some());
    cfg.collateral.pccs_url = String::new();
    cfg.collateral.rim_service_url = " ".into();
    cfg.collateral.ocsp_url = String::new();
    assert!(tdx_from_config(&cfg.collateral, &cfg.state_dir).is_none());
    assert!(gpu_from_config(&cfg.collateral, &cfg.state_dir).is_none());
    cfg.collateral.tdx_file = Some(PathBuf::from("/etc/sigil/tdx-collateral.json"));
    assert!(tdx_from_config(&cfg.collateral, &cfg.state_dir).is_some());
    let s = FetchSettings::from_config(&cfg.collateral, &cfg.state_dir);
    assert_eq!(s.cache_dir, cfg.state_dir.join("collateral"));
}

#[test]
fn collateral_config_keys_parse_works() {
    let cfg = crate::config::Config::from_toml(
        "[collateral]\npccs_url = \"https://pccs.internal:8081\"\ntdx_file = \"tdx.json\"\n\
         rim_dir = \"rims\"\nrim_service_url = \"\"\nocsp_url = \"\"\ntimeout_secs = 3\n\
         refresh_before_secs = 86400\nretry_secs = 60\ncache_dir = \"cache\"\n",
    )
    .unwrap();
    let c = &cfg.collateral;
    assert_eq!(c.pccs_url, "https://pccs.internal:8081");
    assert_eq!(c.tdx_file.as_deref(), Some(Path::new("tdx.json")));
    assert_eq!(
        (c.timeout_secs, c.refresh_before_secs, c.retry_secs),
        (3, 86_400, 60)
    );
    let s = FetchSettings::from_config(&cfg.collateral, &cfg.state_dir);
    assert_eq!(s.cache_dir, PathBuf::from("cache"));
    assert_eq!(s.timeout, Duration::from_secs(3));
    // RIMs from the directory only; no OCSP.
    assert!(gpu_from_config(&cfg.collateral, &cfg.state_dir).is_some());
    assert!(crate::config::Config::from_toml("[collateral]\nbogus = 1\n").is_err());
    assert!(crate::config::Config::from_toml("[collateral]\ntimeout_secs = 0\n").is_err());
}
