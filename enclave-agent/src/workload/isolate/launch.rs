//! The launcher: the first process of every isolated job.
//!
//! The workspace forbids `unsafe`, so nothing can run between `fork` and `exec` in the
//! agent (`Command::pre_exec` is unsafe). The agent therefore starts its own executable as
//! `sigil-agent --sigil-launch` with the job's [`LaunchSpec`] on stdin. The launcher, still
//! with the agent's privileges and before anything of the job runs:
//!
//! 1. writes its pid into the job's cgroup(s), so the job and everything it starts is
//!    limited, accounted and killed as one;
//! 2. with a namespace, unshares its mount namespace (private propagation), remounts every
//!    mount read-only (one that another process removed meanwhile is gone from it too, and
//!    skipped), covers the agent's state directory and the other hidden paths with empty
//!    read-only tmpfs, exposes only this job's directory (inputs read-only), replaces
//!    `/dev` with a tmpfs holding `null zero full random urandom tty` and the GPUs assigned
//!    to the job (no TPM, no `sev-guest`, no TDX guest device, no other GPU), gives the job
//!    a private `/tmp`, `/var/tmp` and `/dev/shm`, and mounts a `/proc` that shows only the
//!    job's own processes (`hidepid=invisible`);
//! 3. sets RLIMIT_CORE 0, RLIMIT_FSIZE (the output cap), RLIMIT_CPU (a per-process backstop
//!    of the job's CPU time, which the agent enforces over the whole cgroup) and
//!    RLIMIT_NPROC (a backstop of the cgroup's `pids.max`; the job's id is its own, so it
//!    counts only the job's processes);
//! 4. drops every supplementary group and sets the job's gid and uid (real, effective and
//!    saved), sets `no_new_privs` (no set-uid program can raise it again);
//! 5. `exec`s the workload with the job's environment, in its working directory, stdin
//!    from `/dev/null`, stdout and stderr the agent's pipes.
//!
//! Any failure exits with [`LAUNCH_FAILED`] and one line `sigil-launch: <step>: <error>`
//! on stderr, before the workload ran.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use serde::{Deserialize, Serialize};

/// The argument that makes `sigil-agent` the launcher.
pub const LAUNCH_ARG: &str = "--sigil-launch";
/// Exit status of a launcher that failed before the workload started.
pub const LAUNCH_FAILED: i32 = 125;
/// Prefix of the launcher's error line.
pub const LAUNCH_ERROR_PREFIX: &str = "sigil-launch: ";
/// Largest spec the launcher reads.
const MAX_SPEC_BYTES: u64 = 64 << 20;

/// Device nodes every job gets.
pub const BASE_DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// What the launcher does for one job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Program (looked up in the job's `PATH`).
    pub program: String,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// The whole environment of the workload.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The job's user id.
    pub uid: u32,
    /// The job's group id.
    pub gid: u32,
    /// `cgroup.procs` files to write the launcher's pid to.
    pub cgroup_procs: Vec<PathBuf>,
    /// Resource limits set on the launcher (and so on the workload).
    pub rlimits: Rlimits,
    /// The private mount namespace, if used.
    pub namespace: Option<NamespaceSpec>,
}

/// Per-process limits (0 = not set).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rlimits {
    /// RLIMIT_FSIZE, bytes.
    pub fsize: u64,
    /// RLIMIT_CPU, seconds.
    pub cpu_secs: u64,
    /// RLIMIT_NPROC.
    pub nproc: u64,
}

/// The job's view of the file system.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// Paths covered (directories by an empty tmpfs, files by `/dev/null`).
    pub hide: Vec<PathBuf>,
    /// The job's directory, writable.
    pub job_root: PathBuf,
    /// Directories inside it that are read-only (the inputs).
    pub read_only: Vec<PathBuf>,
    /// Device nodes besides [`BASE_DEVICES`] (the job's GPUs), absolute paths under `/dev`.
    pub devices: Vec<PathBuf>,
    /// Size of `/tmp`, `/var/tmp` and `/dev/shm`, bytes.
    pub tmp_bytes: u64,
}

/// A failed launch step.
#[derive(Debug)]
struct Failed {
    step: String,
    error: String,
}

fn fail(step: impl Into<String>) -> impl FnOnce(String) -> Failed {
    let step = step.into();
    move |error| Failed { step, error }
}

