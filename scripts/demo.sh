#!/usr/bin/env bash
# Builds `sigil-verify` and verifies the real, public attestation evidence in ../shared/vectors
# (override with SIGIL_VECTORS), printing each verdict. What each case must give is read from its
# case.toml (expected verdict, verification time, facts).
# Exit status: 0 when every verdict matches the case's expected one.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SIGIL_VECTORS:=$(cd .. && pwd)/shared/vectors}"

cargo build --release --bin sigil-verify
bin=target/release/sigil-verify

first() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return; }; done; }

# What sigil-verify must say of a case, read from its case.toml: "<accepted|rejected> <time> <why>".
# Genuine evidence is still refused under the default policy where the case's own facts say so: a
# debug guest (SNP policy bit 19 / TDX TD_ATTRIBUTES bit 0) or an SGX quote offered as TDX
# (kind sgx); the vectors' README calls for exactly that.
expect() {
  python3 - "$1/case.toml" <<'PY'
import sys, tomllib
case = tomllib.load(open(sys.argv[1], "rb"))
exp, facts = case["expected"], case.get("facts", {})
want, why = ("accepted", "valid") if exp["verdict"] == "valid" else ("rejected", "invalid")
if want == "accepted":
    if case["kind"] == "snp" and int(facts.get("policy", "0"), 16) >> 19 & 1:
        want, why = "rejected", "debug guest (default policy)"
    elif case["kind"] == "sgx":
        want, why = "rejected", "SGX quote, not TDX"
    elif case["kind"] == "tdx" and int(facts.get("td_attributes", "00")[:2], 16) & 1:
        want, why = "rejected", "debug TD (default policy)"
print(want, exp["verification_time"], why)
PY
}

mismatches=0
check() { # case-dir command...
  local dir=$1; shift
  local want at why out rc=0
  read -r want at why <<<"$(expect "$dir")"
  out=$("$@" --at "$at" --format json 2>&1) || rc=$?
  local got=rejected; [ "$rc" = 0 ] && got=accepted
  printf '%-48s %-9s %s\n' "$(basename "$(dirname "$dir")")/$(basename "$dir")" "$got" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys
try:
    o=json.load(sys.stdin); print("; ".join(o["reasons"])[:110])
except Exception as e: print(sys.stdin.read()[:110])' 2>/dev/null)"
  if [ "$rc" -ge 2 ] || [ "$got" != "$want" ]; then
    mismatches=$((mismatches + 1)); echo "  ^ unexpected (case.toml: $want, $why)"
  fi
}

echo "== AMD SEV-SNP: sigil-verify snp (strict default policy)"
for dir in "$SIGIL_VECTORS"/snp/*/; do
  dir=${dir%/}
  cert=$(first "$dir"/vcek.der "$dir"/vlek.der)
  ask=$(first "$dir"/ask.pem "$dir"/asvk.pem)
  check "$dir" "$bin" snp --report "$dir/report.bin" --cert "$cert" --ask "$ask" --ark "$dir/ark.pem"
done

if "$bin" --help | grep -q '^  tdx'; then
  echo "== Intel TDX: sigil-verify tdx"
  for dir in "$SIGIL_VECTORS"/tdx/*/; do
    dir=${dir%/}
    [ -f "$dir/collateral.json" ] || continue
    check "$dir" "$bin" tdx --quote "$dir/quote.bin" --collateral "$dir/collateral.json"
  done
fi

if "$bin" --help | grep -q '^  gpu'; then
  # No RIMs matching these public reports' driver/VBIOS versions are published, so the
  # demo appraises them with a policy that does not require a RIM match (the default does).
  gpu_policy=$(mktemp)
  trap 'rm -f "$gpu_policy"' EXIT
  printf '[gpu]\nrim_match_required = false\n' > "$gpu_policy"
  echo "== NVIDIA H100: sigil-verify gpu (policy: rim_match_required = false)"
  for dir in "$SIGIL_VECTORS"/nvgpu/*/; do
    dir=${dir%/}
    check "$dir" "$bin" gpu --report "$dir/report.bin" --cert-chain "$dir/cert_chain.pem" \
      --nonce "$(tr -d ' \n' < "$dir/nonce.hex")" --policy "$gpu_policy"
  done
fi

echo
if [ "$mismatches" = 0 ]; then
  echo "every verdict matches the vectors' expected verdicts (a debug-enabled guest is refused by the default policy, as it should be)"
else
  echo "$mismatches verdict(s) differ from the vectors' expectations"; exit 1
fi
