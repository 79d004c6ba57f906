//! The KDS VCEK source against a local HTTP server serving the real SNP vectors'
//! certificates, with the real HTTP client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::evidence::snp::parse_snp_report;

use super::*;
use crate::collateral::http::AgentHttp;
use crate::collateral::tests::{FakeServer, settings};
use crate::evidence::backend::snp::SevGuestSource;
use crate::evidence::tests::FakeSevGuest;
use crate::evidence::{EvidenceError, EvidenceSource};

/// One SNP vector: report, endorsement key (DER), ASK and ARK (PEM), and its time.
struct Case {
    report: Vec<u8>,
    parsed: SnpReport,
    vek: Vec<u8>,
    chain_pem: String,
    time: u64,
}

fn case(name: &str) -> Case {
    let case = sigil_test_support::Case::load("snp", name);
    let read = |f: &str| case.file(f);
    let report = read("report.bin");
    let vek = if case.has("vcek.der") {
        read("vcek.der")
    } else {
        read("vlek.der")
    };
    let ask = if case.has("ask.pem") {
        read("ask.pem")
    } else {
        read("asvk.pem")
    };
    let chain_pem = format!(
        "{}{}",
        String::from_utf8(ask).unwrap(),
        String::from_utf8(read("ark.pem")).unwrap()
    );
    Case {
        parsed: parse_snp_report(&report).unwrap(),
        report,
        vek,
        chain_pem,
        time: case.verification_time(),
    }
}

/// A KDS serving `c`'s VCEK at `vcek_target` (path and query, exactly) and its chain.
fn kds(c: &Case, product: &str, vcek_target: &str) -> FakeServer {
    let (vek, chain) = (c.vek.clone(), c.chain_pem.clone().into_bytes());
    let (want, chain_target) = (
        vcek_target.to_string(),
        format!("/vcek/v1/{product}/cert_chain"),
    );
    FakeServer::start(Box::new(move |r| {
        if r.target == want {
            (200, vec![], vek.clone())
        } else if r.target == chain_target {
            (200, vec![], chain.clone())
        } else {
            (404, vec![], b"not found".to_vec())
        }
    }))
}

fn source(server: &FakeServer, cache: &Path, now: u64, product: Option<Product>) -> KdsVcek {
    let s = settings(cache, Arc::new(Mutex::new(now)));
    KdsVcek::new(
        Box::new(AgentHttp::new(s.timeout)),
        &format!("{}/", server.url),
        product,
        s,
    )
}

fn der(pem_text: &str, i: usize) -> Vec<u8> {
    split_pem_chain(pem_text).unwrap()[i].clone()
}

const TURIN: &str =
    "/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71";

#[test]
fn kds_vcek_works() {
    // Turin (8-byte hwID, FMC SPL first) and Milan v3 (64-byte chip id), URLs as AMD's
    // KDS specification spells them (SPLs from the vectors' case files).
    let milan = case("milan-v3-oak-oc-release");
    let milan_target = format!(
        "/vcek/v1/Milan/{}?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219",
        hex::encode(milan.parsed.chip_id)
    );
    for (name, product, target) in [
        ("turin-v5-oak-oc", "Turin", TURIN.to_string()),
        ("milan-v3-oak-oc-release", "Milan", milan_target),
    ] {
        let c = case(name);
        let server = kds(&c, product, &target);
        let dir = tempfile::tempdir().unwrap();
        let kds_src = source(&server, dir.path(), c.time, None);
        let certs = kds_src.certificates(&c.parsed).unwrap();
        assert_eq!(certs.vcek.as_deref(), Some(c.vek.as_slice()), "{name}");
        assert_eq!(certs.ask, Some(der(&c.chain_pem, 0)));
        assert_eq!(certs.ark, Some(der(&c.chain_pem, 1)));
        let seen: Vec<String> = server
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.target.clone())
            .collect();
        assert_eq!(seen, [target, format!("/vcek/v1/{product}/cert_chain")]);
        // Held in memory: no second request.
        assert_eq!(kds_src.certificates(&c.parsed).unwrap(), certs);
        assert_eq!(server.requests(), 2);
        // A restarted agent finds them on disk, even with the KDS down.
        server.fail_with.store(503, Ordering::Relaxed);
        let again = source(&server, dir.path(), c.time, None);
        assert_eq!(again.certificates(&c.parsed).unwrap(), certs);
        assert_eq!(server.requests(), 2);
    }
}

#[test]
fn kds_vcek_for_old_reports_needs_the_product() {
    // Report v2: no CPUID fields.
    let c = case("milan-v2-virtee-sev");
    let target = format!(
        "/vcek/v1/Milan/{}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115",
        hex::encode(c.parsed.chip_id)
    );
    let server = kds(&c, "Milan", &target);
    let dir = tempfile::tempdir().unwrap();
    let err = source(&server, dir.path(), c.time, None)
        .certificates_inner(&c.parsed)
        .unwrap_err();
    assert!(matches!(err, CollateralError::NotFetchable { .. }), "{err}");
    assert!(err.to_string().contains("snp_product"), "{err}");
    assert_eq!(server.requests(), 0);
    let certs = source(&server, dir.path(), c.time, Some(Product::Milan))
        .certificates(&c.parsed)
        .unwrap();
    assert_eq!(certs.vcek, Some(c.vek));
}

