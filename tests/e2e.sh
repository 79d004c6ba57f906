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
log() { printf '=== e2e: %s (%ss)\n' "$*" "$SECONDS" >&2; }

log "chain build (chain/local-chain.sh --build-only)"
chain/local-chain.sh --build-only

# The test binaries and the CLI, built with the workspace's feature set so that a run after
# `cargo test --workspace` reuses its artifacts.
log "sigil CLI and the e2e tests"
cargo build --workspace --bin sigil
cargo test --workspace --features sigil-e2e/local-chain --no-run \
    --test e2e_market --test e2e_cli --test e2e_reconnect --test e2e_metadata
export SIGIL_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/sigil"

port="${SIGIL_E2E_PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}"
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
for _ in $(seq 1 180); do
    if ! kill -0 "$chain_pid" 2>/dev/null; then
        cat "$chain_log" >&2
        echo "e2e.sh: the local chain exited" >&2
        exit 1
    fi
    if curl -sf -H 'Content-Type: application/json' \
        -d '{"id":1,"jsonrpc":"2.0","method":"system_chain","params":[]}' \
        "http://127.0.0.1:$port" >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
log "RPC up at $SIGIL_CHAIN_URL"

# One test at a time: the tests share the dev accounts (Alice is the only dispatcher), and
# each account's transactions must be ordered.
status=0
cargo test --workspace --features sigil-e2e/local-chain --no-fail-fast \
    --test e2e_metadata --test e2e_market --test e2e_cli --test e2e_reconnect \
    -- --test-threads=1 "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- chain log (last 40 lines) ---" >&2
    tail -n 40 "$chain_log" >&2
fi
log "done (status $status)"
exit "$status"
