//! Every TDX case in `../shared/vectors/tdx`: the expected verdict, the expected
//! reason, the TCB status, and claims equal to the case's `[facts]`, through both
//! crypto backends; collateral from the bundle JSON and from the raw PCS files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::tdx::{TdxParseError, parse_tdx_quote};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{
    PcsResponses, TcbStatus, TdxCollateral, TdxVerifier, TdxVerifyError,
};
use attestation_verifier::{TdxClaims, check_tdx};
use common::Case;

fn collateral(c: &Case) -> TdxCollateral {
    TdxCollateral::from_json(&c.file("collateral.json")).unwrap()
}

fn collateral_from_pcs_files(c: &Case) -> TdxCollateral {
    TdxCollateral::from_pcs(&PcsResponses {
        pck_crl: &c.file("pck_crl.der"),
        pck_crl_issuer_chain: &c.file("pck_crl_issuer_chain.pem"),
        root_ca_crl: &c.file("root_ca_crl.der"),
        tcb_info: &c.file("tcb_info.json"),
        tcb_info_issuer_chain: &c.file("tcb_info_issuer_chain.pem"),
        qe_identity: &c.file("qe_identity.json"),
        qe_identity_issuer_chain: &c.file("qe_identity_issuer_chain.pem"),
    })
    .unwrap()
}

fn now(c: &Case) -> UnixTime {
    UnixTime(c.verification_time())
}

fn reason(c: &Case) -> String {
    c.expected("reason")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn outcome<C: Crypto>(
    crypto: C,
    c: &Case,
    policy: &Policy,
) -> attestation_verifier::Outcome<TdxClaims> {
    let mut v = TdxVerifier::new(crypto).unwrap();
    check_tdx(&mut v, &c.file("quote.bin"), &collateral(c), policy, now(c))
}

fn any_status_policy() -> Policy {
    let mut p = Policy::default();
    p.tdx.accepted_tcb_statuses = TcbStatus::ALL
        .into_iter()
        .filter(|s| *s != TcbStatus::Revoked)
        .map(|s| s.name().to_string())
        .collect();
    p
}

/// Keys of `[facts]` that the claims carry under the same name.
const CONTRACT_KEYS: &[&str] = &[
    "quote_version",
    "tee",
    "mrtd",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "mrconfigid",
    "mrowner",
    "mrseam",
    "report_data",
    "td_attributes",
    "fmspc",
];

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::json!(i),
        toml::Value::Boolean(b) => serde_json::json!(b),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        other => panic!("unexpected fact {other:?}"),
    }
}

/// Every fact the claims also name must be equal; returns the keys compared.
fn assert_claims_match_facts(c: &Case, claims: &TdxClaims) -> Vec<String> {
    let json = serde_json::to_value(claims).unwrap();
    let map = json.as_object().unwrap();
    let mut compared = Vec::new();
    for (k, fact) in c.facts().unwrap() {
        if let Some(claim) = map.get(k) {
            assert_eq!(claim, &toml_to_json(fact), "{}: claim {k}", c.name);
            compared.push(k.clone());
        }
    }
    compared
}

