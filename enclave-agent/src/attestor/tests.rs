//! The attestor end to end: evidence -> receipt -> verification through
//! `attestation_verifier`, in both modes, with a fake CPU source that produces
//! simulated-format reports and (with the `simulator` feature) the real simulator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::sync::Arc;

use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{EvidenceRef, Usage};
use attestation_verifier::time::UnixTime;
use attestation_verifier::{ReceiptVerifier, check_receipt};
use ed25519_dalek::{Signer, SigningKey};

use super::*;
use crate::receipt::{FinishedJob, build_body};

/// A CPU source that signs simulated-format reports (stands in for hardware).
struct SimLike {
    key: SigningKey,
}

impl EvidenceSource for SimLike {
    fn tee(&self) -> TeeKind {
        TeeKind::Simulated
    }
    fn name(&self) -> &'static str {
        "test"
    }
    fn collect(
        &self,
        rd: &[u8; 64],
    ) -> Result<attestation_verifier::bundle::CpuEvidence, EvidenceError> {
        let body = SimulatedBody::new(
            *rd,
            [0; 48],
            SimulatedKey::Ed25519(self.key.verifying_key().to_bytes()),
        );
        let signature = self.key.sign(&body.signed_message()).to_bytes().to_vec();
        Ok(CpuEvidence::Simulated {
            report: SimulatedReport { body, signature }.to_bytes(),
        })
    }
}

fn attestor(gpu: Option<Arc<dyn GpuProbe>>) -> Attestor {
    Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(SimLike {
            key: SigningKey::from_bytes(&[10; 32]),
        })),
        gpu,
        Vec::new(),
    )
}

fn job_body(a: &Attestor) -> ReceiptBody {
    let outputs = vec![
        ("out/result.txt".to_string(), [1u8; 32]),
        ("out/log.txt".to_string(), [2u8; 32]),
    ];
    let job = FinishedJob {
        job_id: [5; 32],
        job_spec_hash: [6; 32],
        tier: 3,
        outputs: &outputs,
        started_at_ms: 1_000,
        finished_at_ms: 3_000,
        exit_code: 0,
        usage: Usage {
            wall_ms: 2000,
            ..Usage::default()
        },
    };
    let ev = EvidenceRef {
        mode: EvidenceMode::AttestedKey,
        tee: a.tee(),
        digest: [0xEE; 32],
    };
    build_body(&RustCrypto, a.public_key(), &job, ev).unwrap().0
}

fn verify(receipt: &[u8], bundle: &[u8], allow_simulated: bool) -> Vec<String> {
    let mut v = ReceiptVerifier::new(RustCrypto).unwrap();
    let policy = Policy {
        allow_simulated,
        ..Policy::default()
    };
    check_receipt(
        &mut v,
        receipt,
        Some(bundle),
        &policy,
        UnixTime(1_800_000_000),
    )
    .reasons
}

#[test]
fn attested_key_receipt_verifies_works() {
    let a = attestor(None);
    assert!(a.needs_refresh(0, 1000));
    let ev = a.refresh(1_700_000_000_000).unwrap();
    assert!(!a.needs_refresh(1_700_000_000_500, 1000));
    assert!(a.needs_refresh(1_700_000_001_000, 1000));
    assert_eq!(ev.bundle.agent_key, a.public_key());
    assert_eq!(ev.bundle.nonce, a.attested_key_nonce(1_700_000_000_000));
    let signed = a.sign_attested(job_body(&a)).unwrap();
    let body = signed.body().unwrap();
    assert_eq!(body.evidence.digest, ev.digest);
    assert_eq!(body.evidence.mode, EvidenceMode::AttestedKey);
    assert_eq!(
        verify(&signed.to_bytes(), &ev.bytes, true),
        Vec::<String>::new()
    );
    let reasons = verify(&signed.to_bytes(), &ev.bytes, false);
    assert!(
        reasons.len() == 1 && reasons[0].contains("allow_simulated"),
        "{reasons:?}"
    );
}

#[test]
fn fresh_quote_receipt_verifies_works() {
    let a = attestor(None);
    let (signed, bundle) = a.sign_fresh(job_body(&a)).unwrap();
    let body = signed.body().unwrap();
    assert_eq!(body.evidence.mode, EvidenceMode::FreshQuote);
    assert_eq!(bundle.nonce, binding::fresh_nonce(&RustCrypto, &body));
    assert_eq!(
        verify(&signed.to_bytes(), &bundle.to_bytes(), true),
        Vec::<String>::new()
    );
}