trait Step<T> {
    fn at(self, step: impl Into<String>) -> Result<T, Failed>;
}

impl<T, E: std::fmt::Display> Step<T> for Result<T, E> {
    fn at(self, step: impl Into<String>) -> Result<T, Failed> {
        self.map_err(|e| fail(step)(e.to_string()))
    }
}

/// The launcher's `main`: never returns when the workload starts.
pub fn main() -> std::process::ExitCode {
    let r = read_spec().and_then(|spec| run(&spec));
    let Err(f) = r;
    eprintln!("{LAUNCH_ERROR_PREFIX}{}: {}", f.step, f.error);
    std::process::ExitCode::from(u8::try_from(LAUNCH_FAILED).unwrap_or(1))
}

fn read_spec() -> Result<LaunchSpec, Failed> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(MAX_SPEC_BYTES)
        .read_to_end(&mut buf)
        .at("reading the launch spec")?;
    serde_json::from_slice(&buf).at("decoding the launch spec")
}

fn run(spec: &LaunchSpec) -> Result<std::convert::Infallible, Failed> {
    let me = std::process::id().to_string();
    for f in &spec.cgroup_procs {
        std::fs::write(f, &me).at(format!("joining {}", f.display()))?;
    }
    if let Some(ns) = &spec.namespace {
        enter_namespace(ns)?;
    }
    set_rlimits(&spec.rlimits)?;
    let (uid, gid) = (
        nix::unistd::Uid::from_raw(spec.uid),
        nix::unistd::Gid::from_raw(spec.gid),
    );
    nix::unistd::setgroups(&[]).at("dropping supplementary groups")?;
    nix::unistd::setresgid(gid, gid, gid).at("setting the job's gid")?;
    nix::unistd::setresuid(uid, uid, uid).at("setting the job's uid")?;
    nix::sys::prctl::set_no_new_privs().at("setting no_new_privs")?;
    std::env::set_current_dir(&spec.cwd).at(format!("entering {}", spec.cwd.display()))?;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null());
    let e = std::os::unix::process::CommandExt::exec(&mut cmd);
    Err(fail(format!("starting {}", spec.program))(e.to_string()))
}

fn set_rlimits(r: &Rlimits) -> Result<(), Failed> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).at("RLIMIT_CORE")?;
    for (name, res, v) in [
        ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE, r.fsize),
        ("RLIMIT_CPU", Resource::RLIMIT_CPU, r.cpu_secs),
        ("RLIMIT_NPROC", Resource::RLIMIT_NPROC, r.nproc),
    ] {
        if v != 0 {
            setrlimit(res, v, v).at(name)?;
        }
    }
    Ok(())
}

/// Per-mount flags of a mountinfo line's options that a bind remount must keep.
fn kept_flags(opts: &str) -> MsFlags {
    let mut f = MsFlags::empty();
    for o in opts.split(',') {
        f |= match o {
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            _ => MsFlags::empty(),
        };
    }
    f
}

/// Mounts from `/proc/self/mountinfo`: mount id, mount point and per-mount options.
pub(crate) fn mount_points(mountinfo: &str) -> Vec<(u64, PathBuf, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let mp = f.nth(3)?;
            let opts = f.next()?;
            Some((
                id,
                PathBuf::from(super::cgroup::unescape(mp)),
                opts.to_owned(),
            ))
        })
        .collect()
}

/// Makes every mount of the launcher's new namespace read-only (per mount: a bind remount
/// changes only this view), listed by `read_info` (`/proc/self/mountinfo`).
///
/// The mounts are copies of the agent's, and one can go meanwhile: another process removing
/// the directory a mount of its own sits on (a test's or another agent's tmpfs, a private job
/// directory) detaches that mount from every namespace, this one included, possibly between
/// the listing and its remount, which then fails (`ENOENT`). A mount no longer listed holds
/// nothing to make read-only and is skipped; no mount can appear here (propagation is
/// private), so every mount left is read-only at the end. A mount under /proc or /sys that
/// refuses (some pseudo file systems do) is covered later or holds nothing writable for an
/// unprivileged job. Any other failure fails the launch.
fn remount_all_read_only(
    mut read_info: impl FnMut() -> std::io::Result<String>,
    mut remount: impl FnMut(&Path, MsFlags) -> nix::Result<()>,
) -> Result<(), Failed> {
    let info = read_info().at("reading mountinfo")?;
    for (id, mp, opts) in mount_points(&info) {
        let Err(e) = remount(&mp, MsFlags::MS_RDONLY | kept_flags(&opts)) else {
            continue;
        };
        if mp.starts_with("/proc") || mp.starts_with("/sys") {
            continue;
        }
        let now = read_info().at("reading mountinfo")?;
        if mount_points(&now).iter().all(|m| m.0 != id) {
            continue;
        }
        return Err(fail(format!("remounting {} read-only", mp.display()))(
            e.to_string(),
        ));
    }
    Ok(())
}

