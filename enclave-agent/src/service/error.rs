//! The agent's request error and its single mapping to gRPC status codes.

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

impl From<AgentError> for tonic::Status {
    /// Every rejection gets a specific code and a message that names the problem; internal
    /// failures are logged with their details and reported without them.
    fn from(e: AgentError) -> Self {
        use tonic::Status;
        match &e {
            AgentError::Spec(s) => match s {
                SpecError::WrongProvider(_)
                | SpecError::Expired { .. }
                | SpecError::WorkloadDisabled(_)
                | SpecError::NotEnoughGpus { .. }
                | SpecError::EvidenceMode { .. } => Status::failed_precondition(e.to_string()),
                _ => Status::invalid_argument(e.to_string()),
            },
            AgentError::Auth(a) => match a {
                AuthError::NotAllowed(_) | AuthError::NotOwner => {
                    Status::permission_denied(e.to_string())
                }
                AuthError::Unavailable => Status::unavailable(e.to_string()),
                _ => Status::unauthenticated(e.to_string()),
            },
            AgentError::BadField { .. } => Status::invalid_argument(e.to_string()),
            AgentError::NotFound { .. } => Status::not_found(e.to_string()),
            AgentError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
            AgentError::WrongState { .. } | AgentError::NoEvidence => {
                Status::failed_precondition(e.to_string())
            }
            AgentError::ShuttingDown => Status::unavailable(e.to_string()),
            AgentError::Evidence(detail) => {
                tracing::error!(error = %detail, "evidence collection failed");
                Status::unavailable("evidence is temporarily unavailable")
            }
            AgentError::Store(_) | AgentError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Parses a 32-byte id field.
pub fn id32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], AgentError> {
    bytes.try_into().map_err(|_| AgentError::BadField {
        field,
        reason: format!("must be 32 bytes, got {}", bytes.len()),
    })
}
