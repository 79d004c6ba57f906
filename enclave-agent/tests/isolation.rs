//! Hostile workloads against a real agent with isolation on: each is contained, reported
//! with a typed reason, the agent is unharmed and other jobs' results are unchanged.
//!
//! Isolation needs root (own user ids, cgroups, mount namespaces); run as another user these
//! tests say so and return (CI runs them as root).
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sigil_proto::v1;
use v1::job_service_client::JobServiceClient;

type Client = JobServiceClient<tonic::transport::Channel>;

fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("{test}: skipped, isolation needs root");
    false
}

async fn output(jobs: &mut Client, id: [u8; 32], path: &str) -> Option<Vec<u8>> {
    let mut s = jobs
        .get_output(v1::GetOutputRequest {
            job_id: id.to_vec(),
            kind: v1::OutputKind::File as i32,
            path: path.into(),
            offset: 0,
            auth: Some(output_auth(&buyer(), &id, v1::OutputKind::File, 0, path)),
        })
        .await
        .ok()?
        .into_inner();
    let mut data = Vec::new();
    while let Some(c) = s.message().await.unwrap() {
        data.extend(c.data);
    }
    Some(data)
}

fn text(b: Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
}

fn output_names(st: &v1::JobStatus) -> Vec<String> {
    st.outputs.iter().map(|o| o.path.clone()).collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state != Some("Z")
        })
        .unwrap_or(false)
}

fn with_limits(mut spec: v1::JobSpec, limits: v1::Limits) -> v1::JobSpec {
    spec.limits = Some(limits);
    spec
}

