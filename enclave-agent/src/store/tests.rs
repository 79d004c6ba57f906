//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use parity_scale_codec::Encode;

use super::codec::RECORD_V1;
use super::*;
use crate::job::{OutputMeta, UsageRecord};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("agent.redb")).unwrap()
}

/// Reopens after the previous handle is dropped (its writer thread releases the file).
fn reopen(dir: &tempfile::TempDir) -> Store {
    for _ in 0..200 {
        if let Ok(s) = Store::open(&dir.path().join("agent.redb")) {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("store did not reopen");
}

fn rec(id: u8, spec: &[u8]) -> JobRecord {
    JobRecord::queued([id; 32], Sha256Like::hash(spec), Some([9; 32]), 1_000)
}

/// A stand-in spec hash (the store does not care how it is made).
struct Sha256Like;
impl Sha256Like {
    fn hash(b: &[u8]) -> [u8; 32] {
        let mut h = [0u8; 32];
        for (i, x) in b.iter().enumerate() {
            h[i % 32] ^= *x;
        }
        h
    }
}

#[tokio::test]
async fn insert_is_idempotent_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let r = rec(1, b"spec-a");
    assert!(matches!(
        s.insert(r.clone(), b"spec-a".to_vec()).await.unwrap(),
        Inserted::Created(_)
    ));
    assert!(matches!(
        s.insert(r.clone(), b"spec-a".to_vec()).await.unwrap(),
        Inserted::Existing(_)
    ));
    let other = rec(1, b"spec-b");
    assert!(matches!(
        s.insert(other, b"spec-b".to_vec()).await.unwrap(),
        Inserted::Conflict(_)
    ));
    assert_eq!(s.spec(&r).unwrap().unwrap(), b"spec-a");
    assert_eq!(s.get(&[1; 32]).unwrap().unwrap(), r);
    assert!(s.get(&[2; 32]).unwrap().is_none());
}

#[tokio::test]
async fn concurrent_writes_share_commits_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut handles = Vec::new();
    for i in 0..64u8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.insert(rec(i, &[i]), vec![i]).await.unwrap()
        }));
    }
    for h in handles {
        assert!(matches!(h.await.unwrap(), Inserted::Created(_)));
    }
    assert_eq!(s.all().unwrap().len(), 64);
    assert_eq!(s.counts().unwrap()[&JobState::Queued], 64);
}

#[tokio::test]
async fn completion_round_trip_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut r = rec(3, b"x");
    s.insert(r.clone(), b"x".to_vec()).await.unwrap();
    let big = vec![7u8; CHUNK * 2 + 5];
    r.state = JobState::Succeeded;
    r.has_receipt = true;
    r.version = 2;
    let c = Completion {
        outputs: vec![
            ("a/b.bin".into(), big.clone()),
            ("empty".into(), Vec::new()),
        ],
        stdout: b"hello".to_vec(),
        stderr: Vec::new(),
        receipt: Some(b"receipt".to_vec()),
        bundle: Some(([5; 32], b"bundle".to_vec())),
    };
    s.complete(r.clone(), c).await.unwrap();
    drop(s);
    let s = reopen(&dir);
    assert_eq!(
        s.get(&r.job_id).unwrap().unwrap().state,
        JobState::Succeeded
    );
    let mut got = Vec::new();
    for i in 0.. {
        match s.output_chunk(&r.job_id, "a/b.bin", i).unwrap() {
            Some(c) => got.extend(c),
            None => break,
        }
    }
    assert_eq!(got, big);
    assert_eq!(
        s.output_chunk(&r.job_id, "empty", 0).unwrap().unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(
        s.log_chunk(&r.job_id, LogKind::Stdout, 0).unwrap().unwrap(),
        b"hello"
    );
    assert_eq!(s.log_size(&r.job_id, LogKind::Stdout).unwrap(), 5);
    assert_eq!(s.log_size(&r.job_id, LogKind::Stderr).unwrap(), 0);
    assert_eq!(s.receipt(&r.job_id).unwrap().unwrap(), b"receipt");
    assert_eq!(s.bundle(&[5; 32]).unwrap().unwrap(), b"bundle");
}