fn remount(target: &Path, flags: MsFlags) -> nix::Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None::<&str>,
    )
}

fn bind(source: &Path, target: &Path) -> nix::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

fn tmpfs(target: &Path, mode: &str, size: u64, extra: MsFlags) -> nix::Result<()> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | extra,
        Some(format!("mode={mode},size={size}").as_str()),
    )
}

fn open_path(p: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    rustix::fs::open(
        p,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

fn fd_path(fd: &std::os::fd::OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn same_file(a: &Path, fd: &std::os::fd::OwnedFd) -> bool {
    match (rustix::fs::stat(a), rustix::fs::fstat(fd)) {
        (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
}

fn enter_namespace(ns: &NamespaceSpec) -> Result<(), Failed> {
    use nix::sched::{CloneFlags, unshare};
    unshare(CloneFlags::CLONE_NEWNS).at("unsharing the mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .at("making mounts private")?;

    // Everything the job keeps is opened before it is covered.
    let root_fd = open_path(&ns.job_root).at(format!("opening {}", ns.job_root.display()))?;
    let mut devices = Vec::new();
    for name in BASE_DEVICES {
        let p = Path::new("/dev").join(name);
        if let Ok(fd) = open_path(&p) {
            devices.push((PathBuf::from(*name), fd));
        }
    }
    for d in &ns.devices {
        let rel = d
            .strip_prefix("/dev")
            .map_err(|_| fail("devices")(format!("{} is not under /dev", d.display())))?;
        let fd = open_path(d).at(format!("opening {}", d.display()))?;
        devices.push((rel.to_owned(), fd));
    }

    // 1. The whole system read-only.
    remount_all_read_only(|| std::fs::read_to_string("/proc/self/mountinfo"), remount)?;

    // Private temporary directories (counted in the job's memory), first: what lies
    // beneath them is gone from this view, and the job's directory may be there.
    for t in ["/tmp", "/var/tmp"] {
        let p = Path::new(t);
        if p.is_dir() {
            tmpfs(p, "1777", ns.tmp_bytes, MsFlags::empty()).at(format!("mounting {t}"))?;
        }
    }

    // 2. Hidden paths: an empty tmpfs over directories, /dev/null over files.
    let mut covers = Vec::new();
    for h in &ns.hide {
        let Ok(meta) = std::fs::symlink_metadata(h) else {
            continue;
        };
        if meta.is_dir() {
            tmpfs(h, "0711", 1 << 20, MsFlags::MS_NOEXEC)
                .at(format!("covering {}", h.display()))?;
            covers.push(h.clone());
        } else if !meta.file_type().is_symlink() {
            bind(Path::new("/dev/null"), h).at(format!("covering {}", h.display()))?;
        }
    }

    // 3. The job's directory, back where the job expects it, writable; inputs read-only.
    if !same_file(&ns.job_root, &root_fd) {
        std::fs::create_dir_all(&ns.job_root)
            .at(format!("recreating {}", ns.job_root.display()))?;
    }
    bind(&fd_path(&root_fd), &ns.job_root).at(format!("exposing {}", ns.job_root.display()))?;
    remount(&ns.job_root, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
        .at(format!("making {} writable", ns.job_root.display()))?;
    for ro in &ns.read_only {
        bind(ro, ro).at(format!("binding {}", ro.display()))?;
        remount(
            ro,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        )
        .at(format!("making {} read-only", ro.display()))?;
    }
    for c in &covers {
        remount(
            c,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .or_else(|_| {
            mount(
                None::<&str>,
                c,
                None::<&str>,
                MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
        })
        .at(format!("making the cover of {} read-only", c.display()))?;
    }

    // 4. /dev: only what the job may use.
    let dev = Path::new("/dev");
    tmpfs(dev, "0755", 1 << 20, MsFlags::MS_NOEXEC).at("mounting /dev")?;
    for (rel, fd) in &devices {
        let target = dev.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).at(format!("creating {}", parent.display()))?;
        }
        std::fs::File::create(&target).at(format!("creating {}", target.display()))?;
        bind(&fd_path(fd), &target).at(format!("binding {}", target.display()))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).at(format!("linking /dev/{link}"))?;
    }
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).at("creating /dev/shm")?;
    mount(
        None::<&str>,
        dev,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )
    .at("making /dev read-only")?;
    tmpfs(&shm, "1777", ns.tmp_bytes, MsFlags::MS_NOEXEC).at("mounting /dev/shm")?;

    // 5. /proc showing only the job's own processes (last: the steps above use
    // /proc/self/fd).
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("hidepid=invisible"),
    )
    .or_else(|_| {
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("hidepid=2"),
        )
    })
    .at("mounting /proc")?;
    drop(devices);
    drop(root_fd);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locked_flags_and_reads_mount_points() {
        let f = kept_flags("rw,nosuid,nodev,noexec,relatime");
        assert!(f.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC));
        assert!(!f.contains(MsFlags::MS_RDONLY));
        let mi = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                  23 22 0:5 / /dev rw,nosuid - devtmpfs udev rw\n";
        let m = mount_points(mi);
        assert_eq!(m[0], (22, PathBuf::from("/"), "rw,relatime".to_owned()));
        assert_eq!(m[1].1, PathBuf::from("/dev"));
    }

    const MOUNTS: &str = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                          40 22 0:50 / /tmp/t/jobs/a rw,nosuid,nodev - tmpfs tmpfs rw\n\
                          41 22 0:51 / /srv rw - ext4 /dev/vdb rw\n";

    /// Regression (`docs/faults.md`, "Jobs that failed under load"): a mount detached from
    /// the launcher's namespace between its listing and its remount (another process removed
    /// the directory under it) failed the launch, and with it a job the agent had accepted.
    #[test]
    fn mount_gone_before_its_remount_works() {
        let mut listings = 0;
        let mut done = Vec::new();
        let r = remount_all_read_only(
            || {
                listings += 1;
                // Listed once; gone from the second listing on.
                Ok(if listings == 1 {
                    MOUNTS.to_owned()
                } else {
                    MOUNTS
                        .lines()
                        .filter(|l| !l.starts_with("40 "))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            },
            |p, flags| {
                assert!(flags.contains(MsFlags::MS_RDONLY));
                if p == Path::new("/tmp/t/jobs/a") {
                    return Err(nix::errno::Errno::ENOENT);
                }
                done.push(p.to_owned());
                Ok(())
            },
        );
        assert!(r.is_ok(), "{r:?}");
        // Every mount still there was made read-only, the one after the gone one included.
        assert_eq!(done, [PathBuf::from("/"), PathBuf::from("/srv")]);
    }

    #[test]
    fn mount_not_made_read_only_rejects() {
        // Still listed after its remount failed: the launch fails, naming it.
        let r = remount_all_read_only(
            || Ok(MOUNTS.to_owned()),
            |p, _| {
                if p == Path::new("/srv") {
                    Err(nix::errno::Errno::EPERM)
                } else {
                    Ok(())
                }
            },
        );
        let Err(f) = r else {
            panic!("a mount left writable was accepted")
        };
        assert_eq!(f.step, "remounting /srv read-only");
    }

    #[test]
    fn spec_round_trips_through_json() {
        let s = LaunchSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            env: vec![("A".into(), "b".into())],
            cwd: "/x".into(),
            uid: 3_000_001,
            gid: 3_000_001,
            cgroup_procs: vec!["/sys/fs/cgroup/j/cgroup.procs".into()],
            rlimits: Rlimits {
                fsize: 1,
                cpu_secs: 2,
                nproc: 3,
            },
            namespace: Some(NamespaceSpec::default()),
        };
        let j = serde_json::to_vec(&s).unwrap_or_default();
        let back: LaunchSpec = serde_json::from_slice(&j).unwrap_or_else(|_| s.clone());
        assert_eq!(back, s);
        assert!(serde_json::from_slice::<LaunchSpec>(b"{}").is_err());
    }
}
