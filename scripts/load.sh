#!/usr/bin/env bash
# Load and abuse of the agent's gRPC API from a Python grpcio client (scripts/load/agent_load.py):
# concurrency levels 1, 8, 32 and 64, slow readers, abandoned streams, oversized and malformed
# messages; figures as text and JSON. Installs grpcio, grpcio-tools and cryptography (pinned)
# when missing.
#
# Usage: scripts/load.sh [SECONDS] [extra agent_load.py arguments]
#   SECONDS  load in all, split over the levels (default 600; scripts/test.sh runs 40)
#   SIGIL_LOAD_PROFILE=release  builds and drives the release agent (default: debug)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
. "$root/scripts/lib.sh"
secs="${1:-600}"
shift || true

if ! python3 -c 'import grpc, grpc_tools, cryptography' 2>/dev/null; then
    step "load: installing grpcio 1.68.1, grpcio-tools 1.68.1, cryptography 44.0.0"
    python3 -m pip install --quiet grpcio==1.68.1 grpcio-tools==1.68.1 cryptography==44.0.0
fi

profile="${SIGIL_LOAD_PROFILE:-debug}"
flag=()
[ "$profile" = release ] && flag=(--release)
step "load: sigil-agent ($profile, simulated evidence)"
cargo build --locked "${flag[@]}" -p enclave-agent --features simulator --bin sigil-agent --bin sigil-launch
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/sigil-agent"

step "load: ${secs} s over concurrency 1, 8, 32, 64"
python3 scripts/load/agent_load.py --agent "$bin" --duration "$secs" "$@"
