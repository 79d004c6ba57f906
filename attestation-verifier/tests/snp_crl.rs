//! AMD CRLs carried by evidence bundles (version 3): the verifier checks them
//! (ARK signature, `thisUpdate <= now < nextUpdate`, neither the VCEK/VLEK nor
//! the ASK/ASVK listed) and the policy rule `[snp] crl_max_age_secs` requires a
//! recent one. Everything is synthetic: a test ARK/ASK/ASVK, a VCEK/VLEK with
//! AMD's extensions, reports it signs and CRLs the test ARK signs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::binding::report_data;
use attestation_verifier::bundle::{
    BUNDLE_VERSION, BUNDLE_VERSION_2, CpuCollateral, CpuEvidence, EvidenceBundle,
};
use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::snp::Product;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::{
    SnpCertificate, SnpTrustStore, SnpVerifier, SnpVerifyError,
};
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::verify::x509::{Cert, X509Error};
use attestation_verifier::{ReceiptVerifier, ReceiptVerifyError, check_bundle};
use parity_scale_codec::Encode;
use rcgen::SerialNumber;
use sigil_test_support::pki::crl_with;
use sigil_test_support::snp::{AmdPki, Report, Vek, make_report, make_vek};

/// 2030-01-01: inside every test certificate's validity.
const NOW: UnixTime = UnixTime(1_893_456_000);
/// The CRLs below are issued 2029-12-31 (one day before [`NOW`]) unless a test says otherwise.
const ISSUED: (i32, u8, u8) = (2029, 12, 31);
/// ... and next updated 2030-01-31.
const NEXT: (i32, u8, u8) = (2030, 1, 31);
/// The test VCEK's serial number ([`Vek::default`]).
const VCEK_SERIAL: u64 = 42;

const AGENT: [u8; 32] = [21; 32];
const NONCE: [u8; 32] = [5; 32];

struct Platform {
    pki: AmdPki,
    vlek: bool,
    vek: Vec<u8>,
    report: Vec<u8>,
}

/// A Milan platform with a VCEK (or VLEK) and a report binding [`AGENT`] and [`NONCE`].
fn platform(vlek: bool) -> Platform {
    let pki = AmdPki::new("Milan");
    let rd = report_data(&RustCrypto, &AGENT, &[0; 32], &NONCE);
    let (vek, key) = if vlek {
        let v = Vek {
            cn: "SEV-VLEK",
            hw_id: None,
            ..Vek::default()
        };
        make_vek(&v, &pki.asvk)
    } else {
        make_vek(&Vek::default(), &pki.ask)
    };
    let report = make_report(
        &Report {
            vlek,
            chip_id: if vlek {
                [0; 64]
            } else {
                sigil_test_support::snp::CHIP_ID
            },
            report_data: rd,
            ..Report::default()
        },
        &key,
    );
    Platform {
        pki,
        vlek,
        vek,
        report,
    }
}

impl Platform {
    fn verifier<C: attestation_verifier::crypto::Crypto + Clone>(
        &self,
        c: C,
    ) -> ReceiptVerifier<C> {
        let mut t = SnpTrustStore::empty();
        t.add(
            Product::Milan,
            self.pki.ark.der(),
            self.pki.ask.der(),
            self.pki.asvk.der(),
        )
        .unwrap();
        ReceiptVerifier::with_verifiers(
            SnpVerifier::with_trust_store(c.clone(), t),
            TdxVerifier::new(c.clone()).unwrap(),
            NvGpuVerifier::new(c).unwrap(),
        )
    }

    /// A version-3 bundle carrying `crl`.
    fn bundle(&self, crl: Option<Vec<u8>>) -> EvidenceBundle {
        EvidenceBundle::new(
            AGENT,
            NONCE,
            CpuEvidence::SevSnp {
                report: self.report.clone(),
                vek: self.vek.clone(),
                intermediate: None,
                ark: None,
            },
            vec![],
        )
        .with_cpu_collateral(CpuCollateral { snp_crl: crl })
    }

    /// A CRL of the test ARK issued `issued`, listing `serials`.
    fn crl(&self, serials: &[SerialNumber], issued: (i32, u8, u8)) -> Vec<u8> {
        crl_with(&self.pki.ark, serials, issued, NEXT)
    }

    /// The intermediate's serial (ASK, or ASVK for a VLEK).
    fn intermediate_serial(&self) -> SerialNumber {
        let der = if self.vlek {
            self.pki.asvk.der()
        } else {
            self.pki.ask.der()
        };
        SerialNumber::from_slice(Cert::from_der("ASK", der).unwrap().serial())
    }

