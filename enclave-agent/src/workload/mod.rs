//! Running a job's workload: job directories, the child process, limits, cancellation,
//! logs and output collection.
//!
//! # Limits without `unsafe`
//!
//! The workspace forbids `unsafe_code`, so the agent cannot call `setrlimit` in the child
//! between `fork` and `exec` (`Command::pre_exec` is unsafe). RLIMIT_AS (memory), RLIMIT_CPU
//! (CPU time) and RLIMIT_FSIZE (size of every file the job writes, set to the output cap)
//! are applied in one of two ways:
//!
//! * By default, with `prlimit(2)` (the `rlimit` crate) on the child right after `spawn`
//!   returns. `spawn` returns once the workload's `exec` has succeeded, so the workload
//!   runs without its limits for the few microseconds between its `exec` and the three
//!   `prlimit` calls (a dynamically linked program is still in its loader then). Why that
//!   window is harmless, limit by limit:
//!   - CPU time: RLIMIT_CPU is checked against the process's total CPU time, including the
//!     time spent before the limit was set; nothing escapes it.
//!   - Memory: a mapping made in the window would outlive the limit, so the limit is
//!     guarded: once it is set, the process's peak address-space size (`VmPeak` in
//!     `/proc/<pid>/status`) is checked against it, and a workload that went over in the
//!     window is killed and the job fails ([`RunError::LimitEscaped`]). A workload that
//!     passes the check has stayed within the limit since its `exec`, as if the limit had
//!     been set before.
//!   - File size: a write in the window is not checked against RLIMIT_FSIZE; it is bounded
//!     by what a process can write in microseconds, the collected outputs are held to
//!     the job's cap again when they are read, and the workload can write only to its job
//!     directory and the agent's private `/tmp` (systemd unit).
//!
//!   `prlimit(2)` on another process needs the same user and group ids or
//!   CAP_SYS_RESOURCE: when workloads run as `jobs.run_as` and the agent lacks that
//!   capability, the agent uses util-linux `prlimit` below instead. A limit that cannot be
//!   set fails the job (the workload is killed): a job never runs without its limits.
//! * With `jobs.prlimit` set to util-linux `prlimit`, the workload is run as
//!   `prlimit --as=N --cpu=N --fsize=N -- argv...`, which sets the limits on itself and
//!   `exec`s the workload: no window, same pid (so `wait4` still measures the workload),
//!   at the cost of a second `exec` (about 0.7 ms per job on the machine of the figures in
//!   `docs/agent.md`).
//! * Wall time is enforced by the agent: SIGTERM to the job's process group, then SIGKILL
//!   after `jobs.kill_grace_ms`.
//! * The workload is its own process group (`Command::process_group`, safe), so stopping it
//!   stops everything it started; it runs as `jobs.run_as` (`Command::uid/gid`, safe) so it
//!   cannot read the agent's memory or key.
//!
//! All of the above is the path with `isolation.mode = "off"` (development). With isolation
//! on (the default), a process job runs under its own user id, in its own cgroup and mount
//! namespace, started through the launcher (see [`isolate`]): its limits are set before
//! its first instruction, its CPU time is summed over all its processes, its usage is the
//! cgroup's, and its end kills every process it had.

pub mod container;
pub mod isolate;
pub mod jobfs;
pub mod spec;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;
use wait4::Wait4;

use crate::config::{ContainerConfig, JobsConfig};
use crate::job::ProcessHandle;
use crate::metering::{self, ProcessUsage};
use isolate::{CgroupLimits, Isolation, JobCgroup, LaunchSpec, NamespaceSpec, Rlimits};
pub use jobfs::{OutputError, Owner};
use spec::{JobPlan, Workload};

/// Where a process workload finds its inputs (environment variable).
pub const ENV_INPUT_DIR: &str = "SIGIL_INPUT_DIR";
/// Where a process workload writes its outputs (environment variable).
pub const ENV_OUTPUT_DIR: &str = "SIGIL_OUTPUT_DIR";
/// The job id in hex (environment variable).
pub const ENV_JOB_ID: &str = "SIGIL_JOB_ID";

/// A GPU assigned to a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpu {
    /// NVML index.
    pub index: u32,
    /// `GPU-...` UUID, when known.
    pub uuid: Option<String>,
    /// The driver's minor number (`/dev/nvidia<minor>`), when known.
    pub minor: Option<u32>,
}

