//! Admission: submissions (authenticated, validated, stored durably, started at once when a
//! slot is free and nobody waits), requests on existing jobs, and cancellation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sigil_proto::v1;
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tonic::metadata::MetadataMap;

use crate::auth::Principal;
use crate::job::{EndReason, JobId, JobRecord, JobState};
use crate::metering::{self};
use crate::store::Inserted;
use crate::workload::spec::{self};
use crate::workload::{Gpu, Stop};

use super::{AgentError, Engine, lock, sha256};

impl Engine {
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

    pub(super) async fn submit_inner(
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
        let plan = spec::validate(&req.spec, &self.cfg.jobs, &self.caps, now)?;
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
    pub(super) fn claim_slot(&self, gpus: u32) -> Option<(OwnedSemaphorePermit, Vec<Gpu>)> {
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
}
