//! An SEV-SNP report: the parser, then the whole verification (chain, signature, TCB, policy)
//! against a real case's VCEK, ASK and ARK.
#![no_main]

use attestation_verifier::check_snp;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_snp_report(data);
    let v = attestation_verifier_fuzz::snp();
    let collateral = SnpCollateral {
        vek: &v.vek,
        intermediate: Some(&v.ask),
        ark: Some(&v.ark),
        crl: None,
    };
    let mut verifier = SnpVerifier::new(RustCrypto).expect("pinned roots");
    let _ = check_snp(&mut verifier, data, &collateral, &Policy::default(), v.now);
});
