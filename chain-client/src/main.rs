//! `sigil`: the market chain from the command line (providers, buyers, the dispatcher, audit).
//!
//! Output is JSON on stdout by default (`--format text` for `key: value` lines); watch commands
//! print one JSON object per line. Diagnostics go to stderr. Exit status: 0 done, 1 the chain
//! said no (a dispatch error or an invalid transaction; for `audit replay`, a job that does not
//! verify), 2 bad input or no usable connection to the node.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use sigil_agent_client::AgentError;
use sigil_chain_client::types::{
    Capabilities, JobOrder, MINT, ProviderClass, TeeKind, Tier, TierTerms,
};
use sigil_chain_client::{
    ChainClient, ChainError, ConnectOptions, Ed25519Keypair, KeyScheme, Keypair, audit,
    parse_account, parse_hex32, policy,
};

mod cli_job;

/// Client of the Sigil market chain.
#[derive(Parser, Debug)]
#[command(name = "sigil", version, about, long_about = None)]
struct Cli {
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
    /// The chain: name, runtime, head, token, dispatchers.
    #[command(subcommand)]
    Chain(ChainCmd),
    /// Accounts: MINT balances and transfers.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Provider: register, deregister, submit receipts, watch for bound jobs.
    #[command(subcommand)]
    Provider(ProviderCmd),
    /// Buyer: fund jobs, watch them, reclaim expired escrow.
    #[command(subcommand)]
    Buyer(BuyerCmd),
    /// Dispatcher: bind providers to jobs.
    #[command(subcommand)]
    Dispatch(DispatchCmd),
    /// Audit: a job's full record, and its verification replayed offline.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Jobs on a provider's agent (gRPC): write a spec, submit it, wait, fetch the receipt and
    /// outputs.
    #[command(subcommand)]
    Job(cli_job::JobCmd),
}

#[derive(Subcommand, Debug)]
enum ChainCmd {
    /// Chain name, runtime version, finalized head, token, dispatcher set.
    Info,
}

