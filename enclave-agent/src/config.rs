//! Agent configuration: a TOML file, overridden by `SIGIL_AGENT_*` environment variables.
//!
//! Nested keys use a double underscore in the environment: `SIGIL_AGENT_TLS__CERT` sets
//! `tls.cert`, `SIGIL_AGENT_AUTH__TOKEN` sets `auth.token`. Every key and its default is
//! listed in `docs/agent.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file or an environment variable could not be read or has the wrong shape.
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    /// Plaintext gRPC was requested on a non-loopback address without `allow_plaintext`.
    #[error(
        "listen address {addr} is not loopback and no TLS certificate is configured \
         (set tls.cert and tls.key, or allow_plaintext = true behind a trusted proxy)"
    )]
    PlaintextNotAllowed {
        /// The configured listen address.
        addr: SocketAddr,
    },
    /// Only one of `tls.cert` and `tls.key` is set.
    #[error("tls.cert and tls.key must be set together")]
    TlsIncomplete,
    /// A buyer key in `auth.buyer_keys` is not 32 bytes of hex.
    #[error("auth.buyer_keys[{index}] is not a 64-digit hex ed25519 public key")]
    BuyerKey {
        /// Position in the list.
        index: usize,
    },
    /// A value is out of range.
    #[error("{key}: {reason}")]
    Invalid {
        /// The configuration key.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The bearer token file could not be read.
    #[error("auth.token_file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        Self::Load(Box::new(e))
    }
}

/// A secret string: never printed by `Debug` or logs.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value (compare it in constant time).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "[unset]"
        } else {
            "[redacted]"
        })
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Serve plaintext gRPC on a non-loopback address (only behind a TLS-terminating proxy).
    pub allow_plaintext: bool,
    /// Prometheus metrics listen address; unset disables the endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Directory for the job store (`agent.redb`) and job working directories.
    pub state_dir: PathBuf,
    /// TLS for the gRPC listener.
    pub tls: TlsConfig,
    /// Who may submit jobs.
    pub auth: AuthConfig,
    /// Job execution.
    pub jobs: JobsConfig,
    /// Container workloads.
    pub container: ContainerConfig,
    /// Evidence and receipts.
    pub evidence: EvidenceConfig,
    /// Collateral put into evidence bundles (TDX DCAP collateral, GPU RIMs and OCSP).
    pub collateral: CollateralConfig,
    /// GPUs.
    pub gpus: GpuConfig,
    /// Logging.
    pub log: LogConfig,
    /// Settlement on the market chain (off unless `url` is set).
    pub chain: ChainConfig,
    /// How process jobs are isolated from each other and from the agent.
    pub isolation: IsolationConfig,
    /// Limits on the gRPC API: rates, streams, timeouts, the queue bound.
    pub api: ApiConfig,
    /// Who may read what, and whether jobs not funded on chain are taken.
    pub access: AccessConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            allow_plaintext: false,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            state_dir: PathBuf::from("/var/lib/sigil-agent"),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            jobs: JobsConfig::default(),
            container: ContainerConfig::default(),
            evidence: EvidenceConfig::default(),
            collateral: CollateralConfig::default(),
            gpus: GpuConfig::default(),
            log: LogConfig::default(),
            chain: ChainConfig::default(),
            isolation: IsolationConfig::default(),
            api: ApiConfig::default(),
            access: AccessConfig::default(),
        }
    }
}

/// TLS settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// PEM CA bundle: when set, clients must present a certificate signed by it (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Serve TLS with a certificate made in memory at start for the agent's own ed25519 key,
    /// the key its evidence binds: a client that verified the evidence then knows the channel
    /// ends inside the attested VM (`sigil job submit` checks it for tier 3). `cert` and `key`
    /// must then be unset.
    pub attested: bool,
}

/// Authentication of submissions.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token accepted in the `authorization` metadata instead of a buyer signature.
    pub token: Secret,
    /// File holding the bearer token (takes precedence over `token`).
    pub token_file: Option<PathBuf>,
    /// Hex ed25519 public keys allowed to submit; empty accepts any correctly signed request.
    pub buyer_keys: Vec<String>,
    /// How far a signed cancel/output request's `issued_at_ms` may be from the agent's clock.
    pub max_clock_skew_secs: u64,
}

