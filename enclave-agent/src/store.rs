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

use parity_scale_codec::{Decode, DecodeAll, Encode};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde::Deserialize;

mod journal;
use journal::{Journal, Redo};

/// Job id: 32 bytes chosen by the client.
pub type JobId = [u8; 32];

const JOBS: TableDefinition<JobId, &[u8]> = TableDefinition::new("jobs");
/// Specs keyed by (submission time in ms, job id): written once and never changed, so keys in
/// arrival order land on the right edge of the B-tree and a commit of many submissions
/// dirties one or two leaf pages, where keys by job id (random) dirty one leaf each.
const SPEC_LOG: TableDefinition<(u64, JobId), &[u8]> = TableDefinition::new("spec_log");
/// Specs of stores written before `SPEC_LOG`, keyed by job id: read, never written.
const LEGACY_SPECS: TableDefinition<JobId, &[u8]> = TableDefinition::new("specs");
const OUTPUTS: TableDefinition<(JobId, &str, u32), &[u8]> = TableDefinition::new("outputs");
const LOGS: TableDefinition<(JobId, u8, u32), &[u8]> = TableDefinition::new("logs");
const RECEIPTS: TableDefinition<JobId, &[u8]> = TableDefinition::new("receipts");
const BUNDLES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("bundles");

/// The store's own values: the journal generation.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key in `META`: frames of this journal generation are not in a durable commit yet.
const JOURNAL_GENERATION: &str = "journal_generation";

/// Journal file size: frames beyond it wait for a checkpoint (a batch of submissions takes
/// a few kilobytes).
const JOURNAL_BYTES: u64 = 4 << 20;
/// Longest time a journal frame waits for a checkpoint while writes arrive: bounds what a
/// start-up replays and the pages a checkpoint writes.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// A checkpoint is also made when no write came for this long.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(20);

/// First byte of a job record in the binary form (see [`JobRecord`]).
const RECORD_V1: u8 = 1;

/// Outputs and logs are stored in chunks of this size, so reading one never loads a whole file.
pub const CHUNK: usize = 1 << 20;

/// Most write operations committed in one transaction.
const MAX_BATCH: usize = 512;

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
}

fn db_err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Db {
        op,
        detail: e.into().to_string(),
    }
}

/// Lifecycle state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Encode, Decode)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting to run.
    #[codec(index = 0)]
    Queued,
    /// The workload is running.
    #[codec(index = 1)]
    Running,
    /// Exited with status 0.
    #[codec(index = 2)]
    Succeeded,
    /// Did not succeed (see the reason).
    #[codec(index = 3)]
    Failed,
    /// Cancelled before it finished.
    #[codec(index = 4)]
    Cancelled,
}

impl JobState {
    /// All states, for metrics.
    pub const ALL: [JobState; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// True for states a job never leaves.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// Lower-case name (metrics label, logs).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Usage of a job, as measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct UsageRecord {
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// User + system CPU milliseconds.
    pub cpu_ms: u64,
    /// Peak resident set size, bytes.
    pub peak_memory_bytes: u64,
    /// GPU milliseconds (utilisation-weighted).
    pub gpu_ms: u64,
    /// GPU energy, millijoules.
    pub gpu_energy_mj: u64,
}

/// One collected output file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct OutputMeta {
    /// Path relative to the output directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
    /// Leaf index in the result commitment.
    pub index: u32,
}

/// The OS process a running job was started as, to find it again after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct ProcessHandle {
    /// Process id (also its process-group id).
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22): tells a reused pid apart.
    pub start_ticks: u64,
}

/// Which log of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogKind {
    const fn tag(self) -> u8 {
        match self {
            Self::Stdout => 1,
            Self::Stderr => 2,
        }
    }
}

/// Everything known about a job except its spec and its bulk data.
///
/// Stored as [`RECORD_V1`] then the SCALE encoding of the fields in order. Records of older
/// stores are JSON objects (the serde form, only ever read now), rewritten in the binary form
/// on their next change. A change of fields takes a new tag.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct JobRecord {
    /// Client-chosen id.
    #[serde(with = "hex32")]
    pub job_id: JobId,
    /// SHA-256 of the spec bytes.
    #[serde(with = "hex32")]
    pub spec_hash: [u8; 32],
    /// The buyer key that signed the submission (none when a bearer token was used).
    #[serde(with = "hex32_opt", default)]
    pub buyer: Option<[u8; 32]>,
    /// Current state.
    pub state: JobState,
    /// Why it failed or was cancelled.
    #[serde(default)]
    pub reason: String,
    /// Workload exit code (negative: signal), when it ran to an end.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Unix milliseconds.
    pub submitted_at_ms: u64,
    /// Unix milliseconds of the last start (0 if never started).
    #[serde(default)]
    pub started_at_ms: u64,
    /// Unix milliseconds of the end (0 if not ended).
    #[serde(default)]
    pub finished_at_ms: u64,
    /// Measured usage.
    #[serde(default)]
    pub usage: UsageRecord,
    /// Collected outputs.
    #[serde(default)]
    pub outputs: Vec<OutputMeta>,
    /// Times the workload was started.
    #[serde(default)]
    pub attempts: u32,
    /// Bumped on every change: the sequence number of job events.
    pub version: u64,
    /// The running process, while `Running`.
    #[serde(default)]
    pub process: Option<ProcessHandle>,
    /// Set when a receipt is stored.
    #[serde(default)]
    pub has_receipt: bool,
    /// Digest of the evidence bundle the receipt references.
    #[serde(with = "hex32_opt", default)]
    pub evidence_digest: Option<[u8; 32]>,
}

