//! Simulated report verification: the signature under the carried key.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Check the signature over `SIMULATED_DOMAIN || SCALE(body)` with the key
//!    the report carries (ed25519, or ECDSA P-384 with SHA-384).
//!
//! That proves integrity only; acceptance is up to the policy's
//! `allow_simulated`, which is off by default.

use crate::crypto::{Crypto, EcdsaAlg, SignatureError};
use crate::evidence::simulated::{SimulatedKey, SimulatedReport};
use crate::verdict::Verified;

/// Why a simulated report failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatedVerifyError {
    /// The signature does not verify under the carried key.
    #[error("simulated report signature does not verify with its {algorithm} key: {source}")]
    Signature {
        /// The key's algorithm.
        algorithm: &'static str,
        /// What the signature check said.
        source: SignatureError,
    },
}

/// Verifies a simulated report's self-signature.
pub fn verify_simulated<C: Crypto + ?Sized>(
    crypto: &C,
    report: SimulatedReport,
) -> Result<Verified<SimulatedReport>, SimulatedVerifyError> {
    // Step 1
    let msg = report.body.signed_message();
    let r = match &report.body.key {
        SimulatedKey::Ed25519(k) => crypto.verify_ed25519(k, &msg, &report.signature),
        SimulatedKey::EcdsaP384(k) => {
            crypto.verify_ecdsa(EcdsaAlg::P384Sha384, k, &msg, &report.signature)
        }
    };
    r.map_err(|source| SimulatedVerifyError::Signature {
        algorithm: report.body.key.algorithm(),
        source,
    })?;
    Ok(Verified::new(report))
}
