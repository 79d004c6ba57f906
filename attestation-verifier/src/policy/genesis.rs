//! The attestation policies a Sigil chain starts with, by name.
//!
//! Policies are data on chain (canonical documents named by their id); these three are the
//! chain's genesis entries, defined here once so that the runtime, the `sigil` CLI and the agent
//! build the same documents and therefore the same ids. Names are a convenience of the tools:
//! the chain knows only ids.
//!
//! Two of them accept any launch measurement, so they pin nothing about what runs: the chain
//! refuses them for tier-3 jobs and attested keys ([`Policy::check_pinned`]); they serve as the
//! starting point of a pinned policy (`sigil policy new`).

use super::{GpuPolicy, Policy, PolicyTee};
use alloc::vec;

/// Genuine confidential VMs: SEV-SNP or TDX evidence verified to the pinned AMD and Intel roots,
/// debug, migration agents and simulated evidence refused, the TDX TCB `UpToDate`, any launch
/// measurement (so: not usable for tier 3 as it is). NVIDIA GPUs in a bundle must match the
/// golden values of verified driver and VBIOS RIMs.
pub const CONFIDENTIAL_VM_V1: &str = "sigil.confidential-vm.v1";

/// SEV-SNP only, otherwise as [`CONFIDENTIAL_VM_V1`].
pub const SEV_SNP_V1: &str = "sigil.sev-snp.v1";

/// Evidence from the agent's simulator, for development chains and tests. It proves nothing
/// about hardware; jobs under any other policy never bind a key registered under it.
pub const SIMULATED_V1: &str = "sigil.simulated.v1";

/// Every genesis policy's name.
pub const NAMES: [&str; 3] = [CONFIDENTIAL_VM_V1, SEV_SNP_V1, SIMULATED_V1];

/// The genesis policy named `name`.
pub fn named(name: &str) -> Option<Policy> {
    let hardware = Policy {
        gpu: GpuPolicy::default(),
        ..Policy::default()
    };
    let policy = match name {
        CONFIDENTIAL_VM_V1 => hardware,
        SEV_SNP_V1 => Policy {
            tees: vec![PolicyTee::SevSnp],
            ..hardware
        },
        SIMULATED_V1 => Policy {
            allow_simulated: true,
            tees: vec![PolicyTee::Simulated],
            ..hardware
        },
        _ => return None,
    };
    Some(policy)
}
