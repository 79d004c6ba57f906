//! The runtime's verifier on simulated bundles made as the agent makes them, on bundles broken in
//! each way the pallet distinguishes, and on real SEV-SNP evidence from the shared vectors.

// Tests may panic on broken expectations and index fixed-size test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use super::*;
use crate::benchmarking::simulated_bundle;
use alloc::vec::Vec;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::verify::receipt::ReceiptVerifyError;
use ed25519_dalek::{Signer, SigningKey};

const KEY: [u8; 32] = [0xa7; 32];
const NONCE: [u8; 32] = [0x42; 32];
const MEASUREMENT: [u8; 48] = [0x11; 48];
/// 2026-01-01T00:00:00Z.
const NOW_MS: u64 = 1_767_225_600_000;

/// The canonical document of the genesis policy `name`.
fn doc(name: &str) -> Vec<u8> {
    attestation_verifier::policy::genesis::named(name)
        .expect("a genesis policy")
        .canonical_bytes()
}

fn simulated_policy() -> Vec<u8> {
    doc(policies::SIMULATED_V1)
}

fn verify(evidence: &[u8], policy: &[u8]) -> Result<VerifiedAttestation, AttestationFailure> {
    BundleVerifier::verify(evidence, &[], policy, NOW_MS)
}

#[test]
fn genesis_policies_works() {
    let docs = policies::genesis_documents();
    assert_eq!(docs.len(), policies::NAMES.len());
    for (name, document) in policies::NAMES.into_iter().zip(&docs) {
        let summary = BundleVerifier::inspect_policy(document).expect("a valid document");
        assert_eq!(Some(summary.id), policies::id_of(name), "{name}");
        let expected_unpinned = match name {
            policies::SIMULATED_V1 => None,
            _ => Some(PolicyRejection::SnpMeasurementNotPinned),
        };
        assert_eq!(summary.unpinned, expected_unpinned, "{name}");
    }
    let tees = |name| {
        BundleVerifier::inspect_policy(&doc(name))
            .unwrap()
            .tees
            .into_inner()
    };
    assert_eq!(tees(policies::SIMULATED_V1), vec![TeeKind::Simulated]);
    assert_eq!(tees(policies::SEV_SNP_V1), vec![TeeKind::SevSnp]);
    assert_eq!(
        tees(policies::CONFIDENTIAL_VM_V1),
        vec![TeeKind::SevSnp, TeeKind::Tdx]
    );
    assert_eq!(policies::id_of("sigil.simulated.v2"), None);
}

#[test]
fn simulated_measurement_pin_works() {
    use attestation_verifier::policy::HexBytes;
    let mut p = attestation_verifier::policy::genesis::named(policies::SIMULATED_V1).unwrap();
    p.simulated.measurements = vec![HexBytes(MEASUREMENT.to_vec()), HexBytes(vec![0x33; 48])];
    let bundle = simulated_bundle(KEY, NONCE, MEASUREMENT);
    assert_eq!(
        verify(&bundle, &p.canonical_bytes()).unwrap().measurement,
        MEASUREMENT
    );
    p.simulated.measurements = vec![HexBytes(vec![0x22; 48])];
    assert_eq!(
        verify(&bundle, &p.canonical_bytes()),
        Err(AttestationFailure::MeasurementRejected)
    );
}

#[test]
fn inspect_policy_works() {
    use attestation_verifier::policy::HexBytes;
    let mut pinned =
        attestation_verifier::policy::genesis::named(policies::CONFIDENTIAL_VM_V1).unwrap();
    pinned.snp.measurements = vec![HexBytes(vec![0x11; 48])];
    // TDX is still accepted without an MRTD.
    assert_eq!(
        BundleVerifier::inspect_policy(&pinned.canonical_bytes())
            .unwrap()
            .unpinned,
        Some(PolicyRejection::TdxMrtdNotPinned)
    );
    pinned.tdx.mrtds = vec![HexBytes(vec![0x22; 48])];
    pinned.key_lifetime_secs = Some(3_600);
    pinned.gpu.min_count = 8;
    let s = BundleVerifier::inspect_policy(&pinned.canonical_bytes()).unwrap();
    assert_eq!(s.unpinned, None);
    assert_eq!(s.key_lifetime_ms, Some(3_600_000));
    assert_eq!(s.id, pinned.id());
}

