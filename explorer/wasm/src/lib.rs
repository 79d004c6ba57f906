//! The market explorer's verifier, compiled to WebAssembly.
//!
//! The page hands this crate bytes it read from a Sigil node (or files a person dropped on it)
//! and gets JSON back. Every check is a call into `attestation-verifier`, the code the chain
//! runtime, `sigil-verify` and `sigil audit replay` run, with its pure-Rust crypto backend:
//!
//! - [`replay_job`]: a job's on-chain record (receipts, the evidence they rest on, the job's
//!   policy document, the settlement) replayed as `sigil audit replay` does, with each check
//!   reported on its own ([`replay`]);
//! - [`check_receipt_file`], [`check_bundle_file`], [`check_snp_file`], [`check_tdx_file`]:
//!   what `sigil-verify receipt`, `bundle`, `snp` and `tdx` print with `--format json`, for
//!   dropped files ([`files`]);
//! - [`policy_document`]: a stored policy document, checked against its id, as TOML.
//!
//! Nothing here reads a clock or does I/O: the verification time is always an argument. Input
//! is untrusted: malformed JSON, hex or evidence becomes a rejection with its reason, never a
//! panic.

use wasm_bindgen::prelude::wasm_bindgen;

pub mod files;
pub mod replay;

/// Replays a job's verification from its on-chain record ([`replay::ReplayInput`] as JSON);
/// returns a [`replay::ReplayReport`] as JSON.
#[wasm_bindgen]
pub fn replay_job(record_json: &str) -> String {
    replay::replay_json(record_json)
}

/// `sigil-verify receipt --format json` for a dropped receipt (`SCALE(SignedReceipt)`) and, for
/// tier 3, its bundle (`SCALE(EvidenceBundle)`). `policy` is a policy in TOML, a genesis
/// policy's name, or empty for the strict default policy; `at_secs` the verification time.
#[wasm_bindgen]
pub fn check_receipt_file(
    receipt: &[u8],
    bundle: Option<Vec<u8>>,
    policy: &str,
    allow_simulated: bool,
    at_secs: f64,
) -> String {
    files::check_receipt_json(receipt, bundle.as_deref(), policy, allow_simulated, at_secs)
}

/// `sigil-verify bundle --format json` for a dropped evidence bundle; `agent_key` and `nonce`
/// are 64 hex digits each, or empty.
#[wasm_bindgen]
pub fn check_bundle_file(
    bundle: &[u8],
    agent_key: &str,
    nonce: &str,
    policy: &str,
    allow_simulated: bool,
    at_secs: f64,
) -> String {
    files::check_bundle_json(bundle, agent_key, nonce, policy, allow_simulated, at_secs)
}

/// `sigil-verify snp --format json` for a dropped SEV-SNP report with its VCEK or VLEK and,
/// optionally, ASK, ARK and CRL (all DER).
#[wasm_bindgen]
pub fn check_snp_file(
    report: &[u8],
    vek: &[u8],
    ask: Option<Vec<u8>>,
    ark: Option<Vec<u8>>,
    crl: Option<Vec<u8>>,
    policy: &str,
    at_secs: f64,
) -> String {
    let c = files::SnpFiles {
        vek,
        ask: ask.as_deref(),
        ark: ark.as_deref(),
        crl: crl.as_deref(),
    };
    files::check_snp_json(report, &c, policy, at_secs)
}

/// `sigil-verify tdx --collateral bundle.json --format json` for a dropped TDX quote and its
/// collateral bundle (JSON).
#[wasm_bindgen]
pub fn check_tdx_file(quote: &[u8], collateral: &[u8], policy: &str, at_secs: f64) -> String {
    files::check_tdx_json(quote, collateral, policy, at_secs)
}

/// A policy document as the chain stores it (its canonical bytes, hex), checked to hash to
/// `id` (hex): `{"id", "toml", "tees", "name"}` or `{"error"}` as JSON.
#[wasm_bindgen]
pub fn policy_document(id_hex: &str, document_hex: &str) -> String {
    replay::policy_document_json(id_hex, document_hex)
}

/// The genesis policies: `[{"name", "id", "toml"}]` as JSON.
#[wasm_bindgen]
pub fn genesis_policies() -> String {
    replay::genesis_policies_json()
}