/// Why a workload could not be run (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A job directory or input file could not be written.
    #[error("preparing {path}: {source}")]
    Prepare {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Waiting for the child failed.
    #[error("waiting for the workload: {0}")]
    Wait(std::io::Error),
    /// A blocking helper task died.
    #[error("internal task failed: {0}")]
    Task(String),
    /// Container workloads are not configured.
    #[error("no container engine is configured")]
    NoEngine,
    /// A resource limit could not be set on the started workload (it was killed).
    #[error("setting {resource} on the workload: {source}")]
    Limit {
        /// Which limit.
        resource: &'static str,
        /// The error from `prlimit(2)`.
        source: std::io::Error,
    },
    /// The job's cgroup could not be set up.
    #[error("setting up the job's cgroup: {0}")]
    Cgroup(#[from] isolate::CgroupError),
    /// The launcher failed before the workload started (its own message).
    #[error("isolating the job: {0}")]
    Launch(String),
    /// The workload mapped more address space than its memory limit before the limit was
    /// set on it (it was killed).
    #[error(
        "workload reached {peak} bytes of address space, over its memory limit of {limit} bytes"
    )]
    LimitEscaped {
        /// Peak address-space size, bytes.
        peak: u64,
        /// The limit, bytes.
        limit: u64,
    },
}

/// Why a workload was stopped by the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The buyer cancelled the job.
    Cancelled,
    /// The agent is shutting down.
    Shutdown,
    /// The wall-time limit was reached.
    WallTime,
    /// The job's CPU time (all its processes) reached its limit.
    CpuTime,
    /// The job's directory grew past `jobs.max_disk_bytes`.
    Disk,
}

/// A stop request: the reason is set before the token is cancelled.
#[derive(Clone, Debug, Default)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Arc<std::sync::OnceLock<Stop>>,
}

impl StopSignal {
    /// A fresh signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests a stop (the first reason wins).
    pub fn stop(&self, reason: Stop) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// The reason, once stopped.
    pub fn reason(&self) -> Option<Stop> {
        self.reason.get().copied()
    }

    async fn stopped(&self) {
        self.token.cancelled().await;
    }
}

/// A job's directories for one attempt.
#[derive(Clone, Debug)]
pub struct JobDirs {
    /// The attempt's root.
    pub root: PathBuf,
    /// Inputs (read-only for containers).
    pub input: PathBuf,
    /// Outputs, collected at the end.
    pub output: PathBuf,
    /// Working directory and HOME.
    pub work: PathBuf,
}

impl JobDirs {
    /// The directories of `job_hex` under `base`.
    pub fn new(base: &Path, job_hex: &str) -> Self {
        let root = base.join(job_hex);
        Self {
            input: root.join("in"),
            output: root.join("out"),
            work: root.join("work"),
            root,
        }
    }

    /// File recording the running process (see [`write_pid_file`]).
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("pid")
    }
}

/// User the workload runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Exit code; negative: killed by that signal.
    pub exit_code: i32,
    /// Set when the agent stopped the workload.
    pub stop: Option<Stop>,
    /// Unix ms at spawn.
    pub started_at_ms: u64,
    /// Unix ms at exit.
    pub finished_at_ms: u64,
    /// Measured usage.
    pub usage: ProcessUsage,
    /// Captured stdout (capped).
    pub stdout: Vec<u8>,
    /// Captured stderr (capped).
    pub stderr: Vec<u8>,
    /// Processes the OOM killer ended at the job's memory limit (isolated jobs).
    pub oom_kills: u64,
    /// Forks refused at the job's process limit (isolated jobs).
    pub pids_refused: u64,
}

/// Everything needed to run one attempt.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The validated job.
    pub plan: &'a JobPlan,
    /// The `[jobs]` section.
    pub jobs: &'a JobsConfig,
    /// The `[container]` section.
    pub container: &'a ContainerConfig,
    /// The attempt's directories (prepared by [`prepare`]).
    pub dirs: &'a JobDirs,
    /// GPUs assigned.
    pub gpus: &'a [Gpu],
    /// Stop request.
    pub stop: &'a StopSignal,
    /// Run as this user (process workloads), if set.
    pub run_as: Option<RunAs>,
    /// util-linux `prlimit` to `exec` the workload through, if configured; otherwise the
    /// limits are set with `prlimit(2)` after the spawn (see the module documentation).
    pub prlimit: Option<&'a Path>,
    /// Container CLI, if configured.
    pub container_cli: Option<&'a Path>,
    /// Isolation of a process job (`None` with `isolation.mode = "off"`).
    pub isolated: Option<Isolated<'a>>,
    /// Secret environment values (opened from the buyer's sealed secrets). Process jobs get
    /// them in their environment; container jobs through the container CLI's environment
    /// (`--env NAME`), never on a command line.
    pub secret_env: &'a [(String, zeroize::Zeroizing<String>)],
}

