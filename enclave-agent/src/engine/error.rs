//! The engine's request error (mapped to gRPC status codes once, in `crate::grpc`).

use crate::auth::AuthError;
use crate::store::StoreError;
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
    /// Anything else internal.
    #[error("internal: {0}")]
    Internal(String),
}