#[tokio::test]
async fn recover_fails_or_requeues_running_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for (id, spec) in [(1u8, b"a"), (2, b"b"), (3, b"c")] {
        let mut r = rec(id, spec);
        s.insert(r.clone(), spec.to_vec()).await.unwrap();
        if id != 3 {
            r.state = JobState::Running;
            r.attempts = 1;
            r.version = 2;
            r.process = Some(ProcessHandle {
                pid: 1,
                start_ticks: 1,
            });
            s.put(r).await.unwrap();
        }
    }
    drop(s);
    let s = reopen(&dir);
    let out = s.recover(5_000, |r| r.job_id == [2; 32]).unwrap();
    assert_eq!(out.len(), 2);
    let one = s.get(&[1; 32]).unwrap().unwrap();
    assert_eq!(one.state, JobState::Failed);
    assert_eq!(one.finished_at_ms, 5_000);
    assert!(one.process.is_none());
    assert_eq!(one.version, 3);
    let two = s.get(&[2; 32]).unwrap().unwrap();
    assert_eq!(two.state, JobState::Queued);
    assert_eq!(s.get(&[3; 32]).unwrap().unwrap().state, JobState::Queued);
    assert!(out.iter().all(|r| r.orphan.is_some()));
    // Recovery is idempotent: nothing is running any more.
    assert!(s.recover(6_000, |_| true).unwrap().is_empty());
}