/// How one process job is isolated.
#[derive(Clone, Copy, Debug)]
pub struct Isolated<'a> {
    /// What the agent can do.
    pub isolation: &'a Isolation,
    /// The job's leased user and group id.
    pub id: u32,
}

/// Creates fresh directories for an attempt, writes the inputs and sets ownership (see
/// [`jobfs`]). Blocking.
pub fn prepare(dirs: &JobDirs, plan: &JobPlan, owner: Owner) -> Result<(), RunError> {
    jobfs::prepare(dirs, &plan.inputs, owner).map_err(|e| RunError::Prepare {
        path: dirs.root.join(&e.path),
        source: e.source,
    })
}

/// [`prepare`] with a job's opened secret files, on a private tmpfs of `private` bytes when
/// given (see [`jobfs::prepare_with`]). Blocking.
pub fn prepare_private(
    dirs: &JobDirs,
    plan: &JobPlan,
    owner: Owner,
    secrets: &[(PathBuf, zeroize::Zeroizing<Vec<u8>>)],
    private: Option<u64>,
) -> Result<(), RunError> {
    jobfs::prepare_with(dirs, &plan.inputs, secrets, owner, private).map_err(|e| {
        RunError::Prepare {
            path: dirs.root.join(&e.path),
            source: e.source,
        }
    })
}

/// Removes a finished job's directory (unmounting it first where it is a mount), without
/// following the links a job may have left in it.
pub fn remove_job_dir(dirs: &JobDirs) -> Result<(), RunError> {
    wipe_private(dirs)
}

/// Unmounts and removes a job's private directory (see [`jobfs::wipe_private`]). Blocking.
pub fn wipe_private(dirs: &JobDirs) -> Result<(), RunError> {
    jobfs::wipe_private(dirs).map_err(|e| RunError::Prepare {
        path: e.path,
        source: e.source,
    })
}

/// A job's secrets, opened for its start: files for its input directory and environment
/// values. Zeroed when dropped; `Debug` names them only.
#[derive(Default)]
pub struct OpenedSecrets {
    /// Input files: path under the input directory and content.
    pub files: Vec<(PathBuf, zeroize::Zeroizing<Vec<u8>>)>,
    /// Environment values.
    pub env: Vec<(String, zeroize::Zeroizing<String>)>,
}

impl std::fmt::Debug for OpenedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSecrets")
            .field(
                "files",
                &self.files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("env", &self.env.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish()
    }
}

/// Environment given to every workload on top of its spec's.
fn base_env(req: &RunRequest<'_>, input: &str, output: &str) -> BTreeMap<String, String> {
    let mut env = req.plan.env.clone();
    env.insert(ENV_JOB_ID.into(), hex::encode(req.plan.job_id));
    env.insert(ENV_INPUT_DIR.into(), input.into());
    env.insert(ENV_OUTPUT_DIR.into(), output.into());
    if !req.gpus.is_empty() {
        let list: Vec<String> = req
            .gpus
            .iter()
            .map(|g| g.uuid.clone().unwrap_or_else(|| g.index.to_string()))
            .collect();
        env.insert("CUDA_VISIBLE_DEVICES".into(), list.join(","));
    } else {
        // No GPU assigned: hide any the VM has.
        env.insert("CUDA_VISIBLE_DEVICES".into(), String::new());
    }
    env
}

/// `prlimit` arguments for the plan's limits (empty when there are none).
pub fn rlimit_args(plan: &JobPlan) -> Vec<String> {
    let l = &plan.limits;
    let mut a = Vec::new();
    if l.memory_bytes != 0 {
        a.push(format!("--as={}", l.memory_bytes));
    }
    if l.cpu_time_ms != 0 {
        a.push(format!("--cpu={}", l.cpu_time_ms.div_ceil(1000)));
    }
    if l.output_bytes != 0 {
        a.push(format!("--fsize={}", l.output_bytes));
    }
    a
}