#[test]
fn inspect_policy_rejects() {
    let good = doc(policies::SEV_SNP_V1);
    assert_eq!(
        BundleVerifier::inspect_policy(&[]),
        Err(PolicyRejection::Malformed)
    );
    assert_eq!(
        BundleVerifier::inspect_policy(&[good.as_slice(), &[0]].concat()),
        Err(PolicyRejection::Malformed)
    );
    let mut version = good.clone();
    version[0] = 0xff;
    assert_eq!(
        BundleVerifier::inspect_policy(&version),
        Err(PolicyRejection::Malformed)
    );
    for cut in 0..good.len() {
        assert!(
            BundleVerifier::inspect_policy(&good[..cut]).is_err(),
            "{cut}"
        );
    }
}

#[test]
fn simulated_bundle_under_the_simulated_policy_works() {
    let bundle = simulated_bundle(KEY, NONCE, MEASUREMENT);
    let v = verify(&bundle, &simulated_policy()).expect("accepted");
    assert_eq!(v.key, KEY);
    assert_eq!(v.nonce, NONCE);
    assert_eq!(v.tee, TeeKind::Simulated);
    assert_eq!(v.measurement, MEASUREMENT);
    // No expiry of its own: the pallet caps it with `MaxAttestationValidityMs`.
    assert_eq!(v.expires_at_ms, u64::MAX);
}

#[test]
fn simulated_bundle_under_hardware_policies_rejects() {
    let bundle = simulated_bundle(KEY, NONCE, MEASUREMENT);
    for name in [policies::CONFIDENTIAL_VM_V1, policies::SEV_SNP_V1] {
        assert_eq!(
            verify(&bundle, &doc(name)),
            Err(AttestationFailure::SimulatedRejected),
            "{name}"
        );
    }
}

#[test]
fn unknown_policy_and_separate_collateral_rejects() {
    let bundle = simulated_bundle(KEY, NONCE, MEASUREMENT);
    assert_eq!(
        verify(&bundle, &[7; 32]),
        Err(AttestationFailure::UnknownPolicy)
    );
    assert_eq!(
        BundleVerifier::verify(&bundle, b"vcek", &simulated_policy(), NOW_MS),
        Err(AttestationFailure::Malformed)
    );
}

#[test]
fn garbage_and_truncated_bundles_rejects() {
    let bundle = simulated_bundle(KEY, NONCE, MEASUREMENT);
    for bad in [
        Vec::new(),
        b"not a bundle".to_vec(),
        bundle[..bundle.len() - 1].to_vec(),
        [bundle.as_slice(), &[0]].concat(),
    ] {
        assert_eq!(
            verify(&bad, &simulated_policy()),
            Err(AttestationFailure::Malformed)
        );
    }
}

/// A simulated bundle whose report is built by `report`, around the binding of `KEY`/`NONCE`.
fn bundle_with(report: impl FnOnce(SimulatedBody, &SigningKey) -> SimulatedReport) -> Vec<u8> {
    let crypto = RustCrypto;
    let no_gpus = attestation_verifier::binding::gpu_evidence_digest(&crypto, &[]);
    let rd = attestation_verifier::binding::report_data(&crypto, &KEY, &no_gpus, &NONCE);
    let simulator = SigningKey::from_bytes(&[9; 32]);
    let body = SimulatedBody::new(
        rd,
        MEASUREMENT,
        SimulatedKey::Ed25519(simulator.verifying_key().to_bytes()),
    );
    let report = report(body, &simulator).to_bytes();
    EvidenceBundle::new(KEY, NONCE, CpuEvidence::Simulated { report }, Vec::new()).to_bytes()
}

#[test]
fn tampered_simulated_report_rejects() {
    let bundle = bundle_with(|body, key| {
        let signature = key.sign(&body.signed_message()).to_bytes().to_vec();
        let mut body = body;
        body.measurement[0] ^= 1;
        SimulatedReport { body, signature }
    });
    assert_eq!(
        verify(&bundle, &simulated_policy()),
        Err(AttestationFailure::BadSignature)
    );
}

