//! TDX boot event logs: parsing and RTMR replay.
//!
//! A TD's firmware and boot chain record every measurement they extend into the
//! runtime measurement registers (RTMR0..RTMR3) in an event log, published to the
//! guest through the ACPI CCEL table (Linux: `/sys/firmware/acpi/tables/data/CCEL`).
//! The log is untrusted: it proves nothing on its own. Replaying its digests
//! reproduces the RTMR values it claims; only when those equal the RTMRs of a
//! verified quote is the log bound to the TD (see `docs/eventlog.md`).
//!
//! Two encodings are read:
//! - [`parse_ccel`]: the TCG PC Client "crypto agile" log (a `TCG_PCR_EVENT` header
//!   carrying the `Spec ID Event03` structure, then `TCG_PCR_EVENT2` records), as in
//!   the CCEL area. Trailing `0xFF`/`0x00` fill after the last event ends the log.
//! - [`parse_json_log`]: the JSON list `[{"imr", "event_type", "digest", "event",
//!   "event_payload"}]` emitted by dstack guests, whose `imr` is the RTMR index.
//!
//! Register mapping (UEFI 2.10 §38.4.1, the CC measurement protocol): CC MR index 0 is
//! MRTD (built by the TDX module, never extended by events), 1..=4 are RTMR0..=RTMR3.
//! Replay: `RTMR[i] = SHA-384(RTMR[i] || digest)` from 48 zero bytes, over the SHA-384
//! digest of each event of that register in log order; `EV_NO_ACTION` events are
//! informational and not extended.
//!
//! Work is bounded: at most [`MAX_LOG_LEN`] input bytes, [`MAX_EVENTS`] events and
//! [`MAX_EVENT_DATA_LEN`] bytes of data per event. Parsing never panics; every
//! refusal is an [`EventLogError`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use sha2::{Digest, Sha384};

/// The largest log accepted, in bytes (1 MiB): the CCEL areas seen in practice are
/// 64 KiB to 1 MiB, mostly fill.
pub const MAX_LOG_LEN: usize = 1 << 20;
/// The most events accepted (header excluded). Real boot logs carry tens to a few
/// hundred.
pub const MAX_EVENTS: usize = 4096;
/// The most data bytes one event may carry (64 KiB): the largest real events are
/// UEFI variables (secure-boot databases) of a few KiB to about 20 KiB.
pub const MAX_EVENT_DATA_LEN: usize = 64 * 1024;
/// The most hash algorithms the Spec ID header may list.
pub const MAX_ALGORITHMS: usize = 8;
/// The largest digest size the Spec ID header may declare (SHA-512: 64 bytes).
pub const MAX_DIGEST_LEN: usize = 64;

/// TCG algorithm id of SHA-384 (`TPM_ALG_SHA384`).
pub const TPM_ALG_SHA384: u16 = 0x000c;
/// `EV_NO_ACTION`: informational, never extended.
pub const EV_NO_ACTION: u32 = 0x3;

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
const SHA384_LEN: usize = 48;

/// TCG algorithm id of SHA-256 (`TPM_ALG_SHA256`).
pub const TPM_ALG_SHA256: u16 = 0x000b;

