//! A TDX quote verified by this crate and by `dcap-qvl` 0.7.1 (ring backend) with the
//! collateral of a real case: whenever this crate accepts, `dcap-qvl` accepts with the same
//! statuses and TD report fields, and whenever only `dcap-qvl` accepts, this crate's refusal
//! is one of the named deliberate differences (`tests/tdx_differential/mod.rs`, shared with
//! `tests/dcap_qvl_differential.rs`). A broken relation panics with both outcomes.
#![no_main]

#[path = "../../tests/tdx_differential/mod.rs"]
mod tdx_differential;

use std::sync::{Mutex, OnceLock};

use attestation_verifier::crypto::AwsLc;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::tdx::TdxVerifier;
use dcap_qvl::QuoteCollateralV3;
use libfuzzer_sys::fuzz_target;

static VERIFIER: Mutex<Option<TdxVerifier<AwsLc>>> = Mutex::new(None);

/// The case's collateral in `dcap-qvl`'s layout, and the policy, made once per process.
fn fixed() -> &'static (QuoteCollateralV3, Policy) {
    static F: OnceLock<(QuoteCollateralV3, Policy)> = OnceLock::new();
    F.get_or_init(|| {
        let t = attestation_verifier_fuzz::tdx();
        (
            tdx_differential::reference_collateral(&t.collateral),
            tdx_differential::policy(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let t = attestation_verifier_fuzz::tdx();
    let (reference, policy) = fixed();
    let related = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || TdxVerifier::new(AwsLc).expect("pinned root"),
        |verifier| {
            tdx_differential::relation(
                verifier,
                policy,
                &t.collateral,
                reference,
                t.now.as_secs(),
                data,
            )
        },
    );
    if let Err(e) = related {
        panic!("{e}");
    }
});
