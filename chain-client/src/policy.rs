//! Attestation policies: documents on chain, TOML files for people.
//!
//! A policy is the verifier's [`Policy`]; the chain stores its canonical bytes
//! ([`Policy::canonical_bytes`]) under its id, the hash of those bytes ([`Policy::id`]), so the
//! same rules always have the same id, whatever the spelling of the TOML they were written in.
//! The chain starts with three genesis policies, known to the tools by name
//! ([`attestation_verifier::policy::genesis`]); any other policy is named by its `0x` id.

use attestation_verifier::policy::{Policy, genesis};

pub use attestation_verifier::policy::genesis::{
    CONFIDENTIAL_VM_V1, NAMES, SEV_SNP_V1, SIMULATED_V1,
};

/// The id of the genesis policy named `name` (`None` for another name).
pub fn policy_id(name: &str) -> Option<[u8; 32]> {
    genesis::named(name).map(|p| p.id())
}

/// The name of the genesis policy with id `id`, if it is one.
pub fn genesis_name(id: &[u8; 32]) -> Option<&'static str> {
    NAMES.into_iter().find(|n| policy_id(n) == Some(*id))
}

/// A policy given as a genesis name or as a `0x` id (64 hex digits).
pub fn parse_policy_ref(s: &str) -> Option<[u8; 32]> {
    match s.strip_prefix("0x") {
        Some(h) => hex::decode(h).ok()?.try_into().ok(),
        None => policy_id(s),
    }
}

/// A policy from a stored document, checked to be the one `id` names.
pub fn from_document(id: &[u8; 32], document: &[u8]) -> Result<Policy, String> {
    let policy = Policy::from_canonical_bytes(document).map_err(|e| e.to_string())?;
    if policy.id() == *id {
        Ok(policy)
    } else {
        Err(format!(
            "the document stored for policy 0x{} hashes to 0x{}",
            hex::encode(id),
            hex::encode(policy.id())
        ))
    }
}

#[cfg(test)]
mod tests {
    // Tests may unwrap: a failure is the test's report.
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn genesis_policies_works() {
        for name in NAMES {
            let id = policy_id(name).unwrap();
            assert_eq!(genesis_name(&id), Some(name));
            assert_eq!(parse_policy_ref(name), Some(id));
            assert_eq!(
                parse_policy_ref(&format!("0x{}", hex::encode(id))),
                Some(id)
            );
            let p = genesis::named(name).unwrap();
            assert_eq!(from_document(&id, &p.canonical_bytes()).unwrap(), p);
            assert_eq!(p.allow_simulated, name == SIMULATED_V1);
        }
        assert_eq!(policy_id("sigil.unknown.v1"), None);
        assert_eq!(parse_policy_ref("0x1234"), None);
        assert_eq!(genesis_name(&[0; 32]), None);
    }

    #[test]
    fn from_document_rejects() {
        let p = genesis::named(SIMULATED_V1).unwrap();
        let other = policy_id(SEV_SNP_V1).unwrap();
        assert!(from_document(&other, &p.canonical_bytes()).is_err());
        assert!(from_document(&p.id(), b"garbage").is_err());
    }

    #[test]
    fn toml_spelling_does_not_change_the_id_works() {
        let a = Policy::from_toml(
            "allow_simulated = true\ntees = [\"simulated\"]\n[gpu]\nmin_count = 0\n",
        )
        .unwrap();
        let b =
            Policy::from_toml("# the simulator\ntees=['simulated']\nallow_simulated=true").unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(Some(a.id()), policy_id(SIMULATED_V1));
    }
}
