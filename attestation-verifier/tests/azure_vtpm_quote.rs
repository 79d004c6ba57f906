//! The vTPM quote of Azure confidential VMs against the shared
//! `measured/azure-vtpm` vectors (Trustee's evidence formats 0 and 1 and the
//! split files, SEV-SNP and TDX): every step of each case's `[expected]`
//! reason and every `[facts]` value, through both crypto backends, plus
//! negatives the tests derive from each valid case.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto, SignatureError};
use attestation_verifier::evidence::azure_hcl::{HclReport, parse_hcl_report_snp_or_tdx};
use attestation_verifier::evidence::azure_vtpm::{
    VtpmEvidence, VtpmHardware, VtpmQuoteParts, parse_vtpm_evidence_json, parse_vtpm_quote_json,
};
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::evidence::tpm2::{TPM_ALG_SHA256, parse_ak_jwk};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::azure_hcl::{HclBindingError, verify_claims_digest};
use attestation_verifier::verify::azure_vtpm::{VtpmQuote, VtpmQuoteError, verify_vtpm_quote};
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use sigil_test_support::vectors::{Case, cases};

const KIND: &str = "measured/azure-vtpm";

/// One case's evidence, however it is laid out.
struct Input {
    quote: VtpmQuoteParts,
    hcl_bytes: Vec<u8>,
    hardware: VtpmHardware,
    format: Option<u64>,
    nonce: Vec<u8>,
    time: Option<UnixTime>,
}

/// The case's clock, or its base case's for a derived case; TDX cases have
/// none (their quotes come without collateral, so no validity is checked).
fn time_of(case: &Case) -> Option<UnixTime> {
    if case.expected("verification_time_unix").is_some() {
        return Some(UnixTime(case.verification_time()));
    }
    let base = case.toml["source"].get("base_case")?.as_str()?;
    time_of(&Case::load(KIND, base.rsplit('/').next()?))
}

fn input(case: &Case) -> Input {
    let nonce = hex::decode(
        case.expected("expected_nonce_hex")
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let time = time_of(case);
    if case.has("evidence.json") {
        let VtpmEvidence {
            format,
            tpm_quote,
            hcl_report,
            hardware,
        } = parse_vtpm_evidence_json(&case.file("evidence.json")).unwrap();
        return Input {
            quote: tpm_quote,
            hcl_bytes: hcl_report,
            hardware,
            format: Some(format),
            nonce,
            time,
        };
    }
    let hardware = if case.has("td_quote.bin") {
        VtpmHardware::Tdx {
            td_quote: case.file("td_quote.bin"),
        }
    } else {
        VtpmHardware::Snp {
            vcek: case.file("vcek.der"),
        }
    };
    Input {
        quote: parse_vtpm_quote_json(&case.file("tpm_quote.json")).unwrap(),
        hcl_bytes: case.file("hcl_report.bin"),
        hardware,
        format: None,
        nonce,
        time,
    }
}

/// What each of the five steps gave.
struct Outcome {
    hcl: HclReport,
    /// Steps 1 to 3.
    quote: Result<VtpmQuote, Vec<VtpmQuoteError>>,
    /// Step 4.
    binding: Result<(), HclBindingError>,
    /// Step 5 (SEV-SNP only: TDX quotes come without collateral).
    hardware: Option<Result<(), String>>,
}

impl Outcome {
    fn valid(&self) -> bool {
        self.quote.is_ok()
            && self.binding.is_ok()
            && self.hardware.as_ref().is_none_or(Result::is_ok)
    }
}

fn check<C: Crypto + Clone>(crypto: C, i: &Input) -> Outcome {
    let hcl = parse_hcl_report_snp_or_tdx(&i.hcl_bytes).unwrap();
    let quote = verify_vtpm_quote(
        &crypto,
        &hcl.claims,
        &i.quote.attest,
        &i.quote.signature,
        &i.quote.pcrs,
        &i.nonce,
    )
    .map(|v| v.into_inner())
    .map_err(|f| f.0);
    let (report_data, hardware) = match &i.hardware {
        VtpmHardware::Snp { vcek } => {
            let snp = parse_snp_report(&hcl.snp_report).unwrap();
            let mut v = SnpVerifier::new(crypto.clone()).unwrap();
            let collateral = SnpCollateral {
                vek: vcek,
                intermediate: None,
                ark: None,
                crl: None,
            };
            let hw = v
                .verify(
                    &snp,
                    &collateral,
                    i.time.expect("an SEV-SNP case has a clock"),
                )
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    (snp.vmpl == 0)
                        .then_some(())
                        .ok_or_else(|| format!("VMPL {}", snp.vmpl))
                });
            (snp.report_data, Some(hw))
        }
        VtpmHardware::Tdx { td_quote } => {
            (parse_tdx_quote(td_quote).unwrap().body.report_data, None)
        }
    };
    let binding = verify_claims_digest(&crypto, &hcl, &report_data);
    Outcome {
        hcl,
        quote,
        binding,
        hardware,
    }
}

