//! The `sigil-verify` command line (feature `cli`).
//!
//! Each subcommand verifies one kind of evidence and prints one result on stdout:
//! a JSON envelope `{"verdict", "reasons", "claims"}` or a text rendering of it.
//! Diagnostics go to stderr.
//!
//! Exit status, one rule for every command: 0 the evidence is accepted; 1 the evidence is
//! rejected, whatever layer refused it (a PEM, hex, JSON, DER or binary encoding that does not
//! decode is a rejection like a bad signature); 2 the command could not run (usage, an
//! unreadable or missing file, an input over its maximum size ([`Input`]), a bad policy or
//! `--at`, a failed fetch, a failed write of the result).

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

pub mod azure_vtpm;
pub mod eventlog;
pub mod gce;
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
    /// Verify an Azure confidential VM's vTPM quote with the paravisor's HCL
    /// report and the SEV-SNP report or TD quote that vouches for it.
    AzureVtpm(azure_vtpm::AzureVtpmArgs),
    /// Verify Google's signed launch endorsement of GCE confidential-VM firmware against
    /// the root you pin, and whether a report's MEASUREMENT or MRTD is endorsed.
    GceEndorsement(gce::GceEndorsementArgs),
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
                let bytes = read(path, Input::Policy)
                    .with_context(|| format!("reading policy {}", path.display()))?;
                let text = String::from_utf8(bytes)
                    .with_context(|| format!("policy {} is not UTF-8", path.display()))?;
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

/// A fixed-length value given as hex on the command line (`0x` allowed); `flag` names it in
/// the error (a usage error: exit 2).
pub fn hex_array<const N: usize>(flag: &str, s: &str) -> anyhow::Result<[u8; N]> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let v = hex::decode(s).with_context(|| format!("--{flag} is not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("--{flag} must be {N} bytes, got {}", v.len()))
}

/// Parses an RFC 3339 timestamp into Unix time.
pub fn parse_rfc3339(s: &str) -> anyhow::Result<UnixTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {s:?} is not an RFC 3339 time"))?;
    let secs = u64::try_from(t.unix_timestamp()).context("--at is before 1970")?;
    Ok(UnixTime(secs))
}

/// The kinds of input file, each read with a maximum size: past it the command stops
/// with [`InputError::TooLarge`] (exit 2) before reading further. Each maximum is well above
/// the largest valid input of its kind, so an oversized file is refused without exhausting
/// memory and a merely long one still reaches its decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// `snp --report`: 64 KiB (a report is 1184 bytes).
    SnpReport,
    /// A certificate or a PEM certificate chain (`--cert`, `--ask`, `--ark`,
    /// `gpu --cert-chain`): 1 MiB.
    Certificate,
    /// A CRL (`snp --crl`): 16 MiB.
    Crl,
    /// A TDX quote (`tdx --quote`, `eventlog --quote`): 1 MiB.
    TdxQuote,
    /// One TDX collateral file (bundle JSON, or one file of a PCS directory): 16 MiB.
    Collateral,
    /// `gpu --report`, raw or hex: 1 MiB.
    GpuReport,
    /// A RIM (`gpu --rim`): 16 MiB.
    Rim,
    /// An OCSP response (`gpu --ocsp`): 1 MiB.
    Ocsp,
    /// A signed receipt (`--receipt`): 1 MiB (a valid one is at most 4096 bytes).
    Receipt,
    /// An evidence bundle (`--bundle`): 16 MiB (a valid one is at most 4 MiB).
    Bundle,
    /// An inclusion proof (`output --proof`): 1 MiB.
    Proof,
    /// A job output (`output --file`), hashed as a stream: 64 GiB.
    Output,
    /// A policy (`--policy`): 1 MiB.
    Policy,
    /// A boot event log (`eventlog --log`): 16 MiB (a valid one is at most 1 MiB).
    EventLog,
    /// Azure vTPM evidence (`azure-vtpm --evidence`, `--hcl-report`, `--tpm-quote`): 1 MiB.
    AzureVtpmEvidence,
    /// A GCE launch endorsement (`gce-endorsement --endorsement`): 1 MiB (a valid one is
    /// at most 64 KiB).
    GceEndorsement,
    /// A firmware image hashed whole (`gce-endorsement --firmware`): 64 MiB, the
    /// maximum of `measure`'s firmware (`crate::measure::MAX_FIRMWARE_LEN`).
    Firmware,
}

impl Input {
    /// The most bytes read from one file of this kind.
    pub const fn max(self) -> u64 {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        match self {
            Self::SnpReport => 64 * KIB,
            Self::Certificate
            | Self::TdxQuote
            | Self::GpuReport
            | Self::Ocsp
            | Self::Receipt
            | Self::Proof
            | Self::Policy
            | Self::AzureVtpmEvidence
            | Self::GceEndorsement => MIB,
            Self::Firmware => crate::measure::MAX_FIRMWARE_LEN as u64,
            Self::Crl | Self::Collateral | Self::Rim | Self::Bundle | Self::EventLog => 16 * MIB,
            Self::Output => 64 << 30,
        }
    }

