//! `GpuEvidence` on real NVIDIA reports and chains, and on mutated copies.

use super::{nvgpu_case, nvgpu_cases, vectors};
use crate::{EvidenceError, GpuEvidence, Nonce, report_nonce};

const SAMPLE: &str = "hopper-nvtrust-sample";

fn facts(case: &str) -> Option<sigil_test_support::toml::Table> {
    sigil_test_support::Case::load("nvgpu", case)
        .facts()
        .cloned()
}

#[test]
fn every_vector_report_works() {
    let cases = nvgpu_cases();
    assert!(
        cases.len() >= 7,
        "expected the nvgpu cases, found {cases:?}"
    );
    let mut checked_facts = 0;
    for case in &cases {
        let (report, chain, nonce) = nvgpu_case(case);
        let result = GpuEvidence::from_driver("GPU-test", nonce, report.clone(), &chain);
        if case == "invalid-hopper-wrong-nonce" {
            // The verifier is told to expect another nonce than the one in the request: the
            // same mismatch a stale report from the driver would show.
            assert!(
                matches!(result, Err(EvidenceError::NonceMismatch { ref found, .. })
                    if found == "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"),
                "{case}: {result:?}"
            );
            continue;
        }
        // Chain and signature faults are the verifier's to find; structurally these are fine.
        let evidence = result.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(evidence.report, report);
        let certs = evidence.certificates_der().unwrap();
        assert!(
            certs.iter().all(|der| der.first() == Some(&0x30)),
            "{case}: DER SEQUENCE"
        );
        if let Some(facts) = facts(case) {
            let want_nonce = facts["nonce"].as_str().unwrap();
            assert_eq!(
                evidence.report_nonce().unwrap().to_hex(),
                want_nonce,
                "{case}"
            );
            let want_len = facts["report_length"].as_integer().unwrap();
            assert_eq!(report.len() as i64, want_len, "{case}");
            let want_certs = facts["cert_chain_length"].as_integer().unwrap();
            assert_eq!(certs.len() as i64, want_certs, "{case}");
            checked_facts += 1;
        }
    }
    assert!(checked_facts >= 7, "only {checked_facts} cases had facts");
}

