//! `sigil-agent`: the Sigil provider agent that runs inside a confidential VM.
//!
//! It serves the `sigil.v1` gRPC API, runs and meters workloads, keeps a durable job
//! store, collects hardware evidence and signs receipts bound to it.

pub mod attestor;
pub mod auth;
pub mod collateral;
pub mod config;
pub mod evidence;
pub mod job;
pub mod keys;
pub mod metering;
pub mod metrics;
pub mod receipt;
pub mod service;
pub mod settle;
pub mod shutdown;
pub mod store;
pub mod wiring;
pub mod workload;
