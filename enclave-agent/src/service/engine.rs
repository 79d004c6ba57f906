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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attestation_verifier::crypto::AwsLc;
use attestation_verifier::merkle::OutputTree;
use attestation_verifier::receipt::{EvidenceRef, RECEIPT_VERSION, ReceiptBody, TeeKind, Usage};
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::metadata::MetadataMap;

use crate::attestor::{AttestedKeyEvidence, Attestor};
use crate::auth::{Authenticator, Principal};
use crate::config::Config;
use crate::job::{EndReason, JobId, JobRecord, JobState, OutputMeta};
use crate::metering::{self, GpuMetering};
use crate::metrics::Metrics;
use crate::service::error::AgentError;
use crate::store::{Completion, Inserted, Store};
use crate::workload::spec::{self, Capabilities, Evidence, JobPlan};
use crate::workload::{self, Gpu, JobDirs, RunAs, RunRequest, Stop, StopSignal};

/// The crypto backend used for hashing and the result commitment.
pub(crate) const CRYPTO: AwsLc = AwsLc;

/// A signed receipt and what is stored with it.
#[derive(Clone, Debug)]
pub struct IssuedReceipt {
    /// SCALE(SignedReceipt).
    pub signed: Vec<u8>,
    /// Digest of the evidence bundle it references (zero without evidence).
    pub evidence_digest: [u8; 32],
    /// A bundle collected for this receipt (fresh-quote mode): digest and SCALE bytes.
    pub bundle: Option<([u8; 32], Vec<u8>)>,
    /// The outputs' metadata, in leaf order.
    pub outputs: Vec<OutputMeta>,
}

