#!/usr/bin/env bash
# sigil-bootstrap: first-boot installer for sigil-agent inside a confidential VM.
#
# Run by cloud-init (runcmd) after it has written:
#   /etc/sigil/bootstrap.env               settings (see below)
#   /etc/sigil/agent.toml                  the agent's configuration
#   /usr/local/lib/sigil/sigil-agent.service  the systemd unit to install
#
# Steps, each of which stops the boot of the agent when it fails:
#   1. check that the VM really runs in the TEE it was created for;
#   2. download the pinned agent release and verify its SHA-256 before
#      anything from it is installed;
#   3. where an NVIDIA GPU is present: install the driver if missing, check that
#      the GPU is in confidential-computing mode and set its ready state;
#   4. generate the agent's TLS key and self-signed certificate inside the VM;
#   5. install the systemd unit, enable and start the agent;
#   6. wait for the agent's `attested: tee=... measurement=... key=...` line
#      and print it to the console.
#
# Settings (bootstrap.env, shell assignments written by Terraform):
#   SIGIL_AGENT_URL            release URL (.tar.gz/.tgz archive containing
#                              `sigil-agent`, or the bare binary)
#   SIGIL_AGENT_SHA256         lowercase hex SHA-256 of what the URL serves
#   SIGIL_EXPECTED_TEE         SEV-SNP | TDX | any
#   SIGIL_GPU_MODE             auto | required | none
#   SIGIL_NVIDIA_DRIVER_BRANCH e.g. 570 (empty: never install a driver)
#   SIGIL_ATTEST_TIMEOUT       seconds to wait for the attested line
#
# Every path is prefixed by SIGIL_ROOT (empty in production) and every external
# command can be replaced through SIGIL_<COMMAND>, so the whole flow can be run
# unprivileged against a directory tree.
set -Eeuo pipefail
umask 022

readonly ENV_FILE="${SIGIL_BOOTSTRAP_ENV:-/etc/sigil/bootstrap.env}"
readonly ROOT="${SIGIL_ROOT:-}"

log() { printf 'sigil-bootstrap: %s\n' "$*"; }
die() {
  printf 'sigil-bootstrap: error: %s\n' "$*" >&2
  exit 1
}

[[ -r "$ENV_FILE" ]] || die "settings file $ENV_FILE is missing"
# shellcheck source=/dev/null
. "$ENV_FILE"

: "${SIGIL_AGENT_URL:?SIGIL_AGENT_URL is not set}"
: "${SIGIL_AGENT_SHA256:?SIGIL_AGENT_SHA256 is not set}"
SIGIL_EXPECTED_TEE="${SIGIL_EXPECTED_TEE:-any}"
SIGIL_GPU_MODE="${SIGIL_GPU_MODE:-auto}"
SIGIL_NVIDIA_DRIVER_BRANCH="${SIGIL_NVIDIA_DRIVER_BRANCH:-}"
SIGIL_ATTEST_TIMEOUT="${SIGIL_ATTEST_TIMEOUT:-600}"
# Protocols curl may use for the release; production allows only HTTPS.
SIGIL_URL_PROTO="${SIGIL_URL_PROTO:-=https}"

SYSTEMCTL="${SIGIL_SYSTEMCTL:-systemctl}"
JOURNALCTL="${SIGIL_JOURNALCTL:-journalctl}"
NVIDIA_SMI="${SIGIL_NVIDIA_SMI:-nvidia-smi}"
LSPCI="${SIGIL_LSPCI:-lspci}"
MODPROBE="${SIGIL_MODPROBE:-modprobe}"
APT_GET="${SIGIL_APT_GET:-apt-get}"
DMESG="${SIGIL_DMESG:-dmesg}"
CURL="${SIGIL_CURL:-curl}"
OPENSSL="${SIGIL_OPENSSL:-openssl}"
SLEEP="${SIGIL_SLEEP:-sleep}"

readonly AGENT_BIN="$ROOT/usr/local/bin/sigil-agent"
readonly AGENT_CONFIG="$ROOT/etc/sigil/agent.toml"
readonly UNIT_SOURCE="$ROOT/usr/local/lib/sigil/sigil-agent.service"
readonly UNIT_TARGET="$ROOT/etc/systemd/system/sigil-agent.service"
readonly MARKER="$ROOT/var/lib/sigil-bootstrap/installed"
readonly TLS_DIR="$ROOT/etc/sigil/tls"

[[ "$SIGIL_AGENT_SHA256" =~ ^[0-9a-f]{64}$ ]] ||
  die "SIGIL_AGENT_SHA256 must be 64 lowercase hex digits"
