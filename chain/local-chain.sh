#!/usr/bin/env bash
# The local Sigil chain: chopsticks executing the runtime WASM from a raw chain spec, one block
# per extrinsic, dev accounts Alice..Ferdie funded in MINT, Alice root and dispatcher.
#
# Usage: chain/local-chain.sh [--port N] [--build-only | --check]
#   (default)     build what is missing, start the chain in the foreground (Ctrl-C stops it)
#   --build-only  build the runtime, the chain spec and the npm packages, then exit
#   --check       start the chain, run the smoke test (chain/smoke.mjs) against it, stop it
# The port defaults to $SIGIL_CHAIN_PORT or 9944. Builds go to chain/target (CARGO_TARGET_DIR
# or SIGIL_CHAIN_TARGET_DIR overrides), the chain spec, metadata and WASM to chain/dev/, npm packages to chain/node_modules/.
set -euo pipefail
cd "$(dirname "$0")"
. ../scripts/lib.sh

port="${SIGIL_CHAIN_PORT:-9944}"
mode=run
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="${2:?--port needs a value}"; shift 2 ;;
        --port=*) port="${1#--port=}"; shift ;;
        --build-only) mode=build; shift ;;
        --check) mode=check; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "local-chain.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

export CARGO_TARGET_DIR="${SIGIL_CHAIN_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
log() { printf '=== local chain: %s (%ss)\n' "$*" "$SECONDS" >&2; }

# The runtime builds to WASM on stable Rust with the wasm32v1-none target.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32v1-none; then
    log "installing the wasm32v1-none target"
    rustup target add wasm32v1-none >&2
fi

# Cargo rebuilds only what changed; a fresh machine builds the runtime (native and WASM) here.
log "runtime and chain spec writer (cargo build -p sigil-chain-spec)"
cargo build --locked -p sigil-chain-spec >&2
"$CARGO_TARGET_DIR/debug/sigil-chain-spec" --out dev >/dev/null
spec="$PWD/dev/sigil-dev.raw.json"

# chopsticks and polkadot.js, pinned by package-lock.json. --ignore-scripts skips the native
# sqlite3 build (~10 min), which only chopsticks' on-disk database needs; the chain runs in memory.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "local-chain.sh: npm (Node.js >= 20) is required" >&2; exit 1; }
    log "npm packages (npm ci --ignore-scripts)"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi

[ "$mode" = build ] && { log "built: $spec"; exit 0; }

chopsticks=(node_modules/.bin/chopsticks --genesis="$spec" --build-block-mode=Instant --port="$port")
url="ws://127.0.0.1:$port"

if [ "$mode" = run ]; then
    echo "Sigil local chain: $url (chain spec $spec, metadata $PWD/dev/metadata.scale)"
    exec "${chopsticks[@]}"
fi

# --check: start, wait for the RPC, run the smoke test, stop.
chain_log="$(mktemp -t sigil-chain.XXXXXX.log)"
"${chopsticks[@]}" >"$chain_log" 2>&1 &
chain_pid=$!
trap 'kill "$chain_pid" 2>/dev/null || true; wait "$chain_pid" 2>/dev/null || true' EXIT
log "chopsticks started (pid $chain_pid, log $chain_log)"
wait_rpc "$port" "$chain_pid" "$chain_log" 120
log "RPC up at $url"
node smoke.mjs "$url"
log "smoke test passed"
