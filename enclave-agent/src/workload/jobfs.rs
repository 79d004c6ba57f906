//! Job directories, handled without following links.
//!
//! Every path inside a job directory is opened relative to a directory handle with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`: a symlink, a `..` or
//! an absolute path planted by a workload never leads the agent (root) outside the job's
//! directory, and a FIFO or device is never opened for reading (`O_NONBLOCK`, then only
//! regular files are read, judged on the open handle, not on an earlier `lstat`).
//!
//! Ownership, isolated jobs (uid = gid = the job's id):
//!
//! | path | owner | mode |
//! |---|---|---|
//! | `<job>/` | root : job | 0710 (only the job may enter) |
//! | `<job>/in/` and its files | root : job | 0750 / 0640 (read-only for the job) |
//! | `<job>/out/`, `<job>/work/` | job : job | 0700 |
//!
//! With isolation off and `jobs.run_as` set, the whole tree belongs to that user as before.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::JobDirs;

/// Who owns a job's directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The agent (no change).
    Agent,
    /// `jobs.run_as` with isolation off: the whole tree.
    Shared {
        /// uid.
        uid: u32,
        /// gid.
        gid: u32,
    },
    /// An isolated job: see the module table.
    Job {
        /// uid = gid.
        id: u32,
    },
}

/// A job-directory operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    /// What was done.
    pub op: &'static str,
    /// Path relative to the job directory (or the directory itself).
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(rustix::io::Errno) -> FsError + 'a {
    move |e| FsError {
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

fn open_dir_at(dir: impl AsFd, name: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        BENEATH,
    )
}

fn open_root(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn chown(fd: impl AsFd, uid: u32, gid: u32, mode: u32) -> rustix::io::Result<()> {
    rustix::fs::fchown(
        &fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
}

/// Creates fresh directories for an attempt (any left by an earlier attempt are removed),
/// writes the inputs and sets ownership before the job exists. Blocking.
pub fn prepare(dirs: &JobDirs, inputs: &[(PathBuf, Vec<u8>)], owner: Owner) -> Result<(), FsError> {
    prepare_with(dirs, inputs, &[], owner, None)
}

/// [`prepare`], plus secret input files, and with `private = Some(bytes)` the job's whole
/// directory on a tmpfs of that size mounted for it (so neither its secrets nor what it
/// writes next to them reach a disk). Blocking.
pub fn prepare_with(
    dirs: &JobDirs,
    inputs: &[(PathBuf, Vec<u8>)],
    secrets: &[(PathBuf, zeroize::Zeroizing<Vec<u8>>)],
    owner: Owner,
    private: Option<u64>,
) -> Result<(), FsError> {
    let here = Path::new(".");
    // A private directory left by an attempt that did not end cleanly.
    let _ = nix::mount::umount2(&dirs.root, nix::mount::MntFlags::MNT_DETACH);
    match std::fs::remove_dir_all(&dirs.root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // `remove_dir_all` does not follow symlinks (it works on directory handles).
        Err(source) => {
            return Err(FsError {
                op: "removing",
                path: dirs.root.clone(),
                source,
            });
        }
    }
    if let Some(parent) = dirs.root.parent() {
        std::fs::create_dir_all(parent).map_err(|source| FsError {
            op: "creating",
            path: parent.to_owned(),
            source,
        })?;
    }
    std::fs::create_dir(&dirs.root).map_err(|source| FsError {
        op: "creating",
        path: dirs.root.clone(),
        source,
    })?;
    if let Some(size) = private {
        nix::mount::mount(
            Some("tmpfs"),
            &dirs.root,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("mode=0700,size={size}").as_str()),
        )
        .map_err(|e| FsError {
            op: "mounting a private tmpfs on",
            path: dirs.root.clone(),
            source: std::io::Error::from(e),
        })?;
    }
    let root = open_root(&dirs.root).map_err(err("opening", &dirs.root))?;
    for d in ["in", "out", "work"] {
        rustix::fs::mkdirat(&root, d, Mode::from_raw_mode(0o700))
            .map_err(err("creating", Path::new(d)))?;
    }
    let input = open_dir_at(&root, Path::new("in")).map_err(err("opening", Path::new("in")))?;
    for (rel, content) in inputs {
        write_input(&input, rel, content)?;
    }
    for (rel, content) in secrets {
        write_input(&input, rel, content)?;
    }
    match owner {
        Owner::Agent => {}
        Owner::Shared { uid, gid } => {
            chown_tree(&root, here, uid, gid, None)?;
        }
        Owner::Job { id } => {
            chown(&root, 0, id, 0o710).map_err(err("chown", here))?;
            chown_tree(&input, Path::new("in"), 0, id, Some((0o750, 0o640)))?;
            for d in ["out", "work"] {
                let fd = open_dir_at(&root, Path::new(d)).map_err(err("opening", Path::new(d)))?;
                chown(&fd, id, id, 0o700).map_err(err("chown", Path::new(d)))?;
            }
        }
    }
    Ok(())
}

/// Removes a job's private directory: the tmpfs is unmounted (its pages, secrets included,
/// are freed with it) and whatever is left of the directory removed. Blocking.
pub fn wipe_private(dirs: &JobDirs) -> Result<(), FsError> {
    match nix::mount::umount2(&dirs.root, nix::mount::MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a job with secrets on an agent without isolation).
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(FsError {
                op: "unmounting",
                path: dirs.root.clone(),
                source: std::io::Error::from(e),
            });
        }
    }
    match std::fs::remove_dir_all(&dirs.root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FsError {
            op: "removing",
            path: dirs.root.clone(),
            source,
        }),
    }
}

