//! Validation of a submitted `JobSpec` into a [`JobPlan`] the runner can execute: the
//! `sigil-job-spec` crate (light, and fuzzed on its own: docs/fuzzing.md), re-exported, with
//! the limits read from the agent's [`JobsConfig`].

pub use sigil_job_spec::*;

use crate::config::JobsConfig;

/// Decodes and validates spec bytes against the `[jobs]` limits
/// ([`JobsConfig::spec_limits`]) and what the agent offers.
pub fn validate(
    spec_bytes: &[u8],
    jobs: &JobsConfig,
    caps: &Capabilities,
    now_ms: u64,
) -> Result<JobPlan, SpecError> {
    sigil_job_spec::validate(spec_bytes, &jobs.spec_limits(), caps, now_ms)
}
