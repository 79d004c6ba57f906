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
//! revocation and bindings, returning [`verdict::Verified`] evidence ->
//! [`policy`] appraises it into a [`verdict::Verdict`].

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod appraise;
pub mod binding;
pub mod bundle;
pub mod crypto;
pub mod evidence;
pub mod merkle;
pub mod policy;
pub mod receipt;
pub mod roots;
pub mod time;
pub mod verdict;
pub mod verify;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "measure")]
pub mod measure;
#[cfg(feature = "fetch")]
pub mod pcs;
#[cfg(feature = "fetch")]
pub mod rim_service;
