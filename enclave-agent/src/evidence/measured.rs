//! Measured boot on TDX: the firmware's event log and the agent's own identity.
//!
//! * The firmware log: the ACPI CCEL table's data area
//!   (`/sys/firmware/acpi/tables/data/CCEL`), read once at start and carried in
//!   every bundle (version 5) without the area's unused fill; the verifier replays it
//!   to the quote's RTMRs.
//! * The agent's identity: at start the agent extends RTMR3 with SHA-384 of its
//!   own executable and of its effective configuration, through the kernel's TDX
//!   measurement interface (`/sys/devices/virtual/misc/tdx_guest/measurements/
//!   rtmr3:sha384`, Linux >= 6.16: writing 48 bytes extends the register,
//!   reading gives its value), and records both events in its own log. The log
//!   lives in `evidence.measurement_log` (under `/run`: it must live exactly as
//!   long as the registers, one boot), so a restarted agent appends to what an
//!   earlier start of this boot extended.
//!
//! Start, in order:
//! 1. Read the CCEL (absent: no firmware log; the agent's events then stand alone).
//! 2. Without the measurement interface: no agent events, said once in the log
//!    (the claim is absent, never invented).
//! 3. Reconcile the log with the register: the longest prefix of the logged events
//!    that, replayed after the firmware log's RTMR3 events, gives the register's
//!    value (events logged by a start that died before extending are dropped). No
//!    prefix matches: software outside the agent extended RTMR3; measured boot is
//!    left out of the bundles (a replay could not match) and the reason logged.
//! 4. Append each new event to the log file (written whole, then renamed), then
//!    extend the register; read it back and compare with the replay.
//!
//! The trust this gives is bounded, and `docs/measured-boot.md` says how: the agent
//! measures itself, so the events show which executable *said* it started. Only a
//! policy that also pins the boot chain (RTMR1/RTMR2 events: kernel, initrd,
//! command line) makes that mean "this image, which starts this agent".

use std::path::{Path, PathBuf};

use attestation_verifier::bundle::{AgentEvent, AgentEventKind, MAX_AGENT_EVENTS, MeasuredBoot};
use attestation_verifier::eventlog::parse_event_log;
use attestation_verifier::verify::measured::extend;
use parity_scale_codec::{Decode, Encode};
use sha2::{Digest, Sha384};

use crate::evidence::backend::tsm::TsmFs;

pub use crate::config::{CCEL_PATH, DEFAULT_MEASUREMENT_LOG as DEFAULT_LOG_PATH, RTMR3_PATH};

/// Why the agent's measurements are not in the evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The kernel has no TDX measurement interface.
    #[error(
        "the kernel has no TDX measurement interface ({path}: {reason}); Linux 6.16 or later exposes it"
    )]
    NoInterface {
        /// The attribute.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// RTMR3 holds extensions the agent's log does not account for.
    #[error(
        "RTMR3 ({register}) holds extensions that neither the firmware log nor the agent's log \
         ({log}) account for"
    )]
    Foreign {
        /// The register's value, hex.
        register: String,
        /// The agent's log.
        log: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{op} {path}: {reason}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// The register did not take the value the replay gives.
    #[error("RTMR3 is {found} after extending, the replay gives {expected}")]
    Diverged {
        /// The replay, hex.
        expected: String,
        /// The register, hex.
        found: String,
    },
    /// The agent's log is full ([`MAX_AGENT_EVENTS`], many restarts in one boot).
    #[error("the agent's measurement log holds {0} events, the most a bundle carries")]
    LogFull(usize),
}

/// Where the collector reads and writes.
#[derive(Debug, Clone)]
pub struct MeasurePaths {
    /// The CCEL data area.
    pub ccel: PathBuf,
    /// The RTMR3 attribute.
    pub rtmr3: PathBuf,
    /// The agent's own log.
    pub log: PathBuf,
}

impl Default for MeasurePaths {
    fn default() -> Self {
        Self {
            ccel: CCEL_PATH.into(),
            rtmr3: RTMR3_PATH.into(),
            log: DEFAULT_LOG_PATH.into(),
        }
    }
}

/// What the agent measures about itself at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfMeasurement {
    /// SHA-384 of the executable.
    pub binary: [u8; 48],
    /// SHA-384 of the effective configuration ([`config_digest`]).
    pub config: [u8; 48],
}

/// The measured-boot evidence of this boot, for every bundle.
#[derive(Debug, Clone, Default)]
pub struct MeasuredBootState {
    /// What bundles carry (empty when nothing could be had).
    pub evidence: MeasuredBoot,
    /// Why the agent's own events are absent, when they are.
    pub unmeasured: Option<MeasureError>,
}