    /// Verifies `bytes` with both crypto backends (they must agree) and appraises them
    /// under `policy`: `Err` with the verification failures, or `Ok` with the policy
    /// violations' rules.
    fn check(&self, bytes: &[u8], policy: &Policy) -> Result<Vec<String>, Vec<ReceiptVerifyError>> {
        let a = self
            .verifier(AwsLc)
            .verify_bundle(bytes, Some(&AGENT), Some(&NONCE), NOW)
            .map(drop)
            .map_err(|f| f.0);
        let r = self
            .verifier(RustCrypto)
            .verify_bundle(bytes, Some(&AGENT), Some(&NONCE), NOW)
            .map(drop)
            .map_err(|f| f.0);
        assert_eq!(a, r, "backends disagree");
        a?;
        let outcome = check_bundle(
            &mut self.verifier(AwsLc),
            bytes,
            Some(&AGENT),
            Some(&NONCE),
            policy,
            NOW,
        );
        assert!(outcome.claims.is_some());
        Ok(outcome.reasons)
    }
}

/// A policy requiring a CRL issued at most `secs` before the verification time.
fn requiring_crl(secs: u64) -> Policy {
    Policy::from_toml(&format!("[snp]\ncrl_max_age_secs = {secs}\n")).unwrap()
}

const DAY: u64 = 86_400;

fn only(errors: Vec<ReceiptVerifyError>) -> SnpVerifyError {
    match &errors[..] {
        [ReceiptVerifyError::Snp(e)] => e.clone(),
        _ => panic!("expected one SNP failure, got {errors:?}"),
    }
}

#[test]
fn fresh_crl_accepted_and_rule_satisfied_works() {
    for vlek in [false, true] {
        let p = platform(vlek);
        let crl = p.crl(&[SerialNumber::from(7u64)], ISSUED);
        let bytes = p.bundle(Some(crl)).to_bytes();
        assert_eq!(bytes[4], BUNDLE_VERSION);
        assert_eq!(
            p.check(&bytes, &Policy::default()).unwrap(),
            Vec::<String>::new()
        );
        // Issued one day before: a two-day limit is met, and so is exactly one day.
        assert_eq!(
            p.check(&bytes, &requiring_crl(2 * DAY)).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            p.check(&bytes, &requiring_crl(DAY)).unwrap(),
            Vec::<String>::new()
        );
    }
}

#[test]
fn crl_listing_the_vcek_rejects() {
    let p = platform(false);
    let crl = p.crl(&[SerialNumber::from(VCEK_SERIAL)], ISSUED);
    let e = only(
        p.check(&p.bundle(Some(crl)).to_bytes(), &Policy::default())
            .unwrap_err(),
    );
    assert_eq!(
        e,
        SnpVerifyError::Revoked {
            certificate: SnpCertificate::Vcek,
            serial: hex::encode([VCEK_SERIAL as u8]),
        }
    );
    assert!(e.to_string().contains("VCEK"), "{e}");
}

#[test]
fn crl_listing_the_vlek_or_asvk_rejects() {
    let p = platform(true);
    let crl = p.crl(&[SerialNumber::from(VCEK_SERIAL)], ISSUED);
    assert!(matches!(
        only(
            p.check(&p.bundle(Some(crl)).to_bytes(), &Policy::default())
                .unwrap_err()
        ),
        SnpVerifyError::Revoked {
            certificate: SnpCertificate::Vlek,
            ..
        }
    ));
    let crl = p.crl(&[p.intermediate_serial()], ISSUED);
    assert!(matches!(
        only(
            p.check(&p.bundle(Some(crl)).to_bytes(), &Policy::default())
                .unwrap_err()
        ),
        SnpVerifyError::Revoked {
            certificate: SnpCertificate::Asvk,
            ..
        }
    ));
}

