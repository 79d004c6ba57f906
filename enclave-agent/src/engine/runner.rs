//! Running a job: committed `Running` (step 2 of the engine's documentation), run and
//! metered, then ended with its outputs, logs and receipt in one commit (step 3).

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::job::{EndReason, JobId, JobRecord, JobState};
use crate::metering::{self};
use crate::store::Completion;
use crate::workload::isolate::IdLease;
use crate::workload::spec::{self, Evidence, JobPlan};
use crate::workload::{
    self, Gpu, Isolated, JobDirs, Owner, RunOutcome, RunRequest, Stop, StopSignal,
};

use super::{AgentError, Engine, lock};

impl Engine {
    pub(super) async fn set_state(
        &self,
        r: &mut JobRecord,
        to: JobState,
    ) -> Result<(), AgentError> {
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
    pub(super) async fn run_job(
        &self,
        job_id: JobId,
        gpus: Vec<Gpu>,
        started: Option<(JobRecord, JobPlan)>,
        slot: OwnedSemaphorePermit,
    ) {
        let hex_id = hex::encode(job_id);
        let stop = lock(&self.running).entry(job_id).or_default().clone();
        let private = self.has_sealed(&job_id);
        let result = self.run_job_inner(job_id, &gpus, &stop, started).await;
        lock(&self.running).remove(&job_id);
        if private {
            // Its secrets are forgotten and its directory (a private tmpfs) wiped, whatever
            // the end: a job stopped by a shutdown cannot be opened again anyway.
            self.drop_sealed(&job_id);
            let dirs = JobDirs::new(&self.cfg.work_dir(), &hex_id);
            if let Err(e) = tokio::task::spawn_blocking(move || workload::wipe_private(&dirs))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::error!(job = %hex_id, error = %e, "the job's private directory could not be wiped");
            }
        }
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
        // The slot and GPUs go back first: a job's end is published above, and a client that
        // saw it may submit the next job at once and expect it to start (the directory's
        // removal needs neither).
        self.release_slot(slot, gpus);
        if !private {
            self.remove_finished_dir(job_id).await;
        }
    }

