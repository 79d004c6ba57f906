#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// A header listing `algs` (id, size).
pub(crate) fn header(algs: &[(u16, u16)]) -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(SPEC_ID_SIGNATURE);
    spec.extend_from_slice(&0u32.to_le_bytes());
    spec.extend_from_slice(&[0, 2, 0, 2]);
    spec.extend_from_slice(&(algs.len() as u32).to_le_bytes());
    for (a, s) in algs {
        spec.extend_from_slice(&a.to_le_bytes());
        spec.extend_from_slice(&s.to_le_bytes());
    }
    spec.push(0);
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    out.extend_from_slice(&spec);
    out
}

/// One `TCG_PCR_EVENT2`: CC MR index, type, digests, data.
pub(crate) fn event(mr: u32, ty: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&mr.to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
    for (a, d) in digests {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(d);
    }
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn sha384_event(mr: u32, ty: u32, d: u8, data: &[u8]) -> Vec<u8> {
    event(mr, ty, &[(TPM_ALG_SHA384, vec![d; 48])], data)
}

fn extend(reg: [u8; 48], d: [u8; 48]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(reg);
    h.update(d);
    h.finalize().into()
}

#[test]
fn replay_maps_mr_index_to_rtmr_works() {
    let mut log = header(&[(TPM_ALG_SHA384, 48)]);
    log.extend(sha384_event(1, 0x8000_0007, 1, b"Calling EFI Application"));
    log.extend(sha384_event(4, 0x6, 2, b""));
    log.extend(sha384_event(2, EV_NO_ACTION, 3, b""));
    log.extend(sha384_event(1, 0x4, 4, &[0; 4]));
    log.extend([0xff; 100]);
    let parsed = parse_ccel(&log).unwrap();
    assert_eq!(parsed.events.len(), 4);
    assert_eq!(parsed.events[2].rtmr, None);
    let r = parsed.replay();
    assert_eq!(r[0], extend(extend([0; 48], [1; 48]), [4; 48]));
    assert_eq!(r[1], [0; 48]);
    assert_eq!(r[2], [0; 48]);
    assert_eq!(r[3], extend([0; 48], [2; 48]));
    assert_eq!(parsed.check_against(&r), Ok(()));
    let mut other = r;
    other[3][0] ^= 1;
    assert!(matches!(
        parsed.check_against(&other),
        Err(EventLogError::RtmrMismatch { rtmr: 3, .. })
    ));
    assert_eq!(
        parsed.events[0].description(),
        "EV_EFI_ACTION: Calling EFI Application"
    );
}

#[test]
fn multi_bank_log_works() {
    let mut log = header(&[(0x000b, 32), (TPM_ALG_SHA384, 48)]);
    log.extend(event(
        3,
        0xd,
        &[(0x000b, vec![9; 32]), (TPM_ALG_SHA384, vec![7; 48])],
        b"linux /vmlinuz console=ttyS0\0",
    ));
    log.extend([0u8; 7]);
    let parsed = parse_ccel(&log).unwrap();
    assert_eq!(parsed.events[0].sha384, [7; 48]);
    assert_eq!(parsed.events[0].rtmr, Some(2));
    assert_eq!(
        parsed.events[0].description(),
        "EV_IPL: linux /vmlinuz console=ttyS0"
    );
}

#[test]
fn malformed_logs_rejects() {
    let h = header(&[(TPM_ALG_SHA384, 48)]);
    type Want = fn(&EventLogError) -> bool;
    let cases: Vec<(Vec<u8>, Want)> = vec![
        ([h.clone(), sha384_event(5, 0x4, 1, b"")].concat(), |e| {
            matches!(e, EventLogError::MrIndex { mr_index: 5, .. })
        }),
        ([h.clone(), sha384_event(0, 0x4, 1, b"")].concat(), |e| {
            matches!(e, EventLogError::ExtendsMrtd { .. })
        }),
        (
            [
                h.clone(),
                event(
                    1,
                    4,
                    &[(TPM_ALG_SHA384, vec![1; 48]), (TPM_ALG_SHA384, vec![1; 48])],
                    b"",
                ),
            ]
            .concat(),
            |e| matches!(e, EventLogError::DigestCount { count: 2, .. }),
        ),
        (
            [h.clone(), event(1, 4, &[(0x000b, vec![1; 48])], b"")].concat(),
            |e| matches!(e, EventLogError::UnknownAlgorithm { alg: 0x000b, .. }),
        ),
        (header(&[(0x000b, 32)]), |e| {
            matches!(e, EventLogError::NoSha384)
        }),
        (header(&[(TPM_ALG_SHA384, 32)]), |e| {
            matches!(e, EventLogError::DigestSize { size: 32, .. })
        }),
        (header(&[]), |e| {
            matches!(e, EventLogError::AlgorithmCount { count: 0, .. })
        }),
        (
            [
                h.clone(),
                sha384_event(1, 4, 1, b"abcd")[..60].to_vec(),
                vec![1],
            ]
            .concat(),
            |e| matches!(e, EventLogError::Truncated { .. }),
        ),
        (vec![0xff; MAX_LOG_LEN + 1], |e| {
            matches!(e, EventLogError::TooLarge { .. })
        }),
        (
            {
                let mut b = h.clone();
                b[32] = b'X';
                b
            },
            |e| matches!(e, EventLogError::NotCryptoAgile),
        ),
        (vec![0u8; 64], |e| {
            matches!(e, EventLogError::HeaderNotNoAction { event_type: 0 })
        }),
        (Vec::new(), |e| matches!(e, EventLogError::Truncated { .. })),
    ];
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let got = parse_ccel(bytes).unwrap_err();
        assert!(want(&got), "case {i}: {got}");
    }
    let mut big = h.clone();
    let mut ev = sha384_event(1, 4, 1, b"");
    let n = ev.len();
    ev[n - 4..].copy_from_slice(&((MAX_EVENT_DATA_LEN + 1) as u32).to_le_bytes());
    big.extend(ev);
    assert!(matches!(
        parse_ccel(&big),
        Err(EventLogError::EventTooLarge { .. })
    ));
}

