//! An evidence bundle (SCALE): whatever decodes re-encodes to the same bytes, and the whole
//! bundle verification (every evidence kind it carries, the policy) runs on it.
#![no_main]

use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::check_bundle;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::receipt::ReceiptVerifier;
use libfuzzer_sys::fuzz_target;
use parity_scale_codec::{DecodeAll, Encode};
use std::sync::Mutex;

static VERIFIER: Mutex<Option<ReceiptVerifier<RustCrypto>>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = EvidenceBundle::decode_all(&mut &data[..]) {
        assert_eq!(bundle.encode(), data, "SCALE round trip");
    }
    if let Ok(bundle) = EvidenceBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data, "round trip of a checked bundle");
    }
    let outcome = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || ReceiptVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| {
            check_bundle(
                verifier,
                data,
                None,
                None,
                &Policy::default(),
                UnixTime(1_750_000_000),
            )
        },
    );
    // The forgery oracle: the genuine evidence a seed carries binds the vectors' REPORT_DATA,
    // never a bundle's key and nonce, other evidence is signed by no vendor key, and the
    // default policy refuses simulated evidence: an accepted bundle is a forgery.
    assert!(!outcome.accepted(), "a bundle was accepted: {outcome:?}");
});
