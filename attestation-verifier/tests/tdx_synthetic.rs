//! Synthetic TDX evidence built by the test itself: its own root CA, PCK CA, PCK
//! certificate with SGX extensions, TCB signing certificate, CRLs, signed TCB Info
//! and QE Identity, and quotes signed by a test attestation key. One test per
//! rejection path, each asserting the typed reason; plus every TCB status.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::Failures;
use attestation_verifier::check_tdx;
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::tdx::{INTEL_QE_VENDOR_ID, TdxParseError, parse_tdx_quote};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{
    TcbStatus, TdxCollateral, TdxEvidence, TdxVerifier, TdxVerifyError,
};
use attestation_verifier::verify::x509::X509Error;
use p256::ecdsa::SigningKey;
use sigil_test_support::tdx::{
    FMSPC, IntelPki as Pki, Spec, assemble, pck_cert, pem, qe_report, sign, tdx_svn,
};

mod tdx_support;
use tdx_support::{Anchor, Fixture, fixture};

/// 2029-06-15: inside every test item's window (collateral 2029-06-01..2029-07-01).
const NOW: UnixTime = UnixTime(1_876_176_000);
/// 2029-07-10: after the collateral's nextUpdate, before the certificates expire.
const LATER: UnixTime = UnixTime(1_878_076_800);

// ---------------------------------------------------------------- PKI and evidence

fn verify_with<C: Crypto>(
    crypto: C,
    f: &Fixture,
    quote: &[u8],
    collateral: &TdxCollateral,
    at: UnixTime,
) -> Result<TdxEvidence, Failures<TdxVerifyError>> {
    let mut v = TdxVerifier::with_trust_anchor(crypto, f.pki.anchor());
    let q = parse_tdx_quote(quote).unwrap();
    v.verify(&q, collateral, at).map(|e| e.into_inner())
}

/// Verifies through both backends, which must agree.
fn verify(f: &Fixture) -> Result<TdxEvidence, Failures<TdxVerifyError>> {
    verify_at(f, &f.quote, &f.collateral, NOW)
}

fn verify_at(
    f: &Fixture,
    quote: &[u8],
    collateral: &TdxCollateral,
    at: UnixTime,
) -> Result<TdxEvidence, Failures<TdxVerifyError>> {
    let a = verify_with(AwsLc, f, quote, collateral, at);
    let r = verify_with(RustCrypto, f, quote, collateral, at);
    match (&a, &r) {
        (Ok(x), Ok(y)) => assert_eq!(x.tcb_status, y.tcb_status),
        (Err(x), Err(y)) => assert_eq!(x, y),
        _ => panic!("backends disagree: {a:?} / {r:?}"),
    }
    a
}

fn errors(r: Result<TdxEvidence, Failures<TdxVerifyError>>) -> Vec<TdxVerifyError> {
    match r {
        Ok(e) => panic!("verified with status {}", e.tcb_status),
        Err(f) => f.0,
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn synthetic_quote_vendor_is_intel_works() {
    assert_eq!(
        sigil_test_support::tdx::INTEL_QE_VENDOR_ID,
        INTEL_QE_VENDOR_ID
    );
}

#[test]
fn synthetic_quote_verifies_works() {
    let f = fixture(Spec::default());
    let ev = verify(&f).unwrap();
    assert_eq!(ev.tcb_status, TcbStatus::UpToDate);
    assert_eq!(ev.pck.fmspc, FMSPC);
    assert_eq!(ev.pck.pce_svn, 11);
    assert!(ev.advisory_ids.is_empty());
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    let out = check_tdx(&mut v, &f.quote, &f.collateral, &Policy::default(), NOW);
    assert!(out.accepted(), "{:?}", out.reasons);
    assert_eq!(out.claims.unwrap().fmspc.as_deref(), Some("00906ed50000"));
}

#[test]
fn pinned_intel_root_rejects_test_chain() {
    let f = fixture(Spec::default());
    let mut v = TdxVerifier::new(AwsLc).unwrap();
    let q = parse_tdx_quote(&f.quote).unwrap();
    let e = v.verify(&q, &f.collateral, NOW).unwrap_err().0;
    assert!(
        e.iter()
            .any(|e| matches!(e, TdxVerifyError::UntrustedRoot { .. })),
        "{e:?}"
    );
    assert!(!e.is_empty());
}

#[test]
fn quote_signature_wrong_rejects() {
    let f = fixture(Spec::default());
    // A byte of MRTD changed after signing.
    let mut q = f.quote.clone();
    q[48 + 136] ^= 1;
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::QuoteSignature(_)]),
        "{e:?}"
    );
}

