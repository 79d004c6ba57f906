//! A TPM's TCG event log (the vTPM of an Azure confidential VM): parsing and PCR replay.
//!
//! The firmware and boot chain record every measurement they extend into the TPM's PCRs
//! in the TCG PC Client crypto-agile log (Linux:
//! `/sys/kernel/security/tpm0/binary_bios_measurements`): the same encoding as a TDX
//! CCEL (a SHA-1-format `TCG_PCR_EVENT` header carrying `Spec ID Event03`, then
//! `TCG_PCR_EVENT2` records with one digest per algorithm), read by the same reader
//! (`parse_tcg_records`, the CCEL parser's), but its `pcrIndex` is a PCR (0..=23) and the digests
//! kept are the SHA-256 ones, the bank the vTPM quote covers.
//!
//! Replay (TCG PC Client Platform Firmware Profile): every PCR starts at zero, except
//! PCRs 17 to 22, which start at all ones (the dynamic-launch PCRs, never reset at
//! boot), and PCR 0, whose last byte is the locality the TPM started in when the log
//! opens with an `EV_NO_ACTION` `StartupLocality` event (`"StartupLocality\0"` and one
//! byte); then `PCR[i] = SHA-256(PCR[i] || digest)` over each event of that PCR in log
//! order. `EV_NO_ACTION` events are never extended.
//!
//! The log is untrusted: only when its replay equals the PCRs of a verified quote are
//! its events bound to the VM ([`crate::verify::measured::verify_measured_vtpm`]).
//! Parsing is total and bounded like the CCEL's ([`super::MAX_LOG_LEN`],
//! [`super::MAX_EVENTS`], [`super::MAX_EVENT_DATA_LEN`]); every refusal is an
//! [`EventLogError`].

use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::{Algorithm, EV_NO_ACTION, EventLogError, TPM_ALG_SHA256, describe, parse_tcg_records};

/// The PCRs of a PC Client TPM.
pub const PCR_COUNT: usize = 24;

/// The `StartupLocality` event's signature (TCG PC Client PFP, `EV_NO_ACTION` data).
pub const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";

/// The highest locality a `StartupLocality` event may give (4: an H-CRTM).
pub const MAX_STARTUP_LOCALITY: u8 = 4;

const SHA256_LEN: usize = 32;
/// The signature and one locality byte.
const STARTUP_LOCALITY_LEN: usize = 17;

/// One event of a TPM log. Nothing in it is trusted until the log's replay matches
/// a verified quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmEvent {
    /// The PCR (0..=23).
    pub pcr: u8,
    /// The TCG / UEFI event type.
    pub event_type: u32,
    /// The SHA-256 digest extended (for `EV_NO_ACTION`, the digest field as logged).
    pub sha256: [u8; 32],
    /// The event data.
    pub data: Vec<u8>,
}

impl TpmEvent {
    /// Whether the event extends its PCR (every type but `EV_NO_ACTION`).
    pub fn extends(&self) -> bool {
        self.event_type != EV_NO_ACTION
    }

    /// The event type's name, or `"EV_UNKNOWN"`.
    pub fn event_type_name(&self) -> &'static str {
        super::event_type_name(self.event_type).unwrap_or("EV_UNKNOWN")
    }

    /// A short human description (type name and a text excerpt of the untrusted data).
    pub fn description(&self) -> String {
        describe(self.event_type, &self.data, None)
    }
}

/// A parsed TPM event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmEventLog {
    /// The algorithms of the Spec ID header.
    pub algorithms: Vec<Algorithm>,
    /// The events after the header, in log order.
    pub events: Vec<TpmEvent>,
    /// The locality of the `StartupLocality` event, when the log has one.
    pub startup_locality: Option<u8>,
    /// Bytes the events occupy, header included.
    pub used_len: usize,
}