/// The command to spawn, and the container name for container workloads.
pub fn build_command(req: &RunRequest<'_>) -> Result<(Command, Option<String>), RunError> {
    let dirs = req.dirs;
    match &req.plan.workload {
        Workload::Process { argv } => {
            let env = base_env(
                req,
                &dirs.input.to_string_lossy(),
                &dirs.output.to_string_lossy(),
            );
            let limits = rlimit_args(req.plan);
            let (program, args): (String, Vec<String>) = match (req.prlimit, limits.is_empty()) {
                (Some(p), false) => {
                    let mut a = limits;
                    a.push("--".into());
                    a.extend(argv.iter().cloned());
                    (p.to_string_lossy().into_owned(), a)
                }
                _ => {
                    let mut it = argv.iter().cloned();
                    let program = it.next().unwrap_or_default();
                    (program, it.collect())
                }
            };
            let mut cmd = Command::new(program);
            cmd.args(args)
                .env_clear()
                .env("PATH", &req.jobs.path)
                .env("HOME", &dirs.work)
                .envs(&env)
                .envs(req.secret_env.iter().map(|(k, v)| (k, v.as_str())))
                .current_dir(&dirs.work);
            if let Some(u) = req.run_as {
                std::os::unix::process::CommandExt::uid(&mut cmd, u.uid);
                std::os::unix::process::CommandExt::gid(&mut cmd, u.gid);
            }
            Ok((cmd, None))
        }
        Workload::Container { image, args } => {
            let engine = req.container.engine.ok_or(RunError::NoEngine)?;
            let cli = req.container_cli.ok_or(RunError::NoEngine)?;
            let env = base_env(
                req,
                container::CONTAINER_INPUT_DIR,
                container::CONTAINER_OUTPUT_DIR,
            );
            let job_hex = hex::encode(req.plan.job_id);
            let name = format!("sigil-{}", job_hex.get(..16).unwrap_or(&job_hex));
            let run = container::ContainerRun {
                engine,
                config: req.container,
                name: &name,
                image,
                args,
                env: &env,
                input_dir: &dirs.input,
                output_dir: &dirs.output,
                gpus: req.gpus,
                limits: &req.plan.limits,
                job_hex: &job_hex,
            };
            let mut cli_args = container::run_args(&run);
            // Secret values pass through the CLI's own environment: `--env NAME` without a
            // value, inserted before the image (which the container's arguments follow) so
            // they are options of `run`.
            let at = cli_args.len().saturating_sub(args.len().saturating_add(1));
            for (k, _) in req.secret_env {
                cli_args.insert(at, k.clone());
                cli_args.insert(at, "--env".into());
            }
            let mut cmd = Command::new(cli);
            cmd.args(cli_args)
                .env_clear()
                .env("PATH", &req.jobs.path)
                .envs(req.secret_env.iter().map(|(k, v)| (k, v.as_str())))
                .current_dir(&dirs.work);
            Ok((cmd, Some(name)))
        }
    }
}

