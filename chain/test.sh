#!/usr/bin/env bash
# Checks of the chain workspace (the market pallet and the runtime's attestation verifier), which
# is separate from the root workspace, and the runtime's native unit tests (its configuration,
# and the market's call-sequence harness over fixed inputs), built without the WASM runtime: they
# reuse this script's other builds (about a minute more). The WASM runtime and clippy of the
# runtime (~16 CPU-minutes cold) are checked by runtime-test.sh and local-chain.sh --check.
# Usage: chain/test.sh              (from anywhere)
# Builds into chain/target (override with CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

step() { printf '\n=== chain: %s (%ss so far)\n' "$*" "$SECONDS"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "format"
cargo fmt --all -- --check

step "clippy (all targets, benchmarks and try-runtime included)"
cargo clippy --locked --all-targets --features runtime-benchmarks,try-runtime -- -D warnings

step "tests (mock runtime, production features)"
cargo test --locked -p pallet-sigil-market

step "tests of the upgrades pallet (council, threshold, delay)"
cargo test --locked -p pallet-sigil-upgrades

step "tests of the runtime's attestation verifier (simulated and real SEV-SNP evidence)"
cargo test --locked -p sigil-verifier-adapter

step "tests and benchmark tests (runtime-benchmarks)"
cargo test --locked -p pallet-sigil-market --features runtime-benchmarks

step "tests of the runtime, native (genesis, the market through the runtime's configuration, the call-sequence harness over fixed inputs)"
SKIP_WASM_BUILD=1 cargo test --locked -p sigil-runtime

step "done"
