//! `sigil-bench`: runs the market pallet's benchmarks natively against the Sigil runtime and
//! writes the pallet's `weights.rs`.
//!
//! The benchmarks run through the runtime's own `Benchmark` runtime API (`dispatch_benchmark`,
//! the call a bencher makes into the WASM), executed natively: the runtime's types, its
//! attestation verifier and its `development` genesis, over a state backend that counts
//! database reads and writes as a benchmarking node does ([`backend`]). Like the FRAME CLI it
//! varies each component over `--steps` values (the others at their maximum), repeats each
//! point `--repeat` times, fits the times and the read/write counts with frame-benchmarking's
//! least-squares analysis, and writes the result in the CLI's weight-file format.
//!
//! `verify_evidence(g, r, o, b)` is fitted over bundles of genuine TDX and NVIDIA H100
//! evidence from the shared vectors with `g` GPU reports, `r` RIMs, `o` OCSP responses and `b`
//! padding bytes, the copies adversarial so that each costs the most it can ([`evidence`],
//! [`forge`]); genuine and adversarial bundles are also timed one by one and set against the
//! weight charged for them.
//!
//! ```sh
//! cd chain && SKIP_WASM_BUILD=1 cargo run --release -p sigil-bench -- --steps 50 --repeat 20
//! ```

mod backend;
mod evidence;
mod forge;
mod weights;

use anyhow::{Context, Result, anyhow, bail};
use backend::CountingBackend;
use codec::{Decode, Encode};
use polkadot_sdk::{
    frame_benchmarking::{
        BenchmarkBatch, BenchmarkConfig, BenchmarkList, BenchmarkParameter, BenchmarkResult,
    },
    frame_support::traits::StorageInfo,
    sp_externalities::Extensions,
    sp_keystore::{KeystoreExt, testing::MemoryKeystore},
    sp_runtime::BuildStorage,
    sp_state_machine::{Ext, OverlayedChanges},
    sp_storage::Storage,
};
use std::path::PathBuf;

/// WASM/native time of the evidence verification, measured with `wasm-probe` (3.0-3.9 over the
/// four evidence bundles; rounded up). See `docs/chain.md`, Weights.
const DEFAULT_WASM_FACTOR: f64 = 4.0;

/// The pallet and instance names the runtime's `define_benchmarks!` registers.
const PALLET: &str = "pallet_sigil_market";
const INSTANCE: &str = "Market";

/// Command-line options.
struct Options {
    steps: u32,
    repeat: u32,
    output: PathBuf,
    /// Print the analysis only.
    dry_run: bool,
    /// Write the evidence bundles (and their times) here for the WASM probe, and stop.
    probe_bundles: Option<PathBuf>,
    /// How much slower the evidence verification runs as WASM than natively (measured with
    /// `wasm-probe`); `verify_evidence`'s weight is multiplied by it.
    wasm_factor: f64,
    /// Steps per component of `verify_evidence` (each run verifies up to a few MiB of evidence).
    evidence_steps: u32,
    /// Repeats per point of `verify_evidence`.
    evidence_repeat: u32,
}

