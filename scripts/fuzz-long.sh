#!/usr/bin/env bash
# Long fuzzing run of every verifier fuzz target (attestation-verifier/fuzz): the given hours
# are shared evenly among the targets, run one after another, and the results replace the
# table between the markers in docs/fuzzing.md: target, executions, coverage (libFuzzer's
# `cov` edges and `ft` features), crashes (inputs left in artifacts/<target>/), slowest unit
# and peak RSS. A crash stops that target's run (its input is kept); the others still run.
#
# Usage: scripts/fuzz-long.sh <hours> [target ...]     e.g. scripts/fuzz-long.sh 8
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
fuzz="$root/attestation-verifier/fuzz"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    toolchain=stable
    export RUSTC_BOOTSTRAP=1
fi
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

"$fuzz/seed.sh" >/dev/null
cd "$fuzz"
cargo "+$toolchain" fuzz build
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo "+$toolchain" fuzz list); fi
per_target="$(python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * 3600 / int(sys.argv[2]))))" "$hours" "${#targets[@]}")"

rows=()
for t in "${targets[@]}"; do
    step "$t for ${per_target} s"
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$fuzz/artifacts/$t.log"
    since="$fuzz/artifacts/$t.since"
    touch "$since"
    "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$per_target" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || true
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    # Only inputs this run left (older ones are kept for replay, not counted again).
    crashes="$(find "artifacts/$t" -type f -newer "$since" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
    row="| \`$t\` | $(stat number_of_executed_units) | ${cov:-?} / ${ft:-?} | $crashes | $(stat slowest_unit_time_sec) s | $(stat peak_rss_mb) MB |"
    echo "$row"
    rows+=("$row")
done

cd "$root"
table="$(mktemp)"
{
    echo "Command: \`scripts/fuzz-long.sh $hours${*:+ $*}\` ($per_target s per target, $(date -u +%Y-%m-%d), $(nproc) cores, $(rustup run "$toolchain" rustc --version))"
    echo
    echo "| target | executions | coverage (cov / ft) | crashes | slowest unit | peak RSS |"
    echo "|---|---|---|---|---|---|"
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
