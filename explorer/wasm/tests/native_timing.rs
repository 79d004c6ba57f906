//! Native timing of the checks the explorer runs in the browser: the same functions of this
//! crate (the verifier's pure-Rust backend), compiled for the host instead of WASM, on the
//! shared vectors and, when given, a market's tier-3 receipt and bundle. A measurement, not a
//! test; docs/explorer.md gives its figures:
//!
//! `cargo test --release -p sigil-explorer-wasm --test native_timing -- --ignored --nocapture`
//! (`SIGIL_EXPLORER_RECEIPT` and `SIGIL_EXPLORER_BUNDLE`: the tier-3 receipt and bundle).

// A measurement may unwrap: a failure is its report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use sigil_explorer_wasm::files::{SnpFiles, check_receipt_json, check_snp_json, check_tdx_json};

fn best_ms(mut f: impl FnMut() -> String) -> (f64, String) {
    let mut best = f64::MAX;
    let mut out = String::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        out = f();
        best = best.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    (best, out)
}

fn der(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    match pem::parse(&bytes) {
        Ok(p) => p.into_contents(),
        Err(_) => bytes,
    }
}

fn verdict(out: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["verdict"].as_str().unwrap_or("error").to_string()
}

#[test]
#[ignore = "a measurement: run it by name in a release build"]
fn native_timing() {
    let vectors = std::env::var_os("SIGIL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"));
    let snp = vectors.join("snp/milan-v3-oak-oc-release");
    let report = std::fs::read(snp.join("report.bin")).unwrap();
    let (vek, ask, ark) = (
        der(&snp.join("vcek.der")),
        der(&snp.join("ask.pem")),
        der(&snp.join("ark.pem")),
    );
    let files = SnpFiles {
        vek: &vek,
        ask: Some(&ask),
        ark: Some(&ark),
        crl: None,
    };
    let (ms, out) = best_ms(|| check_snp_json(&report, &files, "", 1_739_568_114.0));
    println!("snp_milan_v3: {} best {ms:.3} ms", verdict(&out));
    let tdx = vectors.join("tdx/tdx-v4-dcap-qvl-sample");
    let quote = std::fs::read(tdx.join("quote.bin")).unwrap();
    let collateral = std::fs::read(tdx.join("collateral.json")).unwrap();
    let (ms, out) = best_ms(|| check_tdx_json(&quote, &collateral, "", 1_750_415_547.0));
    println!("tdx_v4: {} best {ms:.3} ms", verdict(&out));
    if let (Some(r), Some(b)) = (
        std::env::var_os("SIGIL_EXPLORER_RECEIPT"),
        std::env::var_os("SIGIL_EXPLORER_BUNDLE"),
    ) {
        let (receipt, bundle) = (std::fs::read(r).unwrap(), std::fs::read(b).unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let (ms, out) = best_ms(|| check_receipt_json(&receipt, Some(&bundle), "", true, now));
        println!("tier3_receipt: {} best {ms:.3} ms", verdict(&out));
    }
}
