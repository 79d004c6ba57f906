//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::HashMap;

use prost::Message;
use sigil_proto::v1;

use super::spec::{Capabilities, SpecError, validate};
use super::*;
use crate::config::{Config, ContainerConfig, ContainerEngine};

fn caps() -> Capabilities {
    Capabilities {
        agent_key: [7; 32],
        has_tee: true,
        gpus: 2,
        containers: true,
        default_evidence: super::spec::Evidence::AttestedKey,
    }
}

fn process_spec(argv: &[&str]) -> v1::JobSpec {
    v1::JobSpec {
        job_id: vec![1; 32],
        tier: 3,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: HashMap::new(),
        })),
        ..Default::default()
    }
}

fn plan_of(spec: &v1::JobSpec) -> Result<JobPlan, SpecError> {
    validate(
        &spec.encode_to_vec(),
        &Config::default().jobs,
        &caps(),
        1_000,
    )
}

#[test]
fn validate_works() {
    let mut s = process_spec(&["/bin/echo", "hi"]);
    s.inputs.push(v1::InputFile {
        path: "./a/b.txt".into(),
        content: b"x".to_vec(),
    });
    s.on_restart = v1::RestartPolicy::Rerun as i32;
    let p = plan_of(&s).unwrap();
    assert_eq!(p.tier, 3);
    assert_eq!(p.evidence, spec::Evidence::AttestedKey);
    assert_eq!(p.inputs[0].0, PathBuf::from("a/b.txt"));
    assert!(p.rerun_on_restart);
    assert_eq!(
        p.limits.wall_time_ms,
        Config::default().jobs.default_wall_time_ms
    );
    let mut t1 = process_spec(&["x"]);
    t1.tier = 1;
    assert_eq!(plan_of(&t1).unwrap().evidence, spec::Evidence::None);
}

