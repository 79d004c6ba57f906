//! Synthetic NVIDIA GPU evidence from a test PKI: the accepting path and every
//! rejection path, each with its typed reason; OCSP (issuer-signed and
//! delegated, good / revoked / unknown / stale / unauthorised); synthetic RIMs
//! (match, mismatch, alternatives, wrong version/chip, tampering, untrusted
//! signer); and the `[gpu]` policy rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod nvgpu_support;

use attestation_verifier::check_gpu;
use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::nvgpu::parse_nvgpu_report;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier, NvGpuVerifyError};
use attestation_verifier::verify::ocsp::{CertStatus, CertStatusDer, OcspError, RevokedInfo};
use attestation_verifier::verify::rim::RimVerifyError;
use attestation_verifier::verify::x509::X509Error;
use nvgpu_support::*;

struct World {
    dev: DevicePki,
    rim: RimPki,
}

impl World {
    fn new(spec: ChainSpec) -> Self {
        Self {
            dev: DevicePki::new(spec),
            rim: RimPki::new(),
        }
    }

    fn verifier(&self) -> NvGpuVerifier<RustCrypto> {
        NvGpuVerifier::with_roots(RustCrypto, &self.dev.root, &self.rim.root).unwrap()
    }

    fn report(&self, spec: &ReportSpec) -> Vec<u8> {
        build_report(spec, &self.dev.leaf_key.sk)
    }

    fn rims(&self, spec: &ReportSpec) -> Vec<Vec<u8>> {
        self.rim.matching_rims(spec)
    }

    /// Verifies `report` with `chain`, `rims`, `ocsp` at `NOW`.
    fn verify(
        &self,
        report: &[u8],
        chain: &[Vec<u8>],
        rims: &[Vec<u8>],
        ocsp: &[Vec<u8>],
    ) -> Result<
        attestation_verifier::Verified<attestation_verifier::verify::nvgpu::NvGpuEvidence>,
        attestation_verifier::Failures<NvGpuVerifyError>,
    > {
        let r = parse_nvgpu_report(report).unwrap();
        self.verifier().verify(
            &r,
            &NvGpuCollateral {
                cert_chain: chain,
                rims,
                ocsp,
            },
            &NONCE,
            UnixTime(NOW),
        )
    }
}

fn expect_failure(
    r: Result<impl core::fmt::Debug, attestation_verifier::Failures<NvGpuVerifyError>>,
    pred: impl Fn(&NvGpuVerifyError) -> bool,
) {
    let f = r.expect_err("must fail");
    assert!(f.any(pred), "unexpected failures: {f:?}");
}

#[test]
fn synthetic_report_with_rims_works() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec::default();
    let report = w.report(&spec);
    let ev = w
        .verify(&report, &w.dev.chain(), &w.rims(&spec), &[])
        .unwrap();
    assert_eq!(ev.chip, "GH100");
    assert_eq!(ev.chain_length, 3);
    let c = ev.rim_comparison.as_ref().unwrap();
    assert!(c.matches(), "{c:?}");
    // 64 active indices, 35 skipped because NVDEC0 is disabled.
    assert_eq!(c.compared.len(), 63);
    assert_eq!(c.skipped, vec![35]);
    // The default (strict) policy accepts it, through both backends alike.
    for outcome in [
        check_gpu(
            &mut w.verifier(),
            &report,
            &NvGpuCollateral {
                cert_chain: &w.dev.chain(),
                rims: &w.rims(&spec),
                ocsp: &[],
            },
            &NONCE,
            &Policy::default(),
            UnixTime(NOW),
        ),
        check_gpu(
            &mut NvGpuVerifier::with_roots(AwsLc, &w.dev.root, &w.rim.root).unwrap(),
            &report,
            &NvGpuCollateral {
                cert_chain: &w.dev.chain(),
                rims: &w.rims(&spec),
                ocsp: &[],
            },
            &NONCE,
            &Policy::default(),
            UnixTime(NOW),
        ),
    ] {
        assert!(outcome.accepted(), "{:?}", outcome.reasons);
        let rim = outcome.claims.as_ref().unwrap().rim.as_ref().unwrap();
        assert!(rim.matched);
        assert_eq!(rim.driver.as_ref().unwrap().version, "550.90.07");
    }
    // Without the root at the end of the chain too.
    let short = vec![w.dev.leaf.clone(), w.dev.inter.clone()];
    assert!(w.verify(&report, &short, &[], &[]).is_ok());
}

