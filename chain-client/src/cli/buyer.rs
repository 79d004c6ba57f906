//! `sigil buyer`: fund jobs, watch them, cancel unbound ones, reclaim expired escrow.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::json;

use super::{
    Cli, KeyArgs, bad, connect, emit, emit_line, parse_mint, parse_policy_arg, parse_tee, read_file,
};
use crate::types::{JobOrder, ProviderClass, TierTerms};
use crate::{ChainError, KeyScheme, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum BuyerCmd {
    /// Fund a job: the price is held in escrow until settlement or refund, and the chain binds
    /// its providers from their offers (`bound` in the output), or it waits for one.
    Fund(FundArgs),
    /// Cancel a job no provider is bound to; its escrow returns at once.
    Cancel {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
    },
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
pub(crate) struct FundArgs {
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
    /// Required GPU model (empty: any). Tier 3 matches it against the chip of the
    /// provider's verified GPU reports (`NVIDIA H100 80GB HBM3` or `GH100`).
    #[arg(long, default_value = "")]
    gpu_model: String,
    /// Tier 3: fewest GPUs, counted in the provider's verified GPU reports.
    #[arg(long, default_value_t = 0)]
    gpu_count: u32,
    /// Price in MINT (decimal, e.g. 5 or 0.25).
    #[arg(long)]
    price: String,
    /// Blocks from the current head to the deadline.
    #[arg(long, default_value_t = 600)]
    deadline_blocks: u32,
    /// Blocks a bound provider has to deliver its receipt before anyone may reassign the job
    /// (`sigil dispatch reassign`) and the provider loses a share of its bond; 0: until the
    /// deadline.
    #[arg(long, default_value_t = 0)]
    response_blocks: u32,
}

/// Runs a `sigil buyer` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &BuyerCmd) -> Result<u8> {
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
                gpu_count: args.gpu_count,
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
                response_blocks: args.response_blocks,
            };
            let included = c.fund_job(&signer, &order).await?;
            let bound: Option<Vec<String>> = included.events.iter().find_map(|e| match e {
                crate::types::MarketEvent::JobBound { providers, .. } => {
                    Some(providers.iter().map(ToString::to_string).collect())
                }
                _ => None,
            });
            emit(
                format,
                &json!({
                    "job_id": format!("0x{}", hex::encode(job_id)),
                    "deadline": order.deadline,
                    "bound": bound,
                    "included": included,
                }),
            )?;
        }
        BuyerCmd::Cancel { key, job } => {
            let job = parse_hex32("job id", job)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.cancel_job(&signer, &job).await?)?;
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
    Ok(0)
}