    /// Removes the directory of a job that ended for good: its outputs and logs are in the
    /// store, and the files left there (and their cached pages, which keep the job's
    /// memory cgroup alive in the kernel) would grow with every job. A job going back to
    /// the queue keeps it. A failure is logged: the job's result stands.
    async fn remove_finished_dir(&self, job_id: JobId) {
        if !matches!(self.store.get(&job_id), Ok(Some(r)) if r.state.is_final()) {
            return;
        }
        let hex_id = hex::encode(job_id);
        let dirs = JobDirs::new(&self.cfg.work_dir(), &hex_id);
        if let Err(e) = tokio::task::spawn_blocking(move || workload::remove_job_dir(&dirs))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(job = %hex_id, error = %e, "the finished job's directory could not be removed");
        }
    }

    pub(super) async fn run_job_inner(
        &self,
        job_id: JobId,
        gpus: &[Gpu],
        stop: &StopSignal,
        started: Option<(JobRecord, JobPlan)>,
    ) -> Result<(), AgentError> {
        let (r, plan, dirs, lease, secret_env) = match started {
            Some((r, plan)) => {
                let dirs = JobDirs::new(&self.cfg.work_dir(), &hex::encode(job_id));
                if stop.reason() == Some(Stop::Cancelled) {
                    return self.cancel_unstarted(r).await;
                }
                let lease = self.lease()?;
                let secret_env = self.prepare_job(&dirs, &plan, &lease).await?;
                (r, plan, dirs, lease, secret_env)
            }
            None => match self.start_queued(job_id, stop).await? {
                Some(started) => started,
                None => return Ok(()),
            },
        };
        self.run_started(r, &plan, &dirs, gpus, stop, lease, &secret_env)
            .await
    }

    /// Prepares a job's directories: its inputs and, for a job with secrets, a private
    /// tmpfs holding its secret files. Returns its secret environment values.
    async fn prepare_job(
        &self,
        dirs: &JobDirs,
        plan: &JobPlan,
        lease: &Option<IdLease>,
    ) -> Result<SecretEnv, AgentError> {
        let secrets = self.open_sealed(plan)?;
        // The tmpfs is as large as the disk a job may fill, counted against the job's memory
        // as it fills (pages are charged to the cgroup of whoever writes them).
        let private = (!plan.secrets.is_empty() && self.isolation.is_some())
            .then_some(self.cfg.jobs.max_disk_bytes);
        let (dirs, plan, owner) = (dirs.clone(), plan.clone(), self.owner(lease));
        tokio::task::spawn_blocking(move || {
            workload::prepare_private(&dirs, &plan, owner, &secrets.files, private)
                .map(|()| secrets.env)
        })
        .await
        .map_err(|e| AgentError::Internal(e.to_string()))?
        .map_err(|e| AgentError::Internal(e.to_string()))
    }

    /// A user id of its own for a process job that is about to run (isolation on).
    fn lease(&self) -> Result<Option<IdLease>, AgentError> {
        self.isolation
            .as_ref()
            .map(|i| i.lease())
            .transpose()
            .map_err(|e| AgentError::Internal(e.to_string()))
    }

    /// Who owns the job's directories.
    fn owner(&self, lease: &Option<IdLease>) -> Owner {
        match (lease, self.run_as) {
            (Some(l), _) => Owner::Job { id: l.id() },
            (None, Some(u)) => Owner::Shared {
                uid: u.uid,
                gid: u.gid,
            },
            (None, None) => Owner::Agent,
        }
    }

    pub(super) async fn cancel_unstarted(&self, mut r: JobRecord) -> Result<(), AgentError> {
        r.reason = EndReason::CancelledBeforeStart;
        r.finished_at_ms = metering::unix_ms();
        self.set_state(&mut r, JobState::Cancelled).await?;
        self.metrics
            .job_finished(JobState::Cancelled, Duration::ZERO);
        Ok(())
    }

    /// A queued job: validated again, committed `Running` (step 2) while its directories
    /// are prepared. `None` when it is no longer queued or was cancelled.
    pub(super) async fn start_queued(
        &self,
        job_id: JobId,
        stop: &StopSignal,
    ) -> Result<Option<(JobRecord, JobPlan, JobDirs, Option<IdLease>, SecretEnv)>, AgentError> {
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
        let plan = spec::validate(&spec_bytes, &self.cfg.jobs, &self.caps, r.submitted_at_ms)?;

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
        let lease = self.lease()?;
        let (committed, prepared) = tokio::join!(
            self.set_state(&mut r, JobState::Running),
            self.prepare_job(&dirs, &plan, &lease)
        );
        committed?;
        let secret_env = prepared?;
        Ok(Some((r, plan, dirs, lease, secret_env)))
    }

    /// Runs a job committed `Running` whose directories are prepared, and records its end.
    #[allow(
        clippy::too_many_arguments,
        reason = "what a started job holds, passed once"
    )]
    pub(super) async fn run_started(
        &self,
        mut r: JobRecord,
        plan: &JobPlan,
        dirs: &JobDirs,
        gpus: &[Gpu],
        stop: &StopSignal,
        // Held until the outputs are collected: no other job has this id meanwhile.
        lease: Option<IdLease>,
        secret_env: &SecretEnv,
    ) -> Result<(), AgentError> {
        let isolated = match (&self.isolation, &lease) {
            (Some(isolation), Some(l)) => Some(Isolated {
                isolation,
                id: l.id(),
            }),
            _ => None,
        };
        let req = RunRequest {
            plan,
            jobs: &self.cfg.jobs,
            container: &self.cfg.container,
            dirs,
            gpus,
            stop,
            run_as: self.run_as,
            prlimit: self.prlimit.as_deref(),
            container_cli: self.container_cli.as_deref(),
            isolated,
            secret_env,
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
                        Completion::logs(outcome.stdout, outcome.stderr),
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
            Some(Stop::WallTime | Stop::CpuTime | Stop::Disk) | None => {}
        }

        let outputs = {
            let (dir, cap, files) = (
                dirs.output.clone(),
                plan.limits.output_bytes,
                self.cfg.jobs.max_output_files,
            );
            tokio::task::spawn_blocking(move || workload::collect_outputs(&dir, cap, files))
                .await
                .map_err(|e| AgentError::Internal(e.to_string()))?
        };
        drop(lease);
        let outputs = outputs.and_then(|o| seal_outputs(plan, o));
        let (stdout, stderr) = seal_logs(plan, outcome.stdout, outcome.stderr);
        let outcome = RunOutcome {
            stdout,
            stderr,
            ..outcome
        };
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) => {
                r.reason = EndReason::OutputsNotCollected(e.to_string());
                return self
                    .finish(
                        r,
                        Completion::logs(outcome.stdout, outcome.stderr),
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
            (Some(Stop::Disk), _) => {
                r.reason = EndReason::DiskLimit {
                    limit_bytes: self.cfg.jobs.max_disk_bytes,
                };
                JobState::Failed
            }
            (Some(Stop::CpuTime), _) => {
                r.reason = EndReason::CpuTime {
                    limit_ms: plan.limits.cpu_time_ms,
                };
                JobState::Failed
            }
            (_, c) if c != 0 && outcome.oom_kills > 0 => {
                r.reason = EndReason::MemoryLimit {
                    limit_bytes: plan.limits.memory_bytes,
                };
                JobState::Failed
            }
            (_, c) if c != 0 && outcome.pids_refused > 0 => {
                r.reason = EndReason::ProcessLimit {
                    limit: self.cfg.jobs.max_pids,
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
    pub(super) async fn finish(
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
}

/// Outputs sealed to the buyer's recipient key, when the spec names one (the receipt then
/// commits to the sealed files).
fn seal_outputs(
    plan: &JobPlan,
    outputs: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>, workload::OutputError> {
    let Some(to) = plan.output_recipient else {
        return Ok(outputs);
    };
    outputs
        .into_iter()
        .map(|(path, data)| {
            let data = zeroize::Zeroizing::new(data);
            sigil_sealing::seal_output(&to, &plan.job_id, OUTPUT_KIND_FILE, &path, &data)
                .map(|sealed| (path, sealed))
                .map_err(|e| workload::OutputError::Sealing(e.to_string()))
        })
        .collect()
}

/// The logs sealed to the buyer's recipient key, when the spec names one. A log that cannot
/// be sealed is dropped, never kept in clear.
fn seal_logs(plan: &JobPlan, stdout: Vec<u8>, stderr: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let Some(to) = plan.output_recipient else {
        return (stdout, stderr);
    };
    let seal = |kind, name, data: Vec<u8>| {
        let data = zeroize::Zeroizing::new(data);
        sigil_sealing::seal_output(&to, &plan.job_id, kind, name, &data).unwrap_or_default()
    };
    (
        seal(OUTPUT_KIND_STDOUT, "stdout", stdout),
        seal(OUTPUT_KIND_STDERR, "stderr", stderr),
    )
}

/// The sealing purposes' output kinds: the wire `OutputKind` values of files and logs.
const OUTPUT_KIND_FILE: u8 = sigil_proto::v1::OutputKind::File as u8;
const OUTPUT_KIND_STDOUT: u8 = sigil_proto::v1::OutputKind::Stdout as u8;
const OUTPUT_KIND_STDERR: u8 = sigil_proto::v1::OutputKind::Stderr as u8;

/// A job's secret environment values, opened for its start.
type SecretEnv = Vec<(String, zeroize::Zeroizing<String>)>;
