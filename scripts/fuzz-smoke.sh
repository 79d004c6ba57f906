#!/usr/bin/env bash
# CI smoke run of the verifier's fuzz targets (attestation-verifier/fuzz, docs/fuzzing.md):
# installs what it needs (idempotent), seeds the corpora from the shared vectors, builds every
# target once and runs each for a short fixed budget. Fails on any crash, leak, timeout or
# out-of-memory; the failing input is left in attestation-verifier/fuzz/artifacts/<target>/.
#
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 5]
# Environment: SIGIL_VECTORS (default ../shared/vectors beside the repository);
#              FUZZ_TOOLCHAIN (default nightly; falls back to stable + RUSTC_BOOTSTRAP=1);
#              FUZZ_SANITIZER (default address; scripts/test.sh uses none: the crates
#              fuzzed are safe Rust, and building aws-lc's C code with AddressSanitizer is
#              most of a cold build; the long runs keep AddressSanitizer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/lib.sh
per_target="${1:-5}"
export CARGO_TERM_COLOR=never
: "${SIGIL_VECTORS:=$(cd .. && pwd)/shared/vectors}"
export SIGIL_VECTORS
fuzz="$root/attestation-verifier/fuzz"

step "toolchain and cargo-fuzz (installed only if missing)"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$toolchain" --profile minimal >/dev/null 2>&1 || true
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    # No nightly to be had: stable accepts cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1.
    echo "no $toolchain toolchain: using stable with RUSTC_BOOTSTRAP=1"
    toolchain=stable
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
rustup run "$toolchain" rustc --version
cargo fuzz --version

step "seed corpora"
"$fuzz/seed.sh"

step "build every target"
cd "$fuzz"
build_start=$SECONDS
sanitizer="${FUZZ_SANITIZER:-address}"
cargo "+$toolchain" fuzz build --sanitizer "$sanitizer"
echo "build: $((SECONDS - build_start)) s"
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"

step "run each target for ${per_target} s"
failed=()
for t in $(cargo "+$toolchain" fuzz list); do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$(mktemp)"
    if "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$per_target" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "$t: ok, ${execs:-?} executions"
    else
        echo "$t: FAILED"
        tail -40 "$log"
        failed+=("$t")
    fi
    rm -f "$log"
done

step "done"
if [ "${#failed[@]}" -gt 0 ]; then
    fail "crashing targets: ${failed[*]} (inputs in attestation-verifier/fuzz/artifacts/)"
fi
echo "all targets ran without a crash"
