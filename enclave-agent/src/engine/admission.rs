//! Admission: submissions (authenticated, validated, checked against the chain's funding,
//! bounded by the queue, stored durably, started at once when a slot is free and nobody
//! waits), requests on existing jobs, and cancellation.
//!
//! Who owns a job (the key that may read it, `JobRecord::buyer`):
//! 1. the key the spec names (`JobSpec.buyer`), which must then be the submitter's unless
//!    the bearer token submits;
//! 2. else, for a job funded on chain, the funding account as an ed25519 key;
//! 3. else the submitter's key (none when the token submits).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sigil_proto::v1;
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tonic::metadata::MetadataMap;

use crate::auth::{AuthError, Principal};
use crate::funding::FundingOracle;
use crate::job::{EndReason, JobId, JobRecord, JobState};
use crate::metering::{self};
use crate::store::Inserted;
use crate::workload::spec::{self};
use crate::workload::{Gpu, Stop};

use super::{AgentError, Engine, FundingRefusal, disk, lock, sha256};

/// What a request on an existing job asks for (each kind is signed under its own domain).
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// `GetJob` and `Watch`.
    Status,
    /// `GetReceipt`.
    Receipt,
    /// `Cancel`.
    Cancel,
    /// `GetOutput` of one output from one offset.
    Output {
        /// The wire `OutputKind`.
        kind: i32,
        /// The first byte.
        offset: u64,
        /// The output's path (empty for logs).
        path: &'a str,
    },
}

