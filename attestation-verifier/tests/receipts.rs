//! Receipts end to end: receipts and bundles built here, verified through the
//! library (synthetic SEV-SNP and NVIDIA GPU evidence with test PKIs, real
//! SEV-SNP, TDX and NVIDIA vectors, simulated evidence) and through the
//! `sigil-verify` binary (exit codes, JSON envelope).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;
mod nvgpu_support;
mod snp_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use attestation_verifier::binding::{fresh_nonce, gpu_evidence_digest, report_data};
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle, GpuCollateral, GpuEvidence};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::merkle::OutputTree;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, TeeKind, Usage,
};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{NvGpuVerifier, NvGpuVerifyError};
use attestation_verifier::verify::ocsp::CertStatusDer;
use attestation_verifier::verify::snp::SnpVerifier;
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{CpuClaims, ReceiptVerifier, ReceiptVerifyError, check_receipt};
use ed25519_dalek::{Signer, SigningKey};
use rcgen::KeyPair;

const NOW: UnixTime = UnixTime(1_893_456_000); // 2030-01-01

fn agent() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

fn body(agent: &SigningKey, mode: EvidenceMode, tee: TeeKind) -> ReceiptBody {
    let outputs = vec![
        (b"result.json".to_vec(), [0xAA; 32]),
        (b"logs/stdout".to_vec(), [0xBB; 32]),
    ];
    let tree = OutputTree::new(&RustCrypto, outputs).unwrap();
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: agent.verifying_key().to_bytes(),
        tier: 3,
        result_commitment: tree.root(&RustCrypto),
        output_count: tree.len(),
        started_at_ms: 1_800_000_000_000,
        finished_at_ms: 1_800_000_004_000,
        exit_code: 0,
        usage: Usage {
            wall_ms: 4000,
            cpu_ms: 3500,
            peak_memory_bytes: 64 << 20,
            gpu_ms: 0,
            gpu_energy_mj: 0,
        },
        evidence: EvidenceRef {
            mode,
            tee,
            digest: [0; 32],
        },
    }
}

fn sign(agent: &SigningKey, body: &ReceiptBody) -> Vec<u8> {
    SignedReceipt::new(body, agent.sign(&body.digest(&RustCrypto)).to_bytes()).to_bytes()
}

// ---- synthetic SEV-SNP: a test ARK/ASK and a VCEK with AMD's extensions ----

use snp_support::{TestPlatform as SnpPlatform, test_platform as snp_platform};

/// A v3 Milan report binding `rd`, signed by `key`.
fn snp_report(key: &KeyPair, rd: &[u8; 64]) -> Vec<u8> {
    snp_support::snp_report(key, 3, 0x30000, rd)
}

fn snp_verifier<C: Crypto + Clone>(c: C, p: &SnpPlatform) -> ReceiptVerifier<C> {
    ReceiptVerifier::with_verifiers(
        SnpVerifier::with_trust_store(c.clone(), p.trust.clone()),
        TdxVerifier::new(c.clone()).unwrap(),
        NvGpuVerifier::new(c).unwrap(),
    )
}

/// A fresh-quote receipt with SEV-SNP evidence whose REPORT_DATA binds it.
fn snp_fresh(p: &SnpPlatform, a: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let mut b = body(a, EvidenceMode::FreshQuote, TeeKind::SevSnp);
    let nonce = fresh_nonce(&RustCrypto, &b);
    let key = a.verifying_key().to_bytes();
    let rd = report_data(&RustCrypto, &key, &[0; 32], &nonce);
    let bundle = EvidenceBundle::new(
        key,
        nonce,
        CpuEvidence::SevSnp {
            report: snp_report(&p.vcek_key, &rd),
            vek: p.vcek.clone(),
            intermediate: None,
            ark: None,
        },
        vec![],
    );
    b.evidence.digest = bundle.digest(&RustCrypto);
    (sign(a, &b), bundle.to_bytes())
}

#[test]
fn synthetic_snp_fresh_quote_works() {
    let p = snp_platform();
    let (r, b) = snp_fresh(&p, &agent());
    for outcome in [
        check_receipt(
            &mut snp_verifier(AwsLc, &p),
            &r,
            Some(&b),
            &Policy::default(),
            NOW,
        ),
        check_receipt(
            &mut snp_verifier(RustCrypto, &p),
            &r,
            Some(&b),
            &Policy::default(),
            NOW,
        ),
    ] {
        assert!(outcome.accepted(), "{:?}", outcome.reasons);
        let c = outcome.claims.unwrap();
        assert_eq!(c.tee, "sev-snp");
        assert_eq!(c.evidence_mode, "fresh-quote");
        assert!(!c.evidence.unwrap().simulated);
    }
}