#[test]
fn crl_listing_the_ask_rejects() {
    let p = platform(false);
    let crl = p.crl(&[p.intermediate_serial()], ISSUED);
    let e = only(
        p.check(&p.bundle(Some(crl)).to_bytes(), &Policy::default())
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            SnpVerifyError::Revoked {
                certificate: SnpCertificate::Ask,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn crl_signed_by_another_key_rejects() {
    let p = platform(false);
    // The ASK is not the CRL's issuer; another ARK of the same name is not the pinned one.
    for signer in [&p.pki.ask, &AmdPki::new("Milan").ark] {
        let forged = crl_with(signer, &[], ISSUED, NEXT);
        let e = only(
            p.check(&p.bundle(Some(forged)).to_bytes(), &Policy::default())
                .unwrap_err(),
        );
        assert!(
            matches!(
                e,
                SnpVerifyError::Certificate(X509Error::BadSignature { what: "CRL", .. })
            ),
            "{e:?}"
        );
    }
}

#[test]
fn crl_too_old_for_policy_rejects() {
    let p = platform(false);
    // Issued 2029-12-01, 31 days before the verification time; still valid.
    let crl = p.crl(&[], (2029, 12, 1));
    let bytes = p.bundle(Some(crl)).to_bytes();
    assert_eq!(
        p.check(&bytes, &Policy::default()).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        p.check(&bytes, &requiring_crl(31 * DAY)).unwrap(),
        Vec::<String>::new()
    );
    let reasons = p.check(&bytes, &requiring_crl(7 * DAY)).unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("snp.crl_max_age_secs"), "{reasons:?}");
    assert!(reasons[0].contains(&format!("{}", 31 * DAY)), "{reasons:?}");
}

#[test]
fn crl_past_next_update_rejects() {
    let p = platform(false);
    // nextUpdate 2029-12-31, the day before the verification time.
    let stale = crl_with(&p.pki.ark, &[], (2029, 12, 1), ISSUED);
    assert!(matches!(
        only(
            p.check(&p.bundle(Some(stale)).to_bytes(), &Policy::default())
                .unwrap_err()
        ),
        SnpVerifyError::CrlExpired { at: NOW, .. }
    ));
    // nextUpdate equal to the verification time is past too (it must be later).
    let edge = crl_with(&p.pki.ark, &[], (2029, 12, 1), (2030, 1, 1));
    assert!(matches!(
        only(
            p.check(&p.bundle(Some(edge)).to_bytes(), &Policy::default())
                .unwrap_err()
        ),
        SnpVerifyError::CrlExpired { .. }
    ));
    // Issued after the verification time.
    let early = crl_with(&p.pki.ark, &[], (2030, 1, 2), NEXT);
    assert!(matches!(
        only(
            p.check(&p.bundle(Some(early)).to_bytes(), &Policy::default())
                .unwrap_err()
        ),
        SnpVerifyError::CrlNotYetValid { at: NOW, .. }
    ));
}

#[test]
fn malformed_crl_rejects() {
    let p = platform(false);
    let e = only(
        p.check(
            &p.bundle(Some(vec![0x30, 0x03, 1, 2, 3])).to_bytes(),
            &Policy::default(),
        )
        .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            SnpVerifyError::Certificate(X509Error::Malformed { what: "CRL", .. })
        ),
        "{e:?}"
    );
}

#[test]
fn bundle_without_crl_under_crl_policy_rejects() {
    let p = platform(false);
    let bytes = p.bundle(None).to_bytes();
    assert_eq!(
        p.check(&bytes, &Policy::default()).unwrap(),
        Vec::<String>::new()
    );
    let reasons = p.check(&bytes, &requiring_crl(7 * DAY)).unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("snp.crl_max_age_secs"), "{reasons:?}");
    assert!(reasons[0].contains("no AMD CRL"), "{reasons:?}");
}

#[test]
fn version_2_bundle_still_verifies_works() {
    let p = platform(false);
    let b = p.bundle(None);
    // Version 2: the same fields without the CPU collateral.
    let mut v2 = b"SGEB\x02".to_vec();
    b.tee.encode_to(&mut v2);
    v2.extend(b.agent_key);
    v2.extend(b.nonce);
    b.cpu.encode_to(&mut v2);
    b.gpus.encode_to(&mut v2);
    b.gpu_collateral.encode_to(&mut v2);
    let decoded = EvidenceBundle::from_bytes(&v2).unwrap();
    assert_eq!(decoded.version, BUNDLE_VERSION_2);
    assert_eq!(decoded.snp_crl(), None);
    assert_eq!(
        p.check(&v2, &Policy::default()).unwrap(),
        Vec::<String>::new()
    );
    // It carries no CRL, so a policy requiring one refuses it.
    let reasons = p.check(&v2, &requiring_crl(7 * DAY)).unwrap();
    assert!(reasons[0].contains("snp.crl_max_age_secs"), "{reasons:?}");
}

#[test]
fn crl_presence_and_age_in_claims_works() {
    let p = platform(false);
    let crl = p.crl(&[SerialNumber::from(7u64)], ISSUED);
    let len = crl.len();
    let with = p.bundle(Some(crl)).to_bytes();
    let o = check_bundle(
        &mut p.verifier(AwsLc),
        &with,
        None,
        None,
        &Policy::default(),
        NOW,
    );
    assert!(o.accepted(), "{:?}", o.reasons);
    let c = o.claims.unwrap().snp_crl.unwrap();
    assert_eq!(c.bytes, len);
    assert_eq!(c.this_update.as_deref(), Some("2029-12-31T00:00:00Z"));
    assert_eq!(c.next_update.as_deref(), Some("2030-01-31T00:00:00Z"));
    assert_eq!(c.age_secs, Some(DAY));
    assert_eq!(c.revoked, Some(1));
    let without = p.bundle(None).to_bytes();
    let o = check_bundle(
        &mut p.verifier(AwsLc),
        &without,
        None,
        None,
        &Policy::default(),
        NOW,
    );
    assert_eq!(o.claims.unwrap().snp_crl, None);
}

#[test]
fn cli_bundle_shows_crl_works() {
    let p = platform(false);
    let crl = p.crl(&[], ISSUED);
    let dir = std::env::temp_dir().join(format!("sigil-snp-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bundle.scale");
    std::fs::write(&path, p.bundle(Some(crl)).to_bytes()).unwrap();
    // The CLI trusts AMD's pinned roots, which never signed this test chain: the bundle is
    // rejected, but its claims still show the CRL it carries and its age.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args([
            "bundle",
            "--bundle",
            path.to_str().unwrap(),
            "--at",
            "2030-01-01T00:00:00Z",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["claims"]["snp_crl"];
    assert_eq!(c["this_update"], "2029-12-31T00:00:00Z", "{v}");
    assert_eq!(c["age_secs"], DAY, "{v}");
    assert_eq!(v["claims"]["bundle_version"], 5, "{v}");
}