    /// What the input is, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SnpReport => "SEV-SNP report",
            Self::Certificate => "certificate",
            Self::Crl => "CRL",
            Self::TdxQuote => "TDX quote",
            Self::Collateral => "TDX collateral",
            Self::GpuReport => "GPU report",
            Self::Rim => "RIM",
            Self::Ocsp => "OCSP response",
            Self::Receipt => "receipt",
            Self::Bundle => "evidence bundle",
            Self::Proof => "inclusion proof",
            Self::Output => "output",
            Self::Policy => "policy",
            Self::EventLog => "event log",
            Self::AzureVtpmEvidence => "Azure vTPM evidence",
            Self::GceEndorsement => "GCE launch endorsement",
            Self::Firmware => "firmware",
        }
    }
}

/// Why an input file was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file is larger than its kind's maximum: the command does not run (exit 2).
    #[error("{path}: the {what} is larger than its maximum of {max} bytes")]
    TooLarge {
        /// The kind of input.
        what: &'static str,
        /// The file.
        path: String,
        /// Its maximum ([`Input::max`]).
        max: u64,
    },
    /// Evidence whose encoding (PEM, hex, JSON, text) does not decode: the evidence is
    /// rejected (exit 1), as when its DER or binary layout does not.
    #[error("{what} {path}: {reason}")]
    Malformed {
        /// The kind of input.
        what: &'static str,
        /// The file.
        path: String,
        /// What the decoder said.
        reason: String,
    },
}

impl InputError {
    /// Evidence from `path` that does not decode; `e`'s chain is the reason.
    pub fn malformed(what: Input, path: &Path, e: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what: what.name(),
            path: path.display().to_string(),
            reason: format!("{e:#}"),
        }
    }
}

/// Opens `path` and reads it through a reader bounded at `what`'s maximum.
pub fn open_bounded(path: &Path, what: Input) -> anyhow::Result<std::io::Take<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(std::io::Read::take(file, what.max().saturating_add(1)))
}

/// The error for a file found longer than `what`'s maximum.
pub fn too_large(path: &Path, what: Input) -> anyhow::Error {
    InputError::TooLarge {
        what: what.name(),
        path: path.display().to_string(),
        max: what.max(),
    }
    .into()
}

/// Reads a file of kind `what`, at most [`Input::max`] bytes, naming it in the error.
pub fn read(path: &Path, what: Input) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_bounded(path, what)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > what.max() {
        return Err(too_large(path, what));
    }
    Ok(bytes)
}

/// Reads a certificate, CRL or OCSP response given as DER or PEM; returns DER. PEM that does
/// not decode is malformed evidence ([`InputError::Malformed`]).
pub fn read_der(path: &Path, what: Input) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path, what)?;
    if bytes.starts_with(b"-----BEGIN") || bytes.iter().take(64).all(u8::is_ascii) {
        let p = pem::parse(&bytes)
            .map_err(|e| InputError::malformed(what, path, format_args!("not PEM ({e})")))?;
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

impl Command {
    /// The output format of a command that prints a verdict envelope.
    fn format(&self) -> Option<Format> {
        match self {
            Self::Snp(a) => Some(a.common.format),
            Self::Receipt(a) => Some(a.common.format),
            Self::Bundle(a) => Some(a.common.format),
            Self::Output(a) => Some(a.format),
            Self::Tdx(a) => Some(a.common.format),
            Self::Eventlog(a) => Some(a.common.format),
            Self::Gpu(a) => Some(a.common.format),
            Self::Measure(_) => None,
            Self::AzureVtpm(a) => Some(a.common.format),
            Self::GceEndorsement(a) => Some(a.format.envelope()),
        }
    }
}

/// Runs a parsed command line. Evidence that does not decode ([`InputError::Malformed`]) is
/// printed as a rejection (exit 1), like any other reason the evidence is refused.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let format = cli.command.format();
    let result = dispatch(cli);
    match (result, format) {
        (Err(e), Some(format)) => match e.downcast_ref::<InputError>() {
            Some(malformed @ InputError::Malformed { .. }) => {
                let outcome = Outcome::<()> {
                    claims: None,
                    reasons: std::vec![malformed.to_string()],
                };
                report(&outcome, format)
            }
            _ => Err(e),
        },
        (result, _) => result,
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Snp(args) => snp::run(&args),
        Command::Receipt(args) => receipt::run(&args),
        Command::Bundle(args) => receipt::run_bundle(&args),
        Command::Output(args) => receipt::run_output(&args),
        Command::Tdx(args) => tdx::run(&args),
        Command::Eventlog(args) => eventlog::run(&args),
        Command::Gpu(args) => gpu::run(&args),
        Command::Measure(args) => measure::run(&args),
        Command::AzureVtpm(args) => azure_vtpm::run(&args),
        Command::GceEndorsement(args) => gce::run(&args),
    }
}
