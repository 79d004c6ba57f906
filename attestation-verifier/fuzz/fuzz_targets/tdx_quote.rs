//! A TDX quote: the parser, then the whole verification (PCK chain, QE report, TCB level,
//! policy) with the collateral of a real case.
#![no_main]

use std::sync::Mutex;

use attestation_verifier::check_tdx;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::tdx::TdxVerifier;
use libfuzzer_sys::fuzz_target;

static VERIFIER: Mutex<Option<TdxVerifier<RustCrypto>>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let _ = parse_tdx_quote(data);
    let t = attestation_verifier_fuzz::tdx();
    let outcome = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || TdxVerifier::new(RustCrypto).expect("pinned root"),
        |verifier| check_tdx(verifier, data, &t.collateral, &Policy::default(), t.now),
    );
    // The default policy accepts the real quote: anything accepted must be it, signed bytes
    // for signed bytes.
    if outcome.accepted() {
        attestation_verifier_fuzz::tdx_accepted(data);
    }
});
