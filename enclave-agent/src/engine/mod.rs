//! The job engine: accepts jobs into the store, schedules them onto free slots and GPUs,
//! runs them, meters them, signs their receipts and publishes their events.
//!
//! Durability (see also [`crate::store`]):
//! 1. `Submit` returns only after the job and its spec are committed (`Queued`).
//! 2. Before a workload starts, the job is committed `Running` with its attempt counted.
//! 3. At its end, the final state, outputs, logs, receipt and bundle are committed together.
//!
//! When the scheduler runs, a free slot (and the GPUs the job asks for) is available and no
//! job is waiting, `Submit` stores the job directly as `Running` with its first attempt
//! counted, and it starts at once: steps 1 and 2 are then one commit, which still precedes
//! both the reply and the start.
//!
//! A crash between 2 and 3 leaves the job `Running`; at the next start
//! [`crate::store::Store::recover`] ends it `Failed`, or re-queues it when its spec asked for
//! re-runs and attempts remain, after killing what is left of its process group. A job is
//! therefore never lost, and never started again unless its spec says so.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use attestation_verifier::crypto::AwsLc;
use attestation_verifier::receipt::TeeKind;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::attestor::{AttestedKeyEvidence, Attestor};
use crate::auth::Authenticator;
use crate::config::{self, AccessConfig, AuthConfig, ContainerConfig, JobsConfig};
use crate::funding::{FundingOracle, LateOracle};
use crate::job::{JobId, JobRecord, JobState};
use crate::metering::{self, GpuMetering};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::workload::isolate::Isolation;
use crate::workload::spec::{Capabilities, Evidence};
use crate::workload::{self, Gpu, JobDirs, RunAs, StopSignal};

mod admission;
mod disk;
pub mod error;
mod receipts;
mod runner;
mod scheduler;
mod secrets;

pub use admission::Access;
pub use error::{AgentError, FundingRefusal};
pub use receipts::IssuedReceipt;

/// The crypto backend used for hashing and the result commitment.
pub(crate) const CRYPTO: AwsLc = AwsLc;

/// The engine's part of the configuration: its own sections, picked out of the agent's
/// `Config` by [`crate::wiring::engine_config`] (the engine never sees the rest).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The state directory (`state_dir`): the store and the jobs' working directories.
    pub state_dir: PathBuf,
    /// `[jobs]`.
    pub jobs: JobsConfig,
    /// `[container]`.
    pub container: ContainerConfig,
    /// `[auth]`: who may submit and read.
    pub auth: AuthConfig,
    /// `[evidence] default_mode`: the evidence mode of jobs whose spec names none.
    pub default_evidence: Evidence,
    /// `[evidence] refresh_secs`: how often attested-key evidence is collected anew.
    pub evidence_refresh: Option<std::time::Duration>,
    /// `[access]`: who may read what, and whether off-chain jobs are taken.
    pub access: AccessConfig,
    /// A chain is configured: jobs run only as the chain funded and bound them (asked
    /// through the oracle set with [`Engine::set_funding`]).
    pub require_funding: bool,
    /// `[api] max_queued_jobs`: most jobs waiting (0: no bound).
    pub max_queued_jobs: usize,
    /// `[api] retry_after_ms`: the least retry hint of a refusal for load.
    pub retry_after_ms: u64,
    /// `[api] max_chain_lookups`: funding checks in flight at once.
    pub max_chain_lookups: usize,
}

impl EngineConfig {
    /// Path of the redb job store.
    pub fn store_path(&self) -> PathBuf {
        config::store_path(&self.state_dir)
    }

    /// Directory holding the jobs' working directories.
    pub fn work_dir(&self) -> PathBuf {
        config::work_dir(&self.state_dir)
    }
}

/// Pieces the engine is built from (so tests can assemble one without a config file).
pub struct EngineParts {
    /// The engine's configuration.
    pub config: EngineConfig,
    /// Evidence and receipt signing.
    pub attestor: Arc<Attestor>,
    /// GPUs the agent offers.
    pub gpus: Vec<Gpu>,
    /// GPU metering.
    pub gpu_metering: GpuMetering,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Isolation of process jobs (`None`: `isolation.mode = "off"`), checked by
    /// [`crate::wiring::isolation`].
    pub isolation: Option<Arc<Isolation>>,
}

impl std::fmt::Debug for EngineParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineParts")
            .field("config", &self.config)
            .field("gpus", &self.gpus)
            .finish_non_exhaustive()
    }
}

