//! Durable job store on redb: jobs and their states, specs (with inputs), outputs, logs,
//! receipts and evidence bundles.
//!
//! Every state change is durable before it is acknowledged or acted on, so a `kill -9`
//! loses nothing that was acknowledged. A job's end (final state, outputs, logs, receipt and
//! bundle) is committed in one transaction: after a crash a job either has all of them or
//! is still `Running` and is recovered (see [`Store::recover`]).
//!
//! Writes go through one writer thread that commits whatever is queued in one transaction
//! (group commit): concurrent submissions share a sync instead of queueing for one each.
//! A batch is made durable through the redo journal beside the store file ([`journal`]);
//! one too large for the journal, and the first [`CHECKPOINT_EVERY`] after the oldest frame
//! not yet retired, is a durable redb commit instead ([`redb::Durability::Immediate`]), a
//! checkpoint; so is a quiet moment.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

mod codec;
mod journal;
mod legacy;
mod schema;
mod writer;

use journal::Journal;
use schema::{
    BUNDLES, JOBS, JOURNAL_BYTES, LEGACY_SPECS, LOGS, OUTPUTS, RECEIPTS, SPEC_LOG, chunks,
    generation, log_tag, set_generation, spec_key,
};
pub use schema::{CHUNK, Tables};
pub use writer::CHECKPOINT_EVERY;
pub(crate) use writer::Checkpoints;
use writer::{Op, Writer, make_op};

use crate::job::{EndReason, JobId, JobRecord, JobState, LogKind, ProcessHandle};

/// Why a store operation failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb reported an error.
    #[error("job store: {op}: {detail}")]
    Db {
        /// What was being done.
        op: &'static str,
        /// redb's message.
        detail: String,
    },
    /// A stored record does not decode (corruption or an incompatible version).
    #[error("job store: record of job {job} is unreadable: {detail}")]
    Corrupt {
        /// Hex job id.
        job: String,
        /// Decoder message.
        detail: String,
    },
    /// The writer thread is gone (the agent is shutting down).
    #[error("job store is closed")]
    Closed,
    /// The disk under the store refused a write (full or read-only), or an earlier write
    /// failed and the store refuses writes until the agent is restarted.
    #[error("job store: {op}: {fault}")]
    Disk {
        /// What was being done.
        op: &'static str,
        /// Why the disk refused it.
        fault: DiskFault,
    },
}

/// Why the state directory's disk cannot take a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskFault {
    /// No space (or no inodes) left.
    #[error("no space left on the device")]
    Full,
    /// Less free space than `jobs.min_free_bytes`, the room kept for the jobs already
    /// accepted.
    #[error("{free_bytes} bytes free, below the {reserve_bytes} bytes kept for accepted jobs")]
    LowSpace {
        /// Bytes free to the agent.
        free_bytes: u64,
        /// `jobs.min_free_bytes`.
        reserve_bytes: u64,
    },
    /// The file system is mounted read-only.
    #[error("read-only file system")]
    ReadOnly,
    /// A write failed earlier: the store reopens itself (replaying its journal) before it
    /// takes writes again, which it tries once a second.
    #[error("an earlier write failed; the store reopens itself once the disk takes writes again")]
    Failed,
}

impl DiskFault {
    /// The fault an I/O error stands for, if it is one of the disk's.
    pub fn of_io(e: &std::io::Error) -> Option<Self> {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Some(Self::Full),
            std::io::ErrorKind::ReadOnlyFilesystem => Some(Self::ReadOnly),
            _ => None,
        }
    }

    /// Whether the disk can take writes again without a restart once space is freed.
    pub fn is_space(self) -> bool {
        matches!(self, Self::Full | Self::LowSpace { .. })
    }
}

fn db_err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| {
        let e: redb::Error = e.into();
        let fault = match &e {
            redb::Error::Io(io) => DiskFault::of_io(io),
            redb::Error::PreviousIo => Some(DiskFault::Failed),
            _ => None,
        };
        match fault {
            Some(fault) => StoreError::Disk { op, fault },
            None => StoreError::Db {
                op,
                detail: e.to_string(),
            },
        }
    }
}

/// Counters of the store (Prometheus counters, so the metrics endpoint exports the same
/// values; clones share them).
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    /// Batches made durable by a journal frame.
    pub journal_frames: prometheus_client::metrics::counter::Counter,
    /// Durable redb commits (checkpoints), including the one at open.
    pub checkpoints: prometheus_client::metrics::counter::Counter,
    /// Writes applied from the journal at open.
    pub replayed: prometheus_client::metrics::counter::Counter,
}

