//! The `sigil` command line (feature `cli`): the market chain from the command line
//! (providers and their offers, buyers, the chain's dispatch rule, audit) and jobs on providers' agents.
//!
//! Output is JSON on stdout by default (`--format text` for `key: value` lines); watch commands
//! print one JSON object per line. Diagnostics go to stderr. Exit status: 0 done, 1 the chain
//! said no (a dispatch error or an invalid transaction; for `audit replay`, a job that does not
//! verify), 2 bad input or no usable connection to the node.
//!
//! One file per command group (`chain`, `account`, `provider`, `buyer`, `dispatch`, `audit`,
//! `job`); this module holds what they share: the global options, signing keys, argument
//! parsing, output and the exit status. The binary (`src/bin/sigil.rs`) only parses and calls
//! [`run`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};
use sigil_agent_client::AgentError;

use crate::types::TeeKind;
use crate::{ChainClient, ChainError, ConnectOptions, KeyScheme, Keypair, policy};

mod account;
mod audit;
mod buyer;
mod chain;
mod dispatch;
mod job;
mod policy_cmd;
mod provider;

/// Client of the Sigil market chain.
#[derive(Parser, Debug)]
#[command(name = "sigil", version, about, long_about = None)]
pub struct Cli {
    /// The node's WebSocket RPC URL.
    #[arg(
        long,
        global = true,
        env = "SIGIL_CHAIN_URL",
        default_value = "ws://127.0.0.1:9944"
    )]
    url: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// How long to keep retrying an unreachable node (at start and after the connection drops).
    #[arg(
        long,
        global = true,
        env = "SIGIL_RECONNECT_SECS",
        default_value_t = 30
    )]
    reconnect_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON document (watch commands: one per line).
    Json,
    /// `key: value` lines.
    Text,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The chain: name, runtime, head, token, upgrade council.
    #[command(subcommand)]
    Chain(chain::ChainCmd),
    /// Accounts: MINT balances and transfers.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Provider: register, offer, deregister, submit receipts, watch for bound jobs.
    #[command(subcommand)]
    Provider(provider::ProviderCmd),
    /// Buyer: fund jobs, watch them, cancel unbound ones, reclaim expired escrow.
    #[command(subcommand)]
    Buyer(buyer::BuyerCmd),
    /// Attestation policies: write one, compute its id, register, show, list, retire.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCmd),
    /// The chain's dispatch rule, run by anyone: bind a waiting job, reassign a job whose
    /// providers missed their response window.
    #[command(subcommand)]
    Dispatch(dispatch::DispatchCmd),
    /// Audit: a job's full record, and its verification replayed offline.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Jobs on a provider's agent (gRPC): write a spec, submit it, wait, fetch the receipt and
    /// outputs.
    #[command(subcommand)]
    Job(job::JobCmd),
}

/// The account key that signs the transaction.
#[derive(Args, Debug, Clone)]
struct KeyArgs {
    /// Secret URI of the signing account (`//Alice`, a phrase with `//junctions`, a `0x` seed).
    #[arg(long, env = "SIGIL_SURI", conflicts_with = "suri_file")]
    suri: Option<String>,
    /// File holding the secret URI.
    #[arg(long, env = "SIGIL_SURI_FILE")]
    suri_file: Option<PathBuf>,
    /// The key's scheme (providers default to ed25519: their account is their receipt key).
    #[arg(long, value_enum)]
    scheme: Option<Scheme>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scheme {
    Sr25519,
    Ed25519,
}

impl KeyArgs {
    fn load(&self, default: KeyScheme) -> Result<Keypair> {
        let scheme = match self.scheme {
            Some(Scheme::Sr25519) => KeyScheme::Sr25519,
            Some(Scheme::Ed25519) => KeyScheme::Ed25519,
            None => default,
        };
        let key = match (&self.suri, &self.suri_file) {
            (Some(uri), _) => Keypair::from_uri(scheme, uri)?,
            (None, Some(path)) => Keypair::from_file(scheme, path)?,
            (None, None) => {
                return Err(ChainError::BadInput {
                    what: "signing key",
                    detail: "give --suri or --suri-file".into(),
                }
                .into());
            }
        };
        Ok(key)
    }
}

/// The process exit status for an error: 1 when the chain (or an agent) said no, 2 otherwise.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<ChainError>() {
        Some(c) if c.is_refusal() => 1,
        _ if matches!(
            e.downcast_ref::<AgentError>(),
            Some(AgentError::Status { .. } | AgentError::OutputMismatch { .. })
        ) =>
        {
            1
        }
        _ => 2,
    }
}

