#!/usr/bin/env bash
# The agent image's check (deploy/image/README.md), run by scripts/test.sh:
#   0. runs the builder's unit tests (deploy/image/test_image.py);
#   1. builds the image twice, into two empty directories (the second from another
#      directory, umask, time zone, locale and TMPDIR), and requires every output
#      byte-identical (cmp) and the manifest's digests to match the files;
#   2. applies its policy fragments with sigil-verify to a real SEV-SNP report and TDX
#      quote from the vectors: each must be rejected by the fragment's own rules, the
#      launch measurement among them (the fragment parsed and applied);
#   3. boots it once under QEMU in TCG mode (q35, the image's own OVMF.fd, -kernel,
#      -initrd, -append from the image's cmdline file, user networking with a host
#      forward to the agent's port) and requires the agent to answer the gRPC health
#      check (grpc.health.v1.Health/Check: SERVING) within a fixed time; prints the
#      boot time.
#
# Usage: bash deploy/image/check.sh   (from anywhere; as root on a Debian host)
# Builds sigil-agent and sigil-verify (debug) when they are missing and installs QEMU
# (qemu-system-x86) when it is missing. SIGIL_IMAGE_BOOT_TIMEOUT: seconds the boot
# may take (default 180).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
boot_timeout="${SIGIL_IMAGE_BOOT_TIMEOUT:-180}"

step() { printf '\n--- %s\n' "$*"; }

if [[ ! -x "$target/debug/sigil-agent" ]]; then
  cargo build -p enclave-agent --bin sigil-agent
fi
if [[ ! -x "$target/debug/sigil-verify" ]]; then
  cargo build -p attestation-verifier --bin sigil-verify
fi
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
fi

work="$(mktemp -d)"
qemu_pid=""
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step "image: unit tests of the builder (cpio, modules, fragments, pinned digests)"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "$here" -p 'test_*.py'

step "image: two builds from the pinned inputs must be byte-identical"
# The second build runs from another directory with another umask, time zone, locale
# and temporary directory: none of them may reach the output.
mkdir "$work/tmp2"
start=$SECONDS
bash "$here/build.sh" --out "$work/build1"
echo "build 1: $((SECONDS - start)) s"
start=$SECONDS
(cd / && umask 077 && TZ=Pacific/Chatham LC_ALL=C.UTF-8 TMPDIR="$work/tmp2" \
  bash "$here/build.sh" --out "$work/build2")
echo "build 2: $((SECONDS - start)) s"
diff <(cd "$work/build1" && ls -A) <(cd "$work/build2" && ls -A)
for f in "$work"/build1/*; do
  name="$(basename "$f")"
  cmp "$f" "$work/build2/$name"
  printf '%-14s %10d bytes  sha256 %s\n' "$name" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done
echo "identical: $(find "$work/build1" -type f | wc -l) files"
python3 - "$work/build1" <<'PY'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
m = json.load(open(out / "manifest.json"))
for name, d in m["image"]["files"].items():
    data = (out / name).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest(), hashlib.sha384(data).hexdigest()) == \
        (d["size"], d["sha256"], d["sha384"]), f"manifest.json disagrees with {name}"
assert m["image"]["cmdline"] == (out / "cmdline").read_text()
print("TDX MRTD        ", m["tdx"]["mrtd"])
for e in m["tdx"]["boot_events"]:
    print(f"TDX RTMR{e['rtmr']} event  ", e["digest"], f"({e['what']})")
for r in m["snp"]["measurements"]:
    print(f"SNP {r['vcpus']} vCPU {r['vcpu_type']} features {r['guest_features']:<4}", r["measurement"])
print("SNP kernel hashes", "computed" if m["snp"]["kernel_hashes"]["computed"] else
      "not computable: " + m["snp"]["kernel_hashes"]["refusal"]["code"])
print("agent_digest    ", m["agent"]["agent_digest"])
print("config_digest   ", m["agent"]["config_digest"])
PY

step "image: the policy fragments are policies sigil-verify applies (real evidence from the vectors is rejected by their rules, its launch measurement among them)"
vectors="${SIGIL_VECTORS:-$(cd "$repo/.." && pwd)/shared/vectors}"
snp_case="$vectors/snp/milan-v2-virtee-sev"
tdx_case="$vectors/tdx/tdx-v4-dcap-qvl-sample"
if [[ -d "$snp_case" && -d "$tdx_case" ]]; then
  at() { python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["expected"]["verification_time"])' "$1/case.toml"; }
  set +e
  "$target/debug/sigil-verify" snp --report "$snp_case/report.bin" --cert "$snp_case/vcek.der" \
    --ask "$snp_case/ask.pem" --ark "$snp_case/ark.pem" --policy "$work/build1/policy-snp.toml" \
    --at "$(at "$snp_case")" --format json >"$work/snp.json"
  snp_rc=$?
  "$target/debug/sigil-verify" tdx --quote "$tdx_case/quote.bin" --collateral "$tdx_case/collateral.json" \
    --policy "$work/build1/policy-tdx.toml" --at "$(at "$tdx_case")" --format json >"$work/tdx.json"
  tdx_rc=$?
  set -e
  python3 - "$work" "$snp_rc" "$tdx_rc" <<'PY'
import json, sys
work, rcs = sys.argv[1], dict(snp=int(sys.argv[2]), tdx=int(sys.argv[3]))
for tee, rule in (("snp", "policy snp.measurements:"), ("tdx", "policy tdx.mrtds:")):
    v = json.load(open(f"{work}/{tee}.json"))
    reasons = v.get("reasons", [])
    ok = (rcs[tee] == 1 and v.get("verdict") == "rejected" and any(r.startswith(rule) for r in reasons)
          and all(r.startswith(f"policy {tee}.") for r in reasons))
    print(f"policy-{tee}.toml: exit {rcs[tee]}, {v.get('verdict')}: {reasons}")
    if not ok:
        sys.exit(f"policy-{tee}.toml: expected a rejection by its own rules, the measurement among them")
PY
else
  echo "SKIPPED: no vectors at $vectors (set SIGIL_VECTORS)"
fi

step "image: boot under QEMU (TCG) and the agent's gRPC health check"
img="$work/build1"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
console="$work/console.log"
start=$SECONDS
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 1536 \
  -bios "$img/OVMF.fd" -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
  -append "$(cat "$img/cmdline")" \
  -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:7443" \
  -device virtio-net-pci,netdev=net0 \
  -display none -monitor none -serial "file:$console" -no-reboot &
qemu_pid=$!
healthy=0
while ((SECONDS - start < boot_timeout)); do
  if ! kill -0 "$qemu_pid" 2>/dev/null; then
    echo "QEMU exited after $((SECONDS - start)) s" >&2
    break
  fi
  if python3 "$here/grpc_health.py" 127.0.0.1 "$port" --timeout=3 2>/dev/null; then
    healthy=1
    break
  fi
  sleep 2
done
elapsed=$((SECONDS - start))
echo "--- console (last 40 lines)"
# Without the firmware's terminal control sequences.
tail -n 40 "$console" | tr -d '\r' | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g'
if ((healthy != 1)); then
  python3 "$here/grpc_health.py" 127.0.0.1 "$port" --timeout=3 || true
  echo "FAILED: the agent did not answer its health check within ${boot_timeout} s" >&2
  exit 1
fi
echo "boot to a SERVING agent: ${elapsed} s (QEMU TCG, 2 vCPUs, OVMF)"