#[test]
fn report_not_binding_the_key_rejects() {
    let bundle = bundle_with(|mut body, key| {
        body.report_data[0] ^= 1;
        let signature = key.sign(&body.signed_message()).to_bytes().to_vec();
        SimulatedReport { body, signature }
    });
    assert_eq!(
        verify(&bundle, &simulated_policy()),
        Err(AttestationFailure::KeyNotBound)
    );
    // The same construction with the binding intact verifies, so the refusal is the binding's.
    let good = bundle_with(|body, key| {
        let signature = key.sign(&body.signed_message()).to_bytes().to_vec();
        SimulatedReport { body, signature }
    });
    assert!(verify(&good, &simulated_policy()).is_ok());
}

#[test]
fn violations_map_by_rule_works() {
    let cases = [
        ("allow_simulated", AttestationFailure::SimulatedRejected),
        ("snp.allow_debug", AttestationFailure::DebugEnabled),
        ("tdx.allow_debug", AttestationFailure::DebugEnabled),
        ("snp.measurements", AttestationFailure::MeasurementRejected),
        ("tdx.mrtds", AttestationFailure::MeasurementRejected),
        ("tdx.events", AttestationFailure::MeasurementRejected),
        ("tdx.agent_digests", AttestationFailure::MeasurementRejected),
        (
            "tdx.config_digests",
            AttestationFailure::MeasurementRejected,
        ),
        ("vtpm.pcrs", AttestationFailure::MeasurementRejected),
        ("snp.min_tcb", AttestationFailure::TcbRejected),
        ("tdx.accepted_tcb_statuses", AttestationFailure::TcbRejected),
        ("snp.signing_keys", AttestationFailure::TcbRejected),
        ("tees", AttestationFailure::UnsupportedTee),
        ("snp.deny_chip_ids", AttestationFailure::PlatformRejected),
        ("snp.allow_chip_ids", AttestationFailure::PlatformRejected),
        ("tdx.deny_fmspcs", AttestationFailure::PlatformRejected),
        ("gpu.min_count", AttestationFailure::GpusRejected),
        ("gpu.models", AttestationFailure::GpusRejected),
        (
            "gpu.require_confidential_mode",
            AttestationFailure::GpusRejected,
        ),
        ("snp.crl_max_age_secs", AttestationFailure::OutsideValidity),
        (
            "tdx.max_collateral_age_secs",
            AttestationFailure::OutsideValidity,
        ),
    ];
    for (rule, want) in cases {
        let v = Violation {
            rule,
            detail: String::new(),
        };
        assert_eq!(failure_of_violation(&v), want, "{rule}");
    }
}

#[test]
fn window_end_after_the_last_valid_second_works() {
    let w = Window {
        not_before: UnixTime(10),
        not_after: UnixTime(1_740_277_308),
    };
    assert_eq!(window_end_ms(&w), 1_740_277_309_000);
    let open = Window {
        not_before: UnixTime(0),
        not_after: UnixTime(u64::MAX),
    };
    assert_eq!(window_end_ms(&open), u64::MAX);
}

// ---- real SEV-SNP evidence -------------------------------------------------------------------

/// A bundle around a real SNP report and VCEK (from the shared vectors), claiming `KEY` and
/// `NONCE` (which the report, made by someone else's guest, cannot bind), and the case's
/// verification time in ms.
fn snp_case(case: &str) -> (Vec<u8>, u64) {
    let case = sigil_test_support::Case::load("snp", case);
    let cpu = CpuEvidence::SevSnp {
        report: case.file("report.bin"),
        vek: case.file("vcek.der"),
        intermediate: None,
        ark: None,
    };
    (
        EvidenceBundle::new(KEY, NONCE, cpu, Vec::new()).to_bytes(),
        case.verification_time() * 1_000,
    )
}