/// Why an event log is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventLogError {
    /// The input is larger than [`MAX_LOG_LEN`].
    #[error("event log is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// [`MAX_LOG_LEN`].
        max: usize,
    },
    /// The log ends inside a field.
    #[error(
        "event log is truncated: {what} needs {needed} bytes at offset {offset}, log has {len}"
    )]
    Truncated {
        /// The field that did not fit.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// The input's length.
        len: usize,
    },
    /// The first record is not the `EV_NO_ACTION` Spec ID header.
    #[error(
        "the first event has type {event_type:#x}, expected the EV_NO_ACTION (0x3) Spec ID header"
    )]
    HeaderNotNoAction {
        /// Its event type.
        event_type: u32,
    },
    /// The header's data does not start with `Spec ID Event03`.
    #[error("the header event is not a Spec ID Event03 structure (not a crypto-agile log)")]
    NotCryptoAgile,
    /// The Spec ID header lists no algorithm or more than [`MAX_ALGORITHMS`].
    #[error("the Spec ID header lists {count} algorithms, expected 1 to {max}")]
    AlgorithmCount {
        /// The count read.
        count: u32,
        /// [`MAX_ALGORITHMS`].
        max: usize,
    },
    /// The Spec ID header declares an impossible digest size.
    #[error("the Spec ID header declares algorithm {alg:#06x} with a {size}-byte digest")]
    DigestSize {
        /// The algorithm id.
        alg: u16,
        /// The declared size.
        size: u16,
    },
    /// An algorithm is listed twice.
    #[error("algorithm {alg:#06x} is listed twice")]
    DuplicateAlgorithm {
        /// The algorithm id.
        alg: u16,
    },
    /// The log does not carry SHA-384 digests, which TDX RTMRs use.
    #[error("the log carries no SHA-384 digests (the RTMR hash)")]
    NoSha384,
    /// The log does not carry digests of the bank the registers use (a TPM log
    /// without SHA-256 digests).
    #[error("the log carries no {name} digests ({alg:#06x}), the bank of the quoted PCRs")]
    NoBank {
        /// The algorithm id.
        alg: u16,
        /// Its name.
        name: &'static str,
    },
    /// A TPM log event names a PCR a PC Client TPM does not have.
    #[error("event {index} names PCR {pcr}; a PC Client TPM has PCR 0 to 23")]
    PcrIndex {
        /// Event number.
        index: usize,
        /// The index read.
        pcr: u32,
    },
    /// A `StartupLocality` event that is malformed, repeated, or after PCR 0 was
    /// first extended (it sets PCR 0's initial value, so it must come first).
    #[error("event {index}: {problem} StartupLocality event")]
    StartupLocality {
        /// Event number.
        index: usize,
        /// What is wrong: `a malformed`, `a second`, `a late` or `an out-of-range`.
        problem: &'static str,
    },
    /// A replayed PCR differs from the quoted value.
    #[error(
        "PCR {pcr} replays to {} but the quote holds {}",
        hex::encode(.replayed),
        hex::encode(.expected)
    )]
    PcrMismatch {
        /// The PCR (0..=23).
        pcr: u8,
        /// The value the log replays to.
        replayed: [u8; 32],
        /// The quoted value.
        expected: [u8; 32],
    },
    /// The log extends a PCR the quote does not cover, so its events there cannot
    /// be bound to the quote.
    #[error("the log extends PCR {pcr}, which the quote does not select")]
    PcrNotQuoted {
        /// The PCR (0..=23).
        pcr: u8,
    },
    /// The header's data holds bytes after the vendor information.
    #[error("the Spec ID header has {extra} bytes after its vendor information")]
    HeaderTrailing {
        /// How many.
        extra: usize,
    },
    /// An event's digest count differs from the header's algorithm count.
    #[error("event {index} carries {count} digests, the header lists {expected} algorithms")]
    DigestCount {
        /// Event number (0 = the first after the header).
        index: usize,
        /// The count read.
        count: u32,
        /// The header's algorithm count.
        expected: usize,
    },
    /// An event carries a digest of an algorithm the header does not list.
    #[error("event {index} carries a digest of algorithm {alg:#06x}, not listed in the header")]
    UnknownAlgorithm {
        /// Event number.
        index: usize,
        /// The algorithm id.
        alg: u16,
    },
    /// An event carries two digests of one algorithm.
    #[error("event {index} carries two digests of algorithm {alg:#06x}")]
    RepeatedDigest {
        /// Event number.
        index: usize,
        /// The algorithm id.
        alg: u16,
    },
    /// An event's data is larger than [`MAX_EVENT_DATA_LEN`].
    #[error("event {index} has {len} bytes of data, more than the {max} accepted")]
    EventTooLarge {
        /// Event number.
        index: usize,
        /// The declared size.
        len: u64,
        /// [`MAX_EVENT_DATA_LEN`].
        max: usize,
    },
    /// The log holds more than [`MAX_EVENTS`] events.
    #[error("the log holds more than {max} events")]
    TooManyEvents {
        /// [`MAX_EVENTS`].
        max: usize,
    },
    /// An event names a measurement register TDX does not have.
    #[error("event {index} names CC MR index {mr_index}; TDX has 0 (MRTD) to 4 (RTMR3)")]
    MrIndex {
        /// Event number.
        index: usize,
        /// The index read.
        mr_index: u32,
    },
    /// A measured event names MR index 0 (MRTD), which no event extends.
    #[error(
        "event {index} (type {event_type:#x}) extends CC MR index 0 (MRTD), which events cannot extend"
    )]
    ExtendsMrtd {
        /// Event number.
        index: usize,
        /// Its event type.
        event_type: u32,
    },
    /// The JSON log is malformed.
    #[error("JSON event log: {detail}")]
    Json {
        /// What is wrong.
        detail: String,
    },
    /// A JSON event's digest is not 48 bytes of hex.
    #[error("JSON event {index}: the digest is not 96 hex digits (SHA-384)")]
    JsonDigest {
        /// Event number.
        index: usize,
    },
    /// A JSON event's payload is not hex.
    #[error("JSON event {index}: the payload is not hex")]
    JsonPayload {
        /// Event number.
        index: usize,
    },
    /// A replayed register differs from the reference (the quote's).
    #[error(
        "RTMR{rtmr} replays to {} but the reference holds {}",
        hex::encode(.replayed),
        hex::encode(.expected)
    )]
    RtmrMismatch {
        /// The register (0..=3).
        rtmr: u8,
        /// The value the log replays to.
        replayed: [u8; 48],
        /// The reference value.
        expected: [u8; 48],
    },
}