/// Writes one input under `in/`, creating its directories; a path that cannot be laid out
/// (a file where a directory is needed, an existing name) fails with the system's error.
fn write_input(input: &OwnedFd, rel: &Path, content: &[u8]) -> Result<(), FsError> {
    let mut dir: Option<OwnedFd> = None;
    let comps: Vec<_> = rel.components().collect();
    let Some((last, parents)) = comps.split_last() else {
        return Err(FsError {
            op: "writing",
            path: rel.to_owned(),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    };
    for c in parents {
        let name = Path::new(c.as_os_str());
        let at = dir.as_ref().unwrap_or(input);
        match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err("creating directory for", rel)(e)),
        }
        let next = open_dir_at(at, name).map_err(err("opening directory for", rel))?;
        dir = Some(next);
    }
    let at = dir.as_ref().unwrap_or(input);
    let fd = rustix::fs::openat2(
        at,
        Path::new(last.as_os_str()),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
        BENEATH,
    )
    .map_err(err("creating", rel))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(content).map_err(|source| FsError {
        op: "writing",
        path: rel.to_owned(),
        source,
    })
}

/// Sets owner and mode on a tree (directories, regular files), never following links.
fn chown_tree(
    dir: &OwnedFd,
    at: &Path,
    uid: u32,
    gid: u32,
    modes: Option<(u32, u32)>,
) -> Result<(), FsError> {
    let set = |fd: &OwnedFd, mode: Option<u32>, p: &Path| -> Result<(), FsError> {
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(err("chown", p))?;
        if let Some(m) = mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(m)).map_err(err("chmod", p))?;
        }
        Ok(())
    };
    set(dir, modes.map(|m| m.0), at)?;
    for (name, is_dir) in entries(dir, at)? {
        let p = at.join(&name);
        if is_dir {
            let sub = open_dir_at(dir, Path::new(&name)).map_err(err("opening", &p))?;
            chown_tree(&sub, &p, uid, gid, modes)?;
        } else {
            let fd = rustix::fs::openat2(
                dir,
                Path::new(&name),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
                BENEATH,
            )
            .map_err(err("opening", &p))?;
            let st = rustix::fs::fstat(&fd).map_err(err("stat", &p))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            {
                set(&fd, modes.map(|m| m.1), &p)?;
            }
        }
    }
    Ok(())
}

/// Names in a directory (not `.`/`..`) and whether each is a directory (from `d_type`,
/// refined with `statat` without following links where the file system does not say).
fn entries(dir: &OwnedFd, at: &Path) -> Result<Vec<(std::ffi::OsString, bool)>, FsError> {
    use std::os::unix::ffi::OsStrExt;
    let mut d = rustix::fs::Dir::read_from(dir).map_err(err("listing", at))?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e.map_err(err("listing", at))?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = std::ffi::OsStr::from_bytes(name).to_owned();
        let is_dir = match e.file_type() {
            rustix::fs::FileType::Directory => true,
            rustix::fs::FileType::Unknown => {
                rustix::fs::statat(dir, Path::new(&name), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| {
                        rustix::fs::FileType::from_raw_mode(s.st_mode)
                            == rustix::fs::FileType::Directory
                    })
                    .unwrap_or(false)
            }
            _ => false,
        };
        out.push((name, is_dir));
    }
    Ok(out)
}

