//! Durability of the group commit and of jobs started at submission (issue 5).
//!
//! * `kill -9` of a process in the middle of a stream of concurrent store writes: every
//!   write it acknowledged is in the store afterwards, whichever batch it was part of
//!   (most of them only in the store's journal when the process dies: they are applied
//!   again at the next open).
//! * Concurrent submissions to a running engine: each is durable when `Submit` returns,
//!   and each runs exactly once; a job started at submission is stored `Running` with its
//!   attempt counted before `Submit` returns.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use enclave_agent::attestor::Attestor;
use enclave_agent::config::Config;
use enclave_agent::engine::{Engine, EngineParts};
use enclave_agent::job::{JobRecord, JobState};
use enclave_agent::metering::GpuMetering;
use enclave_agent::metrics::Metrics;
use enclave_agent::store::Store;
use prost::Message;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

const CHILD_ENV: &str = "SIGIL_TEST_STORE_CHILD";

fn id_of(n: u64) -> [u8; 32] {
    Sha256::digest(n.to_le_bytes()).into()
}

/// Run as a child process by `kill9_between_batches_loses_nothing_acknowledged_works`
/// (does nothing otherwise): writes to the store from 32 tasks until killed, printing
/// each write once it is acknowledged.
#[test]
fn store_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..32u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let n = t * 1_000_000 + i;
                    let id = id_of(n);
                    let r = JobRecord::queued(id, [1; 32], None, n);
                    store.insert(r.clone(), vec![7; 100]).await.unwrap();
                    println!("ack {n}");
                    // Every other job also moves on, as a state change would.
                    if i % 2 == 0 {
                        let mut r = r;
                        r.state = JobState::Running;
                        r.attempts = 1;
                        r.version = 2;
                        store.put(r).await.unwrap();
                        println!("run {n}");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn kill9_between_batches_loses_nothing_acknowledged_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut acked, mut ran) = (HashSet::new(), HashSet::new());
    // Kill it mid-stream, once plenty of batches have been committed.
    while acked.len() < 3_000 {
        let line = lines.next().expect("the writer ended early").unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.insert(n.parse::<u64>().unwrap());
        } else if let Some(n) = line.strip_prefix("run ") {
            ran.insert(n.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap();
    // What it printed before it died was acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("ack ") {
            acked.insert(n.parse::<u64>().unwrap());
        } else if let Some(n) = line.strip_prefix("run ") {
            ran.insert(n.parse::<u64>().unwrap());
        }
    }
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    let all: HashMap<[u8; 32], JobRecord> = store
        .all()
        .unwrap()
        .into_iter()
        .map(|r| (r.job_id, r))
        .collect();
    for n in &acked {
        let r = all
            .get(&id_of(*n))
            .unwrap_or_else(|| panic!("acknowledged job {n} lost"));
        assert_eq!(r.submitted_at_ms, *n);
        assert_eq!(store.spec(r).unwrap().as_deref(), Some(&[7u8; 100][..]));
        if ran.contains(n) {
            assert_eq!(r.state, JobState::Running, "job {n}");
            assert_eq!(r.version, 2);
        }
    }
    // Nothing was stored that was not written (at most the writes in flight at the kill
    // beyond those acknowledged).
    assert!(all.len() >= acked.len());
    assert!(
        all.len() <= acked.len() + 32,
        "{} {}",
        all.len(),
        acked.len()
    );
}

fn shell_spec(id: [u8; 32], script: &str) -> v1::JobSpec {
    v1::JobSpec {
        job_id: id.to_vec(),
        tier: 1,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: Default::default(),
        })),
        ..Default::default()
    }
}

fn signed(key: &SigningKey, spec: &v1::JobSpec) -> v1::SubmitRequest {
    let bytes = spec.encode_to_vec();
    let msg: [u8; 32] = Sha256::new()
        .chain_update(sigil_proto::SUBMIT_DOMAIN)
        .chain_update(&bytes)
        .finalize()
        .into();
    v1::SubmitRequest {
        spec: bytes,
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&msg).to_bytes().to_vec(),
        }),
        sealed_secrets: Vec::new(),
    }
}

