//! Validation of a submitted `JobSpec` into a [`JobPlan`] the agent's runner can execute.
//!
//! Everything a buyer controls is checked here, before the job is stored: ids, tier,
//! argv/env, image pinning, input paths, limits against the agent's maxima ([`SpecLimits`]),
//! the provider key and the expiry.
//!
//! A crate of its own, apart from the agent (`enclave-agent`, which builds [`SpecLimits`]
//! from its `[jobs]` configuration): it depends only on the protobuf messages, so the spec
//! a buyer sends can be fuzzed without the agent's build (`job-spec/fuzz`, docs/fuzzing.md).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use prost::Message;
use sigil_proto::v1;

/// Job id: 32 bytes chosen by the client.
pub type JobId = [u8; 32];

/// The agent's limits a spec is validated against: the part of its `[jobs]` configuration
/// that validation reads (the agent's `JobsConfig::spec_limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecLimits {
    /// Process workloads are accepted (a provider offering containers only turns this off).
    pub allow_process: bool,
    /// Wall-time limit when a spec gives none, milliseconds.
    pub default_wall_time_ms: u64,
    /// Largest wall-time limit a spec may ask for, milliseconds; 0 = no ceiling.
    pub max_wall_time_ms: u64,
    /// Largest CPU time of a job, milliseconds, also the default; 0 = no ceiling.
    pub max_cpu_time_ms: u64,
    /// Memory limit when a spec gives none, bytes; 0 = `max_memory_bytes`.
    pub default_memory_bytes: u64,
    /// Largest memory limit of a job, bytes; 0 = no ceiling.
    pub max_memory_bytes: u64,
    /// Cap on a job's collected outputs when a spec gives none, bytes.
    pub default_output_bytes: u64,
    /// Largest output cap a spec may ask for, bytes; 0 = no ceiling.
    pub max_output_bytes: u64,
}

impl Default for SpecLimits {
    /// The agent's defaults (those of its `JobsConfig::default`).
    fn default() -> Self {
        Self {
            allow_process: true,
            default_wall_time_ms: 3_600_000,
            max_wall_time_ms: 7 * 24 * 3_600_000,
            max_cpu_time_ms: 7 * 24 * 3_600_000,
            default_memory_bytes: 0,
            max_memory_bytes: 8 << 30,
            default_output_bytes: 256 << 20,
            max_output_bytes: 4 << 30,
        }
    }
}

/// Why a spec is refused. Every variant maps to `INVALID_ARGUMENT` or `FAILED_PRECONDITION`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The spec bytes are not a protobuf `JobSpec`.
    #[error("spec is not a valid JobSpec encoding: {0}")]
    Decode(String),
    /// The job id is not 32 bytes.
    #[error("job_id must be 32 bytes, got {0}")]
    JobId(usize),
    /// The tier is not 1, 2 or 3.
    #[error("tier must be 1, 2 or 3, got {0}")]
    Tier(u32),
    /// No workload was given.
    #[error("spec has no workload")]
    NoWorkload,
    /// argv is empty or has an invalid entry.
    #[error("process argv: {0}")]
    Argv(&'static str),
    /// An environment variable is malformed or reserved.
    #[error("environment variable {name:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The image is not pinned by a sha256 digest.
    #[error("container image {0:?} is not pinned by digest (expected name@sha256:<64 hex>)")]
    ImageNotPinned(String),
    /// An input path is absolute, escapes the input directory or repeats.
    #[error("input path {path:?}: {reason}")]
    InputPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A limit is above what the agent allows.
    #[error("{limit} = {requested} exceeds the agent's maximum {max}")]
    LimitTooHigh {
        /// Which limit.
        limit: &'static str,
        /// Asked for.
        requested: u64,
        /// Allowed.
        max: u64,
    },
    /// The spec names another provider.
    #[error("spec is for provider {0}, not this agent")]
    WrongProvider(String),
    /// The spec has expired.
    #[error("spec expired at {not_after_ms} ms (now {now_ms} ms)")]
    Expired {
        /// Expiry.
        not_after_ms: u64,
        /// Agent clock.
        now_ms: u64,
    },
    /// The agent cannot run this kind of workload.
    #[error("{0} workloads are not enabled on this agent")]
    WorkloadDisabled(&'static str),
    /// More GPUs than the agent has.
    #[error("spec asks for {requested} GPUs, this agent has {available}")]
    NotEnoughGpus {
        /// Asked for.
        requested: u32,
        /// Offered by the agent.
        available: u32,
    },
    /// An enum field holds a value the API does not define.
    #[error("{field} = {value} is not a value of the API")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The value given.
        value: i32,
    },
    /// A list is longer, or a value larger, than the agent takes.
    #[error("{what}: {count} exceeds the agent's maximum {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many (or how large).
        count: u64,
        /// The maximum.
        max: u64,
    },
    /// The buyer key is not 32 bytes.
    #[error("buyer must be empty or a 32-byte ed25519 key, got {0} bytes")]
    Buyer(usize),
    /// A secret reference is malformed.
    #[error("secret {name:?}: {reason}")]
    Secret {
        /// The secret's name (path or variable).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The output recipient is not a 32-byte X25519 key.
    #[error("output_recipient must be empty or a 32-byte X25519 key, got {0} bytes")]
    OutputRecipient(usize),
    /// The evidence mode cannot be honoured.
    #[error("evidence mode {mode} is not possible for tier {tier} on this agent: {reason}")]
    EvidenceMode {
        /// Requested mode name.
        mode: &'static str,
        /// The tier.
        tier: u32,
        /// Why.
        reason: &'static str,
    },
}