/// Which encoding a log was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// The TCG crypto-agile binary log (CCEL).
    Ccel,
    /// The dstack JSON list.
    Json,
}

impl LogFormat {
    /// `"ccel"` or `"json"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ccel => "ccel",
            Self::Json => "json",
        }
    }
}

/// One event. Nothing in it is trusted until the log's replay matches a verified quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The CC measurement register index as the log states it (1..=4 = RTMR0..=RTMR3,
    /// 0 = MRTD). For JSON logs, the RTMR index plus one.
    pub mr_index: u32,
    /// The RTMR this event extends (0..=3), or `None` when it extends nothing
    /// (`EV_NO_ACTION`).
    pub rtmr: Option<u8>,
    /// The TCG / UEFI event type.
    pub event_type: u32,
    /// The SHA-384 digest extended.
    pub sha384: [u8; 48],
    /// The event data (for JSON logs: the payload).
    pub data: Vec<u8>,
    /// The event's name, where the encoding carries one (JSON logs).
    pub name: Option<String>,
}

/// A hash algorithm the log's header lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithm {
    /// TCG algorithm id (`TPM_ALG_*`).
    pub alg: u16,
    /// Its digest size in bytes.
    pub digest_len: u16,
}

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    /// The encoding it was read from.
    pub format: LogFormat,
    /// The algorithms of the Spec ID header (CCEL; empty for JSON logs).
    pub algorithms: Vec<Algorithm>,
    /// The events after the header, in log order.
    pub events: Vec<Event>,
    /// Bytes the events occupy, header included (CCEL); the rest was fill.
    pub used_len: usize,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], EventLogError> {
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or(EventLogError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                len: self.data.len(),
            })?;
        self.pos = self.pos.saturating_add(n);
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EventLogError> {
        let s = self.take(what, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, EventLogError> {
        self.array::<1>(what).map(|[b]| b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EventLogError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EventLogError> {
        self.array(what).map(u32::from_le_bytes)
    }
}

/// Parses a TCG crypto-agile event log (the CCEL data area, or the securityfs copy).
///
/// Steps:
/// 1. Bound the input ([`MAX_LOG_LEN`]).
/// 2. Read the `TCG_PCR_EVENT` header and its `Spec ID Event03` algorithm list.
/// 3. Read `TCG_PCR_EVENT2` records until the input ends, or until an event boundary
///    after which every byte is `0x00` or `0xFF` (the unused CCEL area).
pub fn parse_ccel(bytes: &[u8]) -> Result<EventLog, EventLogError> {
    let records = parse_tcg_records::<SHA384_LEN>(bytes, TPM_ALG_SHA384)?;
    let mut events = Vec::with_capacity(records.events.len());
    for (index, e) in records.events.into_iter().enumerate() {
        let rtmr = rtmr_of(index, e.pcr_index, e.event_type)?;
        events.push(Event {
            mr_index: e.pcr_index,
            rtmr,
            event_type: e.event_type,
            sha384: e.digest,
            data: e.data,
            name: None,
        });
    }
    Ok(EventLog {
        format: LogFormat::Ccel,
        algorithms: records.algorithms,
        events,
        used_len: records.used_len,
    })
}

/// One `TCG_PCR_EVENT2` record, keeping the digest of one bank (`N` bytes).
pub(crate) struct TcgRecord<const N: usize> {
    /// `pcrIndex` (a CC MR index in a CCEL).
    pub(crate) pcr_index: u32,
    /// `eventType`.
    pub(crate) event_type: u32,
    /// The digest of the bank asked for.
    pub(crate) digest: [u8; N],
    /// The event data.
    pub(crate) data: Vec<u8>,
}

/// The records of a crypto-agile log.
pub(crate) struct TcgRecords<const N: usize> {
    /// The Spec ID header's algorithms.
    pub(crate) algorithms: Vec<Algorithm>,
    /// The records after the header.
    pub(crate) events: Vec<TcgRecord<N>>,
    /// Bytes the records occupy, header included.
    pub(crate) used_len: usize,
}

/// The reader a TCG PC Client crypto-agile log (CCEL or TPM) is parsed with, keeping
/// the `N`-byte digests of `bank` (which the header must list).
///
/// Steps:
/// 1. Bound the input ([`MAX_LOG_LEN`]).
/// 2. Read the `TCG_PCR_EVENT` header and its `Spec ID Event03` algorithm list.
/// 3. Read `TCG_PCR_EVENT2` records until the input ends, or until an event boundary
///    after which every byte is `0x00` or `0xFF` (the unused CCEL area).
pub(crate) fn parse_tcg_records<const N: usize>(
    bytes: &[u8],
    bank: u16,
) -> Result<TcgRecords<N>, EventLogError> {
    // Step 1
    if bytes.len() > MAX_LOG_LEN {
        return Err(EventLogError::TooLarge {
            len: bytes.len(),
            max: MAX_LOG_LEN,
        });
    }
    let mut r = Reader {
        data: bytes,
        pos: 0,
    };

    // Step 2
    let algorithms = parse_header(&mut r, bank)?;

    // Step 3
    let mut events = Vec::new();
    while let Some(rest) = bytes.get(r.pos..).filter(|rest| !rest.is_empty()) {
        if rest.first().is_some_and(|b| is_fill(*b)) && all_fill(rest) {
            break;
        }
        if events.len() >= MAX_EVENTS {
            return Err(EventLogError::TooManyEvents { max: MAX_EVENTS });
        }
        events.push(parse_record::<N>(&mut r, &algorithms, events.len(), bank)?);
    }
    Ok(TcgRecords {
        algorithms,
        events,
        used_len: r.pos,
    })
}

/// The error for a log whose header does not list `bank`.
fn missing_bank(bank: u16) -> EventLogError {
    if bank == TPM_ALG_SHA384 {
        EventLogError::NoSha384
    } else {
        EventLogError::NoBank {
            alg: bank,
            name: if bank == TPM_ALG_SHA256 {
                "SHA-256"
            } else {
                "unknown"
            },
        }
    }
}

const fn is_fill(b: u8) -> bool {
    b == 0x00 || b == 0xff
}

/// Whether every byte is fill; 64-byte chunks without early exit inside a chunk, so the
/// check over a mostly empty 1 MiB area is vectorised.
fn all_fill(d: &[u8]) -> bool {
    d.chunks(64)
        .all(|c| c.iter().fold(true, |ok, b| ok & is_fill(*b)))
}

fn parse_header(r: &mut Reader<'_>, bank: u16) -> Result<Vec<Algorithm>, EventLogError> {
    let _pcr = r.u32("header pcrIndex")?;
    let event_type = r.u32("header eventType")?;
    if event_type != EV_NO_ACTION {
        return Err(EventLogError::HeaderNotNoAction { event_type });
    }
    let _sha1 = r.take("header digest", 20)?;
    let size = r.u32("header eventDataSize")?;
    let data = r.take(
        "header event data",
        usize::try_from(size).unwrap_or(usize::MAX),
    )?;
    let mut h = Reader { data, pos: 0 };
    let signature: [u8; 16] = h.array("Spec ID signature")?;
    if &signature != SPEC_ID_SIGNATURE {
        return Err(EventLogError::NotCryptoAgile);
    }
    let _platform_class = h.u32("platformClass")?;
    let _versions = h.take("spec version and uintnSize", 4)?;
    let count = h.u32("numberOfAlgorithms")?;
    let n = usize::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_ALGORITHMS).contains(n))
        .ok_or(EventLogError::AlgorithmCount {
            count,
            max: MAX_ALGORITHMS,
        })?;
    let mut algorithms: Vec<Algorithm> = Vec::with_capacity(n);
    for _ in 0..n {
        let alg = h.u16("algorithmId")?;
        let size = h.u16("digestSize")?;
        let expected = match alg {
            TPM_ALG_SHA384 => Some(SHA384_LEN),
            0x0004 => Some(20),
            TPM_ALG_SHA256 | 0x0012 => Some(32),
            0x000d => Some(64),
            _ => None,
        };
        let bad = size == 0
            || usize::from(size) > MAX_DIGEST_LEN
            || expected.is_some_and(|e| e != usize::from(size));
        if bad {
            return Err(EventLogError::DigestSize { alg, size });
        }
        if algorithms.iter().any(|a| a.alg == alg) {
            return Err(EventLogError::DuplicateAlgorithm { alg });
        }
        algorithms.push(Algorithm {
            alg,
            digest_len: size,
        });
    }
    if !algorithms.iter().any(|a| a.alg == bank) {
        return Err(missing_bank(bank));
    }
    let vendor = h.u8("vendorInfoSize")?;
    let _vendor_info = h.take("vendorInfo", usize::from(vendor))?;
    let extra = data.len().saturating_sub(h.pos);
    if extra != 0 {
        return Err(EventLogError::HeaderTrailing { extra });
    }
    Ok(algorithms)
}

fn parse_record<const N: usize>(
    r: &mut Reader<'_>,
    algorithms: &[Algorithm],
    index: usize,
    bank: u16,
) -> Result<TcgRecord<N>, EventLogError> {
    let pcr_index = r.u32("pcrIndex")?;
    let event_type = r.u32("eventType")?;
    let count = r.u32("digests.count")?;
    if usize::try_from(count).ok() != Some(algorithms.len()) {
        return Err(EventLogError::DigestCount {
            index,
            count,
            expected: algorithms.len(),
        });
    }
    let mut seen = [false; MAX_ALGORITHMS];
    let mut kept = None;
    for _ in 0..algorithms.len() {
        let alg = r.u16("hashAlg")?;
        let (slot, a) = algorithms
            .iter()
            .enumerate()
            .find(|(_, a)| a.alg == alg)
            .ok_or(EventLogError::UnknownAlgorithm { index, alg })?;
        let seen_slot = seen
            .get_mut(slot)
            .ok_or(EventLogError::UnknownAlgorithm { index, alg })?;
        if *seen_slot {
            return Err(EventLogError::RepeatedDigest { index, alg });
        }
        *seen_slot = true;
        let digest = r.take("digest", usize::from(a.digest_len))?;
        if alg == bank {
            // The header checked the size of every bank this crate keeps.
            kept = Some(
                <[u8; N]>::try_from(digest).map_err(|_| EventLogError::DigestSize {
                    alg,
                    size: a.digest_len,
                })?,
            );
        }
    }
    // Every algorithm appears exactly once and the kept bank is one of them.
    let digest = kept.ok_or(missing_bank(bank))?;
    let size = r.u32("eventSize")?;
    let len = usize::try_from(size)
        .ok()
        .filter(|l| *l <= MAX_EVENT_DATA_LEN)
        .ok_or(EventLogError::EventTooLarge {
            index,
            len: u64::from(size),
            max: MAX_EVENT_DATA_LEN,
        })?;
    let data = r.take("event data", len)?.to_vec();
    Ok(TcgRecord {
        pcr_index,
        event_type,
        digest,
        data,
    })
}

/// The RTMR an event with this CC MR index and type extends.
fn rtmr_of(index: usize, mr_index: u32, event_type: u32) -> Result<Option<u8>, EventLogError> {
    if mr_index > 4 {
        return Err(EventLogError::MrIndex { index, mr_index });
    }
    if event_type == EV_NO_ACTION {
        return Ok(None);
    }
    match mr_index.checked_sub(1).and_then(|i| u8::try_from(i).ok()) {
        Some(rtmr) => Ok(Some(rtmr)),
        None => Err(EventLogError::ExtendsMrtd { index, event_type }),
    }
}

/// Parses a dstack JSON event log: a list of `{"imr": 0..3, "event_type": u32,
/// "digest": hex SHA-384, "event": name, "event_payload": hex}`. `imr` is the RTMR
/// index itself (not a CC MR index). At most [`MAX_LOG_LEN`] bytes and [`MAX_EVENTS`]
/// entries; payloads at most [`MAX_EVENT_DATA_LEN`] bytes.
pub fn parse_json_log(bytes: &[u8]) -> Result<EventLog, EventLogError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        imr: u32,
        event_type: u32,
        digest: String,
        #[serde(default)]
        event: String,
        #[serde(default)]
        event_payload: String,
    }
    if bytes.len() > MAX_LOG_LEN {
        return Err(EventLogError::TooLarge {
            len: bytes.len(),
            max: MAX_LOG_LEN,
        });
    }
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| EventLogError::Json {
        detail: e.to_string(),
    })?;
    if entries.len() > MAX_EVENTS {
        return Err(EventLogError::TooManyEvents { max: MAX_EVENTS });
    }
    let mut events = Vec::with_capacity(entries.len());
    for (index, e) in entries.into_iter().enumerate() {
        let mr_index = e
            .imr
            .checked_add(1)
            .filter(|i| *i <= 4)
            .ok_or(EventLogError::MrIndex {
                index,
                mr_index: e.imr.saturating_add(1),
            })?;
        let mut sha384 = [0u8; SHA384_LEN];
        hex::decode_to_slice(e.digest.trim(), &mut sha384)
            .map_err(|_| EventLogError::JsonDigest { index })?;
        if e.event_payload.len() / 2 > MAX_EVENT_DATA_LEN {
            return Err(EventLogError::EventTooLarge {
                index,
                len: u64::try_from(e.event_payload.len() / 2).unwrap_or(u64::MAX),
                max: MAX_EVENT_DATA_LEN,
            });
        }
        let data = hex::decode(e.event_payload.trim())
            .map_err(|_| EventLogError::JsonPayload { index })?;
        let rtmr = rtmr_of(index, mr_index, e.event_type)?;
        events.push(Event {
            mr_index,
            rtmr,
            event_type: e.event_type,
            sha384,
            data,
            name: Some(e.event).filter(|n| !n.is_empty()),
        });
    }
    Ok(EventLog {
        format: LogFormat::Json,
        algorithms: Vec::new(),
        events,
        used_len: bytes.len(),
    })
}