#[test]
fn chain_is_cached_works() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec::default());
    let r = parse_nvgpu_report(&report).unwrap();
    let mut v = w.verifier();
    let chain = w.dev.chain();
    let c = NvGpuCollateral {
        cert_chain: &chain,
        ..Default::default()
    };
    for _ in 0..3 {
        v.verify(&r, &c, &NONCE, UnixTime(NOW)).unwrap();
    }
    assert_eq!(v.cached_chains(), 1);
    // A cached chain is still checked against the time of each call.
    let f = v
        .verify(&r, &c, &NONCE, UnixTime(2_300_000_000))
        .unwrap_err();
    assert!(f.any(|e| matches!(e, NvGpuVerifyError::Certificate(X509Error::Expired { .. }))));
}

#[test]
fn wrong_nonce_rejects() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec {
        nonce: [7; 32],
        ..Default::default()
    });
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::NonceMismatch { .. })
    });
}

#[test]
fn tampered_measurement_rejects() {
    let w = World::new(ChainSpec::default());
    let mut report = w.report(&ReportSpec::default());
    report[37 + 8 + 55 + 7] ^= 1; // inside measurement block 2
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::ReportSignature(_))
    });
}

#[test]
fn fwid_mismatch_rejects() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec {
        fwid: Some([0xEE; 48]),
        ..Default::default()
    });
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::FwidMismatch { .. })
    });
}

#[test]
fn missing_fwids_reject() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec {
        fwid: None,
        ..Default::default()
    });
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::MissingReportFwid)
    });
    let w = World::new(ChainSpec {
        fwid: None,
        ..Default::default()
    });
    let report = w.report(&ReportSpec::default());
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::MissingCertFwid(_))
    });
}

#[test]
fn broken_chains_reject() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec::default());
    // Intermediate missing.
    expect_failure(
        w.verify(&report, &[w.dev.leaf.clone(), w.dev.root.clone()], &[], &[]),
        |e| matches!(e, NvGpuVerifyError::UntrustedRoot { .. }),
    );
    // Root only.
    expect_failure(
        w.verify(&report, std::slice::from_ref(&w.dev.root), &[], &[]),
        |e| matches!(e, NvGpuVerifyError::ChainLength(0)),
    );
    // Another vendor's chain (a different root).
    let other = World::new(ChainSpec::default());
    let report_other = other.report(&ReportSpec::default());
    expect_failure(w.verify(&report_other, &other.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::UntrustedRoot { .. })
    });
    // Order swapped.
    expect_failure(
        w.verify(
            &report,
            &[w.dev.inter.clone(), w.dev.leaf.clone(), w.dev.root.clone()],
            &[],
            &[],
        ),
        |e| matches!(e, NvGpuVerifyError::BrokenChain { .. }),
    );
    // The pinned NVIDIA root does not accept the test chain.
    let r = parse_nvgpu_report(&report).unwrap();
    let f = NvGpuVerifier::new(RustCrypto)
        .unwrap()
        .verify(
            &r,
            &NvGpuCollateral {
                cert_chain: &w.dev.chain(),
                ..Default::default()
            },
            &NONCE,
            UnixTime(NOW),
        )
        .unwrap_err();
    assert!(
        f.any(|e| matches!(e, NvGpuVerifyError::UntrustedRoot { .. })),
        "{f}"
    );
}

#[test]
fn certificate_kinds_reject() {
    let w = World::new(ChainSpec {
        intermediate_is_ca: false,
        ..Default::default()
    });
    let report = w.report(&ReportSpec::default());
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::NotCa(_))
    });
    let w = World::new(ChainSpec {
        leaf_is_ca: true,
        ..Default::default()
    });
    let report = w.report(&ReportSpec::default());
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::LeafIsCa(_))
    });
    let w = World::new(ChainSpec {
        leaf_p256: true,
        ..Default::default()
    });
    let report = w.report(&ReportSpec::default());
    expect_failure(w.verify(&report, &w.dev.chain(), &[], &[]), |e| {
        matches!(e, NvGpuVerifyError::LeafKeyType)
    });
}