/// What a job runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A program in the VM.
    Process {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// An OCI image through the container CLI.
    Container {
        /// `name@sha256:<hex>`.
        image: String,
        /// Arguments after the image.
        args: Vec<String>,
    },
}

impl Workload {
    /// `process` or `container`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Process { .. } => "process",
            Self::Container { .. } => "container",
        }
    }
}

/// Resolved limits (defaults applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit, ms.
    pub wall_time_ms: u64,
    /// CPU limit, ms (0 = none).
    pub cpu_time_ms: u64,
    /// Address-space limit, bytes (0 = none).
    pub memory_bytes: u64,
    /// Output cap, bytes.
    pub output_bytes: u64,
}

/// Evidence for the receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// No evidence.
    None,
    /// Reference the agent key's current evidence bundle.
    AttestedKey,
    /// Collect evidence bound to this receipt.
    FreshQuote,
}

impl Evidence {
    /// Name used in docs and errors.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AttestedKey => "attested-key",
            Self::FreshQuote => "fresh-quote",
        }
    }
}

/// A validated job, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobPlan {
    /// Job id.
    pub job_id: JobId,
    /// Tier 1..=3.
    pub tier: u8,
    /// The workload.
    pub workload: Workload,
    /// Environment given to the workload (on top of the agent's `SIGIL_*` variables).
    pub env: BTreeMap<String, String>,
    /// Input files: relative path and content.
    pub inputs: Vec<(PathBuf, Vec<u8>)>,
    /// Limits.
    pub limits: Limits,
    /// Receipt evidence.
    pub evidence: Evidence,
    /// GPUs to assign.
    pub gpu_count: u32,
    /// Re-run after an agent restart.
    pub rerun_on_restart: bool,
    /// The buyer key the spec names (`JobSpec.buyer`), if any.
    pub buyer: Option<[u8; 32]>,
    /// Secrets the spec names by commitment (their values arrive sealed beside the spec).
    pub secrets: Vec<SecretRef>,
    /// The buyer's X25519 key every output and log is sealed to, if any.
    pub output_recipient: Option<[u8; 32]>,
}

/// Where a secret goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretKind {
    /// A file under the input directory.
    InputFile,
    /// An environment variable.
    Env,
}

impl SecretKind {
    /// The wire value.
    pub const fn wire(self) -> v1::SecretKind {
        match self {
            Self::InputFile => v1::SecretKind::InputFile,
            Self::Env => v1::SecretKind::Env,
        }
    }
}

/// A secret named by a spec: where it goes and the commitment its value must open to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// File or environment variable.
    pub kind: SecretKind,
    /// The input path (as written in the spec) or the variable's name.
    pub name: String,
    /// `SHA-256("sigil.secret.v1\0" || salt || value)`.
    pub commitment: [u8; 32],
}

/// Most secrets in a spec.
pub const MAX_SECRETS: usize = 256;

/// Most input files in a spec.
pub const MAX_INPUTS: usize = 10_000;
/// Longest input path, bytes.
pub const MAX_PATH_BYTES: usize = 4_096;
/// Longest component of an input path, bytes (the usual file-name limit).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Most components of an input path.
pub const MAX_PATH_DEPTH: usize = 64;
/// Most argv entries (or container arguments) plus environment variables.
pub const MAX_ARGS: usize = 4_096;
/// Most bytes of argv (or container arguments) and environment together.
pub const MAX_ARG_BYTES: usize = 1 << 20;
/// Longest value echoed back in an error, characters.
pub const ECHO_CHARS: usize = 128;

