//! The store's single writer thread: group commit of queued writes, made durable through the
//! journal or by a checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use super::journal::Journal;
use super::schema::{Tables, set_generation};
use super::{DbSlot, StoreError, StoreStats, db_err, open_database};

/// How often at most the writer tries to reopen the store after a failed write.
pub(super) const RECOVERY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a reopening waits for reads in flight on the old handle to end.
const READERS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest time a journal frame waits for a checkpoint while writes arrive: bounds what a
/// start-up replays and the pages a checkpoint writes.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// A checkpoint is also made when no write came for this long.
pub(super) const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(20);

/// Most write operations committed in one transaction.
pub(super) const MAX_BATCH: usize = 512;

pub(super) type Finisher = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// A queued write: run on the batch's tables, or, without a transaction (the store could
/// not begin one), answered with the error that prevented it.
pub(super) type Op = Box<dyn for<'t> FnOnce(Option<&mut Tables<'t>>) -> (bool, Finisher) + Send>;

pub(super) fn make_op<R, F>(f: F, reply: impl FnOnce(Result<R, StoreError>) + Send + 'static) -> Op
where
    R: Send + 'static,
    F: for<'t> FnOnce(&mut Tables<'t>) -> Result<R, StoreError> + Send + 'static,
{
    Box::new(move |tables| {
        let Some(tables) = tables else {
            let fin: Finisher = Box::new(move |commit| {
                reply(Err(commit.err().cloned().unwrap_or(StoreError::Closed)));
            });
            return (true, fin);
        };
        let r = f(tables);
        let failed = r.is_err();
        let fin: Finisher = Box::new(move |commit| {
            reply(match (r, commit) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(e.clone()),
                (Ok(v), Ok(())) => Ok(v),
            });
        });
        (failed, fin)
    })
}

/// When the writer makes checkpoints (tests stretch them to take crash images).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checkpoints {
    /// At the latest this long after the first frame since the previous one.
    pub(crate) every: std::time::Duration,
    /// After this long without writes; `None`: never for that reason.
    pub(crate) idle: Option<std::time::Duration>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            every: CHECKPOINT_EVERY,
            idle: Some(CHECKPOINT_IDLE),
        }
    }
}

/// The writer thread: takes every queued write, applies them in one transaction, makes them
/// durable (journal or checkpoint), then answers each. An op that fails aborts its batch
/// and every op in it fails.
pub(super) struct Writer {
    /// The open store file, shared with the readers.
    pub(super) slot: Arc<DbSlot>,
    /// Its path (to reopen it).
    pub(super) path: PathBuf,
    /// `None` after a journal write failed: every batch is then a checkpoint.
    pub(super) journal: Option<Journal>,
    /// Generation of the frames written now (recorded by the last checkpoint).
    pub(super) generation: u64,
    /// When the oldest frame not yet retired by a checkpoint was written.
    pub(super) oldest_frame: Option<std::time::Instant>,
    pub(super) every: Checkpoints,
    pub(super) stats: StoreStats,
    /// When the writer last tried to reopen the store after a failed write.
    pub(super) last_recovery: Option<std::time::Instant>,
}