impl JobRecord {
    /// A freshly accepted job.
    pub fn queued(
        job_id: JobId,
        spec_hash: [u8; 32],
        buyer: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Self {
        Self {
            job_id,
            spec_hash,
            buyer,
            state: JobState::Queued,
            reason: String::new(),
            exit_code: None,
            submitted_at_ms: now_ms,
            started_at_ms: 0,
            finished_at_ms: 0,
            usage: UsageRecord::default(),
            outputs: Vec::new(),
            attempts: 0,
            version: 1,
            process: None,
            has_receipt: false,
            evidence_digest: None,
        }
    }

    /// The stored form. Binary rather than JSON: a queued job's record is 181 bytes against
    /// 517, so a B-tree leaf holds about three times as many and commits write fewer pages.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint().saturating_add(1));
        out.push(RECORD_V1);
        self.encode_to(&mut out);
        out
    }

    fn from_bytes(job_id: &JobId, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            job: hex::encode(job_id),
            detail,
        };
        match bytes.split_first() {
            Some((&RECORD_V1, mut rest)) => {
                <Self as DecodeAll>::decode_all(&mut rest).map_err(|e| corrupt(e.to_string()))
            }
            Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
            Some((tag, _)) => Err(corrupt(format!("unknown record encoding {tag:#04x}"))),
            None => Err(corrupt("empty record".into())),
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

/// What [`Store::recover`] did with a job found `Running` at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The job after recovery (`Queued` for a re-run, `Failed` otherwise).
    pub record: JobRecord,
    /// The process it had been running as (possibly still alive: the caller stops it).
    pub orphan: Option<ProcessHandle>,
}

/// Every table of job data, opened once per write transaction and shared by the writes
/// batched in it, and the journal frame of the batch. Tables are written only through the
/// `put_*` methods, which record each write in the frame.
pub struct Tables<'t> {
    /// The frame payload of this batch (see [`journal`]).
    redo: Vec<u8>,
    /// The batch is to be a checkpoint: its frame outgrew the journal (and was dropped), or
    /// [`Store::checkpoint`] asked for one.
    checkpoint: bool,
    jobs: Table<'t, JobId, &'static [u8]>,
    specs: Table<'t, (u64, JobId), &'static [u8]>,
    outputs: Table<'t, (JobId, &'static str, u32), &'static [u8]>,
    logs: Table<'t, (JobId, u8, u32), &'static [u8]>,
    receipts: Table<'t, JobId, &'static [u8]>,
    bundles: Table<'t, [u8; 32], &'static [u8]>,
}