impl AuthConfig {
    /// The buyer allow-list, decoded.
    pub fn buyer_keys(&self) -> Vec<[u8; 32]> {
        self.buyer_keys
            .iter()
            .filter_map(|k| hex::decode(k).ok())
            .filter_map(|b| <[u8; 32]>::try_from(b).ok())
            .collect()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            token_file: None,
            buyer_keys: Vec::new(),
            max_clock_skew_secs: 300,
        }
    }
}

/// Job execution settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs run at the same time.
    pub max_concurrent: usize,
    /// Largest accepted gRPC request (the spec with its inputs), bytes.
    pub max_request_bytes: usize,
    /// Wall-time limit when a spec gives none, milliseconds.
    pub default_wall_time_ms: u64,
    /// Largest wall-time limit a spec may ask for, milliseconds.
    pub max_wall_time_ms: u64,
    /// Memory limit (RLIMIT_AS) when a spec gives none, bytes; 0 = none.
    pub default_memory_bytes: u64,
    /// Cap on a job's collected outputs when a spec gives none, bytes.
    pub default_output_bytes: u64,
    /// Largest output cap a spec may ask for, bytes.
    pub max_output_bytes: u64,
    /// Cap on each of stdout and stderr kept per job, bytes.
    pub max_log_bytes: u64,
    /// How often a job with `RESTART_POLICY_RERUN` is re-run after agent restarts.
    pub max_attempts: u32,
    /// Run process workloads (a provider offering containers only may turn this off).
    pub allow_process: bool,
    /// util-linux `prlimit` to exec process workloads through, so their rlimits hold from
    /// their first instruction (one more exec per job). Unset: `prlimit(2)` right after the
    /// spawn, with the memory limit guarded, where the agent may set limits on the workload
    /// (same user, or CAP_SYS_RESOURCE), else `prlimit` from PATH (see `crate::workload`).
    pub prlimit: Option<PathBuf>,
    /// On SIGTERM, how long running jobs may still finish before they are stopped and checkpointed.
    pub shutdown_grace_secs: u64,
    /// Time between SIGTERM and SIGKILL when a job is stopped.
    pub kill_grace_ms: u64,
    /// PATH given to process workloads.
    pub path: String,
    /// `uid:gid` process workloads run as when the agent runs as root and
    /// `isolation.mode = "off"` (they must not be able to read the agent's memory or key);
    /// `agent` keeps the agent's own user. With isolation on, every job has its own ids from
    /// `isolation.ids` instead.
    pub run_as: String,
    /// Largest memory limit of a job, bytes (cgroup `memory.max` with isolation on, else
    /// RLIMIT_AS); the default when neither the spec nor `default_memory_bytes` sets one.
    /// 0 = no ceiling (only with isolation off).
    pub max_memory_bytes: u64,
    /// Largest CPU time of a job, milliseconds, summed over all its processes with
    /// isolation on (RLIMIT_CPU per process otherwise); the default when the spec sets none.
    /// 0 = no ceiling (only with isolation off).
    pub max_cpu_time_ms: u64,
    /// Largest number of processes and threads a job may have at once (cgroup `pids.max`,
    /// and RLIMIT_NPROC on the job's own user id).
    pub max_pids: u64,
    /// CPU bandwidth of a job in thousandths of a core (cgroup `cpu.max`); 0 = not limited.
    pub cpu_millicores: u64,
    /// Largest number of files a job's outputs may hold.
    pub max_output_files: u64,
    /// Disk a job may fill in its directory (outputs and working files, allocated blocks),
    /// bytes, checked every second with isolation on; 0 = not limited.
    pub max_disk_bytes: u64,
    /// Read and write bandwidth of a job on the block device of the state directory, bytes
    /// per second each (cgroup `io.max` / blkio throttling); 0 = not limited.
    pub io_bytes_per_sec: u64,
    /// Take jobs with secrets even where their directory cannot be a private tmpfs
    /// (`isolation.mode = "off"`): their opened secrets then touch the state directory's
    /// disk. Development machines only; off by default.
    pub allow_secrets_on_disk: bool,
    /// Free space kept on the state directory's file system for the jobs already accepted,
    /// bytes: below it (or on a full or read-only file system) new jobs are refused.
    pub min_free_bytes: u64,
}

