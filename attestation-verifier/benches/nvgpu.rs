//! NVIDIA GPU report verification cost, in one run: a bare P-384 signature
//! check of the report (the floor), this crate warm (device chain cached by
//! certificate hash: parse, FWID and nonce checks, one signature) and cold
//! (chain checked: five more P-384 verifies) on both backends, and a warm
//! five-GPU HGX bundle.
//!
//! `cargo bench -p attestation-verifier --bench nvgpu`

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

use attestation_verifier::crypto::{AwsLc, Crypto, EcdsaAlg, RustCrypto};
use attestation_verifier::evidence::nvgpu::{parse_nvgpu_report, split_pem_chain};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{GpuInput, NvGpuCollateral, NvGpuVerifier};
use attestation_verifier::verify::x509::Cert;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const CASE: &str = "hopper-nvtrust-sample";

fn load(case: &common::Case) -> (Vec<u8>, Vec<Vec<u8>>, [u8; 32]) {
    let chain =
        split_pem_chain(std::str::from_utf8(&case.file("cert_chain.pem")).unwrap()).unwrap();
    let nonce = hex::decode(String::from_utf8(case.file("nonce.hex")).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap();
    (case.file("report.bin"), chain, nonce)
}

fn bench(c: &mut Criterion) {
    let cases = common::cases("nvgpu");
    let case = cases.iter().find(|c| c.name == CASE).unwrap();
    let (report, chain, nonce) = load(case);
    let now = UnixTime(case.verification_time());
    let parsed = parse_nvgpu_report(&report).unwrap();
    let collateral = NvGpuCollateral {
        cert_chain: &chain,
        ..Default::default()
    };

    let mut g = c.benchmark_group("nvgpu");

    // The floor: one P-384 verify of the same bytes with the same key.
    let key = Cert::from_der("leaf", &chain[0])
        .unwrap()
        .public_key()
        .to_vec();
    for (name, crypto) in [
        ("aws-lc-rs", &AwsLc as &dyn Crypto),
        ("rustcrypto", &RustCrypto),
    ] {
        assert!(
            crypto
                .verify_ecdsa(
                    EcdsaAlg::P384Sha384,
                    &key,
                    &parsed.signed,
                    &parsed.signature
                )
                .is_ok()
        );
        g.bench_function(format!("floor_p384_verify/{name}"), |b| {
            b.iter(|| {
                crypto.verify_ecdsa(
                    EcdsaAlg::P384Sha384,
                    &key,
                    black_box(&parsed.signed),
                    &parsed.signature,
                )
            })
        });
    }

    macro_rules! ours {
        ($name:literal, $crypto:expr) => {{
            let mut warm = NvGpuVerifier::new($crypto).unwrap();
            warm.verify(&parsed, &collateral, &nonce, now).unwrap();
            g.bench_function(concat!("warm/", $name), |b| {
                b.iter(|| {
                    let r = parse_nvgpu_report(black_box(&report)).unwrap();
                    warm.verify(&r, &collateral, &nonce, now).unwrap();
                })
            });
            g.bench_function(concat!("cold/", $name), |b| {
                b.iter_batched(
                    || NvGpuVerifier::new($crypto).unwrap(),
                    |mut v| {
                        let r = parse_nvgpu_report(black_box(&report)).unwrap();
                        v.verify(&r, &collateral, &nonce, now).unwrap();
                    },
                    BatchSize::SmallInput,
                )
            });
        }};
    }
    ours!("aws-lc-rs", AwsLc);
    ours!("rustcrypto", RustCrypto);

    // A warm HGX bundle: five GPUs of one board, each with its own chain.
    let hgx: Vec<_> = cases
        .iter()
        .filter(|c| c.name.starts_with("hopper-ppcie-hgx-gpu"))
        .map(load)
        .collect();
    let reports: Vec<_> = hgx
        .iter()
        .map(|(r, _, _)| parse_nvgpu_report(r).unwrap())
        .collect();
    let inputs: Vec<GpuInput<'_>> = hgx
        .iter()
        .zip(&reports)
        .map(|((_, chain, nonce), report)| GpuInput {
            report,
            cert_chain: chain,
            nonce: *nonce,
        })
        .collect();
    let mut v = NvGpuVerifier::new(AwsLc).unwrap();
    assert!(
        v.verify_bundle(&inputs, &[], &[], now)
            .iter()
            .all(Result::is_ok)
    );
    g.bench_function(format!("warm_bundle_{}/aws-lc-rs", inputs.len()), |b| {
        b.iter(|| v.verify_bundle(black_box(&inputs), &[], &[], now))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
