//! Authentication of requests.
//!
//! * Submissions carry an ed25519 signature by the buyer's key over
//!   `SHA-256("sigil.submit.v1\0" || spec bytes)`; the spec bytes are the canonical form
//!   (never re-encoded), so the signature and the receipt's `job_spec_hash` cover exactly
//!   what the agent runs. If `auth.buyer_keys` is set, only those keys may submit.
//! * Requests on an existing job (status, receipt, cancel, outputs) are signed by the job's
//!   buyer over `domain || job_id || issued_at_ms (LE u64)`, within
//!   `auth.max_clock_skew_secs` of the agent's clock; an output request also signs the
//!   output's kind, offset and path ([`sigil_proto::output_message`]), so its signature is
//!   good for that one stream only.
//! * Instead of a signature, a request may carry `authorization: Bearer <token>` with the
//!   configured token (an operator or a dispatcher in front of the agent). Tokens are
//!   compared in constant time and never logged.
//!
//! A lone signature is verified on the request's thread; under load signatures go to one
//! verifier thread that checks whatever is queued together ([`batch`]), so each costs a
//! fraction of a lone check.

pub mod batch;

use sha2::{Digest, Sha256};
use sigil_proto::v1;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::config::{AuthConfig, Secret};
use batch::BatchVerifier;

/// Why a request is not authenticated. Maps to `UNAUTHENTICATED` or `PERMISSION_DENIED`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither a signature nor a token was given.
    #[error("request carries neither a buyer signature nor a bearer token")]
    Missing,
    /// The `authorization` metadata is not `Bearer <token>` or the token is wrong.
    #[error("bearer token rejected")]
    BadToken,
    /// The public key is not 32 bytes or not a valid curve point.
    #[error("buyer public key is malformed")]
    MalformedKey,
    /// The signature is not 64 bytes.
    #[error("signature is not 64 bytes")]
    MalformedSignature,
    /// The signature does not verify.
    #[error("buyer signature does not verify")]
    BadSignature,
    /// The key is not on the configured allow-list.
    #[error("buyer key {0} may not submit to this agent")]
    NotAllowed(String),
    /// `issued_at_ms` is too far from the agent's clock.
    #[error(
        "request issued at {issued_at_ms} ms is outside the allowed clock skew (agent time {now_ms} ms)"
    )]
    Stale {
        /// From the request.
        issued_at_ms: u64,
        /// Agent clock.
        now_ms: u64,
    },
    /// The signing key is not the job's buyer.
    #[error("only the job's buyer may do this")]
    NotOwner,
    /// The bearer token may not read this job's outputs (`access.operator_reads_outputs`).
    #[error("the operator token does not read buyers' outputs on this agent")]
    OperatorMayNotRead,
    /// The signature verifier is not running (the agent is shutting down).
    #[error("signature verifier unavailable")]
    Unavailable,
}

/// Who made a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The configured bearer token.
    Token,
    /// A buyer, by ed25519 public key.
    Buyer([u8; 32]),
}

impl Principal {
    /// The buyer key, if any.
    pub fn buyer(self) -> Option<[u8; 32]> {
        match self {
            Self::Token => None,
            Self::Buyer(k) => Some(k),
        }
    }
}

/// The message a buyer signs to submit `spec`.
pub fn submit_message(spec: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(sigil_proto::SUBMIT_DOMAIN);
    h.update(spec);
    h.finalize().into()
}

/// The message a buyer signs for a request on an existing job.
pub fn request_message(domain: &[u8], job_id: &[u8; 32], issued_at_ms: u64) -> Vec<u8> {
    sigil_proto::request_message(domain, job_id, issued_at_ms)
}

/// Checks credentials against the configuration.
#[derive(Clone, Debug)]
pub struct Authenticator {
    token: Secret,
    buyer_keys: Vec<[u8; 32]>,
    max_skew_ms: u64,
    verifier: BatchVerifier,
}