impl JobsConfig {
    /// `run_as` as numbers (`None` for `agent`).
    pub fn run_as_ids(&self) -> Option<(u32, u32)> {
        let (u, g) = self.run_as.split_once(':')?;
        Some((u.parse().ok()?, g.parse().ok()?))
    }

    /// SIGTERM grace period for running jobs.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The limits job specs are validated against (`sigil-job-spec`).
    pub fn spec_limits(&self) -> sigil_job_spec::SpecLimits {
        sigil_job_spec::SpecLimits {
            allow_process: self.allow_process,
            default_wall_time_ms: self.default_wall_time_ms,
            max_wall_time_ms: self.max_wall_time_ms,
            max_cpu_time_ms: self.max_cpu_time_ms,
            default_memory_bytes: self.default_memory_bytes,
            max_memory_bytes: self.max_memory_bytes,
            default_output_bytes: self.default_output_bytes,
            max_output_bytes: self.max_output_bytes,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            max_request_bytes: 16 << 20,
            default_wall_time_ms: 3_600_000,
            max_wall_time_ms: 7 * 24 * 3_600_000,
            default_memory_bytes: 0,
            default_output_bytes: 256 << 20,
            max_output_bytes: 4 << 30,
            max_log_bytes: 1 << 20,
            max_attempts: 3,
            allow_process: true,
            prlimit: None,
            shutdown_grace_secs: 60,
            kill_grace_ms: 2_000,
            path: "/usr/local/bin:/usr/bin:/bin".into(),
            run_as: "65534:65534".into(),
            max_memory_bytes: 8 << 30,
            max_cpu_time_ms: 7 * 24 * 3_600_000,
            max_pids: 1024,
            cpu_millicores: 0,
            max_output_files: 4096,
            max_disk_bytes: 16 << 30,
            io_bytes_per_sec: 0,
            allow_secrets_on_disk: false,
            min_free_bytes: 64 << 20,
        }
    }
}

/// Whether jobs must be isolated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// Every process job under its own user id, in its own cgroup (and its own mount
    /// namespace where `namespace` allows): the agent refuses to start when it cannot.
    #[default]
    Required,
    /// Development only: jobs run as `jobs.run_as` (or the agent's user) with rlimits, share
    /// one identity, and see the agent's files their user may read.
    Off,
}

/// Whether jobs get a private mount namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamespaceMode {
    /// Used where the kernel allows it (checked at start, and said in the log).
    #[default]
    Auto,
    /// The agent refuses to start without it.
    Required,
    /// Not used.
    Off,
}

/// The `[isolation]` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationConfig {
    /// `required` or `off`.
    pub mode: IsolationMode,
    /// Ids jobs run under, `first-last` inclusive: each running job gets one of them as its
    /// uid and gid, never shared with another running job, never the agent's. The range
    /// must not hold users of the system.
    pub ids: String,
    /// `auto` (a subtree of the agent's own cgroup: delegate it, e.g. systemd
    /// `Delegate=yes`) or the directory of a cgroup v2 the agent may manage.
    pub cgroup: String,
    /// Private mount namespace per job: `auto`, `required` or `off`.
    pub namespace: NamespaceMode,
    /// Paths hidden from jobs inside their namespace, besides the agent's state directory,
    /// its key and configuration files, attestation devices and unassigned GPUs.
    pub hide: Vec<PathBuf>,
    /// Size of the private `/tmp` and `/dev/shm` of a job, bytes (tmpfs, counted in the
    /// job's memory).
    pub tmp_bytes: u64,
    /// The launcher that places a job in its cgroup and namespace and drops its ids: unset
    /// = `sigil-launch` beside the agent's executable, else the agent's own executable
    /// (`sigil-agent --sigil-launch`).
    pub launcher: Option<PathBuf>,
}

impl IsolationConfig {
    /// `ids` as (first, last).
    pub fn id_range(&self) -> Option<(u32, u32)> {
        let (a, b) = self.ids.split_once('-')?;
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a > 0 && a <= b).then_some((a, b))
    }
}