/// `r` as older agents stored it: JSON, ids and digests in hex, states in snake case.
fn legacy_json(r: &JobRecord) -> Vec<u8> {
    let hex_opt = |v: Option<[u8; 32]>| v.map(hex::encode);
    let u = &r.usage;
    let outputs: Vec<_> = r
        .outputs
        .iter()
        .map(|o| {
            serde_json::json!({
                "path": o.path, "size": o.size, "sha256": hex::encode(o.sha256), "index": o.index,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "job_id": hex::encode(r.job_id),
        "spec_hash": hex::encode(r.spec_hash),
        "buyer": hex_opt(r.buyer),
        "state": r.state.name(),
        "reason": r.reason.to_string(),
        "exit_code": r.exit_code,
        "submitted_at_ms": r.submitted_at_ms,
        "started_at_ms": r.started_at_ms,
        "finished_at_ms": r.finished_at_ms,
        "usage": {
            "wall_ms": u.wall_ms, "cpu_ms": u.cpu_ms, "peak_memory_bytes": u.peak_memory_bytes,
            "gpu_ms": u.gpu_ms, "gpu_energy_mj": u.gpu_energy_mj,
        },
        "outputs": outputs,
        "attempts": r.attempts,
        "version": r.version,
        "process": r.process.map(|p| serde_json::json!({"pid": p.pid, "start_ticks": p.start_ticks})),
        "has_receipt": r.has_receipt,
        "evidence_digest": hex_opt(r.evidence_digest),
    }))
    .unwrap()
}

/// A record with every field set to something other than its default.
fn full_record() -> JobRecord {
    let mut r = rec(4, b"q");
    r.state = JobState::Failed;
    r.reason = EndReason::Exit(3);
    r.exit_code = Some(-9);
    r.started_at_ms = 2_000;
    r.finished_at_ms = 3_000;
    r.usage = UsageRecord {
        wall_ms: 1,
        cpu_ms: 2,
        peak_memory_bytes: 3,
        gpu_ms: 4,
        gpu_energy_mj: 5,
    };
    r.outputs.push(OutputMeta {
        path: "out/x".into(),
        size: 1,
        sha256: [1; 32],
        index: 0,
    });
    r.attempts = 2;
    r.version = 7;
    r.process = Some(ProcessHandle {
        pid: 42,
        start_ticks: 99,
    });
    r.has_receipt = true;
    r.evidence_digest = Some([2; 32]);
    r
}

#[test]
fn record_encoding_round_trip_works() {
    let r = full_record();
    let b = codec::encode(&r);
    assert_eq!(b.first(), Some(&RECORD_V1));
    assert_eq!(codec::decode(&r.job_id, &b).unwrap(), r);
    // Every state keeps its tag.
    for (i, state) in JobState::ALL.into_iter().enumerate() {
        let mut s = r.clone();
        s.state = state;
        let b = codec::encode(&s);
        assert_eq!(codec::decode(&s.job_id, &b).unwrap().state, state);
        assert_eq!(state.encode(), vec![u8::try_from(i).unwrap()]);
    }
    // The JSON form of older stores is still read.
    let json = legacy_json(&r);
    assert_eq!(codec::decode(&r.job_id, &json).unwrap(), r);
    // The oldest records lack the fields added later (serde defaults).
    let queued = rec(6, b"s");
    let minimal = format!(
        r#"{{"job_id":"{}","spec_hash":"{}","buyer":null,"state":"queued","submitted_at_ms":1000,"version":1}}"#,
        hex::encode(queued.job_id),
        hex::encode(queued.spec_hash)
    );
    let read = codec::decode(&queued.job_id, minimal.as_bytes()).unwrap();
    assert_eq!(
        read,
        JobRecord {
            buyer: None,
            ..queued
        }
    );
    // And it is larger: the reason for the binary form.
    assert!(
        b.len() * 2 < json.len(),
        "{} against {}",
        b.len(),
        json.len()
    );
}

#[test]
fn corrupt_records_are_typed_errors_works() {
    let r = full_record();
    let b = codec::encode(&r);
    let mut trailing = b.clone();
    trailing.push(0);
    let mut bad_state = b.clone();
    // The state follows the id (32), the spec hash (32) and the buyer (1 + 32).
    bad_state[1 + 32 + 32 + 33] = 9;
    let mut unknown = b.clone();
    unknown[0] = 2;
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("unknown tag", unknown),
        ("truncated", b[..b.len() - 1].to_vec()),
        ("trailing byte", trailing),
        ("state out of range", bad_state),
        ("broken JSON", b"{not json".to_vec()),
    ] {
        match codec::decode(&r.job_id, &bytes) {
            Err(StoreError::Corrupt { job, .. }) => {
                assert_eq!(job, hex::encode(r.job_id), "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// A store written before specs were kept in submission order and records in the binary
/// form keeps its jobs readable; new jobs and changed records use the new layout.
#[tokio::test]
async fn older_stores_stay_readable_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.redb");
    let old = rec(3, b"old-spec");
    {
        // The layout of the older store, written with redb directly.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut jobs = txn.open_table(JOBS).unwrap();
            let json = legacy_json(&old);
            jobs.insert(old.job_id, json.as_slice()).unwrap();
            let mut specs = txn.open_table(LEGACY_SPECS).unwrap();
            specs.insert(old.job_id, b"old-spec".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let s = reopen(&dir);
    assert_eq!(s.get(&old.job_id).unwrap().unwrap(), old);
    assert_eq!(s.spec(&old).unwrap().unwrap(), b"old-spec");
    let new = rec(4, b"new-spec");
    assert!(matches!(
        s.insert(new.clone(), b"new-spec".to_vec()).await.unwrap(),
        Inserted::Created(_)
    ));
    assert_eq!(s.spec(&new).unwrap().unwrap(), b"new-spec");
    // Submitting the old job again is still recognised as the same job.
    assert!(matches!(
        s.insert(old.clone(), b"old-spec".to_vec()).await.unwrap(),
        Inserted::Existing(_)
    ));
    // The old record, changed, is rewritten in the binary form.
    let mut changed = old.clone();
    changed.state = JobState::Cancelled;
    changed.version = 2;
    s.put(changed.clone()).await.unwrap();
    assert_eq!(s.get(&old.job_id).unwrap().unwrap(), changed);
    // Read through the store's own handle: the new spec is in the submission-order table,
    // the old one was not copied there.
    let txn = s.db.get("begin read").unwrap().begin_read().unwrap();
    let jobs = txn.open_table(JOBS).unwrap();
    assert_eq!(
        jobs.get(old.job_id).unwrap().unwrap().value().first(),
        Some(&RECORD_V1)
    );
    let log = txn.open_table(SPEC_LOG).unwrap();
    assert!(log.get((1_000, old.job_id)).unwrap().is_none());
    assert_eq!(
        log.get((1_000, new.job_id)).unwrap().unwrap().value(),
        b"new-spec"
    );
}

/// A fresh store has no table of the older layout, and a job with no spec reads as none.
#[tokio::test]
async fn missing_spec_reads_as_none_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    assert!(s.spec(&rec(5, b"never stored")).unwrap().is_none());
}

/// Checkpoints only when a batch asks for one (tests take crash images in between).
const NO_TIMED_CHECKPOINTS: Checkpoints = Checkpoints {
    every: std::time::Duration::from_secs(3600),
    idle: None,
};

/// What a `kill -9` at this instant leaves on disk: the store file and, unless `journal`
/// is false, its journal, copied while the store is open. The store keeps the pages of
/// journaled batches in memory, so the file holds the last durable commit only.
fn crash_image(dir: &tempfile::TempDir, journal: bool) -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("agent.redb"),
        image.path().join("agent.redb"),
    )
    .unwrap();
    if journal {
        std::fs::copy(
            dir.path().join("agent.redb.journal"),
            image.path().join("agent.redb.journal"),
        )
        .unwrap();
    }
    image
}

/// A store in `dir` that makes checkpoints only when a batch asks for one.
fn untimed_store(dir: &tempfile::TempDir) -> Store {
    Store::open_with(
        &dir.path().join("agent.redb"),
        NO_TIMED_CHECKPOINTS,
        StoreStats::default(),
    )
    .unwrap()
}

fn running(mut r: JobRecord) -> JobRecord {
    r.state = JobState::Running;
    r.attempts = 1;
    r.version = 2;
    r
}

#[tokio::test]
async fn journaled_writes_survive_a_crash_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = untimed_store(&dir);
    // Concurrent submissions (shared batches), then state changes of some.
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..40u8 {
        let s = s.clone();
        inserts.spawn(async move {
            let spec = vec![i; 100];
            s.insert(rec(i, &spec), spec).await.unwrap()
        });
    }
    while let Some(r) = inserts.join_next().await {
        assert!(matches!(r.unwrap(), Inserted::Created(_)));
    }
    for i in 0..10u8 {
        s.put(running(rec(i, &[i; 100]))).await.unwrap();
    }
    // Without the journal the crash image holds none of them: they were acknowledged on
    // the journal's sync alone.
    let bare = crash_image(&dir, false);
    let b = open(&bare);
    assert!(b.all().unwrap().is_empty());
    drop(b);
    let image = crash_image(&dir, true);
    let stats = StoreStats::default();
    let c = Store::open_counted(&image.path().join("agent.redb"), stats.clone()).unwrap();
    // 40 records and 40 specs, then 10 records again.
    assert_eq!(stats.replayed.get(), 90);
    let all = c.all().unwrap();
    assert_eq!(all.len(), 40);
    for r in all {
        let i = r.job_id[0];
        let want = if i < 10 {
            JobState::Running
        } else {
            JobState::Queued
        };
        assert_eq!(r.state, want, "job {i}");
        assert_eq!(c.spec(&r).unwrap().unwrap(), vec![i; 100]);
    }
    drop(c);
    // Opening applied the journal and made a checkpoint: the replayed writes are in the
    // store file itself now.
    let again = crash_image(&image, false);
    let d = open(&again);
    assert_eq!(d.all().unwrap().len(), 40);
}

#[tokio::test]
async fn checkpoint_retires_older_frames_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = untimed_store(&dir);
    let r = rec(1, b"a");
    s.insert(r.clone(), b"a".to_vec()).await.unwrap();
    s.put(running(r.clone())).await.unwrap();
    // A job's end too large for the journal is a checkpoint; the frames above must not be
    // applied over it.
    let mut done = running(r.clone());
    done.state = JobState::Succeeded;
    done.version = 3;
    done.has_receipt = true;
    let big = vec![3u8; usize::try_from(JOURNAL_BYTES).unwrap() + 1];
    let end = Completion {
        outputs: vec![("big".into(), big.clone())],
        receipt: Some(b"receipt".to_vec()),
        ..Completion::default()
    };
    s.complete(done.clone(), end).await.unwrap();
    // A frame of the new generation, written over the retired ones.
    s.insert(rec(2, b"b"), b"b".to_vec()).await.unwrap();
    let image = crash_image(&dir, true);
    let c = open(&image);
    assert_eq!(c.get(&[1; 32]).unwrap().unwrap(), done);
    assert_eq!(c.receipt(&[1; 32]).unwrap().unwrap(), b"receipt");
    let mut got = Vec::new();
    for i in 0..6 {
        got.extend(
            c.output_chunk(&[1; 32], "big", i)
                .unwrap()
                .unwrap_or_default(),
        );
    }
    assert_eq!(got, big);
    assert_eq!(c.get(&[2; 32]).unwrap().unwrap().state, JobState::Queued);
}

#[tokio::test]
async fn journaled_job_end_survives_a_crash_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = untimed_store(&dir);
    let r = rec(1, b"a");
    s.insert(r.clone(), b"a".to_vec()).await.unwrap();
    let mut done = running(r);
    done.state = JobState::Succeeded;
    done.version = 3;
    done.has_receipt = true;
    done.evidence_digest = Some([5; 32]);
    let out = vec![9u8; CHUNK + 10];
    let end = Completion {
        outputs: vec![("o/x".into(), out.clone()), ("empty".into(), Vec::new())],
        stdout: b"hello".to_vec(),
        stderr: b"warn".to_vec(),
        receipt: Some(b"receipt".to_vec()),
        bundle: Some(([5; 32], b"bundle".to_vec())),
    };
    s.complete(done.clone(), end).await.unwrap();
    s.put_bundle([6; 32], b"refreshed".to_vec()).await.unwrap();
    // Small enough for the journal: only the journal has them.
    let bare = crash_image(&dir, false);
    assert!(open(&bare).get(&[1; 32]).unwrap().is_none());
    let image = crash_image(&dir, true);
    let c = open(&image);
    assert_eq!(c.get(&[1; 32]).unwrap().unwrap(), done);
    let chunks: Vec<u8> = (0..2)
        .flat_map(|i| c.output_chunk(&[1; 32], "o/x", i).unwrap().unwrap())
        .collect();
    assert_eq!(chunks, out);
    assert_eq!(c.output_chunk(&[1; 32], "empty", 0).unwrap().unwrap(), b"");
    assert_eq!(
        c.log_chunk(&[1; 32], LogKind::Stdout, 0).unwrap().unwrap(),
        b"hello"
    );
    assert_eq!(
        c.log_chunk(&[1; 32], LogKind::Stderr, 0).unwrap().unwrap(),
        b"warn"
    );
    assert_eq!(c.receipt(&[1; 32]).unwrap().unwrap(), b"receipt");
    assert_eq!(c.bundle(&[5; 32]).unwrap().unwrap(), b"bundle");
    assert_eq!(c.bundle(&[6; 32]).unwrap().unwrap(), b"refreshed");
}