case "$SIGIL_EXPECTED_TEE" in SEV-SNP | TDX | any) ;; *) die "SIGIL_EXPECTED_TEE must be SEV-SNP, TDX or any" ;; esac
case "$SIGIL_GPU_MODE" in auto | required | none) ;; *) die "SIGIL_GPU_MODE must be auto, required or none" ;; esac
[[ "$SIGIL_ATTEST_TIMEOUT" =~ ^[0-9]+$ ]] || die "SIGIL_ATTEST_TIMEOUT must be a number of seconds"

# --- 1. TEE ------------------------------------------------------------------

kernel_log() { "$DMESG" 2>/dev/null || true; }

# Prints SEV-SNP, TDX or none. Direct guest devices first (GCP, bare KVM);
# then the kernel's own report, which is the only signal on Azure, where a
# paravisor owns the SEV-SNP/TDX guest interface and the VM sees a vTPM.
detect_tee() {
  "$MODPROBE" sev-guest >/dev/null 2>&1 || true
  "$MODPROBE" tdx-guest >/dev/null 2>&1 || true
  if [[ -e "$ROOT/dev/sev-guest" ]]; then
    echo SEV-SNP
    return
  fi
  if [[ -e "$ROOT/dev/tdx_guest" ]] || grep -qw tdx_guest "$ROOT/proc/cpuinfo" 2>/dev/null; then
    echo TDX
    return
  fi
  local klog
  klog="$(kernel_log)"
  if grep -qE 'Isolation Type: SNP|Memory Encryption Features active:.*SEV-SNP' <<<"$klog"; then
    echo SEV-SNP
  elif grep -qE 'Isolation Type: TDX|Memory Encryption Features active: Intel TDX' <<<"$klog"; then
    echo TDX
  else
    echo none
  fi
}

tee_kind="$(detect_tee)"
log "TEE detected: $tee_kind (expected: $SIGIL_EXPECTED_TEE)"
if [[ "$SIGIL_EXPECTED_TEE" != any && "$tee_kind" != "$SIGIL_EXPECTED_TEE" ]]; then
  die "this VM does not run in a $SIGIL_EXPECTED_TEE guest (found: $tee_kind); refusing to start the agent"
fi

# configfs-tsm (Linux >= 6.7) is where the agent asks for reports.
if [[ -z "$ROOT" ]] && ! mountpoint -q /sys/kernel/config; then
  mount -t configfs none /sys/kernel/config 2>/dev/null || log "configfs not mounted; the agent will use the guest device"
fi

# --- 2. Release: download, verify, install ----------------------------------

installed_sha=""
[[ -r "$MARKER" ]] && installed_sha="$(sed -n '1s/ .*//p' "$MARKER")"
if [[ "$installed_sha" == "$SIGIL_AGENT_SHA256" && -x "$AGENT_BIN" ]] &&
  [[ "$(sed -n 2p "$MARKER")" == "$(sha256sum "$AGENT_BIN" | cut -d' ' -f1)" ]]; then
  log "sigil-agent from release $SIGIL_AGENT_SHA256 already installed"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  log "downloading $SIGIL_AGENT_URL"
  "$CURL" --fail --silent --show-error --location --proto "$SIGIL_URL_PROTO" \
    --proto-redir "$SIGIL_URL_PROTO" --retry 5 --retry-delay 3 --connect-timeout 20 \
    --max-time 900 --output "$work/release" "$SIGIL_AGENT_URL" ||
    die "download of $SIGIL_AGENT_URL failed"
  actual="$(sha256sum "$work/release" | cut -d' ' -f1)"
  if [[ "$actual" != "$SIGIL_AGENT_SHA256" ]]; then
    die "checksum mismatch for $SIGIL_AGENT_URL: expected $SIGIL_AGENT_SHA256, got $actual; nothing installed"
  fi
  log "checksum verified: $actual"

  url_path="${SIGIL_AGENT_URL%%[?#]*}"
  case "$url_path" in
  *.tar.gz | *.tgz)
    mkdir "$work/unpacked"
    tar -xzf "$work/release" -C "$work/unpacked" --no-same-owner --no-same-permissions ||
      die "release archive could not be unpacked"
    mapfile -t found < <(find "$work/unpacked" -type f -name sigil-agent)
    [[ "${#found[@]}" -eq 1 ]] || die "release archive must hold exactly one sigil-agent file (found ${#found[@]})"
    binary="${found[0]}"
    ;;
  *) binary="$work/release" ;;
  esac
  install -D -m 0755 "$binary" "$AGENT_BIN"
  mkdir -p "$(dirname "$MARKER")"
  printf '%s %s\n%s\n' "$SIGIL_AGENT_SHA256" "$SIGIL_AGENT_URL" \
    "$(sha256sum "$AGENT_BIN" | cut -d' ' -f1)" >"$MARKER"
  log "installed sigil-agent to ${AGENT_BIN#"$ROOT"}"
fi

# --- 3. GPU confidential computing ------------------------------------------

gpu_present() {
  "$LSPCI" -d 10de: 2>/dev/null | grep -qiE '3D controller|VGA compatible controller'
}