/// `s` cut to [`ECHO_CHARS`] characters, with an ellipsis when cut: what errors echo of a
/// request, so a huge value never travels back in a status message.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(ECHO_CHARS) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
    }
}

/// What the agent offers, for validation.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// The agent's public key.
    pub agent_key: [u8; 32],
    /// Real or simulated TEE evidence is available (tier 3 possible).
    pub has_tee: bool,
    /// GPUs the agent can assign.
    pub gpus: u32,
    /// Container workloads are configured.
    pub containers: bool,
    /// The evidence mode of tier-3 jobs that choose none (`evidence.default_mode`); with
    /// [`Evidence::None`], such jobs are refused.
    pub default_evidence: Evidence,
}

/// Environment names a spec may not set: the agent sets them.
fn reserved_env(name: &str) -> bool {
    name.starts_with("SIGIL_") || name == "CUDA_VISIBLE_DEVICES" || name == "NVIDIA_VISIBLE_DEVICES"
}

fn check_env(
    env: &std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    for (k, v) in env {
        let bad = |reason| SpecError::Env {
            name: clip(k),
            reason,
        };
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(bad("name must be non-empty without '=' or NUL"));
        }
        if v.contains('\0') {
            return Err(bad("value contains NUL"));
        }
        if reserved_env(k) {
            return Err(bad("reserved for the agent"));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

fn check_args(args: &[String]) -> Result<(), SpecError> {
    if args.iter().any(|a| a.contains('\0')) {
        return Err(SpecError::Argv("an argument contains NUL"));
    }
    Ok(())
}

/// `name@sha256:<64 lower-case hex>`, with a non-empty name and no whitespace.
pub fn image_is_pinned(image: &str) -> bool {
    let Some((name, digest)) = image.rsplit_once('@') else {
        return false;
    };
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return false;
    };
    !name.is_empty()
        && !name.starts_with('-')
        && !image.chars().any(|c| c.is_whitespace() || c.is_control())
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_input_path(p: &str) -> Result<PathBuf, SpecError> {
    let bad = |reason| SpecError::InputPath {
        path: clip(p),
        reason,
    };
    if p.is_empty() || p.contains('\0') {
        return Err(bad("empty or contains NUL"));
    }
    if p.len() > MAX_PATH_BYTES {
        return Err(bad("longer than 4096 bytes"));
    }
    let path = Path::new(p);
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(n) => {
                if n.len() > MAX_COMPONENT_BYTES {
                    return Err(bad("has a component longer than 255 bytes"));
                }
                depth = depth.saturating_add(1);
                if depth > MAX_PATH_DEPTH {
                    return Err(bad("is more than 64 levels deep"));
                }
                out.push(n);
            }
            Component::CurDir => {}
            _ => return Err(bad("must be relative without '..'")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("names no file"));
    }
    Ok(out)
}

/// Checks that the input files can all be laid out: no path repeats, and no file is also a
/// directory on the way to another.
fn check_layout(paths: &[(PathBuf, &str)]) -> Result<(), SpecError> {
    let files: std::collections::BTreeMap<&Path, &str> =
        paths.iter().map(|(p, raw)| (p.as_path(), *raw)).collect();
    if files.len() != paths.len() {
        let mut seen = std::collections::BTreeSet::new();
        for (p, raw) in paths {
            if !seen.insert(p.as_path()) {
                return Err(SpecError::InputPath {
                    path: clip(raw),
                    reason: "appears twice",
                });
            }
        }
    }
    for (p, raw) in paths {
        if p.ancestors().skip(1).any(|a| files.contains_key(a)) {
            return Err(SpecError::InputPath {
                path: clip(raw),
                reason: "lies under another input file (a path cannot be both a file and a directory)",
            });
        }
    }
    Ok(())
}

fn count(what: &'static str, n: usize, max: usize) -> Result<(), SpecError> {
    if n > max {
        return Err(SpecError::TooMany {
            what,
            count: u64::try_from(n).unwrap_or(u64::MAX),
            max: u64::try_from(max).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

/// Argument and environment counts and sizes.
fn check_arg_sizes(
    args: &[String],
    env: &std::collections::HashMap<String, String>,
) -> Result<(), SpecError> {
    count(
        "arguments and environment variables",
        args.len().saturating_add(env.len()),
        MAX_ARGS,
    )?;
    let bytes = args
        .iter()
        .map(String::len)
        .chain(env.iter().map(|(k, v)| k.len().saturating_add(v.len())))
        .fold(0usize, usize::saturating_add);
    count("bytes of arguments and environment", bytes, MAX_ARG_BYTES)
}

fn limit(name: &'static str, requested: u64, default: u64, max: u64) -> Result<u64, SpecError> {
    if requested == 0 {
        return Ok(default);
    }
    if max != 0 && requested > max {
        return Err(SpecError::LimitTooHigh {
            limit: name,
            requested,
            max,
        });
    }
    Ok(requested)
}

/// Decodes and validates spec bytes.
pub fn validate(
    spec_bytes: &[u8],
    jobs: &SpecLimits,
    caps: &Capabilities,
    now_ms: u64,
) -> Result<JobPlan, SpecError> {
    let spec = v1::JobSpec::decode(spec_bytes).map_err(|e| SpecError::Decode(e.to_string()))?;
    let job_id: JobId = spec
        .job_id
        .as_slice()
        .try_into()
        .map_err(|_| SpecError::JobId(spec.job_id.len()))?;
    let tier = match spec.tier {
        1 => 1u8,
        2 => 2,
        3 => 3,
        t => return Err(SpecError::Tier(t)),
    };
    if !spec.provider.is_empty() && spec.provider.as_slice() != caps.agent_key.as_slice() {
        return Err(SpecError::WrongProvider(clip(&hex::encode(&spec.provider))));
    }
    let buyer = match spec.buyer.len() {
        0 => None,
        n => Some(<[u8; 32]>::try_from(spec.buyer.as_slice()).map_err(|_| SpecError::Buyer(n))?),
    };
    let requested =
        v1::EvidenceMode::try_from(spec.evidence_mode).map_err(|_| SpecError::UnknownEnum {
            field: "evidence_mode",
            value: spec.evidence_mode,
        })?;
    let restart =
        v1::RestartPolicy::try_from(spec.on_restart).map_err(|_| SpecError::UnknownEnum {
            field: "on_restart",
            value: spec.on_restart,
        })?;
    if spec.not_after_ms != 0 && spec.not_after_ms < now_ms {
        return Err(SpecError::Expired {
            not_after_ms: spec.not_after_ms,
            now_ms,
        });
    }
    let (workload, env) = match spec.workload {
        None => return Err(SpecError::NoWorkload),
        Some(v1::job_spec::Workload::Process(p)) => {
            if !jobs.allow_process {
                return Err(SpecError::WorkloadDisabled("process"));
            }
            match p.argv.first() {
                None => return Err(SpecError::Argv("must not be empty")),
                Some(a) if a.is_empty() => return Err(SpecError::Argv("argv[0] is empty")),
                Some(_) => {}
            }
            check_args(&p.argv)?;
            check_arg_sizes(&p.argv, &p.env)?;
            (Workload::Process { argv: p.argv }, check_env(&p.env)?)
        }
        Some(v1::job_spec::Workload::Container(c)) => {
            if !caps.containers {
                return Err(SpecError::WorkloadDisabled("container"));
            }
            if !image_is_pinned(&c.image) {
                return Err(SpecError::ImageNotPinned(clip(&c.image)));
            }
            check_args(&c.args)?;
            check_arg_sizes(&c.args, &c.env)?;
            (
                Workload::Container {
                    image: c.image,
                    args: c.args,
                },
                check_env(&c.env)?,
            )
        }
    };
    count("inputs", spec.inputs.len(), MAX_INPUTS)?;
    let secrets = check_secrets(&spec.secrets, &env)?;
    let mut paths = spec
        .inputs
        .iter()
        .map(|f| check_input_path(&f.path).map(|p| (p, f.path.as_str())))
        .collect::<Result<Vec<_>, _>>()?;
    // Secret files share the input directory: one layout for both.
    let plain = paths.len();
    for s in secrets.iter().filter(|s| s.kind == SecretKind::InputFile) {
        paths.push((check_input_path(&s.name)?, s.name.as_str()));
    }
    check_layout(&paths)?;
    paths.truncate(plain);
    let paths: Vec<PathBuf> = paths.into_iter().map(|(p, _)| p).collect();
    let output_recipient = match spec.output_recipient.len() {
        0 => None,
        n => Some(
            <[u8; 32]>::try_from(spec.output_recipient.as_slice())
                .map_err(|_| SpecError::OutputRecipient(n))?,
        ),
    };
    let inputs: Vec<(PathBuf, Vec<u8>)> = paths
        .into_iter()
        .zip(spec.inputs.into_iter().map(|f| f.content))
        .collect();
    let l = spec.limits.unwrap_or_default();
    let j = jobs;
    let limits = Limits {
        wall_time_ms: limit(
            "limits.wall_time_ms",
            l.wall_time_ms,
            j.default_wall_time_ms,
            j.max_wall_time_ms,
        )?,
        // The provider's ceilings are also the defaults: a spec can only lower them.
        cpu_time_ms: limit(
            "limits.cpu_time_ms",
            l.cpu_time_ms,
            j.max_cpu_time_ms,
            j.max_cpu_time_ms,
        )?,
        memory_bytes: limit(
            "limits.memory_bytes",
            l.memory_bytes,
            match j.default_memory_bytes {
                0 => j.max_memory_bytes,
                d if j.max_memory_bytes == 0 => d,
                d => d.min(j.max_memory_bytes),
            },
            j.max_memory_bytes,
        )?,
        output_bytes: limit(
            "limits.output_bytes",
            l.output_bytes,
            j.default_output_bytes,
            j.max_output_bytes,
        )?,
    };
    if spec.gpu_count > caps.gpus {
        return Err(SpecError::NotEnoughGpus {
            requested: spec.gpu_count,
            available: caps.gpus,
        });
    }
    let evidence = match (tier, requested) {
        (_, v1::EvidenceMode::None) => Evidence::None,
        (1 | 2, v1::EvidenceMode::Unspecified) => Evidence::None,
        (_, v1::EvidenceMode::AttestedKey) => Evidence::AttestedKey,
        (_, v1::EvidenceMode::FreshQuote) => Evidence::FreshQuote,
        (_, v1::EvidenceMode::Unspecified) => caps.default_evidence,
    };
    // Asked for, or the agent's default (a `Capabilities::default_evidence` of `None` must not
    // let a tier-3 job through without evidence).
    if tier == 3 && evidence == Evidence::None {
        return Err(SpecError::EvidenceMode {
            mode: "none",
            tier: 3,
            reason: "tier 3 needs hardware evidence",
        });
    }
    if evidence != Evidence::None && !caps.has_tee {
        return Err(SpecError::EvidenceMode {
            mode: evidence.name(),
            tier: u32::from(tier),
            reason: "the agent has no evidence source",
        });
    }
    let rerun_on_restart = restart == v1::RestartPolicy::Rerun;
    Ok(JobPlan {
        job_id,
        tier,
        workload,
        env,
        inputs,
        limits,
        evidence,
        gpu_count: spec.gpu_count,
        rerun_on_restart,
        buyer,
        secrets,
        output_recipient,
    })
}

/// The spec's secret references: known kinds, 32-byte commitments, valid and unique names
/// (a variable neither reserved nor also given in clear).
fn check_secrets(
    refs: &[v1::SecretRef],
    env: &BTreeMap<String, String>,
) -> Result<Vec<SecretRef>, SpecError> {
    count("secrets", refs.len(), MAX_SECRETS)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let bad = |reason| SpecError::Secret {
            name: clip(&r.name),
            reason,
        };
        let kind = match v1::SecretKind::try_from(r.kind) {
            Ok(v1::SecretKind::InputFile) => SecretKind::InputFile,
            Ok(v1::SecretKind::Env) => SecretKind::Env,
            _ => {
                return Err(SpecError::UnknownEnum {
                    field: "secrets.kind",
                    value: r.kind,
                });
            }
        };
        let commitment = <[u8; 32]>::try_from(r.commitment.as_slice())
            .map_err(|_| bad("commitment must be 32 bytes"))?;
        if kind == SecretKind::Env {
            let one = std::collections::HashMap::from([(r.name.clone(), String::new())]);
            check_env(&one)?;
            if env.contains_key(&r.name) {
                return Err(bad("also given in clear in the workload's environment"));
            }
        }
        if !seen.insert((kind, r.name.as_str())) {
            return Err(bad("named twice"));
        }
        out.push(SecretRef {
            kind,
            name: r.name.clone(),
            commitment,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
