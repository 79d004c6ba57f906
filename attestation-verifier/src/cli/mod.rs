//! The `sigil-verify` command line (feature `cli`).
//!
//! Each subcommand verifies one kind of evidence and prints one result on stdout:
//! a JSON envelope `{"verdict", "reasons", "claims"}` or a text rendering of it.
//! Exit status: 0 accepted, 1 rejected, 2 usage or I/O error. Diagnostics go to stderr.

use std::format;
use std::path::{Path, PathBuf};
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::String;
use std::vec::Vec;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::pipeline::Outcome;
use crate::policy::Policy;
use crate::time::UnixTime;

pub mod eventlog;
pub mod gpu;
pub mod measure;
pub mod receipt;
pub mod snp;
pub mod tdx;

/// Verify confidential-computing attestation evidence against pinned vendor roots.
#[derive(Debug, Parser)]
#[command(name = "sigil-verify", version, about, long_about = None)]
pub struct Cli {
    /// What to verify.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands: one per evidence kind.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify an AMD SEV-SNP attestation report with its VCEK or VLEK.
    Snp(snp::SnpArgs),
    /// Verify a Sigil receipt: its signature, its binding to the evidence bundle, the evidence and the policy.
    Receipt(receipt::ReceiptArgs),
    /// Verify an evidence bundle on its own (agent registration or a challenge answer).
    Bundle(receipt::BundleArgs),
    /// Check one job output against a receipt's result commitment with an inclusion proof.
    Output(receipt::OutputArgs),
    /// Verify an Intel TDX quote (DCAP v4/v5) with its collateral.
    Tdx(tdx::TdxArgs),
    /// Replay a TDX boot event log (CCEL or dstack JSON) into RTMR0..RTMR3 and, with
    /// `--quote`, compare them with the quote's.
    Eventlog(eventlog::EventLogArgs),
    /// Verify an NVIDIA H100/H200 confidential-GPU attestation report with its
    /// certificate chain, RIMs and OCSP responses.
    Gpu(gpu::GpuArgs),
    /// Compute the launch measurement (SEV-SNP MEASUREMENT, TDX MRTD) that a policy
    /// pins, from the guest's firmware, kernel and launch parameters.
    Measure(measure::MeasureArgs),
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Appraisal policy (TOML); without it the strict default policy applies.
    #[arg(long, value_name = "TOML")]
    pub policy: Option<PathBuf>,
    /// Verification time, RFC 3339 (e.g. 2025-01-09T22:14:21Z); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

impl CommonArgs {
    /// The policy file, or the default policy.
    pub fn load_policy(&self) -> anyhow::Result<Policy> {
        match &self.policy {
            None => Ok(Policy::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading policy {}", path.display()))?;
                Policy::from_toml(&text).with_context(|| format!("policy {}", path.display()))
            }
        }
    }

    /// The verification time.
    pub fn time(&self) -> anyhow::Result<UnixTime> {
        match &self.at {
            None => Ok(UnixTime::now()),
            Some(s) => parse_rfc3339(s),
        }
    }
}

/// Parses an RFC 3339 timestamp into Unix time.
pub fn parse_rfc3339(s: &str) -> anyhow::Result<UnixTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {s:?} is not an RFC 3339 time"))?;
    let secs = u64::try_from(t.unix_timestamp()).context("--at is before 1970")?;
    Ok(UnixTime(secs))
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a certificate or CRL given as DER or PEM; returns DER.
pub fn read_der(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    if bytes.starts_with(b"-----BEGIN") || bytes.iter().take(64).all(u8::is_ascii) {
        let p = pem::parse(&bytes).with_context(|| format!("{} is not PEM", path.display()))?;
        Ok(p.into_contents())
    } else {
        Ok(bytes)
    }
}

#[derive(Serialize)]
struct Envelope<'a, C: Serialize> {
    verdict: &'static str,
    reasons: &'a [String],
    claims: Option<&'a C>,
}

/// Writes one result to stdout, followed by a newline. A failed write (a full disk, a closed
/// pipe) is an error, so the command exits 2 instead of panicking as `println!` would.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("writing the result to stdout")
}

/// Prints an outcome and returns the exit status for it.
pub fn report<C: Serialize>(outcome: &Outcome<C>, format: Format) -> anyhow::Result<ExitCode> {
    let verdict = if outcome.accepted() {
        "accepted"
    } else {
        "rejected"
    };
    let env = Envelope {
        verdict,
        reasons: &outcome.reasons,
        claims: outcome.claims.as_ref(),
    };
    let out = match format {
        Format::Json => serde_json::to_string(&env)?,
        Format::Text => text(&serde_json::to_value(&env)?),
    };
    emit(&out)?;
    Ok(if outcome.accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn text(v: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(verdict) = v.get("verdict").and_then(|x| x.as_str()) {
        out.push_str(&format!("verdict: {verdict}\n"));
    }
    for r in v
        .get("reasons")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("reason: {}\n", r.as_str().unwrap_or_default()));
    }
    if let Some(claims) = v.get("claims").filter(|c| !c.is_null()) {
        out.push_str("claims:\n");
        flatten(claims, "  ", &mut out);
    }
    out.trim_end().into()
}

fn flatten(v: &serde_json::Value, indent: &str, out: &mut String) {
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            match val {
                serde_json::Value::Object(_) => {
                    out.push_str(&format!("{indent}{k}:\n"));
                    flatten(val, &format!("{indent}  "), out);
                }
                serde_json::Value::String(s) => out.push_str(&format!("{indent}{k}: {s}\n")),
                other => out.push_str(&format!("{indent}{k}: {other}\n")),
            }
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Snp(args) => snp::run(&args),
        Command::Receipt(args) => receipt::run(&args),
        Command::Bundle(args) => receipt::run_bundle(&args),
        Command::Output(args) => receipt::run_output(&args),
        Command::Tdx(args) => tdx::run(&args),
        Command::Eventlog(args) => eventlog::run(&args),
        Command::Gpu(args) => gpu::run(&args),
        Command::Measure(args) => measure::run(&args),
    }
}