fn error_kind(e: &anyhow::Error) -> (&'static str, Option<String>) {
    match e.downcast_ref::<ChainError>() {
        Some(ChainError::Dispatch { error, .. }) => ("dispatch", Some(error.name())),
        Some(ChainError::Rejected { .. }) => ("rejected", None),
        Some(ChainError::BadInput { .. }) => ("bad-input", None),
        Some(ChainError::Unreachable { .. }) => ("unreachable", None),
        Some(ChainError::Rpc { .. }) => ("rpc", None),
        Some(ChainError::NotFound { .. }) => ("not-found", None),
        Some(ChainError::Timeout { .. }) => ("timeout", None),
        _ => match e.downcast_ref::<AgentError>() {
            Some(AgentError::Status { .. }) => ("agent-refused", None),
            Some(AgentError::Connect { .. }) => ("unreachable", None),
            Some(AgentError::OutputMismatch { .. }) => ("output-mismatch", None),
            Some(_) => ("agent", None),
            None => ("error", None),
        },
    }
}

/// Runs a parsed command line: prints its result on stdout, or its error on stderr (and, with
/// `--format json`, on stdout too); returns the exit status.
pub fn run(cli: Cli) -> ExitCode {
    let format = cli.format;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sigil: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run_command(&cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (kind, dispatch) = error_kind(&e);
            if format == Format::Json {
                let mut err = json!({ "kind": kind, "message": format!("{e:#}") });
                if let (Some(d), Some(obj)) = (dispatch, err.as_object_mut()) {
                    obj.insert("dispatch".into(), Value::String(d));
                }
                println!("{}", json!({ "error": err }));
            }
            eprintln!("sigil: error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

async fn connect(cli: &Cli) -> Result<ChainClient> {
    let options = ConnectOptions {
        reconnect_window: Duration::from_secs(cli.reconnect_secs),
        ..ConnectOptions::default()
    };
    Ok(ChainClient::connect_with(&cli.url, options).await?)
}

async fn run_command(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Chain(cmd) => chain::run(cli, cmd).await,
        Command::Account(cmd) => account::run(cli, cmd).await,
        Command::Provider(cmd) => provider::run(cli, cmd).await,
        Command::Buyer(cmd) => buyer::run(cli, cmd).await,
        Command::Policy(cmd) => policy_cmd::run(cli, cmd).await,
        Command::Dispatch(cmd) => dispatch::run(cli, cmd).await,
        Command::Audit(cmd) => audit::run(cli, cmd).await,
        Command::Job(cmd) => job::run(cli, cmd).await,
    }
}

fn bad(what: &'static str, detail: &str) -> ChainError {
    ChainError::BadInput {
        what,
        detail: detail.to_string(),
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, ChainError> {
    std::fs::read(path).map_err(|e| ChainError::BadInput {
        what,
        detail: format!("{}: {e}", path.display()),
    })
}

fn parse_tee(s: &str) -> Result<TeeKind, ChainError> {
    match s {
        "sev-snp" => Ok(TeeKind::SevSnp),
        "tdx" => Ok(TeeKind::Tdx),
        "simulated" => Ok(TeeKind::Simulated),
        other => Err(bad(
            "TEE kind",
            &format!("{other:?} (sev-snp, tdx, simulated)"),
        )),
    }
}

fn parse_policy_arg(s: Option<&str>) -> Result<[u8; 32], ChainError> {
    let s = s.ok_or_else(|| bad("policy", "tier 3 needs --policy"))?;
    policy::parse_policy_ref(s).ok_or_else(|| {
        bad(
            "policy",
            &format!(
                "{s:?} is neither a 0x id (64 hex digits) nor a genesis policy ({})",
                policy::NAMES.join(", ")
            ),
        )
    })
}

/// `5`, `0.25`, `1000.000000000001` MINT to the smallest unit (12 decimals).
fn parse_mint(s: &str) -> Result<u128, ChainError> {
    crate::parse_mint("price", s)
}

/// Writes `text` to stdout as it is (TOML, for `sigil policy new|show --format text`).
fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn emit<T: Serialize>(format: Format, value: &T) -> Result<()> {
    let v = serde_json::to_value(value).context("encoding the output")?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?,
        Format::Text => write_text(&mut out, "", &v)?,
    }
    Ok(())
}

fn emit_line<T: Serialize>(format: Format, value: &T) -> Result<()> {
    let v = serde_json::to_value(value).context("encoding the output")?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{v}")?,
        Format::Text => {
            write_text(&mut out, "", &v)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `path.to.field: value` lines.
fn write_text(out: &mut impl Write, prefix: &str, v: &Value) -> std::io::Result<()> {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                write_text(out, &key(k), v)?;
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                write_text(out, &key(&i.to_string()), v)?;
            }
        }
        Value::String(s) => writeln!(out, "{prefix}: {s}")?,
        other => writeln!(out, "{prefix}: {other}")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests;
