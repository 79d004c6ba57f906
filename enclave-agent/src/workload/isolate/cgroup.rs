//! One cgroup per job: limits before the job starts, its own accounting, and a kill that
//! leaves nothing behind.
//!
//! Two layouts, found at start:
//!
//! * **cgroup v2** (what current distributions and confidential-VM images boot): a subtree of
//!   the agent's own cgroup (delegated to it, e.g. systemd `Delegate=yes`) or a configured
//!   directory. The agent moves itself into a leaf `agent` (a v2 cgroup with processes may
//!   not enable controllers for its children), enables `memory pids cpu` (and `io` where
//!   offered) for the subtree and gives each job `job-<id>` with `memory.max`,
//!   `memory.swap.max = 0`, `memory.oom.group = 1`, `pids.max` and `cpu.max`. The job's
//!   usage is `memory.peak`, `cpu.stat` and `io.stat`; the end is `cgroup.kill`.
//! * **cgroup v1** (older hosts, hybrid layouts): `sigil-jobs/job-<id>` in the `memory`,
//!   `pids` and `cpu`/`cpuacct` hierarchies under the agent's own cgroup in each (`sigil-jobs`
//!   stands for the agent's scope, `sigil-<hash of its state directory>`), with
//!   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`, so no swap),
//!   `pids.max`, `cpu.cfs_quota_us`; usage from `memory.max_usage_in_bytes` and
//!   `cpuacct.usage`. Where the hybrid layout also mounts the v2 hierarchy, the job gets a
//!   cgroup there too for `cgroup.kill`; otherwise its processes are killed until none is
//!   left (a process cannot leave its cgroup: only root may move it).
//!
//! Written by hand over the cgroup filesystem: the crates that wrap it (`cgroups-rs`) pull
//! in far more than the dozen files used here and do not cover `cgroup.kill`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a cgroup could not be set up or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// No cgroup hierarchy with the memory and pids controllers is available to the agent.
    #[error("no usable cgroup: {0}")]
    Unavailable(String),
    /// A cgroup file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job's processes did not all end after being killed.
    #[error("{0} processes of the job were still alive after the kill")]
    Survivors(usize),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io("writing", path))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Limits of one job's cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Memory (resident, page cache and tmpfs included), bytes; 0 = none.
    pub memory_bytes: u64,
    /// Processes and threads; 0 = none.
    pub pids: u64,
    /// CPU bandwidth in thousandths of a core; 0 = none.
    pub cpu_millicores: u64,
    /// Read and write bandwidth on one block device (`major:minor`, bytes per second).
    pub io: Option<(String, u64)>,
}

/// What a job's cgroup measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time of every process the job ever had, milliseconds.
    pub cpu_ms: u64,
    /// Peak memory of the job, bytes.
    pub peak_memory_bytes: u64,
    /// Bytes read and written to block devices (0 where not accounted).
    pub io_bytes: u64,
    /// Processes the kernel's OOM killer killed for the memory limit.
    pub oom_kills: u64,
    /// Forks refused at the pids limit.
    pub pids_refused: u64,
}

/// Where job cgroups are made.
#[derive(Clone, Debug)]
pub enum Hierarchy {
    /// cgroup v2: the parent of the job cgroups, and whether `io` is enabled there.
    V2 {
        /// Parent directory.
        parent: PathBuf,
        /// The `io` controller is enabled for jobs.
        io: bool,
    },
    /// cgroup v1: the parent in each hierarchy used.
    V1 {
        /// `memory` hierarchy parent.
        memory: PathBuf,
        /// `pids` hierarchy parent.
        pids: PathBuf,
        /// `cpu` hierarchy parent (may be the same hierarchy as `cpuacct`).
        cpu: Option<PathBuf>,
        /// `cpuacct` hierarchy parent.
        cpuacct: Option<PathBuf>,
        /// `blkio` hierarchy parent (I/O limits and accounting).
        blkio: Option<PathBuf>,
        /// The v2 hierarchy of a hybrid layout (no controllers; `cgroup.kill`).
        unified: Option<PathBuf>,
    },
}

/// Parses `/proc/self/cgroup`: (hierarchy id, controllers, path).
fn own_cgroups(text: &str) -> Vec<(String, Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.to_owned();
            let ctrl = it.next()?;
            let path = it.next()?.to_owned();
            let ctrls = ctrl
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some((id, ctrls, path))
        })
        .collect()
}