/// Result of [`Store::insert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The job is new and now stored.
    Created(JobRecord),
    /// The same spec was already submitted under this id.
    Existing(JobRecord),
    /// A different spec is stored under this id.
    Conflict(JobRecord),
}

/// What a finished job stores in one transaction.
#[derive(Debug, Default)]
pub struct Completion {
    /// Output files in leaf order: path and content.
    pub outputs: Vec<(String, Vec<u8>)>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// SCALE(SignedReceipt).
    pub receipt: Option<Vec<u8>>,
    /// Evidence bundle (digest, SCALE bytes) the receipt references, if not stored already.
    pub bundle: Option<([u8; 32], Vec<u8>)>,
}

impl Completion {
    /// An end with the captured logs only (no outputs, no receipt).
    pub fn logs(stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        Self {
            stdout,
            stderr,
            ..Self::default()
        }
    }
}

/// What [`Store::recover`] did with a job found `Running` at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The job after recovery (`Queued` for a re-run, `Failed` otherwise).
    pub record: JobRecord,
    /// The process it had been running as (possibly still alive: the caller stops it).
    pub orphan: Option<ProcessHandle>,
}

/// A store file opened, its journal's writes applied and checkpointed.
struct Opened {
    db: Database,
    journal: Journal,
    generation: u64,
}

/// Opens (or creates) the store file and its journal, applies the journal's writes that no
/// durable commit holds yet and checkpoints them: what a start does, and what the writer
/// does to recover from a failed write ([`writer::Writer`]).
fn open_database(path: &Path, stats: &StoreStats) -> Result<Opened, StoreError> {
    let db = Database::create(path).map_err(db_err("open"))?;
    let txn = db.begin_write().map_err(db_err("begin"))?;
    let generation = generation(&txn)?;
    let mut t = Tables::open(&txn)?;
    let mut journal_path = path.as_os_str().to_owned();
    journal_path.push(".journal");
    let (journal, frames) = Journal::open(Path::new(&journal_path), JOURNAL_BYTES, generation)
        .map_err(|e| StoreError::Db {
            op: "open journal",
            detail: e.to_string(),
        })?;
    let mut replayed = 0usize;
    for frame in &frames {
        let writes = journal::writes(frame).map_err(|detail| StoreError::Corrupt {
            job: "(journal)".into(),
            detail,
        })?;
        for w in writes {
            t.apply(w)?;
            replayed = replayed.saturating_add(1);
        }
    }
    // The checkpoint that makes the replayed writes durable and retires their frames.
    drop(t);
    let generation = generation.saturating_add(1);
    set_generation(&txn, generation)?;
    txn.commit().map_err(db_err("commit"))?;
    stats.checkpoints.inc();
    stats
        .replayed
        .inc_by(u64::try_from(replayed).unwrap_or(u64::MAX));
    if replayed > 0 {
        tracing::info!(
            frames = frames.len(),
            writes = replayed,
            "job store: applied the journal's writes"
        );
    }
    Ok(Opened {
        db,
        journal,
        generation,
    })
}

/// The open store file, shared by the readers and the writer. Empty while the writer
/// reopens it after a failed write (readers then get [`DiskFault::Failed`]).
struct DbSlot(std::sync::RwLock<Option<Arc<Database>>>);

impl DbSlot {
    fn new(db: Database) -> Self {
        Self(std::sync::RwLock::new(Some(Arc::new(db))))
    }

    /// The open file, for one transaction.
    fn get(&self, op: &'static str) -> Result<Arc<Database>, StoreError> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Disk {
                op,
                fault: DiskFault::Failed,
            })
    }

    /// Takes the file out (no new transaction can start on it).
    fn take(&self) -> Option<Arc<Database>> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Puts an open file back.
    fn put(&self, db: Arc<Database>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(db);
    }
}

