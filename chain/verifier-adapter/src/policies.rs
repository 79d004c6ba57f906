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
use attestation_verifier::policy::{GpuPolicy, Policy};
use pallet_sigil_market::{PolicyId, TeeKind};

/// Domain separator of policy ids.
pub const POLICY_DOMAIN: &[u8] = b"sigil.policy.v1\0";

/// Genuine confidential VMs: SEV-SNP or TDX evidence verified to the pinned AMD and Intel roots,
/// debug, migration agents and simulated evidence refused, the TDX TCB `UpToDate` (the
/// verifier's default), any launch measurement (the measurement is stored with the key, so
/// buyers see what runs). NVIDIA GPUs in the bundle are verified under [`gpu_rules`].
pub const CONFIDENTIAL_VM_V1: &str = "sigil.confidential-vm.v1";

/// SEV-SNP only (with or without NVIDIA GPUs), otherwise as [`CONFIDENTIAL_VM_V1`].
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

/// The rules for NVIDIA GPU evidence in a bundle, under every chain policy.
///
/// Every GPU report must chain to the pinned NVIDIA Device Identity CA, carry the bundle's GPU
/// nonce (so it binds the agent key) and match the golden measurements of a driver RIM and a
/// VBIOS RIM that travel in the bundle and verify to the pinned NVIDIA RIM root. OCSP
/// responses in the bundle are checked (a revoked certificate fails) but not required: they
/// expire within days, and the chain and buyers replay evidence later. Any driver and VBIOS
/// version, CC mode and architecture is accepted; the report's versions are part of the
/// evidence, visible to buyers. A stricter GPU policy is a new policy name.
pub fn gpu_rules() -> GpuPolicy {
    GpuPolicy {
        min_driver_version: None,
        allowed_vbios_versions: Vec::new(),
        rim_match_required: true,
        ocsp_required: false,
        allowed_modes: Vec::new(),
        allowed_archs: Vec::new(),
    }
}

/// The policy named `name`, if the chain has one.
pub fn by_name(name: &str) -> Option<ChainPolicy> {
    let hardware = Policy {
        gpu: gpu_rules(),
        ..Policy::default()
    };
    let (tees, policy) = match name {
        CONFIDENTIAL_VM_V1 => (vec![TeeKind::SevSnp, TeeKind::Tdx], hardware),
        SEV_SNP_V1 => (vec![TeeKind::SevSnp], hardware),
        SIMULATED_V1 => (
            vec![TeeKind::Simulated],
            Policy {
                allow_simulated: true,
                ..hardware
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