/// A submission on its way into the queue, counted in `Engine::admitting` until dropped.
struct QueuePlace<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Most milliseconds a retry hint says.
const MAX_RETRY_HINT_MS: u64 = 300_000;

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
            .submitter(md, &req.spec, req.signature.as_ref())
            .await?;
        let now = metering::unix_ms();
        let plan = spec::validate(&req.spec, &self.cfg.jobs, &self.caps, now)?;
        let spec_hash = sha256(&req.spec);
        // A repeat of a stored job answers from the store (the chain may have settled it
        // meanwhile); only its buyer or the token learns about it.
        if let Some(r) = self.store.get(&plan.job_id)? {
            if r.spec_hash != spec_hash {
                return Err(AgentError::AlreadyExists {
                    job: hex::encode(r.job_id),
                });
            }
            return match principal {
                Principal::Buyer(k) if r.buyer != Some(k) => Err(AuthError::NotOwner.into()),
                _ => Ok((r, false)),
            };
        }
        let sealed = self.check_sealed(&plan, req.sealed_secrets)?;
        // A full or read-only state directory takes no new work (the room left is the
        // accepted jobs'); a repeat of a stored job was answered above all the same.
        let retry = self.cfg.retry_after_ms;
        let disk = disk::check(&self.cfg.state_dir, self.cfg.jobs.min_free_bytes);
        self.metrics.state_dir_accepting(disk.is_ok());
        if let Err(fault) = disk {
            return Err(disk::refusal(&self.cfg.state_dir, fault, retry.max(1_000)));
        }
        let owner = self.admit(&plan, &spec_hash, principal).await?;
        let mut record = JobRecord::queued(plan.job_id, spec_hash, owner, now);
        // With a slot free and nobody waiting, the job is stored as started (steps 1 and 2
        // of the module documentation in one commit) and runs at once.
        let slot = self
            .me
            .upgrade()
            .and_then(|me| Some((me, self.claim_slot(plan.gpu_count)?)));
        // Held until the job is in the queue, so concurrent submissions cannot overrun it.
        let _place = match slot {
            Some(_) => None,
            None => Some(self.reserve_queue_place()?),
        };
        if slot.is_some() {
            record.state = JobState::Running;
            record.attempts = 1;
            record.started_at_ms = now;
            record.version = record.version.saturating_add(1);
        }
        // Held before the job exists in the store, so it never starts without them.
        self.hold_sealed(plan.job_id, sealed);
        let inserted = self
            .store
            .insert(record, req.spec)
            .await
            .map_err(|e| disk::named(e.into(), &self.cfg.state_dir, retry.max(1_000)));
        if !matches!(inserted, Ok(Inserted::Created(_))) {
            self.drop_sealed(&plan.job_id);
        }
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

    /// Refuses a job that would wait when `max_queued_jobs` wait already, with a hint of
    /// when a place may be free (the configured hint per round of `max_concurrent` jobs
    /// ahead).
    fn reserve_queue_place(&self) -> Result<QueuePlace<'_>, AgentError> {
        let max = self.cfg.max_queued_jobs;
        let admitting = self.admitting.fetch_add(1, Ordering::AcqRel);
        let place = QueuePlace(&self.admitting);
        let waiting = lock(&self.queue).len().saturating_add(admitting);
        if max == 0 || waiting < max {
            return Ok(place);
        }
        let rounds = waiting
            .checked_div(self.cfg.jobs.max_concurrent.max(1))
            .unwrap_or(1)
            .max(1);
        let retry_after_ms = self
            .cfg
            .retry_after_ms
            .saturating_mul(u64::try_from(rounds).unwrap_or(u64::MAX))
            .clamp(1, MAX_RETRY_HINT_MS);
        Err(AgentError::Busy {
            what: "the job queue is full",
            retry_after_ms,
        })
    }

    /// Whether the job may run here, and who owns it (see the module documentation).
    async fn admit(
        &self,
        plan: &spec::JobPlan,
        spec_hash: &[u8; 32],
        principal: Principal,
    ) -> Result<Option<[u8; 32]>, AgentError> {
        let job = || hex::encode(plan.job_id);
        let refuse = |refusal| AgentError::Funding {
            job: job(),
            refusal,
        };
        let signed_by = |owner: [u8; 32]| match principal {
            Principal::Token => Ok(Some(owner)),
            Principal::Buyer(k) if k == owner => Ok(Some(owner)),
            Principal::Buyer(_) => Err(refuse(FundingRefusal::NotBuyer)),
        };
        let listed = |k: &[u8; 32], empty_admits: bool| {
            let keys = self.auth.buyer_keys();
            if (keys.is_empty() && empty_admits) || keys.contains(k) {
                Ok(())
            } else {
                Err(AgentError::from(AuthError::NotAllowed(hex::encode(k))))
            }
        };
        if !self.cfg.require_funding {
            if let Principal::Buyer(k) = principal {
                listed(&k, true)?;
            }
            return match plan.buyer {
                Some(b) => signed_by(b),
                None => Ok(principal.buyer()),
            };
        }
        let lookup = self.lookups.try_acquire().map_err(|_| AgentError::Busy {
            what: "too many funding checks in flight",
            retry_after_ms: self.cfg.retry_after_ms,
        })?;
        let funding = self
            .funding
            .funding(&plan.job_id)
            .await
            .map_err(|e| AgentError::ChainUnavailable(e.to_string()))?;
        drop(lookup);
        match funding {
            Some(f) => {
                if f.spec_hash != *spec_hash {
                    return Err(refuse(FundingRefusal::SpecMismatch));
                }
                if !f.open {
                    return Err(refuse(FundingRefusal::Closed));
                }
                if !f.bound_here {
                    return Err(refuse(FundingRefusal::NotBoundHere));
                }
                signed_by(plan.buyer.unwrap_or(f.buyer))
            }
            None if self.cfg.access.allow_off_chain => match (principal, plan.buyer) {
                (Principal::Token, b) => Ok(b),
                (Principal::Buyer(k), b) => {
                    listed(&k, false)?;
                    match b {
                        Some(b) => signed_by(b),
                        None => Ok(Some(k)),
                    }
                }
            },
            None => Err(refuse(FundingRefusal::NotFunded)),
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

    /// Authenticates a request on an existing job: its buyer, signing for exactly this
    /// access, or the bearer token (which reads the outputs of buyers' jobs only with
    /// `access.operator_reads_outputs`). With `access.public_status`, status and receipts
    /// need nothing.
    pub async fn authorize(
        &self,
        md: &MetadataMap,
        access: Access<'_>,
        record: &JobRecord,
        auth: Option<&v1::RequestAuth>,
    ) -> Result<(), AgentError> {
        let id = record.job_id;
        if self.cfg.access.public_status && matches!(access, Access::Status | Access::Receipt) {
            return Ok(());
        }
        let principal = self
            .auth
            .signed_request(
                md,
                auth,
                record.buyer,
                metering::unix_ms(),
                |at| match access {
                    Access::Status => {
                        sigil_proto::request_message(sigil_proto::STATUS_DOMAIN, &id, at)
                    }
                    Access::Receipt => {
                        sigil_proto::request_message(sigil_proto::RECEIPT_DOMAIN, &id, at)
                    }
                    Access::Cancel => {
                        sigil_proto::request_message(sigil_proto::CANCEL_DOMAIN, &id, at)
                    }
                    Access::Output { kind, offset, path } => {
                        sigil_proto::output_message(&id, at, kind, offset, path)
                    }
                },
            )
            .await?;
        if principal == Principal::Token
            && matches!(access, Access::Output { .. })
            && record.buyer.is_some()
            && !self.cfg.access.operator_reads_outputs
        {
            return Err(AuthError::OperatorMayNotRead.into());
        }
        Ok(())
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
