//! The store's redo journal: small writes made durable by one `fdatasync` of a pre-written
//! file instead of a B-tree commit.
//!
//! A batch of writes (submissions, state changes, a job's end with its outputs, logs and
//! receipt, an evidence bundle) is committed to redb without durability
//! ([`redb::Durability::None`]: visible to readers, nothing written to the file), then its
//! writes are appended here as one frame and the journal is synced before any of them is
//! acknowledged. Every so often, and for every batch too large for the journal, the store
//! makes a checkpoint instead: a durable redb commit that also advances the store's journal
//! generation, after which the journal starts again from its beginning. On opening, the
//! frames of the generation recorded in redb are applied again, in order, and a checkpoint
//! is made.
//!
//! Why by hand: redb has no log of its own; each durable commit writes every page the
//! batch touched (a leaf per job, as job ids are random) and syncs a growing file. Here the
//! file is written with zeros once, so a sync writes the frame's blocks and no metadata:
//! `cargo bench -p enclave-agent --bench agent -- --only submit` measures the difference.
//!
//! Frame: `"SGJ1"`, generation (u64 LE), payload length (u32 LE), SHA-256 of the
//! generation, length and payload, then the payload. Reading stops at the first frame that
//! is torn, of another generation (left over from before the last checkpoint), or absent.
//! A frame is written only after the previous one is synced, so nothing acknowledged lies
//! beyond that point.
//!
//! Payload: writes in order, each a tag byte, its key, then the value's length (u32) and
//! bytes; integers little-endian. Keys: `1` job record (job id), `2` spec (submission ms
//! u64, job id), `3` output chunk (job id, path length u32, path, chunk u32), `4` log chunk
//! (job id, stream u8, chunk u32), `5` receipt (job id), `6` evidence bundle (digest).
//! Writes are whole values, so applying a frame twice is harmless.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::JobId;

const MAGIC: [u8; 4] = *b"SGJ1";
/// Magic, generation, payload length, digest.
const HEADER: usize = 4 + 8 + 4 + 32;
const TAG_JOB: u8 = 1;
const TAG_SPEC: u8 = 2;
const TAG_OUTPUT: u8 = 3;
const TAG_LOG: u8 = 4;
const TAG_RECEIPT: u8 = 5;
const TAG_BUNDLE: u8 = 6;
/// Zeros are written in pieces of this size when the file is prepared.
const ZEROS: usize = 1 << 20;

/// The journal file, open for appending frames of the current generation.
#[derive(Debug)]
pub(super) struct Journal {
    file: File,
    capacity: u64,
    /// Where the next frame goes.
    end: u64,
}

