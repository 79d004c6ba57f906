//! The shared vectors (`../shared/vectors`, override: `SIGIL_VECTORS`) and their case.toml
//! model, from `sigil-test-support`; the benches include this file by path.

#![allow(unused_imports, unreachable_pub)] // each test uses some of them

pub use sigil_test_support::{Case, cases, vectors_dir};
