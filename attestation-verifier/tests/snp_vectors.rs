//! Every SEV-SNP case in the shared vectors: expected verdict, extracted claims equal
//! the case's `[facts]`, identical outcomes on both crypto backends, agreement with
//! the `sev` crate's parser, and mutated negative copies of every valid report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::snp::{SnpParseError, parse_snp_report};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier, SnpVerifyError};
use attestation_verifier::verify::x509::X509Error;
use attestation_verifier::{Outcome, SnpClaims, check_snp};
use common::Case;
use sev::parser::ByteParser;

struct Inputs {
    report: Vec<u8>,
    vek: Vec<u8>,
    intermediate: Vec<u8>,
    ark: Vec<u8>,
}

fn pem_or_der(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(b"-----BEGIN") {
        pem::parse(&bytes).unwrap().into_contents()
    } else {
        bytes
    }
}

fn inputs(case: &Case) -> Inputs {
    let first = |names: &[&str]| {
        names
            .iter()
            .find(|n| case.has(n))
            .map(|n| pem_or_der(case.file(n)))
            .unwrap_or_else(|| panic!("{}: none of {names:?}", case.name))
    };
    Inputs {
        report: case.file("report.bin"),
        vek: first(&["vcek.der", "vlek.der"]),
        intermediate: first(&["ask.pem", "asvk.pem"]),
        ark: first(&["ark.pem"]),
    }
}

fn collateral(i: &Inputs) -> SnpCollateral<'_> {
    SnpCollateral {
        vek: &i.vek,
        intermediate: Some(&i.intermediate),
        ark: Some(&i.ark),
        crl: None,
    }
}

fn verify_with<C: Crypto>(crypto: C, case: &Case, policy: &Policy) -> Outcome<SnpClaims> {
    let i = inputs(case);
    let mut v = SnpVerifier::new(crypto).unwrap();
    check_snp(
        &mut v,
        &i.report,
        &collateral(&i),
        policy,
        UnixTime(case.verification_time()),
    )
}