/// Parses either encoding: JSON when the first non-blank byte is `[`, else CCEL.
pub fn parse_event_log(bytes: &[u8]) -> Result<EventLog, EventLogError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => parse_json_log(bytes),
        _ => parse_ccel(bytes),
    }
}

impl EventLog {
    /// Replays the log: RTMR0..=RTMR3 as the events extend them from zero.
    pub fn replay(&self) -> [[u8; 48]; 4] {
        let mut rtmrs = [[0u8; 48]; 4];
        for e in &self.events {
            let Some(reg) = e.rtmr.and_then(|i| rtmrs.get_mut(usize::from(i))) else {
                continue;
            };
            let mut h = Sha384::new();
            h.update(*reg);
            h.update(e.sha384);
            *reg = h.finalize().into();
        }
        rtmrs
    }

    /// Replays the log and compares with `rtmrs` (a quote's RTMR0..=RTMR3); names the
    /// first register that differs.
    pub fn check_against(&self, rtmrs: &[[u8; 48]; 4]) -> Result<(), EventLogError> {
        match mismatches(&self.replay(), rtmrs).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// How many events extend each RTMR.
    pub fn events_per_rtmr(&self) -> [usize; 4] {
        let mut n = [0usize; 4];
        for e in &self.events {
            if let Some(c) = e.rtmr.and_then(|i| n.get_mut(usize::from(i))) {
                *c = c.saturating_add(1);
            }
        }
        n
    }
}

/// Every register where `replayed` and `expected` differ, in register order.
pub fn mismatches(replayed: &[[u8; 48]; 4], expected: &[[u8; 48]; 4]) -> Vec<EventLogError> {
    (0u8..)
        .zip(replayed.iter().zip(expected.iter()))
        .filter(|(_, (r, e))| r != e)
        .map(|(rtmr, (r, e))| EventLogError::RtmrMismatch {
            rtmr,
            replayed: *r,
            expected: *e,
        })
        .collect()
}

/// The name of a TCG PC Client or UEFI event type, `None` when unknown.
pub const fn event_type_name(event_type: u32) -> Option<&'static str> {
    Some(match event_type {
        0x0 => "EV_PREBOOT_CERT",
        0x1 => "EV_POST_CODE",
        0x2 => "EV_UNUSED",
        0x3 => "EV_NO_ACTION",
        0x4 => "EV_SEPARATOR",
        0x5 => "EV_ACTION",
        0x6 => "EV_EVENT_TAG",
        0x7 => "EV_S_CRTM_CONTENTS",
        0x8 => "EV_S_CRTM_VERSION",
        0x9 => "EV_CPU_MICROCODE",
        0xa => "EV_PLATFORM_CONFIG_FLAGS",
        0xb => "EV_TABLE_OF_DEVICES",
        0xc => "EV_COMPACT_HASH",
        0xd => "EV_IPL",
        0xe => "EV_IPL_PARTITION_DATA",
        0xf => "EV_NONHOST_CODE",
        0x10 => "EV_NONHOST_CONFIG",
        0x11 => "EV_NONHOST_INFO",
        0x12 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x13 => "EV_POST_CODE2",
        0x8000_0000 => "EV_EFI_EVENT_BASE",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000a => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000b => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000c => "EV_EFI_VARIABLE_BOOT2",
        0x8000_000d => "EV_EFI_GPT_EVENT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00e0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00e1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00e2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        0x0800_0001 => "DSTACK_RUNTIME_EVENT",
        _ => return None,
    })
}