#[test]
fn synthetic_snp_policy_applies_works() {
    let p = snp_platform();
    let (r, b) = snp_fresh(&p, &agent());
    let policy = Policy::from_toml(&format!(
        "[snp]\nmeasurements = [\"{}\"]\n",
        "22".repeat(48)
    ))
    .unwrap();
    let o = check_receipt(&mut snp_verifier(AwsLc, &p), &r, Some(&b), &policy, NOW);
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().any(|x| x.contains("snp.measurements")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn synthetic_snp_report_for_other_key_rejects() {
    // A genuine report bound to a different agent key, relabelled for this receipt.
    let p = snp_platform();
    let a = agent();
    let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::SevSnp);
    let key = a.verifying_key().to_bytes();
    let other = SigningKey::from_bytes(&[99; 32]).verifying_key().to_bytes();
    let rd = report_data(&RustCrypto, &other, &[0; 32], &[5; 32]);
    let bundle = EvidenceBundle::new(
        key,
        [5; 32],
        CpuEvidence::SevSnp {
            report: snp_report(&p.vcek_key, &rd),
            vek: p.vcek.clone(),
            intermediate: None,
            ark: None,
        },
        vec![],
    );
    b.evidence.digest = bundle.digest(&RustCrypto);
    let mut v = snp_verifier(AwsLc, &p);
    let f = v
        .verify(&sign(&a, &b), Some(&bundle.to_bytes()), NOW)
        .unwrap_err();
    assert_eq!(f.0.len(), 1, "{f}");
    assert!(matches!(
        f.0[0],
        ReceiptVerifyError::ReportDataMismatch {
            tee: TeeKind::SevSnp,
            ..
        }
    ));
}

#[test]
fn real_snp_vectors_verify_but_do_not_bind_rejects() {
    // Real reports chain to AMD's pinned roots, but their REPORT_DATA was not made
    // for this agent key: the only reason for rejection is the binding.
    let a = agent();
    let mut seen = 0;
    for case in common::cases("snp") {
        if !case.expected_valid() || !case.has("vcek.der") {
            continue;
        }
        let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::SevSnp);
        let bundle = EvidenceBundle::new(
            a.verifying_key().to_bytes(),
            [5; 32],
            CpuEvidence::SevSnp {
                report: case.file("report.bin"),
                vek: case.file("vcek.der"),
                intermediate: None,
                ark: None,
            },
            vec![],
        );
        b.evidence.digest = bundle.digest(&RustCrypto);
        let mut v = ReceiptVerifier::new(AwsLc).unwrap();
        let f = v
            .verify(
                &sign(&a, &b),
                Some(&bundle.to_bytes()),
                UnixTime(case.verification_time()),
            )
            .unwrap_err();
        assert_eq!(f.0.len(), 1, "{}: {f}", case.name);
        assert!(
            matches!(f.0[0], ReceiptVerifyError::ReportDataMismatch { .. }),
            "{}: {f}",
            case.name
        );
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} SNP vectors with a VCEK");
}