impl std::fmt::Debug for Tables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tables")
    }
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            redo: Vec::new(),
            checkpoint: false,
            jobs: txn.open_table(JOBS).map_err(db_err("open jobs"))?,
            specs: txn.open_table(SPEC_LOG).map_err(db_err("open specs"))?,
            outputs: txn.open_table(OUTPUTS).map_err(db_err("open outputs"))?,
            logs: txn.open_table(LOGS).map_err(db_err("open logs"))?,
            receipts: txn.open_table(RECEIPTS).map_err(db_err("open receipts"))?,
            bundles: txn.open_table(BUNDLES).map_err(db_err("open bundles"))?,
        })
    }

    /// Records a write in the batch's frame, unless the frame is already too large.
    fn journal(&mut self, w: Redo<'_>) {
        if self.checkpoint {
            return;
        }
        journal::record(&mut self.redo, w);
        if u64::try_from(self.redo.len()).unwrap_or(u64::MAX) > JOURNAL_BYTES {
            self.checkpoint = true;
            self.redo = Vec::new();
        }
    }

    /// Stores a job record.
    fn put_job(&mut self, job_id: JobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.jobs.insert(job_id, bytes).map_err(db_err("put job"))?;
        self.journal(Redo::Job(job_id, bytes));
        Ok(())
    }

    /// Stores a spec.
    fn put_spec(&mut self, key: (u64, JobId), bytes: &[u8]) -> Result<(), StoreError> {
        self.specs
            .insert(key, bytes)
            .map_err(db_err("insert spec"))?;
        self.journal(Redo::Spec(key, bytes));
        Ok(())
    }

    /// Stores a chunk of an output file.
    fn put_output(&mut self, key: (JobId, &str, u32), chunk: &[u8]) -> Result<(), StoreError> {
        self.outputs
            .insert(key, chunk)
            .map_err(db_err("insert output"))?;
        self.journal(Redo::Output(key, chunk));
        Ok(())
    }

    /// Stores a chunk of a log.
    fn put_log(&mut self, key: (JobId, u8, u32), chunk: &[u8]) -> Result<(), StoreError> {
        self.logs.insert(key, chunk).map_err(db_err("insert log"))?;
        self.journal(Redo::Log(key, chunk));
        Ok(())
    }

    /// Stores a receipt.
    fn put_receipt(&mut self, job_id: JobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.receipts
            .insert(job_id, bytes)
            .map_err(db_err("insert receipt"))?;
        self.journal(Redo::Receipt(job_id, bytes));
        Ok(())
    }

    /// Stores an evidence bundle.
    fn put_bundle(&mut self, digest: [u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        self.bundles
            .insert(digest, bytes)
            .map_err(db_err("insert bundle"))?;
        self.journal(Redo::Bundle(digest, bytes));
        Ok(())
    }

    /// Applies one journaled write (replay at start).
    fn apply(&mut self, w: Redo<'_>) -> Result<(), StoreError> {
        match w {
            Redo::Job(id, v) => self.jobs.insert(id, v).map(drop),
            Redo::Spec(key, v) => self.specs.insert(key, v).map(drop),
            Redo::Output(key, v) => self.outputs.insert(key, v).map(drop),
            Redo::Log(key, v) => self.logs.insert(key, v).map(drop),
            Redo::Receipt(id, v) => self.receipts.insert(id, v).map(drop),
            Redo::Bundle(digest, v) => self.bundles.insert(digest, v).map(drop),
        }
        .map_err(db_err("replay journal"))
    }
}

/// The journal generation recorded in the last durable commit.
fn generation(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    Ok(txn
        .open_table(META)
        .map_err(db_err("open meta"))?
        .get(JOURNAL_GENERATION)
        .map_err(db_err("get generation"))?
        .map_or(0, |v| v.value()))
}

/// Records `g` as the journal generation (in a checkpoint).
fn set_generation(txn: &redb::WriteTransaction, g: u64) -> Result<(), StoreError> {
    txn.open_table(META)
        .map_err(db_err("open meta"))?
        .insert(JOURNAL_GENERATION, g)
        .map_err(db_err("put generation"))?;
    Ok(())
}

type Finisher = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
type Op = Box<dyn for<'t> FnOnce(&mut Tables<'t>) -> (bool, Finisher) + Send>;

/// The durable store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
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
        let db = Arc::new(db);
        let (writer, rx) = mpsc::channel::<Op>();
        let mut w = Writer {
            db: Arc::clone(&db),
            journal: Some(journal),
            generation,
            oldest_frame: None,
            every,
            stats,
        };
        std::thread::Builder::new()
            .name("sigil-store".into())
            .spawn(move || w.run(&rx))
            .map_err(|e| StoreError::Db {
                op: "start writer",
                detail: e.to_string(),
            })?;
        Ok(Self { db, writer })
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
        let bytes = record.to_bytes();
        self.write(move |t| {
            let existing = match t.jobs.get(record.job_id).map_err(db_err("get job"))? {
                Some(v) => Some(JobRecord::from_bytes(&record.job_id, v.value())?),
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
        let bytes = record.to_bytes();
        self.write(move |t| t.put_job(record.job_id, &bytes)).await
    }

    /// Stores a job's end and its data in one transaction.
    pub async fn complete(&self, record: JobRecord, c: Completion) -> Result<(), StoreError> {
        let bytes = record.to_bytes();
        self.write(move |t| {
            t.put_job(record.job_id, &bytes)?;
            for (path, data) in &c.outputs {
                for (i, chunk) in chunks(data) {
                    t.put_output((record.job_id, path.as_str(), i), chunk)?;
                }
            }
            for (kind, data) in [(LogKind::Stdout, &c.stdout), (LogKind::Stderr, &c.stderr)] {
                for (i, chunk) in chunks(data) {
                    t.put_log((record.job_id, kind.tag(), i), chunk)?;
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
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let t = txn.open_table(JOBS).map_err(db_err("open jobs"))?;
        match t.get(*job_id).map_err(db_err("get job"))? {
            Some(v) => Ok(Some(JobRecord::from_bytes(job_id, v.value())?)),
            None => Ok(None),
        }
    }

    /// A job's spec bytes (as submitted and signed).
    pub fn spec(&self, record: &JobRecord) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
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
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
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
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
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
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let t = txn.open_table(LOGS).map_err(db_err("open logs"))?;
        Ok(t.get((*job_id, kind.tag(), index))
            .map_err(db_err("get log"))?
            .map(|v| v.value().to_vec()))
    }

    /// Size of a job's log.
    pub fn log_size(&self, job_id: &JobId, kind: LogKind) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let t = txn.open_table(LOGS).map_err(db_err("open logs"))?;
        let range = t
            .range((*job_id, kind.tag(), 0)..=(*job_id, kind.tag(), u32::MAX))
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
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let t = txn.open_table(JOBS).map_err(db_err("open jobs"))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err("iterate jobs"))? {
            let (k, v) = entry.map_err(db_err("read job"))?;
            out.push(JobRecord::from_bytes(&k.value(), v.value())?);
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
                    r.reason = format!(
                        "re-queued after the agent restarted during attempt {}",
                        r.attempts
                    );
                } else {
                    r.state = JobState::Failed;
                    r.reason = "the agent restarted while the job was running".into();
                    r.finished_at_ms = now_ms;
                }
                r.version = r.version.saturating_add(1);
                t.put_job(r.job_id, &r.to_bytes())?;
                out.push(Recovered { record: r, orphan });
            }
            Ok(out)
        })
    }
}

