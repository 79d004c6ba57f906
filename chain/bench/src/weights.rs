//! Fits the measurements with frame-benchmarking's analysis and renders `weights.rs` in the
//! format of the FRAME CLI's pallet weight template (trait, `SubstrateWeight<T>` priced by the
//! runtime's `DbWeight`, and `()` priced by `RocksDbWeight`).
//!
//! Proof sizes are estimated as the CLI does in its default `MaxEncodedLen` mode: each storage
//! item read costs its `max_size` plus `15 * 33` bytes per trie level of a map with its
//! `max_values` (a million when unbounded), the logic of `frame-benchmarking-cli`'s
//! `writer.rs`, re-implemented here because that crate is not a library one can call without
//! its node dependencies.

use crate::Measured;
use anyhow::{Result, anyhow};
use polkadot_sdk::{
    frame_benchmarking::{Analysis, BenchmarkResult, BenchmarkSelector},
    frame_support::traits::StorageInfo,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The CLI's default `--worst-case-map-values`.
const WORST_CASE_MAP_VALUES: u32 = 1_000_000;

/// What the file is made from.
pub(crate) struct Input<'a> {
    /// The pallet's crate name.
    pub pallet: &'a str,
    /// The benchmarks.
    pub measured: &'a [Measured],
    /// The runtime's storage items.
    pub storage_info: &'a [StorageInfo],
    /// `--steps`.
    pub steps: u32,
    /// `--repeat`.
    pub repeat: u32,
    /// `verify_evidence` per evidence bundle timed alone.
    pub evidence: &'a [EvidenceRow],
    /// `verify_evidence`'s steps and repeats.
    pub evidence_plan: (u32, u32),
    /// The least slope (ps per unit, WASM factor included) of each `verify_evidence`
    /// component, measured directly on single bundles.
    pub evidence_floors: &'a [(String, u128)],
    /// The block's maximum ref time (ps).
    pub block_ref_time: u64,
    /// The WASM factor applied to `verify_evidence`.
    pub wasm_factor: f64,
}

/// One evidence bundle timed alone.
pub(crate) struct EvidenceRow {
    /// What it holds.
    pub name: String,
    /// What `bundle::cost` reads from it: GPU reports, RIMs, OCSP responses, bytes.
    pub counts: [u32; 4],
    /// Median native time.
    pub ns: u128,
}

/// The fitted `verify_evidence` weight (ps) at `counts` (g, r, o, b).
fn charged(fitted: &[Fitted], counts: [u32; 4]) -> Result<u128> {
    let f = fitted
        .iter()
        .find(|f| f.name == "verify_evidence")
        .ok_or_else(|| anyhow!("no benchmark verify_evidence"))?;
    let [g, r, o, b] = counts;
    let mut total = f.time.base;
    for (n, slope, _) in names(&f.time) {
        let value = match n.as_str() {
            "g" => g,
            "r" => r,
            "o" => o,
            "b" => b,
            _ => 0,
        };
        total = total.saturating_add(slope.saturating_mul(u128::from(value)));
    }
    Ok(total)
}

/// The fitted `verify_evidence` slope (ps per unit) of component `name`.
fn slope(fitted: &[Fitted], name: &str) -> u128 {
    fitted
        .iter()
        .find(|f| f.name == "verify_evidence")
        .map(|f| {
            names(&f.time)
                .into_iter()
                .find(|(n, _, _)| n == name)
                .map_or(0, |(_, s, _)| s)
        })
        .unwrap_or(0)
}

/// `log16` of a map's size, rounded up: the trie levels above its values.
fn trie_depth(max_values: Option<u32>) -> u32 {
    let n = max_values.unwrap_or(WORST_CASE_MAP_VALUES);
    let mut depth: u32 = 0;
    let mut cap: u64 = 1;
    while cap < u64::from(n) && depth < 8 {
        cap = cap.saturating_mul(16);
        depth = depth.saturating_add(1);
    }
    depth
}

fn pov_overhead(max_values: Option<u32>) -> u32 {
    trie_depth(max_values).saturating_mul(15 * 33)
}