#[test]
fn validate_rejects() {
    let base = process_spec(&["/bin/true"]);
    type Case = (v1::JobSpec, fn(&SpecError) -> bool);
    let cases: Vec<Case> = vec![
        (
            {
                let mut s = base.clone();
                s.job_id = vec![1; 31];
                s
            },
            |e| matches!(e, SpecError::JobId(31)),
        ),
        (
            {
                let mut s = base.clone();
                s.tier = 4;
                s
            },
            |e| matches!(e, SpecError::Tier(4)),
        ),
        (
            {
                let mut s = base.clone();
                s.workload = None;
                s
            },
            |e| matches!(e, SpecError::NoWorkload),
        ),
        (process_spec(&[]), |e| matches!(e, SpecError::Argv(_))),
        (process_spec(&["a\0b"]), |e| matches!(e, SpecError::Argv(_))),
        (
            {
                let mut s = base.clone();
                s.inputs.push(v1::InputFile {
                    path: "../x".into(),
                    content: vec![],
                });
                s
            },
            |e| matches!(e, SpecError::InputPath { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.inputs.push(v1::InputFile {
                    path: "/etc/x".into(),
                    content: vec![],
                });
                s
            },
            |e| matches!(e, SpecError::InputPath { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.inputs.push(v1::InputFile {
                    path: "a".into(),
                    content: vec![],
                });
                s.inputs.push(v1::InputFile {
                    path: "./a".into(),
                    content: vec![],
                });
                s
            },
            |e| matches!(e, SpecError::InputPath { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.limits = Some(v1::Limits {
                    wall_time_ms: u64::MAX,
                    ..Default::default()
                });
                s
            },
            |e| matches!(e, SpecError::LimitTooHigh { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.provider = vec![8; 32];
                s
            },
            |e| matches!(e, SpecError::WrongProvider(_)),
        ),
        (
            {
                let mut s = base.clone();
                s.not_after_ms = 999;
                s
            },
            |e| matches!(e, SpecError::Expired { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.gpu_count = 3;
                s
            },
            |e| matches!(e, SpecError::NotEnoughGpus { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.evidence_mode = v1::EvidenceMode::None as i32;
                s
            },
            |e| matches!(e, SpecError::EvidenceMode { .. }),
        ),
        (
            {
                let mut s = base.clone();
                if let Some(v1::job_spec::Workload::Process(p)) = &mut s.workload {
                    p.env.insert("SIGIL_JOB_ID".into(), "x".into());
                }
                s
            },
            |e| matches!(e, SpecError::Env { .. }),
        ),
        (
            {
                let mut s = base.clone();
                s.workload = Some(v1::job_spec::Workload::Container(v1::ContainerWorkload {
                    image: "docker.io/library/alpine:3.20".into(),
                    ..Default::default()
                }));
                s
            },
            |e| matches!(e, SpecError::ImageNotPinned(_)),
        ),
    ];
    for (i, (s, check)) in cases.into_iter().enumerate() {
        let e = plan_of(&s).unwrap_err();
        assert!(check(&e), "case {i}: {e}");
    }
    assert!(matches!(
        validate(b"\xff\xff\xff", &Config::default().jobs, &caps(), 0),
        Err(SpecError::Decode(_))
    ));
    let mut no_tee = caps();
    no_tee.has_tee = false;
    assert!(matches!(
        validate(&base.encode_to_vec(), &Config::default().jobs, &no_tee, 0),
        Err(SpecError::EvidenceMode { .. })
    ));
}

#[test]
fn image_pinning_works() {
    let d = "0".repeat(64);
    assert!(spec::image_is_pinned(&format!("ghcr.io/a/b@sha256:{d}")));
    assert!(spec::image_is_pinned(&format!("alpine:3@sha256:{d}")));
    assert!(!spec::image_is_pinned(&format!("@sha256:{d}")));
    assert!(!spec::image_is_pinned(&format!("-x@sha256:{d}")));
    assert!(!spec::image_is_pinned(&format!(
        "a@sha256:{}",
        "A".repeat(64)
    )));
    assert!(!spec::image_is_pinned(&format!("a b@sha256:{d}")));
    assert!(!spec::image_is_pinned("a@sha256:abc"));
    assert!(!spec::image_is_pinned(&format!("a@sha512:{d}")));
}

fn container_plan(engine: ContainerEngine, gpus: &[Gpu]) -> Vec<String> {
    let cfg = ContainerConfig {
        engine: Some(engine),
        ..ContainerConfig::default()
    };
    let mut env = BTreeMap::new();
    env.insert("SIGIL_JOB_ID".to_string(), "ab".to_string());
    env.insert("MODEL".to_string(), "x y".to_string());
    let limits = spec::Limits {
        wall_time_ms: 1000,
        cpu_time_ms: 1500,
        memory_bytes: 1 << 30,
        output_bytes: 4096,
    };
    let args = vec!["--flag".to_string(), "v".to_string()];
    let image = format!("reg/img@sha256:{}", "a".repeat(64));
    container::run_args(&container::ContainerRun {
        engine,
        config: &cfg,
        name: "sigil-ab",
        image: &image,
        args: &args,
        env: &env,
        input_dir: Path::new("/s/in"),
        output_dir: Path::new("/s/out"),
        gpus,
        limits: &limits,
        job_hex: "ab",
    })
}

#[test]
fn container_command_works() {
    let gpus = [
        Gpu {
            index: 1,
            uuid: Some("GPU-1".into()),
            minor: Some(1),
        },
        Gpu {
            index: 3,
            uuid: None,
            minor: None,
        },
    ];
    let docker = container_plan(ContainerEngine::Docker, &gpus);
    let image = format!("reg/img@sha256:{}", "a".repeat(64));
    let expected: Vec<String> = [
        "run",
        "--rm",
        "--name",
        "sigil-ab",
        "--label",
        "sigil.job=ab",
        "--pull",
        "missing",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "none",
        "--volume",
        "/s/in:/sigil/in:ro",
        "--volume",
        "/s/out:/sigil/out:rw",
        "--memory",
        "1073741824",
        "--ulimit",
        "fsize=4096:4096",
        "--ulimit",
        "cpu=2:2",
        "--gpus",
        "\"device=1,3\"",
        "--env",
        "MODEL=x y",
        "--env",
        "SIGIL_JOB_ID=ab",
        &image,
        "--flag",
        "v",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(docker, expected);
    let podman = container_plan(ContainerEngine::Podman, &gpus);
    let devs: Vec<&String> = podman
        .iter()
        .filter(|a| a.starts_with("nvidia.com/gpu="))
        .collect();
    assert_eq!(devs, ["nvidia.com/gpu=1", "nvidia.com/gpu=3"]);
    assert!(!podman.iter().any(|a| a == "--gpus"));
    let none = container_plan(ContainerEngine::Nerdctl, &[]);
    assert!(!none.iter().any(|a| a == "--gpus" || a == "--device"));
    assert_eq!(container::remove_args("n"), ["rm", "--force", "n"]);
}

#[test]
fn rlimit_args_works() {
    let mut s = process_spec(&["x"]);
    s.limits = Some(v1::Limits {
        wall_time_ms: 0,
        cpu_time_ms: 2001,
        memory_bytes: 1 << 20,
        output_bytes: 10,
    });
    let p = plan_of(&s).unwrap();
    assert_eq!(rlimit_args(&p), ["--as=1048576", "--cpu=3", "--fsize=10"]);
}

struct Fixture {
    _dir: tempfile::TempDir,
    cfg: Config,
    dirs: JobDirs,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        state_dir: dir.path().to_owned(),
        ..Config::default()
    };
    cfg.jobs.kill_grace_ms = 200;
    let dirs = JobDirs::new(&crate::config::work_dir(&cfg.state_dir), "job");
    Fixture {
        _dir: dir,
        cfg,
        dirs,
    }
}

async fn run_plan(f: &Fixture, plan: &JobPlan, stop: &StopSignal) -> RunOutcome {
    try_run_plan(f, plan, stop, None).await.unwrap()
}

/// Runs `plan`, with its limits set through `prlimit` (util-linux) if given, else with
/// prlimit(2) after the spawn (the default).
async fn try_run_plan(
    f: &Fixture,
    plan: &JobPlan,
    stop: &StopSignal,
    prlimit: Option<&Path>,
) -> Result<RunOutcome, RunError> {
    prepare(&f.dirs, plan, Owner::Agent).unwrap();
    let req = RunRequest {
        plan,
        jobs: &f.cfg.jobs,
        container: &f.cfg.container,
        dirs: &f.dirs,
        gpus: &[],
        stop,
        run_as: None,
        prlimit,
        container_cli: None,
        isolated: None,
        secret_env: &[],
    };
    run(&req, |h| write_pid_file(&f.dirs, h)).await
}

#[tokio::test]
async fn process_runs_and_collects_works() {
    let f = fixture();
    let mut s = process_spec(&[
        "/bin/sh",
        "-c",
        "cat \"$SIGIL_INPUT_DIR/in.txt\" > \"$SIGIL_OUTPUT_DIR/copy\"; mkdir -p \"$SIGIL_OUTPUT_DIR/d\"; \
         printf z > \"$SIGIL_OUTPUT_DIR/d/z\"; ln -s /etc/passwd \"$SIGIL_OUTPUT_DIR/link\"; \
         echo out; echo err >&2; echo \"$FOO\"; exit 3",
    ]);
    if let Some(v1::job_spec::Workload::Process(p)) = &mut s.workload {
        p.env.insert("FOO".into(), "bar".into());
    }
    s.inputs.push(v1::InputFile {
        path: "in.txt".into(),
        content: b"payload".to_vec(),
    });
    s.limits = Some(v1::Limits {
        memory_bytes: 1 << 30,
        output_bytes: 1 << 20,
        ..Default::default()
    });
    let plan = plan_of(&s).unwrap();
    let out = run_plan(&f, &plan, &StopSignal::new()).await;
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stop, None);
    assert_eq!(out.stdout, b"out\nbar\n");
    assert_eq!(out.stderr, b"err\n");
    assert!(out.usage.peak_memory_bytes > 0);
    assert!(out.finished_at_ms >= out.started_at_ms);
    let files = collect_outputs(&f.dirs.output, 1 << 20, 100).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    // The symlink is not an output.
    assert_eq!(names, ["copy", "d/z"]);
    assert_eq!(files[0].1, b"payload");
    let pid = read_pid_file(&f.dirs).unwrap();
    assert!(pid.pid > 0);
    assert!(matches!(
        collect_outputs(&f.dirs.output, 7, 100),
        Err(OutputError::TooLarge { cap: 7 })
    ));
}

#[tokio::test]
async fn wall_time_limit_works() {
    let f = fixture();
    let mut s = process_spec(&["/bin/sh", "-c", "sleep 30 & sleep 30"]);
    s.limits = Some(v1::Limits {
        wall_time_ms: 300,
        ..Default::default()
    });
    let plan = plan_of(&s).unwrap();
    let t = std::time::Instant::now();
    let out = run_plan(&f, &plan, &StopSignal::new()).await;
    assert_eq!(out.stop, Some(Stop::WallTime));
    assert_eq!(out.exit_code, -15);
    // Generous bound: this checks that the job was stopped, not how fast.
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn cancel_works() {
    let f = fixture();
    let plan = plan_of(&process_spec(&["/bin/sh", "-c", "trap '' TERM; sleep 30"])).unwrap();
    let stop = StopSignal::new();
    let s2 = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        s2.stop(Stop::Cancelled);
    });
    let out = run_plan(&f, &plan, &stop).await;
    assert_eq!(out.stop, Some(Stop::Cancelled));
    // TERM is ignored by the shell: the group is killed after the grace period.
    assert_eq!(out.exit_code, -9);
}

#[tokio::test]
async fn memory_limit_works() {
    let f = fixture();
    // 64 MiB address space is too little for this allocation.
    let mut s = process_spec(&[
        "/bin/sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    s.limits = Some(v1::Limits {
        memory_bytes: 64 << 20,
        ..Default::default()
    });
    let plan = plan_of(&s).unwrap();
    // Set after the spawn (the default), and through util-linux prlimit where installed.
    let out = run_plan(&f, &plan, &StopSignal::new()).await;
    assert_ne!(out.exit_code, 0, "{out:?}");
    if let Some(p) = which("prlimit", &f.cfg.jobs.path) {
        let out = try_run_plan(&f, &plan, &StopSignal::new(), Some(&p))
            .await
            .unwrap();
        assert_ne!(out.exit_code, 0, "{out:?}");
    }
}

#[tokio::test]
async fn limits_are_set_on_the_workload_works() {
    let f = fixture();
    // The workload reports its own limits (after a pause: a program that ends within
    // microseconds of its exec may end before the limits are set on it).
    let mut s = process_spec(&["/bin/sh", "-c", "sleep 0.3; exec cat /proc/self/limits"]);
    s.limits = Some(v1::Limits {
        memory_bytes: 512 << 20,
        cpu_time_ms: 2_500,
        output_bytes: 1 << 20,
        ..Default::default()
    });
    let plan = plan_of(&s).unwrap();
    let out = run_plan(&f, &plan, &StopSignal::new()).await;
    assert_eq!(out.exit_code, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    let limit = |name: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect()
    };
    // Soft and hard; CPU seconds rounded up.
    assert_eq!(limit("Max address space"), ["536870912", "536870912"]);
    assert_eq!(limit("Max cpu time"), ["3", "3"]);
    assert_eq!(limit("Max file size"), ["1048576", "1048576"]);
}

#[test]
fn memory_limit_escape_rejects() {
    // A workload that already has more address space than its limit when the limit is set
    // (as if it had mapped it in the window after its exec) is refused.
    let mut child = std::process::Command::new("/bin/sleep")
        .arg("5")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let limits = spec::Limits {
        wall_time_ms: 1_000,
        cpu_time_ms: 0,
        memory_bytes: 64 << 10,
        output_bytes: 1 << 20,
    };
    let r = apply_rlimits(child.id(), &limits);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        matches!(r, Err(RunError::LimitEscaped { peak, limit }) if limit == 64 << 10 && peak > limit),
        "{r:?}"
    );
    // Within the limit: set, and accepted.
    let mut child = std::process::Command::new("/bin/sleep")
        .arg("5")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let limits = spec::Limits {
        memory_bytes: 1 << 40,
        ..limits
    };
    let r = apply_rlimits(child.id(), &limits);
    let text = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    r.unwrap();
    assert!(text.contains("1099511627776"), "{text}");
    // A workload that has already exited (a zombie) has nothing left to limit.
    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    apply_rlimits(child.id(), &limits).unwrap();
    child.wait().unwrap();
}

#[test]
fn peak_address_space_works() {
    let me = std::process::id();
    assert!(peak_address_space(me).unwrap() > 1 << 20);
    // No such process.
    assert_eq!(peak_address_space(u32::MAX), None);
}

#[tokio::test]
async fn missing_program_rejects() {
    let f = fixture();
    let plan = plan_of(&process_spec(&["/nonexistent/program"])).unwrap();
    prepare(&f.dirs, &plan, Owner::Agent).unwrap();
    let stop = StopSignal::new();
    let req = RunRequest {
        plan: &plan,
        jobs: &f.cfg.jobs,
        container: &f.cfg.container,
        dirs: &f.dirs,
        gpus: &[],
        stop: &stop,
        run_as: None,
        prlimit: None,
        container_cli: None,
        isolated: None,
        secret_env: &[],
    };
    assert!(matches!(
        run(&req, |_| {}).await,
        Err(RunError::Spawn { .. })
    ));
}

#[test]
fn read_capped_works() {
    let data = vec![1u8; 100_000];
    assert_eq!(read_capped(&data[..], 10), vec![1u8; 10]);
    assert_eq!(read_capped(&data[..], 1 << 20).len(), 100_000);
}

#[test]
fn start_ticks_works() {
    let me = std::process::id();
    let t = process_start_ticks(me).unwrap();
    assert!(t > 0);
    assert_eq!(process_start_ticks(me), Some(t));
    assert!(!kill_orphan(ProcessHandle {
        pid: me,
        start_ticks: t.wrapping_add(1)
    }));
}

#[tokio::test]
async fn cpu_time_is_metered_works() {
    let f = fixture();
    // A shell busy loop: CPU time of the workload (and of the children it waited for).
    let plan = plan_of(&process_spec(&[
        "/bin/sh",
        "-c",
        "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done",
    ]))
    .unwrap();
    let out = run_plan(&f, &plan, &StopSignal::new()).await;
    assert_eq!(out.exit_code, 0);
    assert!(out.usage.cpu_ms > 20, "{:?}", out.usage);
    assert!(out.usage.wall_ms >= out.usage.cpu_ms / 2, "{:?}", out.usage);
}

#[test]
fn gpu_devices_are_the_jobs_own_works() {
    assert!(gpu_device_paths(&[]).is_empty(), "no GPU, no NVIDIA node");
    let gpus = [
        Gpu {
            index: 0,
            uuid: None,
            minor: Some(5),
        },
        Gpu {
            index: 2,
            uuid: None,
            minor: None,
        },
    ];
    let paths: Vec<String> = gpu_device_paths(&gpus)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/dev/nvidia5",
            "/dev/nvidia2",
            "/dev/nvidiactl",
            "/dev/nvidia-uvm",
            "/dev/nvidia-uvm-tools"
        ]
    );
}
