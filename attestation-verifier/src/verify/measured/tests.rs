#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::eventlog::TPM_ALG_SHA384;
use crate::eventlog::tests::{event, header};

/// A CCEL with a SHA-384 header and one `EV_IPL` event per `(mr_index, digest byte)`.
fn ccel(events: &[(u32, u8)]) -> Vec<u8> {
    let mut out = header(&[(TPM_ALG_SHA384, 48)]);
    for (mr, d) in events {
        out.extend(event(*mr, 0xd, &[(TPM_ALG_SHA384, vec![*d; 48])], b"boot"));
    }
    out
}

fn agent(kind: AgentEventKind, d: u8) -> AgentEvent {
    AgentEvent {
        kind,
        digest: [d; 48],
    }
}

fn measured(log: Option<Vec<u8>>, agent_events: Vec<AgentEvent>) -> MeasuredBoot {
    MeasuredBoot {
        event_log: log,
        agent_events,
        tpm_quote: None,
    }
}

/// RTMRs a TD with the log `events` and the agent events `agent` would have.
fn registers(events: &[(u32, u8)], agent: &[u8]) -> [[u8; 48]; 4] {
    let mut r = [[0u8; 48]; 4];
    for (mr, d) in events {
        let i = (*mr - 1) as usize;
        r[i] = extend(&r[i], &[*d; 48]);
    }
    for d in agent {
        r[3] = extend(&r[3], &[*d; 48]);
    }
    r
}

const BOOT: [(u32, u8); 4] = [(1, 0x10), (2, 0x21), (3, 0x32), (2, 0x22)];

#[test]
fn log_and_agent_events_replay_works() {
    let m = measured(
        Some(ccel(&BOOT)),
        vec![
            agent(AgentEventKind::Binary, 0xA1),
            agent(AgentEventKind::Config, 0xC1),
        ],
    );
    let quote = registers(&BOOT, &[0xA1, 0xC1]);
    let v = verify_measured_tdx(&m, &quote).unwrap().unwrap();
    assert_eq!(v.covered, [true; 4]);
    assert_eq!(v.rtmrs, quote);
    assert_eq!(v.agent_digest(), Some(&[0xA1; 48]));
    assert_eq!(v.config_digest(), Some(&[0xC1; 48]));
    assert!(v.has_event(1, &[0x21; 48]));
    assert!(v.has_event(1, &[0x22; 48]));
    assert!(!v.has_event(0, &[0x21; 48]), "digest in another register");
    assert!(
        !v.has_event(3, &[0xA1; 48]),
        "agent events are not log events"
    );
}

#[test]
fn agent_events_without_log_cover_rtmr3_only_works() {
    let m = measured(None, vec![agent(AgentEventKind::Binary, 0xA1)]);
    let mut quote = registers(&[], &[0xA1]);
    // RTMR0..2 hold whatever the firmware put there: not covered, not compared.
    quote[0] = [0x99; 48];
    let v = verify_measured_tdx(&m, &quote).unwrap().unwrap();
    assert_eq!(v.covered, [false, false, false, true]);
    assert!(v.log.is_none());
    assert!(!v.has_event(0, &[0x10; 48]));
}

#[test]
fn last_start_is_the_claim_works() {
    // Two starts of the agent in one boot: the claims are the last start's.
    let m = measured(
        None,
        vec![
            agent(AgentEventKind::Binary, 0xA1),
            agent(AgentEventKind::Config, 0xC1),
            agent(AgentEventKind::Binary, 0xA2),
            agent(AgentEventKind::Config, 0xC2),
        ],
    );
    let quote = registers(&[], &[0xA1, 0xC1, 0xA2, 0xC2]);
    let v = verify_measured_tdx(&m, &quote).unwrap().unwrap();
    assert_eq!(v.agent_digest(), Some(&[0xA2; 48]));
    assert_eq!(v.config_digest(), Some(&[0xC2; 48]));
}

#[test]
fn nothing_to_replay_is_none_works() {
    assert!(verify_measured_tdx(&MeasuredBoot::default(), &[[0; 48]; 4]).is_none());
}

fn replay_errors(m: &MeasuredBoot, quote: &[[u8; 48]; 4]) -> Vec<u8> {
    verify_measured_tdx(m, quote)
        .unwrap()
        .unwrap_err()
        .into_iter()
        .map(|e| match e {
            MeasuredBootError::Replay(EventLogError::RtmrMismatch { rtmr, .. }) => rtmr,
            other => panic!("expected a replay mismatch, got {other}"),
        })
        .collect()
}

#[test]
fn changed_event_or_agent_event_rejects() {
    let quote = registers(&BOOT, &[0xA1]);
    // A log event changed: RTMR1 no longer replays.
    let mut boot = BOOT;
    boot[1].1 = 0x23;
    let m = measured(Some(ccel(&boot)), vec![agent(AgentEventKind::Binary, 0xA1)]);
    assert_eq!(replay_errors(&m, &quote), vec![1]);
    // Another agent binary than the one measured.
    let m = measured(Some(ccel(&BOOT)), vec![agent(AgentEventKind::Binary, 0xA2)]);
    assert_eq!(replay_errors(&m, &quote), vec![3]);
    // The agent's event left out (claiming no agent ran), or one invented.
    let m = measured(Some(ccel(&BOOT)), vec![]);
    assert_eq!(replay_errors(&m, &quote), vec![3]);
    let m = measured(
        Some(ccel(&BOOT)),
        vec![
            agent(AgentEventKind::Binary, 0xA1),
            agent(AgentEventKind::Config, 0xC1),
        ],
    );
    assert_eq!(replay_errors(&m, &quote), vec![3]);
    // Events reordered.
    let m = measured(
        None,
        vec![
            agent(AgentEventKind::Config, 0xC1),
            agent(AgentEventKind::Binary, 0xA1),
        ],
    );
    assert_eq!(replay_errors(&m, &registers(&[], &[0xA1, 0xC1])), vec![3]);
    // Every register named when all differ.
    let m = measured(Some(ccel(&BOOT)), vec![]);
    assert_eq!(replay_errors(&m, &[[0x55; 48]; 4]), vec![0, 1, 2, 3]);
}

#[test]
fn malformed_log_rejects() {
    let mut bytes = ccel(&BOOT);
    bytes.truncate(bytes.len() - 3);
    let m = measured(Some(bytes), vec![]);
    let errors = verify_measured_tdx(&m, &registers(&BOOT, &[]))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(errors.as_slice(), [MeasuredBootError::Log(_)]),
        "{errors:?}"
    );
    let m = measured(Some(b"not a log".to_vec()), vec![]);
    assert!(verify_measured_tdx(&m, &[[0; 48]; 4]).unwrap().is_err());
}
