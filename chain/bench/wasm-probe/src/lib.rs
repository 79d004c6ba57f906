//! One evidence verification as the runtime's verifier adapter runs it: decode the bundle,
//! build a verifier over the pinned roots, verify the bundle at the given time. The bundle is
//! compiled in from `SIGIL_PROBE_BUNDLE` (written by `sigil-bench --write-probe-bundle`), so
//! the WASM module needs no imports.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::receipt::ReceiptVerifier;

/// The evidence bundle.
pub const BUNDLE: &[u8] = include_bytes!(env!("SIGIL_PROBE_BUNDLE"));
/// Its verification time, Unix seconds.
pub const AT: &str = env!("SIGIL_PROBE_AT");

/// Verifies the bundle `iterations` times; returns the number of failures of the last run
/// (so the work cannot be optimised away).
pub fn verify_n(iterations: u32, at: u64) -> u32 {
    let mut failures = 0;
    for _ in 0..iterations {
        failures = match EvidenceBundle::from_bytes(BUNDLE) {
            Err(_) => u32::MAX,
            Ok(_) => match ReceiptVerifier::new(RustCrypto) {
                Err(_) => u32::MAX,
                Ok(mut v) => match v.verify_bundle(BUNDLE, None, None, UnixTime(at)) {
                    Ok(_) => 0,
                    Err(f) => u32::try_from(f.0.len()).unwrap_or(u32::MAX),
                },
            },
        };
    }
    failures
}

/// The WASM export: [`verify_n`] at the bundle's time.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn run(iterations: u32) -> u32 {
    verify_n(iterations, AT.parse().unwrap_or(0))
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
