//! Jobs: ids, lifecycle states, typed end reasons and the record kept of each job.
//!
//! The first layer of the crate: it imports nothing from it. The SCALE encodings derived
//! here are the store's record format (`store::codec`), so a change of fields or of their
//! order is a change of that format.

use parity_scale_codec::{Decode, Encode, Error as CodecError, Input, Output};
use serde::Deserialize;

pub use sigil_job_spec::JobId;

/// Lifecycle state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Encode, Decode)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting to run.
    #[codec(index = 0)]
    Queued,
    /// The workload is running.
    #[codec(index = 1)]
    Running,
    /// Exited with status 0.
    #[codec(index = 2)]
    Succeeded,
    /// Did not succeed (see the reason).
    #[codec(index = 3)]
    Failed,
    /// Cancelled before it finished.
    #[codec(index = 4)]
    Cancelled,
}

impl JobState {
    /// All states, for metrics.
    pub const ALL: [JobState; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// True for states a job never leaves.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// Lower-case name (metrics label, logs).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Usage of a job, as measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct UsageRecord {
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// User + system CPU milliseconds.
    pub cpu_ms: u64,
    /// Peak resident set size, bytes.
    pub peak_memory_bytes: u64,
    /// GPU milliseconds (utilisation-weighted).
    pub gpu_ms: u64,
    /// GPU energy, millijoules.
    pub gpu_energy_mj: u64,
}

/// One collected output file.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OutputMeta {
    /// Path relative to the output directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// Leaf index in the result commitment.
    pub index: u32,
}

/// The OS process a running job was started as, to find it again after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Encode, Decode)]
pub struct ProcessHandle {
    /// Process id (also its process-group id).
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22): tells a reused pid apart.
    pub start_ticks: u64,
}

/// Which log of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Everything known about a job except its spec and its bulk data.
///
/// The SCALE encoding of the fields in order is the store's binary record form (see
/// `store::codec`); records of older stores are JSON objects (`store::legacy`). A change of
/// fields takes a new record tag there.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JobRecord {
    /// Client-chosen id.
    pub job_id: JobId,
    /// SHA-256 of the spec bytes.
    pub spec_hash: [u8; 32],
    /// The buyer key that signed the submission (none when a bearer token was used).
    pub buyer: Option<[u8; 32]>,
    /// Current state.
    pub state: JobState,
    /// Why it ended as it did, or was put back in the queue.
    pub reason: EndReason,
    /// Workload exit code (negative: signal), when it ran to an end.
    pub exit_code: Option<i32>,
    /// Unix milliseconds.
    pub submitted_at_ms: u64,
    /// Unix milliseconds of the last start (0 if never started).
    pub started_at_ms: u64,
    /// Unix milliseconds of the end (0 if not ended).
    pub finished_at_ms: u64,
    /// Measured usage.
    pub usage: UsageRecord,
    /// Collected outputs.
    pub outputs: Vec<OutputMeta>,
    /// Times the workload was started.
    pub attempts: u32,
    /// Bumped on every change: the sequence number of job events.
    pub version: u64,
    /// The running process, while `Running`.
    pub process: Option<ProcessHandle>,
    /// Set when a receipt is stored.
    pub has_receipt: bool,
    /// Digest of the evidence bundle the receipt references.
    pub evidence_digest: Option<[u8; 32]>,
}