#[test]
fn quote_signed_by_other_attestation_key_rejects() {
    let f = fixture(Spec::default());
    // The QE certified key A; the body is signed by key B but carries A.
    let mut q = f.quote.clone();
    let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let signed_len = 48 + 584;
    let sig = sign(&other, &q[..signed_len]);
    q[signed_len + 4..signed_len + 4 + 64].copy_from_slice(&sig);
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::QuoteSignature(_)]),
        "{e:?}"
    );
}

#[test]
fn qe_report_signature_wrong_rejects() {
    let f = fixture(Spec::default());
    let chain = format!(
        "{}{}{}",
        pem(&pck_cert(&f.spec, &f.pki.platform_ca).0),
        pem(f.pki.platform_ca.der()),
        pem(f.pki.root.der())
    );
    // The QE report is signed by the key of the first PCK certificate, the chain carries another.
    let q = assemble(&f.spec, &chain, &f.att_key, &f.pck_key, None);
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::QeReportSignature(_)]),
        "{e:?}"
    );
}

#[test]
fn qe_report_data_mismatch_rejects() {
    let f = fixture(Spec::default());
    let chain = String::from_utf8(parse_tdx_quote(&f.quote).unwrap().pck_chain_pem).unwrap();
    // A QE report (properly signed by the PCK key) that binds another attestation key.
    let report = qe_report(&f.spec, &[1; 64], &[0; 32]);
    let q = assemble(&f.spec, &chain, &f.att_key, &f.pck_key, Some(report));
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::QeReportDataMismatch]),
        "{e:?}"
    );
}

#[test]
fn tcb_info_signature_wrong_rejects() {
    let f = fixture(Spec::default());
    let mut parts = f.collateral.parts().clone();
    // Upgrade the platform's status after signing.
    let text = String::from_utf8(parts.tcb_info.clone()).unwrap();
    parts.tcb_info = text.replacen("OutOfDate", "UpToDate", 1).into_bytes();
    let e = errors(verify_at(&f, &f.quote, &TdxCollateral::new(parts), NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::TcbInfoSignature(_)]),
        "{e:?}"
    );
}

#[test]
fn qe_identity_signature_wrong_rejects() {
    let f = fixture(Spec::default());
    let mut parts = f.collateral.parts().clone();
    parts.qe_identity_signature = sign(&f.pck_key, &parts.qe_identity);
    let e = errors(verify_at(&f, &f.quote, &TdxCollateral::new(parts), NOW));
    assert!(
        matches!(&e[..], [TdxVerifyError::QeIdentitySignature(_)]),
        "{e:?}"
    );
}

#[test]
fn pck_not_signed_by_its_ca_rejects() {
    let f = fixture(Spec::default());
    // A PCK certificate from a look-alike "Intel SGX PCK Platform CA" under a rogue root.
    let rogue = Pki::new();
    let (pck, key) = pck_cert(&f.spec, &rogue.platform_ca);
    let chain = format!(
        "{}{}{}",
        pem(&pck),
        pem(f.pki.platform_ca.der()),
        pem(f.pki.root.der())
    );
    let q = assemble(&f.spec, &chain, &f.att_key, &key, None);
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::Certificate(X509Error::BadSignature {
                what: "PCK certificate",
                ..
            })]
        ),
        "{e:?}"
    );
    // And the rogue CA itself does not chain to the root.
    let chain = format!(
        "{}{}{}",
        pem(&pck),
        pem(rogue.platform_ca.der()),
        pem(f.pki.root.der())
    );
    let q = assemble(&f.spec, &chain, &f.att_key, &key, None);
    let e = errors(verify_at(&f, &q, &f.collateral, NOW));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::Certificate(X509Error::BadSignature {
                what: "PCK CA",
                ..
            })]
        ),
        "{e:?}"
    );
}