/// The engine. Shared as `Arc<Engine>` by the gRPC services.
pub struct Engine {
    /// The engine itself, for the tasks that submissions start.
    me: std::sync::Weak<Engine>,
    cfg: Arc<EngineConfig>,
    store: Store,
    attestor: Arc<Attestor>,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    caps: Capabilities,
    gpu_metering: GpuMetering,
    gpus: Vec<Gpu>,
    free_gpus: Mutex<Vec<Gpu>>,
    /// Waiting jobs in submission order, with the number of GPUs each needs.
    queue: Mutex<VecDeque<(JobId, u32)>>,
    /// Submissions admitted to the queue and not yet in it (`[api] max_queued_jobs`).
    admitting: std::sync::atomic::AtomicUsize,
    wake: Notify,
    /// One permit per job that may run at once (`jobs.max_concurrent`).
    slots: Arc<Semaphore>,
    /// Set once [`Engine::run`] has started: jobs start only then.
    scheduling: AtomicBool,
    running: Mutex<HashMap<JobId, StopSignal>>,
    /// Secrets of jobs not yet started, as sealed to the agent (never in the store: they
    /// open only under this run's sealing key, and are dropped once written to the job's
    /// tmpfs).
    sealed: Mutex<HashMap<JobId, Vec<v1::SealedSecret>>>,
    events: broadcast::Sender<Arc<JobRecord>>,
    shutdown: CancellationToken,
    drained: CancellationToken,
    tasks: TaskTracker,
    prlimit: Option<PathBuf>,
    container_cli: Option<PathBuf>,
    run_as: Option<RunAs>,
    isolation: Option<Arc<Isolation>>,
    /// What the chain says about funding (connected later, see [`Engine::set_funding`]).
    funding: LateOracle,
    /// One permit per funding check in flight (`[api] max_chain_lookups`).
    lookups: Semaphore,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
impl Engine {
    /// Opens the store, recovers jobs interrupted by a crash, collects the first
    /// attested-key evidence and re-queues waiting jobs. Call [`Engine::run`] to start
    /// scheduling.
    pub async fn start(
        parts: EngineParts,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, AgentError> {
        let EngineParts {
            config,
            attestor,
            gpus,
            gpu_metering,
            metrics,
            isolation,
        } = parts;
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            AgentError::Internal(format!("state_dir {}: {e}", config.state_dir.display()))
        })?;
        std::fs::create_dir_all(config.work_dir()).map_err(|e| {
            AgentError::Internal(format!("work dir {}: {e}", config.work_dir().display()))
        })?;
        // The store holds every buyer's inputs and outputs: the agent's alone, whatever
        // the umask (redb creates it with the process's default mode).
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let path = config.store_path();
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .and_then(|_| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                })
                .map_err(|e| AgentError::Internal(format!("store {}: {e}", path.display())))?;
        }
        let store = {
            let path = config.store_path();
            let stats = metrics.store_stats();
            tokio::task::spawn_blocking(move || Store::open_counted(&path, stats))
                .await
                .map_err(|e| AgentError::Internal(e.to_string()))??
        };
        let container_cli = config.container.engine.and_then(|e| {
            config
                .container
                .cli
                .clone()
                .or_else(|| workload::which(e.name(), &config.jobs.path))
        });
        if config.container.engine.is_some() && container_cli.is_none() {
            tracing::warn!(
                "container engine configured but its CLI was not found: container jobs are refused"
            );
        }
        // Isolated jobs have ids of their own; `jobs.run_as` is for isolation off.
        let run_as = match (
            config.jobs.run_as_ids(),
            nix::unistd::geteuid().is_root(),
            &isolation,
        ) {
            (Some((uid, gid)), true, None) => Some(RunAs { uid, gid }),
            _ => None,
        };
        // Limits are set with prlimit(2) right after the spawn where the agent may do that
        // (the workload runs under the agent's own ids, or the agent holds
        // CAP_SYS_RESOURCE); otherwise, or when `jobs.prlimit` is set, the workload is
        // exec'd through util-linux `prlimit` (see `crate::workload`).
        let own_ids = run_as.is_none_or(|u| {
            u.uid == nix::unistd::getuid().as_raw() && u.gid == nix::unistd::getgid().as_raw()
        });
        let prlimit = match config.jobs.prlimit.clone() {
            _ if isolation.is_some() => None,
            Some(p) => Some(p),
            None if own_ids || workload::may_limit_other_users() => None,
            None => {
                let found = workload::which("prlimit", &config.jobs.path);
                match &found {
                    Some(p) => tracing::info!(
                        prlimit = %p.display(),
                        "workloads run as another user and the agent lacks CAP_SYS_RESOURCE: limits are applied through util-linux prlimit"
                    ),
                    None => tracing::warn!(
                        "workloads run as another user, the agent lacks CAP_SYS_RESOURCE and util-linux prlimit is not installed: process jobs with limits will fail"
                    ),
                }
                found
            }
        };
        if run_as.is_some() || isolation.is_some() {
            // Workloads run as another user and must reach their own job directory:
            // the state and work directories are traverse-only for others (the store file
            // and other job directories stay private).
            use std::os::unix::fs::PermissionsExt;
            for d in [config.state_dir.clone(), config.work_dir()] {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711))
                    .map_err(|e| AgentError::Internal(format!("chmod {}: {e}", d.display())))?;
            }
        }
        let caps = Capabilities {
            agent_key: attestor.public_key(),
            has_tee: attestor.tee() != TeeKind::None,
            gpus: u32::try_from(gpus.len()).unwrap_or(u32::MAX),
            containers: container_cli.is_some(),
            default_evidence: config.default_evidence,
        };
        let auth = Authenticator::new(&config.auth, metrics.signature_stats())
            .map_err(|e| AgentError::Internal(format!("start the signature verifier: {e}")))?;
        let (events, _) = broadcast::channel(1024);
        let slots = Arc::new(Semaphore::new(config.jobs.max_concurrent));
        let lookups = Semaphore::new(config.max_chain_lookups.max(1));
        let engine = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            auth,
            cfg: Arc::new(config),
            store,
            attestor,
            metrics,
            caps,
            gpu_metering,
            free_gpus: Mutex::new(gpus.clone()),
            gpus,
            queue: Mutex::new(VecDeque::new()),
            admitting: std::sync::atomic::AtomicUsize::new(0),
            wake: Notify::new(),
            slots,
            scheduling: AtomicBool::new(false),
            running: Mutex::new(HashMap::new()),
            sealed: Mutex::new(HashMap::new()),
            events,
            shutdown,
            drained: CancellationToken::new(),
            tasks: TaskTracker::new(),
            prlimit,
            container_cli,
            run_as,
            isolation,
            funding: LateOracle::new(),
            lookups,
        });
        engine.recover().await?;
        if engine.caps.has_tee {
            engine.refresh_evidence().await?;
        }
        Ok(engine)
    }

    /// Crash recovery and re-queueing of waiting jobs.
    async fn recover(&self) -> Result<(), AgentError> {
        let store = self.store.clone();
        let max_attempts = self.cfg.jobs.max_attempts;
        let specs = self.store.clone();
        let now = metering::unix_ms();
        let recovered = tokio::task::spawn_blocking(move || {
            store.recover(now, move |r| {
                r.attempts < max_attempts
                    && specs
                        .spec(r)
                        .ok()
                        .flatten()
                        .and_then(|b| <v1::JobSpec as prost::Message>::decode(b.as_slice()).ok())
                        .is_some_and(|s| s.on_restart == v1::RestartPolicy::Rerun as i32)
            })
        })
        .await
        .map_err(|e| AgentError::Internal(e.to_string()))??;
        for r in &recovered {
            let dirs = JobDirs::new(&self.cfg.work_dir(), &hex::encode(r.record.job_id));
            let handles = [r.orphan, workload::read_pid_file(&dirs)];
            for h in handles.into_iter().flatten() {
                if workload::kill_orphan(h) {
                    tracing::warn!(job = %hex::encode(r.record.job_id), pid = h.pid, "killed the process group left by the previous agent");
                }
            }
            tracing::warn!(
                job = %hex::encode(r.record.job_id),
                state = r.record.state.name(),
                reason = %r.record.reason,
                "recovered a job that was running when the agent stopped"
            );
        }
        self.sweep_job_dirs().await;
        let mut all = self.store.all()?;
        for s in JobState::ALL {
            let n = all.iter().filter(|r| r.state == s).count();
            self.metrics
                .set_jobs(s, u64::try_from(n).unwrap_or(u64::MAX));
        }
        all.retain(|r| r.state == JobState::Queued);
        all.sort_by_key(|r| (r.submitted_at_ms, r.job_id));
        let queued: Vec<(JobId, u32)> = all
            .into_iter()
            .map(|r| (r.job_id, self.gpus_needed(&r)))
            .collect();
        lock(&self.queue).extend(queued);
        Ok(())
    }

    /// Removes the directories that the previous agent left behind for jobs that have ended
    /// for good (a crash between a job's final state and its directory's removal) or that
    /// the store does not know: their outputs and logs are in the store, and nothing will
    /// read them again. A job that will run again keeps its directory; a name that is not a
    /// job id is left alone. Failures are logged: they never stop the agent.
    async fn sweep_job_dirs(&self) {
        let store = self.store.clone();
        let work = self.cfg.work_dir();
        let swept = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&work) else {
                return (0usize, Vec::new());
            };
            let (mut removed, mut failed) = (0usize, Vec::new());
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(hex_id) = name.to_str() else {
                    continue;
                };
                let Some(job_id) = parse_job_dir_name(hex_id) else {
                    continue;
                };
                let ended = match store.get(&job_id) {
                    Ok(Some(r)) => r.state.is_final(),
                    Ok(None) => true,
                    Err(_) => false,
                };
                if !ended {
                    continue;
                }
                match workload::remove_job_dir(&JobDirs::new(&work, hex_id)) {
                    Ok(()) => removed = removed.saturating_add(1),
                    Err(e) => failed.push((hex_id.to_owned(), e.to_string())),
                }
            }
            (removed, failed)
        })
        .await;
        match swept {
            Ok((removed, failed)) => {
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "removed the directories of jobs that had ended before the agent stopped"
                    );
                }
                for (job, error) in failed {
                    tracing::warn!(%job, %error, "an ended job's directory could not be removed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "the job directories could not be swept"),
        }
    }

    /// GPUs a stored job asks for (0 if its spec cannot be read: it then fails when it is
    /// validated before running).
    fn gpus_needed(&self, record: &JobRecord) -> u32 {
        match self.store.spec(record) {
            Ok(Some(bytes)) => <v1::JobSpec as prost::Message>::decode(bytes.as_slice())
                .map(|s| s.gpu_count)
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Connects the funding oracle (the chain); until then, with a chain configured,
    /// submissions are refused `UNAVAILABLE`. The first call wins.
    pub fn set_funding(&self, oracle: Arc<dyn FundingOracle>) {
        self.funding.set(oracle);
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The attestor.
    pub fn attestor(&self) -> &Attestor {
        &self.attestor
    }

    /// The attestor, shared.
    pub fn attestor_handle(&self) -> &Arc<Attestor> {
        &self.attestor
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// GPUs offered.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }

    /// What the agent can run.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The current attested-key evidence.
    pub fn current_evidence(&self) -> Option<AttestedKeyEvidence> {
        self.attestor.current()
    }

    /// Collects evidence for `nonce` off the async runtime; records its latency.
    pub async fn attest(
        &self,
        nonce: [u8; 32],
        kind: &str,
    ) -> Result<(Vec<u8>, [u8; 32], TeeKind), AgentError> {
        let attestor = Arc::clone(&self.attestor);
        let t = Instant::now();
        let bundle = tokio::task::spawn_blocking(move || attestor.attest(nonce))
            .await
            .map_err(|e| AgentError::Internal(e.to_string()))?
            .map_err(|e| AgentError::Evidence(e.to_string()))?;
        self.metrics.evidence(kind, t.elapsed());
        let digest = bundle.digest(&CRYPTO);
        Ok((bundle.to_bytes(), digest, bundle.tee))
    }

    /// Collects fresh attested-key evidence, stores its bundle, and makes receipts
    /// reference it.
    pub async fn refresh_evidence(&self) -> Result<(), AgentError> {
        let attestor = Arc::clone(&self.attestor);
        let t = Instant::now();
        let ev = tokio::task::spawn_blocking(move || attestor.refresh(metering::unix_ms()))
            .await
            .map_err(|e| AgentError::Internal(e.to_string()))?
            .map_err(|e| AgentError::Evidence(e.to_string()))?;
        self.metrics.evidence("attested_key", t.elapsed());
        self.store.put_bundle(ev.digest, ev.bytes.to_vec()).await?;
        tracing::info!(digest = %hex::encode(ev.digest), tee = %ev.bundle.tee, "attested-key evidence collected");
        Ok(())
    }

    fn publish(&self, r: &JobRecord) {
        // No subscribers is fine (and then there is nothing to copy).
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Arc::new(r.clone()));
        }
    }

    /// Subscribes to every job's changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<JobRecord>> {
        self.events.subscribe()
    }

    /// A job's record.
    pub fn job(&self, job_id: &JobId) -> Result<JobRecord, AgentError> {
        self.store.get(job_id)?.ok_or_else(|| AgentError::NotFound {
            what: format!("job {}", hex::encode(job_id)),
        })
    }

    /// True once shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// The shutdown token.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// The job id a job directory is named after: 64 lowercase hex digits, as the agent names
/// them; anything else is not a job's directory.
fn parse_job_dir_name(name: &str) -> Option<JobId> {
    if name.len() != 64 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut id = [0u8; 32];
    hex::decode_to_slice(name, &mut id).ok()?;
    Some(id)
}
