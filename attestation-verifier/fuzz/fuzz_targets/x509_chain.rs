//! Certificates and chains: each part of the input (see `split`) parsed as a certificate, its
//! accessors read, and the parts verified as a GPU device chain against the pinned NVIDIA root
//! with a real report.
#![no_main]

use attestation_verifier::verify::x509::Cert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = attestation_verifier_fuzz::split(data, 8);
    let mut certs = Vec::new();
    for p in &parts {
        if let Ok(c) = Cert::from_der("certificate", p) {
            let _ = (
                c.validity(),
                c.subject_cn(),
                c.is_ca(),
                c.serial(),
                c.public_key(),
            );
            certs.push(c);
        }
    }
    for w in certs.windows(2) {
        let _ = w[0].issued_by_name(&w[1]);
    }
    let chain: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    attestation_verifier_fuzz::check_real_gpu(None, Some(&chain), &[], &[]);
});