impl JobRecord {
    /// A freshly accepted job.
    pub fn queued(
        job_id: JobId,
        spec_hash: [u8; 32],
        buyer: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Self {
        Self {
            job_id,
            spec_hash,
            buyer,
            state: JobState::Queued,
            reason: EndReason::None,
            exit_code: None,
            submitted_at_ms: now_ms,
            started_at_ms: 0,
            finished_at_ms: 0,
            usage: UsageRecord::default(),
            outputs: Vec::new(),
            attempts: 0,
            version: 1,
            process: None,
            has_receipt: false,
            evidence_digest: None,
        }
    }
}

/// Why a job ended as it did (or went back to the queue): carried through the engine, the
/// store and the API as this type, and shown as its text.
///
/// Stored and sent as that text (`JobRecord.reason` in the store's records, `JobStatus.reason`
/// over gRPC), so records of every agent version read back: text that is no variant's is
/// kept as [`EndReason::Other`], and every value reads back as itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// No reason: the job has not ended, or it succeeded.
    #[default]
    None,
    /// Cancelled while it was queued (or before its workload started).
    CancelledBeforeStart,
    /// Cancelled while its workload ran.
    CancelledWhileRunning,
    /// The workload could not be started.
    NotStarted(String),
    /// The outputs could not be collected (e.g. over the cap).
    OutputsNotCollected(String),
    /// Stopped at its wall-time limit.
    WallTime {
        /// The limit, milliseconds.
        limit_ms: u64,
    },
    /// The job's CPU time, summed over its processes, reached its limit.
    CpuTime {
        /// The limit, milliseconds.
        limit_ms: u64,
    },
    /// A process of the job was killed at the job's memory limit.
    MemoryLimit {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The job's directory grew past its disk limit.
    DiskLimit {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The job failed after forks were refused at its process limit.
    ProcessLimit {
        /// The limit.
        limit: u64,
    },
    /// The workload was killed by a signal.
    Signal(u32),
    /// The workload exited with a non-zero status.
    Exit(i32),
    /// Stopped by the agent's shutdown; not run again.
    Shutdown,
    /// Stopped by the agent's shutdown; queued to run again at the next start.
    ShutdownRequeued,
    /// The agent restarted while it ran; not run again.
    Restarted,
    /// The agent restarted during attempt `attempt`; queued to run again.
    RestartRequeued {
        /// The interrupted attempt.
        attempt: u32,
    },
    /// It could not be run (e.g. its spec no longer validates).
    NotRun(String),
    /// An internal failure (details are logged, not recorded).
    Internal,
    /// Text no other variant produces (records of other agent versions).
    Other(String),
}

const SHUTDOWN: &str = "stopped by agent shutdown";
const SHUTDOWN_REQUEUED: &str = "stopped by agent shutdown; will run again at the next start";
const RESTARTED: &str = "the agent restarted while the job was running";
const CANCELLED_BEFORE_START: &str = "cancelled before it started";
const CANCELLED_WHILE_RUNNING: &str = "cancelled while running";
const INTERNAL: &str = "internal error";
const NOT_STARTED: &str = "workload did not start: ";
const OUTPUTS_NOT_COLLECTED: &str = "outputs not collected: ";

impl EndReason {
    /// True for [`EndReason::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The reason a text shows (the inverse of `to_string`).
    pub fn parse(text: &str) -> Self {
        let parsed = Self::parse_known(text);
        match parsed {
            // Only where the text is exactly what the variant shows, so it reads back as itself.
            Some(r) if r.to_string() == text => r,
            _ => Self::Other(text.to_owned()),
        }
    }

    fn parse_known(text: &str) -> Option<Self> {
        let fixed = [
            ("", Self::None),
            (CANCELLED_BEFORE_START, Self::CancelledBeforeStart),
            (CANCELLED_WHILE_RUNNING, Self::CancelledWhileRunning),
            (SHUTDOWN, Self::Shutdown),
            (SHUTDOWN_REQUEUED, Self::ShutdownRequeued),
            (RESTARTED, Self::Restarted),
            (INTERNAL, Self::Internal),
        ];
        if let Some((_, r)) = fixed.into_iter().find(|(t, _)| *t == text) {
            return Some(r);
        }
        if let Some(rest) = text.strip_prefix(NOT_STARTED) {
            return Some(Self::NotStarted(rest.to_owned()));
        }
        if let Some(rest) = text.strip_prefix(OUTPUTS_NOT_COLLECTED) {
            return Some(Self::OutputsNotCollected(rest.to_owned()));
        }
        if let Some(n) = text
            .strip_prefix("wall-time limit of ")
            .and_then(|t| t.strip_suffix(" ms reached"))
        {
            return n.parse().ok().map(|limit_ms| Self::WallTime { limit_ms });
        }
        if let Some(n) = text
            .strip_prefix("CPU-time limit of ")
            .and_then(|t| t.strip_suffix(" ms reached"))
        {
            return n.parse().ok().map(|limit_ms| Self::CpuTime { limit_ms });
        }
        if let Some(n) = text
            .strip_prefix("memory limit of ")
            .and_then(|t| t.strip_suffix(" bytes reached"))
        {
            return n
                .parse()
                .ok()
                .map(|limit_bytes| Self::MemoryLimit { limit_bytes });
        }
        if let Some(n) = text
            .strip_prefix("disk limit of ")
            .and_then(|t| t.strip_suffix(" bytes reached"))
        {
            return n
                .parse()
                .ok()
                .map(|limit_bytes| Self::DiskLimit { limit_bytes });
        }
        if let Some(n) = text
            .strip_prefix("process limit of ")
            .and_then(|t| t.strip_suffix(" reached"))
        {
            return n.parse().ok().map(|limit| Self::ProcessLimit { limit });
        }
        if let Some(n) = text.strip_prefix("killed by signal ") {
            return n.parse().ok().map(Self::Signal);
        }
        if let Some(n) = text.strip_prefix("exited with status ") {
            return n.parse().ok().map(Self::Exit);
        }
        if let Some(n) = text.strip_prefix("re-queued after the agent restarted during attempt ") {
            return n
                .parse()
                .ok()
                .map(|attempt| Self::RestartRequeued { attempt });
        }
        None
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::CancelledBeforeStart => f.write_str(CANCELLED_BEFORE_START),
            Self::CancelledWhileRunning => f.write_str(CANCELLED_WHILE_RUNNING),
            Self::NotStarted(e) => write!(f, "{NOT_STARTED}{e}"),
            Self::OutputsNotCollected(e) => write!(f, "{OUTPUTS_NOT_COLLECTED}{e}"),
            Self::WallTime { limit_ms } => write!(f, "wall-time limit of {limit_ms} ms reached"),
            Self::CpuTime { limit_ms } => write!(f, "CPU-time limit of {limit_ms} ms reached"),
            Self::MemoryLimit { limit_bytes } => {
                write!(f, "memory limit of {limit_bytes} bytes reached")
            }
            Self::ProcessLimit { limit } => write!(f, "process limit of {limit} reached"),
            Self::DiskLimit { limit_bytes } => {
                write!(f, "disk limit of {limit_bytes} bytes reached")
            }
            Self::Signal(s) => write!(f, "killed by signal {s}"),
            Self::Exit(c) => write!(f, "exited with status {c}"),
            Self::Shutdown => f.write_str(SHUTDOWN),
            Self::ShutdownRequeued => f.write_str(SHUTDOWN_REQUEUED),
            Self::Restarted => f.write_str(RESTARTED),
            Self::RestartRequeued { attempt } => {
                write!(
                    f,
                    "re-queued after the agent restarted during attempt {attempt}"
                )
            }
            Self::Internal => f.write_str(INTERNAL),
            Self::NotRun(e) | Self::Other(e) => f.write_str(e),
        }
    }
}

/// Encoded as its text (a SCALE string), as the records of every agent version hold it.
impl Encode for EndReason {
    fn size_hint(&self) -> usize {
        // A capacity hint only: most reasons are short, and formatting one here as well as
        // in `encode_to` would cost the store's record encoding a second allocation.
        64
    }

    fn encode_to<T: Output + ?Sized>(&self, dest: &mut T) {
        self.to_string().encode_to(dest);
    }
}

impl Decode for EndReason {
    fn decode<I: Input>(input: &mut I) -> Result<Self, CodecError> {
        String::decode(input).map(|s| Self::parse(&s))
    }
}

/// Read from its text (the JSON records of older stores).
impl<'de> Deserialize<'de> for EndReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

#[cfg(test)]
mod tests;