install_nvidia_driver() {
  local branch="$1" kernel
  kernel="$(uname -r)"
  log "installing NVIDIA driver branch $branch (open kernel modules, signed for $kernel)"
  DEBIAN_FRONTEND=noninteractive "$APT_GET" update -q
  DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q --no-install-recommends \
    "linux-modules-nvidia-${branch}-server-open-${kernel}" \
    "nvidia-utils-${branch}-server" "nvidia-compute-utils-${branch}-server" ||
    die "NVIDIA driver $branch could not be installed for kernel $kernel"
  "$MODPROBE" nvidia || die "the nvidia kernel module does not load"
}

if [[ "$SIGIL_GPU_MODE" != none ]] && gpu_present; then
  log "NVIDIA GPU present"
  if ! command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
    [[ -n "$SIGIL_NVIDIA_DRIVER_BRANCH" ]] || die "no NVIDIA driver installed and no driver branch configured"
    install_nvidia_driver "$SIGIL_NVIDIA_DRIVER_BRANCH"
  fi
  # Persistence keeps the GPU initialised (and its CC state) between clients.
  "$SYSTEMCTL" enable --now nvidia-persistenced.service >/dev/null 2>&1 ||
    log "nvidia-persistenced not started; continuing"
  cc_status="$("$NVIDIA_SMI" conf-compute -f 2>&1 || true)"
  log "GPU ${cc_status//$'\n'/ }"
  if ! grep -qiE 'CC status: *ON' <<<"$cc_status"; then
    die "GPU confidential-computing mode is not ON; refusing to offer this GPU"
  fi
  # Until the ready state is set the driver refuses CUDA work in CC mode.
  "$NVIDIA_SMI" conf-compute -srs 1 >/dev/null || die "could not set the GPUs-ready state"
  ready="$("$NVIDIA_SMI" conf-compute -grs 2>&1 || true)"
  grep -qiE 'ready state: *ready' <<<"$ready" || die "GPUs-ready state not set: ${ready//$'\n'/ }"
  log "GPU confidential-computing ready state set"
elif [[ "$SIGIL_GPU_MODE" == required ]]; then
  die "this shape must have an NVIDIA GPU, and none was found"
else
  log "no GPU in use"
fi

# --- 4. TLS -------------------------------------------------------------------

# The gRPC listener needs a certificate. It is made here so that its key never
# exists outside the VM; buyers check the agent through its attestation, and can
# pin this fingerprint.
if [[ ! -s "$TLS_DIR/key.pem" || ! -s "$TLS_DIR/cert.pem" ]]; then
  install -d -m 0700 "$TLS_DIR"
  san="DNS:sigil-agent,DNS:$(hostname 2>/dev/null || echo localhost)"
  for ip in $(hostname -I 2>/dev/null || true); do san+=",IP:$ip"; done
  (umask 077 && "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -sha256 -days 825 -subj "/CN=sigil-agent" -addext "subjectAltName=$san" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >/dev/null 2>&1) ||
    die "could not generate the TLS certificate"
fi
fingerprint="$("$OPENSSL" x509 -in "$TLS_DIR/cert.pem" -noout -fingerprint -sha256)" ||
  die "TLS certificate ${TLS_DIR#"$ROOT"}/cert.pem is unreadable"
log "TLS certificate ${fingerprint#*=}"

# --- 5. systemd unit ---------------------------------------------------------

[[ -r "$AGENT_CONFIG" ]] || die "agent configuration ${AGENT_CONFIG#"$ROOT"} is missing"
[[ -r "$UNIT_SOURCE" ]] || die "systemd unit ${UNIT_SOURCE#"$ROOT"} is missing"
install -D -m 0644 "$UNIT_SOURCE" "$UNIT_TARGET"
"$SYSTEMCTL" daemon-reload
"$SYSTEMCTL" enable --now sigil-agent.service
log "sigil-agent.service enabled and started"

# --- 6. Wait for the attested start ------------------------------------------

deadline=$((SECONDS + SIGIL_ATTEST_TIMEOUT))
while :; do
  line="$("$JOURNALCTL" --unit sigil-agent.service --output cat --no-pager 2>/dev/null |
    grep -m1 -oE 'attested:? tee=[^ ",]+ measurement=[0-9a-fA-F]+ key=[0-9a-fA-F]+' || true)"
  if [[ -n "$line" ]]; then
    log "agent $line"
    exit 0
  fi
  if "$SYSTEMCTL" is-failed --quiet sigil-agent.service; then
    "$JOURNALCTL" --unit sigil-agent.service --output cat --no-pager -n 30 >&2 || true
    die "sigil-agent.service failed before it attested"
  fi
  if ((SECONDS >= deadline)); then
    die "sigil-agent did not report an attested start within ${SIGIL_ATTEST_TIMEOUT}s"
  fi
  "$SLEEP" 2
done
