//! `sigil provider`: registration, offers, attestation refresh, receipts, bound jobs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use futures::StreamExt;

use super::{
    Cli, KeyArgs, bad, connect, emit, emit_line, parse_mint, parse_policy_arg, parse_tee, read_file,
};
use crate::types::{Capabilities, Tier};
use crate::{ChainError, Ed25519Keypair, KeyScheme, parse_account, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum ProviderCmd {
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
        /// Evidence bundle (`SCALE(EvidenceBundle)`) attesting the receipt key, for tier 3; it
        /// must bind the registration nonce of `--anchor` (see `sigil provider nonce`).
        #[arg(long, requires_all = ["policy", "anchor"])]
        evidence: Option<PathBuf>,
        /// Policy the evidence is verified under: a genesis name or `0x` id.
        #[arg(long)]
        policy: Option<String>,
        /// The block the evidence's registration nonce is anchored at.
        #[arg(long)]
        anchor: Option<u32>,
    },
    /// A recent block to anchor registration evidence at, and the nonce the evidence must bind
    /// for the account (submit it within the chain's anchor window, 64 blocks).
    Nonce {
        /// The provider's account (SS58 or 0x hex); default: the key's account.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// A provider's registration: receipt key, offer, attested key, open jobs (exit 2 when
    /// the account is not registered).
    Show {
        /// The provider's account (SS58 or 0x hex).
        #[arg(long)]
        account: String,
    },
    /// Replace the attested key's evidence with a new bundle binding the same key and the
    /// registration nonce of `--anchor`.
    RefreshAttestation {
        #[command(flatten)]
        key: KeyArgs,
        /// The new evidence bundle.
        #[arg(long)]
        evidence: PathBuf,
        /// The block the evidence's registration nonce is anchored at.
        #[arg(long)]
        anchor: u32,
    },
    /// Replace the receipt key (a restarted or upgraded agent's new key). Jobs bound under
    /// the old key still settle with receipts signed by it until the last of them closes;
    /// new jobs are bound under the new key. Tier 3: with a bundle attesting the new key.
    RotateKey {
        #[command(flatten)]
        key: KeyArgs,
        /// Secret URI of the new ed25519 receipt key.
        #[arg(long)]
        receipt_suri: String,
        /// Evidence bundle attesting the new key, for tier 3; it must bind the registration
        /// nonce of `--anchor` (see `sigil provider nonce`).
        #[arg(long, requires_all = ["policy", "anchor"])]
        evidence: Option<PathBuf>,
        /// Policy the evidence is verified under: a genesis name or `0x` id.
        #[arg(long)]
        policy: Option<String>,
        /// The block the evidence's registration nonce is anchored at.
        #[arg(long)]
        anchor: Option<u32>,
    },
    /// Remove an expired attestation record no provider's key rests on; its deposit returns
    /// to whoever submitted it (anyone may call it).
    PruneAttestation {
        #[command(flatten)]
        key: KeyArgs,
        /// The record's evidence digest (0x hex).
        #[arg(long)]
        evidence_digest: String,
    },
    /// Set the standing offer the chain binds jobs from: the least a job pays (tier 2: the
    /// price over k), how many jobs at once, and the bond held (at least the chain's minimum,
    /// 10 MINT on the Sigil runtime).
    Offer {
        #[command(flatten)]
        key: KeyArgs,
        /// Least price per job, in MINT (decimal, e.g. 0.5).
        #[arg(long)]
        price: String,
        /// Most jobs bound at once (0 pauses the offer).
        #[arg(long)]
        capacity: u32,
        /// Bond in MINT; it can shrink only while no bound job is open.
        #[arg(long)]
        bond: String,
    },
    /// Withdraw the offer and release its bond (refused while bound jobs are open).
    WithdrawOffer {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Remove the registration and its offer (refused while bound jobs are open).
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

/// Runs a `sigil provider` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &ProviderCmd) -> Result<u8> {
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
            anchor,
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
            let attestation = evidence_arg(evidence.as_deref(), policy_arg.as_deref(), *anchor)?;
            let c = connect(cli).await?;
            emit(
                format,
                &c.register_provider(&signer, &receipt_key, &capabilities, attestation.as_ref())
                    .await?,
            )?;
        }
        ProviderCmd::RefreshAttestation {
            key,
            evidence,
            anchor,
        } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let bundle = read_file(evidence, "evidence bundle")?;
            let c = connect(cli).await?;
            emit(
                format,
                &c.refresh_attestation(&signer, &bundle, *anchor).await?,
            )?;
        }
        ProviderCmd::RotateKey {
            key,
            receipt_suri,
            evidence,
            policy: policy_arg,
            anchor,
        } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let receipt_key = Ed25519Keypair::from_uri(receipt_suri)?;
            let proof = receipt_key.sign(&crate::key_proof_message(&signer.account_id()));
            let attestation = evidence_arg(evidence.as_deref(), policy_arg.as_deref(), *anchor)?;
            let c = connect(cli).await?;
            emit(
                format,
                &c.rotate_key(
                    &signer,
                    receipt_key.public_key(),
                    proof,
                    attestation.as_ref(),
                )
                .await?,
            )?;
        }
        ProviderCmd::PruneAttestation {
            key,
            evidence_digest,
        } => {
            let digest = parse_hex32("evidence digest", evidence_digest)?;
            let signer = key.load(KeyScheme::Ed25519)?;
            let c = connect(cli).await?;
            emit(format, &c.prune_attestation(&signer, digest).await?)?;
        }
        ProviderCmd::Nonce { account, key } => {
            let who = match account {
                Some(a) => parse_account(a)?,
                None => key.load(KeyScheme::Ed25519)?.account_id(),
            };
            let c = connect(cli).await?;
            emit(format, &c.registration_anchor(&who).await?)?;
        }
        ProviderCmd::Offer {
            key,
            price,
            capacity,
            bond,
        } => {
            let price = parse_mint(price)?;
            let bond = parse_mint(bond)?;
            let signer = key.load(KeyScheme::Ed25519)?;
            let c = connect(cli).await?;
            emit(format, &c.set_offer(&signer, price, *capacity, bond).await?)?;
        }
        ProviderCmd::WithdrawOffer { key } => {
            let signer = key.load(KeyScheme::Ed25519)?;
            let c = connect(cli).await?;
            emit(format, &c.withdraw_offer(&signer).await?)?;
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
    Ok(0)
}

/// The `--evidence`, `--policy` and `--anchor` of a key's registration or rotation.
fn evidence_arg(
    evidence: Option<&std::path::Path>,
    policy: Option<&str>,
    anchor: Option<u32>,
) -> Result<Option<crate::types::Evidence>> {
    let Some(path) = evidence else {
        return Ok(None);
    };
    Ok(Some(crate::types::Evidence {
        bundle: read_file(path, "evidence bundle")?,
        policy: parse_policy_arg(policy)?,
        anchor: anchor.unwrap_or_default(),
    }))
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
