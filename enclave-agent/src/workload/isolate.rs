//! Job isolation: its own identity, its own cgroup, its own view of the file system.
//!
//! Checked once at the agent's start ([`Isolation::start`]): with `isolation.mode =
//! "required"` the agent refuses to start unless it can give every process job a user id
//! of its own (it must be root, or hold CAP_SETUID and CAP_SETGID), a cgroup with the
//! memory and pids controllers, and, with `isolation.namespace = "required"`, a private
//! mount namespace. Nothing falls back silently: with `mode = "off"` the log says at start
//! that jobs share one identity.
//!
//! Per job, the engine takes an [`IdLease`] (held until the job's outputs are collected, so
//! no other job can hold the same id while they are read), creates the job's cgroup with
//! its limits ([`Isolation::cgroup`]) and starts the workload through the launcher
//! ([`launch`]). At the end the whole cgroup is killed and waited for: when the outputs are
//! collected, no process of the job exists any more.

pub mod cgroup;
pub mod launch;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::{IsolationConfig, IsolationMode, NamespaceMode};

pub use cgroup::{CgroupError, CgroupLimits, CgroupUsage, Hierarchy, JobCgroup};
pub use launch::{LaunchSpec, NamespaceSpec, Rlimits};

/// Why isolation is not available (the agent does not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IsolationError {
    /// The agent cannot switch to another user id.
    #[error(
        "isolation is required but the agent cannot run jobs under their own user ids (it needs to be root, or to hold CAP_SETUID and CAP_SETGID); set isolation.mode = \"off\" only for development"
    )]
    NoIdentity,
    /// The id range is invalid or holds the agent's own ids.
    #[error("isolation.ids: {0}")]
    Ids(String),
    /// No usable cgroup.
    #[error("isolation is required: {0}")]
    Cgroup(#[from] CgroupError),
    /// The namespace is required but could not be made.
    #[error("isolation.namespace is required but a private mount namespace is not available: {0}")]
    Namespace(String),
    /// The launcher is missing.
    #[error("the job launcher {0} is not an executable file")]
    Launcher(PathBuf),
    /// Every id of the range is held by a running job.
    #[error("all {0} job ids are in use")]
    IdsExhausted(u64),
}

/// Ids of running jobs.
#[derive(Debug)]
struct IdPool {
    first: u32,
    last: u32,
    state: Mutex<(BTreeSet<u32>, u32)>,
}

/// A job's user and group id, free again when dropped.
#[derive(Debug)]
pub struct IdLease {
    id: u32,
    pool: Arc<IdPool>,
}