#[test]
fn revoked_pck_rejects() {
    let f = fixture(Spec {
        pck_revoked: true,
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::Certificate(X509Error::Revoked {
                what: "PCK certificate",
                ..
            })]
        ),
        "{e:?}"
    );
}

#[test]
fn revoked_pck_ca_rejects() {
    let f = fixture(Spec {
        pck_ca_revoked: true,
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        e.iter()
            .any(|e| matches!(e, TdxVerifyError::Certificate(X509Error::Revoked { .. }))),
        "{e:?}"
    );
}

#[test]
fn pck_crl_of_another_ca_rejects() {
    let f = fixture(Spec {
        crl_from_processor_ca: true,
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(&e[..], [TdxVerifyError::PckCrlIssuerMismatch { .. }]),
        "{e:?}"
    );
}

#[test]
fn expired_collateral_rejects() {
    let f = fixture(Spec::default());
    let e = errors(verify_at(&f, &f.quote, &f.collateral, LATER));
    let expired: Vec<&str> = e
        .iter()
        .map(|e| match e {
            TdxVerifyError::CollateralExpired { what, .. } => *what,
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        expired,
        ["TCB Info", "QE Identity", "root CA CRL", "PCK CRL"]
    );
    // Within a grace period of 10 days it is accepted, and says so.
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    let q = parse_tdx_quote(&f.quote).unwrap();
    let ev = v
        .verify_with_grace(&q, &f.collateral, LATER, 10 * 86_400)
        .unwrap();
    assert!(ev.collateral_in_grace);
    // Not before it was issued.
    let e = errors(verify_at(
        &f,
        &f.quote,
        &f.collateral,
        UnixTime(1_870_000_000),
    ));
    assert!(
        e.iter()
            .all(|e| matches!(e, TdxVerifyError::CollateralNotYetValid { .. })),
        "{e:?}"
    );
}

#[test]
fn fmspc_mismatch_rejects() {
    let f = fixture(Spec {
        tcb_fmspc: [0x00, 0x90, 0x6e, 0xd5, 0x00, 0x01],
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(&e[..], [TdxVerifyError::FmspcMismatch { pck, tcb_info }]
            if pck == "00906ed50000" && tcb_info == "00906ed50001"),
        "{e:?}"
    );
}

#[test]
fn qe_identity_mismatch_rejects() {
    let f = fixture(Spec {
        qe_identity_mrsigner: [0xcd; 32],
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::QeIdentityMismatch {
                field: "MRSIGNER",
                ..
            }]
        ),
        "{e:?}"
    );
    let f = fixture(Spec {
        qe_isvprodid: 1,
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::QeIdentityMismatch {
                field: "ISVPRODID",
                ..
            }]
        ),
        "{e:?}"
    );
    let f = fixture(Spec {
        qe_isvsvn: 1,
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::QeTcbTooLow {
                isvsvn: 1,
                minimum: Some(2)
            }]
        ),
        "{e:?}"
    );
}

#[test]
fn debug_td_rejects() {
    let f = fixture(Spec {
        td_attributes: (1 << 28) | 1,
        ..Spec::default()
    });
    // Genuine evidence: verification passes, the default policy refuses it.
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    let out = check_tdx(&mut v, &f.quote, &f.collateral, &Policy::default(), NOW);
    assert_eq!(
        out.reasons,
        ["policy tdx.allow_debug: TD_ATTRIBUTES.DEBUG is set"]
    );
    assert!(out.claims.unwrap().debug);
    let mut lax = Policy::default();
    lax.tdx.allow_debug = true;
    let out = check_tdx(&mut v, &f.quote, &f.collateral, &lax, NOW);
    assert!(out.accepted(), "{:?}", out.reasons);
}

#[test]
fn td_attribute_rules_reject() {
    let mut v;
    for (attrs, rule) in [
        (0u64, "tdx.require_sept_ve_disable"),
        ((1 << 28) | (1 << 29), "tdx.allow_migratable"),
        ((1 << 28) | (1 << 17), "tdx.allow_service_td"),
        ((1 << 28) | (1 << 40), "tdx.td_attributes"),
        ((1 << 28) | (1 << 4), "tdx.allow_debug"),
    ] {
        let f = fixture(Spec {
            td_attributes: attrs,
            ..Spec::default()
        });
        v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
        let out = check_tdx(&mut v, &f.quote, &f.collateral, &Policy::default(), NOW);
        assert_eq!(out.reasons.len(), 1, "{attrs:#x}: {:?}", out.reasons);
        assert!(
            out.reasons[0].starts_with(&format!("policy {rule}:")),
            "{:?}",
            out.reasons
        );
    }
}

#[test]
fn measurement_policy_rules_reject() {
    let f = fixture(Spec::default());
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    let p = Policy::from_toml(&format!(
        "[tdx]\nmrtds = [\"{}\"]\nreport_data = \"{}\"\nrtmr3 = \"{}\"\nmrseams = [\"{}\"]\nfmspcs = [\"00906ED50000\"]\n",
        hex::encode([0x7d; 48]),
        hex::encode([0x42; 64]),
        hex::encode([0; 48]),
        hex::encode([0x5e; 48]),
    ))
    .unwrap();
    let out = check_tdx(&mut v, &f.quote, &f.collateral, &p, NOW);
    assert!(out.accepted(), "{:?}", out.reasons);
    let p = Policy::from_toml(&format!(
        "[tdx]\nmrtds = [\"{}\"]\nrtmr0 = \"{}\"\nmrowner = \"{}\"\nfmspcs = [\"00606A000000\"]\n",
        hex::encode([0x7e; 48]),
        hex::encode([1; 48]),
        hex::encode([2; 48]),
    ))
    .unwrap();
    let out = check_tdx(&mut v, &f.quote, &f.collateral, &p, NOW);
    let rules: Vec<&str> = out
        .reasons
        .iter()
        .map(|r| r.split(':').next().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "policy tdx.mrtds",
            "policy tdx.rtmr0",
            "policy tdx.mrowner",
            "policy tdx.allow_fmspcs"
        ]
    );
    // Malformed policies are refused when loaded.
    assert!(Policy::from_toml("[tdx]\nmrtds = [\"00\"]\n").is_err());
    assert!(Policy::from_toml("[tdx]\naccepted_tcb_statuses = [\"Revoked\"]\n").is_err());
    assert!(Policy::from_toml("[tdx]\naccepted_tcb_statuses = [\"Fine\"]\n").is_err());
    assert!(Policy::from_toml("[tdx]\nunknown = 1\n").is_err());
}

