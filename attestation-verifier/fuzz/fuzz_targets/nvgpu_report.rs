//! An NVIDIA GPU attestation report (SPDM GET_MEASUREMENTS request and response): the parser,
//! then the whole verification with a real case's certificate chain and nonce.
#![no_main]

use attestation_verifier::evidence::nvgpu::parse_nvgpu_report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_nvgpu_report(data);
    attestation_verifier_fuzz::check_real_gpu(Some(data), None, &[], &[]);
});