fn fact_str<'a>(case: &'a Case, key: &str) -> &'a str {
    case.facts()
        .and_then(|f| f.get(key))
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{}: no fact {key}", case.name))
}

/// Every `[facts]` value this verifier extracts, compared as text (integers in
/// decimal); a fact a case does not state is not compared.
fn check_facts(case: &Case, i: &Input, o: &Outcome) {
    let q = o.quote.as_ref().unwrap();
    let f = case.facts().unwrap();
    // The PCRs, by index, and nothing else.
    let pcrs = f["pcrs"].as_table().unwrap();
    assert_eq!(q.pcrs.len(), pcrs.len(), "{}", case.name);
    for p in &q.pcrs {
        let want = pcrs[&format!("pcr{:02}", p.index)].as_str().unwrap();
        assert_eq!(hex::encode(p.sha256), want, "{} PCR{}", case.name, p.index);
    }
    assert_eq!(
        q.attest.quote.selected(),
        (0..24).map(|i| (TPM_ALG_SHA256, i)).collect::<Vec<_>>(),
        "{}: SHA-256 bank, PCR 0..23",
        case.name
    );
    let ak = parse_ak_jwk(o.hcl.claims.ak_pub().unwrap()).unwrap();
    assert_eq!(
        (ak.n.len(), ak.e.as_slice()),
        (256, &[1, 0, 1][..]),
        "RSA-2048, e=65537"
    );
    let mut got: Vec<(&str, String)> = vec![
        (
            "tpm_quote_pcr_digest",
            hex::encode(&q.attest.quote.pcr_digest),
        ),
        ("tpm_quote_nonce_hex", hex::encode(q.nonce())),
        ("tpm_quote_clock", q.attest.clock_info.clock.to_string()),
        (
            "tpm_quote_firmware_version",
            format!("{:#018x}", q.attest.firmware_version),
        ),
        (
            "tpm_quote_qualified_signer",
            hex::encode(&q.attest.qualified_signer),
        ),
        ("ak_modulus_sha256", hex::encode(q.ak_modulus_sha256)),
        ("hcl_version", o.hcl.version.to_string()),
        ("igvm_report_type", o.hcl.report_type.to_string()),
        ("var_data_len", o.hcl.var_data.len().to_string()),
        (
            "var_data_sha256",
            hex::encode(RustCrypto.sha256(&o.hcl.var_data)),
        ),
        (
            "user_data",
            hex::encode(o.hcl.claims.user_data.as_deref().unwrap_or_default()),
        ),
    ];
    if let Some(format) = i.format {
        got.push(("evidence_format_version", format.to_string()));
    }
    match &i.hardware {
        VtpmHardware::Snp { .. } => {
            let snp = parse_snp_report(&o.hcl.snp_report).unwrap();
            got.push(("hw_report_data", hex::encode(snp.report_data)));
            got.push(("snp_measurement", hex::encode(snp.measurement)));
            got.push(("snp_vmpl", snp.vmpl.to_string()));
        }
        VtpmHardware::Tdx { td_quote } => {
            let t = parse_tdx_quote(td_quote).unwrap();
            got.push(("td_quote_report_data", hex::encode(t.body.report_data)));
        }
    }
    let mut compared = 0;
    for (key, value) in got {
        let want = match f.get(key) {
            None => continue,
            Some(toml::Value::Integer(n)) => n.to_string(),
            Some(v) => v.as_str().unwrap().to_string(),
        };
        assert_eq!(value, want, "{}: {key}", case.name);
        compared += 1;
    }
    assert!(
        compared >= 10,
        "{}: only {compared} facts compared",
        case.name
    );
}