impl Default for IsolationConfig {
    fn default() -> Self {
        Self {
            mode: IsolationMode::Required,
            ids: "3000000-3065535".into(),
            cgroup: "auto".into(),
            namespace: NamespaceMode::Auto,
            hide: Vec::new(),
            tmp_bytes: 256 << 20,
            launcher: None,
        }
    }
}

/// Container CLI settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// `podman`, `docker` or `nerdctl`; unset disables container workloads.
    pub engine: Option<ContainerEngine>,
    /// Path of the CLI; default: the engine's name looked up in PATH.
    pub cli: Option<PathBuf>,
    /// Give containers a network (default: `--network none`).
    pub network: bool,
    /// Extra arguments placed after `run`.
    pub extra_args: Vec<String>,
}

/// A container CLI.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContainerEngine {
    /// Podman (GPUs through CDI: `--device nvidia.com/gpu=N`).
    Podman,
    /// Docker (GPUs through `--gpus device=N`).
    Docker,
    /// nerdctl (GPUs through `--gpus device=N`).
    Nerdctl,
}

impl ContainerEngine {
    /// The CLI's usual name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
            Self::Nerdctl => "nerdctl",
        }
    }
}

/// Where Linux publishes the TPM's firmware event log (Azure vTPM backend).
pub const TPM_EVENT_LOG_PATH: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The ACPI CCEL table's data area: the TDX firmware's event log.
pub const CCEL_PATH: &str = "/sys/firmware/acpi/tables/data/CCEL";
/// The kernel's RTMR3 attribute (TDX measurement interface, Linux >= 6.16).
pub const RTMR3_PATH: &str = "/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384";
/// Where the agent keeps its own RTMR3 events by default (one boot's lifetime).
pub const DEFAULT_MEASUREMENT_LOG: &str = "/run/sigil/agent-measurements";

/// Evidence and receipt settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Evidence backend: `auto` (detect), `sev-guest`, `tsm`, `tdx-guest`, `azure-vtpm`,
    /// `simulated`, `none`.
    pub backend: String,
    /// Mode for tier-3 jobs that do not choose one: `attested-key` or `fresh-quote`.
    pub default_mode: String,
    /// How often the attested-key evidence is refreshed, seconds.
    pub refresh_secs: u64,
    /// Allow the simulator backend (development only).
    pub allow_simulated: bool,
    /// Azure vTPM backend: Azure IMDS's VCEK endpoint (`""`: only `azure_vcek_file`).
    pub azure_imds_url: String,
    /// Azure vTPM backend: a file with the VCEK (and ASK, ARK) as PEM, or IMDS's JSON,
    /// used instead of IMDS.
    pub azure_vcek_file: Option<PathBuf>,
    /// Azure vTPM backend on a TDX VM: Azure IMDS's endpoint that turns the TD report
    /// into a DCAP quote (`http://` or `https://`).
    pub azure_tdquote_url: String,
    /// Measured boot on TDX (`docs/measured-boot.md`): `auto` (carry the firmware event
    /// log and extend RTMR3 with the agent's own digests where the kernel allows; say
    /// so when it does not), `required` (refuse to start without both) or `off`.
    pub measured_boot: String,
    /// The agent's own measurement log; it must last exactly one boot (under `/run`).
    pub measurement_log: PathBuf,
    /// The firmware event log (the ACPI CCEL table's data).
    pub ccel_path: PathBuf,
    /// The kernel's RTMR3 attribute (TDX measurement interface, Linux >= 6.16).
    pub rtmr3_path: PathBuf,
    /// Azure vTPM backend: the TPM's firmware event log, carried beside the vTPM quote
    /// (a missing file: no log, said at start).
    pub tpm_event_log_path: PathBuf,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            backend: "auto".into(),
            default_mode: "attested-key".into(),
            refresh_secs: 3_600,
            allow_simulated: false,
            azure_imds_url: IMDS_THIM_URL.into(),
            azure_vcek_file: None,
            azure_tdquote_url: IMDS_TDQUOTE_URL.into(),
            measured_boot: "auto".into(),
            measurement_log: DEFAULT_MEASUREMENT_LOG.into(),
            ccel_path: CCEL_PATH.into(),
            rtmr3_path: RTMR3_PATH.into(),
            tpm_event_log_path: TPM_EVENT_LOG_PATH.into(),
        }
    }
}

