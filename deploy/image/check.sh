#!/usr/bin/env bash
# The agent image's check (deploy/image/README.md), run by scripts/test.sh:
#   0. runs the builder's unit tests (deploy/image/test_image.py), the disk writers'
#      (test_disk.py) and the TPM log check's (test_tpm_check.py);
#   1. builds the image twice, into two empty directories (the second from another
#      directory, umask, time zone, locale and TMPDIR), and requires every output
#      byte-identical (cmp) and the manifest's digests to match the files;
#   2. applies its policy fragments with sigil-verify to a real SEV-SNP report and TDX
#      quote from the vectors: each must be rejected by the fragment's own rules, the
#      launch measurement among them (the fragment parsed and applied);
#   3. boots it under QEMU in TCG mode twice, as the direct-boot payload (q35, the
#      image's own OVMF.fd, -kernel, -initrd, -append from the image's cmdline file)
#      and as the disk (the same OVMF.fd starting the UKI from the disk's EFI system
#      partition), each with user networking forwarding a host port to the agent's, and
#      requires the agent to answer the gRPC health check (grpc.health.v1.Health/Check:
#      SERVING) within a fixed time; prints the boot times;
#   4. the disk boot has a software TPM 2.0 (swtpm, SHA-256 and SHA-384 banks): the
#      event log and PCRs the image's /init prints are checked by tpm_check.py (the log
#      replays to the PCRs; the UKI's PCR 4, PCR 11 and the kernel's PCR 9 events equal
#      the manifest's predictions; the disk fragments' events rules hold; a changed
#      command line or initrd is told apart);
#   5. signs the UKI for Secure Boot with sign.py (Debian's OVMF test key, "snakeoil",
#      from the pinned ovmf package: the signature is the only change and the pinned
#      measurements stay), boots the signed disk with Secure Boot enforced (OVMF's
#      secure-boot build with that key enrolled, SMM) to a SERVING agent, and requires the
#      same firmware to refuse the unsigned disk ("Access Denied").
#
# Usage: bash deploy/image/check.sh   (from anywhere; as root on a Debian host)
# Builds sigil-agent and sigil-verify (debug) when they are missing and installs QEMU
# (qemu-system-x86, qemu-utils), swtpm (swtpm, swtpm-tools), sbsigntool, openssl and the tools the
# disk tests read the disk back with (binutils, dosfstools, mtools, fdisk) when they are
# missing.
# SIGIL_IMAGE_BOOT_TIMEOUT: seconds the boot may take (default 180).
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
missing=()
for t in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils objdump:binutils fsck.fat:dosfstools \
  mcopy:mtools sfdisk:fdisk swtpm:swtpm swtpm_setup:swtpm-tools sbsign:sbsigntool openssl:openssl; do
  command -v "${t%%:*}" >/dev/null 2>&1 || [[ -x "/usr/sbin/${t%%:*}" ]] || missing+=("${t#*:}")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

work="$(mktemp -d)"
qemu_pid=""
swtpm_pid=""
cleanup() {
  for pid in "$qemu_pid" "$swtpm_pid"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

step "image: unit tests of the builder (cpio, modules, fragments, pinned digests)"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "$here" -p 'test_image.py'

step "image: unit tests of the disk writers (UKI, FAT32, GPT, VHD, tar.gz), read back by objdump, dosfstools, mtools, sfdisk, qemu-img"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "$here" -p 'test_disk.py'

step "image: unit tests of the TPM log check (a synthetic log: console, replay, predictions compared, a changed command line rejected)"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "$here" -p 'test_tpm_check.py'

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
python3 - "$work/build1" "$here" <<'PY'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
m = json.load(open(out / "manifest.json"))
for name, d in m["image"]["files"].items():
    data = (out / name).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest(), hashlib.sha384(data).hexdigest()) == \
        (d["size"], d["sha256"], d["sha384"]), f"manifest.json disagrees with {name}"
assert m["image"]["cmdline"] == (out / "cmdline").read_text()
sys.path.insert(0, sys.argv[2])
import disk
for name, d in m["disk"]["files"].items():
    assert disk.file_digests(out / name) == d, f"manifest.json disagrees with {name}"
print("TDX MRTD        ", m["tdx"]["mrtd"])
for e in m["tdx"]["boot_events"]:
    print(f"TDX RTMR{e['rtmr']} event  ", e["digest"], f"({e['what']})")
for e in m["tdx"]["uki_boot_events"]:
    if e["rtmr"] == 1:
        print("TDX RTMR1 UKI   ", e["digest"], "(the disk image)")
