//! The chain's attestation policies, for replaying tier-3 verification offline.
//!
//! The runtime defines them (`chain/verifier-adapter/src/policies.rs`); that crate lives in the
//! chain's own workspace and pulls in the FRAME graph, so the table is repeated here. Its ids
//! are checked against the runtime's (`sigil-chain-spec --policies`) by the end-to-end tests.
//! A job names its policy by id, `SHA-256("sigil.policy.v1\0" || name)`.

use attestation_verifier::crypto::{Crypto, RustCrypto};
use attestation_verifier::policy::Policy;

use crate::types::TeeKind;

/// Domain separator of policy ids.
pub const POLICY_DOMAIN: &[u8] = b"sigil.policy.v1\0";

/// SEV-SNP or TDX under the verifier's strict defaults, any measurement.
pub const CONFIDENTIAL_VM_V1: &str = "sigil.confidential-vm.v1";
/// SEV-SNP only, otherwise as [`CONFIDENTIAL_VM_V1`].
pub const SEV_SNP_V1: &str = "sigil.sev-snp.v1";
/// The agent's simulator only (development and tests).
pub const SIMULATED_V1: &str = "sigil.simulated.v1";

/// Every policy the chain knows, by name.
pub const NAMES: [&str; 3] = [CONFIDENTIAL_VM_V1, SEV_SNP_V1, SIMULATED_V1];

/// A chain policy: the TEE kinds it accepts and its appraisal rules.
#[derive(Clone, Debug)]
pub struct ChainPolicy {
    /// Its name.
    pub name: &'static str,
    /// Its id.
    pub id: [u8; 32],
    /// Accepted TEE kinds.
    pub tees: Vec<TeeKind>,
    /// The verifier's appraisal rules.
    pub policy: Policy,
}

/// The id of the policy named `name`.
pub fn policy_id(name: &str) -> [u8; 32] {
    let mut preimage = Vec::with_capacity(POLICY_DOMAIN.len().saturating_add(name.len()));
    preimage.extend_from_slice(POLICY_DOMAIN);
    preimage.extend_from_slice(name.as_bytes());
    RustCrypto.sha256(&preimage)
}

/// The chain policy named `name`.
pub fn by_name(name: &str) -> Option<ChainPolicy> {
    let name = NAMES.into_iter().find(|n| *n == name)?;
    let (tees, policy) = match name {
        CONFIDENTIAL_VM_V1 => (vec![TeeKind::SevSnp, TeeKind::Tdx], Policy::default()),
        SEV_SNP_V1 => (vec![TeeKind::SevSnp], Policy::default()),
        _ => (
            vec![TeeKind::Simulated],
            Policy {
                allow_simulated: true,
                ..Policy::default()
            },
        ),
    };
    Some(ChainPolicy {
        name,
        id: policy_id(name),
        tees,
        policy,
    })
}

/// The chain policy with id `id`.
pub fn by_id(id: &[u8; 32]) -> Option<ChainPolicy> {
    NAMES
        .into_iter()
        .find(|n| policy_id(n) == *id)
        .and_then(by_name)
}

/// A policy given as a name or as a `0x` id.
pub fn parse_policy(s: &str) -> Option<ChainPolicy> {
    match s.strip_prefix("0x") {
        Some(h) => {
            let bytes: [u8; 32] = hex::decode(h).ok()?.try_into().ok()?;
            by_id(&bytes)
        }
        None => by_name(s),
    }
}

#[cfg(test)]
mod tests {
    // Tests may unwrap: a failure is the test's report.
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_ids_works() {
        // The ids docs/chain.md lists (printed by `sigil-chain-spec --policies`).
        assert_eq!(
            hex::encode(policy_id(SIMULATED_V1)),
            "3c6ff8ce20c51be36aa732203e00523d0afc9be2ec530e54c674d5c2a80dc6bd"
        );
        assert_eq!(
            hex::encode(policy_id(CONFIDENTIAL_VM_V1)),
            "2c0e6f4ba7810e203676ed12cae8f776b4bebd517a47828b680c85ed571c571a"
        );
        for name in NAMES {
            let p = by_id(&policy_id(name)).unwrap();
            assert_eq!(p.name, name);
            assert_eq!(parse_policy(name).unwrap().id, p.id);
            assert_eq!(
                parse_policy(&format!("0x{}", hex::encode(p.id)))
                    .unwrap()
                    .name,
                name
            );
        }
        assert!(by_name("sigil.unknown.v1").is_none());
        assert!(by_id(&[0; 32]).is_none());
    }

    #[test]
    fn only_simulated_policy_allows_simulated_works() {
        for name in NAMES {
            let p = by_name(name).unwrap();
            assert_eq!(p.policy.allow_simulated, name == SIMULATED_V1);
        }
    }
}