#[test]
fn no_matching_tcb_level_rejects() {
    let f = fixture(Spec {
        cpusvn: [1; 16],
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(&e[..], [TdxVerifyError::TcbLevelNotFound { .. }]),
        "{e:?}"
    );
}

#[test]
fn tdx_module_identity_checks_reject() {
    // Module signer differs from the TCB Info's.
    let f = fixture(Spec {
        mr_signer_seam: [1; 48],
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::TdxModuleMismatch {
                field: "MRSIGNER_SEAM",
                ..
            }]
        ),
        "{e:?}"
    );
    // Module version with no identity.
    let f = fixture(Spec {
        tee_tcb_svn: tdx_svn(5, 2, 2),
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(&e[..], [TdxVerifyError::TdxModuleIdentityNotFound { id }] if id == "TDX_02"),
        "{e:?}"
    );
    // Module ISVSVN below every level of its identity.
    let f = fixture(Spec {
        tee_tcb_svn: tdx_svn(1, 1, 2),
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(
            &e[..],
            [TdxVerifyError::TdxModuleTcbTooLow { isvsvn: 1, .. }]
        ),
        "{e:?}"
    );
}

#[test]
fn wrong_collateral_signer_rejects() {
    let f = fixture(Spec {
        tcb_signer_cn: "Intel SGX PCK Platform CA",
        ..Spec::default()
    });
    let e = errors(verify(&f));
    assert!(
        matches!(&e[..], [TdxVerifyError::WrongCertificate { found, .. }] if found == "Intel SGX PCK Platform CA"),
        "{e:?}"
    );
}

#[test]
fn every_tcb_status_works() {
    use TcbStatus::*;
    for (status, advisories) in [
        (UpToDate, vec![]),
        (SWHardeningNeeded, vec!["INTEL-SA-00615"]),
        (ConfigurationNeeded, vec!["INTEL-SA-00828"]),
        (
            ConfigurationAndSWHardeningNeeded,
            vec!["INTEL-SA-00289", "INTEL-SA-00615"],
        ),
        (OutOfDate, vec!["INTEL-SA-00837"]),
        (OutOfDateConfigurationNeeded, vec!["INTEL-SA-00837"]),
    ] {
        let f = fixture(Spec {
            levels: vec![(3, 11, tdx_svn(0, 0, 2), status.name(), advisories.clone())],
            ..Spec::default()
        });
        let ev = verify(&f).unwrap();
        assert_eq!(ev.tcb_status, status);
        assert_eq!(ev.advisory_ids, advisories);
        // The strict default policy accepts only UpToDate; a policy may allow more.
        let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
        let out = check_tdx(&mut v, &f.quote, &f.collateral, &Policy::default(), NOW);
        assert_eq!(
            out.accepted(),
            status == UpToDate,
            "{status}: {:?}",
            out.reasons
        );
        let mut p = Policy::default();
        p.tdx.accepted_tcb_statuses = vec![status.name().into()];
        let out = check_tdx(&mut v, &f.quote, &f.collateral, &p, NOW);
        assert!(out.accepted(), "{status}: {:?}", out.reasons);
        assert_eq!(
            out.claims.unwrap().tcb_status.as_deref(),
            Some(status.name())
        );
        if let Some(first) = advisories.first() {
            p.tdx.rejected_advisory_ids = vec![(*first).into()];
            let out = check_tdx(&mut v, &f.quote, &f.collateral, &p, NOW);
            assert!(out.reasons[0].starts_with("policy tdx.rejected_advisory_ids"));
            p.tdx.rejected_advisory_ids.clear();
            p.tdx.accepted_advisory_ids = Some(vec![]);
            let out = check_tdx(&mut v, &f.quote, &f.collateral, &p, NOW);
            assert!(out.reasons[0].starts_with("policy tdx.accepted_advisory_ids"));
        }
    }
    // Revoked is refused by verification itself.
    let f = fixture(Spec {
        levels: vec![(3, 11, tdx_svn(0, 0, 2), "Revoked", vec![])],
        ..Spec::default()
    });
    assert!(matches!(
        &errors(verify(&f))[..],
        [TdxVerifyError::TcbRevoked]
    ));
}

#[test]
fn statuses_converge_with_qe_and_module_works() {
    use TcbStatus::*;
    // An out-of-date QE makes an up-to-date platform OutOfDate.
    let f = fixture(Spec {
        qe_isvsvn: 3,
        ..Spec::default()
    });
    let ev = verify(&f).unwrap();
    assert_eq!(
        (ev.tcb_status, ev.platform_tcb_status, ev.qe_tcb_status),
        (OutOfDate, UpToDate, OutOfDate)
    );
    // An out-of-date TDX module (ISVSVN 4 meets only the OutOfDate module level).
    let f = fixture(Spec {
        tee_tcb_svn: tdx_svn(4, 1, 2),
        ..Spec::default()
    });
    let ev = verify(&f).unwrap();
    assert_eq!(
        (ev.tcb_status, ev.platform_tcb_status),
        (OutOfDate, OutOfDate)
    );
    // ConfigurationNeeded platform with an out-of-date QE.
    let f = fixture(Spec {
        qe_isvsvn: 3,
        levels: vec![(3, 11, tdx_svn(0, 0, 2), "ConfigurationNeeded", vec![])],
        ..Spec::default()
    });
    assert_eq!(verify(&f).unwrap().tcb_status, OutOfDateConfigurationNeeded);
    // A lower platform TCB selects the lower level with its advisory.
    let f = fixture(Spec {
        cpusvn: [2; 16],
        pce_svn: 10,
        ..Spec::default()
    });
    let ev = verify(&f).unwrap();
    assert_eq!(ev.tcb_status, OutOfDate);
    assert_eq!(ev.advisory_ids, ["INTEL-SA-00837"]);
}

#[test]
fn tdx15_relaunch_advice_works() {
    use TcbStatus::*;
    // Launched on module ISVSVN 4 (out of date), now running 5 (up to date).
    let f = fixture(Spec {
        version: 5,
        tee_tcb_svn: tdx_svn(4, 1, 2),
        tee_tcb_svn2: tdx_svn(5, 1, 2),
        ..Spec::default()
    });
    let ev = verify(&f).unwrap();
    assert_eq!(ev.tcb_status, TDRelaunchAdvised);
    // Both up to date.
    let f = fixture(Spec {
        version: 5,
        ..Spec::default()
    });
    assert_eq!(verify(&f).unwrap().tcb_status, UpToDate);
    // The current TCB must match a level too.
    let f = fixture(Spec {
        version: 5,
        tee_tcb_svn2: tdx_svn(1, 1, 2),
        ..Spec::default()
    });
    assert!(matches!(
        &errors(verify(&f))[..],
        [TdxVerifyError::TdxModuleTcbTooLow { isvsvn: 1, .. }]
    ));
}

#[test]
fn warm_cache_still_checks_each_quote_works() {
    let f = fixture(Spec::default());
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    let q = parse_tdx_quote(&f.quote).unwrap();
    v.verify(&q, &f.collateral, NOW).unwrap();
    assert_eq!(v.cached(), (1, 1));
    // Another TD of the same platform: same endorsement, different body.
    let other = assemble(
        &Spec {
            td_attributes: (1 << 28) | (1 << 30),
            ..f.spec.clone()
        },
        &String::from_utf8(q.pck_chain_pem.clone()).unwrap(),
        &f.att_key,
        &f.pck_key,
        None,
    );
    let oq = parse_tdx_quote(&other).unwrap();
    v.verify(&oq, &f.collateral, NOW).unwrap();
    assert_eq!(v.cached(), (1, 1));
    let mut bad = other.clone();
    bad[48 + 520] ^= 0x80;
    let e = v
        .verify(&parse_tdx_quote(&bad).unwrap(), &f.collateral, NOW)
        .unwrap_err();
    assert!(matches!(&e.0[..], [TdxVerifyError::QuoteSignature(_)]));
}

#[test]
fn malformed_quotes_reject_without_panic() {
    let f = fixture(Spec::default());
    // Every truncation is a typed error.
    for n in 0..f.quote.len() {
        assert!(parse_tdx_quote(&f.quote[..n]).is_err(), "prefix {n}");
    }
    // An SGX header.
    let mut sgx = f.quote.clone();
    sgx[4] = 0;
    assert!(matches!(
        parse_tdx_quote(&sgx),
        Err(TdxParseError::NotTdx { tee: "SGX", .. })
    ));
    // Outer certification data of another type.
    let mut t = f.quote.clone();
    let cert_type_at = 48 + 584 + 4 + 128;
    t[cert_type_at] = 5;
    assert!(matches!(
        parse_tdx_quote(&t),
        Err(TdxParseError::CertificationDataType { found: 5, .. })
    ));
    // A signature-data length beyond the quote.
    let mut t = f.quote.clone();
    t[48 + 584 + 3] = 0x7f;
    assert!(matches!(
        parse_tdx_quote(&t),
        Err(TdxParseError::Length { .. })
    ));
    // Unsupported version and key type.
    let mut t = f.quote.clone();
    t[0] = 6;
    assert!(matches!(
        parse_tdx_quote(&t),
        Err(TdxParseError::UnsupportedVersion(6))
    ));
    let mut t = f.quote.clone();
    t[2] = 3;
    assert!(matches!(
        parse_tdx_quote(&t),
        Err(TdxParseError::UnsupportedAttestationKey(3))
    ));
    // Random bytes everywhere in the signature data never panic the verifier.
    let mut v = TdxVerifier::with_trust_anchor(AwsLc, f.pki.anchor());
    for i in (48 + 584..f.quote.len()).step_by(97) {
        let mut t = f.quote.clone();
        t[i] ^= 0xa5;
        if let Ok(q) = parse_tdx_quote(&t) {
            let _ = v.verify(&q, &f.collateral, NOW);
        }
    }
}
