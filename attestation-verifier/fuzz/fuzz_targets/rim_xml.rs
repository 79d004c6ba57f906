//! A RIM (SWID XML): the XML tokenizer and tree, the RIM parser, then the whole GPU
//! verification of a real report with the fuzzed RIM (signature, chain, measurements).
#![no_main]

use attestation_verifier::check_gpu;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::rim::parse_rim;
use attestation_verifier::evidence::xml;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = xml::parse(text);
    }
    if parse_rim(data).is_err() {
        return;
    }
    let g = attestation_verifier_fuzz::gpu();
    let rims = [data.to_vec()];
    let collateral = NvGpuCollateral {
        cert_chain: &g.chain,
        rims: &rims,
        ocsp: &[],
    };
    let mut verifier = NvGpuVerifier::new(RustCrypto).expect("pinned roots");
    let _ = check_gpu(
        &mut verifier,
        &g.report,
        &collateral,
        &g.nonce,
        &Policy::default(),
        g.now,
    );
});
