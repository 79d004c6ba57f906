//! Unit tests: every verdict of a batch is compared with `verify_strict` on the same input.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use ed25519_dalek::{Signer, SigningKey};

use super::*;
use std::sync::atomic::Ordering::Acquire;

type Case = ([u8; 32], [u8; 64], Vec<u8>);

/// Runs `cases` as one batch (queued before the worker starts, so they are taken together)
/// and returns the verdicts and the counters.
fn run_batch(cases: &[Case]) -> (Vec<Result<(), AuthError>>, BatchCounts) {
    let (tx, rx) = mpsc::channel();
    let mut answers = Vec::new();
    for (key, sig, msg) in cases {
        let (reply, rrx) = tokio::sync::oneshot::channel();
        tx.send(Item {
            key: *key,
            sig: *sig,
            msg: msg.clone(),
            reply,
        })
        .unwrap();
        answers.push(rrx);
    }
    drop(tx);
    let stats = BatchStats::default();
    Worker::new(stats.clone()).run(&rx);
    let verdicts = answers
        .into_iter()
        .map(|r| r.blocking_recv().unwrap())
        .collect();
    (verdicts, stats.snapshot())
}

fn valid(seed: u8, i: u32) -> Case {
    let k = SigningKey::from_bytes(&[seed; 32]);
    let msg = format!("message {i}").into_bytes();
    (k.verifying_key().to_bytes(), k.sign(&msg).to_bytes(), msg)
}

/// 32 bytes that are not the encoding of a curve point.
fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| VerifyingKey::from_bytes(b).is_err())
        .unwrap()
}

/// The canonical encoding of y = p - 1 (the point of order 2) and y = p + 1 (the identity,
/// non-canonically).
const ORDER_TWO: [u8; 32] = {
    let mut b = [0xff; 32];
    b[0] = 0xec;
    b[31] = 0x7f;
    b
};
const IDENTITY_NON_CANONICAL: [u8; 32] = {
    let mut b = [0xff; 32];
    b[0] = 0xee;
    b[31] = 0x7f;
    b
};

#[test]
fn batch_works() {
    // Three buyers, interleaved: one combined check, no fallback.
    let cases: Vec<Case> = (0..100).map(|i| valid(1 + (i % 3) as u8, i)).collect();
    let (verdicts, n) = run_batch(&cases);
    assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
    assert_eq!((n.batches, n.signatures, n.fallbacks), (1, 100, 0));
}

#[test]
fn lone_signature_works() {
    let (verdicts, n) = run_batch(&[valid(7, 0)]);
    assert_eq!(verdicts, vec![Ok(())]);
    assert_eq!((n.batches, n.signatures, n.fallbacks), (1, 1, 0));
}

#[test]
fn batch_rejects_each_bad_signature_alone() {
    let mut cases: Vec<Case> = (0..40).map(|i| valid(1 + (i % 2) as u8, i)).collect();
    let l_plus = {
        // s + l: the same scalar, not canonical.
        let (k, sig, m) = valid(1, 1000);
        let s = Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).unwrap();
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let mut l = [0u8; 32];
        l[..16].copy_from_slice(&0x14de_f9de_a2f7_9cd6_5812_631a_5cf5_d3ed_u128.to_le_bytes());
        l[31] = 0x10;
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s.to_bytes()[i]) + u16::from(l[i]) + carry;
            sum[i] = v as u8;
            carry = v >> 8;
        }
        let mut bad = sig;
        bad[32..].copy_from_slice(&sum);
        (k, bad, m)
    };
    let mutants: Vec<Case> = vec![
        // A bit of s flipped.
        {
            let (k, mut s, m) = valid(1, 500);
            s[40] ^= 1;
            (k, s, m)
        },
        // A bit of R flipped.
        {
            let (k, mut s, m) = valid(2, 501);
            s[3] ^= 0x10;
            (k, s, m)
        },
        // Another message.
        {
            let (k, s, _) = valid(1, 502);
            (k, s, b"other".to_vec())
        },
        // Another buyer's key.
        {
            let (_, s, m) = valid(1, 503);
            (valid(2, 0).0, s, m)
        },
        l_plus,
        // R of small order (and non-canonical).
        {
            let (k, mut s, m) = valid(1, 504);
            s[..32].copy_from_slice(&ORDER_TWO);
            (k, s, m)
        },
        {
            let (k, mut s, m) = valid(1, 505);
            s[..32].copy_from_slice(&IDENTITY_NON_CANONICAL);
            (k, s, m)
        },
        // A key of small order, a key that is not a point.
        {
            let (_, s, m) = valid(1, 506);
            (ORDER_TWO, s, m)
        },
        {
            let (_, s, m) = valid(1, 507);
            (not_a_point(), s, m)
        },
    ];
    let n = mutants.len();
    for (i, m) in mutants.into_iter().enumerate() {
        cases.insert(i * 4 + 1, m);
    }
    let (verdicts, counts) = run_batch(&cases);
    assert_eq!(counts.signatures, cases.len() as u64);
    // The mutants not caught before the equation make the combined check fail once.
    assert_eq!(counts.fallbacks, 1);
    let mut rejected = 0;
    for ((k, s, m), v) in cases.iter().zip(&verdicts) {
        assert_eq!(*v, strict(k, s, m));
        rejected += usize::from(v.is_err());
    }
    assert_eq!(rejected, n);
    assert_eq!(verdicts[1 + 4 * 8], Err(AuthError::MalformedKey));
}