#[tokio::test]
async fn checkpoint_on_request_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = untimed_store(&dir);
    s.insert(rec(1, b"a"), b"a".to_vec()).await.unwrap();
    let has_job = |image: &tempfile::TempDir| open(image).get(&[1; 32]).unwrap().is_some();
    assert!(!has_job(&crash_image(&dir, false)));
    s.checkpoint().await.unwrap();
    assert!(has_job(&crash_image(&dir, false)));
}

#[tokio::test]
async fn idle_store_checkpoints_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.insert(rec(1, b"a"), b"a".to_vec()).await.unwrap();
    // The writer makes a checkpoint once writes stop; the store file alone then has the job.
    let mut found = false;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let image = crash_image(&dir, false);
        let c = open(&image);
        if c.get(&[1; 32]).unwrap().is_some() {
            found = true;
            break;
        }
    }
    assert!(found, "no checkpoint after the writes stopped");
}

#[tokio::test]
async fn resubmission_is_answered_without_a_write_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = untimed_store(&dir);
    let r = rec(1, b"a");
    s.insert(r.clone(), b"a".to_vec()).await.unwrap();
    let journal = dir.path().join("agent.redb.journal");
    let before = std::fs::read(&journal).unwrap();
    assert!(matches!(
        s.insert(r, b"a".to_vec()).await.unwrap(),
        Inserted::Existing(_)
    ));
    assert_eq!(std::fs::read(&journal).unwrap(), before);
}
