//! An OCSP response: the parser, what it says about a real device chain's certificates, and
//! the whole GPU verification of a real report with the fuzzed response.
#![no_main]

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::verify::ocsp::parse_ocsp;
use attestation_verifier::verify::x509::Cert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_ocsp(data) else {
        return;
    };
    let g = attestation_verifier_fuzz::gpu();
    let certs: Vec<Cert> = g
        .chain
        .iter()
        .filter_map(|d| Cert::from_der("device certificate", d).ok())
        .collect();
    for w in certs.windows(2) {
        let _ = response.covers(&RustCrypto, &w[0], &w[1]);
    }
    let ocsp = [data.to_vec()];
    attestation_verifier_fuzz::check_real_gpu(None, None, &[], &ocsp);
});