impl Writer {
    pub(super) fn run(&mut self, rx: &mpsc::Receiver<Op>) {
        loop {
            let pending = self.journal.as_ref().is_some_and(|j| !j.is_empty());
            let first = match (pending, self.every.idle) {
                (true, Some(idle)) => match rx.recv_timeout(idle) {
                    Ok(op) => op,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // A failure is logged there; the next idle period tries again.
                        if let Err(e) = self.checkpoint_alone() {
                            self.recover_after(&e);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
                _ => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            let mut ops = vec![first];
            while ops.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            self.batch(ops);
        }
        // The store is closing: retire the journal's frames.
        if self.journal.as_ref().is_some_and(|j| !j.is_empty()) {
            drop(self.checkpoint_alone());
        }
    }

    fn batch(&mut self, ops: Vec<Op>) {
        let txn = match self
            .slot
            .get("begin write")
            .and_then(|db| db.begin_write().map_err(db_err("begin write")))
        {
            Ok(t) => t,
            Err(err) => {
                tracing::error!(error = %err, "job store: cannot begin a write transaction");
                // Without a transaction the ops cannot run: each is answered with the reason.
                for op in ops {
                    let (_, fin) = op(None);
                    fin(Err(&err));
                }
                self.recover_after(&err);
                return;
            }
        };
        let mut finishers = Vec::with_capacity(ops.len());
        let mut any_failed = false;
        let (mut redo, mut checkpoint) = (Vec::new(), false);
        match Tables::open(&txn) {
            Ok(mut tables) => {
                for op in ops {
                    let (failed, fin) = op(Some(&mut tables));
                    any_failed |= failed;
                    finishers.push(fin);
                }
                redo = std::mem::take(&mut tables.redo);
                checkpoint = tables.checkpoint;
            }
            Err(e) => {
                tracing::error!(error = %e, "job store: cannot open the tables");
                for op in ops {
                    let (_, fin) = op(None);
                    fin(Err(&e));
                }
                any_failed = true;
            }
        }
        let outcome = if any_failed {
            txn.abort()
                .map_err(db_err("abort"))
                .and(Err(StoreError::Db {
                    op: "batch",
                    detail: "another write in the same transaction failed".into(),
                }))
        } else {
            self.commit(txn, &redo, checkpoint)
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "job store: write batch not committed");
        }
        for fin in finishers {
            fin(outcome.as_ref().map(|_| ()));
        }
        if let Err(e) = &outcome {
            self.recover_after(e);
        }
    }

    /// After a write failed on the disk, redb refuses every later write
    /// ([`super::DiskFault::Failed`]) until the file is opened again. Reopens it as a start does
    /// (the journal's acknowledged writes applied and checkpointed), at most once per
    /// [`RECOVERY_EVERY`]; until it succeeds, writes are refused with the disk's reason.
    fn recover_after(&mut self, e: &StoreError) {
        if !matches!(e, StoreError::Disk { .. }) {
            return;
        }
        if self
            .last_recovery
            .is_some_and(|t| t.elapsed() < RECOVERY_EVERY)
        {
            return;
        }
        self.last_recovery = Some(std::time::Instant::now());
        let Some(mut old) = self.slot.take() else {
            // Closed by an earlier attempt that could not reopen: open it now.
            self.reopen();
            return;
        };
        // Reads in flight hold the old handle; the file lock goes with the last of them.
        let since = std::time::Instant::now();
        loop {
            match Arc::try_unwrap(old) {
                Ok(db) => {
                    drop(db);
                    break;
                }
                Err(still_shared) if since.elapsed() < READERS_GRACE => {
                    old = still_shared;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(still_shared) => {
                    tracing::warn!("job store: reads still hold the store; reopening later");
                    self.slot.put(still_shared);
                    return;
                }
            }
        }
        self.reopen();
    }

    /// Opens the store file again (the old handle is gone); on failure the slot stays
    /// empty and the next write tries again.
    fn reopen(&mut self) {
        self.journal = None;
        match open_database(&self.path, &self.stats) {
            Ok(opened) => {
                self.slot.put(Arc::new(opened.db));
                self.journal = Some(opened.journal);
                self.generation = opened.generation;
                self.oldest_frame = None;
                tracing::info!("job store: reopened after a failed write; taking writes again");
            }
            Err(e) => {
                // Reads and writes are refused ([`super::DiskFault::Failed`]) until a later try works.
                tracing::error!(error = %e, "job store: cannot reopen the store yet");
            }
        }
    }

    /// Makes a batch durable: through the journal when its frame fits, otherwise (or when
    /// one is due) as a checkpoint.
    fn commit(
        &mut self,
        mut txn: redb::WriteTransaction,
        redo: &[u8],
        checkpoint: bool,
    ) -> Result<(), StoreError> {
        if redo.is_empty() && !checkpoint {
            // Nothing written (a resubmission answered from the store): nothing to sync.
            txn.set_durability(redb::Durability::None)
                .map_err(db_err("durability"))?;
            return txn.commit().map_err(db_err("commit"));
        }
        let due = checkpoint
            || self
                .oldest_frame
                .is_some_and(|t| t.elapsed() >= self.every.every);
        let journal = match self.journal.as_mut() {
            Some(j) if !due && j.fits(redo.len()) => j,
            _ => return self.checkpoint(txn),
        };
        // Visible first, durable before anyone is answered. Readers may see the batch during
        // the sync; only the writer (this thread) acts on it, after the sync.
        txn.set_durability(redb::Durability::None)
            .map_err(db_err("durability"))?;
        txn.commit().map_err(db_err("commit"))?;
        match journal.append(self.generation, redo) {
            Ok(()) => {
                self.stats.journal_frames.inc();
                self.oldest_frame
                    .get_or_insert_with(std::time::Instant::now);
                Ok(())
            }
            Err(e) => {
                // The frame may be partly written: a checkpoint retires it, and the batch is
                // durable through redb. Later batches do without the journal until restart.
                tracing::error!(error = %e, "job store: journal write failed; committing directly");
                self.journal = None;
                self.checkpoint_alone()
            }
        }
    }

    /// Commits `txn` durably with the next journal generation, then restarts the journal.
    fn checkpoint(&mut self, txn: redb::WriteTransaction) -> Result<(), StoreError> {
        let next = self.generation.saturating_add(1);
        set_generation(&txn, next)?;
        txn.commit().map_err(db_err("commit"))?;
        self.stats.checkpoints.inc();
        self.generation = next;
        self.oldest_frame = None;
        if let Some(j) = self.journal.as_mut() {
            j.restart();
        }
        Ok(())
    }

    /// A checkpoint with no writes of its own: makes every earlier batch durable in redb.
    fn checkpoint_alone(&mut self) -> Result<(), StoreError> {
        let r = self
            .slot
            .get("begin write")
            .and_then(|db| db.begin_write().map_err(db_err("begin write")))
            .and_then(|txn| self.checkpoint(txn));
        if let Err(e) = &r {
            tracing::error!(error = %e, "job store: checkpoint failed");
        }
        r
    }
}
