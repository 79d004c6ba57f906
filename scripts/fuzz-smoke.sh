#!/usr/bin/env bash
# CI smoke run of every fuzz crate (docs/fuzzing.md): the verifier's (attestation-verifier/fuzz)
# and the agent's job specs' (job-spec/fuzz). Installs what it needs (idempotent), seeds each
# crate's corpora, builds each crate's targets once and runs each target for a short fixed
# budget. Fails on any crash, leak, timeout or out-of-memory; the failing input is left in
# <crate>/artifacts/<target>/.
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
# The fuzz crates, each its own cargo-fuzz workspace with a seed.sh.
crates=(attestation-verifier/fuzz job-spec/fuzz)

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
sanitizer="${FUZZ_SANITIZER:-address}"

failed=()
for crate in "${crates[@]}"; do
    fuzz="$root/$crate"
    cd "$fuzz"

    step "$crate: seed corpora"
    ./seed.sh

    step "$crate: build every target"
    build_start=$SECONDS
    # Builds without a sanitizer go beside the AddressSanitizer build (as scripts/fuzz-long.sh
    # puts them), so that switching does not rebuild everything.
    build_dir=target
    [ "$sanitizer" = address ] || build_dir="target/sanitizer-$sanitizer"
    cargo "+$toolchain" fuzz build --sanitizer "$sanitizer" --target-dir "$build_dir"
    echo "build: $((SECONDS - build_start)) s"
    bin="$fuzz/$build_dir/x86_64-unknown-linux-gnu/release"

    step "$crate: run each target for ${per_target} s"
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
            failed+=("$crate: $t")
        fi
        rm -f "$log"
    done
done

step "done"
if [ "${#failed[@]}" -gt 0 ]; then
    fail "crashing targets: $(printf '%s; ' "${failed[@]}")(inputs in <crate>/artifacts/<target>/)"
fi
echo "all targets ran without a crash"