// ---- the CLI ----

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-receipts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sigil_verify(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (code, json)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn simulated_attested(a: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let key = a.verifying_key().to_bytes();
    let nonce = [7; 32];
    let rd = report_data(
        &RustCrypto,
        &key,
        &gpu_evidence_digest(&RustCrypto, &[]),
        &nonce,
    );
    let sim = SigningKey::from_bytes(&[42; 32]);
    let sb = SimulatedBody::new(
        rd,
        [0; 48],
        SimulatedKey::Ed25519(sim.verifying_key().to_bytes()),
    );
    let sig = sim.sign(&sb.signed_message()).to_bytes().to_vec();
    let report = SimulatedReport {
        body: sb,
        signature: sig,
    }
    .to_bytes();
    let bundle = EvidenceBundle::new(key, nonce, CpuEvidence::Simulated { report }, vec![]);
    let mut b = body(a, EvidenceMode::AttestedKey, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    (sign(a, &b), bundle.to_bytes())
}

#[test]
fn cli_receipt_simulated_works() {
    let (r, b) = simulated_attested(&agent());
    let rp = write("sim.receipt", &r);
    let bp = write("sim.bundle", &b);
    let base = [
        "receipt",
        "--receipt",
        s(&rp),
        "--bundle",
        s(&bp),
        "--at",
        "2027-01-01T00:00:00Z",
        "--format",
        "json",
    ];
    let (code, j) = sigil_verify(&base);
    assert_eq!(code, 1, "{j}");
    assert_eq!(j["verdict"], "rejected");
    assert!(
        j["reasons"][0]
            .as_str()
            .unwrap()
            .contains("allow_simulated")
    );
    let mut allowed = base.to_vec();
    allowed.push("--allow-simulated");
    let (code, j) = sigil_verify(&allowed);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["verdict"], "accepted");
    assert_eq!(j["claims"]["tee"], "simulated");
    assert_eq!(j["claims"]["tier"], 3);
    assert_eq!(j["claims"]["evidence_mode"], "attested-key");
    assert_eq!(j["claims"]["evidence"]["cpu"]["kind"], "simulated");
    assert_eq!(j["claims"]["evidence"]["cpu"]["simulated"], true);
    assert_eq!(j["claims"]["job_id"], "01".repeat(32));

    // Tampered receipt: rejected even with --allow-simulated.
    let mut t = r.clone();
    let n = t.len();
    t[n - 1] ^= 1; // a signature bit
    let tp = write("tampered.receipt", &t);
    let mut args = allowed.clone();
    args[2] = s(&tp);
    let (code, j) = sigil_verify(&args);
    assert_eq!(code, 1, "{j}");
    assert!(j["reasons"][0].as_str().unwrap().contains("signature"));

    // Unreadable input is an error (exit 2), not a verdict.
    let (code, _) = sigil_verify(&[
        "receipt",
        "--receipt",
        "/nonexistent/receipt",
        "--at",
        "2027-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn cli_output_inclusion_works() {
    let a = agent();
    let outputs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"result.json".to_vec(), b"{\"answer\":42}".to_vec()),
        (b"logs/stdout".to_vec(), b"hello\n".to_vec()),
        (b"model.bin".to_vec(), vec![0u8; 1000]),
    ];
    let tree = OutputTree::new(
        &RustCrypto,
        outputs
            .iter()
            .map(|(n, c)| (n.clone(), RustCrypto.sha256(c))),
    )
    .unwrap();
    let mut b = body(&a, EvidenceMode::None, TeeKind::None);
    b.tier = 1;
    b.result_commitment = tree.root(&RustCrypto);
    b.output_count = tree.len();
    let rp = write("out.receipt", &sign(&a, &b));
    let proof = tree.prove(&RustCrypto, b"result.json").unwrap();
    let pp = write("result.proof", &proof.to_bytes());
    let fp = write("result.json", &outputs[0].1);
    let (code, j) = sigil_verify(&[
        "output",
        "--receipt",
        s(&rp),
        "--name",
        "result.json",
        "--file",
        s(&fp),
        "--proof",
        s(&pp),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["claims"]["output_count"], 3);
    let other = write("other.json", b"{\"answer\":43}");
    let (code, j) = sigil_verify(&[
        "output",
        "--receipt",
        s(&rp),
        "--name",
        "result.json",
        "--file",
        s(&other),
        "--proof",
        s(&pp),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{j}");
    assert!(
        j["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not under the result commitment")
    );

    // The tier-1 receipt itself verifies without a bundle.
    let (code, j) = sigil_verify(&[
        "receipt",
        "--receipt",
        s(&rp),
        "--at",
        "2027-01-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{j}");
}

#[test]
fn real_tdx_vectors_verify_but_do_not_bind_rejects() {
    // Real quotes with their collateral verify to Intel's pinned root; their
    // REPORTDATA was not made for this agent key, which is the only reason left.
    let a = agent();
    let mut seen = 0;
    for case in common::cases("tdx") {
        if !case.expected_valid() || !case.has("collateral.json") || case.name.starts_with("sgx") {
            continue;
        }
        let make = |collateral_json: Option<Vec<u8>>| {
            let mut b = body(&a, EvidenceMode::AttestedKey, TeeKind::Tdx);
            let bundle = EvidenceBundle::new(
                a.verifying_key().to_bytes(),
                [5; 32],
                CpuEvidence::Tdx {
                    quote: case.file("quote.bin"),
                    collateral_json,
                },
                vec![],
            );
            b.evidence.digest = bundle.digest(&RustCrypto);
            (sign(&a, &b), bundle.to_bytes())
        };
        let now = UnixTime(case.verification_time());
        let (r, b) = make(Some(case.file("collateral.json")));
        let mut v = ReceiptVerifier::new(AwsLc).unwrap();
        let f = v.verify(&r, Some(&b), now).unwrap_err();
        assert_eq!(f.0.len(), 1, "{}: {f}", case.name);
        assert!(
            matches!(
                f.0[0],
                ReceiptVerifyError::ReportDataMismatch {
                    tee: TeeKind::Tdx,
                    ..
                }
            ),
            "{}: {f}",
            case.name
        );
        let o = check_receipt(&mut v, &r, Some(&b), &Policy::default(), now);
        let c = o.claims.unwrap().evidence.unwrap();
        assert!(matches!(c.cpu, Some(CpuClaims::Tdx(_))));
        // Without collateral the quote cannot be verified offline.
        let (r, b) = make(None);
        let f = v.verify(&r, Some(&b), now).unwrap_err();
        assert!(
            f.any(|e| matches!(e, ReceiptVerifyError::TdxCollateralMissing)),
            "{f}"
        );
        seen += 1;
    }
    assert!(seen >= 1, "no valid TDX vector with collateral");
}

// ---- NVIDIA GPUs in the bundle (version 2: RIMs and OCSP responses) ----

use nvgpu_support::{
    DevicePki, ReportSpec, RimPki, RimPkiExt, build_report, build_rim, golden_for, ocsp_response,
};

/// The bundle entry of a device: `spec`'s report signed by `key`, with its chain.
fn device_entry(
    spec: &ReportSpec,
    key: &p384::ecdsa::SigningKey,
    chain: Vec<Vec<u8>>,
    uuid: &str,
) -> GpuEvidence {
    let chain: Vec<pem::Pem> = chain
        .into_iter()
        .map(|d| pem::Pem::new("CERTIFICATE", d))
        .collect();
    GpuEvidence {
        report: build_report(spec, key),
        cert_chain_pem: pem::encode_many(&chain),
        nonce: spec.nonce,
        uuid: uuid.into(),
    }
}

/// A test GPU (device PKI) and a test RIM signer, beside the synthetic SNP platform.
struct GpuWorld {
    snp: SnpPlatform,
    dev: DevicePki,
    rim: RimPki,
}

impl GpuWorld {
    fn new() -> Self {
        Self {
            snp: snp_platform(),
            dev: DevicePki::new(nvgpu_support::ChainSpec::default()),
            rim: RimPki::new(),
        }
    }

    fn verifier<C: Crypto + Clone>(&self, c: C) -> ReceiptVerifier<C> {
        ReceiptVerifier::with_verifiers(
            SnpVerifier::with_trust_store(c.clone(), self.snp.trust.clone()),
            TdxVerifier::new(c.clone()).unwrap(),
            NvGpuVerifier::with_roots(c, &self.dev.root, &self.rim.root).unwrap(),
        )
    }

    fn spec(gpu_nonce: [u8; 32]) -> ReportSpec {
        ReportSpec {
            nonce: gpu_nonce,
            ..ReportSpec::default()
        }
    }

    /// The driver and VBIOS RIMs whose golden values are the report's.
    fn rims(&self, spec: &ReportSpec) -> Vec<Vec<u8>> {
        self.rim.matching_rims(spec)
    }

    /// OCSP responses for the device intermediate and the RIM signer.
    fn ocsp(&self, status: fn() -> CertStatusDer) -> Vec<Vec<u8>> {
        let t = NOW.0 - 3600;
        vec![
            ocsp_response(
                &self.dev.root_key.sk,
                None,
                &self.dev.inter,
                &self.dev.root,
                status(),
                t,
                Some(t + 7 * 86400),
            ),
            ocsp_response(
                &self.rim.root_key.sk,
                None,
                &self.rim.signer,
                &self.rim.root,
                CertStatusDer::Good(der::asn1::Null),
                t,
                Some(t + 7 * 86400),
            ),
        ]
    }

    fn gpu_entry(&self, spec: &ReportSpec) -> GpuEvidence {
        device_entry(
            spec,
            &self.dev.leaf_key.sk,
            self.dev.chain(),
            "GPU-11111111-2222-3333-4444-555555555555",
        )
    }

    /// An attested-key receipt whose SNP report binds the GPU evidence, with
    /// `collateral` in the bundle (`version` 1 or 2).
    fn receipt(
        &self,
        a: &SigningKey,
        collateral: GpuCollateral,
        version: u8,
    ) -> (Vec<u8>, Vec<u8>) {
        let gpus = vec![self.gpu_entry(&Self::spec(Self::gpu_nonce(a)))];
        self.receipt_for(a, gpus, collateral, version)
    }

    /// The GPU nonce of `a`'s bundles (nonce [5; 32]).
    fn gpu_nonce(a: &SigningKey) -> [u8; 32] {
        attestation_verifier::binding::gpu_nonce(
            &RustCrypto,
            &a.verifying_key().to_bytes(),
            &[5; 32],
        )
    }

    /// [`Self::receipt`] with the GPU entries given.
    fn receipt_for(
        &self,
        a: &SigningKey,
        gpus: Vec<GpuEvidence>,
        collateral: GpuCollateral,
        version: u8,
    ) -> (Vec<u8>, Vec<u8>) {
        let key = a.verifying_key().to_bytes();
        let nonce = [5; 32];
        let rd = report_data(
            &RustCrypto,
            &key,
            &gpu_evidence_digest(&RustCrypto, &gpus),
            &nonce,
        );
        let mut bundle = EvidenceBundle::new(
            key,
            nonce,
            CpuEvidence::SevSnp {
                report: snp_report(&self.snp.vcek_key, &rd),
                vek: self.snp.vcek.clone(),
                intermediate: None,
                ark: None,
            },
            gpus,
        )
        .with_gpu_collateral(collateral);
        bundle.version = version;
        let mut b = body(a, EvidenceMode::AttestedKey, TeeKind::SevSnp);
        b.evidence.digest = bundle.digest(&RustCrypto);
        (sign(a, &b), bundle.to_bytes())
    }

    fn full_collateral(&self, a: &SigningKey) -> GpuCollateral {
        let gn = attestation_verifier::binding::gpu_nonce(
            &RustCrypto,
            &a.verifying_key().to_bytes(),
            &[5; 32],
        );
        GpuCollateral {
            rims: self.rims(&Self::spec(gn)),
            ocsp: self.ocsp(|| CertStatusDer::Good(der::asn1::Null)),
        }
    }
}

#[test]
fn gpu_bundle_with_rims_and_ocsp_works() {
    let w = GpuWorld::new();
    let a = agent();
    let (r, b) = w.receipt(&a, w.full_collateral(&a), 2);
    let strict =
        Policy::from_toml("[gpu]\nocsp_required = true\nallowed_modes = [\"spt\"]\n").unwrap();
    for (name, outcome) in [
        (
            "aws-lc",
            check_receipt(&mut w.verifier(AwsLc), &r, Some(&b), &strict, NOW),
        ),
        (
            "rustcrypto",
            check_receipt(&mut w.verifier(RustCrypto), &r, Some(&b), &strict, NOW),
        ),
    ] {
        assert!(outcome.accepted(), "{name}: {:?}", outcome.reasons);
        let c = outcome.claims.unwrap().evidence.unwrap();
        assert_eq!(c.bundle_version, 2);
        assert_eq!((c.gpu_rims, c.gpu_ocsp_responses), (2, 2));
        let g = c.gpus[0].report.as_ref().unwrap();
        assert_eq!(g.chip.as_deref(), Some("GH100"));
        let rim = g.rim.as_ref().unwrap();
        assert!(rim.matched && rim.driver.is_some() && rim.vbios.is_some());
        assert!(g.ocsp.as_ref().unwrap().iter().all(|o| o.status == "good"));
    }
    // The verified GPU evidence is returned with the bundle.
    let v = w.verifier(RustCrypto).verify(&r, Some(&b), NOW).unwrap();
    assert_eq!(v.evidence.as_ref().unwrap().gpus.len(), 1);
    // The responses were produced an hour before: a policy taking at most an hour accepts
    // them, one taking at most 59 minutes names every stale response.
    for (max, accepted) in [(3_600, true), (3_599, false)] {
        let p = Policy::from_toml(&format!("[gpu]\nocsp_max_age_secs = {max}\n")).unwrap();
        let out = check_receipt(&mut w.verifier(RustCrypto), &r, Some(&b), &p, NOW);
        assert_eq!(out.accepted(), accepted, "{max}: {:?}", out.reasons);
        if !accepted {
            let stale = out
                .reasons
                .iter()
                .filter(|r| r.contains("gpu.ocsp_max_age_secs") && r.contains("3600 s old"))
                .count();
            // The device intermediate, and the signer of each of the two RIMs.
            assert_eq!(stale, 3, "{:?}", out.reasons);
        }
    }
}

/// Two GPUs of one board whose VBIOS versions differ (one updated, one not): each is
/// compared with its own VBIOS RIM and the shared driver RIM.
struct MixedBoard {
    w: GpuWorld,
    a: SigningKey,
    gpus: Vec<GpuEvidence>,
    /// VBIOS RIM of GPU 0, driver RIM, VBIOS RIM of GPU 1.
    rims: Vec<Vec<u8>>,
}

impl MixedBoard {
    const OTHER_VBIOS: [u8; 8] = [0x00, 0xA5, 0x00, 0x96, 0x01, 0, 0, 0]; // 96.00.a5.00.01

    fn new() -> Self {
        let w = GpuWorld::new();
        let a = agent();
        let first = GpuWorld::spec(GpuWorld::gpu_nonce(&a));
        let second = ReportSpec {
            vbios: Self::OTHER_VBIOS,
            // Another VBIOS measures differently (RIM indices 0..32); the driver's
            // measurements (32..64) are the same on both.
            measurements: ReportSpec::default()
                .measurements
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    if i < 32 {
                        [0xA0 | (i as u8 & 0x0f); 48]
                    } else {
                        *m
                    }
                })
                .collect(),
            ..first.clone()
        };
        let (key, chain) = w.dev.sibling(nvgpu_support::ChainSpec::default());
        let gpus = vec![
            w.gpu_entry(&first),
            device_entry(
                &second,
                &key.sk,
                chain,
                "GPU-66666666-7777-8888-9999-000000000000",
            ),
        ];
        let mut rims = w.rims(&first);
        rims.push(w.rim.vbios_rim("96.00.A5.00.01", &second));
        Self { w, a, gpus, rims }
    }

    fn appraise(
        &self,
        rims: Vec<Vec<u8>>,
    ) -> attestation_verifier::Outcome<attestation_verifier::ReceiptClaims> {
        self.appraise_with(rims, "")
    }

    /// As `appraise`, with more `[gpu]` rows.
    fn appraise_with(
        &self,
        rims: Vec<Vec<u8>>,
        gpu_rows: &str,
    ) -> attestation_verifier::Outcome<attestation_verifier::ReceiptClaims> {
        let collateral = GpuCollateral {
            rims,
            ocsp: self.w.ocsp(|| CertStatusDer::Good(der::asn1::Null)),
        };
        let (r, b) = self
            .w
            .receipt_for(&self.a, self.gpus.clone(), collateral, 2);
        let strict =
            Policy::from_toml(&format!("[gpu]\nocsp_required = true\n{gpu_rows}\n")).unwrap();
        check_receipt(&mut self.w.verifier(AwsLc), &r, Some(&b), &strict, NOW)
    }
}

/// `gpu.min_count`, `gpu.models` and `gpu.require_confidential_mode` on a
/// two-GPU bundle (`evaluate_bundle` counts the bundle's verified GPU reports).
#[test]
fn gpu_bundle_count_models_and_mode_works() {
    let m = MixedBoard::new();
    let ok = m.appraise_with(
        m.rims.clone(),
        "min_count = 2\nmodels = [\"GH100\"]\nrequire_confidential_mode = true",
    );
    assert!(ok.accepted(), "{:?}", ok.reasons);
    let few = m.appraise_with(m.rims.clone(), "min_count = 3");
    assert_eq!(few.reasons.len(), 1, "{:?}", few.reasons);
    assert!(
        few.reasons[0].starts_with("policy gpu.min_count:"),
        "{:?}",
        few.reasons
    );
    let model = m.appraise_with(m.rims.clone(), "models = [\"GB100\"]");
    assert_eq!(model.reasons.len(), 2, "{:?}", model.reasons);
    assert!(
        model
            .reasons
            .iter()
            .all(|r| r.starts_with("policy gpu.models:")),
        "{:?}",
        model.reasons
    );
}

#[test]
fn gpu_bundle_with_two_vbios_versions_works() {
    let m = MixedBoard::new();
    let o = m.appraise(m.rims.clone());
    assert!(o.accepted(), "{:?}", o.reasons);
    let c = o.claims.unwrap().evidence.unwrap();
    assert_eq!(c.gpu_rims, 3);
    for g in &c.gpus {
        let rim = g.report.as_ref().unwrap().rim.as_ref().unwrap();
        assert!(
            rim.matched && rim.driver.is_some() && rim.vbios.is_some(),
            "{rim:?}"
        );
    }
    let versions: Vec<_> = c
        .gpus
        .iter()
        .map(|g| {
            g.report
                .as_ref()
                .unwrap()
                .rim
                .as_ref()
                .unwrap()
                .vbios
                .clone()
        })
        .collect();
    assert_ne!(versions[0], versions[1]);
}

#[test]
fn gpu_bundle_with_rim_for_no_gpu_rejects() {
    let m = MixedBoard::new();
    // A third VBIOS version, on neither GPU: each says why it is not for it.
    let mut rims = m.rims.clone();
    rims.push(
        m.w.rim
            .vbios_rim("96.00.B0.00.01", &GpuWorld::spec(GpuWorld::gpu_nonce(&m.a))),
    );
    let o = m.appraise(rims);
    assert!(!o.accepted());
    for gpu in ["GPU 0 (", "GPU 1 ("] {
        assert!(
            o.reasons.iter().any(|r| r.contains(gpu)
                && r.contains("96.00.B0.00.01")
                && r.contains("matches neither")),
            "{gpu}: {:?}",
            o.reasons
        );
    }
    // A GPU whose VBIOS RIM is missing is not covered by the other GPU's.
    let o = m.appraise(m.rims[..2].to_vec());
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().all(|r| !r.contains("GPU 0 ("))
            && o.reasons.iter().any(|r| r.contains("GPU 1 (")),
        "{:?}",
        o.reasons
    );
    // GPU 1's measurements against GPU 0's golden values, under GPU 1's version: mismatch.
    let mut rims = m.rims[..2].to_vec();
    rims.push(
        m.w.rim
            .vbios_rim("96.00.A5.00.01", &GpuWorld::spec(GpuWorld::gpu_nonce(&m.a))),
    );
    let o = m.appraise(rims);
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().any(|r| r.contains("GPU 1 (")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn gpu_bundle_without_rims_rejects() {
    // Genuine GPU evidence, but no golden values to compare it with: the default
    // policy wants verified driver and VBIOS RIMs.
    let w = GpuWorld::new();
    let a = agent();
    let (r, b) = w.receipt(&a, GpuCollateral::default(), 2);
    let o = check_receipt(
        &mut w.verifier(AwsLc),
        &r,
        Some(&b),
        &Policy::default(),
        NOW,
    );
    assert!(!o.accepted());
    assert!(
        o.reasons
            .iter()
            .all(|x| x.contains("gpu.rim_match_required")),
        "{:?}",
        o.reasons
    );
    // The evidence itself verifies.
    assert!(w.verifier(AwsLc).verify(&r, Some(&b), NOW).is_ok());
}

#[test]
fn gpu_bundle_version_1_still_verifies_works() {
    // Version 1 cannot carry RIMs: its GPU evidence is verified and appraised
    // like a version-2 bundle without collateral.
    let w = GpuWorld::new();
    let a = agent();
    let (r, b) = w.receipt(&a, GpuCollateral::default(), 1);
    assert_eq!(b[4], 1);
    let lax = Policy::from_toml("[gpu]\nrim_match_required = false\n").unwrap();
    let o = check_receipt(&mut w.verifier(AwsLc), &r, Some(&b), &lax, NOW);
    assert!(o.accepted(), "{:?}", o.reasons);
    assert_eq!(o.claims.unwrap().evidence.unwrap().bundle_version, 1);
    let o = check_receipt(
        &mut w.verifier(AwsLc),
        &r,
        Some(&b),
        &Policy::default(),
        NOW,
    );
    assert!(!o.accepted());
}

#[test]
fn gpu_bundle_revoked_intermediate_rejects() {
    let w = GpuWorld::new();
    let a = agent();
    let mut c = w.full_collateral(&a);
    c.ocsp = w.ocsp(|| {
        CertStatusDer::Revoked(attestation_verifier::verify::ocsp::RevokedInfo {
            revocation_time: der::asn1::GeneralizedTime::from_unix_duration(
                core::time::Duration::from_secs(1_800_000_000),
            )
            .unwrap(),
            revocation_reason: None,
        })
    });
    let (r, b) = w.receipt(&a, c, 2);
    let f = w.verifier(AwsLc).verify(&r, Some(&b), NOW).unwrap_err();
    assert!(
        f.any(|e| matches!(
            e,
            ReceiptVerifyError::Gpu {
                index: 0,
                source: NvGpuVerifyError::Revoked { .. },
                ..
            }
        )),
        "{f}"
    );
}

#[test]
fn gpu_bundle_stale_ocsp_or_mismatched_rim_rejects() {
    let w = GpuWorld::new();
    let a = agent();
    let (r, b) = w.receipt(&a, w.full_collateral(&a), 2);
    // A month later the OCSP responses are stale: an invalid supplied response fails.
    let later = UnixTime(NOW.0 + 30 * 86400);
    let f = w.verifier(AwsLc).verify(&r, Some(&b), later).unwrap_err();
    assert!(
        f.any(|e| matches!(
            e,
            ReceiptVerifyError::Gpu {
                source: NvGpuVerifyError::Ocsp(_),
                ..
            }
        )),
        "{f}"
    );
    // RIMs whose golden values differ from the report's measurements.
    let certs: [&[u8]; 2] = [&w.rim.signer, &w.rim.root];
    let other = ReportSpec {
        measurements: vec![[0xEE; 48]; 64],
        ..ReportSpec::default()
    };
    let mut c = w.full_collateral(&a);
    c.rims = vec![
        build_rim(
            "96.00.9F.00.01",
            "GH100",
            &golden_for(&other, 0..32),
            &w.rim.signer_key.sk,
            &certs,
        ),
        build_rim(
            other.driver,
            "GH100",
            &golden_for(&other, 32..64),
            &w.rim.signer_key.sk,
            &certs,
        ),
    ];
    let (r, b) = w.receipt(&a, c, 2);
    let o = check_receipt(
        &mut w.verifier(AwsLc),
        &r,
        Some(&b),
        &Policy::default(),
        NOW,
    );
    assert!(!o.accepted());
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("gpu.rim_match_required")),
        "{:?}",
        o.reasons
    );
    // A RIM edited inside the bundle (and the receipt re-signed over it): its signature fails.
    let mut c = w.full_collateral(&a);
    let text = String::from_utf8(c.rims[1].clone()).unwrap();
    c.rims[1] = text
        .replacen("active=\"True\"", "active=\"False\"", 1)
        .into_bytes();
    let (r, b) = w.receipt(&a, c, 2);
    let f = w.verifier(AwsLc).verify(&r, Some(&b), NOW).unwrap_err();
    assert!(
        f.any(|e| matches!(
            e,
            ReceiptVerifyError::Gpu {
                source: NvGpuVerifyError::Rim { .. },
                ..
            }
        )),
        "{f}"
    );
}

#[test]
fn gpu_reports_from_one_device_twice_rejects() {
    let w = GpuWorld::new();
    let a = agent();
    let key = a.verifying_key().to_bytes();
    let nonce = [5; 32];
    let gn = attestation_verifier::binding::gpu_nonce(&RustCrypto, &key, &nonce);
    let g = w.gpu_entry(&GpuWorld::spec(gn));
    let gpus = vec![g.clone(), g];
    let rd = report_data(
        &RustCrypto,
        &key,
        &gpu_evidence_digest(&RustCrypto, &gpus),
        &nonce,
    );
    let bundle = EvidenceBundle::new(
        key,
        nonce,
        CpuEvidence::SevSnp {
            report: snp_report(&w.snp.vcek_key, &rd),
            vek: w.snp.vcek.clone(),
            intermediate: None,
            ark: None,
        },
        gpus,
    )
    .with_gpu_collateral(w.full_collateral(&a));
    let f = w
        .verifier(AwsLc)
        .verify_bundle(&bundle.to_bytes(), Some(&key), Some(&nonce), NOW)
        .unwrap_err();
    assert!(
        f.any(|e| matches!(
            e,
            ReceiptVerifyError::Gpu {
                index: 1,
                source: NvGpuVerifyError::DuplicateDevice { .. },
                ..
            }
        )),
        "{f}"
    );
}

/// A simulated-CPU bundle carrying the real Hopper report of `case` and a real
/// driver RIM; the GPU entry claims the derived nonce, which the recorded report
/// was never made for.
fn real_gpu_bundle(a: &SigningKey, case: &common::Case, rims: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let key = a.verifying_key().to_bytes();
    let nonce = [7; 32];
    let gn = attestation_verifier::binding::gpu_nonce(&RustCrypto, &key, &nonce);
    let gpus = vec![GpuEvidence {
        report: case.file("report.bin"),
        cert_chain_pem: String::from_utf8(case.file("cert_chain.pem")).unwrap(),
        nonce: gn,
        uuid: "GPU-real".into(),
    }];
    let rd = report_data(
        &RustCrypto,
        &key,
        &gpu_evidence_digest(&RustCrypto, &gpus),
        &nonce,
    );
    let sim = SigningKey::from_bytes(&[42; 32]);
    let sb = SimulatedBody::new(
        rd,
        [0; 48],
        SimulatedKey::Ed25519(sim.verifying_key().to_bytes()),
    );
    let sig = sim.sign(&sb.signed_message()).to_bytes().to_vec();
    let report = SimulatedReport {
        body: sb,
        signature: sig,
    }
    .to_bytes();
    let bundle = EvidenceBundle::new(key, nonce, CpuEvidence::Simulated { report }, gpus)
        .with_gpu_collateral(GpuCollateral { rims, ocsp: vec![] });
    let mut b = body(a, EvidenceMode::AttestedKey, TeeKind::Simulated);
    b.evidence.digest = bundle.digest(&RustCrypto);
    (sign(a, &b), bundle.to_bytes())
}

fn real_driver_rim() -> Vec<u8> {
    let p = common::vectors_dir().join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn real_gpu_vector_verifies_but_does_not_bind_rejects() {
    // NVIDIA's recorded report chains to the pinned Device Identity CA, its FWID
    // and signature verify, and the real RIM verifies to the pinned RIM root; what
    // fails is the binding (the report's nonce is not this bundle's GPU nonce) and
    // the RIM's applicability (it describes driver 550.144.03, the report 550.90.07).
    let a = agent();
    let case = common::cases("nvgpu")
        .into_iter()
        .find(|c| c.name == "hopper-nvtrust-sample")
        .unwrap();
    let (r, b) = real_gpu_bundle(&a, &case, vec![real_driver_rim()]);
    let now = UnixTime(case.verification_time());
    let f_aws = ReceiptVerifier::new(AwsLc)
        .unwrap()
        .verify(&r, Some(&b), now);
    let f_rc = ReceiptVerifier::new(RustCrypto)
        .unwrap()
        .verify(&r, Some(&b), now);
    for f in [f_aws.unwrap_err(), f_rc.unwrap_err()] {
        assert_eq!(f.0.len(), 2, "{f}");
        assert!(
            f.any(|e| matches!(
                e,
                ReceiptVerifyError::Gpu {
                    source: NvGpuVerifyError::NonceMismatch { .. },
                    ..
                }
            )),
            "{f}"
        );
        assert!(
            f.any(|e| matches!(
                e,
                ReceiptVerifyError::Gpu {
                    source: NvGpuVerifyError::RimNotApplicable { .. },
                    ..
                }
            )),
            "{f}"
        );
    }

    // Through the binary: the same verdict, with the report's claims.
    let rp = write("gpu.receipt", &r);
    let bp = write("gpu.bundle", &b);
    let (code, j) = sigil_verify(&[
        "receipt",
        "--receipt",
        s(&rp),
        "--bundle",
        s(&bp),
        "--allow-simulated",
        "--at",
        "2025-06-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{j}");
    let reasons = j["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{j}");
    assert!(
        reasons[0].as_str().unwrap().starts_with("GPU 0 (GPU-real)"),
        "{j}"
    );
    let ev = &j["claims"]["evidence"];
    assert_eq!(ev["bundle_version"], 5);
    assert_eq!(ev["gpu_rims"], 1);
    assert_eq!(ev["gpus"][0]["report"]["driver_version"], "550.90.07");
}
