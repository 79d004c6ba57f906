//! The AMD CRL source against a fake KDS (a local HTTP server, the real HTTP client)
//! serving CRLs a synthetic ARK signs, and the attestor putting the CRL into bundles
//! (or leaving it out when it cannot be had).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::TeeKind;
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::{SnpTrustStore, SnpVerifier};
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{ReceiptVerifier, check_bundle};
use rcgen::SerialNumber;
use sigil_test_support::pki::crl_with;
use sigil_test_support::snp::{AmdPki, Report, Vek, make_report, make_vek};

use super::*;
use crate::attestor::Attestor;
use crate::collateral::http::AgentHttp;
use crate::collateral::tests::{FakeServer, settings};
use crate::evidence::{EvidenceError, EvidenceSource};
use crate::keys::AgentKey;

/// 2030-01-01.
const NOW: u64 = 1_893_456_000;
const DAY: u64 = 86_400;

/// A synthetic Milan PKI and a fake KDS serving its ARK's CRLs (VCEK: issued 2029-12-31,
/// next update 2030-01-31; VLEK: the same, listing serial 9).
struct Kds {
    pki: AmdPki,
    server: FakeServer,
    vcek_crl: Vec<u8>,
}

fn kds() -> Kds {
    let pki = AmdPki::new("Milan");
    let vcek_crl = crl_with(&pki.ark, &[], (2029, 12, 31), (2030, 1, 31));
    let vlek_crl = crl_with(
        &pki.ark,
        &[SerialNumber::from(9u64)],
        (2029, 12, 31),
        (2030, 1, 31),
    );
    let (v, l) = (vcek_crl.clone(), vlek_crl);
    let server = FakeServer::start(Box::new(move |req| match req.target.as_str() {
        "/vcek/v1/Milan/crl" => (200, vec![], v.clone()),
        "/vlek/v1/Milan/crl" => (200, vec![], l.clone()),
        _ => (404, vec![], b"not found".to_vec()),
    }));
    Kds {
        pki,
        server,
        vcek_crl,
    }
}

impl Kds {
    fn provider(&self, cache: &std::path::Path, now: &Arc<Mutex<u64>>) -> KdsCrl {
        KdsCrl::new(
            Box::new(AgentHttp::new(std::time::Duration::from_secs(5))),
            &self.server.url,
            None,
            settings(cache, Arc::clone(now)),
            DAY,
        )
        .with_ark(Product::Milan, self.pki.ark.der())
    }
}

/// A Milan v3 report (VCEK- or VLEK-signed).
fn report(vlek: bool) -> SnpReport {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    parse_snp_report(&make_report(
        &Report {
            vlek,
            ..Report::default()
        },
        &key,
    ))
    .unwrap()
}

#[test]
fn snp_crl_fetched_cached_and_refreshed_works() {
    let k = kds();
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(NOW));
    let p = k.provider(dir.path(), &now);
    let r = report(false);
    assert_eq!(p.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 1);
    assert_eq!(
        k.server.seen.lock().unwrap()[0].target,
        "/vcek/v1/Milan/crl"
    );
    // Held in memory...
    assert_eq!(p.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 1);
    // ...and on disk, where a restarted agent finds it.
    let cached = dir.path().join("snp").join("crl-vcek-Milan.der");
    assert_eq!(std::fs::read(&cached).unwrap(), k.vcek_crl);
    let restarted = k.provider(dir.path(), &now);
    assert_eq!(restarted.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 1);
    // Two days on, the CRL (issued the day before NOW) is older than the one-day limit:
    // fetched again, once (KDS has no newer one; the next attempt waits retry_secs).
    *now.lock().unwrap() = NOW + 2 * DAY;
    assert_eq!(p.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 2);
    assert_eq!(p.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 2);
    // The KDS fails: the CRL held is still before its nextUpdate, so it is used.
    k.server.fail_with.store(503, Ordering::Relaxed);
    *now.lock().unwrap() = NOW + 3 * DAY;
    assert_eq!(p.crl(&r).unwrap(), k.vcek_crl);
    assert_eq!(k.server.requests(), 3);
}

#[test]
fn snp_crl_for_vlek_uses_vlek_path_works() {
    let k = kds();
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(NOW));
    let p = k.provider(dir.path(), &now);
    let crl = p.crl(&report(true)).unwrap();
    assert_ne!(crl, k.vcek_crl);
    assert_eq!(
        k.server.seen.lock().unwrap()[0].target,
        "/vlek/v1/Milan/crl"
    );
    assert!(dir.path().join("snp").join("crl-vlek-Milan.der").exists());
}

#[test]
fn snp_crl_past_next_update_or_unreachable_rejects() {
    let k = kds();
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(NOW));
    let p = k.provider(dir.path(), &now);
    let r = report(false);
    p.crl(&r).unwrap();
    // Past its nextUpdate with the KDS down: no CRL.
    k.server.fail_with.store(503, Ordering::Relaxed);
    *now.lock().unwrap() = NOW + 31 * DAY;
    assert!(matches!(p.crl(&r), Err(CollateralError::Fetch { .. })));
    // Within retry_secs the KDS is not asked again.
    let seen = k.server.requests();
    assert!(matches!(p.crl(&r), Err(CollateralError::Invalid { .. })));
    assert_eq!(k.server.requests(), seen);
    // KDS served what it serves now, but that expired too.
    k.server.fail_with.store(0, Ordering::Relaxed);
    *now.lock().unwrap() = NOW + 32 * DAY;
    assert!(matches!(p.crl(&r), Err(CollateralError::Stale { .. })));
}

