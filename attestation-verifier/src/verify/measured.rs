//! Measured boot on TDX: the bundle's firmware event log and the agent's own
//! RTMR3 events, replayed and bound to the registers of the verified quote.
//! On Azure confidential VMs the log is the vTPM's ([`verify_measured_vtpm`]),
//! bound to the PCRs of the verified vTPM quote.
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
use crate::eventlog::tpm::{TpmEventLog, parse_tpm_log};
use crate::eventlog::{EventLog, EventLogError, mismatches, parse_event_log};
use crate::receipt::TeeKind;
use crate::verdict::Verified;
use crate::verify::azure_vtpm::VtpmQuote;

/// Why a bundle's measured-boot evidence is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasuredBootError {
    /// The firmware event log does not parse.
    #[error("event log: {0}")]
    Log(EventLogError),
    /// A replayed register differs from the quote's ([`EventLogError::RtmrMismatch`],
    /// [`EventLogError::PcrMismatch`]), or a vTPM log extends a PCR the quote does
    /// not cover ([`EventLogError::PcrNotQuoted`]).
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
    /// An event log with Azure vTPM evidence but no TPM quote whose PCRs it could
    /// be replayed against.
    #[error("the bundle carries a vTPM event log but no TPM quote to replay it against")]
    NoTpmQuote,
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
    /// The vTPM's event log (Azure), when the bundle carried one beside a TPM quote.
    pub tpm_log: Option<TpmEventLog>,
    /// The PCRs the vTPM log extends, each equal to the quoted value.
    pub pcrs_covered: Vec<u8>,
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

    /// Whether the vTPM log has an event extending `pcr` with `digest` (SHA-256).
    pub fn has_pcr_event(&self, pcr: u8, digest: &[u8; 32]) -> bool {
        self.tpm_log.as_ref().is_some_and(|l| {
            l.events
                .iter()
                .any(|e| e.extends() && e.pcr == pcr && &e.sha256 == digest)
        })
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
        tpm_log: None,
        pcrs_covered: Vec::new(),
    })))
}

/// Parses the vTPM's event log (`measured.event_log`, a TPM's TCG crypto-agile log)
/// and binds it to `quote`, a vTPM quote the caller verified.
///
/// Steps:
/// 1. Parse the log ([`parse_tpm_log`], SHA-256 digests).
/// 2. Replay it into PCR 0..=23 from their initial values.
/// 3. Every PCR the log extends must be quoted and equal the quoted value; every PCR
///    that differs, or is not quoted, is reported.
///
/// `None` when the bundle carries no log. Agent events are refused: they extend
/// TDX RTMR3, which a vTPM does not have (and which belongs to the paravisor on an
/// Azure TDX VM); `tee` is the evidence's TEE, named in that refusal.
pub fn verify_measured_vtpm(
    measured: &MeasuredBoot,
    quote: &VtpmQuote,
    tee: TeeKind,
) -> Option<Result<Verified<MeasuredBootEvidence>, Vec<MeasuredBootError>>> {
    let bytes = measured.event_log.as_deref()?;
    let mut errors = Vec::new();
    if !measured.agent_events.is_empty() {
        errors.push(MeasuredBootError::NoRegisters {
            what: "agent events",
            tee,
        });
    }
    // Step 1
    let log = match parse_tpm_log(bytes) {
        Ok(log) => log,
        Err(e) => {
            errors.push(MeasuredBootError::Log(e));
            return Some(Err(errors));
        }
    };
    // Steps 2 and 3
    let quoted: Vec<(u8, [u8; 32])> = quote.pcrs.iter().map(|p| (p.index, p.sha256)).collect();
    let pcrs_covered = match log.check_against(&quoted) {
        Ok(covered) => covered,
        Err(es) => {
            errors.extend(es.into_iter().map(MeasuredBootError::Replay));
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Some(Err(errors));
    }
    Some(Ok(Verified::new(MeasuredBootEvidence {
        log: None,
        agent_events: Vec::new(),
        covered: [false; 4],
        rtmrs: [[0; 48]; 4],
        tpm_log: Some(log),
        pcrs_covered,
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
