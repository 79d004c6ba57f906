//! SEV-SNP verification cost, in one run: a bare P-384 signature check (the floor),
//! this crate cold (chain checked) and warm (verified chain cached by certificate
//! hash) on both backends, and the `sev` crate verifying the same report and chain.
//!
//! `cargo bench -p attestation-verifier --bench snp`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use attestation_verifier::crypto::{AwsLc, Crypto, EcdsaAlg, RustCrypto};
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use attestation_verifier::verify::x509::Cert;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sev::certs::snp::{Chain, Verifiable};
use sev::parser::ByteParser;

const CASE: &str = "milan-v3-oak-oc-release";

fn pem_der(b: Vec<u8>) -> Vec<u8> {
    pem::parse(&b).map(|p| p.into_contents()).unwrap_or(b)
}

fn bench(c: &mut Criterion) {
    let case = common::cases("snp")
        .into_iter()
        .find(|c| c.name == CASE)
        .unwrap();
    let report = case.file("report.bin");
    let vek = case.file("vcek.der");
    let ask = pem_der(case.file("ask.pem"));
    let ark = pem_der(case.file("ark.pem"));
    let now = UnixTime(case.verification_time());
    let parsed = parse_snp_report(&report).unwrap();
    let collateral = SnpCollateral {
        vek: &vek,
        intermediate: Some(&ask),
        ark: Some(&ark),
        crl: None,
    };

    let mut g = c.benchmark_group("snp");

    // The floor: one P-384 verify of the same bytes with the same key.
    let key = Cert::from_der("VCEK", &vek).unwrap().public_key().to_vec();
    let sig = parsed.signature_rs();
    for (name, crypto) in [
        ("aws-lc-rs", &AwsLc as &dyn Crypto),
        ("rustcrypto", &RustCrypto),
    ] {
        assert!(
            crypto
                .verify_ecdsa(EcdsaAlg::P384Sha384, &key, &parsed.signed, &sig)
                .is_ok()
        );
        g.bench_function(format!("floor_p384_verify/{name}"), |b| {
            b.iter(|| {
                crypto.verify_ecdsa(EcdsaAlg::P384Sha384, &key, black_box(&parsed.signed), &sig)
            })
        });
    }

    macro_rules! ours {
        ($name:literal, $crypto:expr) => {{
            let mut warm = SnpVerifier::new($crypto).unwrap();
            warm.verify(&parsed, &collateral, now).unwrap();
            g.bench_function(concat!("warm/", $name), |b| {
                b.iter(|| {
                    let r = parse_snp_report(black_box(&report)).unwrap();
                    warm.verify(&r, &collateral, now).unwrap();
                })
            });
            g.bench_function(concat!("cold/", $name), |b| {
                b.iter_batched(
                    || SnpVerifier::new($crypto).unwrap(),
                    |mut v| {
                        let r = parse_snp_report(black_box(&report)).unwrap();
                        v.verify(&r, &collateral, now).unwrap();
                    },
                    BatchSize::SmallInput,
                )
            });
        }};
    }
    ours!("aws-lc-rs", AwsLc);
    ours!("rustcrypto", RustCrypto);

    // The `sev` crate (RustCrypto backend): ARK self-signature, ARK->ASK->VCEK, report.
    let chain = Chain::from_der(&ark, &ask, &vek).unwrap();
    let sev_report = sev::firmware::guest::AttestationReport::from_bytes(&report).unwrap();
    (&chain, &sev_report).verify().unwrap();
    g.bench_function("sev_crate/chain_and_report", |b| {
        b.iter(|| {
            let r =
                sev::firmware::guest::AttestationReport::from_bytes(black_box(&report)).unwrap();
            (&chain, &r).verify().unwrap();
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