#[test]
fn every_vector_gives_its_verdict_status_and_claims_works() {
    let policy = Policy::default();
    let mut valid = 0;
    for c in common::cases("tdx") {
        let facts = c.facts().unwrap();
        let kind = c.toml.get("kind").and_then(|k| k.as_str()).unwrap();
        let aws = outcome(AwsLc, &c, &policy);
        let rust = outcome(RustCrypto, &c, &policy);
        assert_eq!(aws, rust, "{}: backends disagree", c.name);
        if kind == "sgx" {
            // A genuine SGX quote: a TDX verifier refuses it as not TDX.
            assert!(!aws.accepted(), "{}", c.name);
            assert!(aws.claims.is_none());
            let err = parse_tdx_quote(&c.file("quote.bin")).unwrap_err();
            assert!(
                matches!(err, TdxParseError::NotTdx { tee: "SGX", .. }),
                "{}: {err}",
                c.name
            );
            assert!(aws.reasons[0].contains("not a TDX quote"));
            continue;
        }
        let claims = aws
            .claims
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no claims", c.name));
        let compared = assert_claims_match_facts(&c, claims);
        for k in CONTRACT_KEYS {
            assert!(
                compared.iter().any(|x| x == k),
                "{}: fact {k} not compared",
                c.name
            );
        }
        if c.expected_valid() {
            valid += 1;
            let status = facts["tcb_status"].as_str().unwrap();
            // Genuine evidence: accepted by a policy that takes every status, and by the
            // strict default policy exactly when it is UpToDate.
            let lax = outcome(AwsLc, &c, &any_status_policy());
            assert!(lax.accepted(), "{}: {:?}", c.name, lax.reasons);
            assert_eq!(
                aws.accepted(),
                status == "UpToDate",
                "{}: {:?}",
                c.name,
                aws.reasons
            );
            assert_eq!(claims.tcb_status.as_deref(), Some(status), "{}", c.name);
            for k in [
                "tcb_status",
                "advisory_ids",
                "qe_tcb_status",
                "platform_tcb_status",
                "ppid",
            ] {
                assert!(
                    compared.iter().any(|x| x == k),
                    "{}: fact {k} not compared",
                    c.name
                );
            }
        } else {
            assert!(!aws.accepted(), "{}: accepted", c.name);
            assert!(claims.tcb_status.is_none() || !aws.reasons.is_empty());
        }
    }
    assert!(valid >= 2);
}

/// The typed reason each invalid vector must be refused for (verification errors
/// from the verifier; a debug TD by the default policy).
#[test]
fn invalid_vectors_reject_for_their_reason() {
    for c in common::cases("tdx") {
        if c.expected_valid() {
            continue;
        }
        let r = reason(&c);
        let q = parse_tdx_quote(&c.file("quote.bin")).unwrap();
        let mut v = TdxVerifier::new(AwsLc).unwrap();
        let result = v.verify(&q, &collateral(&c), now(&c));
        if r.contains("Debug mode") {
            let ev = result.unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let verdict = Policy::default().tdx.evaluate(&ev);
            let attestation_verifier::Verdict::Reject(vs) = verdict else {
                panic!("{}: debug TD accepted", c.name)
            };
            assert_eq!(vs.len(), 1, "{}: {vs:?}", c.name);
            assert_eq!(vs[0].rule, "tdx.allow_debug");
            continue;
        }
        let errs = result
            .err()
            .unwrap_or_else(|| panic!("{}: verified", c.name))
            .0;
        let want = |e: &TdxVerifyError| {
            if r.contains("expired") {
                matches!(e, TdxVerifyError::CollateralExpired { .. })
            } else if r.contains("No matching TCB level") {
                matches!(e, TdxVerifyError::TcbLevelNotFound { .. })
            } else if r.contains("ISV enclave report signature") {
                matches!(e, TdxVerifyError::QuoteSignature(_))
            } else if r.contains("Fmspc mismatch") {
                matches!(e, TdxVerifyError::FmspcMismatch { .. })
            } else {
                panic!("{}: no mapping for reason {r:?}", c.name)
            }
        };
        assert!(errs.iter().all(want), "{}: {errs:?} for {r:?}", c.name);
    }
}

#[test]
fn raw_pcs_files_equal_the_bundle_works() {
    for c in common::cases("tdx") {
        let a = collateral(&c);
        let b = collateral_from_pcs_files(&c);
        assert_eq!(a.digest(), b.digest(), "{}", c.name);
        assert_eq!(a.parts(), b.parts(), "{}", c.name);
        // And the bundle round-trips through its JSON form.
        let again = TdxCollateral::from_json(a.to_json().unwrap().as_bytes()).unwrap();
        assert_eq!(again.digest(), a.digest());
    }
}

