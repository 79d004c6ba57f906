//! The engine's request error (mapped to gRPC status codes once, in `crate::grpc`).

use crate::auth::AuthError;
use crate::store::{DiskFault, StoreError};
use crate::workload::spec::SpecError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The job spec is invalid or cannot run here.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The caller is not authenticated or not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A request field is malformed.
    #[error("{field}: {reason}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No such job (or output, or receipt).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The job id is taken by a different spec.
    #[error("job {job} already exists with a different spec")]
    AlreadyExists {
        /// Hex job id.
        job: String,
    },
    /// The job is not in a state that allows the request.
    #[error("job {job} is {state}: {reason}")]
    WrongState {
        /// Hex job id.
        job: String,
        /// Its state.
        state: &'static str,
        /// Why that matters.
        reason: &'static str,
    },
    /// The agent has no evidence source (no TEE and no simulator).
    #[error("this agent has no evidence source")]
    NoEvidence,
    /// The agent is shutting down.
    #[error("the agent is shutting down")]
    ShuttingDown,
    /// Evidence could not be collected.
    #[error("evidence unavailable: {0}")]
    Evidence(String),
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain does not let this submission run here (see [`FundingRefusal`]).
    #[error("job {job}: {refusal}")]
    Funding {
        /// Hex job id.
        job: String,
        /// Why.
        refusal: FundingRefusal,
    },
    /// The chain could not be asked whether the job is funded; retry later.
    #[error("the chain cannot confirm the job's funding now; retry later")]
    ChainUnavailable(String),
    /// The agent is at a limit (a full queue, a rate, open streams); retry after the hint.
    #[error("{what}; retry in {retry_after_ms} ms")]
    Busy {
        /// Which limit.
        what: &'static str,
        /// When a retry may succeed, milliseconds.
        retry_after_ms: u64,
    },
    /// A sealed secret is missing, extra, or does not open to the spec's commitment.
    #[error("sealed secret {name:?}: {reason}")]
    SealedSecret {
        /// The secret's name (path or variable).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// This agent cannot keep secrets off its disk (no private tmpfs for job directories).
    #[error("this agent does not take jobs with secrets: {0}")]
    SecretsUnsupported(&'static str),
    /// The state directory's disk takes no new work: full, below `jobs.min_free_bytes`, or
    /// read-only. Jobs accepted before are still run and served.
    #[error("state directory {dir}: {fault}; new jobs are refused until it takes writes again")]
    StateDir {
        /// The state directory.
        dir: String,
        /// Why.
        fault: DiskFault,
        /// When a retry may succeed, milliseconds (for a full disk).
        retry_after_ms: u64,
    },
    /// Anything else internal.
    #[error("internal: {0}")]
    Internal(String),
}

/// Why the chain's record refuses a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FundingRefusal {
    /// The chain holds no escrow for the id, and the agent takes no off-chain jobs.
    #[error("not funded on chain (fund it first)")]
    NotFunded,
    /// The escrow commits to another spec: the id is not this spec's.
    #[error("funded on chain for another spec")]
    SpecMismatch,
    /// The escrow was settled or refunded.
    #[error("its escrow on chain is closed")]
    Closed,
    /// The chain bound the job to other providers.
    #[error("not bound to this provider on chain")]
    NotBoundHere,
    /// The submission is signed by a key other than the job's buyer.
    #[error("signed by a key that is not the job's buyer")]
    NotBuyer,
}