#[test]
fn not_yet_valid_rejects() {
    let w = World::new(ChainSpec::default());
    let r = parse_nvgpu_report(&w.report(&ReportSpec::default())).unwrap();
    let chain = w.dev.chain();
    let f = w
        .verifier()
        .verify(
            &r,
            &NvGpuCollateral {
                cert_chain: &chain,
                ..Default::default()
            },
            &NONCE,
            UnixTime(1_500_000_000),
        )
        .unwrap_err();
    assert!(f.any(|e| matches!(e, NvGpuVerifyError::Certificate(X509Error::Expired { .. }))));
}

#[test]
fn ocsp_statuses_work() {
    let w = World::new(ChainSpec::default());
    let report = w.report(&ReportSpec::default());
    let chain = w.dev.chain();
    let day = 86_400;
    // Good, signed by the issuer (the root signs for the intermediate).
    let good = ocsp_response(
        &w.dev.root_key.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - day,
        Some(NOW + day),
    );
    let ev = w
        .verify(&report, &chain, &[], std::slice::from_ref(&good))
        .unwrap();
    assert_eq!(ev.device_ocsp.len(), 1);
    assert_eq!(ev.device_ocsp[0].status, Some(CertStatus::Good));
    // Revoked.
    let revoked = ocsp_response(
        &w.dev.root_key.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Revoked(RevokedInfo {
            revocation_time: der::asn1::GeneralizedTime::from_unix_duration(
                core::time::Duration::from_secs(NOW - 2 * day),
            )
            .unwrap(),
            revocation_reason: None,
        }),
        NOW - day,
        Some(NOW + day),
    );
    expect_failure(w.verify(&report, &chain, &[], &[revoked]), |e| {
        matches!(e, NvGpuVerifyError::Revoked { .. })
    });
    // Unknown: verifies, recorded.
    let unknown = ocsp_response(
        &w.dev.root_key.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Unknown(der::asn1::Null),
        NOW - day,
        Some(NOW + day),
    );
    let ev = w.verify(&report, &chain, &[], &[unknown]).unwrap();
    assert_eq!(ev.device_ocsp[0].status, Some(CertStatus::Unknown));
    // Stale, and without nextUpdate.
    let stale = ocsp_response(
        &w.dev.root_key.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - 3 * day,
        Some(NOW - day),
    );
    expect_failure(w.verify(&report, &chain, &[], &[stale]), |e| {
        matches!(e, NvGpuVerifyError::Ocsp(OcspError::Stale { .. }))
    });
    let open = ocsp_response(
        &w.dev.root_key.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - day,
        None,
    );
    expect_failure(w.verify(&report, &chain, &[], &[open]), |e| {
        matches!(e, NvGpuVerifyError::Ocsp(OcspError::NoNextUpdate { .. }))
    });
    // Signed by a key the issuer never authorised.
    let rogue = key();
    let forged = ocsp_response(
        &rogue.sk,
        None,
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - day,
        Some(NOW + day),
    );
    expect_failure(w.verify(&report, &chain, &[], &[forged]), |e| {
        matches!(e, NvGpuVerifyError::Ocsp(OcspError::Unauthorised { .. }))
    });
    // A delegated responder with id-kp-OCSPSigning is accepted; without it, not.
    let (dk, dcert) = ocsp_delegate("Test Device Identity CA", &w.dev.root_key, true);
    let delegated = ocsp_response(
        &dk.sk,
        Some(&dcert),
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - day,
        Some(NOW + day),
    );
    let ev = w.verify(&report, &chain, &[], &[delegated]).unwrap();
    assert_eq!(ev.device_ocsp[0].status, Some(CertStatus::Good));
    let (nk, ncert) = ocsp_delegate("Test Device Identity CA", &w.dev.root_key, false);
    let no_eku = ocsp_response(
        &nk.sk,
        Some(&ncert),
        &w.dev.inter,
        &w.dev.root,
        CertStatusDer::Good(der::asn1::Null),
        NOW - day,
        Some(NOW + day),
    );
    expect_failure(w.verify(&report, &chain, &[], &[no_eku]), |e| {
        matches!(e, NvGpuVerifyError::Ocsp(OcspError::Unauthorised { .. }))
    });
    // Garbage is refused.
    expect_failure(
        w.verify(&report, &chain, &[], &[vec![0x30, 0x03, 0x0a, 0x01, 0x00]]),
        |e| matches!(e, NvGpuVerifyError::Ocsp(_)),
    );
}

