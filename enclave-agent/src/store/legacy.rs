//! The JSON job records of older stores: only ever read now, and rewritten in the binary
//! form ([`super::codec`]) on the job's next change.
//!
//! The shape is the serde form those agents wrote: hex strings for ids and digests, states
//! in snake case, fields added later defaulted.

use serde::Deserialize;

use crate::job::{EndReason, JobId, JobRecord, JobState, OutputMeta, ProcessHandle, UsageRecord};

/// A job record as older agents wrote it.
#[derive(Deserialize)]
struct LegacyRecord {
    #[serde(with = "hex32")]
    job_id: JobId,
    #[serde(with = "hex32")]
    spec_hash: [u8; 32],
    #[serde(with = "hex32_opt", default)]
    buyer: Option<[u8; 32]>,
    state: JobState,
    #[serde(default)]
    reason: EndReason,
    #[serde(default)]
    exit_code: Option<i32>,
    submitted_at_ms: u64,
    #[serde(default)]
    started_at_ms: u64,
    #[serde(default)]
    finished_at_ms: u64,
    #[serde(default)]
    usage: UsageRecord,
    #[serde(default)]
    outputs: Vec<LegacyOutput>,
    #[serde(default)]
    attempts: u32,
    version: u64,
    #[serde(default)]
    process: Option<ProcessHandle>,
    #[serde(default)]
    has_receipt: bool,
    #[serde(with = "hex32_opt", default)]
    evidence_digest: Option<[u8; 32]>,
}

/// An output's metadata as older agents wrote it.
#[derive(Deserialize)]
struct LegacyOutput {
    path: String,
    size: u64,
    #[serde(with = "hex32")]
    sha256: [u8; 32],
    index: u32,
}

/// Reads a JSON record.
pub(super) fn decode(bytes: &[u8]) -> Result<JobRecord, serde_json::Error> {
    let r: LegacyRecord = serde_json::from_slice(bytes)?;
    Ok(JobRecord {
        job_id: r.job_id,
        spec_hash: r.spec_hash,
        buyer: r.buyer,
        state: r.state,
        reason: r.reason,
        exit_code: r.exit_code,
        submitted_at_ms: r.submitted_at_ms,
        started_at_ms: r.started_at_ms,
        finished_at_ms: r.finished_at_ms,
        usage: r.usage,
        outputs: r
            .outputs
            .into_iter()
            .map(|o| OutputMeta {
                path: o.path,
                size: o.size,
                sha256: o.sha256,
                index: o.index,
            })
            .collect(),
        attempts: r.attempts,
        version: r.version,
        process: r.process,
        has_receipt: r.has_receipt,
        evidence_digest: r.evidence_digest,
    })
}

/// serde for `[u8; 32]` as hex (reading the JSON records of older stores).
mod hex32 {
    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let b = hex::decode(s).map_err(D::Error::custom)?;
        <[u8; 32]>::try_from(b).map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

/// serde for `Option<[u8; 32]>` as hex (reading the JSON records of older stores).
mod hex32_opt {
    use serde::{Deserialize, Deserializer, de::Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            let b = hex::decode(s).map_err(D::Error::custom)?;
            <[u8; 32]>::try_from(b).map_err(|_| D::Error::custom("expected 32 bytes"))
        })
        .transpose()
    }
}
