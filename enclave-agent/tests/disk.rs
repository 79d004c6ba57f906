//! A full or read-only state directory (issue 21): the agent refuses new work with a status
//! that names the directory and the cause, keeps running and serving what it accepted, and
//! accepts again once space is freed.
//!
//! Real file systems: the state directory is a small tmpfs, filled by a file beside the
//! store, and remounted read-only between runs (a live remount is refused by the kernel
//! while the agent holds its store open for writing). Mounting needs root: without it the
//! tests say so and skip (CI runs them as root).
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Agent, buyer, is_root, job_id, output_auth, request_auth, shell_job, signed, state, wait_final,
};
use sigil_proto::v1;
use sigil_proto::v1::job_service_client::JobServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// Reserve of the tests' agents (`jobs.min_free_bytes`).
const RESERVE: u64 = 12 << 20;

/// A tmpfs of `mib` MiB mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(mib: u64) -> Self {
        let parent = tempfile::Builder::new()
            .prefix("sigil-disk-test")
            .tempdir()
            .unwrap();
        let dir = parent.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mib}m,mode=0755"),
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Self {
            _parent: parent,
            dir,
        }
    }

    fn remount(&self, opt: &str) {
        run(&[
            "mount",
            "-o",
            &format!("remount,{opt}"),
            self.dir.to_str().unwrap(),
        ]);
    }

    fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.dir).unwrap();
        st.f_bavail * st.f_frsize
    }

    /// Writes `fill` (appending) until at most `leave` bytes are free, or the disk is full.
    fn fill_to(&self, leave: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("fill"))
            .unwrap();
        let block = vec![0xa5u8; 1 << 16];
        while self.free() > leave {
            let n = usize::try_from((self.free() - leave).min(block.len() as u64)).unwrap();
            match f.write_all(&block[..n.max(1)]) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.sync_all();
    }

    fn unfill(&self) {
        std::fs::remove_file(self.dir.join("fill")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", self.dir.to_str().unwrap()])
            .status();
    }
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("{test}: skipped: mounting a tmpfs needs root (CI runs it as root)");
    true
}