/// Mount points of cgroup filesystems from `/proc/self/mountinfo`: (mount point, fs type,
/// super options).
fn cgroup_mounts(mountinfo: &str) -> Vec<(PathBuf, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let _source = post.next()?;
            let opts = post.next().unwrap_or_default().to_owned();
            let mount_point = pre.split(' ').nth(4)?;
            Some((
                PathBuf::from(unescape(mount_point)),
                fstype.to_owned(),
                opts,
            ))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(d) = b.get(i.saturating_add(1)..i.saturating_add(4))
            && d.iter().all(|x| (b'0'..=b'7').contains(x))
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(d).unwrap_or("x"), 8)
        {
            out.push(v);
            i = i.saturating_add(4);
            continue;
        }
        out.push(c);
        i = i.saturating_add(1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn join_rel(base: &Path, rel: &str) -> PathBuf {
    base.join(rel.trim_start_matches('/'))
}

impl Hierarchy {
    /// Finds where job cgroups can be made: the configured v2 directory, else v2 under the
    /// agent's own cgroup, else v1. Creates the parent(s), named `scope` where the agent
    /// shares its cgroup with others (one name per agent instance, stable across its
    /// restarts, so each agent sweeps only its own leftovers).
    pub fn discover(configured: Option<&Path>, scope: &str) -> Result<Self, CgroupError> {
        if let Some(dir) = configured {
            return Self::v2_at(dir.to_owned(), false, scope);
        }
        let own = read(Path::new("/proc/self/cgroup"))
            .ok_or_else(|| CgroupError::Unavailable("/proc/self/cgroup is unreadable".into()))?;
        let mounts = read(Path::new("/proc/self/mountinfo"))
            .ok_or_else(|| CgroupError::Unavailable("/proc/self/mountinfo is unreadable".into()))?;
        let own = own_cgroups(&own);
        let mounts = cgroup_mounts(&mounts);
        let v2_mount = mounts
            .iter()
            .find(|m| m.1 == "cgroup2")
            .map(|m| m.0.clone());
        let v2_own = own
            .iter()
            .find(|(id, c, _)| id == "0" && c.is_empty())
            .map(|x| x.2.clone());
        let mut v2_err = None;
        if let (Some(m), Some(p)) = (&v2_mount, &v2_own) {
            let dir = join_rel(m, p);
            let ctrls = read(&dir.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
            if has("memory") && has("pids") {
                match Self::v2_at(dir, true, scope) {
                    Ok(h) => return Ok(h),
                    Err(e) => v2_err = Some(e),
                }
            }
        }
        // v1: each controller's hierarchy, under the agent's cgroup there.
        let place = |ctrl: &str| -> Option<PathBuf> {
            let m = mounts
                .iter()
                .find(|m| m.1 == "cgroup" && m.2.split(',').any(|o| o == ctrl))?;
            let p = own
                .iter()
                .find(|(_, c, _)| c.iter().any(|x| x == ctrl))
                .map_or("/", |x| x.2.as_str());
            Some(join_rel(&m.0, p).join(scope))
        };
        let (Some(memory), Some(pids)) = (place("memory"), place("pids")) else {
            return Err(v2_err.unwrap_or_else(|| {
                CgroupError::Unavailable(
                    "neither a cgroup v2 subtree with memory and pids nor cgroup v1 memory and pids hierarchies".into(),
                )
            }));
        };
        let cpu = place("cpu");
        let cpuacct = place("cpuacct");
        let blkio = place("blkio");
        let unified = match (&v2_mount, &v2_own) {
            (Some(m), Some(p)) => {
                let d = join_rel(m, p).join(scope);
                (std::fs::create_dir_all(&d).is_ok() && d.join("cgroup.kill").exists()).then_some(d)
            }
            _ => None,
        };
        for d in [
            Some(&memory),
            Some(&pids),
            cpu.as_ref(),
            cpuacct.as_ref(),
            blkio.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            std::fs::create_dir_all(d).map_err(io("creating", d))?;
        }
        // Hierarchical accounting in v1's memory controller (on by default in recent
        // kernels; the file is gone where it can no longer be changed).
        let _ = std::fs::write(memory.join("memory.use_hierarchy"), "1");
        Ok(Self::V1 {
            memory,
            pids,
            cpu,
            cpuacct,
            blkio,
            unified,
        })
    }

    /// A v2 subtree at `dir`. With `own` set, `dir` is the agent's own cgroup: the agent
    /// moves into `dir/agent` first.
    fn v2_at(dir: PathBuf, own: bool, scope: &str) -> Result<Self, CgroupError> {
        let ctrls = read(&dir.join("cgroup.controllers")).ok_or_else(|| {
            CgroupError::Unavailable(format!("{} is not a cgroup v2 directory", dir.display()))
        })?;
        let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
        if !has("memory") || !has("pids") {
            return Err(CgroupError::Unavailable(format!(
                "{} does not offer the memory and pids controllers (has: {})",
                dir.display(),
                ctrls.trim()
            )));
        }
        let parent = if own {
            // The root cgroup may hold processes and enable controllers; any other may not.
            let is_root = !dir.join("cgroup.type").exists();
            if is_root {
                let p = dir.join(scope);
                std::fs::create_dir_all(&p).map_err(io("creating", &p))?;
                enable(&dir, &ctrls)?;
                p
            } else {
                let leaf = dir.join("agent");
                std::fs::create_dir_all(&leaf).map_err(io("creating", &leaf))?;
                write(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
                dir
            }
        } else {
            dir
        };
        let io_on = enable(&parent, &ctrls)?;
        Ok(Self::V2 { parent, io: io_on })
    }

    /// The parents in every hierarchy used.
    fn parents(&self) -> Vec<&PathBuf> {
        match self {
            Self::V2 { parent, .. } => vec![parent],
            Self::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
                blkio,
                unified,
            } => [
                Some(memory),
                Some(pids),
                cpu.as_ref(),
                cpuacct.as_ref(),
                blkio.as_ref(),
                unified.as_ref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }

    /// Removes the scope's own directories where they are empty (not a delegated cgroup the
    /// agent was given).
    pub fn remove_scope(&self) {
        if matches!(self, Self::V1 { .. }) {
            for d in self.parents() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }

    /// Removes job cgroups left by an earlier agent instance, killing what is in them.
    /// Returns how many there were.
    pub fn sweep(&self) -> usize {
        let parents = self.parents();
        let mut names = std::collections::BTreeSet::new();
        for p in &parents {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    if let Some(n) = e.file_name().to_str()
                        && n.starts_with("job-")
                    {
                        names.insert(n.to_owned());
                    }
                }
            }
        }
        for n in &names {
            let cg = self.cgroup_named(n);
            let _ = cg.kill(Duration::from_secs(5));
            cg.remove();
        }
        names.len()
    }

    fn cgroup_named(&self, name: &str) -> JobCgroup {
        match self {
            Self::V2 { parent, .. } => JobCgroup::V2 {
                dir: parent.join(name),
            },
            Self::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
                blkio,
                unified,
            } => {
                let mut dirs = vec![memory.join(name), pids.join(name)];
                let cpu_dir = cpu.as_ref().map(|p| p.join(name));
                let acct_dir = cpuacct.as_ref().map(|p| p.join(name));
                let blkio_dir = blkio.as_ref().map(|p| p.join(name));
                for d in [&cpu_dir, &acct_dir, &blkio_dir].into_iter().flatten() {
                    if !dirs.contains(d) {
                        dirs.push(d.clone());
                    }
                }
                let unified = unified.as_ref().map(|p| p.join(name));
                if let Some(u) = &unified {
                    dirs.push(u.clone());
                }
                JobCgroup::V1 {
                    memory: memory.join(name),
                    pids: pids.join(name),
                    cpu: cpu_dir,
                    cpuacct: acct_dir,
                    blkio: blkio_dir,
                    unified,
                    dirs,
                }
            }
        }
    }

    /// Creates the cgroup of a job with its limits (an existing one is killed and replaced).
    pub fn create(&self, name: &str, limits: CgroupLimits) -> Result<JobCgroup, CgroupError> {
        let cg = self.cgroup_named(name);
        if cg.dirs().iter().any(|d| d.exists()) {
            let _ = cg.kill(Duration::from_secs(5));
            cg.remove();
        }
        for d in cg.dirs() {
            std::fs::create_dir(&d).map_err(io("creating", &d))?;
        }
        if let Err(e) = cg.set_limits(limits, self) {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// The layout's name, for logs and the agent's info.
    pub fn describe(&self) -> String {
        match self {
            Self::V2 { parent, .. } => format!("cgroup v2 at {}", parent.display()),
            Self::V1 {
                memory, unified, ..
            } => format!(
                "cgroup v1 at {}{}",
                memory.display(),
                if unified.is_some() {
                    " (with the v2 hierarchy for cgroup.kill)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Enables the job controllers for the children of `dir`; returns whether `io` is on.
fn enable(dir: &Path, offered: &str) -> Result<bool, CgroupError> {
    let has = |c: &str| offered.split_whitespace().any(|x| x == c);
    let mut want = vec!["+memory", "+pids"];
    if has("cpu") {
        want.push("+cpu");
    }
    let io_on = has("io");
    if io_on {
        want.push("+io");
    }
    write(&dir.join("cgroup.subtree_control"), &want.join(" "))?;
    Ok(io_on)
}

/// One job's cgroup.
#[derive(Clone, Debug)]
pub enum JobCgroup {
    /// cgroup v2.
    V2 {
        /// Its directory.
        dir: PathBuf,
    },
    /// cgroup v1.
    V1 {
        /// In the memory hierarchy.
        memory: PathBuf,
        /// In the pids hierarchy.
        pids: PathBuf,
        /// In the cpu hierarchy.
        cpu: Option<PathBuf>,
        /// In the cpuacct hierarchy.
        cpuacct: Option<PathBuf>,
        /// In the blkio hierarchy.
        blkio: Option<PathBuf>,
        /// In the v2 hierarchy of a hybrid layout.
        unified: Option<PathBuf>,
        /// Every directory, each once.
        dirs: Vec<PathBuf>,
    },
}

impl JobCgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Self::V2 { dir } => vec![dir.clone()],
            Self::V1 { dirs, .. } => dirs.clone(),
        }
    }

    /// The files a process writes its pid to so that it (and all it starts) is in the job.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn set_limits(&self, l: CgroupLimits, h: &Hierarchy) -> Result<(), CgroupError> {
        match self {
            Self::V2 { dir } => {
                if l.memory_bytes != 0 {
                    write(&dir.join("memory.max"), &l.memory_bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write(&swap, "0")?;
                    }
                }
                // One OOM kill ends the whole job, not a random process of it.
                let group = dir.join("memory.oom.group");
                if group.exists() {
                    write(&group, "1")?;
                }
                if l.pids != 0 {
                    write(&dir.join("pids.max"), &l.pids.to_string())?;
                }
                if l.cpu_millicores != 0 {
                    let quota = l.cpu_millicores.saturating_mul(100);
                    write(&dir.join("cpu.max"), &format!("{quota} 100000"))?;
                }
                if let Some((dev, bps)) = &l.io {
                    if !matches!(h, Hierarchy::V2 { io: true, .. }) {
                        return Err(CgroupError::Unavailable(
                            "an I/O limit is configured but the io controller is not offered"
                                .into(),
                        ));
                    }
                    write(&dir.join("io.max"), &format!("{dev} rbps={bps} wbps={bps}"))?;
                }
                Ok(())
            }
            Self::V1 {
                memory,
                pids,
                cpu,
                blkio,
                ..
            } => {
                if let Some((dev, bps)) = &l.io {
                    let Some(b) = blkio else {
                        return Err(CgroupError::Unavailable(
                            "an I/O limit is configured but there is no blkio hierarchy".into(),
                        ));
                    };
                    for f in [
                        "blkio.throttle.read_bps_device",
                        "blkio.throttle.write_bps_device",
                    ] {
                        write(&b.join(f), &format!("{dev} {bps}"))?;
                    }
                }
                if l.memory_bytes != 0 {
                    write(
                        &memory.join("memory.limit_in_bytes"),
                        &l.memory_bytes.to_string(),
                    )?;
                    let memsw = memory.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &l.memory_bytes.to_string())?;
                    }
                }
                if l.pids != 0 {
                    write(&pids.join("pids.max"), &l.pids.to_string())?;
                }
                if l.cpu_millicores != 0
                    && let Some(cpu) = cpu
                {
                    write(&cpu.join("cpu.cfs_period_us"), "100000")?;
                    write(
                        &cpu.join("cpu.cfs_quota_us"),
                        &l.cpu_millicores.saturating_mul(100).to_string(),
                    )?;
                }
                Ok(())
            }
        }
    }

    /// CPU time used so far by every process the job ever had, milliseconds.
    pub fn cpu_ms(&self) -> Option<u64> {
        match self {
            Self::V2 { dir } => {
                keyed(&read(&dir.join("cpu.stat"))?, "usage_usec").map(|u| u / 1000)
            }
            Self::V1 {
                cpuacct, unified, ..
            } => {
                if let Some(a) = cpuacct
                    && let Some(ns) =
                        read(&a.join("cpuacct.usage")).and_then(|s| s.trim().parse::<u64>().ok())
                {
                    return Some(ns / 1_000_000);
                }
                let u = unified.as_ref()?;
                keyed(&read(&u.join("cpu.stat"))?, "usage_usec").map(|u| u / 1000)
            }
        }
    }

    /// The job's usage (read after its processes are gone).
    pub fn usage(&self) -> CgroupUsage {
        let mut u = CgroupUsage {
            cpu_ms: self.cpu_ms().unwrap_or(0),
            ..CgroupUsage::default()
        };
        match self {
            Self::V2 { dir } => {
                u.peak_memory_bytes = read(&dir.join("memory.peak"))
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                u.oom_kills = read(&dir.join("memory.events"))
                    .and_then(|s| keyed(&s, "oom_kill"))
                    .unwrap_or(0);
                u.pids_refused = read(&dir.join("pids.events"))
                    .and_then(|s| keyed(&s, "max"))
                    .unwrap_or(0);
                u.io_bytes = read(&dir.join("io.stat")).map_or(0, |s| io_stat_bytes(&s));
            }
            Self::V1 {
                memory,
                pids,
                blkio,
                ..
            } => {
                u.io_bytes = blkio
                    .as_ref()
                    .and_then(|b| read(&b.join("blkio.throttle.io_service_bytes_recursive")))
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("Total ")?.trim().parse().ok())
                    })
                    .unwrap_or(0);
                u.peak_memory_bytes = read(&memory.join("memory.max_usage_in_bytes"))
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                u.oom_kills = read(&memory.join("memory.oom_control"))
                    .and_then(|s| keyed(&s, "oom_kill"))
                    .unwrap_or(0);
                u.pids_refused = read(&pids.join("pids.events"))
                    .and_then(|s| keyed(&s, "max"))
                    .unwrap_or(0);
            }
        }
        u
    }

    /// Pids in the job (from the first hierarchy that lists them).
    pub fn pids(&self) -> Vec<i32> {
        let file = match self {
            Self::V2 { dir } => dir.join("cgroup.procs"),
            Self::V1 { pids, .. } => pids.join("cgroup.procs"),
        };
        read(&file)
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process of the job and waits, up to `within`, until none is left.
    pub fn kill(&self, within: Duration) -> Result<(), CgroupError> {
        let kill_file = match self {
            Self::V2 { dir } => Some(dir.join("cgroup.kill")),
            Self::V1 { unified, .. } => unified.as_ref().map(|u| u.join("cgroup.kill")),
        };
        let now = Instant::now();
        let deadline = now.checked_add(within).unwrap_or(now);
        let mut used_kill = false;
        if let Some(k) = &kill_file
            && k.exists()
        {
            used_kill = std::fs::write(k, "1").is_ok();
        }
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            if !used_kill {
                // Without cgroup.kill: SIGKILL each until none is left (a process forked
                // meanwhile is in the cgroup too and is found on the next pass).
                for p in &pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::Survivors(pids.len()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the cgroup directories (after [`JobCgroup::kill`]); errors are ignored (a
    /// cgroup still busy is removed by the next start's sweep).
    pub fn remove(&self) {
        for d in self.dirs().iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The whole block device (`major:minor`) holding `path`: the disk of a partition, the
/// device itself otherwise. `None` where the file system has no block device (tmpfs).
pub fn block_device_of(path: &Path) -> Option<String> {
    let st = rustix::fs::stat(path).ok()?;
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        return None;
    }
    if sys.join("partition").exists() {
        return read(&sys.join("../dev")).map(|s| s.trim().to_owned());
    }
    Some(format!("{major}:{minor}"))
}

/// Sum of `rbytes` and `wbytes` over the devices of an `io.stat`.
fn io_stat_bytes(s: &str) -> u64 {
    s.lines()
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            matches!(k, "rbytes" | "wbytes")
                .then(|| v.parse::<u64>().ok())
                .flatten()
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_own_cgroups_and_mounts() {
        let own =
            own_cgroups("4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/system.slice/a.service\n");
        assert_eq!(own.len(), 3);
        assert_eq!(own[0].1, vec!["memory".to_owned()]);
        assert_eq!(own[1].1, vec!["cpu".to_owned(), "cpuacct".to_owned()]);
        assert_eq!(own[2].2, "/system.slice/a.service");
        let mi = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                  31 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                  32 25 0:28 / /mnt/a\\040b rw - ext4 /dev/vda rw\n";
        let m = cgroup_mounts(mi);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m[0].2, "rw,memory");
        assert_eq!(m[1].1, "cgroup2");
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("\\0"), "\\0");
    }

    #[test]
    fn reads_keyed_files() {
        assert_eq!(
            keyed("usage_usec 1500\nuser_usec 1000\n", "usage_usec"),
            Some(1500)
        );
        assert_eq!(keyed("oom 0\noom_kill 2\n", "oom_kill"), Some(2));
        assert_eq!(keyed("max 3\n", "oom_kill"), None);
        assert_eq!(
            io_stat_bytes("8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=1 wbytes=2\n"),
            123
        );
    }
}