/// Runs one attempt to its end. `on_started` is called with the process once it exists
/// (the caller records it to find orphans after a crash).
pub async fn run(
    req: &RunRequest<'_>,
    on_started: impl FnOnce(ProcessHandle),
) -> Result<RunOutcome, RunError> {
    if let (Some(iso), Workload::Process { argv }) = (req.isolated, &req.plan.workload) {
        return run_isolated(req, iso, argv, on_started).await;
    }
    let (mut cmd, container_name) = build_command(req)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group: stopping the job signals everything it started.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let started_at_ms = metering::unix_ms();
    let child: Child = cmd
        .spawn()
        .map_err(|source| RunError::Spawn { program, source })?;
    let pid = child.id();
    if req.prlimit.is_none()
        && matches!(req.plan.workload, Workload::Process { .. })
        && let Err(e) = apply_rlimits(pid, &req.plan.limits)
    {
        // No job runs without its limits: stop it and reap it before reporting.
        signal_group(pid, Signal::SIGKILL);
        let _ = tokio::task::spawn_blocking(move || child.wait4()).await;
        return Err(e);
    }
    let handle = ProcessHandle {
        pid,
        start_ticks: process_start_ticks(pid).unwrap_or(0),
    };
    on_started(handle);
    let (out_reader, err_reader, mut waiter) = watch_child(child, req.jobs.max_log_bytes);

    let wall = Duration::from_millis(req.plan.limits.wall_time_ms);
    let mut stop = None;
    let res = tokio::select! {
        r = &mut waiter => Some(r),
        () = tokio::time::sleep(wall) => { stop = Some(Stop::WallTime); None }
        () = req.stop.stopped() => { stop = req.stop.reason().or(Some(Stop::Cancelled)); None }
    };
    let res = match res {
        Some(r) => r,
        None => {
            terminate(
                pid,
                container_name.as_deref(),
                req.container_cli,
                &req.jobs.path,
            )
            .await;
            let grace = Duration::from_millis(req.jobs.kill_grace_ms);
            match tokio::time::timeout(grace, &mut waiter).await {
                Ok(r) => r,
                Err(_) => {
                    signal_group(pid, Signal::SIGKILL);
                    waiter.await
                }
            }
        }
    };
    let res = res
        .map_err(|e| RunError::Task(e.to_string()))?
        .map_err(RunError::Wait)?;
    let wall_elapsed = started.elapsed();
    let finished_at_ms = metering::unix_ms();
    // The group may still hold processes the workload left behind: they go with it.
    signal_group(pid, Signal::SIGKILL);
    // A process that left the group (setsid) may still hold stdout: the logs are what was
    // read within the kill grace (isolated jobs have no such process: their cgroup is killed).
    let grace = Duration::from_millis(req.jobs.kill_grace_ms);
    let stdout = join_reader(out_reader, grace).await;
    let stderr = join_reader(err_reader, grace).await;
    Ok(RunOutcome {
        exit_code: exit_code(res.status),
        stop,
        started_at_ms,
        finished_at_ms,
        usage: ProcessUsage::from_rusage(&res.rusage, wall_elapsed),
        stdout,
        stderr,
        oom_kills: 0,
        pids_refused: 0,
    })
}

type Reader = Option<tokio::task::JoinHandle<Vec<u8>>>;
type Waiter = tokio::task::JoinHandle<std::io::Result<wait4::ResUse>>;

/// Reads the child's stdout and stderr (up to `cap` bytes each kept) and waits for it, each
/// on a blocking thread.
fn watch_child(mut child: Child, cap: u64) -> (Reader, Reader, Waiter) {
    let out = child
        .stdout
        .take()
        .map(|s| tokio::task::spawn_blocking(move || read_capped(s, cap)));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::task::spawn_blocking(move || read_capped(s, cap)));
    (out, err, tokio::task::spawn_blocking(move || child.wait4()))
}