fn start(dir: &Path) -> Agent {
    Agent::start(
        dir,
        &[
            ("SIGIL_AGENT_JOBS__MIN_FREE_BYTES", &RESERVE.to_string()),
            ("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "2"),
        ],
    )
}

async fn receipt(jobs: &mut JobServiceClient<Channel>, id: [u8; 32]) -> v1::ReceiptResponse {
    jobs.get_receipt(v1::GetReceiptRequest {
        job_id: id.to_vec(),
        auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id)),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn output(jobs: &mut JobServiceClient<Channel>, id: [u8; 32], path: &str) -> Vec<u8> {
    let kind = v1::OutputKind::File;
    let mut s = jobs
        .get_output(v1::GetOutputRequest {
            job_id: id.to_vec(),
            kind: kind as i32,
            path: path.into(),
            offset: 0,
            auth: Some(output_auth(&buyer(), &id, kind, 0, path)),
        })
        .await
        .unwrap()
        .into_inner();
    let mut data = Vec::new();
    while let Some(c) = s.message().await.unwrap() {
        data.extend(c.data);
    }
    data
}

fn writer_job(label: &str, script: &str) -> ([u8; 32], v1::SubmitRequest) {
    let id = job_id(label);
    (id, signed(&buyer(), &shell_job(id, script)))
}

async fn metric(agent: &Agent, name: &str) -> String {
    let addr = agent.metrics_addr();
    let body = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        b
    })
    .await
    .unwrap();
    body.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_state_dir_refuses_new_jobs_and_keeps_accepted_works() {
    if skip_unless_root("full_state_dir_refuses_new_jobs_and_keeps_accepted_works") {
        return;
    }
    let fs = Tmpfs::mount(48);
    let agent = start(&fs.dir);
    let mut jobs = agent.jobs().await;
    let dir_name = fs.dir.display().to_string();

    // Finished before the disk fills.
    let (done, req) = writer_job("disk-done", "printf done > \"$SIGIL_OUTPUT_DIR/o\"");
    jobs.submit(req).await.unwrap();
    assert_eq!(
        state(&wait_final(&mut jobs, done).await),
        v1::JobState::Succeeded
    );
    let done_receipt = receipt(&mut jobs, done).await;

    // Accepted before the disk fills, still running while it does: it writes into the
    // reserve and ends with its outputs and receipt.
    let (running, req) = writer_job(
        "disk-running",
        "sleep 2; head -c 262144 /dev/zero > \"$SIGIL_OUTPUT_DIR/big\"; printf r > \"$SIGIL_OUTPUT_DIR/o\"",
    );
    jobs.submit(req).await.unwrap();

    // Below the reserve: new jobs are refused, naming the directory and the cause.
    fs.fill_to(RESERVE / 2);
    let (late, req) = writer_job("disk-late", "printf late > \"$SIGIL_OUTPUT_DIR/o\"");
    let e = jobs.submit(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains(&dir_name), "{}", e.message());
    assert!(
        e.message().contains("kept for accepted jobs"),
        "{}",
        e.message()
    );
    assert!(e.metadata().get("retry-after-ms").is_some());
    assert!(
        metric(&agent, "sigil_agent_state_dir_accepting")
            .await
            .ends_with(" 0")
    );

    let sr = wait_final(&mut jobs, running).await;
    assert_eq!(
        state(&sr),
        v1::JobState::Succeeded,
        "{sr:?}\n{}",
        agent.log()
    );
    assert_eq!(output(&mut jobs, running, "o").await, b"r");
    assert_eq!(output(&mut jobs, running, "big").await.len(), 262_144);
    assert!(!receipt(&mut jobs, running).await.signed_receipt.is_empty());

    // Full to the last block: still refused (not an internal error), reads still served.
    fs.fill_to(0);
    let e = jobs.submit(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains(&dir_name), "{}", e.message());
    assert_eq!(
        receipt(&mut jobs, done).await.signed_receipt,
        done_receipt.signed_receipt
    );
    assert_eq!(output(&mut jobs, done, "o").await, b"done");
    // A repeat of an accepted submission is answered from the store, full disk or not.
    let (_, again) = writer_job("disk-done", "printf done > \"$SIGIL_OUTPUT_DIR/o\"");
    jobs.submit(again).await.unwrap();

    // Space is back: accepted again, and run.
    fs.unfill();
    jobs.submit(req).await.unwrap();
    let sl = wait_final(&mut jobs, late).await;
    assert_eq!(state(&sl), v1::JobState::Succeeded, "{sl:?}");
    assert_eq!(output(&mut jobs, late, "o").await, b"late");
    assert!(
        metric(&agent, "sigil_agent_state_dir_accepting")
            .await
            .ends_with(" 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_state_dir_rejects() {
    if skip_unless_root("read_only_state_dir_rejects") {
        return;
    }
    let fs = Tmpfs::mount(32);
    let mut agent = start(&fs.dir);
    let mut jobs = agent.jobs().await;
    let (done, req) = writer_job("ro-done", "printf done > \"$SIGIL_OUTPUT_DIR/o\"");
    jobs.submit(req).await.unwrap();
    assert_eq!(
        state(&wait_final(&mut jobs, done).await),
        v1::JobState::Succeeded
    );
    let log = agent.log();
    assert!(agent.sigterm_and_wait().success(), "{log}");

    // Read-only between runs (the kernel refuses a live remount while the store is open).
    fs.remount("ro");
    let st = Command::new(env!("CARGO_BIN_EXE_sigil-agent"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_AGENT_STATE_DIR", &fs.dir)
        .env("SIGIL_AGENT_LISTEN", "127.0.0.1:0")
        .env("SIGIL_AGENT_METRICS_LISTEN", "127.0.0.1:0")
        .env("SIGIL_AGENT_EVIDENCE__BACKEND", "simulated")
        .env("SIGIL_AGENT_EVIDENCE__ALLOW_SIMULATED", "true")
        .env("SIGIL_AGENT_GPUS__ENABLED", "false")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success());
    assert!(err.contains(&fs.dir.display().to_string()), "{err}");
    assert!(err.to_lowercase().contains("read-only"), "{err}");

    // Writable again: everything accepted before is still there.
    fs.remount("rw");
    agent.restart();
    let mut jobs = agent.jobs().await;
    assert_eq!(output(&mut jobs, done, "o").await, b"done");
    assert!(!receipt(&mut jobs, done).await.signed_receipt.is_empty());
}

/// A write that failed on a full disk leaves the store able to write once space is back,
/// without a restart (issue 21): the store reopens itself, replaying its journal, and
/// everything acknowledged before is still there.
#[tokio::test(flavor = "multi_thread")]
async fn store_writes_again_after_a_failed_write_works() {
    use enclave_agent::job::JobRecord;
    use enclave_agent::store::{Inserted, Store, StoreError};

    if skip_unless_root("store_writes_again_after_a_failed_write_works") {
        return;
    }
    let fs = Tmpfs::mount(16);
    let path = fs.dir.join("agent.redb");
    let store = Store::open(&path).unwrap();
    let spec = |i: u32| vec![u8::try_from(i % 251).unwrap(); 64 << 10];
    let record = |i: u32| {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_le_bytes());
        JobRecord::queued(id, [7; 32], Some([9; 32]), 1_000)
    };
    let mut acknowledged = Vec::new();
    for i in 0..8 {
        assert!(matches!(
            store.insert(record(i), spec(i)).await.unwrap(),
            Inserted::Created(_)
        ));
        acknowledged.push(i);
    }
    // Fill the disk, then write until the store refuses for lack of space.
    fs.fill_to(0);
    let mut refused = None;
    for i in 8..400 {
        match store.insert(record(i), spec(i)).await {
            Ok(_) => acknowledged.push(i),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses a write");
    assert!(matches!(refused, StoreError::Disk { .. }), "{refused:?}");
    // Still full: still refused, typed, never a panic.
    let again = store.insert(record(1000), spec(1000)).await.unwrap_err();
    assert!(matches!(again, StoreError::Disk { .. }), "{again:?}");

    // Space back: writes are taken again (the store reopens itself; give it a few tries).
    fs.unfill();
    let mut ok = false;
    for _ in 0..100 {
        if store.insert(record(2000), spec(2000)).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the store never took a write again");
    acknowledged.push(2000);
    for i in &acknowledged {
        assert!(store.get(&record(*i).job_id).unwrap().is_some(), "job {i}");
    }
    // ...and durably: a fresh open sees every acknowledged job.
    drop(store);
    let reopened = (0..200)
        .find_map(|_| {
            Store::open(&path).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            })
        })
        .expect("the store reopens");
    for i in &acknowledged {
        assert!(
            reopened.get(&record(*i).job_id).unwrap().is_some(),
            "job {i} after reopen"
        );
    }
}
