"""The shared bootstrap: rendered cloud-init, agent config, systemd unit, and the
first-boot script run for real against a directory tree with stand-in commands."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import BOOTSTRAP_SCRIPT, MODULES_DIR, UNIT_FILE, VariableHarness, run_tf

SHA = "c" * 64
MINIMAL_INPUTS = {
    "agent_release_url": "https://releases.example.org/v1/sigil-agent.tar.gz",
    "agent_release_sha256": SHA,
    "expected_tee": "SEV-SNP",
}
ATTESTED = "attested: tee=SEV-SNP measurement=9f86d081884c7d65 key=2c26b46b68ffc68f"


# --- systemd unit --------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_runs_the_installed_agent_hardened_works():
    s = unit_settings()
    assert s["ExecStart"] == ["/usr/local/bin/sigil-agent --config /etc/sigil/agent.toml"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["StateDirectory"] == ["sigil-agent"]
    assert s["Restart"] == ["on-failure"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["WantedBy"] == ["multi-user.target"]


def test_script_installs_where_the_unit_looks_works():
    script = BOOTSTRAP_SCRIPT.read_text()
    assert 'AGENT_BIN="$ROOT/usr/local/bin/sigil-agent"' in script
    assert 'AGENT_CONFIG="$ROOT/etc/sigil/agent.toml"' in script
    assert "sigil-agent.service" in script


def test_script_verifies_the_checksum_before_installing_works():
    script = BOOTSTRAP_SCRIPT.read_text()
    verify = script.index('if [[ "$actual" != "$SIGIL_AGENT_SHA256" ]]')
    install = script.index('install -D -m 0755 "$binary" "$AGENT_BIN"')
    download = script.index('--output "$work/release"')
    assert download < verify < install
    assert script.index("conf-compute -srs 1") < script.index("enable --now sigil-agent.service")


def test_script_syntax_works():
    subprocess.run(["bash", "-n", str(BOOTSTRAP_SCRIPT)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-S", "warning", str(BOOTSTRAP_SCRIPT)], check=True)


# --- rendered cloud-init ---------------------------------------------------------


def render(terraform: str, tmp: Path, **inputs) -> dict:
    """Applies a root module that calls agent-bootstrap (no provider needed)."""
    source = os.path.relpath(MODULES_DIR / "agent-bootstrap", tmp)
    args = {
        "agent_release_url": "https://releases.example.org/v1/sigil-agent.tar.gz",
        "agent_release_sha256": SHA,
        "expected_tee": "SEV-SNP",
    }
    args.update(inputs)
    body = "\n".join(f"  {k} = {hcl(v)}" for k, v in args.items())
    (tmp / "main.tf").write_text(
        f'module "b" {{\n  source = "{source}"\n{body}\n}}\n'
        'output "cloud_init" {\n  value     = module.b.cloud_init\n  sensitive = true\n}\n'
        'output "agent_config" {\n  value = module.b.agent_config\n}\n'
    )
    for cmd in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-input=false", "-no-color"]):
        result = run_tf(terraform, tmp, *cmd)
        if result.returncode != 0:
            raise RenderError(result.stderr)
    out = run_tf(terraform, tmp, "output", "-json")
    assert out.returncode == 0, out.stderr
    import json

    values = {k: v["value"] for k, v in json.loads(out.stdout).items()}
    text = values["cloud_init"]
    assert text.startswith("#cloud-config\n")
    return {"cloud_init": yaml.safe_load(text), "raw": text, "agent_config": values["agent_config"]}


class RenderError(Exception):
    pass


def hcl(value) -> str:
    import json

    return json.dumps(value)


def files_by_path(doc: dict) -> dict[str, dict]:
    return {f["path"]: f for f in doc["cloud_init"]["write_files"]}


def test_cloud_init_writes_config_unit_and_script_works(terraform, tmp_path):
    doc = render(terraform, tmp_path)
    files = files_by_path(doc)
    assert set(files) == {
        "/etc/sigil/agent.toml",
        "/etc/sigil/bootstrap.env",
        "/usr/local/lib/sigil/sigil-agent.service",
        "/usr/local/lib/sigil/sigil-bootstrap.sh",
    }
    assert files["/etc/sigil/agent.toml"]["permissions"] == "0640"
    assert files["/etc/sigil/bootstrap.env"]["permissions"] == "0600"
    assert files["/usr/local/lib/sigil/sigil-bootstrap.sh"]["permissions"] == "0755"
    assert files["/usr/local/lib/sigil/sigil-agent.service"]["content"] == UNIT_FILE.read_text()
    assert files["/usr/local/lib/sigil/sigil-bootstrap.sh"]["content"] == BOOTSTRAP_SCRIPT.read_text()
    assert doc["cloud_init"]["runcmd"] == [["/usr/local/lib/sigil/sigil-bootstrap.sh"]]
    env = files["/etc/sigil/bootstrap.env"]["content"]
    assert f"SIGIL_AGENT_SHA256='{SHA}'" in env
    assert "SIGIL_AGENT_URL='https://releases.example.org/v1/sigil-agent.tar.gz'" in env
    assert "SIGIL_EXPECTED_TEE='SEV-SNP'" in env
    # GCP user-data has room for 256 KiB, Azure custom_data for 64 KiB.
    assert len(doc["raw"].encode()) < 48 * 1024


def test_agent_config_is_valid_toml_with_the_inputs_works(terraform, tmp_path):
    buyer = "ab" * 32
    doc = render(
        terraform,
        tmp_path,
        expected_tee="TDX",
        grpc_port=8443,
        gpu_mode="required",
        buyer_keys=[buyer],
        container_engine="podman",
        extra_config="[jobs]\nmax_concurrent = 2",
    )
    config = tomllib.loads(files_by_path(doc)["/etc/sigil/agent.toml"]["content"])
    assert config == tomllib.loads(doc["agent_config"])
    # The agent's schema (enclave-agent/src/config.rs) refuses unknown keys.
    assert set(config) == {
        "listen", "allow_plaintext", "metrics_listen", "state_dir",
        "tls", "auth", "evidence", "gpus", "container", "log", "jobs",
    }
    assert config["listen"] == "0.0.0.0:8443"
    assert config["allow_plaintext"] is False
    assert config["metrics_listen"] == "127.0.0.1:9464"
    assert config["state_dir"] == "/var/lib/sigil-agent"
    assert config["tls"] == {"cert": "/etc/sigil/tls/cert.pem", "key": "/etc/sigil/tls/key.pem"}
    assert config["auth"] == {"buyer_keys": [buyer]}
    assert config["evidence"] == {"backend": "auto", "default_mode": "attested-key", "allow_simulated": False}
    assert config["gpus"] == {"enabled": True}
    assert config["container"] == {"engine": "podman"}
    assert config["log"] == {"format": "text", "filter": "info"}
    assert config["jobs"] == {"max_concurrent": 2}
    assert "podman" in doc["cloud_init"]["packages"]
    env = files_by_path(doc)["/etc/sigil/bootstrap.env"]["content"]
    assert "SIGIL_EXPECTED_TEE='TDX'" in env and "SIGIL_GPU_MODE='required'" in env


def test_cpu_shape_config_has_gpus_off_and_no_container_engine_works(terraform, tmp_path):
    doc = render(terraform, tmp_path, gpu_mode="none")
    config = tomllib.loads(doc["agent_config"])
    assert config["gpus"] == {"enabled": False}
    assert "container" not in config
    assert config["auth"] == {"buyer_keys": []}
    assert doc["cloud_init"]["packages"] == ["ca-certificates", "curl", "openssl", "pciutils"]


def test_token_goes_to_a_private_file_not_the_config_works(terraform, tmp_path):
    token = "tok_" + "x" * 40
    doc = render(terraform, tmp_path, api_token=token)
    files = files_by_path(doc)
    assert files["/etc/sigil/api-token"]["permissions"] == "0600"
    assert files["/etc/sigil/api-token"]["content"] == token
    config = tomllib.loads(files["/etc/sigil/agent.toml"]["content"])
    assert config["auth"]["token_file"] == "/etc/sigil/api-token"
    assert token not in doc["agent_config"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent_release_sha256", "C" * 64),
        ("agent_release_sha256", "c" * 63),
        ("agent_release_url", "http://releases.example.org/sigil-agent"),
        ("agent_release_url", "https://releases.example.org/x'; rm -rf /; '"),
        ("agent_release_url", "https://releases.example.org/a b"),
        ("expected_tee", "SEV"),
        ("grpc_port", 80),
        ("chain_rpc_url", "https://rpc.example.org"),
        ("buyer_keys", ["abcd"]),
        ("container_engine", "nerdctl"),
        ("log_format", "pretty"),
        ("api_token", "short"),
        ("extra_config", "key = 1"),
    ],
)
def test_bootstrap_inputs_are_validated_rejects(terraform, tmp_path, tf_module, field, value):
    harness = VariableHarness(terraform, tmp_path, tf_module("agent-bootstrap"))
    values = dict(MINIMAL_INPUTS)
    values[field] = value
    assert not harness.accepts(values)


def test_minimal_bootstrap_inputs_are_accepted_works(terraform, tmp_path, tf_module):
    harness = VariableHarness(terraform, tmp_path, tf_module("agent-bootstrap"))
    assert harness.accepts(dict(MINIMAL_INPUTS))
    assert harness.accepts(dict(MINIMAL_INPUTS, agent_release_url="https://example.org:8443/r/sigil-agent?x=1&y=2"))


# --- the script, run against a directory tree -------------------------------------


FAKES = {
    # Each stand-in appends its arguments to $CALLS.
    "systemctl": """#!/bin/sh