#[test]
fn snp_crl_signed_by_another_key_rejects() {
    let k = kds();
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(NOW));
    // Trusts another ARK than the one that signed what KDS serves.
    let p = k
        .provider(dir.path(), &now)
        .with_ark(Product::Milan, AmdPki::new("Milan").ark.der());
    let e = p.crl(&report(false)).unwrap_err();
    assert!(matches!(e, CollateralError::Invalid { .. }), "{e}");
    assert!(!dir.path().join("snp").join("crl-vcek-Milan.der").exists());
    // A report that names no product (v2) and no configured product.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let v2 = parse_snp_report(&make_report(
        &Report {
            version: 2,
            cpuid: (0, 0),
            ..Report::default()
        },
        &key,
    ))
    .unwrap();
    assert!(matches!(
        p.crl(&v2),
        Err(CollateralError::NotFetchable { .. })
    ));
}

/// A CPU source producing synthetic SEV-SNP reports signed by a test VCEK.
struct FakeSnp {
    vek: Vec<u8>,
    key: rcgen::KeyPair,
}

impl EvidenceSource for FakeSnp {
    fn tee(&self) -> TeeKind {
        TeeKind::SevSnp
    }
    fn name(&self) -> &'static str {
        "test-snp"
    }
    fn collect(&self, rd: &[u8; 64]) -> Result<CpuEvidence, EvidenceError> {
        Ok(CpuEvidence::SevSnp {
            report: make_report(
                &Report {
                    report_data: *rd,
                    ..Report::default()
                },
                &self.key,
            ),
            vek: self.vek.clone(),
            intermediate: None,
            ark: None,
        })
    }
}

/// Fails every request (a KDS that cannot be reached).
struct NoCrl;

impl SnpCrlSource for NoCrl {
    fn crl(&self, _: &SnpReport) -> Result<Vec<u8>, CollateralError> {
        Err(CollateralError::Unconfigured("AMD CRL"))
    }
}

#[test]
fn attestor_bundles_crl_or_goes_on_without_works() {
    let k = kds();
    let (vek, key) = make_vek(&Vek::default(), &k.pki.ask);
    let source: Arc<dyn EvidenceSource> = Arc::new(FakeSnp { vek, key });
    let attestor = |crl: Arc<dyn SnpCrlSource>| {
        Attestor::new(
            AgentKey::from_seed(&[9; 32]),
            Some(Arc::clone(&source)),
            None,
            vec![],
        )
        .with_snp_crl(crl)
    };
    let mut trust = SnpTrustStore::empty();
    trust
        .add(
            Product::Milan,
            k.pki.ark.der(),
            k.pki.ask.der(),
            k.pki.asvk.der(),
        )
        .unwrap();
    let mut verifier = ReceiptVerifier::with_verifiers(
        SnpVerifier::with_trust_store(RustCrypto, trust),
        TdxVerifier::new(RustCrypto).unwrap(),
        NvGpuVerifier::new(RustCrypto).unwrap(),
    );
    let requiring = Policy::from_toml("[snp]\ncrl_max_age_secs = 172800\n").unwrap();
    let at = attestation_verifier::time::UnixTime(NOW);

    // With the KDS: the bundle carries its CRL and satisfies a policy requiring one.
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(NOW));
    let a = attestor(Arc::new(k.provider(dir.path(), &now)));
    let bundle = a.attest([3; 32]).unwrap();
    assert_eq!(bundle.snp_crl(), Some(k.vcek_crl.as_slice()));
    let o = check_bundle(
        &mut verifier,
        &bundle.to_bytes(),
        None,
        None,
        &requiring,
        at,
    );
    assert!(o.accepted(), "{:?}", o.reasons);

    // Without: the job still gets its evidence, which only such a policy refuses.
    let a = attestor(Arc::new(NoCrl));
    let bundle = a.attest([3; 32]).unwrap();
    assert_eq!(bundle.snp_crl(), None);
    let bytes = bundle.to_bytes();
    let o = check_bundle(&mut verifier, &bytes, None, None, &Policy::default(), at);
    assert!(o.accepted(), "{:?}", o.reasons);
    let o = check_bundle(&mut verifier, &bytes, None, None, &requiring, at);
    assert!(
        o.reasons.iter().any(|r| r.contains("snp.crl_max_age_secs")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn snp_crl_config_keys_works() {
    let cfg = crate::config::Config::from_toml(
        "[collateral]\nsnp_crl = true\nsnp_crl_max_age_secs = 3600\n",
    )
    .unwrap();
    assert_eq!(cfg.collateral.snp_crl_max_age_secs, 3600);
    assert!(crate::collateral::snp_crl_from_config(&cfg.collateral, &cfg.state_dir).is_some());
    let off = crate::config::Config::from_toml("[collateral]\nsnp_crl = false\n").unwrap();
    assert!(crate::collateral::snp_crl_from_config(&off.collateral, &off.state_dir).is_none());
    let no_kds = crate::config::Config::from_toml("[collateral]\namd_kds_url = \"\"\n").unwrap();
    assert!(
        crate::collateral::snp_crl_from_config(&no_kds.collateral, &no_kds.state_dir).is_none()
    );
    assert!(crate::config::Config::from_toml("[collateral]\nsnp_crl_max_age_secs = 0\n").is_err());
    // The default: on, one day.
    let d = crate::config::CollateralConfig::default();
    assert!(d.snp_crl);
    assert_eq!(d.snp_crl_max_age_secs, 86_400);
}