/// Longest excerpt of event text shown by [`Event::description`].
const EXCERPT_LEN: usize = 96;

impl Event {
    /// The event type's name, or `"EV_UNKNOWN"`.
    pub fn event_type_name(&self) -> &'static str {
        event_type_name(self.event_type).unwrap_or("EV_UNKNOWN")
    }

    /// A short human description: the type name and, where the data holds text (an
    /// action string, a command line, a UEFI variable or blob name), an excerpt of it.
    /// For display only: the text comes from the untrusted log.
    pub fn description(&self) -> String {
        describe(self.event_type, &self.data, self.name.clone())
    }
}

/// The type name of an event and, where its data holds text, an excerpt of it
/// (`name` instead where the encoding names the event).
pub(crate) fn describe(event_type: u32, data: &[u8], name: Option<String>) -> String {
    let mut out = String::from(event_type_name(event_type).unwrap_or("EV_UNKNOWN"));
    let detail = name.or_else(|| data_text(event_type, data));
    if let Some(text) = detail.filter(|t| !t.is_empty()) {
        out.push_str(": ");
        out.push_str(&text);
    }
    out
}

fn data_text(event_type: u32, d: &[u8]) -> Option<String> {
    match event_type {
        // UEFI_VARIABLE_DATA: GUID, name length (chars), data length, UTF-16 name.
        0x8000_0001 | 0x8000_0002 | 0x8000_000c | 0x8000_00e0 => {
            let mut r = Reader { data: d, pos: 16 };
            let chars = u64::from_le_bytes(r.array("UnicodeNameLength").ok()?);
            let _len = r.take("VariableDataLength", 8).ok()?;
            let n = usize::try_from(chars).ok()?.checked_mul(2)?;
            let name = r.take("UnicodeName", n).ok()?;
            Some(utf16_excerpt(name))
        }
        // BLOB2 / HANDOFF_TABLES2: a length-prefixed ASCII description first.
        0x8000_000a | 0x8000_000b => {
            let (&n, rest) = d.split_first()?;
            Some(excerpt(rest.get(..usize::from(n))?))
        }
        // EV_EVENT_TAG: tagged event id, size, data.
        0x6 => {
            let mut r = Reader { data: d, pos: 4 };
            let size = r.u32("taggedEventDataSize").ok()?;
            let body = r
                .take("taggedEventData", usize::try_from(size).ok()?)
                .ok()?;
            printable(body).then(|| excerpt(body))
        }
        _ if d.len() >= 4 && utf16_printable(d) => Some(utf16_excerpt(d)),
        // Text up to the first NUL (GRUB leaves bytes after the terminator).
        _ if printable(until_nul(d)) => Some(excerpt(until_nul(d))),
        _ => None,
    }
}