fn both(case: &Case, i: &Input) -> Outcome {
    let a = check(AwsLc, i);
    let r = check(RustCrypto, i);
    assert_eq!(a.quote, r.quote, "{}: backends disagree", case.name);
    assert_eq!(a.binding, r.binding, "{}: backends disagree", case.name);
    assert_eq!(a.hardware, r.hardware, "{}: backends disagree", case.name);
    r
}

#[test]
fn azure_vtpm_vectors_works() {
    let all = cases(KIND);
    let mut valid = 0;
    for case in all.iter().filter(|c| c.expected_valid()) {
        let i = input(case);
        let o = both(case, &i);
        assert!(o.quote.is_ok(), "{}: {:?}", case.name, o.quote.err());
        assert!(o.binding.is_ok(), "{}: {:?}", case.name, o.binding);
        if let Some(hw) = &o.hardware {
            assert!(hw.is_ok(), "{}: {hw:?}", case.name);
        }
        assert!(o.valid());
        check_facts(case, &i, &o);
        valid += 1;
    }
    assert!(valid > 0);
}

#[test]
fn azure_vtpm_invalid_vectors_rejects() {
    let mut seen = 0;
    for case in cases(KIND).iter().filter(|c| !c.expected_valid()) {
        let i = input(case);
        let o = both(case, &i);
        assert!(!o.valid(), "{}", case.name);
        let quote_errs = o.quote.as_ref().err().cloned().unwrap_or_default();
        match case.name.as_str() {
            "invalid-az-snp-tpm-sig-flipped" => assert_eq!(
                quote_errs,
                [VtpmQuoteError::Signature(SignatureError::Invalid)]
            ),
            "invalid-az-snp-pcr-tampered" => {
                assert!(
                    matches!(quote_errs.as_slice(), [VtpmQuoteError::PcrDigest { quoted, .. }]
                        if quoted == "0daff74c2fca14910b1e9b54a384707434c3365db9f163cc73a39a9f7500833f"),
                    "{quote_errs:?}"
                );
            }
            "invalid-az-snp-wrong-nonce" => assert_eq!(
                quote_errs,
                [VtpmQuoteError::NonceMismatch {
                    expected: "65676e656c6c616863".into(),
                    found: "6368616c6c656e6765".into(),
                }]
            ),
            "invalid-az-snp-var-data-tampered" | "invalid-az-tdx-var-data-tampered" => {
                // Only the binding fails: the AK is untouched.
                assert!(o.quote.is_ok(), "{}", case.name);
                assert!(
                    matches!(o.binding, Err(HclBindingError::ClaimsDigest { .. })),
                    "{}: {:?}",
                    case.name,
                    o.binding
                );
            }
            // A case this test does not know: rejected is all it can say.
            _ => {}
        }
        if case.name.contains("sig-flipped")
            || case.name.contains("pcr-tampered")
            || case.name.contains("wrong-nonce")
        {
            assert!(o.binding.is_ok(), "{}", case.name);
        }
        if let Some(hw) = &o.hardware {
            assert!(
                hw.is_ok(),
                "{}: the SNP report itself is genuine",
                case.name
            );
        }
        seen += 1;
    }
    assert_eq!(
        seen,
        cases(KIND).iter().filter(|c| !c.expected_valid()).count()
    );
}

