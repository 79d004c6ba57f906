//! The test AMD-like PKI and SEV-SNP reports of `sigil-test-support`, with the verifier's trust
//! store over it, for tests that need SNP evidence that verifies under a trust store of their
//! own (the pinned AMD roots sign nothing a test makes).
// Test support may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub, missing_docs)]

use attestation_verifier::evidence::snp::Product;
use attestation_verifier::verify::snp::SnpTrustStore;
use rcgen::KeyPair;

pub use sigil_test_support::snp::snp_report;

/// A Milan platform under a test ARK: its trust store, certificates (DER) and VCEK key.
pub struct TestPlatform {
    /// Trusts the test ARK (with its ASK and ASVK) for Milan.
    pub trust: SnpTrustStore,
    pub ark: Vec<u8>,
    pub ask: Vec<u8>,
    pub vcek: Vec<u8>,
    pub vcek_key: KeyPair,
}

/// A fresh test platform (see `sigil_test_support::snp::test_platform`) and its trust store.
pub fn test_platform() -> TestPlatform {
    let p = sigil_test_support::snp::test_platform();
    let mut trust = SnpTrustStore::empty();
    trust.add(Product::Milan, &p.ark, &p.ask, &p.asvk).unwrap();
    TestPlatform {
        trust,
        ark: p.ark,
        ask: p.ask,
        vcek: p.vcek,
        vcek_key: p.vcek_key,
    }
}