#[test]
fn ocsp_required_policy_works() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec::default();
    let report = w.report(&spec);
    let chain = w.dev.chain();
    let rims = w.rims(&spec);
    let policy = Policy::from_toml("[gpu]\nocsp_required = true\n").unwrap();
    let run = |ocsp: &[Vec<u8>]| {
        check_gpu(
            &mut w.verifier(),
            &report,
            &NvGpuCollateral {
                cert_chain: &chain,
                rims: &rims,
                ocsp,
            },
            &NONCE,
            &policy,
            UnixTime(NOW),
        )
    };
    let out = run(&[]);
    assert!(!out.accepted());
    // Device intermediate + RIM signer: both missing.
    assert_eq!(
        out.reasons
            .iter()
            .filter(|r| r.contains("no OCSP response"))
            .count(),
        3,
        "{:?}",
        out.reasons
    );
    let day = 86_400;
    let good = |cert: &[u8], issuer: &[u8], k: &Key| {
        ocsp_response(
            &k.sk,
            None,
            cert,
            issuer,
            CertStatusDer::Good(der::asn1::Null),
            NOW - day,
            Some(NOW + day),
        )
    };
    let all = vec![
        good(&w.dev.inter, &w.dev.root, &w.dev.root_key),
        good(&w.rim.signer, &w.rim.root, &w.rim.root_key),
    ];
    let out = run(&all);
    assert!(out.accepted(), "{:?}", out.reasons);
    let claims = out.claims.unwrap();
    assert_eq!(claims.ocsp.unwrap()[0].status, "good");
}

#[test]
fn rim_mismatch_reports_indices() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec::default();
    let report = w.report(&spec);
    let mut golden = golden_for(&spec, 32..64);
    golden[40].2 = vec![[0xAB; 48]];
    // An alternative matches: index 41 lists a wrong value and the right one.
    golden[41].2 = vec![[0xCD; 48], spec.measurements[41]];
    let certs: [&[u8]; 1] = [&w.rim.signer];
    let driver = build_rim(spec.driver, "GH100", &golden, &w.rim.signer_key.sk, &certs);
    let vbios = w.rims(&spec).remove(0);
    let ev = w
        .verify(
            &report,
            &w.dev.chain(),
            &[vbios.clone(), driver.clone()],
            &[],
        )
        .unwrap();
    let c = ev.rim_comparison.as_ref().unwrap();
    assert_eq!(c.mismatched, vec![40]);
    let out = check_gpu(
        &mut w.verifier(),
        &report,
        &NvGpuCollateral {
            cert_chain: &w.dev.chain(),
            rims: &[vbios, driver],
            ocsp: &[],
        },
        &NONCE,
        &Policy::default(),
        UnixTime(NOW),
    );
    assert!(!out.accepted());
    assert!(out.reasons[0].contains("[40]"), "{:?}", out.reasons);
    assert_eq!(
        out.claims.unwrap().rim.unwrap().mismatched_indices,
        vec![40]
    );
}

#[test]
fn rim_conflicts_and_gaps_reject() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec::default();
    let report = w.report(&spec);
    let certs: [&[u8]; 1] = [&w.rim.signer];
    // Both RIMs claim index 31.
    let vbios = build_rim(
        "96.00.9f.00.01",
        "GH100",
        &golden_for(&spec, 0..32),
        &w.rim.signer_key.sk,
        &certs,
    );
    let driver = build_rim(
        spec.driver,
        "GH100",
        &golden_for(&spec, 31..64),
        &w.rim.signer_key.sk,
        &certs,
    );
    let ev = w
        .verify(&report, &w.dev.chain(), &[vbios.clone(), driver], &[])
        .unwrap();
    assert_eq!(ev.rim_comparison.as_ref().unwrap().conflicts, vec![31]);
    // Only one RIM: the policy wants both.
    let out = check_gpu(
        &mut w.verifier(),
        &report,
        &NvGpuCollateral {
            cert_chain: &w.dev.chain(),
            rims: &[vbios],
            ocsp: &[],
        },
        &NONCE,
        &Policy::default(),
        UnixTime(NOW),
    );
    assert_eq!(
        out.reasons,
        vec!["policy gpu.rim_match_required: no verified driver RIM was supplied".to_string()]
    );
}

