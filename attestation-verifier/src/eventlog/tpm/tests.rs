#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use sigil_test_support::tcg_log::{self, LogEvent};

use super::*;

fn quoted(pcrs: &[[u8; 32]; 24], which: &[u8]) -> Vec<(u8, [u8; 32])> {
    which.iter().map(|i| (*i, pcrs[usize::from(*i)])).collect()
}

#[test]
fn replay_equals_reference_works() {
    let events = tcg_log::sample_boot();
    let log = parse_tpm_log(&tcg_log::log(&events)).unwrap();
    assert_eq!(log.startup_locality, Some(3));
    assert_eq!(log.events.len(), events.len());
    let want = tcg_log::replay(&events);
    assert_eq!(log.replay(), want);
    // Initial values: PCR 17-22 all ones, PCR 0 carries the locality.
    assert_eq!(log.replay()[17], [0xff; 32]);
    assert_eq!(log.replay()[23], [0; 32]);
    assert_eq!(log.touched(), vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
    let all: Vec<u8> = (0..24).collect();
    assert_eq!(
        log.check_against(&quoted(&want, &all)).unwrap(),
        log.touched()
    );
}

#[test]
fn startup_locality_sets_pcr0_works() {
    let body = LogEvent::measured(0, 1, b"crtm");
    let at = |loc: Option<u8>| {
        let mut ev = Vec::new();
        if let Some(l) = loc {
            ev.push(LogEvent::startup_locality(l));
        }
        ev.push(body.clone());
        parse_tpm_log(&tcg_log::log(&ev)).unwrap().replay()[0]
    };
    let mut three = [0u8; 32];
    three[31] = 3;
    assert_eq!(at(Some(3)), extend_sha256(&three, &body.sha256));
    assert_eq!(at(None), extend_sha256(&[0; 32], &body.sha256));
    assert_eq!(at(Some(0)), at(None));
}

#[test]
fn changed_event_names_its_pcr_rejects() {
    let events = tcg_log::sample_boot();
    let reference = tcg_log::replay(&events);
    let all: Vec<u8> = (0..24).collect();
    let mut changed = events.clone();
    changed[10].sha256[0] ^= 1; // the boot application, PCR 4
    let log = parse_tpm_log(&tcg_log::log(&changed)).unwrap();
    let errors = log.check_against(&quoted(&reference, &all)).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(errors[0], EventLogError::PcrMismatch { pcr: 4, .. }),
        "{errors:?}"
    );
    assert!(errors[0].to_string().starts_with("PCR 4 replays to "));
}

#[test]
fn reordered_events_rejects() {
    // Two events of one PCR swapped: the same digests, another order, another value.
    let mut events = tcg_log::sample_boot();
    events.push(LogEvent::measured(8, tcg_log::EV_IPL, b"initrd"));
    let reference = tcg_log::replay(&events);
    let n = events.len();
    events.swap(n - 1, n - 2);
    let log = parse_tpm_log(&tcg_log::log(&events)).unwrap();
    let all: Vec<u8> = (0..24).collect();
    let errors = log.check_against(&quoted(&reference, &all)).unwrap_err();
    assert!(
        matches!(
            errors.as_slice(),
            [EventLogError::PcrMismatch { pcr: 8, .. }]
        ),
        "{errors:?}"
    );
    // Events of different PCRs may interleave in any order: same values.
    let events = tcg_log::sample_boot();
    let reference = tcg_log::replay(&events);
    let mut swapped = events.clone();
    swapped.swap(3, 4); // the separators of PCR 1 and PCR 2
    let log = parse_tpm_log(&tcg_log::log(&swapped)).unwrap();
    assert!(log.check_against(&quoted(&reference, &all)).is_ok());
}

#[test]
fn every_differing_pcr_is_named_rejects() {
    let events = tcg_log::sample_boot();
    let log = parse_tpm_log(&tcg_log::log(&events)).unwrap();
    let mut reference = tcg_log::replay(&events);
    reference[1][0] ^= 1;
    reference[7][5] ^= 1;
    let errors = log
        .check_against(&quoted(&reference, &[0, 1, 2, 3, 4, 5, 6, 7]))
        .unwrap_err();
    let named: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{named:?}");
    assert!(matches!(
        errors[0],
        EventLogError::PcrMismatch { pcr: 1, .. }
    ));
    assert!(matches!(
        errors[1],
        EventLogError::PcrMismatch { pcr: 7, .. }
    ));
    // PCR 8 is extended but not quoted.
    assert_eq!(errors[2], EventLogError::PcrNotQuoted { pcr: 8 });
}

#[test]
fn malformed_tpm_logs_rejects() {
    let events = tcg_log::sample_boot();
    let good = tcg_log::log(&events);
    // Truncated at every length: a typed error, never a panic.
    for len in 0..good.len() {
        if let Ok(log) = parse_tpm_log(&good[..len]) {
            // A cut on an event boundary is a shorter log.
            assert!(log.events.len() < events.len());
        }
    }
    assert!(matches!(
        parse_tpm_log(&good[..good.len() - 1]),
        Err(EventLogError::Truncated { .. })
    ));
    // Garbage.
    assert!(parse_tpm_log(b"\x01\x02garbage that is not a log").is_err());
    // PCR 24 does not exist.
    let bad = tcg_log::log(&[LogEvent::measured(24, 1, b"x")]);
    assert_eq!(
        parse_tpm_log(&bad),
        Err(EventLogError::PcrIndex { index: 0, pcr: 24 })
    );
    // A log without SHA-256 digests: a SHA-384-only CCEL.
    let ccel = {
        let mut l = crate::eventlog::tests::header(&[(crate::eventlog::TPM_ALG_SHA384, 48)]);
        l.extend(crate::eventlog::tests::event(
            2,
            1,
            &[(crate::eventlog::TPM_ALG_SHA384, vec![1; 48])],
            b"",
        ));
        l
    };
    assert!(matches!(
        parse_tpm_log(&ccel),
        Err(EventLogError::NoBank { alg: 0x000b, .. })
    ));
    // The SHA-384 CCEL path is unchanged.
    assert!(crate::eventlog::parse_ccel(&ccel).is_ok());
    assert_eq!(
        crate::eventlog::parse_ccel(&good),
        Err(EventLogError::NoSha384)
    );
}

#[test]
fn bad_startup_locality_rejects() {
    let body = LogEvent::measured(0, 1, b"crtm");
    let cases: [(Vec<LogEvent>, &str); 4] = [
        (
            vec![LogEvent::startup_locality(3), LogEvent::startup_locality(0)],
            "a second",
        ),
        (vec![body.clone(), LogEvent::startup_locality(3)], "a late"),
        (vec![LogEvent::startup_locality(9)], "an out-of-range"),
        (
            vec![LogEvent {
                data: b"StartupLocality\0\x03\x00".to_vec(),
                ..LogEvent::startup_locality(3)
            }],
            "a malformed",
        ),
    ];
    for (events, problem) in cases {
        let err = parse_tpm_log(&tcg_log::log(&events)).unwrap_err();
        assert!(
            matches!(err, EventLogError::StartupLocality { problem: p, .. } if p == problem),
            "{err:?}"
        );
    }
}
