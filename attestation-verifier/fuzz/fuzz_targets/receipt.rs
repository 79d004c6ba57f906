//! A signed receipt (SCALE) with an optional evidence bundle after `split`'s separator:
//! decoding round-trips, and the whole receipt verification runs.
#![no_main]

use attestation_verifier::check_receipt;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{ReceiptBody, SignedReceipt};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::receipt::ReceiptVerifier;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static VERIFIER: Mutex<Option<ReceiptVerifier<RustCrypto>>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let parts = attestation_verifier_fuzz::split(data, 2);
    let receipt = parts[0];
    let bundle = parts.get(1).copied();
    if let Ok(signed) = SignedReceipt::decode_bytes(receipt) {
        assert_eq!(signed.to_bytes(), receipt, "SCALE round trip");
        if let Ok(body) = signed.body() {
            assert_eq!(
                ReceiptBody::from_bytes(&body.to_bytes()).as_ref(),
                Ok(&body)
            );
        }
        // No receipt among the seeds is signed (their signatures are zeros, their keys made
        // up): a signature that verifies here was made by no key holder, a forgery.
        if signed.verify(&RustCrypto).is_ok() {
            panic!("a receipt signature verified, and no seed was signed by its key");
        }
    }
    let outcome = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || ReceiptVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| {
            check_receipt(
                verifier,
                receipt,
                bundle,
                &Policy::default(),
                UnixTime(1_750_000_000),
            )
        },
    );
    assert!(
        !outcome.accepted(),
        "a receipt was accepted, and no seed was signed by its key"
    );
});
