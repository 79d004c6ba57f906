//! Bytes as the agent's gRPC server gets them: a `SubmitRequest` decoded by prost, its `spec`
//! validated as admission validates it (and the bytes as a spec themselves), for an agent with
//! the default limits and one with tight limits. No panic; every accepted spec keeps
//! `validate`'s promises; decoded messages survive re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigil_job_spec_fuzz::check_bytes(data);
});
