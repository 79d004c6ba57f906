//! Dropped files: what `sigil-verify receipt`, `bundle`, `snp` and `tdx` print with
//! `--format json`, for the same inputs, from the same `check_*` calls.
//!
//! The envelope is the CLI's: `{"verdict": "accepted" | "rejected", "reasons": [...],
//! "claims": ...}`. Where the CLI would exit 2 (a policy that does not load, a bad key or nonce
//! argument) the result is `{"error": ...}` instead; the verifier's own rejections (a receipt
//! or bundle that does not decode, a bad signature) are verdicts, as in the CLI.

use std::string::String;
use std::vec::Vec;

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::{Policy, genesis};
use attestation_verifier::{
    Outcome, ReceiptVerifier, SnpCollateral, SnpVerifier, TdxCollateral, TdxVerifier, UnixTime,
    check_bundle, check_receipt, check_snp, check_tdx,
};
use serde::Serialize;

use crate::replay::to_json;

/// The largest receipt read (the CLI's limit for `--receipt`).
const MAX_RECEIPT: usize = 1 << 20;
/// The largest bundle read (the CLI's limit for `--bundle`).
const MAX_BUNDLE: usize = 16 << 20;

#[derive(Serialize)]
struct Envelope<'a, C: Serialize> {
    verdict: &'static str,
    reasons: &'a [String],
    claims: Option<&'a C>,
}

fn envelope<C: Serialize>(outcome: &Outcome<C>) -> String {
    to_json(&Envelope {
        verdict: if outcome.accepted() {
            "accepted"
        } else {
            "rejected"
        },
        reasons: &outcome.reasons,
        claims: outcome.claims.as_ref(),
    })
}

fn error(message: impl Into<String>) -> String {
    to_json(&serde_json::json!({ "error": message.into() }))
}

/// The policy: TOML, a genesis policy's name, or empty for the strict default.
pub fn load_policy(text: &str, allow_simulated: bool) -> Result<Policy, String> {
    let text = text.trim();
    let mut policy = if text.is_empty() {
        Policy::default()
    } else if let Some(p) = genesis::named(text) {
        p
    } else {
        Policy::from_toml(text).map_err(|e| std::format!("policy: {e}"))?
    };
    policy.allow_simulated |= allow_simulated;
    Ok(policy)
}

/// Seconds since 1970 from the page's clock (a float in JavaScript).
fn time(at_secs: f64) -> Result<UnixTime, String> {
    if (0.0..1e15).contains(&at_secs) {
        // Truncation to whole seconds is intended; the range is checked above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(UnixTime(at_secs as u64))
    } else {
        Err("the verification time is not a time".into())
    }
}

fn key32(what: &str, s: &str) -> Result<Option<[u8; 32]>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let s = s.strip_prefix("0x").unwrap_or(s);
    let v = hex::decode(s).map_err(|_| std::format!("{what} is not hex"))?;
    v.try_into()
        .map(Some)
        .map_err(|v: Vec<u8>| std::format!("{what} must be 32 bytes, got {}", v.len()))
}

/// `sigil-verify receipt --format json`.
pub fn check_receipt_json(
    receipt: &[u8],
    bundle: Option<&[u8]>,
    policy: &str,
    allow_simulated: bool,
    at_secs: f64,
) -> String {
    if receipt.len() > MAX_RECEIPT || bundle.is_some_and(|b| b.len() > MAX_BUNDLE) {
        return error("the receipt (at most 1 MiB) or the bundle (at most 16 MiB) is too large");
    }
    let (policy, now) = match (load_policy(policy, allow_simulated), time(at_secs)) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let Ok(mut verifier) = ReceiptVerifier::new(RustCrypto) else {
        return error("loading the pinned roots");
    };
    envelope(&check_receipt(&mut verifier, receipt, bundle, &policy, now))
}

/// `sigil-verify bundle --format json`.
pub fn check_bundle_json(
    bundle: &[u8],
    agent_key: &str,
    nonce: &str,
    policy: &str,
    allow_simulated: bool,
    at_secs: f64,
) -> String {
    if bundle.len() > MAX_BUNDLE {
        return error("the bundle is larger than 16 MiB");
    }
    let args = (
        key32("the agent key", agent_key),
        key32("the nonce", nonce),
        load_policy(policy, allow_simulated),
        time(at_secs),
    );
    let (key, nonce, policy, now) = match args {
        (Ok(k), Ok(n), Ok(p), Ok(t)) => (k, n, p, t),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return error(e),
    };
    let Ok(mut verifier) = ReceiptVerifier::new(RustCrypto) else {
        return error("loading the pinned roots");
    };
    envelope(&check_bundle(
        &mut verifier,
        bundle,
        key.as_ref(),
        nonce.as_ref(),
        &policy,
        now,
    ))
}

/// `sigil-verify snp --format json`: a report with its VCEK or VLEK (DER) and, optionally, the
/// ASK (or ASVK) and ARK (DER) and a CRL (DER).
pub fn check_snp_json(
    report: &[u8],
    collateral: &SnpFiles<'_>,
    policy: &str,
    at_secs: f64,
) -> String {
    const MAX_CERT: usize = 1 << 20;
    const MAX_CRL: usize = 16 << 20;
    if report.len() > 64 << 10
        || [Some(collateral.vek), collateral.ask, collateral.ark]
            .into_iter()
            .flatten()
            .any(|c| c.len() > MAX_CERT)
        || collateral.crl.is_some_and(|c| c.len() > MAX_CRL)
    {
        return error("a file is larger than sigil-verify reads");
    }
    let (policy, now) = match (load_policy(policy, false), time(at_secs)) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let Ok(mut verifier) = SnpVerifier::new(RustCrypto) else {
        return error("loading the pinned AMD roots");
    };
    let c = SnpCollateral {
        vek: collateral.vek,
        intermediate: collateral.ask,
        ark: collateral.ark,
        crl: collateral.crl,
    };
    envelope(&check_snp(&mut verifier, report, &c, &policy, now))
}

/// The certificates and CRL that come with an SEV-SNP report (DER).
#[derive(Clone, Copy, Debug)]
pub struct SnpFiles<'a> {
    /// VCEK or VLEK.
    pub vek: &'a [u8],
    /// ASK or ASVK.
    pub ask: Option<&'a [u8]>,
    /// ARK.
    pub ark: Option<&'a [u8]>,
    /// CRL.
    pub crl: Option<&'a [u8]>,
}

/// `sigil-verify tdx --collateral bundle.json --format json`: a quote with its collateral bundle
/// (JSON).
pub fn check_tdx_json(quote: &[u8], collateral: &[u8], policy: &str, at_secs: f64) -> String {
    if quote.len() > 1 << 20 || collateral.len() > 16 << 20 {
        return error("a file is larger than sigil-verify reads");
    }
    let (policy, now) = match (load_policy(policy, false), time(at_secs)) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let collateral = match TdxCollateral::from_json(collateral) {
        Ok(c) => c,
        Err(e) => return error(std::format!("the TDX collateral: {e}")),
    };
    let Ok(mut verifier) = TdxVerifier::new(RustCrypto) else {
        return error("loading the pinned Intel root");
    };
    envelope(&check_tdx(&mut verifier, quote, &collateral, &policy, now))
}
