//! `sigil job`: the buyer's side of a provider's agent (gRPC): write a job spec, submit it
//! signed, wait for it, fetch its receipt and evidence, download outputs checked against the
//! receipt.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use sigil_agent_client::{
    AgentClient, AgentError, EncodedSpec, EvidenceMode, JobRequest, Secret, SecretKind,
};

use super::{Cli, emit};
use crate::{Ed25519Keypair, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum JobCmd {
    /// Write a job spec: the exact bytes whose SHA-256 the escrow commits to (`sigil buyer fund
    /// --spec-hash`) and that `sigil job submit` sends to the agent. Prints the job id and hash.
    New(NewArgs),
    /// Submit a spec to an agent, signed by the buyer's ed25519 key (idempotent on the job id).
    ///
    /// Verify, then send: for a tier-3 job, or one with secrets, the agent's fresh evidence
    /// (bound to a random nonce) is first verified under the job's policy (from the chain's
    /// record of the job, or `--policy`) and must come from a provider the chain bound; the
    /// secrets are then sealed to the key that evidence binds. A failed check exits 1 before
    /// anything is sent, naming every failed rule.
    Submit {
        #[command(flatten)]
        agent: AgentArgs,
        /// The spec file written by `sigil job new`.
        #[arg(long)]
        spec: PathBuf,
        #[command(flatten)]
        buyer: BuyerKey,
        /// The job's secrets again, exactly as given to `sigil job new`.
        #[command(flatten)]
        secrets: SecretArgs,
        /// Appraise the agent's evidence under this policy (TOML) instead of the policy the
        /// chain records for the job (no chain is asked then, and any agent key is taken
        /// unless the spec names one).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// For an https:// agent, do not require the TLS channel to end at the attested key
        /// (an agent behind an ordinary certificate or a proxy; secrets stay sealed to the
        /// verified agent all the same). By default a verified submission over https requires
        /// the agent to serve with its attested key (`tls.attested`).
        #[arg(long)]
        unbound_channel: bool,
    },
    /// A job's status on the agent (signed by the buyer's key when given, as agents require
    /// unless they make status public).
    Status {
        #[command(flatten)]
        agent: AgentArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        buyer: BuyerKey,
    },
    /// Wait until a job ends on the agent; exit 1 unless it succeeded.
    Wait {
        #[command(flatten)]
        agent: AgentArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        buyer: BuyerKey,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Fetch a job's signed receipt (signature checked) and its evidence bundle, as the files
    /// `sigil-verify receipt` and `sigil provider submit-receipt` take.
    Receipt {
        #[command(flatten)]
        agent: AgentArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        buyer: BuyerKey,
        /// Where to write `SCALE(SignedReceipt)`.
        #[arg(long)]
        receipt_out: PathBuf,
        /// Where to write `SCALE(EvidenceBundle)` (not written when the receipt has none).
        #[arg(long)]
        bundle_out: Option<PathBuf>,
    },
    /// Download one output of a finished job, checked against the receipt's result
    /// commitment with the agent's inclusion proof.
    Output {
        #[command(flatten)]
        agent: AgentArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        /// The output's path inside the job's output directory.
        #[arg(long)]
        path: String,
        #[command(flatten)]
        buyer: BuyerKey,
        /// Where to write it. A sealed output (the spec named a recipient) is opened with
        /// the buyer's key and its plaintext commitment checked; the plaintext is written.
        #[arg(long)]
        out: PathBuf,
    },
}

/// A job's secrets: never in the spec, only their commitments; sealed to the verified agent
/// at submission.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SecretArgs {
    /// Secret input file `PATH=LOCAL_FILE` (repeatable): on the job's private tmpfs at PATH
    /// in its input directory.
    #[arg(long = "secret-input", value_name = "PATH=FILE")]
    secret_inputs: Vec<String>,
    /// Secret environment variable `NAME=LOCAL_FILE` (repeatable): the file's content
    /// (UTF-8, a trailing newline removed) becomes the variable's value.
    #[arg(long = "secret-env", value_name = "NAME=FILE")]
    secret_env: Vec<String>,
}

impl SecretArgs {
    fn is_empty(&self) -> bool {
        self.secret_inputs.is_empty() && self.secret_env.is_empty()
    }

    /// The secrets, salted from the buyer's key for job `job_id`.
    fn load(&self, buyer: &BuyerKey, job_id: &[u8; 32]) -> Result<Vec<Secret>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let key = buyer
            .load()
            .context("secrets are salted from the buyer's key")?;
        let seed = key.signing_key().to_bytes();
        let mut out = Vec::new();
        for s in &self.secret_inputs {
            let (path, file) = split_pair(s, "--secret-input")?;
            let value = std::fs::read(file).with_context(|| format!("reading {file}"))?;
            out.push(Secret::new(
                &seed,
                job_id,
                SecretKind::InputFile,
                path,
                value,
            ));
        }
        for s in &self.secret_env {
            let (name, file) = split_pair(s, "--secret-env")?;
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            let value = text.strip_suffix('\n').unwrap_or(&text).as_bytes().to_vec();
            out.push(Secret::new(&seed, job_id, SecretKind::Env, name, value));
        }
        Ok(out)
    }
}