/// Random mutations of random batches, each verdict against `verify_strict`.
#[test]
fn batch_matches_verify_strict() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..40u32 {
        let size = 1 + (next() % 48) as usize;
        let cases: Vec<Case> = (0..size)
            .map(|i| {
                let (mut k, mut s, mut m) = valid(1 + (next() % 4) as u8, round * 100 + i as u32);
                match next() % 8 {
                    0 => s[(next() % 64) as usize] ^= 1 << (next() % 8),
                    1 => k[(next() % 32) as usize] ^= 1 << (next() % 8),
                    2 => m.push(0),
                    _ => {}
                }
                (k, s, m)
            })
            .collect();
        let (verdicts, _) = run_batch(&cases);
        for ((k, s, m), v) in cases.iter().zip(&verdicts) {
            assert_eq!(*v, strict(k, s, m), "round {round}");
        }
    }
}

#[test]
fn canonical_y_works() {
    assert!(canonical_y(&ORDER_TWO));
    assert!(!canonical_y(&IDENTITY_NON_CANONICAL));
    let mut p = ORDER_TWO;
    p[0] = 0xed;
    assert!(!canonical_y(&p));
    // The sign bit is not part of y.
    let mut signed = ORDER_TWO;
    signed[31] |= 0x80;
    assert!(canonical_y(&signed));
    p[31] |= 0x80;
    assert!(!canonical_y(&p));
    assert!(canonical_y(&[0; 32]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_work() {
    let stats = BatchStats::default();
    let v = BatchVerifier::start(stats.clone()).unwrap();
    let cases: Vec<(bool, Case)> = (0..200u32)
        .map(|i| {
            let (k, mut s, m) = valid(1 + (i % 5) as u8, i);
            let bad = i % 17 == 0;
            if bad {
                s[50] ^= 4;
            }
            (bad, (k, s, m))
        })
        .collect();
    // Something in flight: each is queued for the verifier thread at once, and batches
    // form while it works.
    v.in_flight.fetch_add(1, AcqRel);
    let held = InFlight(Arc::clone(&v.in_flight));
    let mut waits = Vec::new();
    for (bad, (k, s, m)) in cases {
        waits.push((bad, tokio::spawn(v.verify(k, s, m))));
    }
    for (bad, w) in waits {
        let r = w.await.unwrap();
        assert_eq!(r.is_err(), bad, "{r:?}");
    }
    let n = stats.snapshot();
    assert_eq!((n.inline, n.signatures), (0, 200));
    assert!(n.batches < 200, "{n:?}");
    // Nothing in flight, none begun recently: verified inline, same verdicts.
    drop(held);
    let (k, s, m) = valid(9, 0);
    let lone = |k, s, m| {
        let v = v.clone();
        async move {
            tokio::time::sleep(QUIET * 3).await;
            v.verify(k, s, m).await
        }
    };
    assert_eq!(lone(k, s, m).await, Ok(()));
    assert_eq!(
        lone(k, s, b"x".to_vec()).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        lone(ORDER_TWO, s, b"x".to_vec()).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(stats.snapshot().inline, 3);
    // Requests close together are batched even with nothing in flight in between: each
    // begins half of QUIET after the activity before it (its begin time given, not read
    // from a clock that a loaded machine stretches past QUIET between two calls).
    let close: Vec<Case> = (0..3).map(|i| valid(9, i)).collect();
    let half = u64::try_from(QUIET.as_micros()).unwrap() / 2;
    let before = stats.snapshot();
    for (k, s, m) in close {
        let at = v.last.load(Acquire) + half;
        assert_eq!(v.verify_at(at, k, s, m).await, Ok(()));
    }
    let after = stats.snapshot();
    assert_eq!(after.inline, before.inline, "{after:?}");
    assert_eq!(after.signatures - before.signatures, 3, "{after:?}");
}
