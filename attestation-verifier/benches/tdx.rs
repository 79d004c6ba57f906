//! TDX quote verification cost, in one run, on one quote and its collateral
//! (`tdx-v4-dcap-qvl-sample`):
//! - `floor/*`: two bare P-256 verifies (the quote's and the QE report's signatures);
//! - `cold/*`: a verifier with empty caches (built outside the timing, like the SNP
//!   bench): collateral hash, every chain, CRL, JSON and quote check;
//! - `warm/*`: the same verifier again (collateral and platform endorsement cached
//!   by content hash): quote parse, one hash, the quote signature, TCB selection;
//! - `dcap_qvl/ring`: `dcap-qvl` 0.7.1 verifying the same quote with the same collateral.
//!
//! Then the goals as ratios from interleaved rounds (see `paired_ratios`).
//!
//! `cargo bench -p attestation-verifier --bench tdx`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // bench

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use attestation_verifier::crypto::{AwsLc, Crypto, EcdsaAlg, RustCrypto};
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier};
use attestation_verifier::verify::x509::Cert;
use criterion::{BatchSize, Criterion, criterion_group};
use dcap_qvl::QuoteCollateralV3;

const CASE: &str = "tdx-v4-dcap-qvl-sample";

fn bench(c: &mut Criterion) {
    let case = common::cases("tdx")
        .into_iter()
        .find(|c| c.name == CASE)
        .unwrap();
    let quote = case.file("quote.bin");
    let collateral = TdxCollateral::from_json(&case.file("collateral.json")).unwrap();
    let parts = collateral.parts().clone();
    let now = UnixTime(case.verification_time());
    let parsed = parse_tdx_quote(&quote).unwrap();

    let mut g = c.benchmark_group("tdx");

    // The floor: the two P-256 signatures every quote carries.
    let pck = Cert::from_der("PCK", &parsed.pck_chain_der().unwrap()[0]).unwrap();
    let pck_key = pck.public_key().to_vec();
    let att_key = parsed.attestation_key_sec1();
    for (name, crypto) in [
        ("aws-lc-rs", &AwsLc as &dyn Crypto),
        ("rustcrypto", &RustCrypto),
    ] {
        let two = || {
            crypto
                .verify_ecdsa(
                    EcdsaAlg::P256Sha256,
                    &att_key,
                    black_box(&parsed.signed),
                    &parsed.signature,
                )
                .unwrap();
            crypto
                .verify_ecdsa(
                    EcdsaAlg::P256Sha256,
                    &pck_key,
                    black_box(&parsed.qe_report_raw),
                    &parsed.qe_report_signature,
                )
                .unwrap();
        };
        two();
        g.bench_function(format!("floor_two_p256_verifies/{name}"), |b| b.iter(two));
    }

    macro_rules! ours {
        ($name:literal, $crypto:expr) => {{
            let mut warm = TdxVerifier::new($crypto).unwrap();
            warm.verify(&parsed, &collateral, now).unwrap();
            g.bench_function(concat!("warm/", $name), |b| {
                b.iter(|| {
                    let q = parse_tdx_quote(black_box(&quote)).unwrap();
                    warm.verify(&q, &collateral, now).unwrap();
                })
            });
            g.bench_function(concat!("cold/", $name), |b| {
                b.iter_batched(
                    || TdxVerifier::new($crypto).unwrap(),
                    |mut v| {
                        let coll = TdxCollateral::new(black_box(&parts).clone());
                        let q = parse_tdx_quote(black_box(&quote)).unwrap();
                        v.verify(&q, &coll, now).unwrap();
                        v
                    },
                    BatchSize::SmallInput,
                )
            });
        }};
    }
    ours!("aws-lc-rs", AwsLc);
    ours!("rustcrypto", RustCrypto);

    // dcap-qvl with its ring backend, on the same bytes.
    let reference = reference_collateral(&collateral);
    let r = dcap_qvl::verify::ring::verify(&quote, &reference, now.as_secs()).unwrap();
    assert_eq!(r.status, "UpToDate");
    g.bench_function("dcap_qvl/ring", |b| {
        b.iter(|| {
            dcap_qvl::verify::ring::verify(black_box(&quote), &reference, now.as_secs()).unwrap()
        })
    });
    g.finish();
}