#[test]
fn fill_followed_by_data_rejects() {
    // Fill ends the log only when nothing but fill follows.
    let mut log = header(&[(TPM_ALG_SHA384, 48)]);
    log.extend(sha384_event(1, 4, 1, b""));
    let used = log.len();
    log.extend([0xff; 100]);
    log.extend([0x00; 100]);
    assert_eq!(parse_ccel(&log).unwrap().used_len, used);
    log.push(1);
    assert!(matches!(
        parse_ccel(&log),
        Err(EventLogError::DigestCount { index: 1, .. })
    ));
}

#[test]
fn event_count_cap_rejects() {
    let mut log = header(&[(TPM_ALG_SHA384, 48)]);
    let ev = sha384_event(1, 4, 1, b"");
    for _ in 0..=MAX_EVENTS {
        log.extend_from_slice(&ev);
    }
    assert_eq!(
        parse_ccel(&log),
        Err(EventLogError::TooManyEvents { max: MAX_EVENTS })
    );
}

#[test]
fn json_log_works() {
    let d = "ab".repeat(48);
    let text = alloc::format!(
        r#"[{{"imr":3,"event_type":134217729,"digest":"{d}","event":"app-id","event_payload":"0102"}},
           {{"imr":0,"event_type":4,"digest":"{d}","event":"","event_payload":""}}]"#
    );
    let log = parse_event_log(text.as_bytes()).unwrap();
    assert_eq!(log.format, LogFormat::Json);
    assert_eq!(log.events[0].rtmr, Some(3));
    assert_eq!(log.events[0].mr_index, 4);
    assert_eq!(log.events[0].data, vec![1, 2]);
    assert_eq!(log.events[0].description(), "DSTACK_RUNTIME_EVENT: app-id");
    assert_eq!(log.replay()[3], extend([0; 48], [0xab; 48]));
    assert!(matches!(
        parse_json_log(br#"[{"imr":4,"event_type":1,"digest":""}]"#),
        Err(EventLogError::MrIndex { .. })
    ));
    assert!(matches!(
        parse_json_log(br#"[{"imr":1,"event_type":1,"digest":"00"}]"#),
        Err(EventLogError::JsonDigest { index: 0 })
    ));
    assert!(matches!(
        parse_json_log(b"[{]"),
        Err(EventLogError::Json { .. })
    ));
}