echo "systemctl $*" >>"$CALLS"
case "$1" in is-failed) [ -n "$FAKE_AGENT_FAILED" ] && exit 0; exit 1 ;; esac
exit 0
""",
    "journalctl": """#!/bin/sh
echo "journalctl $*" >>"$CALLS"
[ -n "$FAKE_JOURNAL" ] && printf '%s\\n' "$FAKE_JOURNAL"
exit 0
""",
    "lspci": """#!/bin/sh
[ -n "$FAKE_GPU" ] && echo '04:00.0 3D controller: NVIDIA Corporation GH100 [H100 PCIe] (rev a1)'
exit 0
""",
    "nvidia-smi": """#!/bin/sh
echo "nvidia-smi $*" >>"$CALLS"
case "$*" in
  "conf-compute -f") echo "CC status: ${FAKE_CC:-ON}" ;;
  "conf-compute -srs 1") touch "$FAKE_STATE/ready" ;;
  "conf-compute -grs") if [ -e "$FAKE_STATE/ready" ]; then echo "Confidential Compute GPUs Ready state: ready"; else echo "Confidential Compute GPUs Ready state: not-ready"; fi ;;
esac
exit 0
""",
    "modprobe": "#!/bin/sh\nexit 0\n",
    "dmesg": "#!/bin/sh\n[ -n \"$FAKE_KLOG\" ] && printf '%s\\n' \"$FAKE_KLOG\"\nexit 0\n",
    "apt-get": "#!/bin/sh\necho \"apt-get $*\" >>\"$CALLS\"\nexit 1\n",
    "sleep": "#!/bin/sh\nexit 0\n",
}

AGENT_BINARY = b"#!/bin/sh\necho sigil-agent 0.1.0\n"


class Sandbox:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.bin = tmp / "bin"
        self.calls = tmp / "calls.log"
        self.state = tmp / "state"
        for d in (self.root / "etc/sigil", self.root / "usr/local/lib/sigil", self.root / "dev", self.root / "proc", self.bin, self.state):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "etc/sigil/agent.toml").write_text('[server]\nlisten = "0.0.0.0:7443"\n')
        shutil.copy(UNIT_FILE, self.root / "usr/local/lib/sigil/sigil-agent.service")
        (self.root / "proc/cpuinfo").write_text("flags\t: fpu vme sse2\n")
        for name, body in FAKES.items():
            path = self.bin / name
            path.write_text(body)
            path.chmod(0o755)
        self.calls.write_text("")

    def release(self, payload: bytes | None = None, *, tarball: bool = True, extra: bool = False) -> tuple[str, str]:
        payload = AGENT_BINARY if payload is None else payload
        if tarball:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                for name in ["sigil-agent-0.1.0/sigil-agent"] + (["other/sigil-agent"] if extra else []):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    info.mode = 0o755
                    tar.addfile(info, io.BytesIO(payload))
            data, path = buf.getvalue(), self.tmp / "sigil-agent-0.1.0.tar.gz"
        else:
            data, path = payload, self.tmp / "sigil-agent"
        path.write_bytes(data)
        return f"file://{path}", hashlib.sha256(data).hexdigest()

    def run(self, url: str, sha: str, *, tee: str = "SEV-SNP", gpu_mode: str = "none",
            timeout: int = 5, **env_extra: str) -> subprocess.CompletedProcess:
        env_file = self.tmp / "bootstrap.env"
        env_file.write_text(
            f"SIGIL_AGENT_URL='{url}'\nSIGIL_AGENT_SHA256='{sha}'\nSIGIL_EXPECTED_TEE='{tee}'\n"
            f"SIGIL_GPU_MODE='{gpu_mode}'\n"
            f"SIGIL_NVIDIA_DRIVER_BRANCH='570'\nSIGIL_ATTEST_TIMEOUT='{timeout}'\n"
        )
        env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "SIGIL_BOOTSTRAP_ENV": str(env_file),
            "SIGIL_ROOT": str(self.root),
            "SIGIL_URL_PROTO": "=file",
            "SIGIL_SYSTEMCTL": str(self.bin / "systemctl"),
            "SIGIL_JOURNALCTL": str(self.bin / "journalctl"),
            "SIGIL_NVIDIA_SMI": str(self.bin / "nvidia-smi"),
            "SIGIL_LSPCI": str(self.bin / "lspci"),
            "SIGIL_MODPROBE": str(self.bin / "modprobe"),
            "SIGIL_DMESG": str(self.bin / "dmesg"),
            "SIGIL_APT_GET": str(self.bin / "apt-get"),
            "SIGIL_SLEEP": str(self.bin / "sleep"),
            "CALLS": str(self.calls),
            "FAKE_STATE": str(self.state),
            "FAKE_JOURNAL": f"2026-01-01T00:00:00Z INFO sigil_agent: {ATTESTED}",
        }
        env.update(env_extra)
        return subprocess.run(["bash", str(BOOTSTRAP_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)

    @property
    def agent(self) -> Path:
        return self.root / "usr/local/bin/sigil-agent"

    def call_lines(self) -> list[str]:
        return self.calls.read_text().splitlines()

    def sev_guest(self) -> None:
        (self.root / "dev/sev-guest").touch()


@pytest.fixture()
def box(tmp_path):
    return Sandbox(tmp_path)


def test_verified_release_is_installed_and_started_works(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha)
    assert result.returncode == 0, result.stderr
    assert box.agent.read_bytes() == AGENT_BINARY
    assert stat.S_IMODE(box.agent.stat().st_mode) == 0o755
    assert (box.root / "etc/systemd/system/sigil-agent.service").read_text() == UNIT_FILE.read_text()
    calls = box.call_lines()
    assert calls.index("systemctl daemon-reload") < calls.index("systemctl enable --now sigil-agent.service")
    assert f"sigil-bootstrap: checksum verified: {sha}" in result.stdout
    assert f"sigil-bootstrap: agent {ATTESTED}" in result.stdout


def test_checksum_mismatch_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    result = box.run(url, wrong)
    assert result.returncode != 0
    assert f"checksum mismatch for {url}: expected {wrong}, got {sha}" in result.stderr
    assert not box.agent.exists()
    assert not any(line.startswith("systemctl") for line in box.call_lines())


def test_tampered_release_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    _, _ = box.release(payload=b"#!/bin/sh\necho evil\n")  # same file name, other bytes
    result = box.run(url, sha)
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr
    assert not box.agent.exists()


def test_bare_binary_release_works(box):
    box.sev_guest()
    url, sha = box.release(tarball=False)
    result = box.run(url, sha)
    assert result.returncode == 0, result.stderr
    assert box.agent.read_bytes() == AGENT_BINARY


def test_archive_with_two_agents_rejects(box):
    box.sev_guest()
    url, sha = box.release(extra=True)
    result = box.run(url, sha)
    assert result.returncode != 0
    assert "exactly one sigil-agent" in result.stderr
    assert not box.agent.exists()


def test_second_run_reuses_the_verified_install_works(box):
    box.sev_guest()
    url, sha = box.release()
    assert box.run(url, sha).returncode == 0
    Path(url.removeprefix("file://")).unlink()  # a download would now fail
    result = box.run(url, sha)
    assert result.returncode == 0, result.stderr
    assert "already installed" in result.stdout


def test_modified_installed_binary_is_replaced_works(box):
    box.sev_guest()
    url, sha = box.release()
    assert box.run(url, sha).returncode == 0
    box.agent.write_bytes(b"#!/bin/sh\necho replaced\n")
    result = box.run(url, sha)
    assert result.returncode == 0, result.stderr
    assert "checksum verified" in result.stdout
    assert box.agent.read_bytes() == AGENT_BINARY


def test_wrong_tee_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, tee="TDX")
    assert result.returncode != 0
    assert "does not run in a TDX guest (found: SEV-SNP)" in result.stderr
    assert not box.agent.exists()


def test_no_tee_rejects(box):
    url, sha = box.release()
    result = box.run(url, sha)
    assert result.returncode != 0
    assert "found: none" in result.stderr
    assert not box.agent.exists()


def test_tdx_guest_is_detected_works(box):
    (box.root / "proc/cpuinfo").write_text("flags\t: fpu tdx_guest sse2\n")
    url, sha = box.release()
    result = box.run(url, sha, tee="TDX")
    assert result.returncode == 0, result.stderr
    assert "TEE detected: TDX" in result.stdout


def test_paravisor_snp_guest_is_detected_works(box):
    # Azure confidential VMs: no /dev/sev-guest, the kernel reports the isolation.
    url, sha = box.release()
    klog = "Hyper-V: Isolation Config: Group A 0x1, Group B 0xba2, Isolation Type: SNP"
    result = box.run(url, sha, FAKE_KLOG=klog)
    assert result.returncode == 0, result.stderr
    assert "TEE detected: SEV-SNP" in result.stdout


def test_cc_gpu_is_made_ready_before_the_agent_starts_works(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, gpu_mode="required", FAKE_GPU="1")
    assert result.returncode == 0, result.stderr
    calls = box.call_lines()
    assert "nvidia-smi conf-compute -f" in calls
    assert calls.index("nvidia-smi conf-compute -srs 1") < calls.index("systemctl enable --now sigil-agent.service")
    assert "GPU confidential-computing ready state set" in result.stdout


def test_gpu_that_does_not_become_ready_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    # nvidia-smi accepts -srs but the state stays not-ready.
    (box.bin / "nvidia-smi").write_text(FAKES["nvidia-smi"].replace('touch "$FAKE_STATE/ready"', ":"))
    result = box.run(url, sha, gpu_mode="required", FAKE_GPU="1")
    assert result.returncode != 0
    assert "GPUs-ready state not set" in result.stderr
    assert "systemctl enable --now sigil-agent.service" not in box.call_lines()


def test_tls_key_is_made_in_the_vm_and_kept_private_works(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha)
    assert result.returncode == 0, result.stderr
    tls = box.root / "etc/sigil/tls"
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(tls / "cert.pem"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "CN = sigil-agent" in text and "prime256v1" in text and "DNS:sigil-agent" in text
    fp = subprocess.run(["openssl", "x509", "-in", str(tls / "cert.pem"), "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
    assert f"sigil-bootstrap: TLS certificate {fp}" in result.stdout
    # A second boot keeps the same key.
    key = (tls / "key.pem").read_bytes()
    assert box.run(url, sha).returncode == 0
    assert (tls / "key.pem").read_bytes() == key


def test_json_log_line_is_recognised_works(box):
    box.sev_guest()
    url, sha = box.release()
    line = '{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"' + ATTESTED + '"}}'
    result = box.run(url, sha, FAKE_JOURNAL=line)
    assert result.returncode == 0, result.stderr
    assert f"sigil-bootstrap: agent {ATTESTED}" in result.stdout


def test_gpu_without_cc_mode_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, gpu_mode="required", FAKE_GPU="1", FAKE_CC="OFF")
    assert result.returncode != 0
    assert "confidential-computing mode is not ON" in result.stderr
    assert "systemctl enable --now sigil-agent.service" not in box.call_lines()


def test_missing_gpu_on_a_gpu_shape_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, gpu_mode="required")
    assert result.returncode != 0
    assert "must have an NVIDIA GPU" in result.stderr


def test_agent_that_fails_before_attesting_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, FAKE_JOURNAL="Error: no evidence source", FAKE_AGENT_FAILED="1")
    assert result.returncode != 0
    assert "failed before it attested" in result.stderr


def test_agent_that_never_attests_rejects(box):
    box.sev_guest()
    url, sha = box.release()
    result = box.run(url, sha, timeout=0, FAKE_JOURNAL="starting")
    assert result.returncode != 0
    assert "did not report an attested start within 0s" in result.stderr


@pytest.mark.parametrize("sha", ["C" * 64, "c" * 63, ""])
def test_malformed_checksum_setting_rejects(box, sha):
    box.sev_guest()
    url, _ = box.release()
    result = box.run(url, sha)
    assert result.returncode != 0
    assert not box.agent.exists()
