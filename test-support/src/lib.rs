//! Dev-only support for Sigil's tests (unpublished): the shared evidence vectors and the
//! synthetic PKIs every crate's tests use, written once.
//!
//! - [`vectors`]: where the real public evidence lies (`SIGIL_VECTORS`, or `../shared/vectors`
//!   beside the repository root) and the model of its `case.toml` files ([`Case`]).
//! - [`pe`]: synthetic PE32+ images (a Unified Kernel Image's sections); with the `tcg-log` feature
//!   [`tcg_log`]: synthetic TPM event logs (TCG crypto-agile) and their PCR replay.
//! - With the `pki` feature, synthetic PKIs and report signers: [`snp`] (AMD: ARK, ASK/ASVK,
//!   VCEK/VLEK, signed SEV-SNP reports), [`tdx`] (Intel: root, PCK CAs and certificates, TCB
//!   signer, CRLs, TCB Info and QE Identity, signed TDX quotes) and [`nvgpu`] (NVIDIA: device
//!   identity chain, signed SPDM measurement reports, OCSP responder and RIM signer
//!   certificates); [`pki`] holds what they share (CRLs).
//!
//! # Why this crate does not depend on `attestation-verifier`
//!
//! The verifier's own unit tests (`src/**/tests.rs`) use this crate as a dev-dependency. Were
//! this crate to depend on `attestation-verifier`, those tests would link a *second* copy of the
//! verifier, whose types do not match the copy under test. So everything here is raw bytes,
//! keys and certificates (DER, rcgen key pairs, `p256`/`p384` signing keys, `toml` tables); a
//! test turns them into the verifier's types (a trust store, a `Cert`) itself. That also keeps
//! this crate usable from the chain's separate workspace.
//!
//! # Who does not use it
//!
//! `chain/bench` reads the vectors too, but it is a tool run by hand, not a test: it reports a
//! missing vector as an `anyhow` error chain (exit code 1) where this crate panics, so it keeps
//! its own few lines rather than take a test crate as a normal dependency.

// Test support reports a failed expectation by panicking (a missing vector, a malformed
// case.toml): that is the test's failure message. Report builders index fixed layouts.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

#[cfg(feature = "pki")]
pub mod nvgpu;
pub mod pe;
#[cfg(feature = "pki")]
pub mod pki;
#[cfg(feature = "pki")]
pub mod snp;
#[cfg(feature = "tcg-log")]
pub mod tcg_log;
#[cfg(feature = "pki")]
pub mod tdx;
pub mod vectors;

/// The `toml` crate of [`Case::toml`], so a test can name its types without its own dependency.
pub use toml;
pub use vectors::{Case, cases, vector, vectors_dir};