async fn join_reader(h: Option<tokio::task::JoinHandle<Vec<u8>>>, within: Duration) -> Vec<u8> {
    match h {
        Some(h) => tokio::time::timeout(within, h)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Device nodes of the GPUs assigned to a job (and the driver's shared nodes), where they
/// exist: `/dev/nvidia<minor>` by NVML's minor number (the index where NVML gives none).
fn gpu_devices(gpus: &[Gpu]) -> Vec<PathBuf> {
    let mut v = gpu_device_paths(gpus);
    v.retain(|p| p.exists());
    v
}

/// The device nodes a job with `gpus` may use, whether or not they exist here.
pub(crate) fn gpu_device_paths(gpus: &[Gpu]) -> Vec<PathBuf> {
    if gpus.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<PathBuf> = gpus
        .iter()
        .map(|g| PathBuf::from(format!("/dev/nvidia{}", g.minor.unwrap_or(g.index))))
        .collect();
    for shared in ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"] {
        v.push(Path::new("/dev").join(shared));
    }
    v
}

/// The launch spec of an isolated process job.
fn launch_spec(
    req: &RunRequest<'_>,
    iso: Isolated<'_>,
    argv: &[String],
    cg: &JobCgroup,
) -> LaunchSpec {
    let dirs = req.dirs;
    let mut env = base_env(
        req,
        &dirs.input.to_string_lossy(),
        &dirs.output.to_string_lossy(),
    );
    env.insert("PATH".into(), req.jobs.path.clone());
    env.insert("HOME".into(), dirs.work.to_string_lossy().into_owned());
    for (k, v) in req.secret_env {
        env.insert(k.clone(), v.as_str().to_owned());
    }
    env.insert("TMPDIR".into(), "/tmp".into());
    let l = &req.plan.limits;
    LaunchSpec {
        program: argv.first().cloned().unwrap_or_default(),
        args: argv.iter().skip(1).cloned().collect(),
        env: env.into_iter().collect(),
        cwd: dirs.work.clone(),
        uid: iso.id,
        gid: iso.id,
        cgroup_procs: cg.procs_files(),
        rlimits: Rlimits {
            fsize: l.output_bytes,
            cpu_secs: l.cpu_time_ms.div_ceil(1000),
            // A backstop above the cgroup's pids.max, which is what refuses (and counts)
            // forks: the job's id is its own, so this counts only the job's processes.
            nproc: req.jobs.max_pids.saturating_mul(2),
        },
        namespace: iso.isolation.namespace().then(|| NamespaceSpec {
            hide: iso.isolation.hidden().to_vec(),
            job_root: dirs.root.clone(),
            read_only: vec![dirs.input.clone()],
            devices: gpu_devices(req.gpus),
            tmp_bytes: iso.isolation.tmp_bytes(),
        }),
    }
}

/// Waits until the cgroup's CPU time reaches `limit_ms` (never with no limit or no reading).
async fn cpu_exhausted(cg: &JobCgroup, limit_ms: u64) {
    if limit_ms == 0 || cg.cpu_ms().is_none() {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if cg.cpu_ms().is_some_and(|used| used >= limit_ms) {
            return;
        }
    }
}

/// Waits until the job's directory holds more than `limit` bytes (checked every second;
/// never with no limit).
async fn disk_exceeded(root: &Path, limit: u64) {
    if limit == 0 {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let dir = root.to_owned();
        let used = tokio::task::spawn_blocking(move || jobfs::disk_usage(&dir))
            .await
            .unwrap_or(0);
        if used > limit {
            return;
        }
    }
}

/// Signals every process of the job (they may have left its process group).
fn signal_cgroup(cg: &JobCgroup, sig: Signal) {
    for p in cg.pids() {
        let _ = nix::sys::signal::kill(Pid::from_raw(p), sig);
    }
}

/// Runs an isolated process job: its cgroup, the launcher, the wait, the kill of the whole
/// cgroup, and its usage.
async fn run_isolated(
    req: &RunRequest<'_>,
    iso: Isolated<'_>,
    argv: &[String],
    on_started: impl FnOnce(ProcessHandle),
) -> Result<RunOutcome, RunError> {
    let job_hex = hex::encode(req.plan.job_id);
    let limits = CgroupLimits {
        memory_bytes: req.plan.limits.memory_bytes,
        pids: req.jobs.max_pids,
        cpu_millicores: req.jobs.cpu_millicores,
        // The disk under the job's directory (none on a tmpfs: no block I/O to limit).
        io: (req.jobs.io_bytes_per_sec != 0)
            .then(|| isolate::cgroup::block_device_of(&req.dirs.root))
            .flatten()
            .map(|dev| (dev, req.jobs.io_bytes_per_sec)),
    };
    let cg = iso.isolation.cgroup(&job_hex, limits)?;
    tracing::trace!(job = %job_hex, "cgroup created");
    let result = run_in_cgroup(req, iso, argv, &cg, on_started).await;
    // Nothing of the job outlives it, whatever happened above.
    let kill = {
        let cg = cg.clone();
        tokio::task::spawn_blocking(move || {
            let killed = cg.kill(Duration::from_secs(10));
            let usage = cg.usage();
            cg.remove();
            (killed, usage)
        })
        .await
    };
    let (killed, usage) = kill.map_err(|e| RunError::Task(e.to_string()))?;
    if let Err(e) = killed {
        tracing::error!(job = %job_hex, error = %e, "the job's cgroup could not be emptied");
        return Err(e.into());
    }
    tracing::trace!(job = %job_hex, "cgroup removed");
    let mut outcome = result?;
    outcome.usage.cpu_ms = usage.cpu_ms;
    outcome.usage.peak_memory_bytes = usage.peak_memory_bytes;
    outcome.oom_kills = usage.oom_kills;
    outcome.pids_refused = usage.pids_refused;
    Ok(outcome)
}

async fn run_in_cgroup(
    req: &RunRequest<'_>,
    iso: Isolated<'_>,
    argv: &[String],
    cg: &JobCgroup,
    on_started: impl FnOnce(ProcessHandle),
) -> Result<RunOutcome, RunError> {
    let spec = launch_spec(req, iso, argv, cg);
    let spec_json = serde_json::to_vec(&spec).map_err(|e| RunError::Task(e.to_string()))?;
    let launcher = iso.isolation.launcher();
    let mut cmd = Command::new(launcher);
    cmd.arg(isolate::launch::LAUNCH_ARG)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let started = Instant::now();
    let started_at_ms = metering::unix_ms();
    let mut child: Child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: launcher.display().to_string(),
        source,
    })?;
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            stdin.write_all(&spec_json)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            // The launcher died before reading its spec; its exit status and stderr say why.
            tracing::warn!(job = %hex::encode(req.plan.job_id), "the launcher did not take its spec");
        }
    }
    tracing::trace!(pid, "launcher started, spec written");
    on_started(ProcessHandle {
        pid,
        start_ticks: process_start_ticks(pid).unwrap_or(0),
    });
    let (out_reader, err_reader, mut waiter) = watch_child(child, req.jobs.max_log_bytes);

    let wall = Duration::from_millis(req.plan.limits.wall_time_ms);
    let mut stop = None;
    let res = tokio::select! {
        r = &mut waiter => Some(r),
        () = tokio::time::sleep(wall) => { stop = Some(Stop::WallTime); None }
        () = cpu_exhausted(cg, req.plan.limits.cpu_time_ms) => { stop = Some(Stop::CpuTime); None }
        () = disk_exceeded(&req.dirs.root, req.jobs.max_disk_bytes) => { stop = Some(Stop::Disk); None }
        () = req.stop.stopped() => { stop = req.stop.reason().or(Some(Stop::Cancelled)); None }
    };
    let res = match res {
        Some(r) => r,
        None => {
            // A stop gives the job its grace to end cleanly; a limit does not.
            if matches!(stop, Some(Stop::Cancelled | Stop::Shutdown)) {
                signal_cgroup(cg, Signal::SIGTERM);
                let grace = Duration::from_millis(req.jobs.kill_grace_ms);
                if let Ok(r) = tokio::time::timeout(grace, &mut waiter).await {
                    r
                } else {
                    let _ = cg.kill(Duration::ZERO);
                    waiter.await
                }
            } else {
                let _ = cg.kill(Duration::ZERO);
                waiter.await
            }
        }
    };
    let res = res
        .map_err(|e| RunError::Task(e.to_string()))?
        .map_err(RunError::Wait)?;
    let wall_elapsed = started.elapsed();
    let finished_at_ms = metering::unix_ms();
    // Everything the job started ends with it: its pipes close and the logs are complete.
    let killer = {
        let cg = cg.clone();
        tokio::task::spawn_blocking(move || cg.kill(Duration::from_secs(10)))
    };
    tracing::trace!(pid, "workload reaped");
    let _ = killer.await;
    tracing::trace!(pid, "cgroup emptied");
    let grace = Duration::from_millis(req.jobs.kill_grace_ms);
    let stdout = join_reader(out_reader, grace).await;
    let stderr = join_reader(err_reader, grace).await;
    let exit = exit_code(res.status);
    if exit == isolate::launch::LAUNCH_FAILED
        && let Some(line) = std::str::from_utf8(&stderr).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(isolate::launch::LAUNCH_ERROR_PREFIX))
        })
    {
        return Err(RunError::Launch(line.chars().take(512).collect()));
    }
    Ok(RunOutcome {
        exit_code: exit,
        stop,
        started_at_ms,
        finished_at_ms,
        usage: ProcessUsage {
            wall_ms: u64::try_from(wall_elapsed.as_millis()).unwrap_or(u64::MAX),
            cpu_ms: 0,
            peak_memory_bytes: 0,
        },
        stdout,
        stderr,
        oom_kills: 0,
        pids_refused: 0,
    })
}