print("disk            ", m["disk"]["files"]["disk.raw"]["sha256"], f"(ESP {m['disk']['esp_bytes']} bytes)")
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
  # The disk image's fragment pins the UKI's RTMR1 event: a bare quote (no event log)
  # cannot show it.
  "$target/debug/sigil-verify" tdx --quote "$tdx_case/quote.bin" --collateral "$tdx_case/collateral.json" \
    --policy "$work/build1/policy-tdx-disk.toml" --at "$(at "$tdx_case")" --format json >"$work/tdx-disk.json"
  tdx_disk_rc=$?
  # The vTPM fragment pins the disk boot's PCR 4 and PCR 11 events: real Azure vTPM
  # evidence (a verified quote, but no event log) cannot show them.
  az_case="$vectors/measured/azure-vtpm/az-snp-milan-v1"
  "$target/debug/sigil-verify" azure-vtpm --evidence "$az_case/evidence.json" \
    --nonce "$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["expected"]["expected_nonce_hex"])' "$az_case/case.toml")" \
    --policy "$work/build1/policy-vtpm-disk.toml" --at "$(at "$az_case")" --format json >"$work/vtpm-disk.json"
  vtpm_disk_rc=$?
  set -e
  python3 - "$work" "$snp_rc" "$tdx_rc" "$tdx_disk_rc" "$vtpm_disk_rc" <<'PY'
import json, sys
work = sys.argv[1]
rcs = {"snp": int(sys.argv[2]), "tdx": int(sys.argv[3]), "tdx-disk": int(sys.argv[4]),
       "vtpm-disk": int(sys.argv[5])}
for name, rule in (("snp", "policy snp.measurements:"), ("tdx", "policy tdx.mrtds:"),
                   ("tdx-disk", "policy tdx.events"), ("vtpm-disk", "policy vtpm.events")):
    tee = name.split("-")[0]
    v = json.load(open(f"{work}/{name}.json"))
    reasons = v.get("reasons", [])
    ok = (rcs[name] == 1 and v.get("verdict") == "rejected" and any(r.startswith(rule) for r in reasons)
          and all(r.startswith(f"policy {tee}.") for r in reasons))
    print(f"policy-{name}.toml: exit {rcs[name]}, {v.get('verdict')}: {reasons}")
    if not ok:
        sys.exit(f"policy-{name}.toml: expected a rejection by its own rules, the measurement among them")
PY
else
  echo "SKIPPED: no vectors at $vectors (set SIGIL_VECTORS)"
fi

# boot NAME QEMU-ARGS...: starts the image under QEMU (TCG, q35, the image's OVMF.fd,
# user networking forwarding a free loopback port to the agent's 7443) and waits for
# the agent's gRPC health check to answer SERVING; prints the console's end and the time.
img="$work/build1"
# The firmware boot() starts (the image's OVMF.fd by default) and the machine type.
boot_fw=(-bios "$img/OVMF.fd")
boot_machine=q35
boot() {
  local name="$1"
  shift
  local port console="$work/console-$name.log" start=$SECONDS healthy=0
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # thread=single: one host thread runs both vCPUs. With a thread per vCPU, a vCPU could
  # run code another had just patched (the kernel's text_poke at boot) from a stale
  # translation and trap on the patch's int3 (seen once in about a dozen boots).
  qemu-system-x86_64 -accel tcg,thread=single -machine "$boot_machine" -cpu max -smp 2 -m 1536 \
    "${boot_fw[@]}" "$@" \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:7443" \
    -device virtio-net-pci,netdev=net0 \
    -display none -monitor none -serial "file:$console" -no-reboot &
  qemu_pid=$!
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
  local elapsed=$((SECONDS - start))
  echo "--- console (last 40 lines)"
  # Without the firmware's terminal control sequences.
  tail -n 40 "$console" | tr -d '\r' | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g'
  if ((healthy != 1)); then
    python3 "$here/grpc_health.py" 127.0.0.1 "$port" --timeout=3 || true
    echo "FAILED ($name): the agent did not answer its health check within ${boot_timeout} s" >&2
    exit 1
  fi
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  echo "$name: boot to a SERVING agent: ${elapsed} s (QEMU TCG, 2 vCPUs on one thread, OVMF)"
}

step "image: direct boot (-kernel, -initrd, -append) under QEMU (TCG) and the agent's gRPC health check"
boot direct -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$(cat "$img/cmdline")"

step "image: the disk (OVMF starts \\EFI\\BOOT\\BOOTX64.EFI, the UKI, from its EFI system partition) with a TPM (swtpm) under QEMU (TCG) and the agent's gRPC health check"
# A fresh TPM 2.0 with the SHA-256 bank (a cloud vTPM's) and the SHA-384 bank (the
# digests a TD's RTMRs take).
tpm="$work/tpm"
mkdir "$tpm"
swtpm_setup --tpm2 --tpmstate "$tpm" --pcr-banks sha256,sha384 --overwrite >"$work/swtpm_setup.log" 2>&1 ||
  { cat "$work/swtpm_setup.log" >&2; exit 1; }