#[test]
fn bad_rims_reject() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec::default();
    let report = w.report(&spec);
    let chain = w.dev.chain();
    let certs: [&[u8]; 1] = [&w.rim.signer];
    let golden = golden_for(&spec, 32..64);
    // For another driver version.
    let other = build_rim("535.86.09", "GH100", &golden, &w.rim.signer_key.sk, &certs);
    expect_failure(w.verify(&report, &chain, &[other], &[]), |e| {
        matches!(e, NvGpuVerifyError::RimNotApplicable { .. })
    });
    // For another chip.
    let chip = build_rim(spec.driver, "GB100", &golden, &w.rim.signer_key.sk, &certs);
    expect_failure(w.verify(&report, &chain, &[chip], &[]), |e| {
        matches!(e, NvGpuVerifyError::RimChip { .. })
    });
    // Two driver RIMs.
    let good = build_rim(spec.driver, "GH100", &golden, &w.rim.signer_key.sk, &certs);
    expect_failure(
        w.verify(&report, &chain, &[good.clone(), good.clone()], &[]),
        |e| matches!(e, NvGpuVerifyError::DuplicateRim("driver")),
    );
    // A golden value edited after signing.
    let text = String::from_utf8(good.clone()).unwrap();
    let needle = hex::encode(spec.measurements[40]);
    let edited = text
        .replacen(&needle, &hex::encode([0x99u8; 48]), 1)
        .into_bytes();
    expect_failure(w.verify(&report, &chain, &[edited], &[]), |e| {
        matches!(
            e,
            NvGpuVerifyError::Rim {
                source: RimVerifyError::DigestMismatch,
                ..
            }
        )
    });
    // SignedInfo edited (digest algorithm attribute order kept, value changed).
    let si_edited = text
        .replacen(
            "<ds:Reference URI=\"\">",
            "<ds:Reference URI=\"\" Id=\"x\">",
            1,
        )
        .into_bytes();
    expect_failure(w.verify(&report, &chain, &[si_edited], &[]), |e| {
        matches!(
            e,
            NvGpuVerifyError::Rim {
                source: RimVerifyError::Signature(_),
                ..
            }
        )
    });
    // Signed by a signer from another root.
    let stranger = RimPki::new();
    let scerts: [&[u8]; 1] = [&stranger.signer];
    let untrusted = build_rim(
        spec.driver,
        "GH100",
        &golden,
        &stranger.signer_key.sk,
        &scerts,
    );
    expect_failure(w.verify(&report, &chain, &[untrusted], &[]), |e| {
        matches!(
            e,
            NvGpuVerifyError::Rim {
                source: RimVerifyError::UntrustedChain { .. },
                ..
            }
        )
    });
    // Right certificate, wrong key.
    let wrong_key = build_rim(
        spec.driver,
        "GH100",
        &golden,
        &stranger.signer_key.sk,
        &certs,
    );
    expect_failure(w.verify(&report, &chain, &[wrong_key], &[]), |e| {
        matches!(
            e,
            NvGpuVerifyError::Rim {
                source: RimVerifyError::Signature(_),
                ..
            }
        )
    });
    // Not XML.
    expect_failure(
        w.verify(&report, &chain, &[b"not xml".to_vec()], &[]),
        |e| matches!(e, NvGpuVerifyError::RimParse { .. }),
    );
}

#[test]
fn gpu_policy_rules_work() {
    let w = World::new(ChainSpec::default());
    let spec = ReportSpec {
        feature_flag: Some(1),
        ..Default::default()
    };
    let report = w.report(&spec);
    let chain = w.dev.chain();
    let rims = w.rims(&spec);
    let run = |toml: &str| {
        check_gpu(
            &mut w.verifier(),
            &report,
            &NvGpuCollateral {
                cert_chain: &chain,
                rims: &rims,
                ocsp: &[],
            },
            &NONCE,
            &Policy::from_toml(toml).unwrap(),
            UnixTime(NOW),
        )
    };
    let ok = run(
        "[gpu]\nmin_driver_version = \"550.90.7\"\nallowed_vbios_versions = [\"96.00.9F.00.01\"]\n\
         allowed_modes = [\"mpt\"]\nallowed_archs = [\"Hopper\"]\n",
    );
    assert!(ok.accepted(), "{:?}", ok.reasons);
    assert_eq!(ok.claims.unwrap().mode, "mpt");
    let bad = run(
        "[gpu]\nmin_driver_version = \"550.127.05\"\nallowed_vbios_versions = [\"96.00.74.00.1a\"]\n\
         allowed_modes = [\"spt\", \"ppcie\"]\nallowed_archs = [\"Blackwell\"]\n",
    );
    let rules: Vec<&str> = bad
        .reasons
        .iter()
        .map(|r| r.split(':').next().unwrap())
        .collect();
    assert_eq!(
        rules,
        vec![
            "policy gpu.min_driver_version",
            "policy gpu.allowed_vbios_versions",
            "policy gpu.allowed_modes",
            "policy gpu.allowed_archs"
        ]
    );
    // Bad policy values are refused when loading.
    for toml in [
        "[gpu]\nmin_driver_version = \"five\"\n",
        "[gpu]\nallowed_modes = [\"cc-on\"]\n",
        "[gpu]\nallowed_archs = [\"Ampere\"]\n",
        "[gpu]\nunknown_key = 1\n",
    ] {
        assert!(Policy::from_toml(toml).is_err(), "{toml}");
    }
}

