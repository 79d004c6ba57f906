//! `sigil-agent`: the Sigil provider agent that runs inside a confidential VM.
//!
//! It serves the `sigil.v1` gRPC API, runs and meters workloads, keeps a durable job
//! store, collects hardware evidence and signs receipts bound to it.
//!
//! # Layers
//!
//! The modules form layers; a module's `crate::` paths name only its own layer or earlier
//! ones (`tests/layers.rs` checks every `src/**/*.rs` file against this table):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 | [`job`] | job ids, states, typed end reasons, the job record |
//! | 1 | [`config`] | the configuration, one type per section; imports nothing from the crate |
//! | 2 | [`keys`], [`shutdown`], [`receipt`], [`metering`] | small leaf utilities |
//! | 3 | [`store`], [`collateral`], [`workload`], [`auth`], [`funding`] | features, each given its own configuration section; what the chain says about a job's funding |
//! | 4 | [`evidence`], [`metrics`] | evidence backends (they ask the collateral sources); metrics (over the store's and auth's counters) |
//! | 5 | [`attestor`] | the agent key and its evidence |
//! | 6 | [`engine`] | admission, scheduling, running, receipts, job events |
//! | 7 | [`grpc`], [`settle`] | the gRPC API over the engine; settlement on the chain over the store, the attestor and the job events |
//! | 8 | [`wiring`] | the one place that reads the whole [`config::Config`] and builds everything |
//! | 9 | `main.rs` | the binary |

pub mod attestor;
pub mod auth;
pub mod collateral;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod funding;
pub mod grpc;
pub mod job;
pub mod keys;
pub mod metering;
pub mod metrics;
pub mod receipt;
pub mod settle;
pub mod shutdown;
pub mod store;
pub mod wiring;
pub mod workload;

pub use config::Config;
pub use engine::{AgentError, Engine, EngineParts};
pub use job::{EndReason, JobId, JobRecord, JobState};
pub use settle::Settler;
pub use store::Store;
