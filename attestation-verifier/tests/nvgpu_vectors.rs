//! Every NVIDIA GPU case in `../shared/vectors/nvgpu` gives its expected verdict
//! through both crypto backends, and the claims equal the case's `[facts]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::nvgpu::{SIGNATURE_LEN, parse_nvgpu_report, split_pem_chain};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier, NvGpuVerifyError};
use attestation_verifier::verify::x509::Cert;
use attestation_verifier::{GpuBytes, check_gpu, check_gpu_bundle};
use common::Case;

/// The vectors carry no RIMs for their driver/VBIOS versions (see the vectors'
/// README): verdicts here are about genuineness, so RIM matching is off.
fn genuineness_policy() -> Policy {
    Policy::from_toml("[gpu]\nrim_match_required = false\n").unwrap()
}

fn chain(case: &Case) -> Vec<Vec<u8>> {
    split_pem_chain(std::str::from_utf8(&case.file("cert_chain.pem")).unwrap()).unwrap()
}

fn nonce(case: &Case) -> [u8; 32] {
    hex::decode(String::from_utf8(case.file("nonce.hex")).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap()
}

fn run<C: Crypto>(
    verifier: &mut NvGpuVerifier<C>,
    case: &Case,
) -> attestation_verifier::Outcome<attestation_verifier::NvGpuClaims> {
    let chain = chain(case);
    let collateral = NvGpuCollateral {
        cert_chain: &chain,
        ..Default::default()
    };
    check_gpu(
        verifier,
        &case.file("report.bin"),
        &collateral,
        &nonce(case),
        &genuineness_policy(),
        UnixTime(case.verification_time()),
    )
}

#[test]
fn every_vector_gives_its_verdict_works() {
    let mut rust = NvGpuVerifier::new(RustCrypto).unwrap();
    let mut native = NvGpuVerifier::new(AwsLc).unwrap();
    let cases = common::cases("nvgpu");
    assert!(cases.len() >= 13);
    for case in &cases {
        let a = run(&mut rust, case);
        let b = run(&mut native, case);
        assert_eq!(a, b, "{}: backends disagree", case.name);
        assert_eq!(
            a.accepted(),
            case.expected_valid(),
            "{}: reasons {:?}",
            case.name,
            a.reasons
        );
        // The hex text form holds the same evidence.
        let hex_text = String::from_utf8(case.file("report.hex")).unwrap();
        assert_eq!(
            hex::decode(hex_text.trim()).unwrap(),
            case.file("report.bin")
        );
    }
}

/// Each invalid case fails for its documented reason.
#[test]
fn invalid_vectors_reject_for_their_reason() {
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    for case in common::cases("nvgpu")
        .iter()
        .filter(|c| !c.expected_valid())
    {
        let report = parse_nvgpu_report(&case.file("report.bin")).unwrap();
        let chain = chain(case);
        let collateral = NvGpuCollateral {
            cert_chain: &chain,
            ..Default::default()
        };
        let f = v
            .verify(
                &report,
                &collateral,
                &nonce(case),
                UnixTime(case.verification_time()),
            )
            .unwrap_err();
        let expected = |e: &NvGpuVerifyError| match case.name.as_str() {
            "invalid-hopper-chain-missing-ica" => matches!(e, NvGpuVerifyError::BrokenChain { .. }),
            "invalid-hopper-chain-missing-leaf" => matches!(e, NvGpuVerifyError::LeafIsCa(_)),
            "invalid-hopper-chain-root-only" => matches!(e, NvGpuVerifyError::ChainLength(0)),
            "invalid-hopper-swapped-chain" | "invalid-hopper-tampered-measurement" => {
                matches!(e, NvGpuVerifyError::ReportSignature(_))
            }
            "invalid-hopper-wrong-nonce" => matches!(e, NvGpuVerifyError::NonceMismatch { .. }),
            other => panic!("unexpected invalid case {other}: add its reason here"),
        };
        assert!(f.any(expected), "{}: {f}", case.name);
    }
}

/// RFC 4514 form (last RDN first) with the short names the vectors use.
fn rfc4514(cert: &Cert) -> String {
    let name = cert.inner().tbs_certificate().subject();
    let mut parts = Vec::new();
    for rdn in name.iter_rdn().collect::<Vec<_>>().into_iter().rev() {
        for atv in rdn.iter() {
            let key = match atv.oid.to_string().as_str() {
                "2.5.4.3" => "CN".to_string(),
                "2.5.4.10" => "O".to_string(),
                "2.5.4.6" => "C".to_string(),
                other => other.to_string(),
            };
            let value = std::str::from_utf8(atv.value.value()).unwrap().to_string();
            parts.push(format!("{key}={value}"));
        }
    }
    parts.join(",")
}

fn fact_str(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        other => other.to_string(),
    }
}

