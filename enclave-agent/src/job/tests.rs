//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use parity_scale_codec::{Decode, Encode};

use super::*;

#[test]
fn end_reason_text_round_trip_works() {
    let all = [
        EndReason::None,
        EndReason::CancelledBeforeStart,
        EndReason::CancelledWhileRunning,
        EndReason::NotStarted("spawn failed".into()),
        EndReason::OutputsNotCollected("over the cap".into()),
        EndReason::WallTime { limit_ms: 1500 },
        EndReason::CpuTime { limit_ms: 1000 },
        EndReason::MemoryLimit {
            limit_bytes: 1 << 26,
        },
        EndReason::ProcessLimit { limit: 64 },
        EndReason::DiskLimit {
            limit_bytes: 1 << 20,
        },
        EndReason::Signal(9),
        EndReason::Exit(7),
        EndReason::Exit(-3),
        EndReason::Shutdown,
        EndReason::ShutdownRequeued,
        EndReason::Restarted,
        EndReason::RestartRequeued { attempt: 2 },
        EndReason::Internal,
        EndReason::Other("something an older agent wrote".into()),
    ];
    for r in all {
        let text = r.to_string();
        assert_eq!(EndReason::parse(&text).to_string(), text);
        // The SCALE form is the text's, as in records written before the enum.
        assert_eq!(r.encode(), text.encode());
        let back = EndReason::decode(&mut text.encode().as_slice()).unwrap();
        assert_eq!(back.to_string(), text);
    }
    assert_eq!(EndReason::parse("exited with status 7"), EndReason::Exit(7));
    assert_eq!(
        EndReason::parse("the agent restarted while the job was running"),
        EndReason::Restarted
    );
    // Text that a variant would show differently stays as it was.
    assert_eq!(
        EndReason::parse("exited with status 07"),
        EndReason::Other("exited with status 07".into())
    );
}
