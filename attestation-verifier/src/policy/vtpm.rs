//! The `[vtpm]` table: rules on the PCRs of a vTPM quote (Azure confidential
//! VMs), verified against the attestation key the HCL report publishes, and on the
//! events of the vTPM's event log replayed to them.

use alloc::format;
use alloc::vec::Vec;
use serde::Deserialize;

use super::{HexBytes, PolicyError, check_len, sort_dedup};
use crate::verdict::{Verified, Violation};
use crate::verify::azure_vtpm::VtpmQuote;
use crate::verify::measured::MeasuredBootEvidence;

/// The highest PCR index a rule may name (a PC-client TPM has PCR 0 to 23).
pub const MAX_PCR_INDEX: u8 = 23;

/// Rules on the vTPM quote: the `[vtpm]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct VtpmPolicy {
    /// Accepted SHA-256 PCR values. Every PCR named here must be quoted with
    /// one of the values listed for it (several entries for one index are
    /// alternatives); empty requires no quote.
    pub pcrs: Vec<PcrRule>,
    /// Events the vTPM's verified event log must hold: each entry an event extending
    /// that PCR with that SHA-256 digest (`sigil-verify azure-vtpm --eventlog` lists
    /// them); empty requires no log.
    pub events: Vec<PcrEventRule>,
}

/// One required vTPM log event: `{ pcr = 4, digest = "..." }`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(deny_unknown_fields)]
pub struct PcrEventRule {
    /// The PCR the event extends (0..=23).
    pub pcr: u8,
    /// The SHA-256 digest it extends (32 bytes).
    pub digest: HexBytes,
}

/// One accepted PCR value: `{ index = 7, sha256 = "..." }`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(deny_unknown_fields)]
pub struct PcrRule {
    /// The PCR (0..=23).
    pub index: u8,
    /// Its SHA-256 bank value (32 bytes).
    pub sha256: HexBytes,
}

impl VtpmPolicy {
    /// Checks lengths and indices.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for r in &self.pcrs {
            check_len("vtpm.pcrs", &r.sha256, 32)?;
            if r.index > MAX_PCR_INDEX {
                return Err(PolicyError::Value {
                    field: "vtpm.pcrs",
                    reason: format!("PCR index {} is not 0 to {MAX_PCR_INDEX}", r.index),
                });
            }
        }
        for e in &self.events {
            check_len("vtpm.events", &e.digest, 32)?;
            if e.pcr > MAX_PCR_INDEX {
                return Err(PolicyError::Value {
                    field: "vtpm.events",
                    reason: format!("PCR index {} is not 0 to {MAX_PCR_INDEX}", e.pcr),
                });
            }
        }
        Ok(())
    }

    pub(super) fn canonicalize(&mut self) {
        sort_dedup(&mut self.pcrs);
        sort_dedup(&mut self.events);
    }

    /// Whether any rule needs a vTPM quote.
    pub fn needs_quote(&self) -> bool {
        !self.pcrs.is_empty() || !self.events.is_empty()
    }

    /// Appraises the bundle's verified vTPM event log (`None`: no log verified
    /// against a vTPM quote); appends a violation for every required event it lacks.
    pub fn evaluate_events(
        &self,
        m: Option<&Verified<MeasuredBootEvidence>>,
        v: &mut Vec<Violation>,
    ) {
        let log = m.filter(|m| m.tpm_log.is_some());
        for e in &self.events {
            let held = log.is_some_and(|m| {
                <[u8; 32]>::try_from(e.digest.0.as_slice())
                    .is_ok_and(|d| m.has_pcr_event(e.pcr, &d))
            });
            if held {
                continue;
            }
            let digest = hex::encode(&e.digest.0);
            v.push(Violation {
                rule: "vtpm.events",
                detail: if log.is_none() {
                    format!(
                        "no verified vTPM event log, so no event extending PCR{} with {digest}",
                        e.pcr
                    )
                } else {
                    format!("no event extends PCR{} with {digest}", e.pcr)
                },
            });
        }
    }

    /// Appraises the bundle's verified vTPM quote (`None`: it carried none, or
    /// its evidence has no vTPM); appends every violation.
    pub fn evaluate(&self, quote: Option<&Verified<VtpmQuote>>, v: &mut Vec<Violation>) {
        let mut indices: Vec<u8> = self.pcrs.iter().map(|r| r.index).collect();
        indices.dedup();
        for index in indices {
            let accepted = || {
                self.pcrs
                    .iter()
                    .filter(move |r| r.index == index)
                    .map(|r| hex::encode(&r.sha256.0))
            };
            let detail = match quote.map(|q| q.pcr(index)) {
                None => format!("no verified vTPM quote, so PCR{index} is not known"),
                Some(None) => format!("the vTPM quote does not cover PCR{index}"),
                Some(Some(value)) => {
                    if self
                        .pcrs
                        .iter()
                        .any(|r| r.index == index && r.sha256.0.as_slice() == value.as_slice())
                    {
                        continue;
                    }
                    format!(
                        "PCR{index} is {}, not {}",
                        hex::encode(value),
                        accepted().collect::<Vec<_>>().join(" or ")
                    )
                }
            };
            v.push(Violation {
                rule: "vtpm.pcrs",
                detail,
            });
        }
    }
}
