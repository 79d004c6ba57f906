#!/usr/bin/env bash
# Long fuzzing run of every fuzz target of every fuzz crate (docs/fuzzing.md): the given hours
# are shared evenly among the targets, run one after another, and each target's row replaces
# its row of the table between the markers in docs/fuzzing.md (rows of targets not run are
# kept, with the run that made them): crate, target, executions, coverage (libFuzzer's `cov`
# edges and `ft` features), crashes (inputs left in <crate>/artifacts/<target>/), slowest unit,
# peak RSS, and the run (its budget, the time it took, the date). A crash stops that target's
# run (its input is kept); the others still run.
#
# Usage: scripts/fuzz-long.sh <hours> [target ...]     e.g. scripts/fuzz-long.sh 8
# SIGIL_FUZZ_RUNS=N: a target also stops after N executions (e.g. 10000000, the goal per
# target), whichever of the two comes first.
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

# write_row ROW: puts ROW into the table between the markers in docs/fuzzing.md (replacing
# the target's earlier row) and this run's command into the list above it (once), so that
# what finished is on record even if a later target's run is cut short.
command_line="${runs:+SIGIL_FUZZ_RUNS=$runs }${FUZZ_SANITIZER:+FUZZ_SANITIZER=$sanitizer }scripts/fuzz-long.sh $hours${*:+ $*}"
machine="$(nproc) cores, $(rustup run "$toolchain" rustc --version)"
write_row() {
    python3 - "$1" "$root/docs/fuzzing.md" "$command_line" "$machine" <<'PY'
import re, sys
row, doc_path, command, machine = sys.argv[1:5]
start, end = "<!-- fuzz-long:start -->", "<!-- fuzz-long:end -->"
doc = open(doc_path).read()
m = re.search(re.escape(start) + "(.*?)" + re.escape(end), doc, flags=re.S)
def key(row):
    cells = [c.strip().strip("`") for c in row.strip().strip("|").split("|")]
    return (cells[0], cells[1])
kept = {}
lines = m.group(1).splitlines() if m else []
header_seen = False
for line in lines:
    if line.startswith("| crate |"):
        header_seen = True
        continue
    if not line.startswith("| `"):
        continue
    cells = line.strip().strip("|").split("|")
    # Rows of the earlier seven-column layout get an unknown run.
    if len(cells) == 7:
        line = line.rstrip() + " an earlier run |"
    kept[key(line)] = line
commands = [l for l in lines if l.startswith("- `")]
kept[key(row)] = row
line = f"- `{command}` ({machine})"
if line not in commands:
    commands.append(line)
table = "\n".join([
    "Runs (the latest of each target is its row):",
    "",
    *commands,
    "",
    "| crate | target | executions | coverage (cov / ft) | crashes | slowest unit | peak RSS | run |",
    "|---|---|---|---|---|---|---|---|",
    *[kept[k] for k in sorted(kept)],
    "",
])
new = f"{start}\n{table}{end}"
if m:
    doc = doc[:m.start()] + new + doc[m.end():]
open(doc_path, "w").write(doc)
PY
}

for entry in "${selected[@]}"; do
    crate="${entry% *}"
    t="${entry#* }"
    fuzz="$root/$crate"
    cd "$fuzz"
    bin="$fuzz/$build_dir/x86_64-unknown-linux-gnu/release"
    [ "$crate" != chain/fuzz ] || bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
    step "$crate: $t for ${per_target} s"
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$fuzz/artifacts/$t.log"
    since="$fuzz/artifacts/$t.since"
    touch "$since"
    started=$SECONDS
    # The chain's target writes its hand-built seeds into its corpus first.
    SIGIL_FUZZ_SEEDS="corpus/$t" "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$per_target" ${runs:+-runs="$runs"} -timeout=10 -rss_limit_mb="$rss_limit" \
        -print_final_stats=1 >"$log" 2>&1 || true
    took=$((SECONDS - started))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    # Only inputs this run left (older ones are kept for replay, not counted again).
    crashes="$(find "artifacts/$t" -type f -newer "$since" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
    budget="${per_target} s${runs:+ or $runs executions}$sanitizer_note"
    [ "$crate" != chain/fuzz ] || budget="${per_target} s${runs:+ or $runs executions}, no sanitizer"
    row="| \`${crate%/fuzz}\` | \`$t\` | $(stat number_of_executed_units) | ${cov:-?} / ${ft:-?} | $crashes | $(stat slowest_unit_time_sec) s | $(stat peak_rss_mb) MB | $budget: $took s, $(date -u +%Y-%m-%d) |"
    echo "$row"
    write_row "$row"
done

echo "results written to docs/fuzzing.md"
