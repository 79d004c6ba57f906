//! A supplied root is refused unless it is byte for byte the pinned root it stands for, and
//! nothing may follow the pinned root in a chain. Regression tests for findings of the outside
//! mutation campaign (issue 21: a supplied ARK, the root inside a TDX quote's PCK chain, and
//! anything after the pinned root of a GPU chain were accepted whatever they contained), on
//! real vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::check_gpu;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::snp::{Product, parse_snp_report};
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier, NvGpuVerifyError};
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier, SnpVerifyError};
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier, TdxVerifyError};
use sigil_test_support::Case;

fn der(pem_bytes: &[u8]) -> Vec<u8> {
    pem::parse(pem_bytes).unwrap().into_contents()
}

fn snp_with_ark(ark: &[u8]) -> Result<(), Vec<SnpVerifyError>> {
    let c = Case::load("snp", "milan-v3-oak-oc-release");
    let report = parse_snp_report(&c.file("report.bin")).unwrap();
    let vek = c.file("vcek.der");
    let ask = der(&c.file("ask.pem"));
    let collateral = SnpCollateral {
        vek: &vek,
        intermediate: Some(&ask),
        ark: Some(ark),
        crl: None,
    };
    let mut v = SnpVerifier::new(RustCrypto).unwrap();
    v.verify(&report, &collateral, UnixTime(c.verification_time()))
        .map(|_| ())
        .map_err(|f| f.0)
}

#[test]
fn supplied_ark_byte_equal_works() {
    let c = Case::load("snp", "milan-v3-oak-oc-release");
    snp_with_ark(&der(&c.file("ark.pem"))).unwrap();
}

#[test]
fn supplied_ark_same_key_other_bytes_rejects() {
    let c = Case::load("snp", "milan-v3-oak-oc-release");
    let mut ark = der(&c.file("ark.pem"));
    // The last byte of the ARK's own signature: same name, same key, still parses.
    *ark.last_mut().unwrap() ^= 1;
    let e = snp_with_ark(&ark).unwrap_err();
    assert!(
        matches!(
            e[..],
            [SnpVerifyError::UntrustedArk {
                product: Product::Milan,
                ..
            }]
        ),
        "{e:?}"
    );
}

/// The quote of a real TDX vector with one byte of the root certificate in its PCK chain
/// changed (a base64 digit in the root's signature; the quote keeps its length).
fn tdx_errors(mutate: bool) -> Vec<TdxVerifyError> {
    let c = Case::load("tdx", "tdx-v4-dcap-qvl-sample");
    let mut quote = c.file("quote.bin");
    if mutate {
        let end = b"-----END CERTIFICATE-----";
        let last = quote
            .windows(end.len())
            .rposition(|w| w == end)
            .expect("a PEM chain in the quote");
        // 40 base64 digits before the root's END line: inside its signature's `s`.
        let i = (0..last)
            .rev()
            .filter(|&i| quote[i].is_ascii_alphanumeric())
            .nth(40)
            .unwrap();
        quote[i] = if quote[i] == b'A' { b'B' } else { b'A' };
    }
    let collateral = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
    let q = parse_tdx_quote(&quote).unwrap();
    let mut v = TdxVerifier::new(RustCrypto).unwrap();
    match v.verify(&q, &collateral, UnixTime(c.verification_time())) {
        Ok(_) => Vec::new(),
        Err(f) => f.0,
    }
}

#[test]
fn tdx_quote_root_byte_equal_works() {
    assert_eq!(tdx_errors(false), Vec::new());
}

#[test]
fn tdx_quote_root_same_key_other_bytes_rejects() {
    let e = tdx_errors(true);
    assert_eq!(
        e,
        [TdxVerifyError::UntrustedRoot {
            what: "PCK certificate chain"
        }]
    );
}

fn gpu_reasons(chain: &[Vec<u8>]) -> Vec<String> {
    let c = Case::load("nvgpu", "hopper-nvtrust-sample");
    let nonce_hex = String::from_utf8(c.file("nonce.hex")).unwrap();
    let nonce: [u8; 32] = hex::decode(nonce_hex.trim()).unwrap().try_into().unwrap();
    let collateral = NvGpuCollateral {
        cert_chain: chain,
        rims: &[],
        ocsp: &[],
    };
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    let policy = Policy::default();
    let out = check_gpu(
        &mut v,
        &c.file("report.bin"),
        &collateral,
        &nonce,
        &policy,
        UnixTime(c.verification_time()),
    );
    out.reasons
}

fn gpu_chain() -> Vec<Vec<u8>> {
    let c = Case::load("nvgpu", "hopper-nvtrust-sample");
    pem::parse_many(c.file("cert_chain.pem"))
        .unwrap()
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect()
}

#[test]
fn gpu_chain_ending_at_pinned_root_works() {
    let chain = gpu_chain();
    let reasons = gpu_reasons(&chain);
    assert!(
        !reasons
            .iter()
            .any(|r| r.contains("device certificate chain")),
        "{reasons:?}"
    );
}

#[test]
fn gpu_chain_after_pinned_root_rejects() {
    let mut chain = gpu_chain();
    // Anything after the pinned root: here a second copy of the leaf.
    chain.push(chain[0].clone());
    let reasons = gpu_reasons(&chain);
    assert!(
        reasons.contains(&NvGpuVerifyError::CertificatesAfterRoot(1).to_string()),
        "{reasons:?}"
    );
}

#[test]
fn gpu_chain_too_long_rejects() {
    let chain = gpu_chain();
    let root = chain.last().unwrap().clone();
    let mut long: Vec<Vec<u8>> = core::iter::repeat_n(chain[0].clone(), 40).collect();
    long.push(root);
    let reasons = gpu_reasons(&long);
    assert!(
        reasons.contains(&NvGpuVerifyError::ChainLength(40).to_string()),
        "{reasons:?}"
    );
}