/// Exit code, or minus the signal number.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => s.checked_neg().unwrap_or(i32::MIN),
        (None, None) => i32::MIN,
    }
}

/// Reads a pipe to its end, keeping the first `cap` bytes (the rest is drained so the
/// workload never blocks on a full pipe).
fn read_capped(mut r: impl Read, cap: u64) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = usize::try_from(cap)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(kept.len());
                let take = n.min(room);
                if let Some(part) = buf.get(..take) {
                    kept.extend_from_slice(part);
                }
            }
        }
    }
    kept
}

fn signal_group(pid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pid) {
        // ESRCH (already gone) is the normal case at the end of a job.
        let _ = killpg(Pid::from_raw(p), sig);
    }
}

/// SIGTERM to the group (and `rm --force` for a container, whose processes the engine owns).
async fn terminate(pid: u32, container: Option<&str>, cli: Option<&Path>, path: &str) {
    signal_group(pid, Signal::SIGTERM);
    if let (Some(name), Some(cli)) = (container, cli) {
        let mut cmd = Command::new(cli);
        cmd.args(container::remove_args(name))
            .env_clear()
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let r = tokio::task::spawn_blocking(move || cmd.status()).await;
        if !matches!(r, Ok(Ok(s)) if s.success()) {
            tracing::warn!(container = name, "removing the container failed");
        }
    }
}