/// Where the collateral in evidence bundles comes from. URLs set to `""` disable
/// that source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollateralConfig {
    /// Intel PCS or a PCCS (v4 API) for TDX collateral.
    pub pccs_url: String,
    /// A TDX collateral file (the verifier's collateral JSON), used beside or instead of the PCCS.
    pub tdx_file: Option<PathBuf>,
    /// Directory of RIMs named `<RIM id>.xml`, read before the RIM service is asked.
    pub rim_dir: Option<PathBuf>,
    /// NVIDIA's RIM service.
    pub rim_service_url: String,
    /// NVIDIA's OCSP responder.
    pub ocsp_url: String,
    /// AMD's Key Distribution Service, for the VCEK of SEV-SNP hosts that supply no
    /// certificates with the report.
    pub amd_kds_url: String,
    /// The SEV-SNP product (`Milan`, `Genoa`, `Turin`) for reports older than v3, which do
    /// not name their CPU model; needed only to fetch their VCEK.
    pub snp_product: Option<String>,
    /// A PEM file with the VCEK (and ASK, ARK) of this machine's chip, used instead of
    /// AMD KDS when the host supplies no certificates with the report.
    pub snp_vcek_file: Option<PathBuf>,
    /// Put AMD's CRL of the chip's product line (VCEK or VLEK, from `amd_kds_url`) into
    /// SEV-SNP evidence bundles, for policies with `[snp] crl_max_age_secs`.
    pub snp_crl: bool,
    /// A held AMD CRL issued longer ago than this is fetched again, seconds (it is also
    /// fetched again once past its `nextUpdate`).
    pub snp_crl_max_age_secs: u64,
    /// Cache of fetched collateral; default `state_dir/collateral`.
    pub cache_dir: Option<PathBuf>,
    /// Timeout of one request, seconds.
    pub timeout_secs: u64,
    /// Collateral whose `nextUpdate` is closer than this is fetched again, seconds.
    pub refresh_before_secs: u64,
    /// Least time between fetch attempts for one item while what is held is valid, seconds.
    pub retry_secs: u64,
}

impl CollateralConfig {
    /// `snp_product`, parsed.
    pub fn snp_product(&self) -> Option<attestation_verifier::evidence::snp::Product> {
        self.snp_product
            .as_deref()
            .and_then(attestation_verifier::evidence::snp::Product::from_name)
    }
}

impl Default for CollateralConfig {
    fn default() -> Self {
        Self {
            pccs_url: attestation_verifier::pcs::INTEL_PCS_URL.into(),
            tdx_file: None,
            rim_dir: None,
            rim_service_url: attestation_verifier::rim_service::NVIDIA_RIM_SERVICE_URL.into(),
            ocsp_url: NVIDIA_OCSP_URL.into(),
            amd_kds_url: AMD_KDS_URL.into(),
            snp_product: None,
            snp_vcek_file: None,
            snp_crl: true,
            snp_crl_max_age_secs: 86_400,
            cache_dir: None,
            timeout_secs: 10,
            refresh_before_secs: 7 * 86_400,
            retry_secs: 300,
        }
    }
}

/// NVIDIA's OCSP responder for GPU device and RIM certificates.
pub const NVIDIA_OCSP_URL: &str = "https://ocsp.ndis.nvidia.com";

/// AMD's Key Distribution Service (default of `collateral.amd_kds_url`).
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// Azure IMDS's TD quote endpoint (default of `evidence.azure_tdquote_url`).
pub const IMDS_TDQUOTE_URL: &str = "http://169.254.169.254/acc/tdquote";
/// Azure IMDS's VCEK endpoint (THIM; default of `evidence.azure_imds_url`).
pub const IMDS_THIM_URL: &str = "http://169.254.169.254/metadata/THIM/amd/certification";

