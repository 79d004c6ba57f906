#!/usr/bin/env bash
# The project's test command: installs what a fresh machine lacks, then runs every check.
# Usage: scripts/test.sh            (from anywhere; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
: "${SIGIL_VECTORS:=$(cd .. && pwd)/shared/vectors}"
export SIGIL_VECTORS

. scripts/lib.sh

step "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "format"
cargo fmt --all -- --check

step "no_std core for wasm32-unknown-unknown"
cargo build -p attestation-verifier --no-default-features --target wasm32-unknown-unknown

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace --all-targets

step "chain: market pallet (its own workspace)"
bash chain/test.sh

step "e2e: chain client and sigil CLI against the local chain (runtime build, chopsticks)"
bash tests/e2e.sh

step "main job: the local market end to end (scripts/market.sh: chain, agent, jobs settled)"
SIGIL_CHAIN_PORT="$(free_port)" bash scripts/market.sh

step "deploy: terraform fmt, checkov, HCL assertions"
bash deploy/terraform/check.sh
