#!/usr/bin/env bash
# Builds the seed corpus of the job-spec fuzz targets into corpus/job_spec/ (git-ignored; no
# encoded spec is committed): the job specs of the crate's and the agent's tests, each as the
# SubmitRequest a buyer sends, written by the crate's `seed_specs` example (built with the
# repository's own toolchain, in its target directory). Idempotent: the same files each run.
# `job_spec_structured` starts from an empty corpus (its inputs are `arbitrary` bytes).
#
#   job-spec/fuzz/seed.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$here/corpus/job_spec" "$here/corpus/job_spec_structured"
cd "$repo"
# The caller's fuzz toolchain settings are not this build's.
env -u RUSTC_BOOTSTRAP -u RUSTUP_TOOLCHAIN \
    cargo run -q -p sigil-job-spec --example seed_specs -- "$here/corpus/job_spec"
