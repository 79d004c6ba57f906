//! An NVIDIA GPU attestation report (SPDM GET_MEASUREMENTS request and response): the parser,
//! then the whole verification with a real case's certificate chain and nonce.
#![no_main]

use attestation_verifier::check_gpu;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::nvgpu::parse_nvgpu_report;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_nvgpu_report(data);
    let g = attestation_verifier_fuzz::gpu();
    let collateral = NvGpuCollateral {
        cert_chain: &g.chain,
        rims: &[],
        ocsp: &[],
    };
    let mut verifier = NvGpuVerifier::new(RustCrypto).expect("pinned roots");
    let _ = check_gpu(
        &mut verifier,
        data,
        &collateral,
        &g.nonce,
        &Policy::default(),
        g.now,
    );
});
