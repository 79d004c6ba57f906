//! What a receipt submission achieved, in the terms a provider's settlement code (the agent's
//! `chain` module) records.

use crate::client::Included;

/// What a submission achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The inclusion block's number.
    pub block_number: u64,
    /// Whether this receipt settled the job.
    pub settled: bool,
}

impl From<&Included> for Submitted {
    fn from(i: &Included) -> Self {
        Self {
            block_number: i.block_number,
            settled: i.settlement().is_some(),
        }
    }
}
