//! The stored form of a job record: [`RECORD_V1`], then the SCALE encoding of
//! [`JobRecord`]'s fields in order. Binary rather than JSON: a queued job's record is 181
//! bytes against 517, so a B-tree leaf holds about three times as many and commits write
//! fewer pages. Records of older stores are JSON objects ([`super::legacy`]), rewritten in
//! the binary form on their next change. A change of fields takes a new tag.

use parity_scale_codec::{DecodeAll, Encode};

use super::{StoreError, legacy};
use crate::job::{JobId, JobRecord};

/// First byte of a job record in the binary form.
pub(super) const RECORD_V1: u8 = 1;

/// The stored form of `record`.
pub(super) fn encode(record: &JobRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.size_hint().saturating_add(1));
    out.push(RECORD_V1);
    record.encode_to(&mut out);
    out
}

/// Reads a stored record of `job_id`, binary or legacy JSON.
pub(super) fn decode(job_id: &JobId, bytes: &[u8]) -> Result<JobRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        job: hex::encode(job_id),
        detail,
    };
    match bytes.split_first() {
        Some((&RECORD_V1, mut rest)) => {
            <JobRecord as DecodeAll>::decode_all(&mut rest).map_err(|e| corrupt(e.to_string()))
        }
        Some((b'{', _)) => legacy::decode(bytes).map_err(|e| corrupt(e.to_string())),
        Some((tag, _)) => Err(corrupt(format!("unknown record encoding {tag:#04x}"))),
        None => Err(corrupt("empty record".into())),
    }
}