#[derive(Subcommand, Debug)]
enum AccountCmd {
    /// The account of a key: SS58 and hex (no chain needed).
    Address {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Free and held (escrowed) MINT of an account.
    Balance {
        /// The account (SS58 or 0x hex).
        account: String,
    },
    /// Transfer MINT (keeping the sender alive).
    Transfer {
        #[command(flatten)]
        key: KeyArgs,
        /// The recipient (SS58 or 0x hex).
        #[arg(long)]
        to: String,
        /// Amount in MINT (decimal).
        #[arg(long)]
        amount: String,
    },
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

#[derive(Subcommand, Debug)]
enum ProviderCmd {
    /// Register as a provider (tier 3: with an evidence bundle binding the receipt key).
    Register {
        #[command(flatten)]
        key: KeyArgs,
        /// Secret URI of the ed25519 receipt key, when it is not the account key.
        #[arg(long)]
        receipt_suri: Option<String>,
        /// Tiers served: signed, quorum, attested (or 1, 2, 3), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        tiers: Vec<String>,
        /// TEE kinds run: sev-snp, tdx, simulated, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tee: Vec<String>,
        /// GPU model (empty for none).
        #[arg(long, default_value = "")]
        gpu_model: String,
        /// Evidence bundle (`SCALE(EvidenceBundle)`) attesting the receipt key, for tier 3.
        #[arg(long, requires = "policy")]
        evidence: Option<PathBuf>,
        /// Policy the evidence is verified under: a name (`sigil.simulated.v1`) or `0x` id.
        #[arg(long)]
        policy: Option<String>,
    },
    /// A provider's registration: receipt key, offer, attested key, open jobs (exit 2 when
    /// the account is not registered).
    Show {
        /// The provider's account (SS58 or 0x hex).
        #[arg(long)]
        account: String,
    },
    /// Replace the attested key's evidence with a fresh bundle binding the same key.
    RefreshAttestation {
        #[command(flatten)]
        key: KeyArgs,
        /// The new evidence bundle.
        #[arg(long)]
        evidence: PathBuf,
    },
    /// Remove the registration (refused while bound jobs are open).
    Deregister {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Submit a signed receipt (`SCALE(SignedReceipt)`, as the agent writes it).
    SubmitReceipt {
        #[command(flatten)]
        key: KeyArgs,
        /// The job (default: the job the receipt names).
        #[arg(long)]
        job: Option<String>,
        /// The signed receipt file.
        #[arg(long)]
        receipt: PathBuf,
        /// The evidence bundle of a fresh-quote receipt.
        #[arg(long)]
        evidence: Option<PathBuf>,
    },
    /// Print jobs bound to a provider as they are bound (one JSON object per line).
    Watch {
        /// The provider's account (SS58 or 0x hex); default: the key's account.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        /// Stop after this many jobs.
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
enum BuyerCmd {
    /// Fund a job: the price is held in escrow until settlement or refund.
    Fund(FundArgs),
    /// Print a job's events until it settles or is refunded (one JSON object per line).
    Watch {
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Reclaim an expired job's escrow (anyone may call it after the deadline).
    Reclaim {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
    },
}

#[derive(Args, Debug)]
struct FundArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The job id (0x + 64 hex); default: random.
    #[arg(long)]
    job: Option<String>,
    /// SHA-256 of the job specification (0x hex).
    #[arg(long, conflicts_with = "spec", required_unless_present = "spec")]
    spec_hash: Option<String>,
    /// The job specification file (its SHA-256 is escrowed with the job).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Tier: 1 (signed), 2 (quorum), 3 (attested).
    #[arg(long)]
    tier: u8,
    /// Tier 2: matching receipts needed.
    #[arg(long)]
    k: Option<u32>,
    /// Tier 2: providers bound.
    #[arg(long)]
    n: Option<u32>,
    /// Tier 3: attestation policy, a name or 0x id.
    #[arg(long)]
    policy: Option<String>,
    /// Tier 3: every receipt must carry evidence bound to itself.
    #[arg(long)]
    fresh_quote: bool,
    /// Acceptable TEE kinds, comma-separated (empty: any).
    #[arg(long, value_delimiter = ',')]
    tee: Vec<String>,
    /// Required GPU model (empty: any).
    #[arg(long, default_value = "")]
    gpu_model: String,
    /// Price in MINT (decimal, e.g. 5 or 0.25).
    #[arg(long)]
    price: String,
    /// Blocks from the current head to the deadline.
    #[arg(long, default_value_t = 600)]
    deadline_blocks: u32,
}

#[derive(Subcommand, Debug)]
enum DispatchCmd {
    /// Bind providers to a funded job (one for tiers 1 and 3, n for tier 2).
    Bind {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        /// A provider account (SS58 or 0x hex); repeat for tier 2.
        #[arg(long = "provider", required = true)]
        providers: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Print a job's record: job, binding, receipts, settlement, evidence.
    Job {
        /// The job id (0x hex).
        job: String,
    },
    /// Re-verify a job offline (receipt signatures, tier-3 evidence, settlement); exit 1 if it
    /// does not verify.
    Replay {
        /// The job id (0x hex).
        job: String,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
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

async fn run(cli: Cli) -> Result<u8> {
    let format = cli.format;
    match &cli.command {
        Command::Chain(ChainCmd::Info) => {
            let c = connect(&cli).await?;
            emit(format, &c.info().await?)?;
        }
        Command::Account(AccountCmd::Address { key }) => {
            // Without --scheme the key is read as sr25519, the scheme of non-provider accounts.
            let who = key.load(KeyScheme::Sr25519)?.account_id();
            emit(
                format,
                &json!({ "account": who.to_string(), "hex": format!("0x{}", hex::encode(who.0)) }),
            )?;
        }
        Command::Account(AccountCmd::Balance { account }) => {
            let who = parse_account(account)?;
            let c = connect(&cli).await?;
            let free = c.free_balance(&who).await?;
            let held = c.reserved_balance(&who).await?;
            emit(
                format,
                &json!({ "account": who.to_string(), "free": free.to_string(), "held": held.to_string() }),
            )?;
        }
        Command::Account(AccountCmd::Transfer { key, to, amount }) => {
            let to = parse_account(to)?;
            let amount = parse_mint(amount)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(&cli).await?;
            emit(format, &c.transfer(&signer, &to, amount).await?)?;
        }
        Command::Job(cmd) => return cli_job::run(format, cmd).await,
        Command::Provider(cmd) => provider(&cli, cmd).await?,
        Command::Buyer(cmd) => buyer(&cli, cmd).await?,
        Command::Dispatch(DispatchCmd::Bind {
            key,
            job,
            providers,
        }) => {
            let job = parse_hex32("job id", job)?;
            let providers = providers
                .iter()
                .map(|p| parse_account(p))
                .collect::<Result<Vec<_>, _>>()?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(&cli).await?;
            emit(format, &c.bind(&signer, &job, &providers).await?)?;
        }
        Command::Audit(AuditCmd::Job { job }) => {
            let job = parse_hex32("job id", job)?;
            let c = connect(&cli).await?;
            emit(format, &c.job_record(&job).await?)?;
        }
        Command::Audit(AuditCmd::Replay { job }) => {
            let job = parse_hex32("job id", job)?;
            let c = connect(&cli).await?;
            let record = c.job_record(&job).await?;
            let report = audit::replay(&record);
            emit(format, &report)?;
            if !report.verified {
                eprintln!("sigil: job 0x{} does not verify", hex::encode(job));
                return Ok(1);
            }
        }
    }
    Ok(0)
}

async fn provider(cli: &Cli, cmd: &ProviderCmd) -> Result<()> {
    let format = cli.format;
    match cmd {
        ProviderCmd::Show { account } => {
            let who = parse_account(account)?;
            let c = connect(cli).await?;
            let p = c
                .provider(&who)
                .await?
                .ok_or_else(|| ChainError::NotFound {
                    what: "provider",
                    id: who.to_string(),
                })?;
            emit(format, &p)?;
        }
        ProviderCmd::Register {
            key,
            receipt_suri,
            tiers,
            tee,
            gpu_model,
            evidence,
            policy: policy_arg,
        } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let receipt_key = match (receipt_suri, signer.as_ed25519()) {
                (Some(uri), _) => Ed25519Keypair::from_uri(uri)?,
                (None, Some(k)) => k.clone(),
                (None, None) => bail!(ChainError::BadInput {
                    what: "receipt key",
                    detail: "an sr25519 account needs --receipt-suri for its ed25519 receipt key"
                        .into(),
                }),
            };
            let capabilities = Capabilities {
                tiers: tiers
                    .iter()
                    .map(|t| parse_tier(t))
                    .collect::<Result<_, _>>()?,
                tee_kinds: tee.iter().map(|t| parse_tee(t)).collect::<Result<_, _>>()?,
                gpu_model: gpu_model.clone(),
            };
            let attestation = match evidence {
                None => None,
                Some(path) => Some(sigil_chain_client::types::Evidence {
                    bundle: read_file(path, "evidence bundle")?,
                    policy: parse_policy_arg(policy_arg.as_deref())?,
                }),
            };
            let c = connect(cli).await?;
            emit(
                format,
                &c.register_provider(&signer, &receipt_key, &capabilities, attestation.as_ref())
                    .await?,
            )?;
        }
        ProviderCmd::RefreshAttestation { key, evidence } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let bundle = read_file(evidence, "evidence bundle")?;
            let c = connect(cli).await?;
            emit(format, &c.refresh_attestation(&signer, &bundle).await?)?;
        }
        ProviderCmd::Deregister { key } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let c = connect(cli).await?;
            emit(format, &c.deregister(&signer).await?)?;
        }
        ProviderCmd::SubmitReceipt {
            key,
            job,
            receipt,
            evidence,
        } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let bytes = read_file(receipt, "signed receipt")?;
            let job = match job {
                Some(j) => parse_hex32("job id", j)?,
                None => {
                    attestation_verifier::receipt::SignedReceipt::decode_bytes(&bytes)
                        .and_then(|r| r.body())
                        .map_err(|e| ChainError::BadInput {
                            what: "signed receipt",
                            detail: e.to_string(),
                        })?
                        .job_id
                }
            };
            let evidence = evidence
                .as_ref()
                .map(|p| read_file(p, "evidence bundle"))
                .transpose()?;
            let c = connect(cli).await?;
            emit(
                format,
                &c.submit_receipt(&signer, &job, &bytes, evidence.as_deref())
                    .await?,
            )?;
        }
        ProviderCmd::Watch {
            account,
            key,
            count,
        } => {
            let account = match account {
                Some(a) => parse_account(a)?,
                None => key.load(KeyScheme::Ed25519)?.account_id(),
            };
            let c = connect(cli).await?;
            let mut jobs = Box::pin(c.jobs_bound_to(&account).await?);
            let mut seen = 0usize;
            while let Some(a) = jobs.next().await {
                emit_line(format, &a?)?;
                seen = seen.saturating_add(1);
                if count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
        }
    }
    Ok(())
}

async fn buyer(cli: &Cli, cmd: &BuyerCmd) -> Result<()> {
    let format = cli.format;
    match cmd {
        BuyerCmd::Fund(args) => {
            let signer = args.key.load(KeyScheme::Sr25519)?;
            let job_id = match &args.job {
                Some(j) => parse_hex32("job id", j)?,
                None => {
                    let mut id = [0u8; 32];
                    getrandom::fill(&mut id).context("drawing a random job id")?;
                    id
                }
            };
            let spec_hash = match (&args.spec_hash, &args.spec) {
                (Some(h), _) => parse_hex32("spec hash", h)?,
                (None, Some(path)) => {
                    use attestation_verifier::crypto::Crypto;
                    attestation_verifier::crypto::RustCrypto
                        .sha256(&read_file(path, "job specification")?)
                }
                (None, None) => bail!(ChainError::BadInput {
                    what: "job specification",
                    detail: "give --spec or --spec-hash".into(),
                }),
            };
            let terms = match args.tier {
                1 => TierTerms::Signed,
                2 => TierTerms::Quorum {
                    k: args
                        .k
                        .ok_or_else(|| bad("quorum", "tier 2 needs --k and --n"))?,
                    n: args
                        .n
                        .ok_or_else(|| bad("quorum", "tier 2 needs --k and --n"))?,
                },
                3 => TierTerms::Attested {
                    policy: parse_policy_arg(args.policy.as_deref())?,
                    fresh_quote: args.fresh_quote,
                },
                t => bail!(bad("tier", &format!("{t} is not 1, 2 or 3"))),
            };
            let class = ProviderClass {
                tee_kinds: args
                    .tee
                    .iter()
                    .map(|t| parse_tee(t))
                    .collect::<Result<_, _>>()?,
                gpu_model: args.gpu_model.clone(),
            };
            let price = parse_mint(&args.price)?;
            let c = connect(cli).await?;
            let head = c.block_number().await?;
            let order = JobOrder {
                job_id,
                spec_hash,
                terms,
                class,
                price,
                deadline: head.saturating_add(args.deadline_blocks),
            };
            let included = c.fund_job(&signer, &order).await?;
            emit(
                format,
                &json!({
                    "job_id": format!("0x{}", hex::encode(job_id)),
                    "deadline": order.deadline,
                    "included": included,
                }),
            )?;
        }
        BuyerCmd::Watch { job, timeout_secs } => {
            let job = parse_hex32("job id", job)?;
            let c = connect(cli).await?;
            let watch = async {
                let mut events = Box::pin(c.watch_job(&job).await?);
                while let Some(e) = events.next().await {
                    emit_line(format, &e?)?;
                }
                anyhow::Ok(())
            };
            tokio::time::timeout(Duration::from_secs(*timeout_secs), watch)
                .await
                .map_err(|_| ChainError::Timeout {
                    what: "the job to close",
                    secs: *timeout_secs,
                })??;
        }
        BuyerCmd::Reclaim { key, job } => {
            let job = parse_hex32("job id", job)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.refund_expired(&signer, &job).await?)?;
        }
    }
    Ok(())
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

fn parse_tier(s: &str) -> Result<Tier, ChainError> {
    match s {
        "1" | "signed" => Ok(Tier::Signed),
        "2" | "quorum" => Ok(Tier::Quorum),
        "3" | "attested" => Ok(Tier::Attested),
        other => Err(bad(
            "tier",
            &format!("{other:?} (signed, quorum, attested)"),
        )),
    }
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
    policy::parse_policy(s).map(|p| p.id).ok_or_else(|| {
        bad(
            "policy",
            &format!(
                "{s:?} is not one of the chain's: {}",
                policy::NAMES.join(", ")
            ),
        )
    })
}

/// `5`, `0.25`, `1000.000000000001` MINT to the smallest unit (12 decimals).
fn parse_mint(s: &str) -> Result<u128, ChainError> {
    let err = || {
        bad(
            "price",
            &format!("{s:?} is not a MINT amount (e.g. 5 or 0.25)"),
        )
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 12 {
        return Err(err());
    }
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return Err(err());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let padded = format!("{frac:0<12}");
    let frac: u128 = padded.parse().map_err(|_| err())?;
    int.checked_mul(MINT)
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(err)
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
mod tests {
    // Tests may unwrap: a failure is the test's report.
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_mint_works() {
        assert_eq!(parse_mint("5").unwrap(), 5 * MINT);
        assert_eq!(parse_mint("0.25").unwrap(), MINT / 4);
        assert_eq!(parse_mint(".5").unwrap(), MINT / 2);
        assert_eq!(parse_mint("1.000000000001").unwrap(), MINT + 1);
    }

    #[test]
    fn parse_mint_rejects() {
        for s in ["", ".", "-1", "1.0000000000001", "1e3", "abc", "1.2.3"] {
            assert!(parse_mint(s).is_err(), "{s}");
        }
        assert!(parse_mint(&"9".repeat(40)).is_err());
    }

    #[test]
    fn cli_definition_works() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
