//! Measured boot on TDX: the bundle's firmware event log and the agent's own
//! RTMR3 events, replayed and bound to the registers of the verified quote.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Parse the firmware log, when the bundle carries one ([`crate::eventlog`]:
//!    the TCG crypto-agile CCEL, or a dstack JSON log).
//! 2. Replay it from zero into RTMR0..=RTMR3 (none: four zero registers).
//! 3. Replay the agent's events after it into RTMR3, in bundle order:
//!    `RTMR3 := SHA-384(RTMR3 || digest)`.
//! 4. Compare with the quote's registers: all four with a firmware log; only RTMR3
//!    without one (then nothing is claimed about RTMR0..=RTMR2). Every register that
//!    differs is reported.
//!
//! The quote's registers must come from a quote that verified: a replay only moves
//! trust from the registers to the events, it creates none.

use alloc::vec::Vec;

use sha2::{Digest, Sha384};

use crate::bundle::{AgentEvent, AgentEventKind, MeasuredBoot};
use crate::eventlog::{EventLog, EventLogError, mismatches, parse_event_log};
use crate::receipt::TeeKind;
use crate::verdict::Verified;

/// Why a bundle's measured-boot evidence is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasuredBootError {
    /// The firmware event log does not parse.
    #[error("event log: {0}")]
    Log(EventLogError),
    /// A replayed register differs from the quote's ([`EventLogError::RtmrMismatch`]).
    #[error("measured boot: {0}")]
    Replay(EventLogError),
    /// An event log or agent events with CPU evidence whose registers they
    /// cannot be replayed against.
    #[error(
        "the bundle carries {what} but {tee} evidence, which has no RTMRs to replay it against"
    )]
    NoRegisters {
        /// `an event log` or `agent events`.
        what: &'static str,
        /// The CPU evidence's TEE.
        tee: TeeKind,
    },
}

/// Measured-boot evidence whose replay equals a verified quote's registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasuredBootEvidence {
    /// The firmware log, when the bundle carried one.
    pub log: Option<EventLog>,
    /// The agent's events, in the order extended.
    pub agent_events: Vec<AgentEvent>,
    /// Which registers the replay covers (RTMR0..=RTMR3).
    pub covered: [bool; 4],
    /// The replayed registers (equal to the quote's where covered).
    pub rtmrs: [[u8; 48]; 4],
}

impl MeasuredBootEvidence {
    /// The digest of the agent binary of the agent's last start (its last
    /// [`AgentEventKind::Binary`] event), if it measured itself.
    pub fn agent_digest(&self) -> Option<&[u8; 48]> {
        self.last(AgentEventKind::Binary)
    }

    /// The digest of the effective configuration of the agent's last start.
    pub fn config_digest(&self) -> Option<&[u8; 48]> {
        self.last(AgentEventKind::Config)
    }

    fn last(&self, kind: AgentEventKind) -> Option<&[u8; 48]> {
        self.agent_events
            .iter()
            .rev()
            .find(|e| e.kind == kind)
            .map(|e| &e.digest)
    }

    /// Whether the firmware log has an event extending `rtmr` (0..=3) with `digest`.
    pub fn has_event(&self, rtmr: u8, digest: &[u8; 48]) -> bool {
        self.log.as_ref().is_some_and(|l| {
            l.events
                .iter()
                .any(|e| e.rtmr == Some(rtmr) && &e.sha384 == digest)
        })
    }
}

/// Parses, replays and binds `measured` to `quote_rtmrs` (RTMR0..=RTMR3 of a quote
/// the caller verified). `None` when the bundle carries neither a log nor agent events.
pub fn verify_measured_tdx(
    measured: &MeasuredBoot,
    quote_rtmrs: &[[u8; 48]; 4],
) -> Option<Result<Verified<MeasuredBootEvidence>, Vec<MeasuredBootError>>> {
    if measured.event_log.is_none() && measured.agent_events.is_empty() {
        return None;
    }
    // Step 1
    let log = match measured.event_log.as_deref().map(parse_event_log) {
        None => None,
        Some(Ok(log)) => Some(log),
        Some(Err(e)) => return Some(Err(alloc::vec![MeasuredBootError::Log(e)])),
    };
    // Step 2
    let mut rtmrs = log.as_ref().map_or([[0u8; 48]; 4], EventLog::replay);
    // Step 3
    let [.., rtmr3] = &mut rtmrs;
    for e in &measured.agent_events {
        *rtmr3 = extend(rtmr3, &e.digest);
    }
    // Step 4
    let covered = if log.is_some() {
        [true; 4]
    } else {
        [false, false, false, true]
    };
    let masked = |r: &[[u8; 48]; 4]| {
        let mut out = *r;
        for (reg, c) in out.iter_mut().zip(covered) {
            if !c {
                *reg = [0; 48];
            }
        }
        out
    };
    let errors: Vec<MeasuredBootError> = mismatches(&masked(&rtmrs), &masked(quote_rtmrs))
        .into_iter()
        .map(MeasuredBootError::Replay)
        .collect();
    if !errors.is_empty() {
        return Some(Err(errors));
    }
    Some(Ok(Verified::new(MeasuredBootEvidence {
        log,
        agent_events: measured.agent_events.clone(),
        covered,
        rtmrs,
    })))
}

/// `SHA-384(register || digest)`: one RTMR extension.
pub fn extend(register: &[u8; 48], digest: &[u8; 48]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(register);
    h.update(digest);
    h.finalize().into()
}

#[cfg(test)]
mod tests;