async fn run(jobs: &mut Client, spec: v1::JobSpec) -> v1::JobStatus {
    let id: [u8; 32] = spec.job_id.as_slice().try_into().unwrap();
    jobs.submit(signed(&buyer(), &spec)).await.unwrap();
    wait_final(jobs, id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_outlives_its_job_works() {
    if !root_or_skip("nothing_outlives_its_job_works") {
        return;
    }
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;

    // A new session, a double fork and a descendant holding stdout, all left running.
    let id = job_id("iso-outlive");
    let script = "setsid sh -c 'echo $$ > \"$SIGIL_OUTPUT_DIR/daemon\"; exec sleep 300' </dev/null >/dev/null 2>&1 & \
                  ( ( echo $$ >/dev/null; sh -c 'echo $$ > \"$SIGIL_OUTPUT_DIR/orphan\"; exec sleep 300' & ) & ) ; \
                  sleep 300 & \
                  sleep 0.5; echo done";
    let t = Instant::now();
    let st = run(&mut jobs, shell_job(id, script)).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    // The sleeper holding stdout did not keep the job alive (the bound is only liveness).
    assert!(t.elapsed() < Duration::from_secs(60));
    for name in ["daemon", "orphan"] {
        let pid: u32 = text(output(&mut jobs, id, name).await)
            .trim()
            .parse()
            .unwrap();
        assert!(!alive(pid), "{name} ({pid}) outlived its job");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_never_follow_links_works() {
    if !root_or_skip("outputs_never_follow_links_works") {
        return;
    }
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("iso-links");
    // Links to the shadow file, to the agent's store and to another job's directory; a
    // FIFO; a hard link attempt; and a process swapping a file for a link in a loop.
    let store = dir.path().join("agent.redb");
    let script = format!(
        "cd \"$SIGIL_OUTPUT_DIR\"; printf ok > real; \
         ln -s /etc/shadow shadow; ln -s {store} store; ln -s ../../ up; ln /etc/shadow hard 2>/dev/null; \
         mkfifo fifo; mkdir sub; ln -s /etc sub/etc; \
         (while :; do rm -f swap; ln -s /etc/shadow swap; rm -f swap; printf x > swap; done) & \
         sleep 0.3",
        store = store.display()
    );
    let st = run(&mut jobs, shell_job(id, &script)).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    let mut names = output_names(&st);
    names.retain(|n| n != "swap");
    assert_eq!(names, vec!["real".to_owned()], "{st:?}");
    let shadow = std::fs::read("/etc/shadow").unwrap_or_default();
    for o in output_names(&st) {
        let data = output(&mut jobs, id, &o).await.unwrap();
        assert!(shadow.is_empty() || data != shadow);
        // The swapping loop is killed with the job, possibly between creating `swap` and
        // writing to it: an empty file is what the job left, never the link's target.
        assert!(
            o == "real" || data == b"x" || data.is_empty(),
            "{o}: {data:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_cannot_reach_each_other_works() {
    if !root_or_skip("jobs_cannot_reach_each_other_works") {
        return;
    }
    // With the namespace, and with only the per-job user ids (namespace off).
    for namespace in ["auto", "off"] {
        let dir = state_dir();
        let agent = Agent::start(
            dir.path(),
            &[("SIGIL_AGENT_ISOLATION__NAMESPACE", namespace)],
        );
        let mut jobs = agent.jobs().await;
        let victim = job_id(&format!("iso-victim-{namespace}"));
        let attacker = job_id(&format!("iso-attacker-{namespace}"));
        let mut v = shell_job(
            victim,
            "sleep 3; cp \"$SIGIL_INPUT_DIR/secret\" \"$SIGIL_OUTPUT_DIR/result.txt\"",
        );
        v.inputs.push(v1::InputFile {
            path: "secret".into(),
            content: b"TOP-SECRET-INPUT".to_vec(),
        });
        jobs.submit(signed(&buyer(), &v)).await.unwrap();
        wait_for(&mut jobs, victim, |s| state(s) == v1::JobState::Running).await;
        let vroot = dir.path().join("jobs").join(hex::encode(victim));
        let script = format!(
            "o=\"$SIGIL_OUTPUT_DIR/found\"; : > \"$o\"; \
             cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep SIGIL_INPUT_DIR >> \"$o\"; \
             cat {v}/in/secret >> \"$o\" 2>/dev/null; \
             for f in /proc/*/root{v}/in/secret; do cat \"$f\" >> \"$o\" 2>/dev/null; done; \
             printf TAMPERED > {v}/out/result.txt 2>/dev/null; echo inject > {v}/out/extra 2>/dev/null; \
             cat {state}/agent.redb >> \"$o\" 2>/dev/null; \
             true",
            v = vroot.display(),
            state = dir.path().display(),
        );
        let sa = run(&mut jobs, shell_job(attacker, &script)).await;
        assert_eq!(state(&sa), v1::JobState::Succeeded, "{sa:?}");
        let found = text(output(&mut jobs, attacker, "found").await);
        assert!(!found.contains("TOP-SECRET"), "{namespace}: {found}");
        assert!(
            !found.contains(&hex::encode(victim)),
            "{namespace}: another job's directory was seen: {found}"
        );
        assert!(!found.contains("redb"), "{namespace}: the store was read");
        let sv = wait_final(&mut jobs, victim).await;
        assert_eq!(state(&sv), v1::JobState::Succeeded, "{sv:?}");
        assert_eq!(output_names(&sv), vec!["result.txt".to_owned()]);
        assert_eq!(
            output(&mut jobs, victim, "result.txt").await.unwrap(),
            b"TOP-SECRET-INPUT"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_files_and_devices_are_out_of_reach_works() {
    if !root_or_skip("agent_files_and_devices_are_out_of_reach_works") {
        return;
    }
    let dir = state_dir();
    let key_dir = tempfile::tempdir().unwrap();
    let key = key_dir.path().join("chain-key");
    std::fs::write(&key, "CHAIN-ACCOUNT-SECRET").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // Even readable by all, the hidden file is not readable by jobs.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(key_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hide = format!("[\"{}\"]", key.display());
    let agent = Agent::start(dir.path(), &[("SIGIL_AGENT_ISOLATION__HIDE", &hide)]);
    let mut jobs = agent.jobs().await;

    // The store is private to the agent.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("agent.redb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "agent.redb is {mode:o}");

    let id = job_id("iso-reach");
    let script = format!(
        "o=\"$SIGIL_OUTPUT_DIR\"; cat {key} > \"$o/key\" 2>&1; ls /dev > \"$o/dev\"; \
         ls {state} > \"$o/state\" 2>&1; (touch /usr/sigil-escape && echo WROTE || echo ro) > \"$o/usr\" 2>/dev/null; \
         id -u > \"$o/uid\"; id -G > \"$o/groups\"",
        key = key.display(),
        state = dir.path().display()
    );
    let st = run(&mut jobs, shell_job(id, &script)).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    let k = text(output(&mut jobs, id, "key").await);
    assert!(!k.contains("CHAIN-ACCOUNT-SECRET"), "{k}");
    let devs = text(output(&mut jobs, id, "dev").await);
    let devs: Vec<&str> = devs.split_whitespace().collect();
    for d in &devs {
        assert!(
            [
                "null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout",
                "stderr", "shm"
            ]
            .contains(d),
            "the job sees /dev/{d}"
        );
    }
    assert!(devs.contains(&"null"));
    let state_listing = text(output(&mut jobs, id, "state").await);
    assert!(!state_listing.contains("agent.redb"), "{state_listing}");
    assert_eq!(text(output(&mut jobs, id, "usr").await).trim(), "ro");
    assert!(!std::path::Path::new("/usr/sigil-escape").exists());
    let uid: u32 = text(output(&mut jobs, id, "uid").await)
        .trim()
        .parse()
        .unwrap();
    assert!((3_000_000..=3_065_535).contains(&uid), "uid {uid}");
    assert_eq!(
        text(output(&mut jobs, id, "groups").await).trim(),
        uid.to_string(),
        "supplementary groups were kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_contain_hostile_jobs_works() {
    if !root_or_skip("limits_contain_hostile_jobs_works") {
        return;
    }
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_JOBS__MAX_PIDS", "64"),
            ("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "4"),
        ],
    );
    let mut jobs = agent.jobs().await;

    // CPU time over two spinning processes: the sum is what counts.
    let spin = with_limits(
        shell_job(
            job_id("iso-spin"),
            "(while :; do :; done) & while :; do :; done",
        ),
        v1::Limits {
            cpu_time_ms: 1_000,
            wall_time_ms: 60_000,
            ..Default::default()
        },
    );
    let s = run(&mut jobs, spin).await;
    assert_eq!(state(&s), v1::JobState::Failed, "{s:?}");
    assert_eq!(s.reason, "CPU-time limit of 1000 ms reached");
    assert!(s.usage.as_ref().unwrap().cpu_ms >= 1_000, "{s:?}");

    // Memory: a process growing past the job's limit.
    let hog = with_limits(
        shell_job(
            job_id("iso-hog"),
            "head -c 400000000 /dev/zero | tail > /dev/null",
        ),
        v1::Limits {
            memory_bytes: 64 << 20,
            wall_time_ms: 60_000,
            ..Default::default()
        },
    );
    let s = run(&mut jobs, hog).await;
    assert_eq!(state(&s), v1::JobState::Failed, "{s:?}");
    assert_eq!(
        s.reason,
        format!("memory limit of {} bytes reached", 64 << 20)
    );
    assert!(s.usage.as_ref().unwrap().peak_memory_bytes <= 64 << 20);

    // A fork bomb: bounded by the pids limit, ended at its wall time, nothing left.
    let bomb = with_limits(
        shell_job(job_id("iso-bomb"), "b() { b | b & }; b; sleep 5; exit 3"),
        v1::Limits {
            wall_time_ms: 3_000,
            ..Default::default()
        },
    );
    let s = run(&mut jobs, bomb).await;
    assert_eq!(state(&s), v1::JobState::Failed, "{s:?}");
    assert!(
        s.reason == "wall-time limit of 3000 ms reached"
            || s.reason == "process limit of 64 reached",
        "{s:?}"
    );

    // The agent is unharmed: a plain job still runs, and reports its own usage (not the
    // agent's resident memory).
    let ok = run(
        &mut jobs,
        shell_job(job_id("iso-after"), "printf fine > \"$SIGIL_OUTPUT_DIR/r\""),
    )
    .await;
    assert_eq!(state(&ok), v1::JobState::Succeeded, "{ok:?}");
    assert_eq!(
        text(output(&mut jobs, job_id("iso-after"), "r").await),
        "fine"
    );
    let peak = ok.usage.as_ref().unwrap().peak_memory_bytes;
    assert!(peak > 0 && peak < 32 << 20, "peak {peak}");
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_limit_contains_a_filling_job_works() {
    if !root_or_skip("disk_limit_contains_a_filling_job_works") {
        return;
    }
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[("SIGIL_AGENT_JOBS__MAX_DISK_BYTES", "8388608")],
    );
    let mut jobs = agent.jobs().await;
    let fill = with_limits(
        shell_job(
            job_id("iso-fill"),
            "cd \"$HOME\"; i=0; while [ $i -lt 64 ]; do head -c 1048576 /dev/urandom > f$i; i=$((i+1)); done; sleep 60",
        ),
        v1::Limits {
            wall_time_ms: 120_000,
            ..Default::default()
        },
    );
    let s = run(&mut jobs, fill).await;
    assert_eq!(state(&s), v1::JobState::Failed, "{s:?}");
    assert_eq!(s.reason, "disk limit of 8388608 bytes reached", "{s:?}");
    // Within its limit a job runs as before.
    let ok = run(
        &mut jobs,
        shell_job(
            job_id("iso-fill-ok"),
            "head -c 1048576 /dev/urandom > \"$SIGIL_OUTPUT_DIR/one\"",
        ),
    )
    .await;
    assert_eq!(state(&ok), v1::JobState::Succeeded, "{ok:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn io_bandwidth_is_limited_works() {
    if !root_or_skip("io_bandwidth_is_limited_works") {
        return;
    }
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[("SIGIL_AGENT_JOBS__IO_BYTES_PER_SEC", "1048576")],
    );
    let mut jobs = agent.jobs().await;
    // The job reads its own limit back from its cgroup (v1 blkio or v2 io.max).
    let id = job_id("iso-io");
    let script = "o=\"$SIGIL_OUTPUT_DIR/limit\"; \
        b=$(sed -n 's/^[0-9]*:blkio://p' /proc/self/cgroup); \
        u=$(sed -n 's/^0:://p' /proc/self/cgroup); \
        if [ -n \"$b\" ]; then cat /sys/fs/cgroup/blkio$b/blkio.throttle.write_bps_device > \"$o\"; \
        else cat /sys/fs/cgroup$u/io.max > \"$o\"; fi";
    let st = run(&mut jobs, shell_job(id, script)).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    let limit = text(output(&mut jobs, id, "limit").await);
    // On a state directory without a block device (tmpfs) there is nothing to limit.
    let on_disk = {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
        std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists()
    };
    if on_disk {
        assert!(limit.contains("1048576"), "{limit:?}");
    }
}