#[test]
fn grace_period_extends_collateral_works() {
    let c = common::cases("tdx")
        .into_iter()
        .find(|c| c.name == "invalid-tdx-v4-expired-collateral")
        .unwrap();
    let q = c.file("quote.bin");
    // TCB Info, QE Identity and PCK CRL expired 2025-07-19, about 26.6 days before.
    let mut policy = Policy::default();
    policy.tdx.collateral_grace_seconds = 20 * 86_400;
    let mut v = TdxVerifier::new(AwsLc).unwrap();
    let short = check_tdx(&mut v, &q, &collateral(&c), &policy, now(&c));
    assert!(!short.accepted());
    assert_eq!(short.reasons.len(), 3, "{:?}", short.reasons);
    policy.tdx.collateral_grace_seconds = 30 * 86_400;
    let long = check_tdx(&mut v, &q, &collateral(&c), &policy, now(&c));
    assert!(long.accepted(), "{:?}", long.reasons);
    let claims = long.claims.unwrap();
    assert!(claims.collateral_in_grace);
    assert_eq!(claims.tcb_status.as_deref(), Some("UpToDate"));
    // Before its issue date the collateral is refused whatever the grace.
    let e = v
        .verify_with_grace(
            &parse_tdx_quote(&q).unwrap(),
            &collateral(&c),
            UnixTime(1_750_000_000),
            u64::MAX,
        )
        .unwrap_err();
    assert!(e.any(|e| matches!(e, TdxVerifyError::CollateralNotYetValid { .. })));
}

#[test]
fn caches_hold_verified_collateral_and_platforms_works() {
    let cases = common::cases("tdx");
    let good = cases
        .iter()
        .find(|c| c.name == "tdx-v4-dcap-qvl-sample")
        .unwrap();
    let tampered = cases
        .iter()
        .find(|c| c.name == "invalid-tdx-v4-tampered-report-data")
        .unwrap();
    let tappd = cases
        .iter()
        .find(|c| c.name == "invalid-tdx-v4-tappd-tcb-unmatched")
        .unwrap();
    let mut v = TdxVerifier::new(AwsLc).unwrap();
    let coll = collateral(good);
    let q = parse_tdx_quote(&good.file("quote.bin")).unwrap();
    let first = v.verify(&q, &coll, now(good)).unwrap();
    assert_eq!(v.cached(), (1, 1));
    let second = v.verify(&q, &coll, now(good)).unwrap();
    assert_eq!(first.tcb_status, second.tcb_status);
    assert_eq!(v.cached(), (1, 1));
    // Same platform, a body changed after signing: the cache does not excuse it.
    let t = parse_tdx_quote(&tampered.file("quote.bin")).unwrap();
    let e = v.verify(&t, &coll, now(good)).unwrap_err();
    assert!(
        matches!(&e.0[..], [TdxVerifyError::QuoteSignature(_)]),
        "{e}"
    );
    assert_eq!(v.cached(), (1, 1));
    // Another platform with the same collateral: one more endorsement entry.
    let other = parse_tdx_quote(&tappd.file("quote.bin")).unwrap();
    let e = v.verify(&other, &coll, now(good)).unwrap_err();
    assert!(
        matches!(&e.0[..], [TdxVerifyError::TcbLevelNotFound { .. }]),
        "{e}"
    );
    assert_eq!(v.cached(), (1, 2));
    // Cached collateral is still checked against the clock.
    let e = v.verify(&q, &coll, UnixTime(1_755_216_000)).unwrap_err();
    assert!(e.any(|e| matches!(e, TdxVerifyError::CollateralExpired { .. })));
    v.clear_cache();
    assert_eq!(v.cached(), (0, 0));
}

#[test]
fn status_names_round_trip_works() {
    for s in TcbStatus::ALL {
        assert_eq!(TcbStatus::from_name(s.name()), Some(s));
    }
}
