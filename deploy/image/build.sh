#!/usr/bin/env bash
# Builds the Sigil agent image from the pinned inputs (deploy/image/README.md).
#
# Usage: bash deploy/image/build.sh --out DIR [--agent PATH] [--verify PATH]
#   --agent   the sigil-agent executable to carry (default: the debug build,
#             ${CARGO_TARGET_DIR:-target}/debug/sigil-agent)
#   --verify  the sigil-verify executable that computes the measurements (default:
#             the debug build beside it)
# Environment: SOURCE_DATE_EPOCH (the initrd's mtime; default 0),
#   SIGIL_IMAGE_CACHE (fetched .debs; default deploy/image/.cache).
#
# Writes DIR/{vmlinuz,initrd.img,cmdline,OVMF.fd,manifest.json,policy-snp.toml,
# policy-tdx.toml}. The same inputs give the same bytes (deploy/image/check.sh
# checks it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"

out=""
agent="$target/debug/sigil-agent"
verify="$target/debug/sigil-verify"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --agent) agent="$2"; shift 2 ;;
    --verify) verify="$2"; shift 2 ;;
    -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$out" ]]; then
  echo "build.sh: --out DIR is required" >&2
  exit 2
fi
for tool in apt-get dpkg-deb ldd python3; do
  command -v "$tool" >/dev/null || { echo "build.sh: needs $tool (a Debian host)" >&2; exit 2; }
done
for exe in "$agent" "$verify"; do
  [[ -x "$exe" ]] || { echo "build.sh: no executable $exe (cargo build it first)" >&2; exit 2; }
done

export LC_ALL=C TZ=UTC
umask 022
exec python3 "$here/image.py" --out "$out" --agent "$agent" --verify "$verify" \
  --cache "${SIGIL_IMAGE_CACHE:-$here/.cache}"