/// Why the outputs were not collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// An output could not be sealed to the buyer's recipient key.
    #[error("outputs could not be sealed to the buyer's key: {0}")]
    Sealing(String),
    /// The outputs are larger than the job's cap.
    #[error("outputs exceed the cap of {cap} bytes")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// More files than allowed.
    #[error("outputs hold more than {cap} files")]
    TooManyFiles {
        /// The cap.
        cap: u64,
    },
    /// Directories nested deeper than allowed.
    #[error("outputs are nested deeper than {cap} directories")]
    TooDeep {
        /// The cap.
        cap: usize,
    },
    /// A file name is not UTF-8.
    #[error("output file name {0:?} is not UTF-8")]
    NotUtf8(PathBuf),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] FsError),
}

/// Limits of a collection.
#[derive(Clone, Copy, Debug)]
pub struct CollectLimits {
    /// Total bytes.
    pub bytes: u64,
    /// Files.
    pub files: u64,
    /// Directory depth.
    pub depth: usize,
}

/// Collects the regular files under `dir` (symlinks, FIFOs, sockets and devices are
/// skipped without being opened for reading), sorted by path. Blocking.
pub fn collect(dir: &Path, limits: CollectLimits) -> Result<Vec<(String, Vec<u8>)>, OutputError> {
    let root = open_root(dir).map_err(err("opening", dir))?;
    let mut out = Vec::new();
    let mut total = 0u64;
    walk(&root, Path::new(""), 0, limits, &mut total, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    dir: &OwnedFd,
    at: &Path,
    depth: usize,
    limits: CollectLimits,
    total: &mut u64,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), OutputError> {
    if depth > limits.depth {
        return Err(OutputError::TooDeep { cap: limits.depth });
    }
    for (name, _) in entries(dir, at)? {
        let rel = at.join(&name);
        let fd = match rustix::fs::openat2(
            dir,
            Path::new(&name),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH,
        ) {
            Ok(fd) => fd,
            // A symlink (ELOOP), or a socket (ENXIO): not an output.
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NXIO) => continue,
            Err(e) => return Err(err("opening", &rel)(e).into()),
        };
        let st = rustix::fs::fstat(&fd).map_err(err("stat", &rel))?;
        match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::Directory => {
                walk(&fd, &rel, depth.saturating_add(1), limits, total, out)?;
            }
            rustix::fs::FileType::RegularFile => {
                if u64::try_from(out.len()).unwrap_or(u64::MAX) >= limits.files {
                    return Err(OutputError::TooManyFiles { cap: limits.files });
                }
                let name = rel
                    .to_str()
                    .ok_or_else(|| OutputError::NotUtf8(rel.clone()))?
                    .to_owned();
                // Read at most one byte past what the cap leaves: the size is what was
                // read, not what an earlier stat said.
                let room = limits.bytes.saturating_sub(*total);
                let mut data = Vec::new();
                std::fs::File::from(fd)
                    .take(room.saturating_add(1))
                    .read_to_end(&mut data)
                    .map_err(|source| FsError {
                        op: "reading",
                        path: rel.clone(),
                        source,
                    })?;
                *total = total.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                if *total > limits.bytes {
                    return Err(OutputError::TooLarge { cap: limits.bytes });
                }
                out.push((name, data));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Most directory entries [`disk_usage`] looks at (a job with more is counted by these).
pub const DISK_USAGE_MAX_ENTRIES: u64 = 1_000_000;

/// Bytes allocated under `dir` (blocks of regular files and directories, links not
/// followed), walking at most [`DISK_USAGE_MAX_ENTRIES`] entries. Blocking.
pub fn disk_usage(dir: &Path) -> u64 {
    fn walk(dir: &OwnedFd, depth: usize, seen: &mut u64, total: &mut u64) {
        let Ok(list) = entries(dir, Path::new("")) else {
            return;
        };
        for (name, is_dir) in list {
            *seen = seen.saturating_add(1);
            if *seen > DISK_USAGE_MAX_ENTRIES {
                return;
            }
            let Ok(st) =
                rustix::fs::statat(dir, Path::new(&name), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            let blocks = u64::try_from(st.st_blocks).unwrap_or(0);
            *total = total.saturating_add(blocks.saturating_mul(512));
            if is_dir
                && depth < 256
                && let Ok(sub) = open_dir_at(dir, Path::new(&name))
            {
                walk(&sub, depth.saturating_add(1), seen, total);
            }
        }
    }
    let Ok(root) = open_root(dir) else {
        return 0;
    };
    let (mut seen, mut total) = (0u64, 0u64);
    walk(&root, 0, &mut seen, &mut total);
    total
}
