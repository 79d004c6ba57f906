//! A policy as untrusted text (TOML, from a file) and as untrusted canonical bytes (from the
//! chain): whatever parses survives the round trips, and accepted canonical bytes are exactly
//! the canonical bytes of the policy they decode to.
#![no_main]

use attestation_verifier::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(p) = Policy::from_toml(text)
    {
        attestation_verifier_fuzz::check_policy_round_trips(&p);
    }
    if let Ok(p) = Policy::from_canonical_bytes(data) {
        assert_eq!(p.canonical_bytes(), data, "canonical bytes are unique");
        attestation_verifier_fuzz::check_policy_round_trips(&p);
    }
});
