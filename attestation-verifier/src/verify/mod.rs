//! Verification: signatures, certificate chains to pinned roots, revocation,
//! validity at a given time, and the bindings between evidence and certificates.

pub mod azure_hcl;
pub mod azure_vtpm;
#[cfg(feature = "gce")]
pub mod gce_endorsement;
pub mod measured;
pub mod nvgpu;
pub mod ocsp;
pub mod receipt;
pub mod rim;
pub mod simulated;
pub mod snp;
pub mod tdx;
pub mod x509;