swtpm socket --tpm2 --tpmstate "dir=$tpm" --ctrl "type=unixio,path=$tpm/sock" --terminate &
swtpm_pid=$!
for _ in $(seq 50); do [[ -S "$tpm/sock" ]] && break; sleep 0.1; done
# snapshot=on: the firmware's writes, if any, go to a temporary overlay, never to the image.
boot disk -drive "if=virtio,format=raw,file=$img/disk.raw,snapshot=on" \
  -chardev "socket,id=chrtpm,path=$tpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
  -device tpm-tis,tpmdev=tpm0
# swtpm ends when QEMU closes its connection (--terminate); stopped here in any case.
kill "$swtpm_pid" 2>/dev/null || true
wait "$swtpm_pid" 2>/dev/null || true
swtpm_pid=""

step "image: the disk boot's TPM event log against the manifest (replay, PCR 4/11/9 predictions, policy-vtpm-disk.toml and policy-tdx-disk.toml rules, a changed command line and initrd told apart, sigil-verify eventlog --tpm reading it alike)"
mkdir "$work/tpm-check"
start=$SECONDS
python3 "$here/tpm_check.py" --console "$work/console-disk.log" --image "$img" \
  --verify "$target/debug/sigil-verify" --scratch "$work/tpm-check"
echo "TPM check: $((SECONDS - start)) s"

step "image: the UKI signed for Secure Boot (sign.py, Debian's OVMF test key), the signed disk booted with Secure Boot enforced, the unsigned one refused"
# Debian's test key and the OVMF build that trusts it, from the pinned ovmf package the
# build fetched and checked (PkKek-1-snakeoil: PK, KEK and db of OVMF_VARS_4M.snakeoil.fd;
# its key's passphrase is "snakeoil", as Debian's README.Debian says).
ovmf_deb="$(python3 -c 'import sys, tomllib; p = [p for p in tomllib.load(open(sys.argv[1], "rb"))["package"] if p["name"] == "ovmf"][0]; print(p["version"])' "$here/inputs.lock")"
ovmf_deb="$(find "${SIGIL_IMAGE_CACHE:-$here/.cache}/debs" -name "ovmf_${ovmf_deb//:/%3a}_all.deb" | head -1)"
[[ -f "$ovmf_deb" ]] || { echo "FAILED: the pinned ovmf package is not in the build's cache" >&2; exit 1; }
dpkg-deb -x "$ovmf_deb" "$work/ovmf"
sb="$work/ovmf/usr/share"
openssl pkey -in "$sb/ovmf/PkKek-1-snakeoil.key" -passin pass:snakeoil -out "$work/db.key"
start=$SECONDS
python3 "$here/sign.py" --image "$img" --key "$work/db.key" --cert "$sb/ovmf/PkKek-1-snakeoil.pem" \
  --out "$work/signed" --verify "$target/debug/sigil-verify"
echo "signing and the disk written again: $((SECONDS - start)) s"
cp "$sb/OVMF/OVMF_VARS_4M.snakeoil.fd" "$work/vars-signed.fd"
cp "$sb/OVMF/OVMF_VARS_4M.snakeoil.fd" "$work/vars-unsigned.fd"
boot_machine=q35,smm=on
secure_fw() {
  boot_fw=(-global driver=cfi.pflash01,property=secure,value=on
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$sb/OVMF/OVMF_CODE_4M.snakeoil.fd"
    -drive "if=pflash,format=raw,unit=1,file=$1")
}
secure_fw "$work/vars-signed.fd"
boot secure-boot -drive "if=virtio,format=raw,file=$work/signed/disk.raw,snapshot=on"
# The same firmware and keys must refuse the unsigned UKI: its boot option is denied.
secure_fw "$work/vars-unsigned.fd"
console="$work/console-unsigned.log"
start=$SECONDS
qemu-system-x86_64 -accel tcg,thread=single -machine "$boot_machine" -cpu max -smp 2 -m 1536 \
  "${boot_fw[@]}" -drive "if=virtio,format=raw,file=$img/disk.raw,snapshot=on" -nic none \
  -display none -monitor none -serial "file:$console" -no-reboot &
qemu_pid=$!
refused=0
while ((SECONDS - start < boot_timeout)) && kill -0 "$qemu_pid" 2>/dev/null; do
  if [[ -f "$console" ]] && tr -d '\r' <"$console" | grep -q 'failed to load Boot.*"UEFI Misc Device".*Access Denied'; then
    refused=1
    break
  fi
  sleep 1
done
kill "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
if ((refused != 1)) || grep -q "sigil-agent\|Linux version" "$console"; then
  tail -n 20 "$console" | tr -d '\r' | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g'
  echo "FAILED: Secure Boot did not refuse the unsigned UKI" >&2
  exit 1
fi
tr -d '\r' <"$console" | grep -o 'failed to load Boot.*"UEFI Misc Device".*Access Denied' | head -1
echo "unsigned disk refused by Secure Boot: $((SECONDS - start)) s"
