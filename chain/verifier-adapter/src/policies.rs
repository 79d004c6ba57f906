//! The chain's attestation policies.
//!
//! A job names the policy its provider's evidence must satisfy by a 32-byte id, and a provider
//! registers its attested key under one. The policies are part of the runtime: changing them is
//! a runtime upgrade, decided by the chain's governance like any other rule of the market, and
//! every node applies exactly the same ones.
//!
//! A policy's id is `SHA-256("sigil.policy.v1\0" || name)`; its name says what it accepts and
//! carries a version, so a stricter policy is a new name and jobs funded under the old one keep
//! their meaning.

use alloc::vec;
use alloc::vec::Vec;
use attestation_verifier::crypto::{Crypto, RustCrypto};
use attestation_verifier::policy::Policy;
use pallet_sigil_market::{PolicyId, TeeKind};

/// Domain separator of policy ids.
pub const POLICY_DOMAIN: &[u8] = b"sigil.policy.v1\0";

/// Genuine confidential VMs: SEV-SNP or TDX evidence verified to the pinned AMD and Intel roots,
/// debug, migration agents and simulated evidence refused, the TDX TCB `UpToDate` (the
/// verifier's default), any launch measurement (the measurement is stored with the key, so
/// buyers see what runs).
pub const CONFIDENTIAL_VM_V1: &str = "sigil.confidential-vm.v1";

/// SEV-SNP only, otherwise as [`CONFIDENTIAL_VM_V1`].
pub const SEV_SNP_V1: &str = "sigil.sev-snp.v1";

/// Evidence from the agent's simulator, for development chains and tests. It proves nothing
/// about the hardware: a job names it only to run the tier-3 flow without a TEE, and providers
/// registered under it can serve no job that names another policy.
pub const SIMULATED_V1: &str = "sigil.simulated.v1";

/// Every policy name the chain knows.
pub const NAMES: [&str; 3] = [CONFIDENTIAL_VM_V1, SEV_SNP_V1, SIMULATED_V1];

/// A policy of the chain: the TEE kinds it accepts and the appraisal rules.
#[derive(Clone, Debug)]
pub struct ChainPolicy {
    /// Its name.
    pub name: &'static str,
    /// The TEE kinds whose evidence it accepts.
    pub tees: Vec<TeeKind>,
    /// The appraisal rules, in the verifier's policy format.
    pub policy: Policy,
}

/// The id of the policy named `name`.
pub fn id_of(name: &str) -> PolicyId {
    let mut preimage = Vec::with_capacity(POLICY_DOMAIN.len().saturating_add(name.len()));
    preimage.extend_from_slice(POLICY_DOMAIN);
    preimage.extend_from_slice(name.as_bytes());
    RustCrypto.sha256(&preimage)
}

/// The policy named `name`, if the chain has one.
pub fn by_name(name: &str) -> Option<ChainPolicy> {
    let (tees, policy) = match name {
        CONFIDENTIAL_VM_V1 => (vec![TeeKind::SevSnp, TeeKind::Tdx], Policy::default()),
        SEV_SNP_V1 => (vec![TeeKind::SevSnp], Policy::default()),
        SIMULATED_V1 => (
            vec![TeeKind::Simulated],
            Policy {
                allow_simulated: true,
                ..Policy::default()
            },
        ),
        _ => return None,
    };
    let name = NAMES.into_iter().find(|n| *n == name)?;
    Some(ChainPolicy { name, tees, policy })
}

/// The policy whose id is `id`, if the chain has one.
pub fn lookup(id: &PolicyId) -> Option<ChainPolicy> {
    NAMES
        .into_iter()
        .find(|name| id_of(name) == *id)
        .and_then(by_name)
}