/// Where a job's spec is stored in `SPEC_LOG`.
fn spec_key(record: &JobRecord) -> (u64, JobId) {
    (record.submitted_at_ms, record.job_id)
}

/// Splits data into numbered chunks; empty data is one empty chunk (so the file exists).
fn chunks(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let empty: &[u8] = &[];
    let first = if data.is_empty() { Some(empty) } else { None };
    first
        .into_iter()
        .chain(data.chunks(CHUNK))
        .zip(0u32..)
        .map(|(c, i)| (i, c))
}

fn make_op<R, F>(f: F, reply: impl FnOnce(Result<R, StoreError>) + Send + 'static) -> Op
where
    R: Send + 'static,
    F: for<'t> FnOnce(&mut Tables<'t>) -> Result<R, StoreError> + Send + 'static,
{
    Box::new(move |tables| {
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
struct Writer {
    db: Arc<Database>,
    /// `None` after a journal write failed: every batch is then a checkpoint.
    journal: Option<Journal>,
    /// Generation of the frames written now (recorded by the last checkpoint).
    generation: u64,
    /// When the oldest frame not yet retired by a checkpoint was written.
    oldest_frame: Option<std::time::Instant>,
    every: Checkpoints,
    stats: StoreStats,
}

impl Writer {
    fn run(&mut self, rx: &mpsc::Receiver<Op>) {
        loop {
            let pending = self.journal.as_ref().is_some_and(|j| !j.is_empty());
            let first = match (pending, self.every.idle) {
                (true, Some(idle)) => match rx.recv_timeout(idle) {
                    Ok(op) => op,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // A failure is logged there; the next idle period tries again.
                        drop(self.checkpoint_alone());
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
        let txn = match self.db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let err = db_err("begin write")(e);
                tracing::error!(error = %err, "job store: cannot begin a write transaction");
                // Without a transaction the ops cannot run: dropping them drops their reply
                // channels, and their callers get `StoreError::Closed`.
                drop(ops);
                return;
            }
        };
        let mut finishers = Vec::with_capacity(ops.len());
        let mut any_failed = false;
        let (mut redo, mut checkpoint) = (Vec::new(), false);
        match Tables::open(&txn) {
            Ok(mut tables) => {
                for op in ops {
                    let (failed, fin) = op(&mut tables);
                    any_failed |= failed;
                    finishers.push(fin);
                }
                redo = std::mem::take(&mut tables.redo);
                checkpoint = tables.checkpoint;
            }
            Err(e) => {
                tracing::error!(error = %e, "job store: cannot open the tables");
                // As above: dropped ops answer `StoreError::Closed`.
                drop(ops);
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
            .db
            .begin_write()
            .map_err(db_err("begin write"))
            .and_then(|txn| self.checkpoint(txn));
        if let Err(e) = &r {
            tracing::error!(error = %e, "job store: checkpoint failed");
        }
        r
    }
}

/// serde for `[u8; 32]` as hex (reading the JSON records of older stores).
mod hex32 {
    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let b = hex::decode(s).map_err(D::Error::custom)?;
        <[u8; 32]>::try_from(b).map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

/// serde for `Option<[u8; 32]>` as hex (reading the JSON records of older stores).
mod hex32_opt {
    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            let b = hex::decode(s).map_err(D::Error::custom)?;
            <[u8; 32]>::try_from(b).map_err(|_| D::Error::custom("expected 32 bytes"))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests;
