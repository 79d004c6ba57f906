//! An SEV-SNP report: the parser, then the whole verification (chain, signature, TCB, policy)
//! against a real case's VCEK, ASK and ARK.
#![no_main]

use attestation_verifier::check_snp;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static VERIFIER: Mutex<Option<SnpVerifier<RustCrypto>>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let _ = parse_snp_report(data);
    let v = attestation_verifier_fuzz::snp();
    let collateral = SnpCollateral {
        vek: &v.vek,
        intermediate: Some(&v.ask),
        ark: Some(&v.ark),
        crl: None,
    };
    let outcome = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || SnpVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| check_snp(verifier, data, &collateral, &Policy::default(), v.now),
    );
    // The default policy accepts the real report: anything accepted must be it, signed bytes
    // for signed bytes.
    if outcome.accepted() {
        attestation_verifier_fuzz::snp_accepted(data);
    }
});
