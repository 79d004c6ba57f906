//! Pinned vendor trust anchors, embedded at build time.
//!
//! These are the vendors' published root (and, for AMD, intermediate)
//! certificates. Evidence is only ever accepted when it chains to one of them;
//! certificates supplied with the evidence are accepted only when they chain to
//! the pinned root for the product the evidence itself names.

pub mod amd;
pub mod intel;
pub mod nvidia;