/// Parses a TPM's crypto-agile event log, keeping the SHA-256 digests.
///
/// Steps:
/// 1. Read the header and records (the CCEL parser's; the header must list
///    SHA-256).
/// 2. Check every PCR index (0..=23).
/// 3. Read the `StartupLocality` event: at most one, well formed, before the first
///    event extending PCR 0.
pub fn parse_tpm_log(bytes: &[u8]) -> Result<TpmEventLog, EventLogError> {
    // Step 1
    let records = parse_tcg_records::<SHA256_LEN>(bytes, TPM_ALG_SHA256)?;
    let mut events = Vec::with_capacity(records.events.len());
    let mut startup_locality = None;
    let mut pcr0_extended = false;
    for (index, r) in records.events.into_iter().enumerate() {
        // Step 2
        let pcr = u8::try_from(r.pcr_index)
            .ok()
            .filter(|p| usize::from(*p) < PCR_COUNT)
            .ok_or(EventLogError::PcrIndex {
                index,
                pcr: r.pcr_index,
            })?;
        // Step 3
        if r.event_type == EV_NO_ACTION && r.data.starts_with(STARTUP_LOCALITY_SIGNATURE) {
            let problem = match r.data.as_slice() {
                _ if startup_locality.is_some() => Some("a second"),
                _ if pcr0_extended => Some("a late"),
                [.., locality] if r.data.len() == STARTUP_LOCALITY_LEN => {
                    if *locality > MAX_STARTUP_LOCALITY {
                        Some("an out-of-range")
                    } else {
                        startup_locality = Some(*locality);
                        None
                    }
                }
                _ => Some("a malformed"),
            };
            if let Some(problem) = problem {
                return Err(EventLogError::StartupLocality { index, problem });
            }
        }
        if pcr == 0 && r.event_type != EV_NO_ACTION {
            pcr0_extended = true;
        }
        events.push(TpmEvent {
            pcr,
            event_type: r.event_type,
            sha256: r.digest,
            data: r.data,
        });
    }
    Ok(TpmEventLog {
        algorithms: records.algorithms,
        events,
        startup_locality,
        used_len: records.used_len,
    })
}

/// The value PCR `pcr` holds at TPM start (PC Client PFP): all ones for PCRs 17 to 22,
/// the startup locality in the last byte of PCR 0, zero otherwise.
pub fn initial_pcr(pcr: u8, startup_locality: Option<u8>) -> [u8; 32] {
    match pcr {
        17..=22 => [0xff; 32],
        0 => {
            let mut v = [0u8; 32];
            if let Some(last) = v.last_mut() {
                *last = startup_locality.unwrap_or(0);
            }
            v
        }
        _ => [0; 32],
    }
}

/// `SHA-256(register || digest)`: one PCR extension.
pub fn extend_sha256(register: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(register);
    h.update(digest);
    h.finalize().into()
}

impl TpmEventLog {
    /// Replays the log: PCR 0..=23 from their initial values.
    pub fn replay(&self) -> [[u8; 32]; PCR_COUNT] {
        let mut pcrs = [[0u8; 32]; PCR_COUNT];
        for (i, p) in (0u8..).zip(pcrs.iter_mut()) {
            *p = initial_pcr(i, self.startup_locality);
        }
        for e in self.events.iter().filter(|e| e.extends()) {
            if let Some(reg) = pcrs.get_mut(usize::from(e.pcr)) {
                *reg = extend_sha256(reg, &e.sha256);
            }
        }
        pcrs
    }

    /// The PCRs at least one event extends, in PCR order.
    pub fn touched(&self) -> Vec<u8> {
        let mut seen = [false; PCR_COUNT];
        for e in self.events.iter().filter(|e| e.extends()) {
            if let Some(s) = seen.get_mut(usize::from(e.pcr)) {
                *s = true;
            }
        }
        (0u8..)
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(p, _)| p)
            .collect()
    }

    /// Replays the log and compares every PCR it extends with `quoted` (index, SHA-256
    /// value) pairs of a quote: every PCR that differs or is not quoted is reported,
    /// in PCR order. Returns the PCRs compared.
    pub fn check_against(&self, quoted: &[(u8, [u8; 32])]) -> Result<Vec<u8>, Vec<EventLogError>> {
        let replayed = self.replay();
        let touched = self.touched();
        let mut errors = Vec::new();
        for pcr in &touched {
            let value = replayed.get(usize::from(*pcr)).copied().unwrap_or_default();
            match quoted.iter().find(|(i, _)| i == pcr) {
                None => errors.push(EventLogError::PcrNotQuoted { pcr: *pcr }),
                Some((_, expected)) if *expected != value => {
                    errors.push(EventLogError::PcrMismatch {
                        pcr: *pcr,
                        replayed: value,
                        expected: *expected,
                    });
                }
                Some(_) => {}
            }
        }
        if errors.is_empty() {
            Ok(touched)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests;
