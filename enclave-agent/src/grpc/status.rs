//! The single mapping of the agent's request errors to gRPC status codes, and request
//! field parsing.

use crate::auth::AuthError;
use crate::engine::AgentError;
use crate::workload::spec::SpecError;

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
