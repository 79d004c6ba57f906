#!/usr/bin/env bash
# Long fuzzing run of every fuzz target of every fuzz crate (docs/fuzzing.md): the given hours
# are shared evenly among the targets, run one after another, and the results replace the
# table between the markers in docs/fuzzing.md: crate, target, executions, coverage
# (libFuzzer's `cov` edges and `ft` features), crashes (inputs left in
# <crate>/artifacts/<target>/), slowest unit and peak RSS. A crash stops that target's run
# (its input is kept); the others still run.
#
# Usage: scripts/fuzz-long.sh <hours> [target ...]     e.g. scripts/fuzz-long.sh 8
# A target is a name of any crate's `cargo fuzz list` (`snp_report`, `job_spec`), or
# `<crate>:<name>` (`job-spec:job_spec`) where a name is in several crates; a crate is named by
# its directory without `/fuzz`. The chain's target runs only when named
# (`chain:market_calls`): its first build compiles the runtime's polkadot-sdk graph with
# coverage instrumentation (about an hour on two cores), without AddressSanitizer.
# Environment as scripts/fuzz-smoke.sh (SIGIL_VECTORS, FUZZ_TOOLCHAIN).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/lib.sh
[ $# -ge 1 ] || fail "usage: scripts/fuzz-long.sh <hours> [target ...]"
hours="$1"
shift
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
    (cd "$root/$crate" && cargo "+$toolchain" fuzz build)
done

rows=()
for entry in "${selected[@]}"; do
    crate="${entry% *}"
    t="${entry#* }"
    fuzz="$root/$crate"
    cd "$fuzz"
    bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
    step "$crate: $t for ${per_target} s"
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$fuzz/artifacts/$t.log"
    since="$fuzz/artifacts/$t.since"
    touch "$since"
    # The chain's target writes its hand-built seeds into its corpus first.
    SIGIL_FUZZ_SEEDS="corpus/$t" "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || true
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    # Only inputs this run left (older ones are kept for replay, not counted again).
    crashes="$(find "artifacts/$t" -type f -newer "$since" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
    row="| \`${crate%/fuzz}\` | \`$t\` | $(stat number_of_executed_units) | ${cov:-?} / ${ft:-?} | $crashes | $(stat slowest_unit_time_sec) s | $(stat peak_rss_mb) MB |"
    echo "$row"
    rows+=("$row")
done

cd "$root"
table="$(mktemp)"
{
    echo "Command: \`scripts/fuzz-long.sh $hours${*:+ $*}\` ($per_target s per target, $(date -u +%Y-%m-%d), $(nproc) cores, $(rustup run "$toolchain" rustc --version))"
    echo
    echo "| crate | target | executions | coverage (cov / ft) | crashes | slowest unit | peak RSS |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >"$table"
python3 - "$table" docs/fuzzing.md <<'PY'
import re, sys
table = open(sys.argv[1]).read()
doc = open(sys.argv[2]).read()
start, end = "<!-- fuzz-long:start -->", "<!-- fuzz-long:end -->"
new = f"{start}\n{table}{end}"
doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: new, doc, flags=re.S)
open(sys.argv[2], "w").write(doc)
PY
rm -f "$table"
echo "results written to docs/fuzzing.md"