fn options() -> Result<Options> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut o = Options {
        steps: 50,
        repeat: 20,
        output: manifest.join("../pallets/market/src/weights.rs"),
        dry_run: false,
        probe_bundles: None,
        wasm_factor: DEFAULT_WASM_FACTOR,
        evidence_steps: 10,
        evidence_repeat: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--steps" => o.steps = value()?.parse().context("--steps")?,
            "--repeat" => o.repeat = value()?.parse().context("--repeat")?,
            "--output" => o.output = PathBuf::from(value()?),
            "--dry-run" => o.dry_run = true,
            "--probe-bundles" => o.probe_bundles = Some(PathBuf::from(value()?)),
            "--wasm-factor" => o.wasm_factor = value()?.parse().context("--wasm-factor")?,
            "--evidence-steps" => {
                o.evidence_steps = value()?.parse().context("--evidence-steps")?;
            }
            "--evidence-repeat" => {
                o.evidence_repeat = value()?.parse().context("--evidence-repeat")?;
            }
            "--help" | "-h" => {
                println!(
                    "sigil-bench [--steps N (50)] [--repeat N (20)] [--output weights.rs] [--dry-run]\n\
                     \x20          [--wasm-factor F (4): WASM/native cost of verify_evidence]\n\
                     \x20          [--evidence-steps N (10)] [--evidence-repeat N (5)]: verify_evidence's own\n\
                     \x20          [--probe-bundles DIR (write the evidence bundles for wasm-probe, then stop)]\n\
                     Runs the market pallet's benchmarks natively against the Sigil runtime and\n\
                     writes its weights.rs. Evidence vectors: SIGIL_VECTORS (default ../shared/vectors)."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if !(1.0..=100.0).contains(&o.wasm_factor) {
        bail!("--wasm-factor must be between 1 and 100");
    }
    if o.steps < 2 || o.repeat < 1 || o.evidence_steps < 2 || o.evidence_repeat < 1 {
        bail!("--steps must be at least 2 and --repeat at least 1");
    }
    Ok(o)
}

/// Calls a runtime API function natively in a fresh overlay over `backend`, with a keystore
/// for the benchmarks' keys.
fn call(backend: &CountingBackend, method: &str, input: &[u8]) -> Result<Vec<u8>> {
    let mut overlay = OverlayedChanges::default();
    let mut extensions = Extensions::default();
    extensions.register(KeystoreExt::new(MemoryKeystore::new()));
    let mut ext = Ext::new(&mut overlay, backend, Some(&mut extensions));
    polkadot_sdk::sp_externalities::set_and_run_with_externalities(&mut ext, || {
        sigil_runtime::api::dispatch(method, input)
    })
    .ok_or_else(|| anyhow!("the runtime has no {method}"))
}

fn dispatch(
    backend: &CountingBackend,
    benchmark: &str,
    components: &[(BenchmarkParameter, u32)],
    verify: bool,
) -> Result<Vec<BenchmarkResult>> {
    let config = BenchmarkConfig {
        pallet: PALLET.into(),
        instance: INSTANCE.into(),
        benchmark: benchmark.into(),
        selected_components: components.to_vec(),
        verify,
        internal_repeats: 1,
    };
    let out = call(backend, "Benchmark_dispatch_benchmark", &config.encode())?;
    let batches = Result::<Vec<BenchmarkBatch>, String>::decode(&mut &out[..])
        .context("decoding the benchmark result")?
        .map_err(|e| anyhow!("{benchmark}{components:?}: {e}"))?;
    Ok(batches.into_iter().flat_map(|b| b.results).collect())
}

/// The component values the FRAME CLI runs: each component over `steps` points from its
/// lowest to its highest value, the others at their highest; without components, one point.
fn component_points(
    ranges: &[(BenchmarkParameter, u32, u32)],
    steps: u32,
) -> Vec<Vec<(BenchmarkParameter, u32)>> {
    if ranges.is_empty() {
        return vec![Vec::new()];
    }
    let mut points: Vec<Vec<(BenchmarkParameter, u32)>> = Vec::new();
    for (i, (_, low, high)) in ranges.iter().enumerate() {
        for s in 0..steps {
            let span = u64::from(high.saturating_sub(*low));
            let offset = span
                .saturating_mul(u64::from(s))
                .checked_div(u64::from(steps.saturating_sub(1)))
                .unwrap_or(0);
            let value = u32::try_from(u64::from(*low).saturating_add(offset)).unwrap_or(*high);
            let point: Vec<_> = ranges
                .iter()
                .enumerate()
                .map(|(j, (p, _, h))| (*p, if i == j { value } else { *h }))
                .collect();
            if !points.contains(&point) {
                points.push(point);
            }
        }
    }
    points
}

/// One benchmark's measurements: timing runs (no tracking) and counting runs.
pub(crate) struct Measured {
    /// Its name.
    pub(crate) name: String,
    /// Its components and their ranges.
    pub ranges: Vec<(BenchmarkParameter, u32, u32)>,
    /// Timing results, `repeat` per component point.
    pub time: Vec<BenchmarkResult>,
    /// Read/write results, one per component point.
    pub db: Vec<BenchmarkResult>,
}

fn measure(
    timing: &CountingBackend,
    tracking: &CountingBackend,
    name: &str,
    ranges: &[(BenchmarkParameter, u32, u32)],
    (steps, repeat): (u32, u32),
) -> Result<Measured> {
    let mut m = Measured {
        name: name.into(),
        ranges: ranges.to_vec(),
        time: Vec::new(),
        db: Vec::new(),
    };
    for point in component_points(ranges, steps) {
        // The benchmark's own checks first, as the CLI does.
        dispatch(timing, name, &point, true)?;
        m.db.extend(dispatch(tracking, name, &point, false)?);
        for _ in 0..repeat {
            m.time.extend(dispatch(timing, name, &point, false)?);
        }
    }
    Ok(m)
}

/// `t * factor`, for the WASM adjustment (times are far below `f64`'s exact range).
fn scale(t: u128, factor: f64) -> u128 {
    // Float to integer: saturating by definition of `as`; the inputs are nanosecond counts.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = (t as f64 * factor).round() as u128;
    scaled
}

/// The median time of runs at one point (their component values are all the same, so a fit
/// would put the time into the slopes).
fn median_ns(results: &[BenchmarkResult]) -> Result<u128> {
    let mut times: Vec<u128> = results.iter().map(|r| r.extrinsic_time).collect();
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .copied()
        .ok_or_else(|| anyhow!("no timing results"))
}

fn main() -> Result<()> {
    let opts = options()?;
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let genesis: Storage = sigil_runtime::genesis_config_presets::development_config()
        .context("the runtime's development preset")?
        .build_storage()
        .map_err(|e| anyhow!("genesis storage: {e}"))?;
    let timing = CountingBackend::new(genesis.clone(), false);
    let tracking = CountingBackend::new(genesis, true);

    let out = call(&timing, "Benchmark_benchmark_metadata", &false.encode())?;
    let (lists, storage_info) = <(Vec<BenchmarkList>, Vec<StorageInfo>)>::decode(&mut &out[..])
        .context("decoding the benchmark metadata")?;
    let list = lists
        .into_iter()
        .find(|l| l.pallet == PALLET.as_bytes() && l.instance == INSTANCE.as_bytes())
        .ok_or_else(|| anyhow!("the runtime does not benchmark {PALLET}"))?;

    // `verify_evidence`: genuine and adversarial bundles, each timed on its own at its counts.
    let vectors = evidence::vectors_dir(&manifest);
    let parts = std::sync::Arc::new(evidence::Parts::load(&vectors)?);
    let cases = evidence::cases(&vectors, &parts)?;
    if let Some(dir) = &opts.probe_bundles {
        std::fs::create_dir_all(dir)?;
        for (i, c) in cases.iter().enumerate() {
            let stem = dir.join(format!("case{i}"));
            std::fs::write(stem.with_extension("bin"), &c.evidence.evidence)?;
            std::fs::write(
                stem.with_extension("at"),
                (c.evidence.now_ms / 1_000).to_string(),
            )?;
            println!("{}: {}", stem.display(), c.name);
        }
        return Ok(());
    }
    let mut evidence_rows = Vec::new();
    for c in &cases {
        let fixed = c.evidence.clone();
        sigil_verifier_adapter::benchmarking::set_evidence_source(Some(Box::new(move |_| {
            Some(fixed.clone())
        })));
        let cost = attestation_verifier::bundle::cost::cost(&c.evidence.evidence);
        let point = [
            (BenchmarkParameter::g, cost.gpus),
            (BenchmarkParameter::r, cost.rims.max(1)),
            (BenchmarkParameter::o, cost.ocsp),
            (BenchmarkParameter::b, cost.bytes),
        ];
        let mut results = Vec::new();
        dispatch(&timing, "verify_evidence", &point, true)?;
        for _ in 0..opts.repeat {
            results.extend(dispatch(&timing, "verify_evidence", &point, false)?);
        }
        let ns = median_ns(&results)?;
        eprintln!("verify_evidence, {}: median {} µs", c.name, ns / 1_000);
        evidence_rows.push(weights::EvidenceRow {
            name: c.name.clone(),
            counts: [cost.gpus, cost.rims, cost.ocsp, cost.bytes],
            ns,
        });
    }
    // Each component's marginal cost measured directly: a bundle with many of one item against
    // the same bundle with one (or no padding). The fitted slopes are never below these.
    let time_of = |prefix: &str| -> Result<(u128, [u32; 4])> {
        evidence_rows
            .iter()
            .find(|r: &&weights::EvidenceRow| r.name == prefix)
            .map(|r| (r.ns, r.counts))
            .ok_or_else(|| anyhow!("no evidence case {prefix}"))
    };
    let (base_ns, base) = time_of(evidence::BASE_CASE)?;
    let mut floors = Vec::new();
    for (name, index, prefix) in [
        ("g", 0usize, evidence::GPUS_CASE),
        ("r", 1, evidence::RIMS_CASE),
        ("o", 2, evidence::OCSP_CASE),
        ("b", 3, evidence::PADDED_CASE),
    ] {
        let (ns, counts) = time_of(prefix)?;
        let more = counts
            .get(index)
            .zip(base.get(index))
            .map_or(0, |(a, b)| a.saturating_sub(*b));
        let ps = scale(ns.saturating_sub(base_ns), opts.wasm_factor)
            .saturating_mul(1_000)
            .checked_div(u128::from(more))
            .unwrap_or(0);
        eprintln!("verify_evidence: {name} costs at least {ps} ps a unit (measured)");
        floors.push((name.to_string(), ps));
    }
    // The fitted benchmark: bundles made for each point, the last one kept (each point is
    // verified `repeat + 2` times in a row).
    let last: std::sync::Mutex<Option<(pallet_sigil_market::EvidenceCost, _)>> =
        std::sync::Mutex::new(None);
    let source_parts = std::sync::Arc::clone(&parts);
    sigil_verifier_adapter::benchmarking::set_evidence_source(Some(Box::new(move |cost| {
        let mut last = last.lock().ok()?;
        if let Some((c, e)) = last.as_ref()
            && *c == cost
        {
            return Some(Clone::clone(e));
        }
        let e = source_parts.evidence(cost);
        *last = Some((cost, e.clone()));
        Some(e)
    })));

    let mut measured = Vec::new();
    for b in &list.benchmarks {
        let name = String::from_utf8(b.name.clone())?;
        eprintln!("benchmarking {name} ...");
        let evidence = name == "verify_evidence";
        let plan = if evidence {
            (opts.evidence_steps, opts.evidence_repeat)
        } else {
            (opts.steps, opts.repeat)
        };
        let mut m = measure(&timing, &tracking, &name, &b.components, plan)?;
        if evidence {
            // The verifier's pure-Rust crypto runs as WASM in the runtime.
            for r in &mut m.time {
                r.extrinsic_time = scale(r.extrinsic_time, opts.wasm_factor);
            }
        }
        measured.push(m);
    }

    let file = weights::render(&weights::Input {
        pallet: PALLET,
        measured: &measured,
        storage_info: &storage_info,
        steps: opts.steps,
        repeat: opts.repeat,
        evidence: &evidence_rows,
        evidence_plan: (opts.evidence_steps, opts.evidence_repeat),
        evidence_floors: &floors,
        wasm_factor: opts.wasm_factor,
        block_ref_time: sigil_runtime::RuntimeBlockWeights::get()
            .max_block
            .ref_time(),
    })?;
    if opts.dry_run {
        print!("{file}");
    } else {
        std::fs::write(&opts.output, file)
            .with_context(|| format!("writing {}", opts.output.display()))?;
        eprintln!("wrote {}", opts.output.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Tests may panic on broken expectations.
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn component_points_follow_the_cli_works() {
        let quorum = BenchmarkParameter::n;
        assert_eq!(component_points(&[], 50), vec![Vec::new()]);
        let points = component_points(&[(quorum, 1, 16)], 50);
        // 50 steps over 1..=16 collapse to the 16 distinct values, in order.
        assert_eq!(points.len(), 16);
        assert_eq!(points.first().unwrap(), &vec![(quorum, 1)]);
        assert_eq!(points.last().unwrap(), &vec![(quorum, 16)]);
        let two = component_points(&[(quorum, 1, 16)], 2);
        assert_eq!(two, vec![vec![(quorum, 1)], vec![(quorum, 16)]]);
    }

    #[test]
    fn scale_rounds_works() {
        assert_eq!(scale(1_000, 4.0), 4_000);
        assert_eq!(scale(3, 1.5), 5);
    }
}