/// Sets the plan's rlimits on a started workload with `prlimit(2)`, then checks that it did
/// not map more than its memory limit before the limit was set (see the module
/// documentation). A workload that has already exited (`ESRCH`) has nothing left to limit.
fn apply_rlimits(pid: u32, l: &spec::Limits) -> Result<(), RunError> {
    use rlimit::Resource;
    let Ok(p) = i32::try_from(pid) else {
        return Ok(());
    };
    let cpu_secs = l.cpu_time_ms.div_ceil(1000);
    for (resource, res, v) in [
        ("RLIMIT_AS", Resource::AS, l.memory_bytes),
        ("RLIMIT_CPU", Resource::CPU, cpu_secs),
        ("RLIMIT_FSIZE", Resource::FSIZE, l.output_bytes),
    ] {
        if v == 0 {
            continue;
        }
        match rlimit::prlimit(p, res, Some((v, v)), None) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => return Ok(()),
            Err(source) => return Err(RunError::Limit { resource, source }),
        }
    }
    if l.memory_bytes != 0
        && let Some(peak) = peak_address_space(pid)
        && peak > l.memory_bytes
    {
        return Err(RunError::LimitEscaped {
            peak,
            limit: l.memory_bytes,
        });
    }
    Ok(())
}

/// This process's effective capabilities (`CapEff` in `/proc/self/status`); 0 if unreadable.
pub(crate) fn effective_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .unwrap_or(0)
}

/// True if this process may set resource limits on processes of other users
/// (CAP_SYS_RESOURCE in its effective set).
pub fn may_limit_other_users() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    effective_capabilities() & (1u64 << CAP_SYS_RESOURCE) != 0
}

/// Peak address-space size of a process in bytes (`VmPeak` in `/proc/<pid>/status`); `None`
/// once it has exited (a zombie has no address space).
pub fn peak_address_space(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmPeak:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count from the
    // last ')'. Field 3 is the first after it, so field 22 is the 20th.
    let rest = stat.get(stat.rfind(')')?.checked_add(1)?..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Kills the process group of a job's process left by an earlier agent instance, if that
/// process still exists (same pid and start time). Returns true if it was found.
pub fn kill_orphan(h: ProcessHandle) -> bool {
    if h.start_ticks == 0 || process_start_ticks(h.pid) != Some(h.start_ticks) {
        return false;
    }
    signal_group(h.pid, Signal::SIGKILL);
    true
}

/// Records the running process in the attempt's directory. Not fsynced on purpose: it must
/// survive the agent dying (the page cache does), not the machine (the process dies too).
pub fn write_pid_file(dirs: &JobDirs, h: ProcessHandle) {
    let s = format!("{} {}\n", h.pid, h.start_ticks);
    if let Err(e) = std::fs::write(dirs.pid_file(), s) {
        tracing::warn!(error = %e, "writing the job's pid file failed");
    }
}

/// Reads a pid file written by [`write_pid_file`].
pub fn read_pid_file(dirs: &JobDirs) -> Option<ProcessHandle> {
    let s = std::fs::read_to_string(dirs.pid_file()).ok()?;
    let mut it = s.split_whitespace();
    Some(ProcessHandle {
        pid: it.next()?.parse().ok()?,
        start_ticks: it.next()?.parse().ok()?,
    })
}

/// Most directory levels collected from `out/`.
pub const MAX_OUTPUT_DEPTH: usize = 64;

/// Collects the regular files under `dir` (recursively; symlinks and special files are
/// skipped, nothing is followed), sorted by path, failing past `cap` bytes or `max_files`
/// files. Blocking.
pub fn collect_outputs(
    dir: &Path,
    cap: u64,
    max_files: u64,
) -> Result<Vec<(String, Vec<u8>)>, OutputError> {
    jobfs::collect(
        dir,
        jobfs::CollectLimits {
            bytes: cap,
            files: max_files,
            depth: MAX_OUTPUT_DEPTH,
        },
    )
}

/// Finds a program in `PATH` (for `prlimit` and the container CLI).
pub fn which(program: &str, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests;
