//! Every case in `../shared/vectors/measured/tdx-eventlog`: valid logs replay to the
//! RTMRs their case.toml expects (and to their quote's RTMRs where a quote comes with
//! them); invalid ones are refused naming the register their case.toml names. Then
//! mutated copies of a real log (a changed digest, a swapped pair of events, every
//! truncation) and arbitrary bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use attestation_verifier::eventlog::{
    EventLog, EventLogError, LogFormat, MAX_LOG_LEN, parse_ccel, parse_event_log,
};
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use common::Case;
use proptest::prelude::*;

const KIND: &str = "measured/tdx-eventlog";

fn hex48(c: &Case, key: &str) -> Option<[u8; 48]> {
    let s = c.expected(key)?.as_str()?;
    let mut out = [0u8; 48];
    hex::decode_to_slice(s, &mut out).unwrap();
    Some(out)
}

fn expected_rtmrs(c: &Case, prefix: &str) -> Option<[[u8; 48]; 4]> {
    Some([
        hex48(c, &format!("{prefix}rtmr0"))?,
        hex48(c, &format!("{prefix}rtmr1"))?,
        hex48(c, &format!("{prefix}rtmr2"))?,
        hex48(c, &format!("{prefix}rtmr3"))?,
    ])
}

fn log_of(c: &Case) -> EventLog {
    let bytes = if c.has("ccel.bin") {
        c.file("ccel.bin")
    } else {
        c.file("eventlog.json")
    };
    parse_event_log(&bytes).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

fn quote_rtmrs(c: &Case) -> Option<[[u8; 48]; 4]> {
    c.has("quote.bin")
        .then(|| parse_tdx_quote(&c.file("quote.bin")).unwrap().body.rtmr)
}

fn mismatching(c: &Case) -> Vec<u8> {
    c.expected("mismatching")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap()
                .strip_prefix("rtmr")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn first_mismatch(e: &EventLogError) -> u8 {
    match e {
        EventLogError::RtmrMismatch { rtmr, .. } => *rtmr,
        other => panic!("expected an RTMR mismatch, got {other}"),
    }
}

#[test]
fn valid_vectors_replay_works() {
    let mut seen = 0;
    for c in common::cases(KIND).iter().filter(|c| c.expected_valid()) {
        let log = log_of(c);
        let want = expected_rtmrs(c, "").unwrap();
        assert_eq!(log.replay(), want, "{}", c.name);
        assert_eq!(log.check_against(&want), Ok(()), "{}", c.name);
        if let Some(q) = quote_rtmrs(c) {
            assert_eq!(log.check_against(&q), Ok(()), "{}: quote", c.name);
        }
        if let Some(n) = c
            .facts()
            .and_then(|f| f.get("events_after_spec_id_header"))
            .and_then(|v| v.as_integer())
        {
            assert_eq!(log.events.len() as i64, n, "{}", c.name);
        }
        if let Some(used) = c
            .facts()
            .and_then(|f| f.get("log_bytes_used"))
            .and_then(|v| v.as_integer())
        {
            assert_eq!(log.used_len as i64, used, "{}", c.name);
        }
        if let Some(per) = c
            .facts()
            .and_then(|f| f.get("events_per_cc_mr"))
            .and_then(|v| v.as_table())
        {
            let counts = log.events_per_rtmr();
            for (mr, n) in per {
                let i: usize = mr.parse().unwrap();
                assert_eq!(counts[i - 1] as i64, n.as_integer().unwrap(), "{}", c.name);
            }
        }
        if let Some(per) = c
            .facts()
            .and_then(|f| f.get("entries_per_rtmr"))
            .and_then(|v| v.as_table())
        {
            let counts = log.events_per_rtmr();
            for (r, n) in per {
                let i: usize = r.parse().unwrap();
                assert_eq!(counts[i] as i64, n.as_integer().unwrap(), "{}", c.name);
            }
        }
        for e in &log.events {
            assert!(!e.description().is_empty());
        }
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} valid event-log cases");
}

#[test]
fn invalid_vectors_rejects() {
    let mut seen = 0;
    for c in common::cases(KIND).iter().filter(|c| !c.expected_valid()) {
        let log = log_of(c);
        // Against the quote when one comes with the case, else against the altered reference.
        let reference = quote_rtmrs(c).unwrap_or_else(|| {
            let mut r = log.replay();
            for (i, key) in [
                "reference_rtmr0",
                "reference_rtmr1",
                "reference_rtmr2",
                "reference_rtmr3",
            ]
            .iter()
            .enumerate()
            {
                if let Some(v) = hex48(c, key) {
                    r[i] = v;
                }
            }
            r
        });
        let err = log.check_against(&reference).unwrap_err();
        let want = mismatching(c);
        assert_eq!(first_mismatch(&err), want[0], "{}: {err}", c.name);
        let all: Vec<u8> = attestation_verifier::eventlog::mismatches(&log.replay(), &reference)
            .iter()
            .map(first_mismatch)
            .collect();
        assert_eq!(all, want, "{}", c.name);
        for key in ["replayed_value", "replayed_rtmr1"] {
            if let Some(v) = hex48(c, key) {
                assert_eq!(log.replay()[usize::from(want[0])], v, "{}", c.name);
            }
        }
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} invalid event-log cases");
}

#[test]
fn dstack_json_log_works() {
    let c = Case::load(KIND, "dstack-simulator-json");
    let log = log_of(&c);
    assert_eq!(log.format, LogFormat::Json);
    assert_eq!(log.events.len(), 27);
    let names: Vec<&str> = log
        .events
        .iter()
        .filter(|e| e.rtmr == Some(3))
        .map(|e| e.name.as_deref().unwrap())
        .collect();
    assert_eq!(names[0], "system-preparing");
    assert_eq!(names.len(), 7);
}

fn real_log() -> Vec<u8> {
    Case::load(KIND, "go-tdx-guest-cos113").file("ccel.bin")
}

#[test]
fn changed_digest_rejects() {
    let c = Case::load(KIND, "go-tdx-guest-cos113");
    let quote = quote_rtmrs(&c).unwrap();
    let mut log = parse_ccel(&c.file("ccel.bin")).unwrap();
    let i = log.events.iter().position(|e| e.rtmr == Some(2)).unwrap();
    log.events[i].sha384[47] ^= 0x01;
    let err = log.check_against(&quote).unwrap_err();
    assert!(
        matches!(err, EventLogError::RtmrMismatch { rtmr: 2, .. }),
        "{err}"
    );
}

#[test]
fn reordered_events_rejects() {
    // Swap two adjacent RTMR0 events in the bytes of the log itself.
    let c = Case::load(KIND, "go-tdx-guest-cos113");
    let quote = quote_rtmrs(&c).unwrap();
    let bytes = c.file("ccel.bin");
    let log = parse_ccel(&bytes).unwrap();
    // Event byte ranges, recomputed from the parse: each event is 12 + 2 + 48 + 4 + data.
    let mut offsets = Vec::new();
    let mut pos = log.used_len - log.events.iter().map(|e| 66 + e.data.len()).sum::<usize>();
    for e in &log.events {
        offsets.push((pos, pos + 66 + e.data.len()));
        pos += 66 + e.data.len();
    }
    let i = (0..log.events.len() - 1)
        .find(|&i| {
            log.events[i].rtmr == Some(0)
                && log.events[i + 1].rtmr == Some(0)
                && log.events[i].sha384 != log.events[i + 1].sha384
        })
        .unwrap();
    let (a, b) = (offsets[i], offsets[i + 1]);
    let mut swapped = bytes[..a.0].to_vec();
    swapped.extend_from_slice(&bytes[b.0..b.1]);
    swapped.extend_from_slice(&bytes[a.0..a.1]);
    swapped.extend_from_slice(&bytes[b.1..]);
    assert_eq!(swapped.len(), bytes.len());
    let reordered = parse_ccel(&swapped).unwrap();
    assert_eq!(reordered.events[i], log.events[i + 1]);
    let err = reordered.check_against(&quote).unwrap_err();
    assert!(
        matches!(err, EventLogError::RtmrMismatch { rtmr: 0, .. }),
        "{err}"
    );
}

#[test]
fn truncated_log_never_panics_works() {
    let bytes = real_log();
    let full = parse_ccel(&bytes).unwrap();
    let used = full.used_len;
    let mut ok = 0;
    for cut in 0..=used {
        match parse_ccel(&bytes[..cut]) {
            // A cut on an event boundary is a shorter, well-formed log.
            Ok(log) => {
                assert!(log.events.len() <= full.events.len());
                assert_eq!(log.events[..], full.events[..log.events.len()]);
                ok += 1;
            }
            Err(e) => assert!(
                matches!(e, EventLogError::Truncated { .. }),
                "cut {cut}: {e}"
            ),
        }
    }
    // The header alone, then one log per event boundary.
    assert_eq!(ok, full.events.len() + 1);
}

#[test]
fn oversized_log_rejects() {
    let mut bytes = real_log();
    bytes.resize(MAX_LOG_LEN + 1, 0xff);
    assert!(matches!(
        parse_ccel(&bytes),
        Err(EventLogError::TooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_works(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(log) = parse_event_log(&bytes) {
            let _ = log.replay();
            for e in &log.events {
                let _ = e.description();
            }
        }
    }

    #[test]
    fn mutated_real_log_never_panics_works(
        edits in proptest::collection::vec((0usize..20_000, any::<u8>()), 1..16)
    ) {
        let mut bytes = real_log();
        for (at, b) in edits {
            if let Some(x) = bytes.get_mut(at) {
                *x = b;
            }
        }
        if let Ok(log) = parse_ccel(&bytes) {
            let _ = log.replay();
            for e in &log.events {
                let _ = e.description();
            }
        }
    }
}
