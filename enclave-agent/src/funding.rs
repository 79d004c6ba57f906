//! What the chain says about a job's funding, behind [`FundingOracle`], so admission can ask
//! it before the agent spends anything on a submission (and tests can answer with a fake).
//!
//! With `[chain]` configured, a job runs only when the chain holds open escrow for its id,
//! has bound it to this provider, and committed to the SHA-256 of exactly the submitted spec
//! bytes (see `docs/agent.md`, "Access rules").

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// A job's funding on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funding {
    /// The funding account (32 bytes; an ed25519 account is its public key).
    pub buyer: [u8; 32],
    /// The spec hash the escrow commits to.
    pub spec_hash: [u8; 32],
    /// The escrow is still held (funded or bound, not settled or refunded).
    pub open: bool,
    /// The chain bound the job to this provider's account.
    pub bound_here: bool,
}

/// Why the chain could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FundingError {
    /// No connection to the chain yet, or a read failed; the caller may retry.
    #[error("the chain cannot be read now: {0}")]
    Unavailable(String),
}

/// The future [`FundingOracle::funding`] returns.
pub type FundingFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Funding>, FundingError>> + Send + 'a>>;

/// Answers whether, and how, a job is funded.
pub trait FundingOracle: Send + Sync + std::fmt::Debug {
    /// The job's funding, or `None` when the chain does not know the job.
    fn funding<'a>(&'a self, job_id: &'a [u8; 32]) -> FundingFuture<'a>;
}

/// An oracle that is connected later (the chain may not answer at start): until
/// [`LateOracle::set`] it answers [`FundingError::Unavailable`].
#[derive(Debug, Default)]
pub struct LateOracle {
    inner: OnceLock<Arc<dyn FundingOracle>>,
}

impl LateOracle {
    /// Not yet connected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects it (the first call wins).
    pub fn set(&self, oracle: Arc<dyn FundingOracle>) {
        // A second connection is the same chain; keep the first.
        let _ = self.inner.set(oracle);
    }
}

impl FundingOracle for LateOracle {
    fn funding<'a>(&'a self, job_id: &'a [u8; 32]) -> FundingFuture<'a> {
        match self.inner.get() {
            Some(o) => o.funding(job_id),
            None => Box::pin(async {
                Err(FundingError::Unavailable(
                    "not connected to the chain yet".into(),
                ))
            }),
        }
    }
}