#[test]
fn real_snp_report_verifies_to_the_pinned_roots_and_rejects_its_binding() {
    for case in [
        "genoa-v3-azure",
        "milan-v3-oak-oc-release",
        "turin-v5-oak-oc",
    ] {
        let (bundle, at_ms) = snp_case(case);
        // Through the verifier the adapter uses: only the REPORT_DATA binding fails, so the
        // chain to the pinned AMD roots, the report signature and the TCB binding verified.
        let mut verifier = ReceiptVerifier::new(RustCrypto).unwrap();
        let failures = verifier
            .verify_bundle(&bundle, None, None, UnixTime(at_ms / 1_000))
            .expect_err("a foreign report cannot bind our key")
            .0;
        assert!(
            matches!(
                failures.as_slice(),
                [ReceiptVerifyError::ReportDataMismatch { .. }]
            ),
            "{case}: {failures:?}"
        );
        // And the runtime refuses it, under each hardware policy.
        for name in [policies::CONFIDENTIAL_VM_V1, policies::SEV_SNP_V1] {
            assert_eq!(
                BundleVerifier::verify(&bundle, &[], &doc(name), at_ms),
                Err(AttestationFailure::KeyNotBound),
                "{case} {name}"
            );
        }
        // The simulated policy does not take SEV-SNP evidence at all.
        assert_eq!(
            BundleVerifier::verify(&bundle, &[], &simulated_policy(), at_ms),
            Err(AttestationFailure::UnsupportedTee),
            "{case}"
        );
    }
}

#[test]
fn tampered_and_misendorsed_snp_reports_rejects() {
    let cases = [
        (
            "invalid-milan-v2-tampered-measurement",
            AttestationFailure::BadSignature,
        ),
        (
            "invalid-milan-v2-fake-vcek",
            AttestationFailure::UntrustedSigner,
        ),
        (
            "invalid-genoa-v5-wrong-vcek",
            AttestationFailure::UntrustedSigner,
        ),
    ];
    for (case, want) in cases {
        let (bundle, at_ms) = snp_case(case);
        let got = BundleVerifier::verify(&bundle, &[], &doc(policies::SEV_SNP_V1), at_ms);
        assert_eq!(got, Err(want), "{case}");
    }
}

#[test]
fn snp_evidence_outside_its_certificates_validity_rejects() {
    let (bundle, _) = snp_case("genoa-v3-azure");
    // Before the VCEK's notBefore (2025-01-24T02:21:48Z).
    let before = 1_737_685_308_000 - 1_000;
    assert_eq!(
        BundleVerifier::verify(&bundle, &[], &doc(policies::SEV_SNP_V1), before),
        Err(AttestationFailure::OutsideValidity)
    );
}

// ---- real NVIDIA H100 evidence ---------------------------------------------------------------

/// A bundle of a real SNP report with `KEY`/`NONCE`, one GPU entry from the nvgpu case `gpu_case`
/// claiming the derived GPU nonce, and the real driver RIM for GH100; and the SNP case's time.
fn snp_gpu_case(gpu_case: &str) -> (Vec<u8>, u64) {
    let (snp_bundle, at_ms) = snp_case("genoa-v3-azure");
    let cpu = EvidenceBundle::from_bytes(&snp_bundle).unwrap().cpu;
    let gpu_case = sigil_test_support::Case::load("nvgpu", gpu_case);
    let gpu = attestation_verifier::bundle::GpuEvidence {
        report: gpu_case.file("report.bin"),
        cert_chain_pem: String::from_utf8(gpu_case.file("cert_chain.pem")).expect("chain"),
        nonce: attestation_verifier::binding::gpu_nonce(&RustCrypto, &KEY, &NONCE),
        uuid: "GPU-0".into(),
    };
    let rim = sigil_test_support::vector("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml");
    let bundle = EvidenceBundle::new(KEY, NONCE, cpu, vec![gpu])
        .with_gpu_collateral(attestation_verifier::bundle::GpuCollateral {
            rims: vec![rim],
            ocsp: Vec::new(),
        })
        .to_bytes();
    (bundle, at_ms)
}

