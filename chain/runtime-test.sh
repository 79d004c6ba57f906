#!/usr/bin/env bash
# The runtime's native tests: genesis, integrity tests, and the market's flows through the
# runtime's configuration (dispatcher set, the real attestation verifier, root and escrow), and
# the market's call-sequence harness (src/fuzzing.rs) over fixed inputs (~10 s in debug).
# test.sh runs the same tests without the WASM runtime (SKIP_WASM_BUILD=1); this script adds
# the WASM build the runtime's build script makes and clippy of the runtime and the chain spec
# writer, which checks the whole polkadot-sdk graph once more. Measured right after a cold
# `local-chain.sh` build: 13 min wall, 1,304 CPU-s on two cores (see ../docs/chain.md).
# Usage: chain/runtime-test.sh   (from anywhere; CARGO_TARGET_DIR overrides chain/target)
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32v1-none; then
    rustup target add wasm32v1-none
fi
cargo clippy --locked -p sigil-runtime -p sigil-chain-spec --all-targets -- -D warnings
cargo test --locked -p sigil-runtime