impl IdLease {
    /// The id (uid = gid).
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Drop for IdLease {
    fn drop(&mut self) {
        if let Ok(mut s) = self.pool.state.lock() {
            s.0.remove(&self.id);
        }
    }
}

impl IdPool {
    fn lease(self: &Arc<Self>) -> Result<IdLease, IsolationError> {
        let size = u64::from(self.last.saturating_sub(self.first)).saturating_add(1);
        let mut s = self
            .state
            .lock()
            .map_err(|_| IsolationError::IdsExhausted(size))?;
        // Round robin from after the last id given: an id is not reused sooner than needed.
        let mut candidate = s.1;
        for _ in 0..size.min(u64::from(u32::MAX)) {
            if candidate < self.first || candidate > self.last {
                candidate = self.first;
            }
            if !s.0.contains(&candidate) {
                s.0.insert(candidate);
                s.1 = candidate.saturating_add(1);
                return Ok(IdLease {
                    id: candidate,
                    pool: Arc::clone(self),
                });
            }
            candidate = candidate.saturating_add(1);
        }
        Err(IsolationError::IdsExhausted(size))
    }
}

/// What the agent can do to isolate jobs (built once at start).
#[derive(Debug)]
pub struct Isolation {
    launcher: PathBuf,
    hierarchy: Hierarchy,
    ids: Arc<IdPool>,
    namespace: bool,
    hide: Vec<PathBuf>,
    tmp_bytes: u64,
}

/// Is this process able to take any user and group id?
fn may_change_ids() -> bool {
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let c = crate::workload::effective_capabilities();
    c & (1 << CAP_SETUID) != 0 && c & (1 << CAP_SETGID) != 0
}

/// Can this process make a private mount namespace? Tried with util-linux `unshare --mount
/// true` where it is installed; otherwise judged from the kernel's namespace support and root.
fn namespace_available(path: &str) -> Result<(), String> {
    if !std::path::Path::new("/proc/self/ns/mnt").exists() {
        return Err("the kernel has no mount namespaces".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("making a mount namespace needs root (CAP_SYS_ADMIN)".into());
    }
    if let Some(unshare) = crate::workload::which("unshare", path) {
        let ok = std::process::Command::new(unshare)
            .args(["--mount", "true"])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("unshare --mount failed".into());
        }
    }
    Ok(())
}

impl Isolation {
    /// Checks what isolation the agent can give; `Ok(None)` with `mode = "off"`.
    /// `hide` are the agent's own paths jobs must not see (state directory, key and
    /// configuration files), added to `isolation.hide`.
    pub fn start(
        cfg: &IsolationConfig,
        path_var: &str,
        state_dir: &std::path::Path,
        hide: Vec<PathBuf>,
    ) -> Result<Option<Self>, IsolationError> {
        if cfg.mode == IsolationMode::Off {
            tracing::warn!(
                "isolation.mode = \"off\": process jobs share one identity and no cgroup (development only)"
            );
            return Ok(None);
        }
        if !may_change_ids() {
            return Err(IsolationError::NoIdentity);
        }
        let (first, last) = cfg
            .id_range()
            .ok_or_else(|| IsolationError::Ids("must be `first-last`".into()))?;
        let me = [
            nix::unistd::getuid().as_raw(),
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getgid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ];
        if me.iter().any(|id| (first..=last).contains(id)) {
            return Err(IsolationError::Ids(
                "the range holds the agent's own user or group id".into(),
            ));
        }
        // `sigil-launch` beside the agent starts faster than the agent itself (see
        // `launch_main.rs`); the agent's own executable does the same otherwise.
        let launcher = cfg.launcher.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join("sigil-launch")))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
        });
        if !launcher.is_file() {
            return Err(IsolationError::Launcher(launcher));
        }
        let configured = (cfg.cgroup != "auto").then(|| PathBuf::from(&cfg.cgroup));
        // One cgroup scope per agent instance (its state directory), stable across restarts.
        let scope = {
            use sha2::Digest;
            let h = sha2::Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
            format!("sigil-{}", hex::encode(h.get(..6).unwrap_or_default()))
        };
        let hierarchy = Hierarchy::discover(configured.as_deref(), &scope)?;
        let swept = hierarchy.sweep();
        if swept > 0 {
            tracing::warn!(
                cgroups = swept,
                "killed and removed job cgroups left by an earlier agent instance"
            );
        }
        let namespace = match cfg.namespace {
            NamespaceMode::Off => false,
            NamespaceMode::Auto => match namespace_available(path_var) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(reason = %e, "jobs run without a private mount namespace");
                    false
                }
            },
            NamespaceMode::Required => {
                namespace_available(path_var).map_err(IsolationError::Namespace)?;
                true
            }
        };
        let mut all_hide = hide;
        all_hide.extend(cfg.hide.iter().cloned());
        // Evidence interfaces and logs a job has no business with.
        for p in [
            "/sys/kernel/config",
            "/sys/kernel/security",
            "/sys/firmware/acpi/tables",
            "/etc/sigil",
        ] {
            all_hide.push(PathBuf::from(p));
        }
        let iso = Self {
            launcher,
            hierarchy,
            ids: Arc::new(IdPool {
                first,
                last,
                state: Mutex::new((BTreeSet::new(), first)),
            }),
            namespace,
            hide: all_hide,
            tmp_bytes: cfg.tmp_bytes,
        };
        tracing::info!(
            cgroup = %iso.hierarchy.describe(),
            ids = %cfg.ids,
            namespace = iso.namespace,
            "jobs run isolated: own user id, own cgroup"
        );
        Ok(Some(iso))
    }

    /// A user and group id for a job.
    pub fn lease(&self) -> Result<IdLease, IsolationError> {
        self.ids.lease()
    }

    /// Creates the job's cgroup.
    pub fn cgroup(&self, job_hex: &str, limits: CgroupLimits) -> Result<JobCgroup, CgroupError> {
        let name = format!("job-{}", job_hex.get(..32).unwrap_or(job_hex));
        self.hierarchy.create(&name, limits)
    }

    /// The launcher executable.
    pub fn launcher(&self) -> &std::path::Path {
        &self.launcher
    }

    /// Whether jobs get a private mount namespace.
    pub fn namespace(&self) -> bool {
        self.namespace
    }

    /// Paths hidden from jobs.
    pub fn hidden(&self) -> &[PathBuf] {
        &self.hide
    }

    /// Size of a job's temporary directories.
    pub fn tmp_bytes(&self) -> u64 {
        self.tmp_bytes
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        // Best effort: the scope's directories go when no job cgroup is left in them.
        self.hierarchy.remove_scope();
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_shared_and_come_back() {
        let pool = Arc::new(IdPool {
            first: 10,
            last: 12,
            state: Mutex::new((BTreeSet::new(), 10)),
        });
        let a = pool.lease().unwrap_or_else(|e| panic!("{e}"));
        let b = pool.lease().unwrap_or_else(|e| panic!("{e}"));
        let c = pool.lease().unwrap_or_else(|e| panic!("{e}"));
        let mut ids = [a.id(), b.id(), c.id()];
        ids.sort_unstable();
        assert_eq!(ids, [10, 11, 12]);
        assert!(matches!(pool.lease(), Err(IsolationError::IdsExhausted(3))));
        let freed = b.id();
        drop(b);
        let d = pool.lease().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.id(), freed);
        drop((a, c, d));
    }
}
