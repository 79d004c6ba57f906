//! Receipt costs: the ed25519 receipt signature on both backends, a whole
//! attested-key receipt over simulated evidence, a real SEV-SNP bundle (chain
//! cached: the per-receipt cost in fresh-quote mode), and the output hash tree.
//!
//! `cargo bench -p attestation-verifier --bench receipt`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // bench

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use attestation_verifier::binding::report_data;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::merkle::{OutputTree, verify_inclusion};
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, TeeKind, Usage,
};
use attestation_verifier::time::UnixTime;
use attestation_verifier::{ReceiptVerifier, check_receipt};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};

fn body(provider: [u8; 32], mode: EvidenceMode, tee: TeeKind, digest: [u8; 32]) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider,
        tier: 3,
        result_commitment: [3; 32],
        output_count: 1,
        started_at_ms: 1,
        finished_at_ms: 2,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef { mode, tee, digest },
    }
}

fn bench(c: &mut Criterion) {
    let agent = SigningKey::from_bytes(&[21; 32]);
    let key = agent.verifying_key().to_bytes();
    let sign = |b: &ReceiptBody| {
        SignedReceipt::new(b, agent.sign(&b.digest(&RustCrypto)).to_bytes()).to_bytes()
    };

    // Signature only (what the chain pays per receipt in attested-key mode).
    let mut plain_body = body(key, EvidenceMode::None, TeeKind::None, [0; 32]);
    plain_body.tier = 1;
    let plain = sign(&plain_body);
    for (name, crypto) in [
        ("aws-lc-rs", &AwsLc as &dyn Crypto),
        ("rustcrypto", &RustCrypto as &dyn Crypto),
    ] {
        c.bench_function(&format!("receipt signature / {name}"), |b| {
            b.iter(|| {
                SignedReceipt::decode_bytes(black_box(&plain))
                    .unwrap()
                    .verify(crypto)
                    .unwrap()
            })
        });
    }

    // Whole attested-key receipt over simulated evidence.
    let sim = SigningKey::from_bytes(&[42; 32]);
    let rd = report_data(&RustCrypto, &key, &[0; 32], &[7; 32]);
    let sb = SimulatedBody::new(
        rd,
        [0; 48],
        SimulatedKey::Ed25519(sim.verifying_key().to_bytes()),
    );
    let sig = sim.sign(&sb.signed_message()).to_bytes().to_vec();
    let bundle = EvidenceBundle::new(
        key,
        [7; 32],
        CpuEvidence::Simulated {
            report: SimulatedReport {
                body: sb,
                signature: sig,
            }
            .to_bytes(),
        },
        vec![],
    );
    let r = sign(&body(
        key,
        EvidenceMode::AttestedKey,
        TeeKind::Simulated,
        bundle.digest(&RustCrypto),
    ));
    let b = bundle.to_bytes();
    let allow = Policy {
        allow_simulated: true,
        ..Policy::default()
    };
    let mut v = ReceiptVerifier::new(AwsLc).unwrap();
    c.bench_function("receipt + simulated bundle / aws-lc-rs", |bn| {
        bn.iter(|| {
            assert!(check_receipt(&mut v, black_box(&r), Some(&b), &allow, UnixTime(0)).accepted())
        })
    });

    // A real SEV-SNP bundle (binding fails, everything else is checked), chain cached.
    let case = common::cases("snp")
        .into_iter()
        .find(|c| c.name == "milan-v3-oak-oc-release")
        .unwrap();
    let snp = EvidenceBundle::new(
        key,
        [7; 32],
        CpuEvidence::SevSnp {
            report: case.file("report.bin"),
            vek: case.file("vcek.der"),
            intermediate: None,
            ark: None,
        },
        vec![],
    );
    let sr = sign(&body(
        key,
        EvidenceMode::AttestedKey,
        TeeKind::SevSnp,
        snp.digest(&RustCrypto),
    ));
    let sbytes = snp.to_bytes();
    let now = UnixTime(case.verification_time());
    for (name, mut v) in [
        (
            "aws-lc-rs",
            ReceiptVerifier::new(&AwsLc as &dyn Crypto).unwrap(),
        ),
        (
            "rustcrypto",
            ReceiptVerifier::new(&RustCrypto as &dyn Crypto).unwrap(),
        ),
    ] {
        let _ = v.verify(&sr, Some(&sbytes), now);
        c.bench_function(&format!("receipt + SEV-SNP bundle, warm / {name}"), |bn| {
            bn.iter(|| v.verify(black_box(&sr), Some(&sbytes), now).is_err())
        });
    }

    // Output tree: 1000 outputs, root and one inclusion proof.
    let outputs: Vec<(Vec<u8>, [u8; 32])> = (0..1000u32)
        .map(|i| {
            (
                format!("out/{i:05}").into_bytes(),
                RustCrypto.sha256(&i.to_le_bytes()),
            )
        })
        .collect();
    c.bench_function("output tree root / 1000 outputs / aws-lc-rs", |bn| {
        bn.iter(|| {
            OutputTree::new(&AwsLc, black_box(outputs.clone()))
                .unwrap()
                .root(&AwsLc)
        })
    });
    let tree = OutputTree::new(&AwsLc, outputs.clone()).unwrap();
    let root = tree.root(&AwsLc);
    let proof = tree.prove(&AwsLc, &outputs[417].0).unwrap();
    c.bench_function("inclusion proof check / 1000 outputs / aws-lc-rs", |bn| {
        bn.iter(|| {
            verify_inclusion(
                &AwsLc,
                &root,
                1000,
                &outputs[417].0,
                &outputs[417].1,
                black_box(&proof),
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