#[test]
fn claims_equal_facts_works() {
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    let mut checked_cases = 0;
    for case in common::cases("nvgpu") {
        let Some(facts) = case.facts() else { continue };
        let bytes = case.file("report.bin");
        let report = parse_nvgpu_report(&bytes).unwrap();
        let outcome = run(&mut v, &case);
        let claims = serde_json::to_value(outcome.claims.as_ref().unwrap()).unwrap();
        let chain = chain(&case);
        let claim = |k: &str| -> String {
            match &claims[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        };
        for (key, want) in facts {
            let want_s = fact_str(want);
            let got: String = match key.as_str() {
                "arch" | "nonce" | "response_nonce" | "spdm_version" | "driver_version"
                | "vbios_version" | "board_id" | "chip_sku" | "project" | "project_sku"
                | "fwid" | "gpu_info" => claim(key),
                "number_of_measurement_blocks" => claim("measurement_count"),
                "trailing_bytes_after_signature" => claim("trailing_bytes"),
                "cert_chain_length" => claim("cert_chain_length"),
                "opaque_field_ids" => {
                    let ids: Vec<i64> = want
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_integer().unwrap())
                        .collect();
                    let got: Vec<i64> = claims["opaque_field_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_i64().unwrap())
                        .collect();
                    let mut sorted = got.clone();
                    sorted.sort_unstable();
                    assert_eq!(sorted, ids, "{}: opaque_field_ids", case.name);
                    continue;
                }
                "request_code" => format!("{:#04x}", report.request.code),
                "request_param1" => report.request.param1.to_string(),
                "request_param2" => report.request.param2.to_string(),
                "slot_id" => report.request.slot_id.to_string(),
                "measurement_record_length" => report.record_length.to_string(),
                "opaque_data_length" => report
                    .opaque
                    .iter()
                    .map(|f| 4 + f.value.len())
                    .sum::<usize>()
                    .to_string(),
                "signature_offset" => report.signature_offset.to_string(),
                "signature_length" => SIGNATURE_LEN.to_string(),
                "report_length" => {
                    assert_eq!(report.evidence_len(), bytes.len());
                    bytes.len().to_string()
                }
                "msrscnt_nonzero_entries" => report
                    .fields
                    .measurement_counts
                    .iter()
                    .filter(|c| **c != 0)
                    .count()
                    .to_string(),
                "measurements_nonzero" => report
                    .blocks
                    .iter()
                    .filter(|b| b.value.iter().any(|x| *x != 0))
                    .count()
                    .to_string(),
                "measurement_block_indices" => {
                    let idx: Vec<u8> = report.blocks.iter().map(|b| b.index).collect();
                    assert_eq!(idx, (1..=64).collect::<Vec<u8>>(), "{}", case.name);
                    continue;
                }
                k if k.starts_with("measurement_block_") => {
                    let i: u8 = k.trim_start_matches("measurement_block_").parse().unwrap();
                    claims["measurements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|m| m["index"] == i)
                        .unwrap()["value"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }
                "leaf_subject" => rfc4514(&Cert::from_der("leaf", &chain[0]).unwrap()),
                "root_subject" => rfc4514(&Cert::from_der("root", chain.last().unwrap()).unwrap()),
                other => panic!("{}: fact {other} is not checked; add it here", case.name),
            };
            assert_eq!(
                got.to_lowercase(),
                want_s.to_lowercase(),
                "{}: fact {key}",
                case.name
            );
        }
        checked_cases += 1;
    }
    assert!(checked_cases >= 7);
}

/// The HGX capture's GPUs verify together in one call; a GPU presented twice
/// (one device answering for two) is refused.
#[test]
fn hgx_bundle_works() {
    let cases: Vec<Case> = common::cases("nvgpu")
        .into_iter()
        .filter(|c| c.name.starts_with("hopper-ppcie-hgx-gpu"))
        .collect();
    assert!(cases.len() >= 5);
    let reports: Vec<Vec<u8>> = cases.iter().map(|c| c.file("report.bin")).collect();
    let chains: Vec<Vec<Vec<u8>>> = cases.iter().map(chain).collect();
    let gpus: Vec<GpuBytes<'_>> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| GpuBytes {
            report: &reports[i],
            cert_chain: &chains[i],
            nonce: nonce(c),
        })
        .collect();
    let now = UnixTime(cases[0].verification_time());
    let mut v = NvGpuVerifier::new(AwsLc).unwrap();
    let out = check_gpu_bundle(&mut v, &gpus, &[], &[], &genuineness_policy(), now);
    assert!(out.accepted(), "{:?}", out.reasons);
    let claims = out.claims.unwrap();
    assert_eq!(claims.count, cases.len());
    let fwids: Vec<_> = claims
        .gpus
        .iter()
        .map(|g| g.as_ref().unwrap().leaf_subject.clone())
        .collect();
    assert!(fwids.iter().all(Option::is_some));

    let mut twice = gpus.clone();
    twice.push(gpus[0]);
    let out = check_gpu_bundle(&mut v, &twice, &[], &[], &genuineness_policy(), now);
    assert!(!out.accepted());
    assert!(
        out.reasons
            .iter()
            .any(|r| r.starts_with(&format!("gpu {}:", gpus.len()))
                && r.contains("same attestation certificate")),
        "{:?}",
        out.reasons
    );
    // Four distinct device chains were verified once each and cached.
    assert_eq!(v.cached_chains(), cases.len());
}

/// The strict default policy refuses genuine evidence without RIMs.
#[test]
fn default_policy_without_rims_rejects() {
    let case = common::cases("nvgpu")
        .into_iter()
        .find(|c| c.name == "hopper-nvtrust-sample")
        .unwrap();
    let chain = chain(&case);
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    let out = check_gpu(
        &mut v,
        &case.file("report.bin"),
        &NvGpuCollateral {
            cert_chain: &chain,
            ..Default::default()
        },
        &nonce(&case),
        &Policy::default(),
        UnixTime(case.verification_time()),
    );
    assert!(!out.accepted());
    assert_eq!(out.reasons.len(), 2, "{:?}", out.reasons);
    assert!(
        out.reasons
            .iter()
            .all(|r| r.starts_with("policy gpu.rim_match_required"))
    );
}

/// NVIDIA's own published negative and format-coverage evidence.
#[test]
fn nvidia_sdk_evidence_works() {
    let dir = common::vectors_dir().join("nvgpu-extra/nvat");
    let read_hex =
        |n: &str| hex::decode(std::fs::read_to_string(dir.join(n)).unwrap().trim()).unwrap();
    let read_chain =
        |n: &str| split_pem_chain(&std::fs::read_to_string(dir.join(n)).unwrap()).unwrap();
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    let now = UnixTime(1_748_736_000);
    // Blackwell: DICE TcbInfo FWID form, same root.
    let bw = parse_nvgpu_report(&read_hex("blackwellAttestationReport.txt")).unwrap();
    let bw_chain = read_chain("blackwellCertChain.txt");
    let ev = v
        .verify(
            &bw,
            &NvGpuCollateral {
                cert_chain: &bw_chain,
                ..Default::default()
            },
            &bw.request.nonce,
            now,
        )
        .unwrap();
    assert_eq!(ev.chip, "GB100");
    assert_eq!(ev.arch.map(|a| a.name()), Some("Blackwell"));
    // NVIDIA's "expired" sample is genuine evidence (its expiry is about the
    // online revocation state, which offline verification cannot see) ...
    let hopper_chain = read_chain("hopperCertChainExpired.txt");
    let collateral = NvGpuCollateral {
        cert_chain: &hopper_chain,
        ..Default::default()
    };
    let old = parse_nvgpu_report(&read_hex("hopperAttestationReportExpired.txt")).unwrap();
    assert!(v.verify(&old, &collateral, &old.request.nonce, now).is_ok());
    // ... and its "invalid signature" sample is refused for its signature.
    let bad = parse_nvgpu_report(&read_hex("hopperAttestationReportInvalidSignature.txt")).unwrap();
    let f = v
        .verify(&bad, &collateral, &bad.request.nonce, now)
        .unwrap_err();
    assert!(
        f.any(|e| matches!(e, NvGpuVerifyError::ReportSignature(_))),
        "{f}"
    );
}
