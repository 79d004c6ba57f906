//! Unit tests.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::*;

const CAP: u64 = 64 << 10;

fn payloads(n: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut p = Vec::new();
            record(&mut p, Redo::Job([i; 32], &[i; 181]));
            record(&mut p, Redo::Spec((1_000 + u64::from(i), [i; 32]), b"spec"));
            p
        })
        .collect()
}

fn journal_with(path: &Path, generation: u64, frames: &[Vec<u8>]) {
    let (mut j, old) = Journal::open(path, CAP, generation.saturating_sub(1)).unwrap();
    drop(old);
    for f in frames {
        assert!(j.fits(f.len()));
        j.append(generation, f).unwrap();
    }
}

#[test]
fn frames_of_the_generation_are_read_back_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let written = payloads(3);
    journal_with(&path, 5, &written);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), CAP);
    let (j, read) = Journal::open(&path, CAP, 5).unwrap();
    assert_eq!(read, written);
    assert!(j.is_empty(), "appending starts over after the checkpoint");
    // Another generation's frames are retired ones.
    assert!(Journal::open(&path, CAP, 6).unwrap().1.is_empty());
    assert!(Journal::open(&path, CAP, 4).unwrap().1.is_empty());
}

#[test]
fn torn_or_damaged_frame_ends_the_journal_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let written = payloads(3);
    journal_with(&path, 1, &written);
    let mut bytes = std::fs::read(&path).unwrap();
    let frame = HEADER + written[0].len();
    // A flipped bit in the third frame's payload.
    bytes[2 * frame + HEADER + 7] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Journal::open(&path, CAP, 1).unwrap().1, written[..2]);
    // Cut in the middle of the second frame (a write the crash interrupted).
    bytes.truncate(frame + HEADER + 3);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Journal::open(&path, CAP, 1).unwrap().1, written[..1]);
    // A damaged header.
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    assert!(Journal::open(&path, CAP, 1).unwrap().1.is_empty());
}

#[test]
fn restart_overwrites_retired_frames_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    journal_with(&path, 1, &payloads(4));
    let (mut j, _) = Journal::open(&path, CAP, 1).unwrap();
    j.restart();
    let newer = payloads(1);
    j.append(2, &newer[0]).unwrap();
    assert_eq!(Journal::open(&path, CAP, 2).unwrap().1, newer);
    // Generation 1's frames behind the new one are not read as generation 2's, and are no
    // longer found as generation 1's either: the first frame is of generation 2.
    assert!(Journal::open(&path, CAP, 1).unwrap().1.is_empty());
}

#[test]
fn full_journal_refuses_a_frame_works() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(&dir.path().join("j"), 256, 0).unwrap();
    assert!(j.fits(256 - HEADER));
    assert!(!j.fits(256 - HEADER + 1));
    j.append(1, &[7; 100]).unwrap();
    assert!(j.fits(256 - 2 * HEADER - 100));
    assert!(!j.fits(256 - 2 * HEADER - 99));
    assert!(!j.fits(usize::MAX));
}

#[test]
fn writes_round_trip_and_reject_bad_payloads_works() {
    let mut p = Vec::new();
    record(&mut p, Redo::Job([1; 32], b"record"));
    record(&mut p, Redo::Spec((42, [2; 32]), b""));
    record(&mut p, Redo::Job([3; 32], &[]));
    let all = [
        Redo::Output(([4; 32], "dir/file \u{e9}", 7), b"chunk"),
        Redo::Log(([5; 32], 2, 1), b"log"),
        Redo::Receipt([6; 32], b"receipt"),
        Redo::Bundle([7; 32], b"bundle"),
    ];
    let mut q = Vec::new();
    for w in all {
        record(&mut q, w);
    }
    assert_eq!(writes(&q).unwrap(), all);
    let mut bad_path = Vec::new();
    record(&mut bad_path, Redo::Output(([4; 32], "ab", 0), b""));
    bad_path[1 + 32 + 4] = 0xff;
    assert!(writes(&bad_path).unwrap_err().starts_with("output path"));
    assert_eq!(
        writes(&p).unwrap(),
        vec![
            Redo::Job([1; 32], b"record"),
            Redo::Spec((42, [2; 32]), b""),
            Redo::Job([3; 32], &[]),
        ]
    );
    assert!(writes(&[]).unwrap().is_empty());
    assert_eq!(
        writes(&[9, 0, 0]).unwrap_err(),
        "unknown journal write 0x09"
    );
    // Ends of whole writes: job (tag, id, length, value), then spec (tag, ms, id, length).
    let first = 1 + 32 + 4 + b"record".len();
    let boundaries = [first, first + 1 + 8 + 32 + 4];
    for cut in 1..p.len() {
        if boundaries.contains(&cut) {
            assert_eq!(
                writes(&p[..cut]).unwrap().len(),
                if cut == first { 1 } else { 2 }
            );
        } else {
            assert!(writes(&p[..cut]).is_err(), "cut at {cut} accepted");
        }
    }
}
