//! Claims of measured-boot evidence: the firmware event log's events, the
//! agent's own RTMR3 events and what the replay covered.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use crate::bundle::{AgentEventKind, MeasuredBoot};
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
    /// firmware log).
    pub covered: Vec<&'static str>,
    /// `ccel` or `json`, when the bundle carries a firmware log that parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<&'static str>,
    /// The firmware log's events (empty without a log, or when it did not parse).
    pub events: Vec<EventClaim>,
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
    pub(crate) fn of(
        measured: &MeasuredBoot,
        verified: Option<&Verified<MeasuredBootEvidence>>,
    ) -> Option<Self> {
        if measured.event_log.is_none() && measured.agent_events.is_empty() {
            return None;
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
        })
    }
}

/// `binary` or `config`.
const fn agent_event_kind_name(kind: AgentEventKind) -> &'static str {
    match kind {
        AgentEventKind::Binary => "binary",
        AgentEventKind::Config => "config",
    }
}
