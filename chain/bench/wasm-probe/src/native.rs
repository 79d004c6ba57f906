//! The same verification natively: `probe-native <iterations>` prints nanoseconds per run.

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let at: u64 = sigil_wasm_probe::AT.parse().unwrap_or(0);
    // Warm up once, as the WASM side does.
    let failures = sigil_wasm_probe::verify_n(1, at);
    let start = std::time::Instant::now();
    sigil_wasm_probe::verify_n(n, at);
    let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
    println!("native: {ns} ns per verification ({failures} expected failures)");
}
