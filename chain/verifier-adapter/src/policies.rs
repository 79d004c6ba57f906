//! The chain's genesis attestation policies.
//!
//! Policies are data: the pallet stores each as its canonical document
//! (`attestation_verifier::policy::Policy::canonical_bytes`) under its id, the hash of those
//! bytes, and anyone may register more (`register_policy`). The three policies the chain starts
//! with are defined once, by name, in the verifier crate
//! ([`attestation_verifier::policy::genesis`]), so the runtime, the `sigil` CLI and the agent
//! compute the same documents and ids. Two of them pin no launch measurement: they are
//! registered, but the pallet refuses them for tier-3 jobs and attested keys, and serve only
//! as a starting point for a pinned policy.

use alloc::vec::Vec;
use attestation_verifier::policy::genesis;
use pallet_sigil_market::PolicyId;

pub use attestation_verifier::policy::genesis::{
    CONFIDENTIAL_VM_V1, NAMES, SEV_SNP_V1, SIMULATED_V1,
};

/// The id of the genesis policy named `name`.
pub fn id_of(name: &str) -> Option<PolicyId> {
    genesis::named(name).map(|p| p.id())
}

/// The canonical documents of the genesis policies, in [`NAMES`] order.
pub fn genesis_documents() -> Vec<Vec<u8>> {
    NAMES
        .into_iter()
        .filter_map(genesis::named)
        .map(|p| p.canonical_bytes())
        .collect()
}