/// The agent to talk to.
#[derive(Args, Debug, Clone)]
pub(crate) struct AgentArgs {
    /// The agent's gRPC URL (`https://host:7443`, or `http://127.0.0.1:port` on loopback).
    #[arg(long, env = "SIGIL_AGENT_URL")]
    agent: String,
    /// PEM file of the CA that issued the agent's TLS certificate (default: web PKI roots).
    #[arg(long)]
    ca: Option<PathBuf>,
}

/// The buyer's ed25519 key (the one the agent checks submissions and downloads against).
#[derive(Args, Debug, Clone)]
pub(crate) struct BuyerKey {
    /// Secret URI of the buyer's ed25519 key (`//Bob`, a phrase, a `0x` seed).
    #[arg(long, env = "SIGIL_BUYER_SURI", conflicts_with = "buyer_suri_file")]
    buyer_suri: Option<String>,
    /// File holding that secret URI.
    #[arg(long, env = "SIGIL_BUYER_SURI_FILE")]
    buyer_suri_file: Option<PathBuf>,
}

impl BuyerKey {
    fn load(&self) -> Result<Ed25519Keypair> {
        self.load_optional()?
            .context("give the buyer key: --buyer-suri or --buyer-suri-file")
    }

    fn load_optional(&self) -> Result<Option<Ed25519Keypair>> {
        let uri = match (&self.buyer_suri, &self.buyer_suri_file) {
            (Some(uri), _) => uri.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        Ok(Some(Ed25519Keypair::from_uri(&uri)?))
    }
}

/// A client that signs reads with the buyer's key, when one is given.
async fn reader(agent: &AgentArgs, buyer: &BuyerKey) -> Result<AgentClient> {
    let client = AgentClient::connect(&agent.agent, agent.ca.as_deref()).await?;
    Ok(match buyer.load_optional()? {
        Some(k) => client.with_buyer(k.signing_key().clone()),
        None => client,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// The agent's default for the tier.
    Default,
    /// No evidence (tiers 1 and 2).
    None,
    /// Receipt references the agent key's evidence.
    AttestedKey,
    /// Evidence bound to this receipt.
    FreshQuote,
}

#[derive(Args, Debug)]
pub(crate) struct NewArgs {
    /// Settlement tier: 1, 2 or 3.
    #[arg(long)]
    tier: u8,
    /// Job id (0x + 64 hex); default: 32 random bytes.
    #[arg(long)]
    job_id: Option<String>,
    /// Container image pinned by digest (`name@sha256:<hex>`); the trailing arguments are then
    /// its arguments.
    #[arg(long)]
    image: Option<String>,
    /// Environment variable `NAME=VALUE` (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Input file `PATH=LOCAL_FILE`: LOCAL_FILE's content at PATH in the job's input directory
    /// (repeatable).
    #[arg(long = "input", value_name = "PATH=FILE")]
    inputs: Vec<String>,
    /// Wall-clock limit in ms (0: the agent's default).
    #[arg(long, default_value_t = 0)]
    wall_time_ms: u64,
    /// Address-space limit in bytes (0: the agent's default).
    #[arg(long, default_value_t = 0)]
    memory_bytes: u64,
    /// Evidence mode of the receipt.
    #[arg(long, value_enum, default_value_t = Mode::Default)]
    evidence_mode: Mode,
    /// GPUs to assign.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Only the agent with this key (0x hex) may run the job.
    #[arg(long)]
    provider_key: Option<String>,
    /// The buyer's ed25519 key, named in the spec: only it may submit the job to an agent and
    /// read it there. Needed when the funding account is not that ed25519 key (an sr25519
    /// account): funding the spec's hash vouches for the key.
    #[command(flatten)]
    buyer: BuyerKey,
    /// Secrets, named in the spec only by commitments (needs the buyer key).
    #[command(flatten)]
    secrets: SecretArgs,
    /// Have the agent seal every output and log to a key derived from the buyer's key and the
    /// job id (`sigil job output` opens them).
    #[arg(long)]
    seal_outputs: bool,
    /// Where to write the spec.
    #[arg(long)]
    out: PathBuf,
    /// The program and its arguments (after `--`).
    #[arg(last = true)]
    argv: Vec<String>,
}

fn split_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    s.split_once('=')
        .with_context(|| format!("{what} {s:?} is not NAME=VALUE"))
}

fn new_spec(a: &NewArgs) -> Result<EncodedSpec> {
    let job_id = match &a.job_id {
        Some(h) => parse_hex32("job id", h)?,
        None => {
            let mut id = [0_u8; 32];
            getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            id
        }
    };
    let env = a
        .env
        .iter()
        .map(|e| split_pair(e, "--env").map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Result<Vec<_>>>()?;
    let inputs = a
        .inputs
        .iter()
        .map(|i| {
            let (path, file) = split_pair(i, "--input")?;
            let content = std::fs::read(file).with_context(|| format!("reading {file}"))?;
            Ok((path.to_owned(), content))
        })
        .collect::<Result<Vec<_>>>()?;
    let secrets = a.secrets.load(&a.buyer, &job_id)?;
    let output_recipient = if a.seal_outputs {
        let key = a
            .buyer
            .load()
            .context("--seal-outputs derives the output key from the buyer's key")?;
        Some(
            sigil_sealing::SealingKey::for_outputs(&key.signing_key().to_bytes(), &job_id)
                .public_key(),
        )
    } else {
        None
    };
    let request = JobRequest {
        job_id,
        tier: a.tier,
        argv: a.argv.clone(),
        image: a.image.clone(),
        env,
        inputs,
        wall_time_ms: a.wall_time_ms,
        memory_bytes: a.memory_bytes,
        evidence_mode: match a.evidence_mode {
            Mode::Default => EvidenceMode::Default,
            Mode::None => EvidenceMode::None,
            Mode::AttestedKey => EvidenceMode::AttestedKey,
            Mode::FreshQuote => EvidenceMode::FreshQuote,
        },
        gpu_count: a.gpus,
        provider_key: a
            .provider_key
            .as_deref()
            .map(|k| parse_hex32("provider key", k))
            .transpose()?,
        not_after_ms: 0,
        buyer: a
            .buyer
            .load_optional()?
            .map(|k| k.signing_key().verifying_key().to_bytes()),
        secrets: secrets.iter().map(Secret::reference).collect(),
        output_recipient,
    };
    Ok(request.encode()?)
}

/// The agent API's `OutputKind` of files (the sealing purpose names it).
const OUTPUT_KIND_FILE: u8 = 1;

fn now() -> attestation_verifier::time::UnixTime {
    attestation_verifier::time::UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The secrets given must be exactly those the spec commits to.
fn check_secrets(spec: &EncodedSpec, secrets: &[Secret]) -> Result<()> {
    let want = spec.secrets();
    let have: Vec<_> = secrets.iter().map(Secret::reference).collect();
    for r in &want {
        match have.iter().find(|h| h.kind == r.kind && h.name == r.name) {
            None => anyhow::bail!(
                "the spec names secret {:?}: give it (--secret-input/--secret-env)",
                r.name
            ),
            Some(h) if h.commitment != r.commitment => anyhow::bail!(
                "secret {:?} is not the value the spec commits to (another file, or another buyer key)",
                r.name
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = have
        .iter()
        .find(|h| !want.iter().any(|r| r.kind == h.kind && r.name == h.name))
    {
        anyhow::bail!("the spec names no secret {:?}", extra.name);
    }
    Ok(())
}

/// The policy to appraise the agent under and the agent keys the job may go to: from
/// `--policy` (and the spec's provider key, if any), or from the chain's record of the job
/// (its policy and the signing keys of the providers it bound).
async fn appraisal(
    cli: &Cli,
    spec: &EncodedSpec,
    policy: Option<&std::path::Path>,
) -> Result<(attestation_verifier::policy::Policy, Vec<[u8; 32]>)> {
    if let Some(path) = policy {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let policy = attestation_verifier::policy::Policy::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("policy {}: {e}", path.display()))?;
        return Ok((policy, Vec::new()));
    }
    let chain = super::connect(cli).await?;
    let record = chain.job_record(&spec.job_id).await?;
    let crate::types::TierTerms::Attested { policy: id, .. } = record.job.terms else {
        anyhow::bail!(
            "the chain records job {} with no attestation policy: give --policy to verify the agent",
            hex0x(&spec.job_id)
        );
    };
    let doc = record
        .policy
        .as_ref()
        .filter(|p| p.id == id)
        .with_context(|| format!("the job's policy {} is not on chain", hex0x(&id)))?;
    let policy = crate::policy::from_document(&id, &doc.document)
        .map_err(|e| anyhow::anyhow!("the job's policy document: {e}"))?;
    let bound = record
        .binding
        .as_ref()
        .map(|b| b.providers.clone())
        .unwrap_or_default();
    let keys: Vec<[u8; 32]> = record
        .providers
        .iter()
        .filter(|p| bound.contains(&p.account))
        .map(|p| p.signing_key)
        .collect();
    if keys.is_empty() {
        anyhow::bail!(
            "the chain has bound no provider to job {} yet",
            hex0x(&spec.job_id)
        );
    }
    Ok((policy, keys))
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Runs a `sigil job` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &JobCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        JobCmd::New(a) => {
            let spec = new_spec(a)?;
            std::fs::write(&a.out, &spec.bytes)
                .with_context(|| format!("writing {}", a.out.display()))?;
            emit(
                format,
                &json!({
                    "job_id": hex0x(&spec.job_id),
                    "spec_hash": hex0x(&spec.spec_hash),
                    "spec": a.out.display().to_string(),
                }),
            )?;
        }
        JobCmd::Submit {
            agent,
            spec,
            buyer,
            secrets,
            policy,
            unbound_channel,
        } => {
            let bytes =
                std::fs::read(spec).with_context(|| format!("reading {}", spec.display()))?;
            let spec = EncodedSpec::from_bytes(bytes)?;
            let key = buyer.load()?;
            let secrets = secrets.load(buyer, &spec.job_id)?;
            check_secrets(&spec, &secrets)?;
            let verify = spec.tier() == 3 || !secrets.is_empty();
            let bound_channel = verify && agent.agent.starts_with("https://") && !unbound_channel;
            let client = if bound_channel {
                AgentClient::connect_attested(&agent.agent).await?
            } else {
                AgentClient::connect(&agent.agent, agent.ca.as_deref()).await?
            };
            let mut verified = None;
            if verify {
                let (policy, keys) = appraisal(cli, &spec, policy.as_deref()).await?;
                let checked = client
                    .verify_agent(&policy, &keys, now())
                    .await
                    .and_then(|v| {
                        if bound_channel {
                            client.check_channel(&v)?;
                        }
                        Ok(v)
                    });
                match checked {
                    Ok(v) => verified = Some(v),
                    Err(AgentError::NotVerified(reasons)) => {
                        emit(
                            format,
                            &json!({ "verified": false, "sent": false, "reasons": reasons }),
                        )?;
                        return Ok(1);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let sealed = match &verified {
                Some(v) => secrets
                    .iter()
                    .map(|s| s.seal(&v.sealing_key, &spec.job_id))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            let (job, created) = client
                .submit_sealed(&spec, key.signing_key(), sealed)
                .await?;
            emit(
                format,
                &json!({
                    "created": created,
                    "job": job,
                    "verified_agent": verified.as_ref().map(|v| json!({
                        "channel_bound": bound_channel,
                        "agent_key": hex0x(&v.agent_key),
                        "sealing_key": hex0x(&v.sealing_key),
                        "evidence_digest": hex0x(&v.evidence_digest),
                    })),
                    "sealed_secrets": secrets.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                }),
            )?;
        }
        JobCmd::Status { agent, job, buyer } => {
            let job = parse_hex32("job id", job)?;
            let client = reader(agent, buyer).await?;
            emit(format, &client.job(&job).await?)?;
        }
        JobCmd::Wait {
            agent,
            job,
            buyer,
            timeout_secs,
        } => {
            let job = parse_hex32("job id", job)?;
            let client = reader(agent, buyer).await?;
            let view = client
                .wait(&job, Duration::from_secs(*timeout_secs))
                .await?;
            emit(format, &view)?;
            if view.state != "succeeded" {
                return Ok(1);
            }
        }
        JobCmd::Receipt {
            agent,
            job,
            buyer,
            receipt_out,
            bundle_out,
        } => {
            let job = parse_hex32("job id", job)?;
            let client = reader(agent, buyer).await?;
            let r = client.receipt(&job).await?;
            std::fs::write(receipt_out, &r.signed_receipt)
                .with_context(|| format!("writing {}", receipt_out.display()))?;
            if let Some(path) = bundle_out
                .as_ref()
                .filter(|_| !r.evidence_bundle.is_empty())
            {
                std::fs::write(path, &r.evidence_bundle)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            emit(
                format,
                &json!({
                    "job_id": hex0x(&r.body.job_id),
                    "job_spec_hash": hex0x(&r.body.job_spec_hash),
                    "provider": hex0x(&r.body.provider),
                    "tier": r.body.tier,
                    "result_commitment": hex0x(&r.body.result_commitment),
                    "output_count": r.body.output_count,
                    "exit_code": r.body.exit_code,
                    "evidence_mode": format!("{:?}", r.body.evidence.mode),
                    "evidence_digest": hex0x(&r.body.evidence.digest),
                    "bundle_bytes": r.evidence_bundle.len(),
                }),
            )?;
        }
        JobCmd::Output {
            agent,
            job,
            path,
            buyer,
            out,
        } => {
            let job = parse_hex32("job id", job)?;
            let key = buyer.load()?;
            let client = AgentClient::connect(&agent.agent, agent.ca.as_deref())
                .await?
                .with_buyer(key.signing_key().clone());
            let receipt = client.receipt(&job).await?;
            let data = client
                .output(&job, path, key.signing_key(), &receipt.body)
                .await?;
            // A sealed output opens only with the buyer's key for this job and path.
            let sealed = sigil_sealing::parse_output_header(&data).is_ok();
            let data = if sealed {
                let k = sigil_sealing::SealingKey::for_outputs(&key.signing_key().to_bytes(), &job);
                k.open_output(&data, &job, OUTPUT_KIND_FILE, path)
                    .with_context(|| format!("opening the sealed output {path}"))?
                    .to_vec()
            } else {
                data
            };
            std::fs::write(out, &data).with_context(|| format!("writing {}", out.display()))?;
            emit(
                format,
                &json!({ "path": path, "bytes": data.len(), "sealed": sealed, "verified_against": hex0x(&receipt.body.result_commitment) }),
            )?;
        }
    }
    Ok(0)
}