/// Each valid case, changed in one way each, with the failure it must give.
#[test]
fn azure_vtpm_mutated_vectors_rejects() {
    for case in cases(KIND).iter().filter(|c| c.expected_valid()) {
        let base = input(case);
        let run = |f: &dyn Fn(&mut Input)| {
            let mut i = input(case);
            f(&mut i);
            both(case, &i)
        };
        // A flipped bit in the signed structure's firmwareVersion: the signature fails, nothing else.
        let o = run(&|i| {
            let at = i.quote.attest.len() - 32 - 2 - 3 - 1 - 4 - 8 - 1;
            i.quote.attest[at] ^= 0x80;
        });
        assert_eq!(
            o.quote.unwrap_err(),
            [VtpmQuoteError::Signature(SignatureError::Invalid)],
            "{}",
            case.name
        );
        // The last signature byte.
        let o = run(&|i| *i.quote.signature.last_mut().unwrap() ^= 1);
        assert_eq!(
            o.quote.unwrap_err(),
            [VtpmQuoteError::Signature(SignatureError::Invalid)]
        );
        // Two PCRs swapped.
        let o = run(&|i| i.quote.pcrs.swap(0, 4));
        assert!(matches!(
            o.quote.unwrap_err().as_slice(),
            [VtpmQuoteError::PcrDigest { .. }]
        ));
        // One PCR missing.
        let o = run(&|i| drop(i.quote.pcrs.pop()));
        assert_eq!(
            o.quote.unwrap_err(),
            [VtpmQuoteError::PcrCount {
                selected: 24,
                given: 23
            }]
        );
        // Another nonce, one byte longer.
        let o = run(&|i| i.nonce.push(0));
        assert!(matches!(
            o.quote.unwrap_err().as_slice(),
            [VtpmQuoteError::NonceMismatch { .. }]
        ));
        // The AK swapped for another case's: only the signature fails.
        let o = run(&|i| {
            let mut hcl = parse_hcl_report_snp_or_tdx(&i.hcl_bytes).unwrap();
            let Some(other_keys) = cases(KIND)
                .iter()
                .filter(|c| c.expected_valid())
                .map(|c| {
                    parse_hcl_report_snp_or_tdx(&input(c).hcl_bytes)
                        .unwrap()
                        .claims
                        .keys
                })
                .find(|k| k != &hcl.claims.keys)
            else {
                return;
            };
            hcl.claims.keys = other_keys;
            // Verify with the swapped claims directly.
            let f = verify_vtpm_quote(
                &RustCrypto,
                &hcl.claims,
                &i.quote.attest,
                &i.quote.signature,
                &i.quote.pcrs,
                &i.nonce,
            )
            .unwrap_err();
            assert_eq!(f.0, [VtpmQuoteError::Signature(SignatureError::Invalid)]);
        });
        assert!(o.valid());
        // A runtime claims byte changed: the binding fails.
        let o = run(&|i| {
            let pos = i
                .hcl_bytes
                .windows(8)
                .position(|w| w == b"HCLEkPub")
                .unwrap_or(1300);
            i.hcl_bytes[pos + 2] ^= 0x20; // case of one letter: the JSON still parses
        });
        assert!(
            matches!(o.binding, Err(HclBindingError::ClaimsDigest { .. })),
            "{}",
            case.name
        );
        assert!(base.quote.pcrs.len() == 24);
    }
}

// ---- `sigil-verify azure-vtpm` over every case ----

fn cli(args: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .arg("azure-vtpm")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (code, json)
}

/// [`time_of`] as RFC 3339 text.
fn at_of(case: &Case) -> Option<String> {
    if let Some(t) = case.expected("verification_time") {
        return t.as_str().map(String::from);
    }
    let base = case.toml["source"].get("base_case")?.as_str()?;
    at_of(&Case::load(KIND, base.rsplit('/').next()?))
}

