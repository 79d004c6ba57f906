//! Sigil attestation verifier.
//!
//! Decides whether hardware attestation evidence is genuine and acceptable:
//! AMD SEV-SNP reports, Intel TDX quotes, NVIDIA confidential-GPU reports, and
//! Sigil receipts bound to them. The same code runs in the `sigil-verify` CLI,
//! in the provider agent and inside the chain runtime, so the core is
//! `no_std + alloc`, reads no clock (time is an argument) and does no I/O.
//!
//! The pipeline: [`evidence`] parses bytes into typed evidence (total, no
//! crypto) -> [`verify`] checks signatures, chains to the pinned [`roots`],
//! revocation and bindings, returning [`Verified`] evidence -> [`policy`]
//! appraises it into a [`Verdict`]. The `check_*` functions run all three
//! and return an [`Outcome`] with the claims a buyer reads.
//!
//! The root re-exports what users need: the receipt verifier and the per-TEE
//! verifiers with their collateral, evidence and errors, the policy and its
//! verdict, the `check_*` calls and their claims. The modules stay public for
//! the parsers, the bindings, the wire types and the lower-level pieces.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod binding;
pub mod bundle;
pub mod crypto;
pub mod eventlog;
pub mod evidence;
pub mod merkle;
mod pipeline;
pub mod policy;
pub mod receipt;
pub mod roots;
pub mod time;
mod verdict;
pub mod verify;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "measure")]
pub mod measure;
#[cfg(feature = "fetch")]
pub mod pcs;
#[cfg(feature = "fetch")]
pub mod rim_service;

pub use crate::crypto::{Crypto, DefaultCrypto, RustCrypto};
pub use crate::pipeline::{
    AgentEventClaim, AzureHclClaims, AzureTdxVtpmClaims, AzureVtpmClaims, CpuClaims, EventClaim,
    EvidenceClaims, GpuBundleClaims, GpuBytes, GpuEntryClaims, MeasuredBootClaims,
    MeasurementClaim, NvGpuClaims, OcspClaim, Outcome, PcrEventClaim, ReceiptClaims, RimClaim,
    RimClaims, SNP_MEASUREMENT_COVERS, SimulatedClaims, SnpClaims, SnpCrlClaims, TcbClaims,
    TdxClaims, UsageClaims, VtpmQuoteClaims, check_bundle, check_gpu, check_gpu_bundle,
    check_receipt, check_snp, check_tdx, check_tdx_measured,
};
pub use crate::policy::{
    GpuPolicy, POLICY_ID_DOMAIN, Policy, PolicyError, PolicyTee, SnpPolicy, TdxPolicy,
    evaluate_bundle, evaluate_receipt,
};
pub use crate::time::UnixTime;
pub use crate::verdict::{Failures, Verdict, Verified, Violation};
pub use crate::verify::nvgpu::{NvGpuCollateral, NvGpuEvidence, NvGpuVerifier, NvGpuVerifyError};
pub use crate::verify::receipt::{
    ReceiptVerifier, ReceiptVerifyError, VerifiedBundle, VerifiedCpu, VerifiedReceipt,
};
pub use crate::verify::simulated::{SimulatedVerifyError, verify_simulated};
pub use crate::verify::snp::{
    SnpCertificate, SnpCollateral, SnpEvidence, SnpVerifier, SnpVerifyError,
};
pub use crate::verify::tdx::{TdxCollateral, TdxEvidence, TdxVerifier, TdxVerifyError};
