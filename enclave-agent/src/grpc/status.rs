//! The single mapping of the agent's request errors to gRPC status codes, and request
//! field parsing.

use crate::auth::AuthError;
use crate::engine::{AgentError, FundingRefusal};
use crate::store::StoreError;
use crate::workload::spec::SpecError;

/// Longest status message sent, bytes (values in it are clipped where they are made; this
/// bounds the rest).
pub const MAX_MESSAGE_BYTES: usize = 1_024;

/// Metadata key of the retry hint of `RESOURCE_EXHAUSTED` (milliseconds).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// `RESOURCE_EXHAUSTED` with `message` and the retry hint in [`RETRY_AFTER_MS`].
pub fn exhausted(message: String, retry_after_ms: u64) -> tonic::Status {
    let mut st = tonic::Status::resource_exhausted(message);
    if let Ok(v) = retry_after_ms.to_string().parse() {
        st.metadata_mut().insert(RETRY_AFTER_MS, v);
    }
    st
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_MESSAGE_BYTES {
        let mut at = MAX_MESSAGE_BYTES;
        while !s.is_char_boundary(at) {
            at = at.saturating_sub(1);
        }
        s.truncate(at);
        s.push('…');
    }
    s
}

impl From<AgentError> for tonic::Status {
    /// Every rejection gets a specific code and a message that names the problem; internal
    /// failures are logged with their details and reported without them. Messages are
    /// bounded ([`MAX_MESSAGE_BYTES`]).
    fn from(e: AgentError) -> Self {
        let st = status_of(&e);
        if st.message().len() > MAX_MESSAGE_BYTES {
            let mut bounded_st = tonic::Status::new(st.code(), bounded(st.message().to_owned()));
            *bounded_st.metadata_mut() = st.metadata().clone();
            return bounded_st;
        }
        st
    }
}

fn status_of(e: &AgentError) -> tonic::Status {
    {
        use tonic::Status;
        match e {
            AgentError::Spec(s) => match s {
                SpecError::WrongProvider(_)
                | SpecError::Expired { .. }
                | SpecError::WorkloadDisabled(_)
                | SpecError::NotEnoughGpus { .. }
                | SpecError::EvidenceMode { .. } => Status::failed_precondition(e.to_string()),
                _ => Status::invalid_argument(e.to_string()),
            },
            AgentError::Auth(a) => match a {
                AuthError::NotAllowed(_) | AuthError::NotOwner | AuthError::OperatorMayNotRead => {
                    Status::permission_denied(e.to_string())
                }
                AuthError::Unavailable => Status::unavailable(e.to_string()),
                _ => Status::unauthenticated(e.to_string()),
            },
            AgentError::BadField { .. } | AgentError::SealedSecret { .. } => {
                Status::invalid_argument(e.to_string())
            }
            AgentError::SecretsUnsupported(_) => Status::failed_precondition(e.to_string()),
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
            AgentError::Funding { refusal, .. } => match refusal {
                FundingRefusal::SpecMismatch | FundingRefusal::NotBuyer => {
                    Status::permission_denied(e.to_string())
                }
                _ => Status::failed_precondition(e.to_string()),
            },
            AgentError::ChainUnavailable(detail) => {
                tracing::warn!(error = %detail, "funding check: the chain cannot be read");
                Status::unavailable(e.to_string())
            }
            AgentError::Busy { retry_after_ms, .. } => exhausted(e.to_string(), *retry_after_ms),
            AgentError::StateDir {
                fault,
                retry_after_ms,
                ..
            } => {
                tracing::warn!(error = %e, "submission refused: the state directory takes no writes");
                if fault.is_space() {
                    exhausted(e.to_string(), *retry_after_ms)
                } else {
                    Status::unavailable(e.to_string())
                }
            }
            AgentError::Store(StoreError::Disk { fault, .. }) => {
                tracing::error!(error = %e, "job store: the disk refused a write");
                if fault.is_space() {
                    Status::resource_exhausted(e.to_string())
                } else {
                    Status::unavailable(e.to_string())
                }
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