impl Authenticator {
    /// From the `[auth]` section; starts the signature verifier thread, counting into
    /// `stats`.
    pub fn new(cfg: &AuthConfig, stats: batch::BatchStats) -> std::io::Result<Self> {
        Ok(Self {
            token: cfg.token.clone(),
            buyer_keys: cfg.buyer_keys(),
            max_skew_ms: cfg.max_clock_skew_secs.saturating_mul(1000),
            verifier: BatchVerifier::start(stats)?,
        })
    }

    /// `Some(Ok)` if a valid token is present, `Some(Err)` if a token is present but wrong,
    /// `None` if none is present.
    fn token(&self, md: &MetadataMap) -> Option<Result<Principal, AuthError>> {
        let v = md.get("authorization")?;
        let given = v
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(str::trim);
        Some(match given {
            Some(t)
                if !self.token.is_empty()
                    && bool::from(t.as_bytes().ct_eq(self.token.expose().as_bytes())) =>
            {
                Ok(Principal::Token)
            }
            _ => Err(AuthError::BadToken),
        })
    }

    /// Authenticates a submission (a buyer must be on `auth.buyer_keys` when it is set).
    pub async fn submit(
        &self,
        md: &MetadataMap,
        spec: &[u8],
        sig: Option<&v1::BuyerSignature>,
    ) -> Result<Principal, AuthError> {
        let p = self.submitter(md, spec, sig).await?;
        if let Principal::Buyer(key) = p
            && !self.buyer_keys.is_empty()
            && !self.buyer_keys.contains(&key)
        {
            return Err(AuthError::NotAllowed(hex::encode(key)));
        }
        Ok(p)
    }

    /// Who signed a submission (the token, or the buyer whose signature verifies), whatever
    /// the allow-list says: admission applies the list where the job is not funded on chain.
    pub async fn submitter(
        &self,
        md: &MetadataMap,
        spec: &[u8],
        sig: Option<&v1::BuyerSignature>,
    ) -> Result<Principal, AuthError> {
        if let Some(t) = self.token(md) {
            return t;
        }
        let sig = sig.ok_or(AuthError::Missing)?;
        let key = self.verify(sig, submit_message(spec).to_vec()).await?;
        Ok(Principal::Buyer(key))
    }

    /// The configured buyer allow-list (`auth.buyer_keys`).
    pub fn buyer_keys(&self) -> &[[u8; 32]] {
        &self.buyer_keys
    }

    /// Authenticates a request on an existing job submitted by `owner` (`None`: submitted
    /// with the token, so only the token may act on it).
    pub async fn job_request(
        &self,
        md: &MetadataMap,
        domain: &[u8],
        job_id: &[u8; 32],
        auth: Option<&v1::RequestAuth>,
        owner: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<Principal, AuthError> {
        self.signed_request(md, auth, owner, now_ms, |at| {
            request_message(domain, job_id, at)
        })
        .await
    }

    /// [`Authenticator::job_request`] over the message `message(issued_at_ms)`.
    pub async fn signed_request(
        &self,
        md: &MetadataMap,
        auth: Option<&v1::RequestAuth>,
        owner: Option<[u8; 32]>,
        now_ms: u64,
        message: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<Principal, AuthError> {
        if let Some(t) = self.token(md) {
            return t;
        }
        let auth = auth.ok_or(AuthError::Missing)?;
        let sig = auth.signature.as_ref().ok_or(AuthError::Missing)?;
        if auth.issued_at_ms.abs_diff(now_ms) > self.max_skew_ms {
            return Err(AuthError::Stale {
                issued_at_ms: auth.issued_at_ms,
                now_ms,
            });
        }
        let key = self.verify(sig, message(auth.issued_at_ms)).await?;
        if owner != Some(key) {
            return Err(AuthError::NotOwner);
        }
        Ok(Principal::Buyer(key))
    }

    /// Verifies a buyer signature over `msg`; returns the key.
    async fn verify(&self, sig: &v1::BuyerSignature, msg: Vec<u8>) -> Result<[u8; 32], AuthError> {
        let key: [u8; 32] = sig
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::MalformedKey)?;
        let s: [u8; 64] = sig
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::MalformedSignature)?;
        self.verifier.verify(key, s, msg).await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests;
