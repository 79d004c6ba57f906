#!/usr/bin/env bash
# Refreshes chain-client/metadata/sigil.scale, the runtime metadata the client's typed API is
# generated from: builds the runtime and the chain spec writer (chain/local-chain.sh
# --build-only, a no-op when nothing changed), which writes chain/dev/metadata.scale, and copies
# it in. Run it after changing the runtime or the market pallet; the end-to-end tests
# (tests/e2e.sh) fail while the copy is stale.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
"$root/chain/local-chain.sh" --build-only
src="$root/chain/dev/metadata.scale"
dst="$here/metadata/sigil.scale"
if cmp -s "$src" "$dst"; then
    echo "refresh-metadata.sh: $dst is up to date" >&2
else
    cp "$src" "$dst"
    echo "refresh-metadata.sh: updated $dst ($(wc -c <"$dst") bytes); rebuild sigil-chain-client" >&2
fi