/// The goals as ratios, measured in interleaved rounds so that the load of a
/// shared machine hits every contender alike: per round, a batch of each
/// (cold, warm, dcap-qvl, floor) back to back; the medians over rounds are printed.
fn paired_ratios() {
    use std::time::Instant;
    let case = common::cases("tdx")
        .into_iter()
        .find(|c| c.name == CASE)
        .unwrap();
    let quote = case.file("quote.bin");
    let collateral = TdxCollateral::from_json(&case.file("collateral.json")).unwrap();
    let parts = collateral.parts().clone();
    let now = UnixTime(case.verification_time());
    let parsed = parse_tdx_quote(&quote).unwrap();
    let pck = Cert::from_der("PCK", &parsed.pck_chain_der().unwrap()[0]).unwrap();
    let pck_key = pck.public_key().to_vec();
    let att_key = parsed.attestation_key_sec1();
    let reference = reference_collateral(&collateral);
    let mut warm = TdxVerifier::new(AwsLc).unwrap();
    warm.verify(&parsed, &collateral, now).unwrap();
    let mut cold_v = TdxVerifier::new(AwsLc).unwrap();

    let mut cold = || {
        cold_v.clear_cache();
        let coll = TdxCollateral::new(black_box(&parts).clone());
        let q = parse_tdx_quote(black_box(&quote)).unwrap();
        cold_v.verify(&q, &coll, now).unwrap();
    };
    let mut warm_f = || {
        let q = parse_tdx_quote(black_box(&quote)).unwrap();
        warm.verify(&q, &collateral, now).unwrap();
    };
    let mut dcap = || {
        dcap_qvl::verify::ring::verify(black_box(&quote), &reference, now.as_secs()).unwrap();
    };
    let mut floor = || {
        AwsLc
            .verify_ecdsa(
                EcdsaAlg::P256Sha256,
                &att_key,
                black_box(&parsed.signed),
                &parsed.signature,
            )
            .unwrap();
        AwsLc
            .verify_ecdsa(
                EcdsaAlg::P256Sha256,
                &pck_key,
                black_box(&parsed.qe_report_raw),
                &parsed.qe_report_signature,
            )
            .unwrap();
    };
    // `SIGIL_TDX_BENCH_LOOP=<cold|warm|dcap|floor>:<n>` runs one contender n times
    // and exits: for `perf stat`, whose cycle and instruction counts do not depend on
    // what else the machine is running.
    if let Ok(spec) = std::env::var("SIGIL_TDX_BENCH_LOOP") {
        let (name, n) = spec.split_once(':').unwrap();
        let n: u32 = n.parse().unwrap();
        let f: &mut dyn FnMut() = match name {
            "cold" => &mut cold,
            "warm" => &mut warm_f,
            "dcap" => &mut dcap,
            "floor" => &mut floor,
            other => panic!("unknown contender {other}"),
        };
        for _ in 0..n {
            f();
        }
        std::process::exit(0);
    }
    let time = |f: &mut dyn FnMut(), n: u32| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    };
    let (mut c, mut w, mut d, mut fl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..41 {
        c.push(time(&mut cold, 8));
        w.push(time(&mut warm_f, 80));
        d.push(time(&mut dcap, 8));
        fl.push(time(&mut floor, 40));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    println!(
        "\npaired rounds (aws-lc-rs backend, median of 41 interleaved rounds, µs per verification):"
    );
    println!(
        "  cold {:.1}  warm {:.1}  dcap-qvl {:.1}  floor (two P-256 verifies) {:.1}",
        median(c.clone()),
        median(w.clone()),
        median(d.clone()),
        median(fl.clone())
    );
    println!(
        "  cold / dcap-qvl = {:.2} (goal <= 1)   dcap-qvl / warm = {:.1}x (goal >= 5)   floor / warm = {:.2}x (goal >= 0.8)",
        ratio(&c, &d),
        ratio(&d, &w),
        ratio(&fl, &w)
    );
}

fn reference_collateral(c: &TdxCollateral) -> QuoteCollateralV3 {
    let parts = c.parts();
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    QuoteCollateralV3 {
        pck_crl_issuer_chain: s(&parts.pck_crl_issuer_chain),
        root_ca_crl: parts.root_ca_crl.clone(),
        pck_crl: parts.pck_crl.clone(),
        tcb_info_issuer_chain: s(&parts.tcb_info_issuer_chain),
        tcb_info: s(&parts.tcb_info),
        tcb_info_signature: parts.tcb_info_signature.clone(),
        qe_identity_issuer_chain: s(&parts.qe_identity_issuer_chain),
        qe_identity: s(&parts.qe_identity),
        qe_identity_signature: parts.qe_identity_signature.clone(),
        pck_certificate_chain: None,
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}

fn main() {
    // One contender in a loop, for `perf stat` (see `paired_ratios`).
    if std::env::var_os("SIGIL_TDX_BENCH_LOOP").is_some() {
        paired_ratios();
        return;
    }
    benches();
    // Only under `cargo bench` (criterion's test mode runs each bench once).
    if std::env::args().any(|a| a == "--bench") {
        paired_ratios();
    }
    Criterion::default().configure_from_args().final_summary();
}