#[test]
fn blackwell_report_works() {
    let dir = vectors().join("nvgpu-extra/nvat");
    let report = hex::decode(
        std::fs::read_to_string(dir.join("blackwellAttestationReport.txt"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let chain = std::fs::read(dir.join("blackwellCertChain.txt")).unwrap();
    let nonce = report_nonce(&report).unwrap();
    let evidence = GpuEvidence::from_driver("GPU-blackwell", nonce, report, &chain).unwrap();
    assert_eq!(evidence.certificates_der().unwrap().len(), 5);
}

#[test]
fn driver_buffer_padding_works() {
    let (report, chain, nonce) = nvgpu_case(SAMPLE);
    let mut padded = chain.clone();
    padded.resize(5120, 0);
    let a = GpuEvidence::from_driver("GPU-a", nonce, report.clone(), &chain).unwrap();
    let b = GpuEvidence::from_driver("GPU-a", nonce, report, &padded).unwrap();
    assert_eq!(a, b);
    assert!(!b.cert_chain_pem.ends_with('\0'));
}

#[test]
fn mutated_reports_reject() {
    let (report, chain, nonce) = nvgpu_case(SAMPLE);
    let build = |r: Vec<u8>| GpuEvidence::from_driver("GPU-m", nonce, r, &chain);

    assert_eq!(
        build(report[..36].to_vec()).unwrap_err(),
        EvidenceError::ReportTooShort { len: 36, min: 37 }
    );
    assert_eq!(
        build(Vec::new()).unwrap_err(),
        EvidenceError::ReportTooShort { len: 0, min: 37 }
    );
    let mut version = report.clone();
    version[0] = 0x20;
    assert_eq!(
        build(version).unwrap_err(),
        EvidenceError::NotSpdmMeasurements {
            version: 0x20,
            code: 0xE0
        }
    );
    let mut code = report.clone();
    code[1] = 0x60;
    assert_eq!(
        build(code).unwrap_err(),
        EvidenceError::NotSpdmMeasurements {
            version: 0x11,
            code: 0x60
        }
    );
    for byte in [4, 20, 35] {
        let mut flipped = report.clone();
        flipped[byte] ^= 0x01;
        assert!(
            matches!(build(flipped), Err(EvidenceError::NonceMismatch { .. })),
            "nonce byte {byte}"
        );
    }
    // The slot id right after the nonce is not part of it.
    let mut slot = report.clone();
    slot[36] ^= 0x01;
    assert!(build(slot).is_ok());
}

#[test]
fn bad_chains_reject() {
    let (report, chain, nonce) = nvgpu_case(SAMPLE);
    let build = |c: &[u8]| GpuEvidence::from_driver("GPU-c", nonce, report.clone(), c);

    assert!(matches!(
        build(b""),
        Err(EvidenceError::CertChainContent { .. })
    ));
    assert!(matches!(
        build(&[0u8; 64]),
        Err(EvidenceError::CertChainContent { .. })
    ));
    assert!(matches!(
        build(b"not a certificate at all"),
        Err(EvidenceError::CertChainContent { .. })
    ));
    let mut binary = chain.clone();
    binary[10] = 0xFF;
    assert_eq!(
        build(&binary).unwrap_err(),
        EvidenceError::CertChainNotText { offset: 10 }
    );
    let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let mut with_key = chain.clone();
    with_key.extend_from_slice(key);
    assert!(matches!(
        build(&with_key),
        Err(EvidenceError::CertChainContent { .. })
    ));
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        build(broken),
        Err(EvidenceError::CertChainNotPem { .. })
    ));
}

#[test]
fn nonce_parsing_works() {
    let hex = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
    let nonce: Nonce = hex.parse().unwrap();
    assert_eq!(nonce.to_hex(), hex);
    assert_eq!(
        Nonce::from_hex(&format!(" 0x{}\n", hex.to_uppercase())).unwrap(),
        nonce
    );
    assert_eq!(nonce.to_string(), hex);
}

#[test]
fn bad_nonces_reject() {
    assert_eq!(
        Nonce::from_hex("abcd").unwrap_err(),
        EvidenceError::NonceLength { len: 4 }
    );
    assert_eq!(
        Nonce::from_hex("").unwrap_err(),
        EvidenceError::NonceLength { len: 0 }
    );
    let bad = format!("{}zz", "0".repeat(62));
    assert!(matches!(
        Nonce::from_hex(&bad),
        Err(EvidenceError::NonceNotHex { .. })
    ));
    // 64 bytes of multi-byte characters are not 64 hex digits.
    assert!(Nonce::from_hex(&"é".repeat(32)).is_err());
}

#[test]
fn evidence_serde_round_trip_works() {
    let (report, chain, nonce) = nvgpu_case(SAMPLE);
    let evidence = GpuEvidence::from_driver("GPU-rt", nonce, report, &chain).unwrap();
    let json = serde_json::to_value(&evidence).unwrap();
    assert_eq!(json["nonce"], nonce.to_hex());
    assert_eq!(
        json["report"].as_str().unwrap().len(),
        evidence.report.len() * 2
    );
    let back: GpuEvidence = serde_json::from_value(json).unwrap();
    assert_eq!(back, evidence);
    back.check().unwrap();

    let mut tampered = serde_json::to_value(&evidence).unwrap();
    tampered["nonce"] = serde_json::Value::String("00".repeat(32));
    let tampered: GpuEvidence = serde_json::from_value(tampered).unwrap();
    assert!(matches!(
        tampered.check(),
        Err(EvidenceError::NonceMismatch { .. })
    ));
}