#[test]
fn tampered_receipt_rejects() {
    let a = attestor(None);
    let ev = a.refresh(1).unwrap();
    let mut body = job_body(&a);
    let signed = a.sign_attested(body.clone()).unwrap();
    // Re-encode with a changed exit code but the old signature.
    body = signed.body().unwrap();
    body.exit_code = 1;
    let forged = SignedReceipt::new(&body, signed.signature);
    let reasons = verify(&forged.to_bytes(), &ev.bytes, true);
    assert!(
        reasons.iter().any(|r| r.contains("signature")),
        "{reasons:?}"
    );
}

#[test]
fn attested_without_evidence_rejects() {
    let a = attestor(None);
    assert!(a.sign_attested(job_body(&a)).is_err());
    let none = Attestor::new(AgentKey::from_seed(&[1; 32]), None, None, vec![]);
    assert_eq!(none.tee(), TeeKind::None);
    assert!(matches!(none.attest([0; 32]), Err(EvidenceError::NoTee)));
}

#[test]
fn gpu_evidence_is_bound_works() {
    // A GPU whose report carries the derived nonce.
    let report = std::fs::read(
        crate::evidence::tests::vectors().join("nvgpu/hopper-nvtrust-sample/report.bin"),
    )
    .unwrap();
    let chain = std::fs::read(
        crate::evidence::tests::vectors().join("nvgpu/hopper-nvtrust-sample/cert_chain.pem"),
    )
    .unwrap();
    let agent = AgentKey::from_seed(&[9; 32]);
    let (key, sealing) = (agent.public_key(), agent.sealing().public_key());
    // Binding v2: the bundle carries the sealing key, the evidence binds both keys.
    let keys = binding::Binding::V2 {
        agent_key: &key,
        sealing_key: &sealing,
    };
    let nonce = [4u8; 32];
    let gn = keys.gpu_nonce(&RustCrypto, &nonce);
    let mut r = report;
    r[4..36].copy_from_slice(&gn);
    let mut g = gpu_monitor::FakeGpu::new(0, "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    g.evidence = Some((r, chain));
    let probe: Arc<dyn GpuProbe> = Arc::new(
        gpu_monitor::FakeProbe::new("550.127.05")
            .with_gpu(g)
            .with_cc(Some(crate::evidence::tests::cc_on())),
    );
    let a = attestor(Some(probe));
    let bundle = a.attest(nonce).unwrap();
    assert_eq!(bundle.gpus.len(), 1);
    assert_eq!(bundle.gpus[0].nonce, gn);
    // The CPU report binds the GPU evidence digest.
    let EvidenceBundle {
        cpu: CpuEvidence::Simulated { report },
        ..
    } = &bundle
    else {
        panic!()
    };
    let sim = attestation_verifier::evidence::simulated::parse_simulated_report(report).unwrap();
    let gd = binding::gpu_evidence_digest(&RustCrypto, &bundle.gpus);
    assert_ne!(gd, [0; 32]);
    assert_eq!(
        sim.body.report_data,
        keys.report_data(&RustCrypto, &gd, &nonce)
    );
}

#[cfg(feature = "simulator")]
#[test]
fn simulator_end_to_end_works() {
    let a = Attestor::simulated().unwrap();
    assert_eq!(a.tee(), TeeKind::Simulated);
    let ev = a.refresh(1_700_000_000_000).unwrap();
    let signed = a.sign_attested(job_body(&a)).unwrap();
    let r = signed.to_bytes();
    assert_eq!(verify(&r, &ev.bytes, true), Vec::<String>::new());
    assert!(!verify(&r, &ev.bytes, false).is_empty());
    let mut t = r.clone();
    t[10] ^= 1;
    assert!(
        verify(&t, &ev.bytes, true)
            .iter()
            .any(|x| x.contains("signature"))
    );
    let (fresh, bundle) = a.sign_fresh(job_body(&a)).unwrap();
    assert_eq!(
        verify(&fresh.to_bytes(), &bundle.to_bytes(), true),
        Vec::<String>::new()
    );
}

#[test]
fn gpu_collateral_goes_into_the_bundle_works() {
    // The GPU's RIMs come from a directory through the agent's provider and are
    // carried by a version-2 bundle, covered by its digest.
    let v = crate::evidence::tests::vectors();
    let mut report = std::fs::read(v.join("nvgpu/hopper-nvtrust-sample/report.bin")).unwrap();
    let chain = std::fs::read(v.join("nvgpu/hopper-nvtrust-sample/cert_chain.pem")).unwrap();
    let parsed = attestation_verifier::evidence::nvgpu::parse_nvgpu_report(&report).unwrap();
    let rims = tempfile::tempdir().unwrap();
    let driver = v.join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml");
    let vbios = v.join("nvgpu-extra/rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag");
    for (id, file) in [
        (parsed.driver_rim_id("GH100").unwrap(), &driver),
        (parsed.vbios_rim_id().unwrap(), &vbios),
    ] {
        std::fs::copy(file, rims.path().join(format!("{id}.xml"))).unwrap();
    }
    let agent = AgentKey::from_seed(&[9; 32]);
    let (key, sealing) = (agent.public_key(), agent.sealing().public_key());
    // Binding v2: the bundle carries the sealing key, the evidence binds both keys.
    let keys = binding::Binding::V2 {
        agent_key: &key,
        sealing_key: &sealing,
    };
    let nonce = [4u8; 32];
    report[4..36].copy_from_slice(&keys.gpu_nonce(&RustCrypto, &nonce));
    let mut g = gpu_monitor::FakeGpu::new(0, "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    g.evidence = Some((report, chain));
    let probe: Arc<dyn GpuProbe> = Arc::new(
        gpu_monitor::FakeProbe::new("550.90.07")
            .with_gpu(g)
            .with_cc(Some(crate::evidence::tests::cc_on())),
    );
    let cache = tempfile::tempdir().unwrap();
    let provider = crate::collateral::gpu::GpuCollateralProvider::new(
        crate::collateral::tests::settings(
            cache.path(),
            Arc::new(std::sync::Mutex::new(1_748_736_000)),
        ),
        Some(rims.path().to_path_buf()),
        None,
        None,
    );
    let a = attestor(Some(probe)).with_gpu_collateral(Arc::new(provider));
    let bundle = a.attest(nonce).unwrap();
    assert_eq!(bundle.version, attestation_verifier::bundle::BUNDLE_VERSION);
    assert_eq!(
        bundle.gpu_collateral.rims,
        vec![
            std::fs::read(&driver).unwrap(),
            std::fs::read(&vbios).unwrap()
        ]
    );
    let back = EvidenceBundle::from_bytes(&bundle.to_bytes()).unwrap();
    assert_eq!(back, bundle);
    // Without GPUs no collateral is asked for.
    let plain = attestor(None)
        .with_gpu_collateral(Arc::new(FailingCollateral))
        .attest(nonce)
        .unwrap();
    assert!(plain.gpu_collateral.is_empty());
}

/// A collateral source that always fails.
struct FailingCollateral;

impl GpuCollateralSource for FailingCollateral {
    fn collateral(
        &self,
        _gpus: &[attestation_verifier::bundle::GpuEvidence],
    ) -> Result<attestation_verifier::bundle::GpuCollateral, crate::collateral::CollateralError>
    {
        Err(crate::collateral::CollateralError::Unconfigured("RIMs"))
    }
}

#[test]
fn gpu_collateral_failure_fails_attestation_rejects() {
    let v = crate::evidence::tests::vectors();
    let report = std::fs::read(v.join("nvgpu/hopper-nvtrust-sample/report.bin")).unwrap();
    let chain = std::fs::read(v.join("nvgpu/hopper-nvtrust-sample/cert_chain.pem")).unwrap();
    let agent = AgentKey::from_seed(&[9; 32]);
    let (key, sealing) = (agent.public_key(), agent.sealing().public_key());
    // Binding v2: the bundle carries the sealing key, the evidence binds both keys.
    let keys = binding::Binding::V2 {
        agent_key: &key,
        sealing_key: &sealing,
    };
    let nonce = [4u8; 32];
    let mut r = report;
    r[4..36].copy_from_slice(&keys.gpu_nonce(&RustCrypto, &nonce));
    let mut g = gpu_monitor::FakeGpu::new(0, "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    g.evidence = Some((r, chain));
    let probe: Arc<dyn GpuProbe> = Arc::new(
        gpu_monitor::FakeProbe::new("550.90.07")
            .with_gpu(g)
            .with_cc(Some(crate::evidence::tests::cc_on())),
    );
    let a = attestor(Some(probe)).with_gpu_collateral(Arc::new(FailingCollateral));
    assert!(matches!(a.attest(nonce), Err(EvidenceError::Collateral(_))));
}