async fn engine(dir: &std::path::Path, max_concurrent: usize) -> (Arc<Engine>, CancellationToken) {
    let mut cfg = Config {
        state_dir: dir.to_owned(),
        ..Config::default()
    };
    cfg.jobs.max_concurrent = max_concurrent;
    cfg.jobs.kill_grace_ms = 200;
    cfg.jobs.shutdown_grace_secs = 5;
    // Workloads under the agent's own ids (they write to the test's directory), so their
    // limits are set with prlimit(2) after the spawn.
    cfg.jobs.run_as = "agent".into();
    let token = CancellationToken::new();
    let engine = Engine::start(
        EngineParts {
            config: enclave_agent::wiring::engine_config(&cfg),
            attestor: Arc::new(Attestor::simulated().unwrap()),
            gpus: Vec::new(),
            gpu_metering: GpuMetering::disabled(),
            metrics: Arc::new(Metrics::new()),
            isolation: None,
        },
        token.clone(),
    )
    .await
    .unwrap();
    (engine, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_are_durable_and_run_once_works() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(dir.path(), 2).await;
    let scheduler = tokio::spawn(Arc::clone(&engine).run());
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut events = engine.subscribe();
    // Each job appends a line to a file shared by all: a job run twice shows up twice.
    let log = dir.path().join("runs.log");
    let n = 40u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (engine, key, log) = (Arc::clone(&engine), key.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            let id = id_of(1_000 + i);
            let spec = shell_spec(id, &format!("echo {i} >> '{}'", log.display()));
            let (r, created) = engine
                .submit(&MetadataMap::new(), signed(&key, &spec))
                .await
                .unwrap();
            assert!(created);
            // Durable when Submit returns: queued, or already started with its attempt
            // counted (a slot was free).
            let stored = engine.store().get(&id).unwrap().unwrap();
            match r.state {
                JobState::Queued => assert_eq!(r.attempts, 0),
                JobState::Running => {
                    assert_eq!(r.attempts, 1);
                    assert!(r.started_at_ms > 0);
                }
                s => panic!("unexpected state {s:?} at submission"),
            }
            assert!(stored.version >= r.version);
            assert!(stored.attempts >= r.attempts);
            id
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    let mut done = HashSet::new();
    while done.len() < ids.len() {
        let r = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("jobs did not end")
            .unwrap();
        if r.state.is_final() {
            assert_eq!(r.state, JobState::Succeeded, "{:?}", r.reason);
            assert_eq!(r.attempts, 1);
            done.insert(r.job_id);
        }
    }
    token.cancel();
    scheduler.await.unwrap();
    engine.drain().await;
    let mut lines: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (0..n).collect::<Vec<_>>());
    // Every job is stored as it ended.
    for id in &ids {
        let r = engine.store().get(id).unwrap().unwrap();
        assert_eq!(r.state, JobState::Succeeded);
        assert!(r.has_receipt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_starts_a_job_when_a_slot_is_free_works() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(dir.path(), 1).await;
    let key = SigningKey::from_bytes(&[10; 32]);
    let md = MetadataMap::new();
    // Before the scheduler runs, jobs wait.
    let a = shell_spec(id_of(1), "sleep 1");
    let (r, _) = engine.submit(&md, signed(&key, &a)).await.unwrap();
    assert_eq!(r.state, JobState::Queued);
    let scheduler = tokio::spawn(Arc::clone(&engine).run());
    // `a` takes the only slot; `b` waits behind it.
    let mut events = engine.subscribe();
    while engine.job(&id_of(1)).unwrap().state != JobState::Running {
        let _ = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    }
    let b = shell_spec(id_of(2), "true");
    let (r, _) = engine.submit(&md, signed(&key, &b)).await.unwrap();
    assert_eq!(r.state, JobState::Queued);
    // Once both ended, the agent is idle: the next job is stored started.
    for id in [id_of(1), id_of(2)] {
        while !engine.job(&id).unwrap().state.is_final() {
            let _ = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        }
    }
    let c = shell_spec(id_of(3), "true");
    let (r, created) = engine.submit(&md, signed(&key, &c)).await.unwrap();
    assert!(created);
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.version, 2);
    // The same spec again: the stored job, not a second run.
    let (again, created) = engine.submit(&md, signed(&key, &c)).await.unwrap();
    assert!(!created);
    assert_eq!(again.job_id, id_of(3));
    while !engine.job(&id_of(3)).unwrap().state.is_final() {
        let _ = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    }
    let r = engine.job(&id_of(3)).unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(r.attempts, 1);
    token.cancel();
    scheduler.await.unwrap();
    engine.drain().await;
}