/// The durable store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    writer: mpsc::Sender<Op>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store at `path` and its journal at `path` + `.journal`,
    /// applies the journal's writes that no durable commit holds yet, and starts the writer
    /// thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_counted(path, StoreStats::default())
    }

    /// [`Self::open`], counting into `stats` (the agent's metrics).
    pub fn open_counted(path: &Path, stats: StoreStats) -> Result<Self, StoreError> {
        Self::open_with(path, Checkpoints::default(), stats)
    }

    pub(crate) fn open_with(
        path: &Path,
        every: Checkpoints,
        stats: StoreStats,
    ) -> Result<Self, StoreError> {
        let opened = open_database(path, &stats)?;
        let slot = Arc::new(DbSlot::new(opened.db));
        let (writer, rx) = mpsc::channel::<Op>();
        let mut w = Writer {
            slot: Arc::clone(&slot),
            path: path.to_path_buf(),
            journal: Some(opened.journal),
            generation: opened.generation,
            oldest_frame: None,
            every,
            stats,
            last_recovery: None,
        };
        std::thread::Builder::new()
            .name("sigil-store".into())
            .spawn(move || w.run(&rx))
            .map_err(|e| StoreError::Db {
                op: "start writer",
                detail: e.to_string(),
            })?;
        Ok(Self { db: slot, writer })
    }

    /// Runs `f` inside a write transaction shared with other queued writes and returns its
    /// result once the transaction is durably committed. Blocks the calling thread.
    ///
    /// `f` must either succeed or leave nothing written: an `Err` aborts the whole batch.
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&mut Tables<'t>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.writer
            .send(make_op(f, move |r| {
                let _ = tx.send(r);
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// [`Self::write_blocking`] for async callers: waits without blocking the runtime.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&mut Tables<'t>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(make_op(f, move |r| {
                let _ = tx.send(r);
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a new job and its spec, unless the id is taken (idempotent submission).
    pub async fn insert(&self, record: JobRecord, spec: Vec<u8>) -> Result<Inserted, StoreError> {
        // Encoded by the caller, so the writer thread (which every write goes through) only
        // does the table work.
        let bytes = codec::encode(&record);
        self.write(move |t| {
            let existing = match t.jobs.get(record.job_id).map_err(db_err("get job"))? {
                Some(v) => Some(codec::decode(&record.job_id, v.value())?),
                None => None,
            };
            if let Some(old) = existing {
                return Ok(if old.spec_hash == record.spec_hash {
                    Inserted::Existing(old)
                } else {
                    Inserted::Conflict(old)
                });
            }
            t.put_job(record.job_id, &bytes)?;
            t.put_spec(spec_key(&record), &spec)?;
            Ok(Inserted::Created(record))
        })
        .await
    }

    /// Replaces a job's record (state changes). Bumps nothing: the caller sets `version`.
    pub async fn put(&self, record: JobRecord) -> Result<(), StoreError> {
        let bytes = codec::encode(&record);
        self.write(move |t| t.put_job(record.job_id, &bytes)).await
    }

    /// Stores a job's end and its data in one transaction.
    pub async fn complete(&self, record: JobRecord, c: Completion) -> Result<(), StoreError> {
        let bytes = codec::encode(&record);
        self.write(move |t| {
            t.put_job(record.job_id, &bytes)?;
            for (path, data) in &c.outputs {
                for (i, chunk) in chunks(data) {
                    t.put_output((record.job_id, path.as_str(), i), chunk)?;
                }
            }
            for (kind, data) in [(LogKind::Stdout, &c.stdout), (LogKind::Stderr, &c.stderr)] {
                for (i, chunk) in chunks(data) {
                    t.put_log((record.job_id, log_tag(kind), i), chunk)?;
                }
            }
            if let Some(r) = &c.receipt {
                t.put_receipt(record.job_id, r)?;
            }
            if let Some((digest, bytes)) = &c.bundle
                && t.bundles
                    .get(*digest)
                    .map_err(db_err("get bundle"))?
                    .is_none()
            {
                t.put_bundle(*digest, bytes)?;
            }
            Ok(())
        })
        .await
    }

    /// Stores an evidence bundle under its digest (attested-key evidence at start/refresh).
    pub async fn put_bundle(&self, digest: [u8; 32], bytes: Vec<u8>) -> Result<(), StoreError> {
        self.write(move |t| t.put_bundle(digest, &bytes)).await
    }

    /// Makes a checkpoint now, once every write queued before it is applied: the store file
    /// then holds everything and the journal nothing still needed (at shutdown, so that the
    /// file alone is the store, as older agents expect).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write(|t| {
            t.checkpoint = true;
            Ok(())
        })
        .await
    }

    /// A job's record.
    pub fn get(&self, job_id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(JOBS).map_err(db_err("open jobs"))?;
        match t.get(*job_id).map_err(db_err("get job"))? {
            Some(v) => Ok(Some(codec::decode(job_id, v.value())?)),
            None => Ok(None),
        }
    }

    /// A job's spec bytes (as submitted and signed).
    pub fn spec(&self, record: &JobRecord) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(SPEC_LOG).map_err(db_err("open specs"))?;
        if let Some(v) = t.get(spec_key(record)).map_err(db_err("get spec"))? {
            return Ok(Some(v.value().to_vec()));
        }
        // A job stored before specs were kept in submission order.
        let legacy = match txn.open_table(LEGACY_SPECS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err("open legacy specs")(e)),
        };
        Ok(legacy
            .get(record.job_id)
            .map_err(db_err("get spec"))?
            .map(|v| v.value().to_vec()))
    }

    /// A job's receipt, SCALE(SignedReceipt).
    pub fn receipt(&self, job_id: &JobId) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_bytes(RECEIPTS, job_id, "get receipt")
    }

    /// An evidence bundle by digest.
    pub fn bundle(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_bytes(BUNDLES, digest, "get bundle")
    }

    fn get_bytes(
        &self,
        def: TableDefinition<[u8; 32], &[u8]>,
        key: &[u8; 32],
        op: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(def).map_err(db_err(op))?;
        Ok(t.get(*key).map_err(db_err(op))?.map(|v| v.value().to_vec()))
    }

    /// Chunk `index` of an output file.
    pub fn output_chunk(
        &self,
        job_id: &JobId,
        path: &str,
        index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(OUTPUTS).map_err(db_err("open outputs"))?;
        Ok(t.get((*job_id, path, index))
            .map_err(db_err("get output"))?
            .map(|v| v.value().to_vec()))
    }

    /// Chunk `index` of a job's log.
    pub fn log_chunk(
        &self,
        job_id: &JobId,
        kind: LogKind,
        index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(LOGS).map_err(db_err("open logs"))?;
        Ok(t.get((*job_id, log_tag(kind), index))
            .map_err(db_err("get log"))?
            .map(|v| v.value().to_vec()))
    }

    /// Size of a job's log.
    pub fn log_size(&self, job_id: &JobId, kind: LogKind) -> Result<u64, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(LOGS).map_err(db_err("open logs"))?;
        let range = t
            .range((*job_id, log_tag(kind), 0)..=(*job_id, log_tag(kind), u32::MAX))
            .map_err(db_err("range logs"))?;
        let mut total = 0u64;
        for entry in range {
            let (_, v) = entry.map_err(db_err("read log"))?;
            total = total.saturating_add(u64::try_from(v.value().len()).unwrap_or(u64::MAX));
        }
        Ok(total)
    }

    /// Every job record (start-up recovery, metrics). Loads them all: the store keeps
    /// metadata only, so this is small next to outputs.
    pub fn all(&self) -> Result<Vec<JobRecord>, StoreError> {
        let txn = self
            .db
            .get("begin read")?
            .begin_read()
            .map_err(db_err("begin read"))?;
        let t = txn.open_table(JOBS).map_err(db_err("open jobs"))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err("iterate jobs"))? {
            let (k, v) = entry.map_err(db_err("read job"))?;
            out.push(codec::decode(&k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Number of jobs in each state.
    pub fn counts(&self) -> Result<BTreeMap<JobState, u64>, StoreError> {
        let mut m = BTreeMap::new();
        for r in self.all()? {
            let c: &mut u64 = m.entry(r.state).or_default();
            *c = c.saturating_add(1);
        }
        Ok(m)
    }

    /// Start-up recovery: every job found `Running` (the agent died under it) becomes
    /// `Queued` again when its spec asks for re-runs and attempts remain (`rerun(job)`
    /// decides), otherwise `Failed` with a reason. Committed before anything runs, so a job
    /// is never lost and never runs twice unasked.
    pub fn recover(
        &self,
        now_ms: u64,
        rerun: impl Fn(&JobRecord) -> bool + Send + 'static,
    ) -> Result<Vec<Recovered>, StoreError> {
        let running: Vec<JobRecord> = self
            .all()?
            .into_iter()
            .filter(|r| r.state == JobState::Running)
            .collect();
        if running.is_empty() {
            return Ok(Vec::new());
        }
        self.write_blocking(move |t| {
            let mut out = Vec::with_capacity(running.len());
            for mut r in running {
                let orphan = r.process.take();
                if rerun(&r) {
                    r.state = JobState::Queued;
                    r.reason = EndReason::RestartRequeued {
                        attempt: r.attempts,
                    };
                } else {
                    r.state = JobState::Failed;
                    r.reason = EndReason::Restarted;
                    r.finished_at_ms = now_ms;
                }
                r.version = r.version.saturating_add(1);
                t.put_job(r.job_id, &codec::encode(&r))?;
                out.push(Recovered { record: r, orphan });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests;