/// The same certificate with its ECDSA signature's `s` replaced by `n - s`:
/// still validly signed, different bytes.
fn malleate(cert_der: &[u8]) -> Vec<u8> {
    use der::asn1::{AnyRef, BitString};
    use der::{Decode, Encode};
    let outer = AnyRef::from_der(cert_der).unwrap();
    let mut r = der::SliceReader::new(outer.value()).unwrap();
    let tbs = AnyRef::decode(&mut r).unwrap();
    let alg = AnyRef::decode(&mut r).unwrap();
    let sig = BitString::decode(&mut r).unwrap();
    let s = p384::ecdsa::Signature::from_der(sig.raw_bytes()).unwrap();
    let flipped =
        p384::ecdsa::Signature::from_scalars(s.r().to_bytes(), (-*s.s()).to_bytes()).unwrap();
    let mut body = tbs.to_der().unwrap();
    body.extend(alg.to_der().unwrap());
    body.extend(
        BitString::from_bytes(flipped.to_der().as_bytes())
            .unwrap()
            .to_der()
            .unwrap(),
    );
    AnyRef::new(der::Tag::Sequence, &body)
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn bundle_with_one_device_twice_rejects() {
    use attestation_verifier::verify::nvgpu::GpuInput;
    let w = World::new(ChainSpec::default());
    let r = parse_nvgpu_report(&w.report(&ReportSpec::default())).unwrap();
    let chain = w.dev.chain();
    let twin_leaf = malleate(&w.dev.leaf);
    assert_ne!(twin_leaf, w.dev.leaf);
    let twin_chain = vec![twin_leaf, w.dev.inter.clone(), w.dev.root.clone()];
    let other = World {
        dev: DevicePki::new(ChainSpec::default()),
        rim: RimPki::new(),
    };
    let mut v = w.verifier();
    // Each copy is genuine on its own.
    for c in [&chain, &twin_chain] {
        let collateral = NvGpuCollateral {
            cert_chain: c,
            ..Default::default()
        };
        assert!(v.verify(&r, &collateral, &NONCE, UnixTime(NOW)).is_ok());
    }
    let gpus = [
        GpuInput {
            report: &r,
            cert_chain: &chain,
            nonce: NONCE,
        },
        GpuInput {
            report: &r,
            cert_chain: &twin_chain,
            nonce: NONCE,
        },
    ];
    let out = v.verify_bundle(&gpus, &[], &[], UnixTime(NOW));
    assert!(out[0].is_ok());
    let f = out[1].as_ref().unwrap_err();
    assert!(
        f.any(|e| matches!(
            e,
            NvGpuVerifyError::DuplicateDevice {
                first: 0,
                second: 1
            }
        )),
        "{f}"
    );
    // Two devices under the same root are fine (the second is not trusted here,
    // but it is not a duplicate).
    let r2 = parse_nvgpu_report(&other.report(&ReportSpec::default())).unwrap();
    let chain2 = other.dev.chain();
    let out = v.verify_bundle(
        &[
            gpus[0],
            GpuInput {
                report: &r2,
                cert_chain: &chain2,
                nonce: NONCE,
            },
        ],
        &[],
        &[],
        UnixTime(NOW),
    );
    assert!(out[0].is_ok());
    assert!(
        !out[1]
            .as_ref()
            .unwrap_err()
            .any(|e| matches!(e, NvGpuVerifyError::DuplicateDevice { .. }))
    );
}