/// One write recorded in a frame: the table, its key, the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Redo<'a> {
    /// A job record (`JOBS`).
    Job(JobId, &'a [u8]),
    /// A spec (`SPEC_LOG`), keyed by submission ms and job id.
    Spec((u64, JobId), &'a [u8]),
    /// A chunk of an output file (`OUTPUTS`): job, path, chunk index.
    Output((JobId, &'a str, u32), &'a [u8]),
    /// A chunk of a log (`LOGS`): job, stream tag, chunk index.
    Log((JobId, u8, u32), &'a [u8]),
    /// A receipt (`RECEIPTS`).
    Receipt(JobId, &'a [u8]),
    /// An evidence bundle (`BUNDLES`), by digest.
    Bundle([u8; 32], &'a [u8]),
}

impl Journal {
    /// Opens (or creates) the journal at `path` and returns it with the payloads of the
    /// frames of `generation`, in order. The file is extended with zeros to `capacity`
    /// bytes and synced, as its directory is when the file is new.
    ///
    /// The caller applies the payloads and makes a checkpoint (advancing the generation)
    /// before it appends: appending starts at the beginning of the file.
    pub(super) fn open(
        path: &Path,
        capacity: u64,
        generation: u64,
    ) -> io::Result<(Self, Vec<Vec<u8>>)> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut data = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
        file.read_exact_at(&mut data, 0)?;
        let payloads = frames(&data, generation)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        if len < capacity {
            let zeros = vec![0u8; ZEROS];
            let mut at = len;
            while at < capacity {
                let n = usize::try_from(capacity.saturating_sub(at))
                    .unwrap_or(ZEROS)
                    .min(ZEROS);
                file.write_all_at(zeros.get(..n).unwrap_or_default(), at)?;
                at = at.saturating_add(n as u64);
            }
            file.sync_all()?;
        }
        if !existed {
            // The new file's directory entry: `parent` is "" for a bare file name.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(dir)?.sync_all()?;
        }
        Ok((
            Self {
                file,
                capacity: capacity.max(len),
                end: 0,
            },
            payloads,
        ))
    }

    /// Whether a frame with `payload_len` bytes fits after the frames written so far.
    pub(super) fn fits(&self, payload_len: usize) -> bool {
        HEADER
            .checked_add(payload_len)
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_add(self.end))
            .is_some_and(|end| end <= self.capacity)
    }

    /// True when no frame was written since the last checkpoint.
    pub(super) fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Writes one frame of `generation` and syncs it. The caller checked [`Self::fits`].
    pub(super) fn append(&mut self, generation: u64, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        let mut frame = Vec::with_capacity(HEADER.saturating_add(payload.len()));
        frame.extend_from_slice(&MAGIC);
        frame.extend_from_slice(&generation.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&digest(generation, len, payload));
        frame.extend_from_slice(payload);
        self.file.write_all_at(&frame, self.end)?;
        self.file.sync_data()?;
        self.end = self.end.saturating_add(frame.len() as u64);
        Ok(())
    }

    /// After a checkpoint: the next frame goes at the beginning.
    pub(super) fn restart(&mut self) {
        self.end = 0;
    }
}

fn digest(generation: u64, len: u32, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(generation.to_le_bytes());
    h.update(len.to_le_bytes());
    h.update(payload);
    h.finalize().into()
}

/// The payloads of the leading run of intact frames of `generation` in `data`.
fn frames(data: &[u8], generation: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((payload, next)) = frame(rest, generation) {
        out.push(payload);
        rest = next;
    }
    out
}

/// The first frame of `data` if it is intact and of `generation`, and what follows it.
fn frame(data: &[u8], generation: u64) -> Option<(&[u8], &[u8])> {
    let (head, body) = data.split_at_checked(HEADER)?;
    let (magic, head) = head.split_first_chunk::<4>()?;
    let (g, head) = head.split_first_chunk::<8>()?;
    let (len, sum) = head.split_first_chunk::<4>()?;
    if *magic != MAGIC || u64::from_le_bytes(*g) != generation {
        return None;
    }
    let len = u32::from_le_bytes(*len);
    let (payload, next) = body.split_at_checked(usize::try_from(len).ok()?)?;
    (digest(generation, len, payload).as_slice() == sum).then_some((payload, next))
}

/// Appends `w` to a frame payload.
pub(super) fn record(out: &mut Vec<u8>, w: Redo<'_>) {
    let value = match w {
        Redo::Job(id, v) => {
            out.push(TAG_JOB);
            out.extend_from_slice(&id);
            v
        }
        Redo::Spec((ms, id), v) => {
            out.push(TAG_SPEC);
            out.extend_from_slice(&ms.to_le_bytes());
            out.extend_from_slice(&id);
            v
        }
        Redo::Output((id, path, chunk), v) => {
            out.push(TAG_OUTPUT);
            out.extend_from_slice(&id);
            put_len(out, path.len());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&chunk.to_le_bytes());
            v
        }
        Redo::Log((id, stream, chunk), v) => {
            out.push(TAG_LOG);
            out.extend_from_slice(&id);
            out.push(stream);
            out.extend_from_slice(&chunk.to_le_bytes());
            v
        }
        Redo::Receipt(id, v) => {
            out.push(TAG_RECEIPT);
            out.extend_from_slice(&id);
            v
        }
        Redo::Bundle(digest, v) => {
            out.push(TAG_BUNDLE);
            out.extend_from_slice(&digest);
            v
        }
    };
    put_len(out, value.len());
    out.extend_from_slice(value);
}

/// A length as u32. Values and paths are far below 4 GiB (requests and outputs are
/// size-limited, values are chunked); a batch whose frame would not fit in the journal is
/// a checkpoint instead, so a saturated length is never read back.
fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

/// Reads a frame payload front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let (a, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| format!("truncated {what}"))?;
        self.0 = rest;
        Ok(*a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.u32(what)?).map_err(|e| e.to_string())?;
        let (b, rest) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| format!("truncated {what}"))?;
        self.0 = rest;
        Ok(b)
    }
}

/// The writes of a frame payload, in order; `Err` names what does not decode (the frame's
/// digest matched, so this is a payload of another version).
pub(super) fn writes(payload: &[u8]) -> Result<Vec<Redo<'_>>, String> {
    let mut r = Reader(payload);
    let mut out = Vec::new();
    while let Some((&tag, rest)) = r.0.split_first() {
        r.0 = rest;
        let w = match tag {
            TAG_JOB => Redo::Job(r.array("job id")?, r.bytes("value")?),
            TAG_SPEC => {
                let ms = u64::from_le_bytes(r.array("spec key")?);
                Redo::Spec((ms, r.array("job id")?), r.bytes("value")?)
            }
            TAG_OUTPUT => {
                let id = r.array("job id")?;
                let path = std::str::from_utf8(r.bytes("output path")?)
                    .map_err(|e| format!("output path: {e}"))?;
                let chunk = r.u32("chunk index")?;
                Redo::Output((id, path, chunk), r.bytes("value")?)
            }
            TAG_LOG => {
                let id = r.array("job id")?;
                let [stream] = r.array("log stream")?;
                let chunk = r.u32("chunk index")?;
                Redo::Log((id, stream, chunk), r.bytes("value")?)
            }
            TAG_RECEIPT => Redo::Receipt(r.array("job id")?, r.bytes("value")?),
            TAG_BUNDLE => Redo::Bundle(r.array("digest")?, r.bytes("value")?),
            other => return Err(format!("unknown journal write {other:#04x}")),
        };
        out.push(w);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
