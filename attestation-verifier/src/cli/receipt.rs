//! `sigil-verify receipt`, `sigil-verify bundle` and `sigil-verify output`.

use std::path::PathBuf;
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::String;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::{CommonArgs, Format, Input, hex_array, read, report};
use crate::crypto::DefaultCrypto;
use crate::merkle::{InclusionProof, verify_inclusion};
use crate::pipeline::Outcome;
use crate::pipeline::{check_bundle, check_receipt};
use crate::receipt::SignedReceipt;
use crate::verify::receipt::ReceiptVerifier;

/// Arguments of `sigil-verify receipt`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// The signed receipt: `SCALE(SignedReceipt)`.
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// The evidence bundle the receipt references: `SCALE(EvidenceBundle)`.
    /// Omit only for receipts without evidence (tiers 1 and 2).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Accept evidence from the agent's simulator (testing only; overrides the policy).
    #[arg(long)]
    pub allow_simulated: bool,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// Runs `sigil-verify receipt`.
pub fn run(args: &ReceiptArgs) -> anyhow::Result<ExitCode> {
    let receipt = read(&args.receipt, Input::Receipt)?;
    let bundle = args
        .bundle
        .as_deref()
        .map(|p| read(p, Input::Bundle))
        .transpose()?;
    let mut policy = args.common.load_policy()?;
    policy.allow_simulated |= args.allow_simulated;
    let now = args.common.time()?;
    let mut verifier =
        ReceiptVerifier::new(DefaultCrypto::default()).context("loading the pinned roots")?;
    let outcome = check_receipt(&mut verifier, &receipt, bundle.as_deref(), &policy, now);
    report(&outcome, args.common.format)
}

/// Arguments of `sigil-verify bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The evidence bundle: `SCALE(EvidenceBundle)`.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The agent public key the bundle must bind (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub agent_key: Option<String>,
    /// The challenge nonce the bundle must bind (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// Accept evidence from the agent's simulator (testing only; overrides the policy).
    #[arg(long)]
    pub allow_simulated: bool,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// Runs `sigil-verify bundle`.
pub fn run_bundle(args: &BundleArgs) -> anyhow::Result<ExitCode> {
    let bundle = read(&args.bundle, Input::Bundle)?;
    let key = args
        .agent_key
        .as_deref()
        .map(|s| hex_array::<32>("agent-key", s))
        .transpose()?;
    let nonce = args
        .nonce
        .as_deref()
        .map(|s| hex_array::<32>("nonce", s))
        .transpose()?;
    let mut policy = args.common.load_policy()?;
    policy.allow_simulated |= args.allow_simulated;
    let now = args.common.time()?;
    let mut verifier =
        ReceiptVerifier::new(DefaultCrypto::default()).context("loading the pinned roots")?;
    let outcome = check_bundle(
        &mut verifier,
        &bundle,
        key.as_ref(),
        nonce.as_ref(),
        &policy,
        now,
    );
    report(&outcome, args.common.format)
}

/// Arguments of `sigil-verify output`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The signed receipt: `SCALE(SignedReceipt)`.
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// The output's name, as the job produced it (its path in the output directory).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The output's content.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The inclusion proof: `SCALE(InclusionProof)`.
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What `sigil-verify output` reports.
#[derive(Debug, Serialize)]
pub struct OutputClaims {
    /// The job.
    pub job_id: String,
    /// The receipt's signer.
    pub provider: String,
    /// The receipt's result commitment.
    pub result_commitment: String,
    /// How many outputs it commits to.
    pub output_count: u32,
    /// The output's name.
    pub name: String,
    /// SHA-256 of the output's content.
    pub content_sha256: String,
    /// Its position among the outputs.
    pub index: u32,
}

/// Runs `sigil-verify output`: the output is under the result commitment of a
/// receipt whose signature verifies. (The receipt's evidence is checked by
/// `sigil-verify receipt`.)
pub fn run_output(args: &OutputArgs) -> anyhow::Result<ExitCode> {
    let receipt = read(&args.receipt, Input::Receipt)?;
    let content_sha256 = sha256_file(&args.file)?;
    let proof = read(&args.proof, Input::Proof)?;
    let crypto = DefaultCrypto::default();
    let mut reasons = Vec::new();
    let mut claims = None;
    match SignedReceipt::decode_bytes(&receipt).and_then(|r| r.verify(&crypto)) {
        Err(e) => reasons.push(e.to_string()),
        Ok(checked) => {
            let b = &checked.body;
            let mut index = 0;
            match InclusionProof::from_bytes(&proof) {
                Err(e) => reasons.push(e.to_string()),
                Ok(p) => {
                    index = p.index;
                    if let Err(e) = verify_inclusion(
                        &crypto,
                        &b.result_commitment,
                        b.output_count,
                        args.name.as_bytes(),
                        &content_sha256,
                        &p,
                    ) {
                        reasons.push(e.to_string());
                    }
                }
            }
            claims = Some(OutputClaims {
                job_id: hex::encode(b.job_id),
                provider: hex::encode(b.provider),
                result_commitment: hex::encode(b.result_commitment),
                output_count: b.output_count,
                name: args.name.clone(),
                content_sha256: hex::encode(content_sha256),
                index,
            });
        }
    }
    report(&Outcome { claims, reasons }, args.format)
}

/// SHA-256 of a job output read as a stream, at most [`Input::Output`]'s maximum.
fn sha256_file(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut reader = super::open_bounded(path, Input::Output)?;
    let mut h = sha2::Sha256::new();
    let mut buf = std::vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| std::format!("reading {}", path.display()))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        h.update(chunk);
        total = total.saturating_add(n as u64);
    }
    if total > Input::Output.max() {
        return Err(super::too_large(path, Input::Output));
    }
    Ok(h.finalize().into())
}
