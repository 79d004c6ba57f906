//! Event-log replay cost next to the quote verification it accompanies:
//! - `parse_replay/<case>`: parse a real CCEL (or JSON) log and replay RTMR0..RTMR3;
//!   `trustee-ccel-aael-alibabacloud` is the longest real log (87 events),
//!   `trustee-ccel-tdshim` the largest file (1 MiB, mostly fill);
//! - `tdx_verify/{cold,warm}`: full TDX quote verification (`tdx-v4-dcap-qvl-sample`
//!   with its collateral, default crypto backend), as in the `tdx` bench;
//! - `vtpm_parse_replay_check/<events>`: parse a vTPM's TCG log (synthetic: a boot with
//!   padding events of 1 KiB data, SHA-1 and SHA-256 banks), replay PCR 0..23 and check
//!   it against the quoted values; `vtpm_quote_verify`: the quote it accompanies
//!   (`measured/azure-vtpm/az-snp-genoa-v0`: the AK signature, nonce and PCR digest).
//!
//! `cargo bench -p attestation-verifier --bench eventlog`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use attestation_verifier::DefaultCrypto;
use attestation_verifier::eventlog::parse_event_log;
use attestation_verifier::eventlog::tpm::parse_tpm_log;
use attestation_verifier::evidence::azure_hcl::parse_hcl_report_snp_or_tdx;
use attestation_verifier::evidence::azure_vtpm::parse_vtpm_evidence_json;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::azure_vtpm::verify_vtpm_quote;
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier};
use common::Case;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sigil_test_support::tcg_log::{self, LogEvent};

const LOGS: &[(&str, &str)] = &[
    ("trustee-ccel-aael-alibabacloud", "ccel.bin"),
    ("go-tdx-guest-cos113", "ccel.bin"),
    ("trustee-ccel-tdshim", "ccel.bin"),
    ("dstack-simulator-json", "eventlog.json"),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("eventlog");
    for (name, file) in LOGS {
        let bytes = Case::load("measured/tdx-eventlog", name).file(file);
        g.bench_function(format!("parse_replay/{name}"), |b| {
            b.iter(|| parse_event_log(black_box(&bytes)).unwrap().replay())
        });
    }

    let case = Case::load("tdx", "tdx-v4-dcap-qvl-sample");
    let quote = case.file("quote.bin");
    let collateral = TdxCollateral::from_json(&case.file("collateral.json")).unwrap();
    let parts = collateral.parts().clone();
    let now = UnixTime(case.verification_time());
    let mut warm = TdxVerifier::new(DefaultCrypto::default()).unwrap();
    warm.verify(&parse_tdx_quote(&quote).unwrap(), &collateral, now)
        .unwrap();
    g.bench_function("tdx_verify/warm", |b| {
        b.iter(|| {
            let q = parse_tdx_quote(black_box(&quote)).unwrap();
            warm.verify(&q, &collateral, now).unwrap();
        })
    });
    g.bench_function("tdx_verify/cold", |b| {
        b.iter_batched(
            || TdxVerifier::new(DefaultCrypto::default()).unwrap(),
            |mut v| {
                let coll = TdxCollateral::new(black_box(&parts).clone());
                let q = parse_tdx_quote(black_box(&quote)).unwrap();
                v.verify(&q, &coll, now).unwrap();
                v
            },
            BatchSize::SmallInput,
        )
    });

    // The vTPM: a log's replay next to the quote it is checked against.
    for n in [32usize, 128] {
        let mut events = tcg_log::sample_boot();
        for i in 0..n.saturating_sub(events.len()) {
            events.push(LogEvent::measured(7, 0x8000_00e0, &vec![i as u8; 1024]));
        }
        let bytes = tcg_log::log(&events);
        let quoted: Vec<(u8, [u8; 32])> = (0u8..).zip(tcg_log::replay(&events)).collect();
        g.bench_function(format!("vtpm_parse_replay_check/{n}"), |b| {
            b.iter(|| {
                parse_tpm_log(black_box(&bytes))
                    .unwrap()
                    .check_against(&quoted)
                    .unwrap()
            })
        });
    }
    let case = Case::load("measured/azure-vtpm", "az-snp-genoa-v0");
    let ev = parse_vtpm_evidence_json(&case.file("evidence.json")).unwrap();
    let hcl = parse_hcl_report_snp_or_tdx(&ev.hcl_report).unwrap();
    let nonce = hex::decode(
        case.expected("expected_nonce_hex")
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let crypto = DefaultCrypto::default();
    let q = ev.tpm_quote;
    g.bench_function("vtpm_quote_verify", |b| {
        b.iter(|| {
            verify_vtpm_quote(
                &crypto,
                &hcl.claims,
                black_box(&q.attest),
                &q.signature,
                &q.pcrs,
                &nonce,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