/// GPU settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// Use GPUs (through NVML) when present.
    pub enabled: bool,
    /// Only offer these GPU indices; empty = all.
    pub indices: Vec<u32>,
    /// GPU metering sample period, milliseconds.
    pub sample_ms: u64,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            indices: Vec::new(),
            sample_ms: 1_000,
        }
    }
}

/// Logging.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` or `text`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `enclave_agent=debug`. `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "json".into(),
            filter: "info".into(),
        }
    }
}

/// The `[chain]` table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// WebSocket URL of a node (`ws://` or `wss://`); empty: the agent does not use a chain.
    pub url: String,
    /// File holding the provider account's secret URI (a dev URI such as `//Charlie`, a
    /// mnemonic, or a `0x` seed). Read at start; never logged.
    pub account_key_file: PathBuf,
    /// Signature scheme of the account: `sr25519` (default) or `ed25519`.
    pub account_scheme: String,
    /// Chain attestation policy the attested key registers under (by name, e.g.
    /// `sigil.confidential-vm.v1`, or `0x` + id).
    pub policy: String,
    /// Tiers offered; empty: 1 and 2, plus 3 when the agent has evidence.
    pub tiers: Vec<u8>,
    /// GPU model offered (empty: the first GPU's name, or none).
    pub gpu_model: String,
    /// Seconds between retries after an RPC failure.
    pub retry_secs: u64,
    /// The standing offer the chain binds jobs from (`[chain.offer]`).
    pub offer: OfferConfig,
}

/// The provider's standing offer on chain: the chain's dispatch rule binds it to jobs that pay
/// at least `price`, up to `capacity` at once, while `bond` is held on the account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OfferConfig {
    /// Least price per job, in MINT (decimal, e.g. `"0.25"`); a tier-2 job pays each settling
    /// provider its price over `k`.
    pub price: String,
    /// Most jobs bound at once; 0 keeps no offer (the agent then gets no jobs from the chain).
    pub capacity: u32,
    /// Bond in MINT held while the offer stands (at least the chain's minimum); a share goes to
    /// a buyer whose job the agent misses or whose tier-2 result it contradicts.
    pub bond: String,
}

impl Default for OfferConfig {
    fn default() -> Self {
        Self {
            price: "0.001".into(),
            capacity: 4,
            bond: "10".into(),
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            account_key_file: PathBuf::new(),
            account_scheme: "sr25519".into(),
            policy: sigil_chain_client::policy::CONFIDENTIAL_VM_V1.into(),
            tiers: Vec::new(),
            gpu_model: String::new(),
            retry_secs: 15,
            offer: OfferConfig::default(),
        }
    }
}

impl ChainConfig {
    /// Whether the agent uses a chain.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

/// The `[api]` table: what one client, or all of them together, may hold of the agent.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests per second one peer (client IP address) may make, sustained; 0: no limit.
    pub peer_rate: u32,
    /// Requests one peer may make in a burst above `peer_rate`.
    pub peer_burst: u32,
    /// Requests per second all peers together may make, sustained; 0: no limit.
    pub global_rate: u32,
    /// Requests all peers together may make in a burst above `global_rate`.
    pub global_burst: u32,
    /// `Challenge` calls (each collects fresh evidence) per second one peer may make; 0: no
    /// limit beyond `peer_rate`.
    pub challenge_rate: u32,
    /// `Challenge` calls one peer may make in a burst.
    pub challenge_burst: u32,
    /// Most HTTP/2 streams (calls in flight) on one connection.
    pub max_streams_per_connection: u32,
    /// Most open server streams (`Watch`, `GetOutput`) across all clients.
    pub max_open_streams: usize,
    /// A unary call that has not answered within this many seconds is ended `DEADLINE_EXCEEDED`.
    pub request_timeout_secs: u64,
    /// A server stream whose client has not taken the next message within this many seconds
    /// is ended (a reader that stalls does not hold the agent).
    pub stream_idle_secs: u64,
    /// Most jobs waiting for a slot; `Submit` beyond it is `RESOURCE_EXHAUSTED` with a retry
    /// hint. 0: no bound.
    pub max_queued_jobs: usize,
    /// The retry hint of a refusal for load (`retry-after-ms` metadata), milliseconds, at
    /// least: a full queue hints at its length times this over `jobs.max_concurrent`.
    pub retry_after_ms: u64,
    /// Peers whose rates are tracked at once (the least recently seen are forgotten).
    pub max_tracked_peers: usize,
    /// With `[chain]`: most funding checks (chain reads) in flight at once; `Submit` beyond
    /// it is `RESOURCE_EXHAUSTED`, so submissions cannot flood the chain node.
    pub max_chain_lookups: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            peer_rate: 50,
            peer_burst: 100,
            global_rate: 2_000,
            global_burst: 4_000,
            challenge_rate: 1,
            challenge_burst: 5,
            max_streams_per_connection: 64,
            max_open_streams: 1_024,
            request_timeout_secs: 30,
            stream_idle_secs: 60,
            max_queued_jobs: 1_024,
            retry_after_ms: 1_000,
            max_tracked_peers: 10_000,
            max_chain_lookups: 16,
        }
    }
}

