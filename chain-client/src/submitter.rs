//! The provider's receipt submission as a domain trait, so code that settles receipts (the
//! agent) depends on this and not on subxt, and its tests can use [`RecordingSubmitter`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::client::{ChainClient, Included};
use crate::error::ChainError;
use crate::keys::Keypair;
use crate::types::JobId;

/// Submits a provider's signed receipts to the market.
pub trait ReceiptSubmitter: Send + Sync {
    /// Submits `signed_receipt` (`SCALE(SignedReceipt)`) for `job_id`, with the evidence
    /// bundle of a fresh-quote receipt.
    fn submit_receipt(
        &self,
        job_id: JobId,
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> impl Future<Output = Result<Submitted, ChainError>> + Send;
}

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

/// A [`ChainClient`] with the provider's account key.
#[derive(Clone, Debug)]
pub struct ChainSubmitter {
    client: ChainClient,
    key: Keypair,
}

impl ChainSubmitter {
    /// Submits through `client`, signing with `key` (the provider's account).
    pub fn new(client: ChainClient, key: Keypair) -> Self {
        Self { client, key }
    }
}

impl ReceiptSubmitter for ChainSubmitter {
    async fn submit_receipt(
        &self,
        job_id: JobId,
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> Result<Submitted, ChainError> {
        self.client
            .submit_receipt(
                &self.key,
                &job_id,
                &signed_receipt,
                fresh_evidence.as_deref(),
            )
            .await
            .map(|i| Submitted::from(&i))
    }
}

/// One submission seen by a [`RecordingSubmitter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The job.
    pub job_id: JobId,
    /// The receipt bytes.
    pub signed_receipt: Vec<u8>,
    /// The fresh evidence.
    pub fresh_evidence: Option<Vec<u8>>,
}

/// A fake submitter for tests of code that submits receipts: it decodes each receipt (as the
/// chain client does before sending), records it and reports it settled.
#[derive(Clone, Debug, Default)]
pub struct RecordingSubmitter {
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingSubmitter {
    /// A submitter that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The submissions so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl ReceiptSubmitter for RecordingSubmitter {
    async fn submit_receipt(
        &self,
        job_id: JobId,
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> Result<Submitted, ChainError> {
        attestation_verifier::receipt::SignedReceipt::decode_bytes(&signed_receipt).map_err(
            |e| ChainError::BadInput {
                what: "signed receipt",
                detail: e.to_string(),
            },
        )?;
        let mut seen = self.seen.lock().map_err(|_| ChainError::BadInput {
            what: "recording submitter",
            detail: "poisoned".into(),
        })?;
        seen.push(Recorded {
            job_id,
            signed_receipt,
            fresh_evidence,
        });
        Ok(Submitted {
            block_number: u64::try_from(seen.len()).unwrap_or(u64::MAX),
            settled: true,
        })
    }
}
