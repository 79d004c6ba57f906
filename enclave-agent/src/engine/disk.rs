//! The state directory's disk: new jobs are refused, with a status that names the directory
//! and the cause, while it is read-only or has less free space than `jobs.min_free_bytes`.
//!
//! The room below `jobs.min_free_bytes` is kept for the jobs already accepted (their state
//! changes, outputs, logs and receipts), so a full disk stops new work before the store
//! itself fails a write; what was accepted is still run and served. Once space is freed the
//! next submission is accepted again: nothing is latched.

use std::path::Path;

use crate::store::{DiskFault, StoreError};

use super::AgentError;

/// Inodes kept free along with the bytes.
const MIN_FREE_INODES: u64 = 64;

/// What the state directory's file system has free, or why it takes no writes.
pub(crate) fn check(state_dir: &Path, reserve_bytes: u64) -> Result<u64, DiskFault> {
    let Ok(st) = rustix::fs::statvfs(state_dir) else {
        // Not knowing is not a refusal: the store's own writes say when the disk fails.
        return Ok(u64::MAX);
    };
    if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(DiskFault::ReadOnly);
    }
    let free_bytes = st.f_bavail.saturating_mul(st.f_frsize);
    // File systems without inode accounting report zero files in all.
    let inodes_short = st.f_files > 0 && st.f_favail < MIN_FREE_INODES;
    if free_bytes == 0 || inodes_short {
        return Err(DiskFault::Full);
    }
    if free_bytes < reserve_bytes {
        return Err(DiskFault::LowSpace {
            free_bytes,
            reserve_bytes,
        });
    }
    Ok(free_bytes)
}

/// The request error of a disk fault of the state directory.
pub(crate) fn refusal(state_dir: &Path, fault: DiskFault, retry_after_ms: u64) -> AgentError {
    AgentError::StateDir {
        dir: state_dir.display().to_string(),
        fault,
        retry_after_ms,
    }
}

/// A store error of the disk said as one of the state directory (others unchanged).
pub(crate) fn named(e: AgentError, state_dir: &Path, retry_after_ms: u64) -> AgentError {
    match e {
        AgentError::Store(StoreError::Disk { fault, .. }) => {
            refusal(state_dir, fault, retry_after_ms)
        }
        other => other,
    }
}
