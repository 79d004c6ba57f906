#!/usr/bin/env bash
# Builds the explorer's WebAssembly package: the `sigil-explorer-wasm` crate (explorer/wasm, a
# member of the root workspace) for wasm32-unknown-unknown, then wasm-bindgen's JavaScript
# bindings into explorer/pkg/. Installs the wasm32 target and the wasm-bindgen CLI of the
# version the crate pins (`cargo install --locked`) only when they are missing.
#
# Usage: explorer/build-wasm.sh    (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd .. && pwd)"
version="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' wasm/Cargo.toml)"
[ -n "$version" ] || { echo "build-wasm.sh: wasm/Cargo.toml pins no wasm-bindgen version" >&2; exit 1; }

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown >&2
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
    echo "build-wasm.sh: installing wasm-bindgen-cli $version" >&2
    # Only the `wasm-bindgen` binary, without TLS (its test runner's downloads are not used).
    # The CLI's own lock file first; a registry that lacks a version it pins (a yanked crate)
    # gets a fresh resolution, said so: the CLI's version is pinned either way.
    install=(cargo install wasm-bindgen-cli --version "$version" --no-default-features --bin wasm-bindgen)
    if ! "${install[@]}" --locked >&2; then
        echo "build-wasm.sh: wasm-bindgen-cli $version does not install with its lock file here; installing it without" >&2
        "${install[@]}" >&2
    fi
fi

cargo build --locked --release -p sigil-explorer-wasm --target wasm32-unknown-unknown >&2
target="${CARGO_TARGET_DIR:-$root/target}"
rm -rf pkg
wasm-bindgen --target web --no-typescript --out-dir pkg \
    "$target/wasm32-unknown-unknown/release/sigil_explorer_wasm.wasm"
echo "build-wasm.sh: pkg/sigil_explorer_wasm_bg.wasm ($(wc -c <pkg/sigil_explorer_wasm_bg.wasm) bytes)" >&2
