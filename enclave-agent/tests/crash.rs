//! Durability of the real `sigil-agent` binary: `kill -9` in the middle of jobs, and
//! SIGTERM with checkpointing, then restart on the same state directory. Nothing accepted
//! is lost, nothing runs twice unless its spec asks for it.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use sigil_proto::v1;

/// A directory the workload (running as an unprivileged user) can write, outside its job
/// directory, to remember earlier attempts.
fn scratch() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("sigil-crash")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// First attempt: leaves a mark and hangs; any later attempt: succeeds at once. The mark is
/// left writable for all: a later attempt runs under another user id.
fn second_time_lucky(marks: &Path, name: &str) -> String {
    let m = marks.join(name);
    format!(
        "if [ -e {m} ]; then echo again >> {m}; printf rerun > \"$SIGIL_OUTPUT_DIR/result\"; \
         else echo first > {m}; chmod 666 {m}; exec sleep 120; fi",
        m = m.display()
    )
}

fn pid_file(state: &Path, id: [u8; 32]) -> PathBuf {
    state.join("jobs").join(hex::encode(id)).join("pid")
}

fn alive(pid: u32) -> bool {
    // A zombie waiting for its reaper is dead for our purpose.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_job_loses_nothing_works() {
    let dir = state_dir();
    let marks = scratch();
    // The jobs leave marks outside their directory (in a shared scratch directory), which a
    // private mount namespace would hide: these tests are about restarts, not isolation.
    let mut agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "2"),
            ("SIGIL_AGENT_ISOLATION__NAMESPACE", "off"),
        ],
    );
    let mut jobs = agent.jobs().await;
    let key = buyer();

    // D: finished before the crash; its receipt must survive unchanged.
    let done = job_id("crash-done");
    jobs.submit(signed(
        &key,
        &shell_job(done, "printf d > \"$SIGIL_OUTPUT_DIR/d\""),
    ))
    .await
    .unwrap();
    assert_eq!(
        state(&wait_final(&mut jobs, done).await),
        v1::JobState::Succeeded
    );
    let receipt_before = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: done.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &done)),
        })
        .await
        .unwrap()
        .into_inner();

    // A: fails on restart (default policy). B: re-runs on restart. C: still queued.
    let a = job_id("crash-fail");
    let b = job_id("crash-rerun");
    let c = job_id("crash-queued");
    jobs.submit(signed(&key, &shell_job(a, "exec sleep 120")))
        .await
        .unwrap();
    let mut rerun = shell_job(b, &second_time_lucky(marks.path(), "b"));
    rerun.on_restart = v1::RestartPolicy::Rerun as i32;
    jobs.submit(signed(&key, &rerun)).await.unwrap();
    jobs.submit(signed(
        &key,
        &shell_job(c, "printf c > \"$SIGIL_OUTPUT_DIR/c\""),
    ))
    .await
    .unwrap();
    wait_for(&mut jobs, a, |s| state(s) == v1::JobState::Running).await;
    wait_for(&mut jobs, b, |s| state(s) == v1::JobState::Running).await;
    // Wait until the workloads are really up (their pid files are written at spawn).
    for id in [a, b] {
        for _ in 0..500 {
            if pid_file(dir.path(), id).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let orphan: u32 = std::fs::read_to_string(pid_file(dir.path(), a))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(alive(orphan));
    assert_eq!(
        state(
            &jobs
                .get_job(v1::GetJobRequest {
                    job_id: c.to_vec(),
                    auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &c))
                })
                .await
                .unwrap()
                .into_inner()
        ),
        v1::JobState::Queued
    );

    agent.kill9();
    // Without a service manager the job's process group outlives the agent.
    assert!(alive(orphan));

    agent.restart();
    let mut jobs = agent.jobs().await;
    // The orphan was killed by recovery.
    for _ in 0..200 {
        if !alive(orphan) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !alive(orphan),
        "the interrupted job's process is still running"
    );

    let sa = wait_final(&mut jobs, a).await;
    assert_eq!(state(&sa), v1::JobState::Failed, "{sa:?}");
    assert_eq!(sa.reason, "the agent restarted while the job was running");
    assert_eq!(sa.attempts, 1);
    assert!(!sa.has_receipt);

    let sb = wait_final(&mut jobs, b).await;
    assert_eq!(
        state(&sb),
        v1::JobState::Succeeded,
        "{sb:?}\n{}",
        agent.log()
    );
    assert_eq!(sb.attempts, 2);
    assert_eq!(
        std::fs::read_to_string(marks.path().join("b")).unwrap(),
        "first\nagain\n",
        "ran exactly twice"
    );
    let rb = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: b.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &b)),
        })
        .await
        .unwrap()
        .into_inner();
    let (code, out) = verify_receipt(
        dir.path(),
        &rb.signed_receipt,
        &rb.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 0, "{out}");

    let sc = wait_final(&mut jobs, c).await;
    assert_eq!(state(&sc), v1::JobState::Succeeded);
    assert_eq!(sc.attempts, 1);

    let sd = jobs
        .get_job(v1::GetJobRequest {
            job_id: done.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &done)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&sd), v1::JobState::Succeeded);
    assert_eq!(sd.attempts, 1);
    let receipt_after = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: done.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &done)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt_after.signed_receipt, receipt_before.signed_receipt);
    assert_eq!(
        receipt_after.evidence_bundle,
        receipt_before.evidence_bundle
    );
    // The old receipt still verifies after the restart (its bundle was stored with it).
    let (code, out) = verify_receipt(
        dir.path(),
        &receipt_after.signed_receipt,
        &receipt_after.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_checkpoints_works() {
    let dir = state_dir();
    let marks = scratch();
    let mut agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "2"),
            ("SIGIL_AGENT_JOBS__SHUTDOWN_GRACE_SECS", "1"),
            ("SIGIL_AGENT_ISOLATION__NAMESPACE", "off"),
        ],
    );
    let mut jobs = agent.jobs().await;
    let key = buyer();
    let fail = job_id("term-fail");
    let rerun = job_id("term-rerun");
    let queued = job_id("term-queued");
    jobs.submit(signed(&key, &shell_job(fail, "exec sleep 120")))
        .await
        .unwrap();
    let mut r = shell_job(rerun, &second_time_lucky(marks.path(), "r"));
    r.on_restart = v1::RestartPolicy::Rerun as i32;
    jobs.submit(signed(&key, &r)).await.unwrap();
    jobs.submit(signed(&key, &shell_job(queued, "true")))
        .await
        .unwrap();
    wait_for(&mut jobs, fail, |s| state(s) == v1::JobState::Running).await;
    wait_for(&mut jobs, rerun, |s| state(s) == v1::JobState::Running).await;
    // An open event stream must not hold the shutdown up.
    let mut watch = jobs
        .watch(v1::WatchRequest {
            job_id: rerun.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &rerun)),
        })
        .await
        .unwrap()
        .into_inner();
    let watcher = tokio::spawn(async move {
        let mut last = None;
        loop {
            match watch.message().await {
                Ok(Some(ev)) => last = ev.status.map(|s| state(&s)),
                Ok(None) => return (last, None),
                Err(e) => return (last, Some(e.code())),
            }
        }
    });

    let status = agent.sigterm_and_wait();
    assert!(status.success(), "{status}\n{}", agent.log());
    // A clean stop leaves the store file complete on its own: the journal is retired by a
    // checkpoint at shutdown (what an older agent, which knows no journal, needs).
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("agent.redb"),
        alone.path().join("agent.redb"),
    )
    .unwrap();
    let store = enclave_agent::store::Store::open(&alone.path().join("agent.redb")).unwrap();
    let stored = |id: [u8; 32]| store.get(&id).unwrap().map(|r| r.state);
    use enclave_agent::job::JobState as S;
    assert_eq!(stored(fail), Some(S::Failed));
    assert_eq!(stored(rerun), Some(S::Queued));
    assert_eq!(stored(queued), Some(S::Queued));
    drop(store);

    let (last, err) = watcher.await.unwrap();
    // The stream ended with the shutdown. The checkpoint event (back to QUEUED) races the
    // server closing its streams, so the last streamed state is QUEUED or still RUNNING;
    // the durable state checked after the restart below is what must be exact.
    assert!(
        matches!(last, Some(v1::JobState::Queued | v1::JobState::Running)),
        "{last:?}"
    );
    assert!(
        matches!(err, Some(tonic::Code::Unavailable) | None),
        "{err:?}"
    );

    agent.restart();
    let mut jobs = agent.jobs().await;
    let sf = wait_final(&mut jobs, fail).await;
    assert_eq!(state(&sf), v1::JobState::Failed);
    assert_eq!(sf.reason, "stopped by agent shutdown");
    let sr = wait_final(&mut jobs, rerun).await;
    assert_eq!(
        state(&sr),
        v1::JobState::Succeeded,
        "{sr:?}\n{}",
        agent.log()
    );
    assert_eq!(sr.attempts, 2);
    let sq = wait_final(&mut jobs, queued).await;
    assert_eq!(state(&sq), v1::JobState::Succeeded);
    assert!(agent.log().contains("grace period over"));
}
