"""Azure module: ConfidentialVM settings, sizes per TEE, security group scope."""

from __future__ import annotations

import pytest

from conftest import AZURE_EXAMPLES, VariableHarness, single

MODULE = "azure-confidential-vm"

BASE = {
    "name": "sigil-test",
    "resource_group_name": "rg",
    "location": "eastus2",
    "admin_ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZm op@example",
    "allowed_source_prefixes": ["203.0.113.0/24"],
    "agent_release_url": "https://releases.example.org/sigil-agent.tar.gz",
    "agent_release_sha256": "b" * 64,
}

# vm_size -> (tee, gpu)
VALID_SIZES = {
    "Standard_DC2as_v5": ("SEV-SNP", False),
    "Standard_DC4as_v5": ("SEV-SNP", False),
    "Standard_DC96ads_v5": ("SEV-SNP", False),
    "Standard_EC4as_v5": ("SEV-SNP", False),
    "Standard_EC64ads_v5": ("SEV-SNP", False),
    "Standard_NCC40ads_H100_v5": ("SEV-SNP", True),
    "Standard_DC4es_v5": ("TDX", False),
    "Standard_DC8eds_v5": ("TDX", False),
    "Standard_EC16es_v5": ("TDX", False),
    "Standard_EC32eds_v5": ("TDX", False),
}

INVALID_SIZES = [
    "Standard_D4s_v5",  # general purpose, no TEE
    "Standard_DC4s_v3",  # SGX enclaves, not a confidential VM
    "Standard_DC4ds_v3",
    "Standard_NC40ads_H100_v5",  # H100 without confidential computing
    "Standard_ND96isr_H100_v5",
    "Standard_NCC40ads_H100_v4",
    "Standard_DC4as_v4",
    "standard_dc4as_v5",
]


@pytest.fixture()
def harness(terraform, tmp_path, tf_module):
    return VariableHarness(terraform, tmp_path, tf_module(MODULE), with_locals=True)


def vm(tf_module):
    return tf_module(MODULE).resource("azurerm_linux_virtual_machine")


def test_vtpm_and_secure_boot_are_hard_wired_works(tf_module):
    machine = vm(tf_module)
    assert machine["vtpm_enabled"] is True
    assert machine["secure_boot_enabled"] is True
    assert machine["disable_password_authentication"] is True
    assert machine["allow_extension_operations"] is False
    assert machine["custom_data"] == "${base64encode(module.bootstrap.cloud_init)}"
    assert "admin_password" not in machine


def test_os_disk_is_confidential_works(tf_module):
    disk = single(vm(tf_module)["os_disk"])
    assert disk["security_encryption_type"] == "${var.security_encryption_type}"
    assert disk["secure_vm_disk_encryption_set_id"] == "${var.secure_vm_disk_encryption_set_id}"
    assert "encryption_at_host_enabled" not in vm(tf_module)


def test_image_comes_from_the_validated_variable_works(tf_module):
    module = tf_module(MODULE)
    ref = single(vm(tf_module)["source_image_reference"])
    assert ref == {
        "publisher": "${var.image.publisher}",
        "offer": "${var.image.offer}",
        "sku": "${var.image.sku}",
        "version": "${var.image.version}",
    }
    default = module.variables["image"]["default"]
    assert default == {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "cvm", "version": "latest"}


def test_security_group_admits_only_the_grpc_port_works(tf_module):
    module = tf_module(MODULE)
    assert "azurerm_network_security_rule" not in module.resources
    nsg = module.resource("azurerm_network_security_group")
    rules = {r["name"]: r for r in nsg["security_rule"]}
    assert set(rules) == {"allow-sigil-grpc", "deny-all-other-inbound"}
    allow = [r for r in rules.values() if r["access"] == "Allow"]
    assert len(allow) == 1
    rule = allow[0]
    assert rule["direction"] == "Inbound"
    assert rule["protocol"] == "Tcp"
    assert rule["destination_port_range"] == "${tostring(var.grpc_port)}"
    assert rule["source_address_prefixes"] == "${var.allowed_source_prefixes}"
    assert "destination_port_ranges" not in rule
    deny = rules["deny-all-other-inbound"]
    assert (deny["direction"], deny["access"], deny["protocol"], deny["destination_port_range"]) == (
        "Inbound",
        "Deny",
        "*",
        "*",
    )
    assert deny["priority"] == 4096 and rule["priority"] < deny["priority"]
    assoc = module.resource("azurerm_subnet_network_security_group_association")
    assert assoc["network_security_group_id"] == "${azurerm_network_security_group.this.id}"
    nic_assoc = module.resource("azurerm_network_interface_security_group_association")
    assert nic_assoc["network_security_group_id"] == "${azurerm_network_security_group.this.id}"


