#!/usr/bin/env bash
# End-to-end tests against the real local chain.
#
# Builds the runtime, chain spec and chopsticks (chain/local-chain.sh --build-only), starts the
# local chain on a free port, runs the sigil-e2e tests (feature `local-chain`: every tier's
# fund -> bind -> receipt -> settle -> audit -> replay loop, refunds, refusals, the `sigil` CLI
# as a subprocess, a client across a chain restart, and the staleness check of the client's
# checked-in metadata), and always stops the chain.
#
# Usage: tests/e2e.sh [extra arguments for the test binaries, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
. "$root/scripts/lib.sh"
log() { step "e2e: $*" >&2; }

log "chain build (chain/local-chain.sh --build-only)"
chain/local-chain.sh --build-only

# The test binaries and the CLI, built with the workspace's feature set so that a run after
# `cargo test --workspace` reuses its artifacts.
log "sigil CLI and the e2e tests"
cargo build --workspace --bin sigil
cargo test --workspace --features sigil-e2e/local-chain --no-run \
    --test e2e_market --test e2e_cli --test e2e_reconnect --test e2e_metadata --test e2e_prune
export SIGIL_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/sigil"

port="${SIGIL_E2E_PORT:-$(free_port)}"
export SIGIL_CHAIN_URL="ws://127.0.0.1:$port"
chain_log="$(mktemp -t sigil-e2e-chain.XXXXXX.log)"
# local-chain.sh execs chopsticks, so $! is the chain itself.
chain/local-chain.sh --port "$port" >"$chain_log" 2>&1 &
chain_pid=$!
stop_chain() {
    kill "$chain_pid" 2>/dev/null || true
    wait "$chain_pid" 2>/dev/null || true
}
trap stop_chain EXIT
log "chopsticks starting (pid $chain_pid, log $chain_log)"
wait_rpc "$port" "$chain_pid" "$chain_log" 180
log "RPC up at $SIGIL_CHAIN_URL"

# One test at a time: the tests share the dev accounts (Alice is the only dispatcher), and
# each account's transactions must be ordered.
status=0
cargo test --workspace --features sigil-e2e/local-chain --no-fail-fast \
    --test e2e_metadata --test e2e_market --test e2e_cli --test e2e_reconnect \
    -- --test-threads=1 "$@" || status=$?
# Last, on the same chain: pruning moves the chain's clock eight days ahead.
if [ "$#" -eq 0 ]; then
    cargo test --workspace --features sigil-e2e/local-chain --test e2e_prune || status=$?
fi
if [ "$status" -ne 0 ]; then
    echo "--- chain log (last 40 lines) ---" >&2
    tail -n 40 "$chain_log" >&2
fi
log "done (status $status)"
exit "$status"