/// Whether `d` is non-empty text: printable ASCII and whitespace, NULs allowed at the end.
fn printable(d: &[u8]) -> bool {
    let body = trim_nul(d);
    !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

fn until_nul(d: &[u8]) -> &[u8] {
    d.split(|b| *b == 0).next().unwrap_or_default()
}

fn trim_nul(d: &[u8]) -> &[u8] {
    let end = d
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i.saturating_add(1));
    d.get(..end).unwrap_or_default()
}

fn utf16_printable(d: &[u8]) -> bool {
    let units: Vec<u16> = d
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    let end = units
        .iter()
        .rposition(|u| *u != 0)
        .map_or(0, |i| i.saturating_add(1));
    let body = units.get(..end).unwrap_or_default();
    d.len().is_multiple_of(2)
        && !body.is_empty()
        && body
            .iter()
            .all(|u| u8::try_from(*u).is_ok_and(|b| b.is_ascii_graphic() || b == b' '))
}

fn excerpt(d: &[u8]) -> String {
    let mut out = String::new();
    for b in trim_nul(d).iter().take(EXCERPT_LEN) {
        out.push(if b.is_ascii_graphic() || *b == b' ' {
            char::from(*b)
        } else {
            ' '
        });
    }
    if trim_nul(d).len() > EXCERPT_LEN {
        out.push_str("...");
    }
    out.trim_end().to_string()
}

fn utf16_excerpt(d: &[u8]) -> String {
    let mut out = String::new();
    for c in d.chunks_exact(2).take(EXCERPT_LEN) {
        let u = u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ]);
        if u == 0 {
            break;
        }
        out.push(
            char::from_u32(u32::from(u))
                .filter(|ch| ch.is_ascii_graphic() || *ch == ' ')
                .unwrap_or('?'),
        );
    }
    out
}

pub mod tpm;

#[cfg(test)]
pub(crate) mod tests;