/// Verification only (no policy): is the evidence genuine?
fn genuine<C: Crypto>(crypto: C, case: &Case) -> Result<(), String> {
    let i = inputs(case);
    let mut v = SnpVerifier::new(crypto).unwrap();
    let r = parse_snp_report(&i.report).map_err(|e| e.to_string())?;
    v.verify(&r, &collateral(&i), UnixTime(case.verification_time()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn snp_vectors_give_expected_verdicts_works() {
    let cases = common::cases("snp");
    assert!(cases.len() >= 18, "expected the full SNP vector set");
    for case in &cases {
        let got = genuine(AwsLc, case);
        assert_eq!(
            got.is_ok(),
            case.expected_valid(),
            "{}: expected {:?}, verifier said {got:?}",
            case.name,
            case.expected("verdict")
        );
    }
}

#[test]
fn snp_backends_agree_on_every_vector_works() {
    for case in common::cases("snp") {
        for policy in [Policy::default(), permissive()] {
            let a = verify_with(AwsLc, &case, &policy);
            let b = verify_with(RustCrypto, &case, &policy);
            assert_eq!(a, b, "{}: backends disagree", case.name);
        }
    }
}

fn permissive() -> Policy {
    Policy::from_toml("[snp]\nallow_debug = true\nallow_migration_agent = true\n").unwrap()
}

#[test]
fn snp_default_policy_refuses_debug_guest_for_that_reason_alone_rejects() {
    let case = common::cases("snp")
        .into_iter()
        .find(|c| c.name == "milan-v2-go-sev-guest")
        .unwrap();
    let strict = verify_with(AwsLc, &case, &Policy::default());
    assert!(!strict.accepted());
    assert_eq!(strict.reasons.len(), 1, "{:?}", strict.reasons);
    assert!(strict.reasons[0].contains("snp.allow_debug"));
    assert!(verify_with(AwsLc, &case, &permissive()).accepted());
}

#[test]
fn snp_valid_vectors_accepted_under_default_policy_unless_debug_works() {
    for case in common::cases("snp").iter().filter(|c| c.expected_valid()) {
        let out = verify_with(AwsLc, case, &Policy::default());
        let debug = out.claims.as_ref().unwrap().debug;
        assert_eq!(out.accepted(), !debug, "{}: {:?}", case.name, out.reasons);
    }
}

fn fact_str(facts: &toml::Table, key: &str) -> Option<String> {
    facts.get(key).map(|v| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[test]
fn snp_claims_equal_facts_works() {
    let mut checked = 0;
    for case in common::cases("snp") {
        let Some(facts) = case.facts() else { continue };
        let out = verify_with(AwsLc, &case, &permissive());
        let c = serde_json::to_value(out.claims.as_ref().unwrap()).unwrap();
        for key in [
            "product",
            "signing_key",
            "measurement",
            "report_data",
            "chip_id",
            "host_data",
            "policy",
            "family_id",
            "image_id",
            "id_key_digest",
            "author_key_digest",
            "report_id",
            "platform_info",
            "current_version",
            "committed_version",
        ] {
            if let Some(want) = fact_str(facts, key) {
                assert_eq!(c[key].as_str().unwrap(), want, "{}: {key}", case.name);
            }
        }
        for key in ["version", "vmpl", "guest_svn"] {
            if let Some(want) = facts.get(key).and_then(|v| v.as_integer()) {
                assert_eq!(c[key].as_i64().unwrap(), want, "{}: {key}", case.name);
            }
        }
        for tcb in ["reported_tcb", "current_tcb", "committed_tcb", "launch_tcb"] {
            let Some(want) = facts.get(tcb).and_then(|v| v.as_table()) else {
                continue;
            };
            for (k, v) in want {
                match v {
                    toml::Value::Integer(n) => {
                        assert_eq!(c[tcb][k].as_i64().unwrap(), *n, "{}: {tcb}.{k}", case.name)
                    }
                    toml::Value::String(s) => {
                        assert_eq!(c[tcb][k].as_str().unwrap(), s, "{}: {tcb}.{k}", case.name)
                    }
                    _ => {}
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} cases had facts");
}

#[test]
fn snp_parser_agrees_with_sev_crate_works() {
    for case in common::cases("snp") {
        let bytes = case.file("report.bin");
        let ours = parse_snp_report(&bytes).unwrap();
        let theirs = sev::firmware::guest::AttestationReport::from_bytes(&bytes).unwrap();
        let n = &case.name;
        assert_eq!(ours.version, theirs.version, "{n}");
        assert_eq!(ours.guest_svn, theirs.guest_svn, "{n}");
        assert_eq!(ours.policy.0, u64::from(theirs.policy), "{n}");
        assert_eq!(ours.family_id, theirs.family_id, "{n}");
        assert_eq!(ours.image_id, theirs.image_id, "{n}");
        assert_eq!(ours.vmpl, theirs.vmpl, "{n}");
        assert_eq!(ours.signature_algo, theirs.sig_algo, "{n}");
        assert_eq!(ours.platform_info, u64::from(theirs.plat_info), "{n}");
        assert_eq!(ours.flags, u32::from(theirs.key_info), "{n}");
        assert_eq!(ours.report_data, theirs.report_data, "{n}");
        assert_eq!(ours.measurement, theirs.measurement, "{n}");
        assert_eq!(ours.host_data, theirs.host_data, "{n}");
        assert_eq!(ours.id_key_digest, theirs.id_key_digest, "{n}");
        assert_eq!(ours.author_key_digest, theirs.author_key_digest, "{n}");
        assert_eq!(ours.report_id, theirs.report_id, "{n}");
        assert_eq!(ours.report_id_ma, theirs.report_id_ma, "{n}");
        assert_eq!(ours.chip_id, theirs.chip_id, "{n}");
        let product = ours.product_from_cpuid();
        if ours.version >= 3 {
            assert_eq!(Some(ours.cpuid_fam_id), theirs.cpuid_fam_id, "{n}");
            assert_eq!(Some(ours.cpuid_mod_id), theirs.cpuid_mod_id, "{n}");
            assert_eq!(Some(ours.cpuid_step), theirs.cpuid_step, "{n}");
        }
        if let Some(p) = product {
            let t = attestation_verifier::evidence::snp::TcbVersion::decode(ours.reported_tcb, p);
            let s = theirs.reported_tcb;
            assert_eq!(
                (t.bootloader, t.tee, t.snp, t.microcode),
                (s.bootloader, s.tee, s.snp, s.microcode),
                "{n}: reported_tcb"
            );
        }
        assert_eq!(
            (
                ours.current_version.2,
                ours.current_version.1,
                ours.current_version.0
            ),
            (
                theirs.current.major,
                theirs.current.minor,
                theirs.current.build
            ),
            "{n}"
        );
        if ours.version >= 5 {
            assert_eq!(
                Some(ours.launch_mit_vector),
                theirs.launch_mit_vector,
                "{n}"
            );
            assert_eq!(
                Some(ours.current_mit_vector),
                theirs.current_mit_vector,
                "{n}"
            );
        }
        let mut r = theirs.signature.r()[..48].to_vec();
        r.reverse();
        assert_eq!(
            ours.signature_r.as_slice(),
            r.as_slice(),
            "{n}: signature r"
        );
    }
}

/// Mutated copies of every valid vector, each with its expected typed error.
#[test]
fn snp_mutated_vectors_rejects() {
    for case in common::cases("snp").iter().filter(|c| c.expected_valid()) {
        let i = inputs(case);
        let now = UnixTime(case.verification_time());
        let mut v = SnpVerifier::new(AwsLc).unwrap();
        let c = collateral(&i);
        let verify = |v: &mut SnpVerifier<AwsLc>, bytes: &[u8], at: UnixTime| {
            let r = parse_snp_report(bytes).unwrap();
            v.verify(&r, &c, at).map(|_| ())
        };
        assert!(verify(&mut v, &i.report, now).is_ok(), "{}", case.name);

        // Every signed field: flip one bit of measurement, report_data, host_data, policy.
        for offset in [0x08, 0x50, 0x90, 0xC0, 0x1A0, 0x29F] {
            let mut m = i.report.clone();
            m[offset] ^= 0x01;
            let Ok(parsed) = parse_snp_report(&m) else {
                continue;
            };
            let err = v.verify(&parsed, &c, now).unwrap_err();
            assert!(
                err.any(|e| matches!(e, SnpVerifyError::ReportSignature { .. })),
                "{} offset {offset:#x}: {err}",
                case.name
            );
        }
        // A bit of the signature itself.
        let mut m = i.report.clone();
        m[0x2A0] ^= 0x01;
        let err = verify(&mut v, &m, now).unwrap_err();
        assert!(err.any(|e| matches!(e, SnpVerifyError::ReportSignature { .. })));
        // Truncated and extended reports.
        assert!(matches!(
            parse_snp_report(&i.report[..i.report.len() - 1]),
            Err(SnpParseError::Length { .. })
        ));
        let mut longer = i.report.clone();
        longer.push(0);
        assert!(matches!(
            parse_snp_report(&longer),
            Err(SnpParseError::Length { .. })
        ));
        // Unknown version.
        let mut m = i.report.clone();
        m[0] = 9;
        assert_eq!(
            parse_snp_report(&m),
            Err(SnpParseError::UnsupportedVersion(9))
        );
        // Non-zero signature padding.
        let mut m = i.report.clone();
        m[0x2A0 + 71] = 1;
        assert_eq!(parse_snp_report(&m), Err(SnpParseError::SignaturePadding));
        // Outside the endorsement key's validity (cached chain: time is re-checked).
        for at in [UnixTime(0), UnixTime(4_102_444_800 * 2)] {
            let err = verify(&mut v, &i.report, at).unwrap_err();
            assert!(
                err.any(|e| matches!(e, SnpVerifyError::Certificate(X509Error::Expired { .. }))),
                "{}: {err}",
                case.name
            );
        }
        assert_eq!(v.cached_chains(), 1);
    }
}
