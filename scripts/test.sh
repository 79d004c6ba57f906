#!/usr/bin/env bash
# The project's test command: installs what a fresh machine lacks, then runs every check.
# Usage: scripts/test.sh            (from anywhere; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# One run builds each crate once: incremental caches would only cost disk (they were the
# largest part of a cold target directory).
export CARGO_INCREMENTAL=0
: "${SIGIL_VECTORS:=$(cd .. && pwd)/shared/vectors}"
export SIGIL_VECTORS

. scripts/lib.sh

step "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "reference tools for the measure differential test (installed only if missing)"
# sev-snp-measure (PyPI) is the reference SEV-SNP launch-digest calculator; Debian's
# ovmf package supplies real firmware (tests/measure_reference.rs).
if ! command -v sev-snp-measure >/dev/null 2>&1; then
    python3 -m pip install --quiet sev-snp-measure==0.0.13
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
if [ ! -f /usr/share/ovmf/OVMF.fd ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ovmf >/dev/null
fi
# systemd's own PCR 11 calculator (Debian's systemd package ships it) for the UKI
# differential test of `sigil-verify measure tdx --uki` (attestation-verifier/tests/measure_uki.rs).
if [ ! -x /usr/lib/systemd/systemd-measure ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
# The same calculator of a newer systemd (253 or later measures `.uname` and `.sbat`, 256
# `.ucode`), for the test of newer stubs' section lists (measure_uki.rs): the
# distribution's own where it is newer, else systemd and libsystemd-shared from its
# backports, only extracted (nothing installed), run through a wrapper.
if [ -z "${SIGIL_SYSTEMD_MEASURE_NEWER:-}" ]; then
    own="$(/usr/lib/systemd/systemd-measure --version | awk 'NR == 1 {print $2}')"
    sdir="${CARGO_TARGET_DIR:-$PWD/target}/reference-systemd"
    if [ "${own:-0}" -ge 253 ]; then
        SIGIL_SYSTEMD_MEASURE_NEWER=/usr/lib/systemd/systemd-measure
    else
        if [ ! -x "$sdir/systemd-measure" ]; then
            bpo="$(mktemp -d)"
            codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
            printf 'deb http://deb.debian.org/debian %s-backports main\n' "$codename" >"$bpo/sources.list"
            apt_bpo=(-o "Dir::Etc::SourceList=$bpo/sources.list" -o Dir::Etc::SourceParts=/dev/null -o APT::Sandbox::User=root
                -o "Dir::State::Lists=$bpo/lists" -o "Dir::Cache=$bpo/cache")
            mkdir -p "$bpo/lists/partial" "$bpo/cache/archives/partial" "$sdir/root"
            apt-get "${apt_bpo[@]}" update -qq
            (cd "$bpo" && apt-get "${apt_bpo[@]}" download -qq \
                "systemd/$codename-backports" "libsystemd-shared/$codename-backports" 2>/dev/null)
            for deb in "$bpo"/*.deb; do dpkg-deb -x "$deb" "$sdir/root"; done
            rm -rf "$bpo"
            tool="$(find "$sdir/root" -path '*/systemd/systemd-measure' -type f | head -n 1)"
            lib="$(dirname "$(find "$sdir/root" -name 'libsystemd-shared-*.so' | head -n 1)")"
            printf '#!/bin/sh\nLD_LIBRARY_PATH='\''%s'\'' exec '\''%s'\'' "$@"\n' "$lib" "$tool" >"$sdir/systemd-measure"
            chmod +x "$sdir/systemd-measure"
        fi
        SIGIL_SYSTEMD_MEASURE_NEWER="$sdir/systemd-measure"
    fi
    export SIGIL_SYSTEMD_MEASURE_NEWER
fi
# A signed distribution kernel (Debian's cloud kernel, only its vmlinuz kept) for the
# Authenticode differential test of `sigil-verify measure tdx --kernel`
# (attestation-verifier/tests/measure_kernel.rs).
if [ -z "${SIGIL_TEST_KERNEL:-}" ]; then
    kdir="${CARGO_TARGET_DIR:-$PWD/target}/reference-kernel"
    if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
        apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 || apt-get update -qq
        kpkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')"
        mkdir -p "$kdir"
        (cd "$kdir" && apt-get download -qq "$kpkg" \
            && dpkg-deb --fsys-tarfile linux-image-*.deb | tar -x ./boot/ \
            && rm -f linux-image-*.deb)
    fi
    SIGIL_TEST_KERNEL="$(ls "$kdir"/boot/vmlinuz-* | head -n 1)"
    export SIGIL_TEST_KERNEL
fi
: "${SIGIL_REQUIRE_REFERENCE_TOOLS:=1}"
export SIGIL_REQUIRE_REFERENCE_TOOLS

step "format"
cargo fmt --all -- --check

step "no_std core for wasm32-unknown-unknown"
cargo build -p attestation-verifier --no-default-features --target wasm32-unknown-unknown

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace --all-targets

step "fuzz smoke: every fuzz target (the verifier's, the job specs') for 3 s on its seed corpus (scripts/fuzz-smoke.sh)"
FUZZ_SANITIZER=none bash scripts/fuzz-smoke.sh 3
# The long runs' results table (scripts/fuzz-long.sh adds each run to its target's campaign).
python3 scripts/fuzz-table.py test

step "chain: market pallet (its own workspace)"
bash chain/test.sh

step "e2e: chain client and sigil CLI against the local chain (runtime build, chopsticks)"
bash tests/e2e.sh

step "main job and explorer: the local market end to end (scripts/market.sh --keep-running: chain, agents, jobs settled), the explorer's browser tests against it (explorer/: npm test), then the market stopped and its exit status checked"
# Debian's Chromium (the tests drive it with playwright-core; no browser download), the
# wasm-bindgen CLI (explorer/build-wasm.sh, only when missing) and the npm packages.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd explorer && npm ci --no-audit --no-fund --loglevel=error && SIGIL_CHAIN_PORT="$(free_port)" npm test)

step "faults: kill -9 of agents, RPC loss, a tier-2 race, an interrupted buyer, against the local chain (scripts/faults.sh --quick)"
bash scripts/faults.sh --quick

step "deploy: terraform fmt, checkov, HCL assertions"
bash deploy/terraform/check.sh

step "image: the agent image built twice from pinned Debian packages (byte-identical), its disk writers read back by independent tools, booted under QEMU (TCG) directly and from its disk (UKI), the agent's gRPC health check each time (deploy/image/check.sh)"
bash deploy/image/check.sh