def test_bootstrap_is_told_the_tee_and_gpu_works(tf_module):
    call = tf_module(MODULE).modules["bootstrap"]
    assert call["expected_tee"] == "${local.tee}"
    assert call["gpu_mode"] == '${local.gpu ? "required" : "none"}'


@pytest.mark.parametrize("size", sorted(VALID_SIZES))
def test_confidential_sizes_are_accepted_and_mapped_works(harness, size):
    values = dict(BASE, vm_size=size)
    assert harness.accepts(values)
    got = harness.evaluate(values, "{tee = local.tee, gpu = local.gpu}")
    tee, gpu = VALID_SIZES[size]
    assert got == {"tee": tee, "gpu": gpu}


@pytest.mark.parametrize("size", INVALID_SIZES)
def test_sizes_without_a_tee_rejects(harness, size):
    assert not harness.accepts(dict(BASE, vm_size=size))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("security_encryption_type", "NonPersistedTPM"),
        ("security_encryption_type", None),
        ("image", {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}),
        ("image", {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2-cvm", "version": "latest"}),
        ("allowed_source_prefixes", []),
        ("admin_username", "root"),
        ("admin_ssh_public_key", "password123"),
        ("zone", "4"),
    ],
)
def test_unsafe_or_unsupported_settings_rejects(harness, field, value):
    # The same values without the change pass: test_confidential_sizes_are_accepted_and_mapped_works.
    values = dict(BASE, vm_size="Standard_DC4as_v5")
    values[field] = value
    assert not _accepts_or_null_error(harness, values)


def _accepts_or_null_error(harness, values):
    result = harness.plan(values)
    if result.returncode != 0:
        assert "Invalid value for variable" in result.stderr or "must not be null" in result.stderr, result.stderr
    return result.returncode == 0


def test_customer_key_needs_full_disk_encryption_rejects(harness):
    values = dict(BASE, vm_size="Standard_DC4as_v5", secure_vm_disk_encryption_set_id="/subscriptions/x/des")
    assert harness.accepts(values)
    values["security_encryption_type"] = "VMGuestStateOnly"
    assert not harness.accepts(values)


def test_jammy_confidential_image_is_accepted_works(harness):
    image = {"publisher": "Canonical", "offer": "0001-com-ubuntu-confidential-vm-jammy", "sku": "22_04-lts-cvm", "version": "latest"}
    assert harness.accepts(dict(BASE, vm_size="Standard_NCC40ads_H100_v5", image=image))


EXPECTED_EXAMPLES = {
    "azure-sev-snp": ("Standard_DC4as_v5", "SEV-SNP", False),
    "azure-tdx": ("Standard_DC4es_v5", "TDX", False),
    "azure-h100-cc": ("Standard_NCC40ads_H100_v5", "SEV-SNP", True),
}


@pytest.mark.parametrize("name", AZURE_EXAMPLES)
def test_examples_pick_the_right_size_works(harness, tf_example, name):
    call = tf_example(name).modules["provider_vm"]
    size, tee, gpu = EXPECTED_EXAMPLES[name]
    assert call["vm_size"] == size
    assert call["allowed_source_prefixes"] == "${var.allowed_cidrs}"
    assert VALID_SIZES[size] == (tee, gpu)
    values = dict(BASE, vm_size=size)
    assert harness.accepts(values)
    assert harness.evaluate(values, "local.tee") == tee


def test_expected_measurements_say_what_the_evidence_covers_works(harness, tf_module):
    assert 'output "expected_measurements"' in (tf_module(MODULE).path / "outputs.tf").read_text()
    values = dict(BASE, vm_size="Standard_DC2as_v5",
                  agent_measurements={"agent_digest": "a1" * 48, "config_digest": "c1" * 48})
    assert harness.accepts(values)
    got = harness.evaluate(values, "{covers = local.evidence_covers, policy = local.agent_policy}")
    assert "paravisor" in got["covers"] and "[vtpm] pcrs" in got["covers"]
    assert got["policy"] is None
