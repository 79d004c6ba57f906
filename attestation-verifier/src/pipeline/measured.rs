//! Claims of measured-boot evidence: the firmware event log's events, the
//! agent's own RTMR3 events and what the replay covered.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use crate::bundle::{AgentEventKind, MeasuredBoot};
use crate::eventlog::tpm::{TpmEventLog, parse_tpm_log};
use crate::eventlog::{EventLog, parse_event_log};
use crate::verdict::Verified;
use crate::verify::measured::MeasuredBootEvidence;

/// One event of a firmware log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventClaim {
    /// Position in the log (0 = first after the header).
    pub index: usize,
    /// CC MR index as the log states it.
    pub mr_index: u32,
    /// The RTMR extended, or null.
    pub rtmr: Option<u8>,
    /// Event type.
    pub event_type: u32,
    /// Its name.
    pub event_type_name: &'static str,
    /// The SHA-384 digest extended (hex).
    pub sha384: String,
    /// A short description from the (untrusted) event data.
    pub description: String,
}

impl EventClaim {
    /// Every event of `log`, in log order.
    pub fn all(log: &EventLog) -> Vec<Self> {
        log.events
            .iter()
            .enumerate()
            .map(|(index, e)| Self {
                index,
                mr_index: e.mr_index,
                rtmr: e.rtmr,
                event_type: e.event_type,
                event_type_name: e.event_type_name(),
                sha384: hex::encode(e.sha384),
                description: e.description(),
            })
            .collect()
    }
}

/// One event of a vTPM's log (Azure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PcrEventClaim {
    /// Position in the log (0 = first after the header).
    pub index: usize,
    /// The PCR (0..=23).
    pub pcr: u8,
    /// Whether it extends the PCR (`false` for `EV_NO_ACTION`).
    pub extends: bool,
    /// Event type.
    pub event_type: u32,
    /// Its name.
    pub event_type_name: &'static str,
    /// The SHA-256 digest extended (hex).
    pub sha256: String,
    /// A short description from the (untrusted) event data.
    pub description: String,
}

impl PcrEventClaim {
    /// Every event of `log`, in log order.
    pub fn all(log: &TpmEventLog) -> Vec<Self> {
        log.events
            .iter()
            .enumerate()
            .map(|(index, e)| Self {
                index,
                pcr: e.pcr,
                extends: e.extends(),
                event_type: e.event_type,
                event_type_name: e.event_type_name(),
                sha256: hex::encode(e.sha256),
                description: e.description(),
            })
            .collect()
    }
}

/// One of the agent's own measurements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentEventClaim {
    /// `binary` (the agent executable) or `config` (its effective configuration).
    pub kind: &'static str,
    /// The SHA-384 extended into RTMR3 (hex).
    pub sha384: String,
}

/// What a bundle's measured-boot evidence says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeasuredBootClaims {
    /// Whether the replay equals the quote's registers (`false` also when the
    /// evidence was not checked; the reasons say why).
    pub verified: bool,
    /// The registers the replay covers (`rtmr0`..`rtmr3`; only `rtmr3` without a
    /// firmware log; for a vTPM log the PCRs it extends, `pcr00`..`pcr23`).
    pub covered: Vec<&'static str>,
    /// `ccel`, `json` or `tpm` (a vTPM's log), when the bundle carries a firmware log
    /// that parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<&'static str>,
    /// The firmware log's events (empty without a log, or when it did not parse).
    pub events: Vec<EventClaim>,
    /// The vTPM log's events (Azure; absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pcr_events: Vec<PcrEventClaim>,
    /// The agent's events, in the order extended.
    pub agent_events: Vec<AgentEventClaim>,
    /// SHA-384 of the agent executable of its last start (hex); absent when the
    /// agent did not measure itself (no kernel interface), never invented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_digest: Option<String>,
    /// SHA-384 of the agent's effective configuration of its last start (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
}

const RTMR_NAMES: [&str; 4] = ["rtmr0", "rtmr1", "rtmr2", "rtmr3"];

impl MeasuredBootClaims {
    /// The claims of `measured`, and of its replay when it verified. `None` when
    /// the bundle carries no event log and no agent events.
    pub fn of(
        measured: &MeasuredBoot,
        verified: Option<&Verified<MeasuredBootEvidence>>,
    ) -> Option<Self> {
        if measured.event_log.is_none() && measured.agent_events.is_empty() {
            return None;
        }
        if measured.tpm_quote.is_some() {
            return Some(Self::of_vtpm(measured, verified));
        }
        let parsed;
        let log = match verified {
            Some(v) => v.get().log.as_ref(),
            None => {
                parsed = measured
                    .event_log
                    .as_deref()
                    .and_then(|b| parse_event_log(b).ok());
                parsed.as_ref()
            }
        };
        let last = |kind: AgentEventKind| {
            measured
                .agent_events
                .iter()
                .rev()
                .find(|e| e.kind == kind)
                .map(|e| hex::encode(e.digest))
        };
        Some(Self {
            verified: verified.is_some(),
            covered: verified.map_or_else(Vec::new, |v| {
                RTMR_NAMES
                    .iter()
                    .zip(v.get().covered)
                    .filter(|(_, c)| *c)
                    .map(|(n, _)| *n)
                    .collect()
            }),
            log_format: log.map(|l| l.format.name()),
            events: log.map_or_else(Vec::new, EventClaim::all),
            agent_events: measured
                .agent_events
                .iter()
                .map(|e| AgentEventClaim {
                    kind: agent_event_kind_name(e.kind),
                    sha384: hex::encode(e.digest),
                })
                .collect(),
            agent_digest: last(AgentEventKind::Binary),
            config_digest: last(AgentEventKind::Config),
            pcr_events: Vec::new(),
        })
    }

    /// The claims of a vTPM log (a bundle with a TPM quote).
    fn of_vtpm(measured: &MeasuredBoot, verified: Option<&Verified<MeasuredBootEvidence>>) -> Self {
        let parsed;
        let log = match verified.and_then(|v| v.get().tpm_log.as_ref()) {
            Some(l) => Some(l),
            None => {
                parsed = measured
                    .event_log
                    .as_deref()
                    .and_then(|b| parse_tpm_log(b).ok());
                parsed.as_ref()
            }
        };
        Self {
            verified: verified.is_some(),
            covered: verified.map_or_else(Vec::new, |v| {
                v.get()
                    .pcrs_covered
                    .iter()
                    .filter_map(|p| PCR_NAMES.get(usize::from(*p)).copied())
                    .collect()
            }),
            log_format: log.map(|_| "tpm"),
            events: Vec::new(),
            pcr_events: log.map_or_else(Vec::new, PcrEventClaim::all),
            agent_events: Vec::new(),
            agent_digest: None,
            config_digest: None,
        }
    }
}

const PCR_NAMES: [&str; 24] = [
    "pcr00", "pcr01", "pcr02", "pcr03", "pcr04", "pcr05", "pcr06", "pcr07", "pcr08", "pcr09",
    "pcr10", "pcr11", "pcr12", "pcr13", "pcr14", "pcr15", "pcr16", "pcr17", "pcr18", "pcr19",
    "pcr20", "pcr21", "pcr22", "pcr23",
];

/// `binary` or `config`.
const fn agent_event_kind_name(kind: AgentEventKind) -> &'static str {
    match kind {
        AgentEventKind::Binary => "binary",
        AgentEventKind::Config => "config",
    }
}