/// Reads the firmware log and extends RTMR3 with `me` (steps 1 to 4). Never fails:
/// what could not be done is in [`MeasuredBootState::unmeasured`], and evidence that
/// could not verify is left out rather than sent.
pub fn measure_at_start(
    fs: &dyn TsmFs,
    paths: &MeasurePaths,
    me: &SelfMeasurement,
) -> MeasuredBootState {
    // Step 1: the log without the table's unused fill (most of a 64 KiB CCEL), which
    // replays alike and costs nothing to carry.
    let parsed = fs
        .read(&paths.ccel)
        .ok()
        .and_then(|b| parse_event_log(&b).ok().map(|l| (b, l)));
    let base = parsed.as_ref().map_or([0u8; 48], |(_, l)| {
        let [.., r3] = l.replay();
        r3
    });
    let ccel = parsed.map(|(mut b, l)| {
        b.truncate(l.used_len);
        b
    });
    let with_log = |agent_events: Vec<AgentEvent>| MeasuredBoot {
        event_log: ccel.clone(),
        agent_events,
        tpm_quote: None,
    };
    // Step 2
    let current = match read_register(fs, &paths.rtmr3) {
        Ok(r) => r,
        Err(e) => {
            return MeasuredBootState {
                evidence: with_log(Vec::new()),
                unmeasured: Some(e),
            };
        }
    };
    // Step 3
    let logged = read_log(fs, &paths.log);
    let Some(kept) = matching_prefix(&base, &logged, &current) else {
        return MeasuredBootState {
            evidence: MeasuredBoot::default(),
            unmeasured: Some(MeasureError::Foreign {
                register: hex::encode(current),
                log: paths.log.clone(),
            }),
        };
    };
    let mut events: Vec<AgentEvent> = logged.into_iter().take(kept).collect();
    // Step 4
    match extend_all(fs, paths, &base, &mut events, me) {
        Ok(()) => MeasuredBootState {
            evidence: with_log(events),
            unmeasured: None,
        },
        Err(e) => {
            // The register may now hold an event the log lacks (or the reverse);
            // whatever the bundles carried could not replay, so carry nothing.
            MeasuredBootState {
                evidence: MeasuredBoot::default(),
                unmeasured: Some(e),
            }
        }
    }
}

fn extend_all(
    fs: &dyn TsmFs,
    paths: &MeasurePaths,
    base: &[u8; 48],
    events: &mut Vec<AgentEvent>,
    me: &SelfMeasurement,
) -> Result<(), MeasureError> {
    for (kind, digest) in [
        (AgentEventKind::Binary, me.binary),
        (AgentEventKind::Config, me.config),
    ] {
        if events.len() >= MAX_AGENT_EVENTS {
            return Err(MeasureError::LogFull(events.len()));
        }
        events.push(AgentEvent { kind, digest });
        write_log(fs, &paths.log, events)?;
        fs.write(&paths.rtmr3, &digest)
            .map_err(|e| io_error("extending", &paths.rtmr3, &e))?;
    }
    let expected = replay(base, events);
    let found = read_register(fs, &paths.rtmr3)?;
    if found != expected {
        return Err(MeasureError::Diverged {
            expected: hex::encode(expected),
            found: hex::encode(found),
        });
    }
    Ok(())
}

/// RTMR3 after `events`, starting from `base`.
fn replay(base: &[u8; 48], events: &[AgentEvent]) -> [u8; 48] {
    events.iter().fold(*base, |r, e| extend(&r, &e.digest))
}

/// The longest `k` such that replaying `events[..k]` after `base` gives `current`.
fn matching_prefix(base: &[u8; 48], events: &[AgentEvent], current: &[u8; 48]) -> Option<usize> {
    let mut r = *base;
    let mut best = (r == *current).then_some(0);
    for (i, e) in events.iter().enumerate() {
        r = extend(&r, &e.digest);
        if r == *current {
            best = Some(i.saturating_add(1));
        }
    }
    best
}

/// The register's value: 48 raw bytes, or 96 hex digits (with a trailing newline).
fn read_register(fs: &dyn TsmFs, path: &Path) -> Result<[u8; 48], MeasureError> {
    let bytes = fs.read(path).map_err(|e| MeasureError::NoInterface {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Ok(raw) = <[u8; 48]>::try_from(bytes.as_slice()) {
        return Ok(raw);
    }
    let mut out = [0u8; 48];
    hex::decode_to_slice(String::from_utf8_lossy(&bytes).trim(), &mut out).map_err(|_| {
        MeasureError::NoInterface {
            path: path.to_path_buf(),
            reason: format!("{} bytes that are not a SHA-384 value", bytes.len()),
        }
    })?;
    Ok(out)
}

/// The agent's log: SCALE `Vec<AgentEvent>`; missing or unreadable is empty (the
/// reconciliation then decides what the register holds).
fn read_log(fs: &dyn TsmFs, path: &Path) -> Vec<AgentEvent> {
    fs.read(path)
        .ok()
        .and_then(|b| Vec::<AgentEvent>::decode(&mut b.as_slice()).ok())
        .filter(|v| v.len() <= MAX_AGENT_EVENTS)
        .unwrap_or_default()
}

fn write_log(fs: &dyn TsmFs, path: &Path, events: &[AgentEvent]) -> Result<(), MeasureError> {
    let tmp = path.with_extension("tmp");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, &e))?;
    }
    fs.write(&tmp, &events.to_vec().encode())
        .map_err(|e| io_error("writing", &tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error("renaming", &tmp, &e))
}

fn io_error(op: &'static str, path: &Path, e: &std::io::Error) -> MeasureError {
    MeasureError::Io {
        op,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// SHA-384 of the running executable (`/proc/self/exe`).
pub fn binary_digest() -> std::io::Result<[u8; 48]> {
    file_digest(Path::new("/proc/self/exe"))
}

/// SHA-384 of a file, read in chunks.
pub fn file_digest(path: &Path) -> std::io::Result<[u8; 48]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha384::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        h.update(chunk);
    }
    Ok(h.finalize().into())
}

/// SHA-384 of a configuration's canonical JSON: every key sorted, no spaces, the
/// bearer token replaced by whether one is set (a digest published in evidence must
/// not let anyone test guesses of a secret).
pub fn config_digest(cfg: &crate::config::Config) -> [u8; 48] {
    Sha384::digest(canonical_config(cfg).as_bytes()).into()
}

/// The canonical JSON [`config_digest`] hashes (`sigil-agent measure` prints it).
pub fn canonical_config(cfg: &crate::config::Config) -> String {
    let mut c = cfg.clone();
    c.auth.token = crate::config::Secret::new(if c.auth.token.is_empty() { "" } else { "[set]" });
    let value = serde_json::to_value(&c).unwrap_or(serde_json::Value::Null);
    let mut out = String::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = m.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
