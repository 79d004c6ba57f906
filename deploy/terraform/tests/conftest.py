"""Helpers shared by the deploy/terraform tests.

The HCL is read with python-hcl2, whose output keeps string literals quoted
(`"\"TERMINATE\""`) and wraps expressions in `${...}`; `normalize` turns
literals into plain Python values and leaves expressions as `${...}` strings,
so a test can tell a hard-coded setting from one that a variable controls.

Tests that need the terraform binary (variable validations, the rendered
cloud-init) skip with a reason when it is missing; check.sh says so too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

TF_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = TF_ROOT.parents[1]
MODULES_DIR = TF_ROOT / "modules"
EXAMPLES_DIR = TF_ROOT / "examples"
UNIT_FILE = REPO_ROOT / "deploy" / "systemd" / "sigil-agent.service"
BOOTSTRAP_SCRIPT = MODULES_DIR / "agent-bootstrap" / "files" / "sigil-bootstrap.sh"

MODULE_NAMES = ["agent-bootstrap", "gcp-confidential-vm", "azure-confidential-vm"]
GCP_EXAMPLES = ["gcp-sev-snp", "gcp-tdx", "gcp-h100-cc"]
AZURE_EXAMPLES = ["azure-sev-snp", "azure-tdx", "azure-h100-cc"]
EXAMPLE_NAMES = GCP_EXAMPLES + AZURE_EXAMPLES


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return json.loads(value) if "\\" in value else value[1:-1]
    return value


def normalize(node: Any) -> Any:
    """Plain values from python-hcl2 output: keys and string literals unquoted,
    block markers dropped, comments kept under `__comments__`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "__is_block__":
                continue
            out[_unquote(key)] = normalize(value)
        return out
    if isinstance(node, list):
        return [normalize(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


class TfDir:
    """All .tf files of one directory, merged by block kind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = sorted(path.glob("*.tf"))
        self.text = "\n".join(f.read_text() for f in self.files)
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.resources: dict[str, dict[str, dict]] = {}
        self.modules: dict[str, dict] = {}
        self.providers: dict[str, list[dict]] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict] = []
        for f in self.files:
            with f.open() as handle:
                doc = normalize(hcl2.load(handle))
            for block in doc.get("variable", []):
                self.variables.update(block)
            for block in doc.get("output", []):
                self.outputs.update(block)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    self.resources.setdefault(rtype, {}).update(named)
            for block in doc.get("module", []):
                self.modules.update(block)
            for block in doc.get("provider", []):
                for name, body in block.items():
                    self.providers.setdefault(name, []).append(body)
            for block in doc.get("locals", []):
                self.locals.update({k: v for k, v in block.items() if k != "__comments__"})
            self.terraform.extend(doc.get("terraform", []))

    def resource(self, rtype: str, name: str = "this") -> dict:
        assert rtype in self.resources, f"{self.path.name}: no {rtype} resource"
        assert name in self.resources[rtype], f"{self.path.name}: no {rtype}.{name}"
        return self.resources[rtype][name]

    def locals_block_text(self) -> str:
        """The raw text of every `locals { ... }` block (for terraform console)."""
        blocks = []
        for f in self.files:
            text = f.read_text()
            for match in re.finditer(r"(?m)^locals\s*\{", text):
                depth, i = 0, match.end() - 1
                while True:
                    if text[i] == "{":
                        depth += 1
                    elif text[i] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
                blocks.append(text[match.start() : i + 1])
        return "\n\n".join(blocks)


def single(block_list: Any) -> dict:
    """The one nested block of a kind (python-hcl2 gives blocks as lists)."""
    assert isinstance(block_list, list) and len(block_list) == 1, block_list
    return block_list[0]


@pytest.fixture(scope="session")
def tf_module():
    cache: dict[str, TfDir] = {}

    def get(name: str) -> TfDir:
        if name not in cache:
            cache[name] = TfDir(MODULES_DIR / name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tf_example():
    cache: dict[str, TfDir] = {}

    def get(name: str) -> TfDir:
        if name not in cache:
            cache[name] = TfDir(EXAMPLES_DIR / name)
        return cache[name]

    return get


def _terraform_path() -> str | None:
    if os.environ.get("SIGIL_TF_HAVE_TERRAFORM") == "0":
        return None
    return shutil.which("terraform")


@pytest.fixture(scope="session")
def terraform() -> str:
    path = _terraform_path()
    if path is None:
        pytest.skip("terraform is not installed on this machine")
    return path


def tf_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE="/dev/null")
    env.pop("TF_DATA_DIR", None)
    return env


def run_tf(terraform: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [terraform, *args],
        cwd=cwd,
        env=tf_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class VariableHarness:
    """A module's variables.tf (and optionally its locals) alone in a directory,
    so terraform evaluates the validation blocks and locals without providers."""

    def __init__(self, terraform: str, tmp: Path, module: TfDir, with_locals: bool = False):
        self.terraform = terraform
        self.dir = tmp
        shutil.copy(module.path / "variables.tf", tmp / "variables.tf")
        if with_locals:
            (tmp / "locals.tf").write_text(module.locals_block_text() + "\n")

    def plan(self, values: dict) -> subprocess.CompletedProcess:
        (self.dir / "in.tfvars.json").write_text(json.dumps(values))
        return run_tf(self.terraform, self.dir, "plan", "-input=false", "-no-color",
                      "-lock=false", "-var-file=in.tfvars.json")

    def accepts(self, values: dict) -> bool:
        result = self.plan(values)
        if result.returncode != 0:
            assert "Invalid value for variable" in result.stderr, result.stderr
        return result.returncode == 0

    def evaluate(self, values: dict, expression: str) -> Any:
        (self.dir / "in.tfvars.json").write_text(json.dumps(values))
        result = subprocess.run(
            [self.terraform, "console", "-var-file=in.tfvars.json"],
            cwd=self.dir,
            env=tf_env(),
            input=f"jsonencode({expression})\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        # console prints the JSON text as an HCL string literal.
        literal = result.stdout.strip()
        return json.loads(json.loads(literal.replace("$${", "${").replace("%%{", "%{")))


# --- HCL expressions of the modules, evaluated by terraform console (VariableHarness).


def expression(value: str, stand_ins: dict[str, str] | None = None) -> str:
    """An attribute's expression from python-hcl2's `${...}`, resource references
    replaced by literal stand-ins so that terraform console evaluates it."""
    assert value.startswith("${") and value.endswith("}"), value
    expr = value[2:-1]
    for ref, literal in (stand_ins or {}).items():
        expr = expr.replace(ref, json.dumps(literal))
    left = re.findall(r"\b(?:azurerm|azapi|google|terraform)_[a-z_]+\.[a-z_]+", expr)
    assert not left, f"unreplaced resource references: {left}"
    return expr


def object_expression(value: dict, stand_ins: dict[str, str] | None = None) -> str:
    """An HCL object expression from python-hcl2's object of `${...}` attributes."""
    return "{" + ", ".join(f"{k} = {expression(v, stand_ins)}" for k, v in value.items() if k != "__comments__") + "}"


def value_expression(value: Any, stand_ins: dict[str, str] | None = None) -> str:
    """An HCL expression for a whole python-hcl2 value (objects, lists, literals and
    `${...}` expressions nested in them)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {value_expression(v, stand_ins)}"
                               for k, v in value.items() if k != "__comments__") + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_expression(v, stand_ins) for v in value) + "]"
    if isinstance(value, str):
        return f"({expression(value, stand_ins)})" if value.startswith("${") else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


# --- Secure Boot certificates and signed image manifests (deploy/image/sign.py).


def der_certificate(path: Path, cn: str = "test") -> bytes:
    """A self-signed X.509 certificate in DER at `path` (openssl), and its bytes."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed on this machine")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
         "-days", "1", "-keyout", str(path.with_suffix(".key")), "-outform", "DER", "-out", str(path)],
        check=True, capture_output=True, timeout=120,
    )
    return path.read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign_manifest(manifest_path: Path, cert: bytes, cn: str = "test") -> dict:
    """Adds to a manifest.json the secure_boot section sign.py writes for `cert`."""
    manifest = json.loads(manifest_path.read_text())
    manifest["secure_boot"] = {
        "signed": True,
        "db_cert": "secure-boot-db.der",
        "db_cert_sha256": hashlib.sha256(cert).hexdigest(),
        "db_cert_subject": f"CN={cn}",
        "unsigned_uki": {"size": 7, "sha256": "e5" * 32, "sha384": "e5" * 48},
        "not_predicted": "PCR 7 (RTMR0 on TDX): the Secure Boot variables and the db "
                         "certificate that allowed the UKI, from the VM's variable store",
    }
    manifest_path.write_text(json.dumps(manifest))
    return manifest["secure_boot"]
