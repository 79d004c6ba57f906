#!/usr/bin/env bash
# Checks of the chain workspace (the market pallet), which is separate from the root workspace.
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

step "tests and benchmark tests (runtime-benchmarks)"
cargo test --locked -p pallet-sigil-market --features runtime-benchmarks

step "done"
