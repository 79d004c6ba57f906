//! `sigil policy`: attestation policies, written as TOML, registered on chain as canonical
//! documents named by their id.
//!
//! - `new` writes a complete policy (every rule spelled out) from fragments, such as the output
//!   of `sigil-verify measure ... --format policy`, and a few common flags;
//! - `id` prints a policy file's id offline (the same rules, however spelled, give the same
//!   id);
//! - `register` puts a policy on chain (a deposit is held until it is retired); `retire` removes
//!   one the caller registered;
//! - `show` prints every rule of an on-chain policy, `list` every registered policy.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use attestation_verifier::policy::{HexBytes, Policy, PolicyTee};
use clap::Subcommand;
use serde::Serialize;

use super::{Cli, Format, KeyArgs, bad, connect, emit, parse_policy_arg};
use crate::types::PolicyInfo;
use crate::{ChainError, KeyScheme, policy};

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCmd {
    /// Write a complete policy as TOML (stdout, or --out): the fragments merged in order
    /// (tables merged, lists concatenated), then the flags.
    New {
        /// A policy fragment (TOML), e.g. from `sigil-verify measure snp --format policy`;
        /// repeatable.
        #[arg(long = "from", value_name = "FILE")]
        from: Vec<PathBuf>,
        /// Start from a genesis policy (`sigil.simulated.v1`, ...) instead of the defaults.
        #[arg(long)]
        base: Option<String>,
        /// Accepted TEE kinds: sev-snp, tdx, simulated (comma-separated); `simulated` also sets
        /// allow_simulated.
        #[arg(long, value_delimiter = ',')]
        tee: Vec<String>,
        /// How long a key attested under the policy stays valid (seconds).
        #[arg(long)]
        key_lifetime_secs: Option<u64>,
        /// Fewest verified GPU reports the evidence must carry.
        #[arg(long)]
        gpu_min_count: Option<u32>,
        /// Accepted GPU chip (`GH100`, ...), repeatable.
        #[arg(long)]
        gpu_model: Vec<String>,
        /// Accepted simulator measurement (48-byte hex), repeatable.
        #[arg(long)]
        simulated_measurement: Vec<String>,
        /// Write the policy here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a policy file's id (offline), whether tier 3 may use it, and its size.
    Id {
        /// The policy (TOML).
        #[arg(long)]
        file: PathBuf,
    },
    /// Register a policy file on chain; prints its id.
    Register {
        #[command(flatten)]
        key: KeyArgs,
        /// The policy (TOML).
        #[arg(long)]
        file: PathBuf,
    },
    /// Every rule of a policy registered on chain (exit 2 when no policy has the id).
    Show {
        /// A `0x` id or a genesis name.
        policy: String,
    },
    /// Every policy registered on chain.
    List,
    /// Retire a policy the signer registered (its deposit is returned).
    Retire {
        #[command(flatten)]
        key: KeyArgs,
        /// A `0x` id.
        policy: String,
    },
}

/// What `sigil policy id` prints.
#[derive(Serialize)]
struct PolicyId {
    id: String,
    /// `null` when tier-3 jobs may name it, else the rule it must pin.
    unpinned: Option<&'static str>,
    bytes: usize,
}

/// What `sigil policy show` prints.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    info: &'a PolicyInfo,
    genesis_name: Option<&'static str>,
    /// Every rule, as TOML.
    rules: String,
}

/// Runs a `sigil policy` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &PolicyCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        PolicyCmd::New {
            from,
            base,
            tee,
            key_lifetime_secs,
            gpu_min_count,
            gpu_model,
            simulated_measurement,
            out,
        } => {
            let mut p = new_policy(from, base.as_deref())?;
            apply_flags(
                &mut p,
                tee,
                *key_lifetime_secs,
                *gpu_min_count,
                gpu_model,
                simulated_measurement,
            )?;
            // Round-trip through the checked parser: the written file is what `id` reads.
            let text = p.to_toml();
            let p = Policy::from_toml(&text).map_err(|e| bad("policy", &e.to_string()))?;
            let header = format!(
                "# Sigil attestation policy, id 0x{} (`sigil policy id --file`)\n",
                hex::encode(p.id())
            );
            let text = format!("{header}{}", p.to_toml());
            match out {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => super::write_stdout(&text)?,
            }
        }
        PolicyCmd::Id { file } => {
            let p = load(file)?;
            emit(
                format,
                &PolicyId {
                    id: format!("0x{}", hex::encode(p.id())),
                    unpinned: p.check_pinned().err(),
                    bytes: p.canonical_bytes().len(),
                },
            )?;
        }
        PolicyCmd::Register { key, file } => {
            let p = load(file)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            let included = c.register_policy(&signer, &p.canonical_bytes()).await?;
            emit(
                format,
                &serde_json::json!({
                    "id": format!("0x{}", hex::encode(p.id())),
                    "unpinned": p.check_pinned().err(),
                    "included": included,
                }),
            )?;
        }
        PolicyCmd::Show { policy: id } => {
            let id = parse_policy_arg(Some(id))?;
            let c = connect(cli).await?;
            let info = c.policy(&id).await?.ok_or_else(|| ChainError::NotFound {
                what: "policy",
                id: format!("0x{}", hex::encode(id)),
            })?;
            let rules = policy::from_document(&id, &info.document)
                .map_err(|e| bad("policy document", &e))?
                .to_toml();
            if format == Format::Text {
                super::write_stdout(&rules)?;
            } else {
                emit(
                    format,
                    &Shown {
                        info: &info,
                        genesis_name: policy::genesis_name(&id),
                        rules,
                    },
                )?;
            }
        }
        PolicyCmd::List => {
            let c = connect(cli).await?;
            let list: Vec<serde_json::Value> = c
                .policies()
                .await?
                .into_iter()
                .map(|p| {
                    serde_json::json!({
                        "id": format!("0x{}", hex::encode(p.id)),
                        "genesis_name": policy::genesis_name(&p.id),
                        "owner": p.owner.map(|o| o.to_string()),
                        "tees": p.tees,
                        "unpinned": p.unpinned,
                        "min_gpus": Policy::from_canonical_bytes(&p.document)
                            .ok()
                            .map(|d| d.gpu.min_count),
                        "key_lifetime_ms": p.key_lifetime_ms,
                        "users": p.users,
                        "bytes": p.document.len(),
                    })
                })
                .collect();
            emit(format, &list)?;
        }
        PolicyCmd::Retire { key, policy: id } => {
            let id = parse_policy_arg(Some(id))?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.retire_policy(&signer, &id).await?)?;
        }
    }
    Ok(0)
}