/// The `[access]` table: who may read what (see `docs/agent.md`, "Access rules").
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// With `[chain]` configured, also take jobs the chain does not know: submitted with the
    /// bearer token, or signed by a key in `auth.buyer_keys` (an empty list then admits none
    /// but the token).
    pub allow_off_chain: bool,
    /// The bearer token may read the outputs of buyers' jobs (it always reads their status
    /// and receipts, and the outputs of jobs it submitted itself).
    pub operator_reads_outputs: bool,
    /// `GetJob`, `Watch` and `GetReceipt` need no authentication (as before access rules).
    pub public_status: bool,
}

/// Environment variable prefix of overrides.
pub const ENV_PREFIX: &str = "SIGIL_AGENT_";

impl Config {
    /// Loads defaults, then `path` (if given), then `SIGIL_AGENT_*` from the environment, and
    /// checks the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            fig = fig.merge(Toml::file_exact(p));
        }
        Self::extract(fig.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    /// Parses a TOML document (no environment), then checks it. For tests and tools.
    pub fn from_toml(doc: &str) -> Result<Self, ConfigError> {
        Self::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(doc)),
        )
    }

    fn extract(fig: Figment) -> Result<Self, ConfigError> {
        let mut cfg: Config = fig.extract()?;
        cfg.resolve()?;
        Ok(cfg)
    }

    /// Validates cross-field rules and reads the token file.
    fn resolve(&mut self) -> Result<(), ConfigError> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::TlsIncomplete);
        }
        if self.tls.attested && self.tls.cert.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls.attested",
                reason: "the attested certificate is made for the agent's key: unset tls.cert and tls.key",
            });
        }
        if self.tls.cert.is_none()
            && !self.tls.attested
            && !self.listen.ip().is_loopback()
            && !self.allow_plaintext
        {
            return Err(ConfigError::PlaintextNotAllowed { addr: self.listen });
        }
        if self.jobs.max_concurrent == 0 {
            return Err(ConfigError::Invalid {
                key: "jobs.max_concurrent",
                reason: "must be at least 1",
            });
        }
        if self.jobs.max_request_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "jobs.max_request_bytes",
                reason: "must be at least 1024",
            });
        }
        if self.jobs.default_wall_time_ms == 0
            || self.jobs.default_wall_time_ms > self.jobs.max_wall_time_ms
        {
            return Err(ConfigError::Invalid {
                key: "jobs.default_wall_time_ms",
                reason: "must be non-zero and at most jobs.max_wall_time_ms",
            });
        }
        if self.jobs.default_output_bytes > self.jobs.max_output_bytes {
            return Err(ConfigError::Invalid {
                key: "jobs.default_output_bytes",
                reason: "must be at most jobs.max_output_bytes",
            });
        }
        if self.jobs.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "jobs.max_attempts",
                reason: "must be at least 1",
            });
        }
        if !matches!(
            self.evidence.default_mode.as_str(),
            "attested-key" | "fresh-quote"
        ) {
            return Err(ConfigError::Invalid {
                key: "evidence.default_mode",
                reason: "must be attested-key or fresh-quote",
            });
        }
        if !matches!(
            self.evidence.measured_boot.as_str(),
            "auto" | "required" | "off"
        ) {
            return Err(ConfigError::Invalid {
                key: "evidence.measured_boot",
                reason: "must be auto, required or off",
            });
        }
        if self.evidence.refresh_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "evidence.refresh_secs",
                reason: "must be at least 1",
            });
        }
        if self.collateral.timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "collateral.timeout_secs",
                reason: "must be at least 1",
            });
        }
        if !matches!(self.log.format.as_str(), "json" | "text") {
            return Err(ConfigError::Invalid {
                key: "log.format",
                reason: "must be json or text",
            });
        }
        if self.jobs.run_as != "agent" && self.jobs.run_as_ids().is_none() {
            return Err(ConfigError::Invalid {
                key: "jobs.run_as",
                reason: "must be `uid:gid` (numbers) or `agent`",
            });
        }
        match self.isolation.id_range() {
            None => {
                return Err(ConfigError::Invalid {
                    key: "isolation.ids",
                    reason: "must be `first-last`, 0 < first <= last",
                });
            }
            // A running job holds one id until its outputs are collected, and at most
            // `jobs.max_concurrent` jobs run: the range never runs out.
            Some((first, last))
                if u64::from(last.saturating_sub(first)).saturating_add(1)
                    < u64::try_from(self.jobs.max_concurrent).unwrap_or(u64::MAX) =>
            {
                return Err(ConfigError::Invalid {
                    key: "isolation.ids",
                    reason: "must hold at least jobs.max_concurrent ids",
                });
            }
            Some(_) => {}
        }
        if self.isolation.mode == IsolationMode::Required
            && (self.jobs.max_memory_bytes == 0 || self.jobs.max_cpu_time_ms == 0)
        {
            return Err(ConfigError::Invalid {
                key: "jobs.max_memory_bytes",
                reason: "jobs.max_memory_bytes and jobs.max_cpu_time_ms must be set when isolation is required",
            });
        }
        if self.jobs.max_pids == 0 || self.jobs.max_output_files == 0 {
            return Err(ConfigError::Invalid {
                key: "jobs.max_pids",
                reason: "jobs.max_pids and jobs.max_output_files must be at least 1",
            });
        }
        if !(self.evidence.azure_tdquote_url.starts_with("http://")
            || self.evidence.azure_tdquote_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "evidence.azure_tdquote_url",
                reason: "must be an http:// or https:// URL",
            });
        }
        if self.collateral.snp_crl_max_age_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "collateral.snp_crl_max_age_secs",
                reason: "must be at least 1",
            });
        }
        if self.collateral.snp_product.is_some() && self.collateral.snp_product().is_none() {
            return Err(ConfigError::Invalid {
                key: "collateral.snp_product",
                reason: "must be Milan, Genoa or Turin",
            });
        }
        if self.api.peer_rate > 0 && self.api.peer_burst == 0
            || self.api.global_rate > 0 && self.api.global_burst == 0
            || self.api.challenge_rate > 0 && self.api.challenge_burst == 0
        {
            return Err(ConfigError::Invalid {
                key: "api.*_burst",
                reason: "must be at least 1 where its rate is set",
            });
        }
        if self.api.max_streams_per_connection == 0
            || self.api.max_open_streams == 0
            || self.api.max_chain_lookups == 0
        {
            return Err(ConfigError::Invalid {
                key: "api.max_streams_per_connection / api.max_open_streams / api.max_chain_lookups",
                reason: "must be at least 1",
            });
        }
        if self.api.request_timeout_secs == 0 || self.api.stream_idle_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "api.request_timeout_secs / api.stream_idle_secs",
                reason: "must be at least 1",
            });
        }
        for (index, k) in self.auth.buyer_keys.iter().enumerate() {
            let ok = hex::decode(k).map(|b| b.len() == 32).unwrap_or(false);
            if !ok {
                return Err(ConfigError::BuyerKey { index });
            }
        }
        if let Some(path) = &self.auth.token_file {
            let t = std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
                path: path.clone(),
                source,
            })?;
            self.auth.token = Secret::new(t.trim());
        }
        Ok(())
    }
}

/// Path of the redb job store in a state directory.
pub fn store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("agent.redb")
}

/// Directory holding the jobs' working directories in a state directory.
pub fn work_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs")
}

#[cfg(test)]
mod tests;
