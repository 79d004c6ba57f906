//! Scheduling: the FIFO queue onto free slots and GPUs, the evidence refresh, and the drain
//! at shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::job::JobId;
use crate::workload::{Gpu, Stop, StopSignal};

use super::{Engine, lock};

impl Engine {
    /// Gives back a job's slot and GPUs (after it ended, or when it was not started).
    pub(super) fn release_slot(&self, permit: OwnedSemaphorePermit, gpus: Vec<Gpu>) {
        lock(&self.free_gpus).extend(gpus);
        drop(permit);
        self.wake.notify_one();
    }

    /// The scheduler: starts queued jobs while slots and GPUs are free, until shutdown.
    pub async fn run(self: Arc<Self>) {
        if let Some(refresh) = self.cfg.evidence_refresh.filter(|_| self.caps.has_tee) {
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
    pub(super) fn take_next(&self) -> Option<(JobId, Vec<Gpu>)> {
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
        let grace = self.cfg.jobs.shutdown_grace();
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
}