fn underscore(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && s.len().saturating_sub(i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

struct Fitted {
    name: String,
    components: Vec<(String, u32, u32)>,
    used: Vec<bool>,
    time: Analysis,
    reads: Analysis,
    writes: Analysis,
    proof: Analysis,
    comments: Vec<String>,
}

fn names(a: &Analysis) -> Vec<(String, u128, u128)> {
    let errors = a.errors.clone().unwrap_or_default();
    a.names
        .iter()
        .zip(&a.slopes)
        .enumerate()
        .map(|(i, (n, s))| (n.clone(), *s, errors.get(i).copied().unwrap_or(0)))
        .collect()
}

fn fit(
    m: &Measured,
    info: &BTreeMap<Vec<u8>, &StorageInfo>,
    floors: &[(String, u128)],
) -> Result<Fitted> {
    let err = |what: &str, e: anyhow::Error| anyhow!("{} {what}: {e}", m.name);
    let mut time = Analysis::min_squares_iqr(&m.time, BenchmarkSelector::ExtrinsicTime)
        .map_err(|e| err("time", e))?;
    // A slope is never below the marginal cost measured directly on single bundles (see
    // `main`): the fit over bundles of up to a few MiB, on a shared machine, can hand one
    // component's time to another (the padding bytes' few milliseconds vanish in the noise of
    // a 200 ms verification).
    for (name, floor) in floors {
        if let Some(i) = time.names.iter().position(|n| n == name)
            && let Some(slope) = time.slopes.get_mut(i)
        {
            *slope = (*slope).max(*floor);
        }
    }
    let reads =
        Analysis::min_squares_iqr(&m.db, BenchmarkSelector::Reads).map_err(|e| err("reads", e))?;
    let writes = Analysis::min_squares_iqr(&m.db, BenchmarkSelector::Writes)
        .map_err(|e| err("writes", e))?;
    // Proof size per run from the storage items it read.
    let mut with_proof: Vec<BenchmarkResult> = m.db.clone();
    for r in &mut with_proof {
        let mut size: u32 = 0;
        for (prefix, reads, _, whitelisted) in &r.keys {
            if *whitelisted || *reads == 0 {
                continue;
            }
            let i = info.get(prefix);
            let per_read = pov_overhead(i.and_then(|i| i.max_values))
                .saturating_add(i.and_then(|i| i.max_size).unwrap_or(0));
            size = size.saturating_add(per_read.saturating_mul(*reads));
        }
        r.proof_size = size;
    }
    let proof = Analysis::min_squares_iqr(&with_proof, BenchmarkSelector::ProofSize)
        .map_err(|e| err("proof", e))?;

    // Storage comments from the run with the largest components (the CLI reads them last
    // to first).
    let mut comments = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in m.db.iter().rev() {
        for (prefix, reads, writes, whitelisted) in &r.keys {
            if *whitelisted || !seen.insert(prefix.clone()) {
                continue;
            }
            match info.get(prefix) {
                Some(i) => {
                    let (p, s) = (
                        String::from_utf8_lossy(&i.pallet_name),
                        String::from_utf8_lossy(&i.storage_name),
                    );
                    comments.push(format!("Storage: `{p}::{s}` (r:{reads} w:{writes})"));
                    match i.max_size {
                        Some(size) => comments.push(format!(
                            "Proof: `{p}::{s}` (`max_values`: {:?}, `max_size`: Some({size}), added: {}, mode: `MaxEncodedLen`)",
                            i.max_values,
                            pov_overhead(i.max_values).saturating_add(size)
                        )),
                        None => comments.push(format!(
                            "Proof: `{p}::{s}` (`max_values`: {:?}, `max_size`: None, mode: `Measured`)",
                            i.max_values
                        )),
                    }
                }
                None => comments.push(format!(
                    "Storage: UNKNOWN KEY `0x{}` (r:{reads} w:{writes})",
                    hex::encode(prefix)
                )),
            }
        }
    }
    let components: Vec<(String, u32, u32)> = m
        .ranges
        .iter()
        .map(|(p, lo, hi)| (p.to_string(), *lo, *hi))
        .collect();
    let used = components
        .iter()
        .map(|(n, _, _)| {
            [&time, &reads, &writes, &proof]
                .iter()
                .any(|a| names(a).iter().any(|(an, s, _)| an == n && *s > 0))
        })
        .collect();
    Ok(Fitted {
        name: m.name.clone(),
        components,
        used,
        time,
        reads,
        writes,
        proof,
        comments,
    })
}

fn body(f: &Fitted, db: &str) -> String {
    let mut s = String::new();
    for c in &f.comments {
        let _ = writeln!(s, "\t/// {c}");
    }
    for (n, lo, hi) in &f.components {
        let _ = writeln!(s, "\t/// The range of component `{n}` is `[{lo}, {hi}]`.");
    }
    let params: String = f
        .components
        .iter()
        .zip(&f.used)
        .map(|((n, _, _), used)| format!("{}{n}: u32, ", if *used { "" } else { "_" }))
        .collect();
    let _ = writeln!(s, "\tfn {}({params}) -> Weight {{", f.name);
    let proof_terms: String = names(&f.proof)
        .iter()
        .filter(|(_, sl, _)| *sl > 0)
        .map(|(n, sl, e)| format!(" + {n} * ({sl} ±{})", underscore(*e)))
        .collect();
    let _ = writeln!(s, "\t\t// Proof Size summary in bytes:");
    let _ = writeln!(s, "\t\t//  Measured:  `0`");
    let _ = writeln!(s, "\t\t//  Estimated: `{}{proof_terms}`", f.proof.base);
    let _ = writeln!(
        s,
        "\t\t// Minimum execution time: {}_000 picoseconds.",
        underscore(f.time.minimum)
    );
    let _ = writeln!(s, "\t\tWeight::from_parts({}, 0)", underscore(f.time.base));
    let _ = writeln!(
        s,
        "\t\t\t.saturating_add(Weight::from_parts(0, {}))",
        f.proof.base
    );
    for (n, sl, e) in names(&f.time).iter().filter(|(_, sl, _)| *sl > 0) {
        let _ = writeln!(s, "\t\t\t// Standard Error: {}", underscore(*e));
        let _ = writeln!(
            s,
            "\t\t\t.saturating_add(Weight::from_parts({}, 0).saturating_mul({n}.into()))",
            underscore(*sl)
        );
    }
    if f.reads.base > 0 {
        let _ = writeln!(s, "\t\t\t.saturating_add({db}.reads({}_u64))", f.reads.base);
    }
    for (n, sl, _) in names(&f.reads).iter().filter(|(_, sl, _)| *sl > 0) {
        let _ = writeln!(
            s,
            "\t\t\t.saturating_add({db}.reads(({sl}_u64).saturating_mul({n}.into())))"
        );
    }
    if f.writes.base > 0 {
        let _ = writeln!(
            s,
            "\t\t\t.saturating_add({db}.writes({}_u64))",
            f.writes.base
        );
    }
    for (n, sl, _) in names(&f.writes).iter().filter(|(_, sl, _)| *sl > 0) {
        let _ = writeln!(
            s,
            "\t\t\t.saturating_add({db}.writes(({sl}_u64).saturating_mul({n}.into())))"
        );
    }
    for (n, sl, _) in names(&f.proof).iter().filter(|(_, sl, _)| *sl > 0) {
        let _ = writeln!(
            s,
            "\t\t\t.saturating_add(Weight::from_parts(0, {sl}).saturating_mul({n}.into()))"
        );
    }
    let _ = writeln!(s, "\t}}");
    s
}

fn first_line(cmd: &str) -> String {
    cmd.lines().next().unwrap_or_default().to_string()
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days, H. Hinnant's algorithm: a date crate for
/// one header line is not worth the dependency).
// Calendar arithmetic on a day count that fits easily in an i64 (today's is about 20,000).
#[allow(clippy::arithmetic_side_effects)]
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let z = i64::try_from(secs / 86_400).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Ref time in picoseconds of a benchmark without components, its database accesses priced
/// by the runtime's `DbWeight` (RocksDB: 25 µs a read, 100 µs a write).
fn ref_time(fitted: &[Fitted], name: &str) -> Result<u128> {
    use polkadot_sdk::frame_support::traits::Get;
    let f = fitted
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| anyhow!("no benchmark {name}"))?;
    let db = <<sigil_runtime::Runtime as polkadot_sdk::frame_system::Config>::DbWeight as Get<
        polkadot_sdk::sp_weights::RuntimeDbWeight,
    >>::get();
    let reads = u64::try_from(f.reads.base)?;
    let writes = u64::try_from(f.writes.base)?;
    Ok(f.time
        .base
        .saturating_add(u128::from(db.reads(reads).ref_time()))
        .saturating_add(u128::from(db.writes(writes).ref_time())))
}

/// The figures the market's design targets: a tier-3 attested-key receipt against a tier-1
/// receipt, and a full evidence verification against a block.
fn figures(fitted: &[Fitted], input: &Input<'_>) -> Result<Vec<String>> {
    let t1 = ref_time(fitted, "submit_receipt_signed")?;
    let t3 = ref_time(fitted, "submit_receipt_attested_key")?;
    let exec = |n: &str| -> Result<u128> {
        fitted
            .iter()
            .find(|f| f.name == n)
            .map(|f| f.time.base)
            .ok_or_else(|| anyhow!("no benchmark {n}"))
    };
    let ratio = |a: u128, b: u128| a as f64 / b.max(1) as f64;
    let block = u128::from(input.block_ref_time);
    let pct = |ps: u128| ratio(ps, block) * 100.0;
    // The genuine TDX + H100 bundle, at the counts the chain reads from it.
    let genuine = input
        .evidence
        .iter()
        .find(|r| r.name.starts_with("TDX + H100 (report"))
        .map_or([1, 2, 0, 73_000], |r| r.counts);
    let verify = charged(fitted, genuine)?;
    let fresh = ref_time(fitted, "submit_receipt_fresh_quote")?.saturating_add(verify);
    let register = ref_time(fitted, "register_attested_provider")?.saturating_add(verify);
    let caps = [16, 32, 128, 256 * 1024];
    let worst = charged(fitted, caps)?;
    let mut lines = vec![String::new()];
    for (what, name, unit) in [
        ("GPU report", "g", 1u128),
        ("RIM", "r", 1),
        ("OCSP response", "o", 1),
        ("KiB of evidence", "b", 1024),
    ] {
        let ps = slope(fitted, name).saturating_mul(unit);
        lines.push(format!(
            "FIGURES: verify_evidence per {what} ({name}{}): {} ps = {:.3}% of a block",
            if unit > 1 { " x 1024" } else { "" },
            underscore(ps),
            pct(ps)
        ));
    }
    lines.push(format!(
        "FIGURES: verify_evidence at every cap (16 GPU reports, 32 RIMs, 128 OCSP responses, 256 KiB) = {} ps = {:.2}% of a block (no bundle within MaxEvidenceLen reaches every cap at once)",
        underscore(worst),
        pct(worst)
    ));
    for r in input.evidence {
        let at = charged(fitted, r.counts)?;
        let measured = scale_ns(r.ns, input.wasm_factor);
        lines.push(format!(
            "FIGURES: {}: measured {:.2}%, charged {:.2}% of a block ({:.2}x){}",
            r.name,
            pct(measured),
            pct(at),
            ratio(at, measured),
            if at < measured { " UNDERCHARGED" } else { "" }
        ));
    }
    lines.extend(vec![
        String::new(),
        format!(
            "FIGURES: tier-3 attested-key receipt / tier-1 receipt = {:.3} with database weights ({} / {} ps), {:.3} execution only",
            ratio(t3, t1),
            underscore(t3),
            underscore(t1),
            ratio(
                exec("submit_receipt_attested_key")?,
                exec("submit_receipt_signed")?
            )
        ),
        format!(
            "FIGURES: genuine TDX + H100 evidence as charged (WASM x{}) = {} ps = {:.2}% of a block's {} ps ref time; a fresh-quote receipt with it = {:.2}%",
            input.wasm_factor,
            underscore(verify),
            pct(verify),
            underscore(block),
            pct(fresh)
        ),
        format!(
            "FIGURES: attested registration with it (its pallet path + that verification under the largest policy) = {} ps = {:.2}% of a block",
            underscore(register),
            pct(register)
        ),
    ]);
    Ok(lines)
}

/// `ns` nanoseconds as picoseconds of WASM execution (`factor` times the native time).
fn scale_ns(ns: u128, factor: f64) -> u128 {
    // Float to integer: saturating by definition of `as`; the inputs are nanosecond counts.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ps = (ns as f64 * 1_000.0 * factor).round() as u128;
    ps
}

/// The generated file.
pub(crate) fn render(input: &Input<'_>) -> Result<String> {
    let info: BTreeMap<Vec<u8>, &StorageInfo> = input
        .storage_info
        .iter()
        .map(|i| (i.prefix.clone(), i))
        .collect();
    let fitted: Vec<Fitted> = input
        .measured
        .iter()
        .map(|m| {
            let none = Vec::new();
            fit(
                m,
                &info,
                if m.name == "verify_evidence" {
                    input.evidence_floors
                } else {
                    &none
                },
            )
        })
        .collect::<Result<_>>()?;
    let cmd = format!(
        "cd chain && SKIP_WASM_BUILD=1 cargo run --release -p sigil-bench -- --steps {} --repeat {} --wasm-factor {}",
        input.steps, input.repeat, input.wasm_factor
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! Autogenerated weights for `{}`\n//!\n\
         //! THIS FILE WAS AUTO-GENERATED BY `sigil-bench` (chain/bench), which runs the pallet's\n\
         //! frame-benchmarking benchmarks through the runtime's `Benchmark` API, natively, against\n\
         //! `sigil-runtime` (its types, attestation verifier and `development` genesis), and fits them\n\
         //! with frame-benchmarking's least-squares analysis. Do not edit by hand.\n//!\n\
         //! DATE: {}, STEPS: `{}`, REPEAT: `{}`, LOW RANGE: `[]`, HIGH RANGE: `[]`\n\
         //! WORST CASE MAP SIZE: `{WORST_CASE_MAP_VALUES}`\n\
         //! HOSTNAME: `{}`, CPU: `{}` ({} cores visible)\n\
         //! EXECUTION: `native` (not WASM: see docs/chain.md, Weights), DB CACHE: in memory,\n\
         //! database reads and writes priced by `DbWeight`",
        input.pallet,
        today(),
        input.steps,
        input.repeat,
        first_line(&std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()),
        cpu_name(),
        cores()
    );
    let _ = writeln!(
        s,
        "//!\n//! `verify_evidence(g, r, o, b)` is fitted over TDX + H100 bundles with g GPU reports, r RIMs,\n\
         //! o OCSP responses and b padding bytes, the copies adversarial (device chains failing at their\n\
         //! last signature, RIMs with a changed signature byte, OCSP responses about no certificate, the\n\
         //! padding as RIM measurements), STEPS `{}`, REPEAT `{}`; its times are multiplied by {}\n\
         //! (`--wasm-factor`, the measured WASM/native ratio: docs/chain.md, Weights). Bundles timed alone\n\
         //! (the largest policy: 16 KiB of pinned measurements), g/r/o/bytes as `bundle::cost` reads them:",
        input.evidence_plan.0, input.evidence_plan.1, input.wasm_factor
    );
    for r in input.evidence {
        let share = (r.ns as f64) * 1_000.0 * 100.0 / (input.block_ref_time as f64);
        let [g, rims, o, b] = r.counts;
        let _ = writeln!(
            s,
            "//! - {}: {g}/{rims}/{o}/{b}, {} ns native ({share:.2}% of a block's ref time)",
            r.name,
            underscore(r.ns),
        );
    }
    for line in figures(&fitted, input)? {
        eprintln!("{line}");
        let _ = writeln!(s, "{}", format!("//! {line}").trim_end());
    }
    let _ = writeln!(s, "\n// Executed Command:\n// {cmd}\n");
    s.push_str(
        "#![cfg_attr(rustfmt, rustfmt_skip)]\n#![allow(unused_parens)]\n#![allow(unused_imports)]\n#![allow(missing_docs)]\n\n\
         use polkadot_sdk::frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};\n\
         use core::marker::PhantomData;\n\n",
    );
    let _ = writeln!(s, "/// Weight functions needed for `{}`.", input.pallet);
    s.push_str("pub trait WeightInfo {\n");
    for f in &fitted {
        let params: String = f
            .components
            .iter()
            .map(|(n, _, _)| format!("{n}: u32, "))
            .collect();
        let _ = writeln!(s, "\tfn {}({params}) -> Weight;", f.name);
    }
    s.push_str("}\n\n");
    let _ = writeln!(
        s,
        "/// Weights for `{}` using the Substrate node and recommended hardware.",
        input.pallet
    );
    s.push_str("pub struct SubstrateWeight<T>(PhantomData<T>);\nimpl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {\n");
    for f in &fitted {
        s.push_str(&body(f, "T::DbWeight::get()"));
    }
    s.push_str("}\n\n// For backwards compatibility and tests.\nimpl WeightInfo for () {\n");
    for f in &fitted {
        s.push_str(&body(f, "RocksDbWeight::get()"));
    }
    s.push_str("}\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    // Tests may panic on broken expectations.
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn trie_depth_is_the_clis_log16_works() {
        // frame-benchmarking-cli `easy_log_16`.
        for (n, d) in [
            (0, 0),
            (1, 0),
            (16, 1),
            (17, 2),
            (256, 2),
            (4_096, 3),
            (65_537, 5),
            (1_000_000, 5),
            (u32::MAX, 8),
        ] {
            assert_eq!(trie_depth(Some(n)), d, "{n}");
        }
        assert_eq!(trie_depth(None), 5);
        assert_eq!(pov_overhead(None), 5 * 15 * 33);
    }

    #[test]
    fn underscore_groups_thousands_works() {
        assert_eq!(underscore(0), "0");
        assert_eq!(underscore(999), "999");
        assert_eq!(underscore(1_000), "1_000");
        assert_eq!(underscore(61_764_060_000), "61_764_060_000");
    }

    #[test]
    fn today_is_a_date_works() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