/// Pieces the engine is built from (so tests can assemble one without a config file).
pub struct EngineParts {
    /// Configuration.
    pub config: Config,
    /// Evidence and receipt signing.
    pub attestor: Arc<Attestor>,
    /// GPUs the agent offers.
    pub gpus: Vec<Gpu>,
    /// GPU metering.
    pub gpu_metering: GpuMetering,
    /// Metrics.
    pub metrics: Arc<Metrics>,
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
    cfg: Arc<Config>,
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
    wake: Notify,
    /// One permit per job that may run at once (`jobs.max_concurrent`).
    slots: Arc<Semaphore>,
    /// Set once [`Engine::run`] has started: jobs start only then.
    scheduling: AtomicBool,
    running: Mutex<HashMap<JobId, StopSignal>>,
    events: broadcast::Sender<Arc<JobRecord>>,
    shutdown: CancellationToken,
    drained: CancellationToken,
    tasks: TaskTracker,
    prlimit: Option<PathBuf>,
    container_cli: Option<PathBuf>,
    run_as: Option<RunAs>,
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
        } = parts;
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            AgentError::Internal(format!("state_dir {}: {e}", config.state_dir.display()))
        })?;
        std::fs::create_dir_all(config.work_dir()).map_err(|e| {
            AgentError::Internal(format!("work dir {}: {e}", config.work_dir().display()))
        })?;
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
        let run_as = match (config.run_as_ids(), nix::unistd::geteuid().is_root()) {
            (Some((uid, gid)), true) => Some(RunAs { uid, gid }),
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
        if run_as.is_some() {
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
        };
        let auth = Authenticator::new(&config, metrics.signature_stats())
            .map_err(|e| AgentError::Internal(format!("start the signature verifier: {e}")))?;
        let (events, _) = broadcast::channel(1024);
        let slots = Arc::new(Semaphore::new(config.jobs.max_concurrent));
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
            wake: Notify::new(),
            slots,
            scheduling: AtomicBool::new(false),
            running: Mutex::new(HashMap::new()),
            events,
            shutdown,
            drained: CancellationToken::new(),
            tasks: TaskTracker::new(),
            prlimit,
            container_cli,
            run_as,
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

    /// The configuration.
    pub fn config(&self) -> &Config {
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

    /// Accepts a job (idempotent on its id).
    pub async fn submit(
        &self,
        md: &MetadataMap,
        req: v1::SubmitRequest,
    ) -> Result<(JobRecord, bool), AgentError> {
        let r = self.submit_inner(md, req).await;
        self.metrics.submission(match &r {
            Ok((_, true)) => "created",
            Ok((_, false)) => "existing",
            Err(_) => "rejected",
        });
        r
    }

    async fn submit_inner(
        &self,
        md: &MetadataMap,
        req: v1::SubmitRequest,
    ) -> Result<(JobRecord, bool), AgentError> {
        if self.shutdown.is_cancelled() {
            return Err(AgentError::ShuttingDown);
        }
        let principal = self
            .auth
            .submit(md, &req.spec, req.signature.as_ref())
            .await?;
        let now = metering::unix_ms();
        let plan = spec::validate(&req.spec, &self.cfg, &self.caps, now)?;
        let mut record = JobRecord::queued(plan.job_id, sha256(&req.spec), principal.buyer(), now);
        // With a slot free and nobody waiting, the job is stored as started (steps 1 and 2
        // of the module documentation in one commit) and runs at once.
        let slot = self
            .me
            .upgrade()
            .and_then(|me| Some((me, self.claim_slot(plan.gpu_count)?)));
        if slot.is_some() {
            record.state = JobState::Running;
            record.attempts = 1;
            record.started_at_ms = now;
            record.version = record.version.saturating_add(1);
        }
        let inserted = self.store.insert(record, req.spec).await;
        let inserted = match (inserted, slot) {
            (Ok(Inserted::Created(r)), Some((me, (permit, gpus)))) => {
                tracing::info!(job = %hex::encode(r.job_id), tier = plan.tier, workload = plan.workload.kind(), "job accepted and started");
                self.metrics.transition(None, JobState::Running);
                lock(&self.running).entry(r.job_id).or_default();
                self.publish(&r);
                let started = (r.clone(), plan);
                self.tasks.spawn(async move {
                    let job_id = started.0.job_id;
                    me.run_job(job_id, gpus, Some(started), permit).await;
                });
                return Ok((r, true));
            }
            (other, slot) => {
                if let Some((_, (permit, gpus))) = slot {
                    self.release_slot(permit, gpus);
                }
                other?
            }
        };
        match inserted {
            Inserted::Created(r) => {
                tracing::info!(job = %hex::encode(r.job_id), tier = plan.tier, workload = plan.workload.kind(), "job accepted");
                self.metrics.transition(None, JobState::Queued);
                lock(&self.queue).push_back((r.job_id, plan.gpu_count));
                self.wake.notify_one();
                self.publish(&r);
                Ok((r, true))
            }
            Inserted::Existing(r) => Ok((r, false)),
            Inserted::Conflict(r) => Err(AgentError::AlreadyExists {
                job: hex::encode(r.job_id),
            }),
        }
    }

    /// A slot and `gpus` GPUs for a job that starts at submission: only while the scheduler
    /// runs, nothing is shutting down and no job is waiting (so submission order holds).
    fn claim_slot(&self, gpus: u32) -> Option<(OwnedSemaphorePermit, Vec<Gpu>)> {
        if !self.scheduling.load(Ordering::Acquire) || self.shutdown.is_cancelled() {
            return None;
        }
        let q = lock(&self.queue);
        if !q.is_empty() {
            return None;
        }
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        let need = usize::try_from(gpus).unwrap_or(usize::MAX);
        let mut free = lock(&self.free_gpus);
        if free.len() < need {
            return None;
        }
        let at = free.len().saturating_sub(need);
        let taken = free.split_off(at);
        drop(free);
        drop(q);
        Some((permit, taken))
    }

    /// Gives back a job's slot and GPUs (after it ended, or when it was not started).
    fn release_slot(&self, permit: OwnedSemaphorePermit, gpus: Vec<Gpu>) {
        lock(&self.free_gpus).extend(gpus);
        drop(permit);
        self.wake.notify_one();
    }

    /// A job's record.
    pub fn job(&self, job_id: &JobId) -> Result<JobRecord, AgentError> {
        self.store.get(job_id)?.ok_or_else(|| AgentError::NotFound {
            what: format!("job {}", hex::encode(job_id)),
        })
    }

    /// Authenticates a request on an existing job.
    pub async fn authorize(
        &self,
        md: &MetadataMap,
        domain: &[u8],
        record: &JobRecord,
        auth: Option<&v1::RequestAuth>,
    ) -> Result<Principal, AgentError> {
        Ok(self
            .auth
            .job_request(
                md,
                domain,
                &record.job_id,
                auth,
                record.buyer,
                metering::unix_ms(),
            )
            .await?)
    }

    /// Cancels a queued or running job.
    pub async fn cancel(&self, job_id: &JobId) -> Result<JobRecord, AgentError> {
        let signal = lock(&self.running).get(job_id).cloned();
        if let Some(s) = signal {
            s.stop(Stop::Cancelled);
            // The job task records the end; wait for it (bounded by the kill grace).
            let mut rx = self.subscribe();
            let deadline = Duration::from_millis(self.cfg.jobs.kill_grace_ms.saturating_add(5_000));
            let wait = async {
                loop {
                    let r = self.job(job_id)?;
                    if r.state.is_final() {
                        return Ok::<_, AgentError>(r);
                    }
                    match rx.recv().await {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return self.job(job_id),
                    }
                }
            };
            return match tokio::time::timeout(deadline, wait).await {
                Ok(r) => r,
                Err(_) => self.job(job_id),
            };
        }
        let mut r = self.job(job_id)?;
        match r.state {
            JobState::Queued => {
                // Remove from the queue first so the scheduler cannot pick it meanwhile.
                let was_queued = {
                    let mut q = lock(&self.queue);
                    let before = q.len();
                    q.retain(|(id, _)| id != job_id);
                    q.len() != before
                };
                if !was_queued {
                    // The scheduler took it between our two reads: it is registered as
                    // starting now, so stop it there.
                    let signal = lock(&self.running).get(job_id).cloned();
                    return match signal {
                        Some(_) => Box::pin(self.cancel(job_id)).await,
                        None => self.job(job_id),
                    };
                }
                r.state = JobState::Cancelled;
                r.reason = EndReason::CancelledBeforeStart;
                r.finished_at_ms = metering::unix_ms();
                r.version = r.version.saturating_add(1);
                self.store.put(r.clone()).await?;
                self.metrics
                    .transition(Some(JobState::Queued), JobState::Cancelled);
                self.publish(&r);
                Ok(r)
            }
            s if s.is_final() => Err(AgentError::WrongState {
                job: hex::encode(job_id),
                state: s.name(),
                reason: "it has already ended",
            }),
            s => Err(AgentError::WrongState {
                job: hex::encode(job_id),
                state: s.name(),
                reason: "it is between states; retry",
            }),
        }
    }

    /// The scheduler: starts queued jobs while slots and GPUs are free, until shutdown.
    pub async fn run(self: Arc<Self>) {
        if let Some(refresh) = self
            .caps
            .has_tee
            .then(|| Duration::from_secs(self.cfg.evidence.refresh_secs))
        {
            let me = Arc::clone(&self);
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = me.shutdown.cancelled() => break,
                        () = tokio::time::sleep(refresh) => {
                            if let Err(e) = me.refresh_evidence().await {
                                tracing::error!(error = %e, "refreshing attested-key evidence failed; receipts keep the previous evidence");
                            }
                        }
                    }
                }
            });
        }
        self.scheduling.store(true, Ordering::Release);
        loop {
            // Registered before the queue is looked at, so a job queued meanwhile wakes it.
            let notified = self.wake.notified();
            if !lock(&self.queue).is_empty() {
                let permit = tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    p = Arc::clone(&self.slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                // FIFO: the head waits for its GPUs.
                if let Some((job_id, gpus)) = self.take_next() {
                    let me = Arc::clone(&self);
                    self.tasks.spawn(async move {
                        me.run_job(job_id, gpus, None, permit).await;
                    });
                    continue;
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = notified => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// Pops the head of the queue if its GPUs are free, reserving them.
    fn take_next(&self) -> Option<(JobId, Vec<Gpu>)> {
        let mut q = lock(&self.queue);
        let (head, need) = *q.front()?;
        let need = usize::try_from(need).unwrap_or(usize::MAX);
        let mut free = lock(&self.free_gpus);
        if free.len() < need {
            return None;
        }
        q.pop_front();
        let at = free.len().saturating_sub(need);
        let gpus = free.split_off(at);
        // Registered before the queue lock is released: a cancel that no longer finds the
        // job queued finds it here.
        lock(&self.running).insert(head, StopSignal::new());
        Some((head, gpus))
    }

    /// Waits for running jobs after shutdown was requested: they get the grace period, then
    /// are stopped and checkpointed.
    pub async fn drain(&self) {
        self.tasks.close();
        let grace = self.cfg.shutdown_grace();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            let n = lock(&self.running).len();
            tracing::warn!(jobs = n, "grace period over: stopping running jobs");
            for s in lock(&self.running).values() {
                s.stop(Stop::Shutdown);
            }
            self.tasks.wait().await;
        }
        // Every job is ended or checkpointed: retire the store's journal too.
        if let Err(e) = self.store.checkpoint().await {
            tracing::warn!(error = %e, "job store: no checkpoint at shutdown (the journal is applied at the next start)");
        }
        self.drained.cancel();
    }

    /// Cancelled once [`Engine::drain`] has finished: every job is ended or checkpointed.
    /// Event streams end then, so they do not hold the server open.
    pub fn drained(&self) -> &CancellationToken {
        &self.drained
    }

    async fn set_state(&self, r: &mut JobRecord, to: JobState) -> Result<(), AgentError> {
        let from = r.state;
        r.state = to;
        r.version = r.version.saturating_add(1);
        self.store.put(r.clone()).await?;
        self.metrics.transition(Some(from), to);
        self.publish(r);
        Ok(())
    }

    /// Runs one job to its end and records it. Errors are recorded on the job.
    ///
    /// `started` is the job's record and plan when it was stored `Running` at submission;
    /// `None` for a queued job. The slot and the GPUs are given back at the end.
    async fn run_job(
        &self,
        job_id: JobId,
        gpus: Vec<Gpu>,
        started: Option<(JobRecord, JobPlan)>,
        slot: OwnedSemaphorePermit,
    ) {
        let hex_id = hex::encode(job_id);
        let stop = lock(&self.running).entry(job_id).or_default().clone();
        let result = self.run_job_inner(job_id, &gpus, &stop, started).await;
        lock(&self.running).remove(&job_id);
        if let Err(e) = result {
            tracing::error!(job = %hex_id, error = %e, "job could not be run");
            if let Ok(Some(mut r)) = self.store.get(&job_id)
                && !r.state.is_final()
            {
                r.reason = match &e {
                    AgentError::Store(_) | AgentError::Internal(_) => EndReason::Internal,
                    other => EndReason::NotRun(other.to_string()),
                };
                r.finished_at_ms = metering::unix_ms();
                r.process = None;
                let _ = self.set_state(&mut r, JobState::Failed).await;
            }
        }
        self.release_slot(slot, gpus);
    }

    async fn run_job_inner(
        &self,
        job_id: JobId,
        gpus: &[Gpu],
        stop: &StopSignal,
        started: Option<(JobRecord, JobPlan)>,
    ) -> Result<(), AgentError> {
        let (r, plan, dirs) = match started {
            Some((r, plan)) => {
                let dirs = JobDirs::new(&self.cfg.work_dir(), &hex::encode(job_id));
                if stop.reason() == Some(Stop::Cancelled) {
                    return self.cancel_unstarted(r).await;
                }
                let prepared = {
                    let (dirs, plan, run_as) = (dirs.clone(), plan.clone(), self.run_as);
                    tokio::task::spawn_blocking(move || workload::prepare(&dirs, &plan, run_as))
                        .await
                        .map_err(|e| AgentError::Internal(e.to_string()))?
                };
                prepared.map_err(|e| AgentError::Internal(e.to_string()))?;
                (r, plan, dirs)
            }
            None => match self.start_queued(job_id, stop).await? {
                Some(started) => started,
                None => return Ok(()),
            },
        };
        self.run_started(r, &plan, &dirs, gpus, stop).await
    }

    async fn cancel_unstarted(&self, mut r: JobRecord) -> Result<(), AgentError> {
        r.reason = EndReason::CancelledBeforeStart;
        r.finished_at_ms = metering::unix_ms();
        self.set_state(&mut r, JobState::Cancelled).await?;
        self.metrics
            .job_finished(JobState::Cancelled, Duration::ZERO);
        Ok(())
    }

    /// A queued job: validated again, committed `Running` (step 2) while its directories
    /// are prepared. `None` when it is no longer queued or was cancelled.
    async fn start_queued(
        &self,
        job_id: JobId,
        stop: &StopSignal,
    ) -> Result<Option<(JobRecord, JobPlan, JobDirs)>, AgentError> {
        let Some(mut r) = self.store.get(&job_id)? else {
            return Ok(None);
        };
        if r.state != JobState::Queued {
            return Ok(None);
        }
        let spec_bytes = self.store.spec(&r)?.ok_or_else(|| AgentError::NotFound {
            what: format!("spec of job {}", hex::encode(job_id)),
        })?;
        // Validated at submission; validated again so a changed configuration (fewer GPUs,
        // containers switched off) fails the job cleanly instead of running it wrongly.
        // The expiry is not re-checked: the job was accepted in time.
        let plan = spec::validate(&spec_bytes, &self.cfg, &self.caps, r.submitted_at_ms)?;

        if stop.reason() == Some(Stop::Cancelled) {
            self.cancel_unstarted(r).await?;
            return Ok(None);
        }
        // Step 2: durable `Running` before anything starts. The job directory is prepared
        // meanwhile: it has no effect outside the agent, and the next attempt replaces it.
        r.attempts = r.attempts.saturating_add(1);
        r.started_at_ms = metering::unix_ms();
        r.reason = EndReason::None;
        let dirs = JobDirs::new(&self.cfg.work_dir(), &hex::encode(job_id));
        let prepared = {
            let (dirs, plan, run_as) = (dirs.clone(), plan.clone(), self.run_as);
            tokio::task::spawn_blocking(move || workload::prepare(&dirs, &plan, run_as))
        };
        let committed = self.set_state(&mut r, JobState::Running).await;
        let prepared = prepared
            .await
            .map_err(|e| AgentError::Internal(e.to_string()))?;
        committed?;
        prepared.map_err(|e| AgentError::Internal(e.to_string()))?;
        Ok(Some((r, plan, dirs)))
    }

    /// Runs a job committed `Running` whose directories are prepared, and records its end.
    async fn run_started(
        &self,
        mut r: JobRecord,
        plan: &JobPlan,
        dirs: &JobDirs,
        gpus: &[Gpu],
        stop: &StopSignal,
    ) -> Result<(), AgentError> {
        let req = RunRequest {
            plan,
            config: &self.cfg,
            dirs,
            gpus,
            stop,
            run_as: self.run_as,
            prlimit: self.prlimit.as_deref(),
            container_cli: self.container_cli.as_deref(),
        };
        let indices: Vec<u32> = gpus.iter().map(|g| g.index).collect();
        let meter = self.gpu_metering.start(&indices);
        let outcome = workload::run(&req, |h| workload::write_pid_file(dirs, h)).await;
        let gpu_usage = meter.stop();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                r.reason = EndReason::NotStarted(e.to_string());
                r.finished_at_ms = metering::unix_ms();
                self.set_state(&mut r, JobState::Failed).await?;
                self.metrics.job_finished(JobState::Failed, Duration::ZERO);
                return Ok(());
            }
        };
        r.usage = metering::usage_record(outcome.usage, gpu_usage);
        r.exit_code = Some(outcome.exit_code);
        r.started_at_ms = outcome.started_at_ms;
        r.finished_at_ms = outcome.finished_at_ms;
        let wall = Duration::from_millis(outcome.usage.wall_ms);
        let _ = std::fs::remove_file(dirs.pid_file());

        match outcome.stop {
            Some(Stop::Cancelled) => {
                r.reason = EndReason::CancelledWhileRunning;
                return self
                    .finish(
                        r,
                        Completion {
                            stdout: outcome.stdout,
                            stderr: outcome.stderr,
                            ..Completion::default()
                        },
                        JobState::Cancelled,
                        wall,
                    )
                    .await;
            }
            Some(Stop::Shutdown) => {
                // Checkpoint: a re-runnable job goes back to the queue for the next start.
                let (state, reason) =
                    if plan.rerun_on_restart && r.attempts < self.cfg.jobs.max_attempts {
                        (JobState::Queued, EndReason::ShutdownRequeued)
                    } else {
                        (JobState::Failed, EndReason::Shutdown)
                    };
                r.reason = reason;
                if state == JobState::Queued {
                    r.exit_code = None;
                    r.finished_at_ms = 0;
                }
                return self.finish(r, Completion::default(), state, wall).await;
            }
            Some(Stop::WallTime) | None => {}
        }

        let outputs = {
            let (dir, cap) = (dirs.output.clone(), plan.limits.output_bytes);
            tokio::task::spawn_blocking(move || workload::collect_outputs(&dir, cap))
                .await
                .map_err(|e| AgentError::Internal(e.to_string()))?
        };
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) => {
                r.reason = EndReason::OutputsNotCollected(e.to_string());
                return self
                    .finish(
                        r,
                        Completion {
                            stdout: outcome.stdout,
                            stderr: outcome.stderr,
                            ..Completion::default()
                        },
                        JobState::Failed,
                        wall,
                    )
                    .await;
            }
        };
        let t = Instant::now();
        let issued = self.make_receipt(plan, &r, &outputs).await?;
        r.outputs = issued.outputs;
        r.has_receipt = true;
        r.evidence_digest = match plan.evidence {
            Evidence::None => None,
            _ => Some(issued.evidence_digest),
        };
        let state = match (outcome.stop, outcome.exit_code) {
            (Some(Stop::WallTime), _) => {
                r.reason = EndReason::WallTime {
                    limit_ms: plan.limits.wall_time_ms,
                };
                JobState::Failed
            }
            (_, 0) => JobState::Succeeded,
            (_, c) if c < 0 => {
                r.reason = EndReason::Signal(c.unsigned_abs());
                JobState::Failed
            }
            (_, c) => {
                r.reason = EndReason::Exit(c);
                JobState::Failed
            }
        };
        let completion = Completion {
            outputs,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            receipt: Some(issued.signed),
            bundle: issued.bundle,
        };
        let res = self.finish(r, completion, state, wall).await;
        self.metrics.receipt(t.elapsed());
        res
    }

    /// Step 3: the job's end, in one transaction.
    async fn finish(
        &self,
        mut r: JobRecord,
        c: Completion,
        to: JobState,
        wall: Duration,
    ) -> Result<(), AgentError> {
        let from = r.state;
        r.state = to;
        r.process = None;
        r.version = r.version.saturating_add(1);
        self.store.complete(r.clone(), c).await?;
        self.metrics.transition(Some(from), to);
        if to.is_final() {
            self.metrics.job_finished(to, wall);
        } else {
            let need = self.gpus_needed(&r);
            lock(&self.queue).push_back((r.job_id, need));
        }
        tracing::info!(job = %hex::encode(r.job_id), state = to.name(), exit_code = ?r.exit_code, wall_ms = r.usage.wall_ms, "job ended");
        self.publish(&r);
        Ok(())
    }

    /// Builds the receipt of a finished job: the result commitment over `outputs` (in
    /// path order), the body from the record, the evidence binding of the plan's mode, and
    /// the signature.
    pub async fn make_receipt(
        &self,
        plan: &JobPlan,
        r: &JobRecord,
        outputs: &[(String, Vec<u8>)],
    ) -> Result<IssuedReceipt, AgentError> {
        let hashed: Vec<(String, [u8; 32])> = outputs
            .iter()
            .map(|(n, d)| (n.clone(), sha256(d)))
            .collect();
        let tree = OutputTree::new(
            &CRYPTO,
            hashed.iter().map(|(n, h)| (n.as_bytes().to_vec(), *h)),
        )
        .map_err(|e| AgentError::Internal(format!("result commitment: {e}")))?;
        let metas = hashed
            .iter()
            .zip(outputs)
            .zip(0u32..)
            .map(|(((path, sha), (_, data)), index)| OutputMeta {
                path: path.clone(),
                size: u64::try_from(data.len()).unwrap_or(u64::MAX),
                sha256: *sha,
                index,
            })
            .collect();
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            job_id: r.job_id,
            job_spec_hash: r.spec_hash,
            provider: self.attestor.public_key(),
            tier: plan.tier,
            result_commitment: tree.root(&CRYPTO),
            output_count: tree.len(),
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms.max(r.started_at_ms),
            exit_code: r.exit_code.unwrap_or(i32::MIN),
            usage: Usage {
                wall_ms: r.usage.wall_ms,
                cpu_ms: r.usage.cpu_ms,
                peak_memory_bytes: r.usage.peak_memory_bytes,
                gpu_ms: r.usage.gpu_ms,
                gpu_energy_mj: r.usage.gpu_energy_mj,
            },
            evidence: EvidenceRef::NONE,
        };
        let (signed, bundle) = match plan.evidence {
            Evidence::None => (self.attestor.sign_receipt(body), None),
            Evidence::AttestedKey => {
                // The bundle was stored when it was collected (`refresh_evidence`).
                let signed = self
                    .attestor
                    .sign_attested(body)
                    .map_err(|e| AgentError::Evidence(e.to_string()))?;
                (signed, None)
            }
            Evidence::FreshQuote => {
                let attestor = Arc::clone(&self.attestor);
                let t = Instant::now();
                let (signed, bundle) =
                    tokio::task::spawn_blocking(move || attestor.sign_fresh(body))
                        .await
                        .map_err(|e| AgentError::Internal(e.to_string()))?
                        .map_err(|e| AgentError::Evidence(e.to_string()))?;
                self.metrics.evidence("fresh_quote", t.elapsed());
                let bytes = bundle.to_bytes();
                (signed, Some((bundle.digest(&CRYPTO), bytes)))
            }
        };
        let digest = bundle.as_ref().map_or_else(
            || signed.body().map(|b| b.evidence.digest).unwrap_or([0; 32]),
            |(d, _)| *d,
        );
        Ok(IssuedReceipt {
            signed: signed.to_bytes(),
            evidence_digest: digest,
            bundle,
            outputs: metas,
        })
    }

    /// Inclusion proof of an output, SCALE-encoded.
    pub fn output_proof(&self, r: &JobRecord, path: &str) -> Option<Vec<u8>> {
        let tree = OutputTree::new(
            &CRYPTO,
            r.outputs
                .iter()
                .map(|o| (o.path.as_bytes().to_vec(), o.sha256)),
        )
        .ok()?;
        tree.prove(&CRYPTO, path.as_bytes()).map(|p| p.to_bytes())
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