fn cli_case(case: &Case) -> (i32, serde_json::Value) {
    let p = |f: &str| case.dir.join(f).to_str().unwrap().to_string();
    let mut args = vec![
        "--nonce".to_string(),
        case.expected("expected_nonce_hex")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string(),
    ];
    if case.has("evidence.json") {
        args.extend(["--evidence".into(), p("evidence.json")]);
    } else {
        args.extend(["--hcl-report".into(), p("hcl_report.bin")]);
        args.extend(["--tpm-quote".into(), p("tpm_quote.json")]);
        if case.has("td_quote.bin") {
            args.extend(["--td-quote".into(), p("td_quote.bin")]);
        } else {
            args.extend(["--cert".into(), p("vcek.der")]);
        }
    }
    if let Some(t) = at_of(case) {
        args.extend(["--at".into(), t]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&args)
}

#[test]
fn azure_vtpm_cli_works() {
    for case in cases(KIND) {
        let (code, out) = cli_case(&case);
        let verdict = out["verdict"].as_str().unwrap_or_default();
        let reasons = out["reasons"].to_string();
        let tdx = case.has("td_quote.bin");
        match (case.expected_valid(), tdx) {
            (true, false) => {
                assert_eq!((code, verdict), (0, "accepted"), "{}: {out}", case.name);
            }
            (true, true) => {
                // No collateral: the vTPM layer verifies, the TD quote is not evaluated.
                assert_eq!((code, verdict), (1, "incomplete"), "{}: {out}", case.name);
                assert_eq!(out["claims"]["hardware"]["tcb_status"], "not_evaluated");
                assert_eq!(out["claims"]["hardware"]["status"], "not_evaluated");
                assert!(
                    reasons.contains("TCB status were not evaluated"),
                    "{reasons}"
                );
            }
            (false, _) => {
                assert_eq!((code, verdict), (1, "rejected"), "{}: {out}", case.name);
            }
        }
        if case.expected_valid() {
            let c = &out["claims"];
            assert_eq!(c["tpm_quote"]["status"], "verified", "{}", case.name);
            assert_eq!(c["hcl"]["binding"], "verified", "{}", case.name);
            assert_eq!(
                c["tpm_quote"]["ak_modulus_sha256"].as_str().unwrap(),
                fact_str(&case, "ak_modulus_sha256")
            );
            assert_eq!(
                c["tpm_quote"]["pcrs"]["pcr00"].as_str().unwrap(),
                case.facts().unwrap()["pcrs"]["pcr00"].as_str().unwrap()
            );
            assert_eq!(
                c["tpm_quote"]["nonce"].as_str().unwrap(),
                fact_str(&case, "tpm_quote_nonce_hex")
            );
        }
    }
}

#[test]
fn azure_vtpm_cli_usage_rejects() {
    let all = cases(KIND);
    let case = all.iter().find(|c| c.has("evidence.json")).unwrap();
    let ev = case.dir.join("evidence.json");
    let ev = ev.to_str().unwrap();
    // Not hex: the command cannot run.
    assert_eq!(cli(&["--evidence", ev, "--nonce", "zz"]).0, 2);
    // No evidence at all.
    assert_eq!(cli(&["--nonce", "00"]).0, 2);
    // Evidence that is not JSON is a rejection.
    let toml = case.dir.join("case.toml");
    let (code, out) = cli(&["--evidence", toml.to_str().unwrap(), "--nonce", "00"]);
    assert_eq!((code, out["verdict"].as_str()), (1, Some("rejected")));
}

// ---- round trips and totality ----

mod props {
    use attestation_verifier::evidence::azure_vtpm::parse_vtpm_evidence_json;
    use attestation_verifier::evidence::tpm2::{
        ClockInfo, PcrSelection, QuoteInfo, TpmsAttest, encode_tpms_attest, encode_tpmt_signature,
        parse_tpms_attest, parse_tpmt_signature,
    };
    use proptest::prelude::*;

    fn attest() -> impl Strategy<Value = TpmsAttest> {
        (
            proptest::collection::vec(any::<u8>(), 0..=66),
            proptest::collection::vec(any::<u8>(), 0..=64),
            (any::<u64>(), any::<u32>(), any::<u32>(), any::<bool>()),
            any::<u64>(),
            proptest::collection::vec(
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..=4)),
                0..=16,
            ),
            proptest::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(
                |(signer, extra, (clock, reset, restart, safe), fw, sel, digest)| TpmsAttest {
                    qualified_signer: signer,
                    extra_data: extra,
                    clock_info: ClockInfo {
                        clock,
                        reset_count: reset,
                        restart_count: restart,
                        safe,
                    },
                    firmware_version: fw,
                    quote: QuoteInfo {
                        pcr_select: sel
                            .into_iter()
                            .map(|(hash, select)| PcrSelection { hash, select })
                            .collect(),
                        pcr_digest: digest,
                    },
                },
            )
    }

    proptest! {
        #[test]
        fn tpms_attest_round_trip_works(a in attest()) {
            let bytes = encode_tpms_attest(&a).unwrap();
            prop_assert_eq!(parse_tpms_attest(&bytes).unwrap(), a);
        }

        #[test]
        fn tpmt_signature_round_trip_works(sig in proptest::collection::vec(any::<u8>(), 0..=512)) {
            let bytes = encode_tpmt_signature(&sig).unwrap();
            prop_assert_eq!(parse_tpmt_signature(&bytes).unwrap().rsa, sig);
        }

        #[test]
        fn arbitrary_bytes_parse_totally_works(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_tpms_attest(&data);
            let _ = parse_tpmt_signature(&data);
            let _ = parse_vtpm_evidence_json(&data);
        }
    }
}
