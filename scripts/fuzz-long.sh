#!/usr/bin/env bash
# Long fuzzing run of every fuzz target of every fuzz crate (docs/fuzzing.md): the given hours
# are shared evenly among the targets, run one after another, and each run goes into its
# target's row of the table between the markers in docs/fuzzing.md (rows of targets not run are
# kept): crate, target, executions, coverage (libFuzzer's `cov` edges and `ft` features),
# crashes (inputs left in <crate>/artifacts/<target>/), slowest unit, peak RSS, and the runs
# (the last one's budget, the build, how many runs, their time, the dates). A row is a campaign
# on one build: runs of the same target binary (by its SHA-256) add up, each resuming from the
# corpus the earlier ones left; a rebuilt binary starts a new row (scripts/fuzz-table.py). A
# crash stops that target's run (its input is kept); the others still run.
#
# Usage: scripts/fuzz-long.sh <hours> [target ...]     e.g. scripts/fuzz-long.sh 8
# SIGIL_FUZZ_RUNS=N: a target also stops once its row holds N executions on this build (e.g.
# 10000000, the goal per target), whichever of the two comes first; a target already there is
# not run, so a run cut short is topped up by running the script again.
# A target is a name of any crate's `cargo fuzz list` (`snp_report`, `job_spec`), or
# `<crate>:<name>` (`job-spec:job_spec`) where a name is in several crates; a crate is named by
# its directory without `/fuzz`. The chain's target runs only when named
# (`chain:market_calls`): its first build compiles the runtime's polkadot-sdk graph with
# coverage instrumentation (about an hour on two cores), without AddressSanitizer.
# FUZZ_SANITIZER=none: the targets are built without AddressSanitizer (into
# <crate>/target/sanitizer-none, beside the AddressSanitizer build) and run with the goal's
# memory limit (-rss_limit_mb=512; 2048 with AddressSanitizer, whose shadow memory alone is
# about 400 MB): about four times the executions a second, for the 10-million goal; the
# default, `address`, finds memory errors in the C and unsafe code beneath (aws-lc).
# Environment as scripts/fuzz-smoke.sh (SIGIL_VECTORS, FUZZ_TOOLCHAIN).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/lib.sh
[ $# -ge 1 ] || fail "usage: scripts/fuzz-long.sh <hours> [target ...]"
hours="$1"
shift
runs="${SIGIL_FUZZ_RUNS:-}"
[[ -z "$runs" || "$runs" =~ ^[0-9]+$ ]] || fail "SIGIL_FUZZ_RUNS must be a number of executions"
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address) build_dir=target rss_limit=2048 sanitizer_note="" ;;
    none) build_dir=target/sanitizer-none rss_limit=512 sanitizer_note=", no sanitizer" ;;
    *) fail "FUZZ_SANITIZER must be address or none" ;;
esac
export CARGO_TERM_COLOR=never
: "${SIGIL_VECTORS:=$(cd .. && pwd)/shared/vectors}"
export SIGIL_VECTORS
# The fuzz crates, each its own cargo-fuzz workspace with a seed.sh.
crates=(attestation-verifier/fuzz job-spec/fuzz)
# Fuzz crates run only when one of their targets is named.
named_only=(chain/fuzz)
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    toolchain=stable
    export RUSTC_BOOTSTRAP=1
fi
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# Every (crate, target), then the ones asked for (all by default).
all=()
for crate in "${crates[@]}"; do
    for t in $(cd "$crate" && cargo "+$toolchain" fuzz list); do
        all+=("$crate $t")
    done
done
selected=()
if [ $# -eq 0 ]; then
    selected=("${all[@]}")
fi
for crate in "${named_only[@]}"; do
    for t in $(cd "$crate" && cargo "+$toolchain" fuzz list); do
        all+=("$crate $t")
    done
done
crates+=("${named_only[@]}")
for arg in "$@"; do
    matches=()
    for entry in "${all[@]}"; do
        crate="${entry% *}"
        t="${entry#* }"
        if [ "$arg" = "$t" ] || [ "$arg" = "${crate%/fuzz}:$t" ]; then
            matches+=("$entry")
        fi
    done
    [ "${#matches[@]}" -gt 0 ] || fail "no fuzz target $arg"
    [ "${#matches[@]}" -eq 1 ] || fail "$arg is a target of several crates: name it <crate>:$arg"
    selected+=("${matches[0]}")
done
per_target="$(python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * 3600 / int(sys.argv[2]))))" "$hours" "${#selected[@]}")"