/// A policy file, checked.
fn load(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path).map_err(|e| ChainError::BadInput {
        what: "policy file",
        detail: format!("{}: {e}", path.display()),
    })?;
    Ok(Policy::from_toml(&text).map_err(|e| ChainError::BadInput {
        what: "policy file",
        detail: format!("{}: {e}", path.display()),
    })?)
}

/// The base policy with the fragments merged in.
fn new_policy(fragments: &[PathBuf], base: Option<&str>) -> Result<Policy> {
    let mut merged = match base {
        None => toml::Table::new(),
        Some(name) => {
            let p = attestation_verifier::policy::genesis::named(name).ok_or_else(|| {
                bad(
                    "base policy",
                    &format!("{name:?} is not one of {}", policy::NAMES.join(", ")),
                )
            })?;
            p.to_toml()
                .parse::<toml::Table>()
                .context("a genesis policy as TOML")?
        }
    };
    for path in fragments {
        let text = std::fs::read_to_string(path).map_err(|e| ChainError::BadInput {
            what: "policy fragment",
            detail: format!("{}: {e}", path.display()),
        })?;
        let table: toml::Table = text.parse().map_err(|e| ChainError::BadInput {
            what: "policy fragment",
            detail: format!("{}: {e}", path.display()),
        })?;
        merge(&mut merged, table);
    }
    let text = toml::to_string(&merged).context("merging the fragments")?;
    Ok(Policy::from_toml(&text).map_err(|e| bad("policy", &e.to_string()))?)
}

/// Merges `add` into `base`: tables recursively, lists concatenated, other values replaced.
fn merge(base: &mut toml::Table, add: toml::Table) {
    for (k, v) in add {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(a)) => merge(b, a),
            (Some(toml::Value::Array(b)), toml::Value::Array(a)) => b.extend(a),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn apply_flags(
    p: &mut Policy,
    tee: &[String],
    key_lifetime_secs: Option<u64>,
    gpu_min_count: Option<u32>,
    gpu_model: &[String],
    simulated_measurement: &[String],
) -> Result<()> {
    for t in tee {
        let t = PolicyTee::from_name(t)
            .ok_or_else(|| bad("TEE kind", &format!("{t:?} (sev-snp, tdx, simulated)")))?;
        if t == PolicyTee::Simulated {
            p.allow_simulated = true;
        }
        p.tees.push(t);
    }
    if key_lifetime_secs.is_some() {
        p.key_lifetime_secs = key_lifetime_secs;
    }
    if let Some(n) = gpu_min_count {
        p.gpu.min_count = n;
    }
    p.gpu.models.extend(gpu_model.iter().cloned());
    for m in simulated_measurement {
        let bytes = hex::decode(m.strip_prefix("0x").unwrap_or(m))
            .map_err(|e| bad("simulated measurement", &format!("{m:?}: {e}")))?;
        p.simulated.measurements.push(HexBytes(bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn merge_concatenates_lists_and_merges_tables_works() {
        let mut a: toml::Table = "[snp]\nmeasurements = [\"aa\"]\nallow_smt = true\n"
            .parse()
            .unwrap();
        let b: toml::Table = "[snp]\nmeasurements = [\"bb\"]\n[tdx]\nmrtds = [\"cc\"]\n"
            .parse()
            .unwrap();
        merge(&mut a, b);
        assert_eq!(a["snp"]["measurements"].as_array().unwrap().len(), 2, "{a}");
        assert_eq!(a["snp"]["allow_smt"].as_bool(), Some(true));
        assert!(a["tdx"]["mrtds"].is_array());
    }

    #[test]
    fn flags_pin_the_simulator_works() {
        let mut p = new_policy(&[], Some(policy::SIMULATED_V1)).unwrap();
        let m = "11".repeat(48);
        apply_flags(&mut p, &[], Some(600), Some(0), &[], &[m]).unwrap();
        let p = Policy::from_toml(&p.to_toml()).unwrap();
        assert_eq!(p.simulated.measurements, vec![HexBytes(vec![0x11; 48])]);
        assert_eq!(p.key_lifetime_secs, Some(600));
        assert_ne!(Some(p.id()), policy::policy_id(policy::SIMULATED_V1));
        assert!(p.check_pinned().is_ok());
        assert!(apply_flags(&mut p.clone(), &["sgx".into()], None, None, &[], &[]).is_err());
    }
}