#[test]
fn real_gpu_report_verifies_to_the_pinned_roots_and_rejects_its_binding() {
    let (bundle, at_ms) = snp_gpu_case("hopper-nvtrust-sample");
    // The verifier checks the GPU's chain, FWID and signature and the RIM's signature; only the
    // bindings (CPU REPORT_DATA, GPU nonce) and the RIM's version fail.
    let mut verifier = ReceiptVerifier::new(RustCrypto).unwrap();
    let failures = verifier
        .verify_bundle(&bundle, None, None, UnixTime(at_ms / 1_000))
        .expect_err("recorded reports cannot bind our key")
        .0;
    assert!(
        failures.iter().all(|f| matches!(
            f,
            ReceiptVerifyError::ReportDataMismatch { .. }
                | ReceiptVerifyError::GpuNonceMismatch { .. }
                | ReceiptVerifyError::Gpu {
                    source: NvGpuVerifyError::NonceMismatch { .. }
                        | NvGpuVerifyError::RimNotApplicable { .. },
                    ..
                }
        )),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| matches!(
            f,
            ReceiptVerifyError::Gpu {
                source: NvGpuVerifyError::NonceMismatch { .. },
                ..
            }
        )),
        "{failures:?}"
    );
    let got = BundleVerifier::verify(&bundle, &[], &doc(policies::CONFIDENTIAL_VM_V1), at_ms);
    assert!(
        matches!(
            got,
            Err(AttestationFailure::KeyNotBound | AttestationFailure::MeasurementRejected)
        ),
        "{got:?}"
    );
}

#[test]
fn tampered_gpu_report_rejects() {
    let (bundle, at_ms) = snp_gpu_case("invalid-hopper-tampered-measurement");
    assert_eq!(
        BundleVerifier::verify(&bundle, &[], &doc(policies::CONFIDENTIAL_VM_V1), at_ms),
        Err(AttestationFailure::BadSignature)
    );
}

#[test]
fn gpu_failures_map_works() {
    use attestation_verifier::verify::rim::RimVerifyError;
    let gpu = |source| ReceiptVerifyError::Gpu {
        index: 0,
        uuid: "GPU-0".into(),
        source,
    };
    let cases = [
        (
            gpu(NvGpuVerifyError::NonceMismatch {
                expected: String::new(),
                found: String::new(),
            }),
            AttestationFailure::KeyNotBound,
        ),
        (
            gpu(NvGpuVerifyError::UntrustedRoot {
                last: String::new(),
            }),
            AttestationFailure::UntrustedSigner,
        ),
        (
            gpu(NvGpuVerifyError::RimNotApplicable {
                rim: String::new(),
                driver: String::new(),
                vbios: String::new(),
            }),
            AttestationFailure::MeasurementRejected,
        ),
        (
            gpu(NvGpuVerifyError::Rim {
                position: 0,
                version: String::new(),
                source: RimVerifyError::DigestMismatch,
            }),
            AttestationFailure::BadSignature,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(failure_of(&e), want, "{e}");
    }
}

#[test]
fn genesis_policies_carry_the_gpu_rules_works() {
    for name in policies::NAMES {
        let p = attestation_verifier::policy::genesis::named(name).unwrap();
        assert!(p.gpu.rim_match_required, "{name}");
        assert!(!p.gpu.ocsp_required, "{name}");
    }
}

#[test]
fn gpu_values_common_to_every_report_works() {
    let of = |v: &[Option<&str>]| -> Vec<u8> {
        let b: pallet_sigil_market::GpuVersion = common(v.iter().copied());
        b.into_inner()
    };
    assert_eq!(
        of(&[Some("550.90.07"), Some("550.90.07")]),
        b"550.90.07".to_vec()
    );
    assert_eq!(
        of(&[Some("550.90.07"), Some("550.127.05")]),
        Vec::<u8>::new()
    );
    assert_eq!(of(&[Some("550.90.07"), None]), Vec::<u8>::new());
    assert_eq!(of(&[None, Some("550.90.07")]), Vec::<u8>::new());
    assert_eq!(of(&[]), Vec::<u8>::new());
    // Longer than the bound: not stored rather than cut.
    assert_eq!(of(&[Some(&"9".repeat(33))]), Vec::<u8>::new());
}