# Seed and build each crate with a selected target, once.
for crate in "${crates[@]}"; do
    printf '%s\n' "${selected[@]}" | grep -q "^$crate " || continue
    step "$crate: seed and build"
    if [ "$crate" = chain/fuzz ]; then
        # Seeds come from the target itself (SIGIL_FUZZ_SEEDS, below); no WASM runtime.
        (cd "$root/$crate" && SKIP_WASM_BUILD=1 cargo "+$toolchain" fuzz build --sanitizer none)
        continue
    fi
    "$root/$crate/seed.sh" >/dev/null
    (cd "$root/$crate" && cargo "+$toolchain" fuzz build --sanitizer "$sanitizer" --target-dir "$build_dir")
done

# Each finished run goes into the table between the markers in docs/fuzzing.md at once (with
# this run's command in the list above it), so that what finished is on record even if a later
# target's run is cut short. A target's row adds up its runs on one build (scripts/fuzz-table.py).
command_line="${runs:+SIGIL_FUZZ_RUNS=$runs }${FUZZ_SANITIZER:+FUZZ_SANITIZER=$sanitizer }scripts/fuzz-long.sh $hours${*:+ $*}"
machine="$(nproc) cores, $(rustup run "$toolchain" rustc --version)"
table=(python3 "$root/scripts/fuzz-table.py")

for entry in "${selected[@]}"; do
    crate="${entry% *}"
    t="${entry#* }"
    fuzz="$root/$crate"
    cd "$fuzz"
    bin="$fuzz/$build_dir/x86_64-unknown-linux-gnu/release"
    [ "$crate" != chain/fuzz ] || bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
    step "$crate: $t for ${per_target} s"
    # The build: the first 16 hex digits of the target binary's SHA-256.
    build="$(sha256sum "$bin/$t" | cut -c1-16)"
    done_before="$("${table[@]}" previous "$root/docs/fuzzing.md" "${crate%/fuzz}" "$t" "$build")"
    limit="$runs"
    if [ -n "$runs" ]; then
        limit=$((runs - done_before))
        if [ "$limit" -le 0 ]; then
            echo "$t: $done_before executions on this build already (goal $runs): not run"
            continue
        fi
        [ "$done_before" -eq 0 ] || echo "$t: $done_before executions on this build already; $limit to go"
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$fuzz/artifacts/$t.log"
    since="$fuzz/artifacts/$t.since"
    touch "$since"
    started=$SECONDS
    # The chain's target writes its hand-built seeds into its corpus first.
    SIGIL_FUZZ_SEEDS="corpus/$t" "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$per_target" ${limit:+-runs="$limit"} -timeout=10 -rss_limit_mb="$rss_limit" \
        -print_final_stats=1 >"$log" 2>&1 || true
    took=$((SECONDS - started))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    # Only inputs this run left (older ones are kept for replay, not counted again).
    crashes="$(find "artifacts/$t" -type f -newer "$since" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
    budget="${per_target} s${limit:+ or $limit executions}$sanitizer_note"
    [ "$crate" != chain/fuzz ] || budget="${per_target} s${limit:+ or $limit executions}, no sanitizer"
    executions="$(stat number_of_executed_units)"
    echo "$t: ${executions:-?} executions, cov ${cov:-?} / ft ${ft:-?}, $crashes crash inputs, $took s (build $build)"
    "${table[@]}" write "$root/docs/fuzzing.md" "$command_line" "$machine" "${crate%/fuzz}" "$t" \
        "$build" "${executions:-0}" "${cov:-}" "${ft:-}" "$crashes" "$(stat slowest_unit_time_sec)" \
        "$(stat peak_rss_mb)" "$budget" "$took" "$(date -u +%Y-%m-%d)"
done

echo "results written to docs/fuzzing.md"
