"""Module and example layout, variables, secrets and suppressions."""

from __future__ import annotations

import re

import pytest

from conftest import (
    AZURE_EXAMPLES,
    EXAMPLE_NAMES,
    EXAMPLES_DIR,
    GCP_EXAMPLES,
    MODULE_NAMES,
    MODULES_DIR,
    TF_ROOT,
)

SECRET_NAME = re.compile(r"(^|_)(token|password|secret|private_key|client_secret)$")


def all_dirs(tf_module, tf_example):
    return [tf_module(n) for n in MODULE_NAMES] + [tf_example(n) for n in EXAMPLE_NAMES]


def test_module_layout_works():
    found = sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir())
    assert found == sorted(MODULE_NAMES)
    for name in MODULE_NAMES:
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (MODULES_DIR / name / f).is_file(), f"modules/{name}/{f} is missing"


def test_example_layout_works():
    found = sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_dir())
    assert found == sorted(EXAMPLE_NAMES)
    for name in EXAMPLE_NAMES:
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "terraform.tfvars.example"):
            assert (EXAMPLES_DIR / name / f).is_file(), f"examples/{name}/{f} is missing"


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_modules_have_no_provider_blocks_works(tf_module, name):
    module = tf_module(name)
    assert module.providers == {}, f"modules/{name} configures a provider"
    assert not re.search(r"(?m)^\s*provider\s+\"", module.text)


@pytest.mark.parametrize("name", GCP_EXAMPLES)
def test_gcp_examples_configure_google_works(tf_example, name):
    example = tf_example(name)
    assert list(example.providers) == ["google"]
    provider = example.providers["google"][0]
    assert provider["project"] == "${var.project_id}"
    assert example.modules["provider_vm"]["source"] == "../../modules/gcp-confidential-vm"


@pytest.mark.parametrize("name", AZURE_EXAMPLES)
def test_azure_examples_configure_azurerm_works(tf_example, name):
    example = tf_example(name)
    # azapi: the module's Sigil-image VM (a specialized confidential VM) is an ARM resource.
    assert list(example.providers) == ["azurerm", "azapi"]
    provider = example.providers["azurerm"][0]
    assert "features" in provider, "azurerm needs a features block"
    assert provider["subscription_id"] == "${var.subscription_id}"
    assert example.providers["azapi"][0]["subscription_id"] == "${var.subscription_id}"
    assert example.modules["provider_vm"]["source"] == "../../modules/azure-confidential-vm"


def test_every_variable_is_typed_and_described_works(tf_module, tf_example):
    checked = 0
    for d in all_dirs(tf_module, tf_example):
        for name, body in d.variables.items():
            where = f"{d.path.relative_to(TF_ROOT)}: variable {name}"
            assert "type" in body, f"{where} has no type"
            description = body.get("description", "")
            assert isinstance(description, str) and len(description) >= 10, f"{where} has no description"
            checked += 1
    assert checked >= 60


def test_every_output_is_described_works(tf_module, tf_example):
    for d in all_dirs(tf_module, tf_example):
        assert d.outputs, f"{d.path.name} has no outputs"
        for name, body in d.outputs.items():
            assert len(body.get("description", "")) >= 10, f"{d.path.name}: output {name} has no description"


def test_secrets_are_sensitive_works(tf_module, tf_example):
    secrets = []
    for d in all_dirs(tf_module, tf_example):
        for name, body in d.variables.items():
            if SECRET_NAME.search(name):
                assert body.get("sensitive") is True, f"{d.path.name}: variable {name} must be sensitive"
                secrets.append((d.path.name, name))
    # The submission token is the one secret; every module that takes it hides it.
    assert {m for m, n in secrets if n == "api_token"} == set(MODULE_NAMES)


def test_outputs_never_carry_secrets_works(tf_module, tf_example):
    for d in all_dirs(tf_module, tf_example):
        for name, body in d.outputs.items():
            value = str(body["value"])
            assert "var.api_token" not in value, f"{d.path.name}: output {name} exposes api_token"
            if "cloud_init" in value or "local.files" in value:
                assert body.get("sensitive") is True, f"{d.path.name}: output {name} carries user data"


def test_main_resource_is_named_this_works(tf_module):
    assert "this" in tf_module("gcp-confidential-vm").resources["google_compute_instance"]
    assert "this" in tf_module("azure-confidential-vm").resources["azurerm_linux_virtual_machine"]
    # The Sigil image's VM, the other way the Azure module makes its VM (as GCP's image: `sigil`).
    assert "sigil" in tf_module("azure-confidential-vm").resources["azapi_resource"]


@pytest.mark.parametrize("name", MODULE_NAMES + [f"examples/{e}" for e in EXAMPLE_NAMES])
def test_versions_pin_terraform_and_providers_works(tf_module, tf_example, name):
    d = tf_example(name.split("/", 1)[1]) if name.startswith("examples/") else tf_module(name)
    assert len(d.terraform) == 1
    block = d.terraform[0]
    assert block["required_version"] == ">= 1.9"
    for providers in block.get("required_providers", []):
        for pname, spec in providers.items():
            if pname.startswith("__"):
                continue
            assert spec["source"] in ("hashicorp/google", "hashicorp/azurerm", "Azure/azapi")
            assert re.fullmatch(r">= \d+\.\d+, < \d+\.\d+", spec["version"]), spec["version"]


def test_checkov_suppressions_are_justified_works():
    skips = []
    for tf in TF_ROOT.rglob("*.tf"):
        if ".venv" in tf.parts or ".terraform" in tf.parts:
            continue
        for line in tf.read_text().splitlines():
            if "checkov:skip" in line:
                m = re.fullmatch(r"\s*#checkov:skip=(CKV2?_[A-Z]+_\d+): (.{40,})", line)
                assert m, f"{tf.name}: suppression without a justification: {line.strip()}"
                skips.append(m.group(1))
    assert sorted(skips) == sorted(
        ["CKV_GCP_26", "CKV_GCP_38", "CKV_GCP_40", "CKV_AZURE_119", "CKV2_AZURE_21"]
    )


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_readme_documents_every_input_and_output_works(tf_module, name):
    module = tf_module(name)
    readme = (module.path / "README.md").read_text()
    for var in module.variables:
        assert f"| `{var}` |" in readme, f"modules/{name}/README.md does not document variable {var}"
    for out in module.outputs:
        assert f"| `{out}` |" in readme, f"modules/{name}/README.md does not document output {out}"
    for needle in (
        "terraform init",
        "terraform validate",
        "terraform plan",
        "attested: tee=<SEV-SNP|TDX> measurement=<hex> key=<hex>",
        "sigil.v1.AttestationService/Challenge",
        "grpcurl",
        "sigil-verify",
    ):
        assert needle in readme, f"modules/{name}/README.md does not mention {needle}"
