//! The store's tables (redb), the keys of their rows, and the write side every batch goes
//! through ([`Tables`]), which records each write in the batch's journal frame.

use redb::{ReadableTable, Table, TableDefinition};

use super::journal::{self, Redo};
use super::{StoreError, db_err};
use crate::job::{JobId, JobRecord, LogKind};

pub(super) const JOBS: TableDefinition<JobId, &[u8]> = TableDefinition::new("jobs");
/// Specs keyed by (submission time in ms, job id): written once and never changed, so keys in
/// arrival order land on the right edge of the B-tree and a commit of many submissions
/// dirties one or two leaf pages, where keys by job id (random) dirty one leaf each.
pub(super) const SPEC_LOG: TableDefinition<(u64, JobId), &[u8]> = TableDefinition::new("spec_log");
/// Specs of stores written before `SPEC_LOG`, keyed by job id: read, never written.
pub(super) const LEGACY_SPECS: TableDefinition<JobId, &[u8]> = TableDefinition::new("specs");
pub(super) const OUTPUTS: TableDefinition<(JobId, &str, u32), &[u8]> =
    TableDefinition::new("outputs");
pub(super) const LOGS: TableDefinition<(JobId, u8, u32), &[u8]> = TableDefinition::new("logs");
pub(super) const RECEIPTS: TableDefinition<JobId, &[u8]> = TableDefinition::new("receipts");
pub(super) const BUNDLES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("bundles");

/// The store's own values: the journal generation.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key in `META`: frames of this journal generation are not in a durable commit yet.
pub(super) const JOURNAL_GENERATION: &str = "journal_generation";

/// Journal file size: frames beyond it wait for a checkpoint (a batch of submissions takes
/// a few kilobytes).
pub(super) const JOURNAL_BYTES: u64 = 4 << 20;
/// Outputs and logs are stored in chunks of this size, so reading one never loads a whole file.
pub const CHUNK: usize = 1 << 20;

/// Every table of job data, opened once per write transaction and shared by the writes
/// batched in it, and the journal frame of the batch. Tables are written only through the
/// `put_*` methods, which record each write in the frame.
pub struct Tables<'t> {
    /// The frame payload of this batch (see [`journal`]).
    pub(super) redo: Vec<u8>,
    /// The batch is to be a checkpoint: its frame outgrew the journal (and was dropped), or
    /// [`Store::checkpoint`] asked for one.
    pub(super) checkpoint: bool,
    pub(super) jobs: Table<'t, JobId, &'static [u8]>,
    pub(super) specs: Table<'t, (u64, JobId), &'static [u8]>,
    pub(super) outputs: Table<'t, (JobId, &'static str, u32), &'static [u8]>,
    pub(super) logs: Table<'t, (JobId, u8, u32), &'static [u8]>,
    pub(super) receipts: Table<'t, JobId, &'static [u8]>,
    pub(super) bundles: Table<'t, [u8; 32], &'static [u8]>,
}

impl std::fmt::Debug for Tables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tables")
    }
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
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
    pub(super) fn put_job(&mut self, job_id: JobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.jobs.insert(job_id, bytes).map_err(db_err("put job"))?;
        self.journal(Redo::Job(job_id, bytes));
        Ok(())
    }

    /// Stores a spec.
    pub(super) fn put_spec(&mut self, key: (u64, JobId), bytes: &[u8]) -> Result<(), StoreError> {
        self.specs
            .insert(key, bytes)
            .map_err(db_err("insert spec"))?;
        self.journal(Redo::Spec(key, bytes));
        Ok(())
    }

    /// Stores a chunk of an output file.
    pub(super) fn put_output(
        &mut self,
        key: (JobId, &str, u32),
        chunk: &[u8],
    ) -> Result<(), StoreError> {
        self.outputs
            .insert(key, chunk)
            .map_err(db_err("insert output"))?;
        self.journal(Redo::Output(key, chunk));
        Ok(())
    }

    /// Stores a chunk of a log.
    pub(super) fn put_log(
        &mut self,
        key: (JobId, u8, u32),
        chunk: &[u8],
    ) -> Result<(), StoreError> {
        self.logs.insert(key, chunk).map_err(db_err("insert log"))?;
        self.journal(Redo::Log(key, chunk));
        Ok(())
    }

    /// Stores a receipt.
    pub(super) fn put_receipt(&mut self, job_id: JobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.receipts
            .insert(job_id, bytes)
            .map_err(db_err("insert receipt"))?;
        self.journal(Redo::Receipt(job_id, bytes));
        Ok(())
    }

    /// Stores an evidence bundle.
    pub(super) fn put_bundle(&mut self, digest: [u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        self.bundles
            .insert(digest, bytes)
            .map_err(db_err("insert bundle"))?;
        self.journal(Redo::Bundle(digest, bytes));
        Ok(())
    }

    /// Applies one journaled write (replay at start).
    pub(super) fn apply(&mut self, w: Redo<'_>) -> Result<(), StoreError> {
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
pub(super) fn generation(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    Ok(txn
        .open_table(META)
        .map_err(db_err("open meta"))?
        .get(JOURNAL_GENERATION)
        .map_err(db_err("get generation"))?
        .map_or(0, |v| v.value()))
}

/// Records `g` as the journal generation (in a checkpoint).
pub(super) fn set_generation(txn: &redb::WriteTransaction, g: u64) -> Result<(), StoreError> {
    txn.open_table(META)
        .map_err(db_err("open meta"))?
        .insert(JOURNAL_GENERATION, g)
        .map_err(db_err("put generation"))?;
    Ok(())
}

/// Where a job's spec is stored in `SPEC_LOG`.
pub(super) fn spec_key(record: &JobRecord) -> (u64, JobId) {
    (record.submitted_at_ms, record.job_id)
}

/// Splits data into numbered chunks; empty data is one empty chunk (so the file exists).
pub(super) fn chunks(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let empty: &[u8] = &[];
    let first = if data.is_empty() { Some(empty) } else { None };
    first
        .into_iter()
        .chain(data.chunks(CHUNK))
        .zip(0u32..)
        .map(|(c, i)| (i, c))
}

/// The stream byte of a log in the `logs` table's keys.
pub(super) const fn log_tag(kind: LogKind) -> u8 {
    match kind {
        LogKind::Stdout => 1,
        LogKind::Stderr => 2,
    }
}