#[test]
fn kds_vcek_rejects() {
    let c = case("turin-v5-oak-oc");
    // Another chip's VCEK (the Genoa vector's) under the right URL: refused, not cached.
    let genoa = case("genoa-v5-oak-oc");
    let wrong = Case {
        vek: genoa.vek.clone(),
        ..case("turin-v5-oak-oc")
    };
    let server = kds(&wrong, "Turin", TURIN);
    let dir = tempfile::tempdir().unwrap();
    let err = source(&server, dir.path(), c.time, None)
        .certificates_inner(&c.parsed)
        .unwrap_err();
    assert!(
        matches!(&err, CollateralError::Invalid { reason, .. } if reason.contains("does not verify")),
        "{err}"
    );
    assert!(
        !dir.path().join("snp").exists()
            || std::fs::read_dir(dir.path().join("snp"))
                .unwrap()
                .next()
                .is_none()
    );

    // KDS answers 404: a typed fetch error, and no new request until retry_secs passed.
    let server = FakeServer::start(Box::new(|_| (404, vec![], b"no".to_vec())));
    let now = Arc::new(Mutex::new(c.time));
    let s = settings(dir.path(), Arc::clone(&now));
    let src = KdsVcek::new(Box::new(AgentHttp::new(s.timeout)), &server.url, None, s);
    let err = src.certificates_inner(&c.parsed).unwrap_err();
    assert!(
        matches!(
            &err,
            CollateralError::Fetch {
                source: FetchError::Status { status: 404, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.requests(), 1);
    let err = src.certificates_inner(&c.parsed).unwrap_err();
    assert!(err.to_string().contains("last fetch failed"), "{err}");
    assert_eq!(server.requests(), 1);
    *now.lock().unwrap() += 301;
    assert!(src.certificates_inner(&c.parsed).is_err());
    assert_eq!(server.requests(), 2);

    // Reports whose VCEK KDS cannot give: VLEK-signed, chip id masked.
    let vlek = case("milan-v3-vlek-trustee");
    let err = src.certificates_inner(&vlek.parsed).unwrap_err();
    assert!(err.to_string().contains("VLEK"), "{err}");
    let mut masked = c.parsed.clone();
    masked.chip_id = [0; 64];
    let err = src.certificates_inner(&masked).unwrap_err();
    assert!(err.to_string().contains("masks its chip id"), "{err}");
    assert_eq!(server.requests(), 2);
}

#[test]
fn kds_vcek_refetches_a_corrupt_cache() {
    let c = case("turin-v5-oak-oc");
    let server = kds(&c, "Turin", TURIN);
    let dir = tempfile::tempdir().unwrap();
    let src = source(&server, dir.path(), c.time, None);
    src.certificates(&c.parsed).unwrap();
    let path = src.cache_path(&c.parsed, Product::Turin);
    // The cached file now holds the Genoa chain: it does not verify and is replaced.
    let genoa = case("genoa-v5-oak-oc");
    std::fs::write(
        &path,
        pem_set(&SnpCertificates {
            vcek: Some(genoa.vek),
            ..Default::default()
        }),
    )
    .unwrap();
    let fresh = source(&server, dir.path(), c.time, None);
    assert_eq!(
        fresh.certificates(&c.parsed).unwrap().vcek,
        Some(c.vek.clone())
    );
    assert_eq!(server.requests(), 4);
    assert_eq!(
        VcekFile::new(path).certificates(&c.parsed).unwrap().vcek,
        Some(c.vek)
    );
}

/// A guest device whose host provisioned no certificates.
fn no_certs(c: &Case) -> FakeSevGuest {
    FakeSevGuest {
        report: c.report.clone(),
        certs: SnpCertificates::default(),
    }
}

#[test]
fn sev_guest_without_host_certificates_works() {
    let c = case("turin-v5-oak-oc");
    let server = kds(&c, "Turin", TURIN);
    let dir = tempfile::tempdir().unwrap();
    let bare = SevGuestSource::new(Box::new(no_certs(&c)), 0);
    assert!(matches!(
        bare.collect(&c.parsed.report_data),
        Err(EvidenceError::MissingEndorsementKey)
    ));
    let with_kds = SevGuestSource::new(Box::new(no_certs(&c)), 0)
        .with_vcek_source(Some(Arc::new(source(&server, dir.path(), c.time, None))));
    match with_kds.collect(&c.parsed.report_data).unwrap() {
        CpuEvidence::SevSnp {
            report,
            vek,
            intermediate,
            ark,
        } => {
            assert_eq!(report, c.report);
            assert_eq!(vek, c.vek);
            assert_eq!(intermediate, Some(der(&c.chain_pem, 0)));
            assert_eq!(ark, Some(der(&c.chain_pem, 1)));
        }
        other => panic!("{other:?}"),
    }
}
