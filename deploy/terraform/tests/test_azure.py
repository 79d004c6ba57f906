"""Azure module: ConfidentialVM settings, sizes per TEE, security group scope."""

from __future__ import annotations

import pytest

import hashlib
import json
import re

from conftest import (AZURE_EXAMPLES, REPO_ROOT, VariableHarness, b64, der_certificate, expression,
                      object_expression, sign_manifest, single, value_expression)

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
    assert machine["custom_data"] == "${base64encode(module.bootstrap[0].cloud_init)}"
    assert machine["count"] == "${local.sigil_image ? 0 : 1}"
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


# --- The Sigil image (deploy/image): disk.vhd made a specialized, confidential-VM
# supported gallery image and booted as a confidential VM without an OS profile.

IMAGE_ID = ("/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/"
            "sigil-agent/versions/1.0.1")
SIGNED_IMAGE_ID = IMAGE_ID.replace("/images/sigil-agent/", "/images/sigil-agent-signed/")
NIC_ID = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic"
STORAGE_ID = "/subscriptions/sub-1/resourceGroups/images/providers/Microsoft.Storage/storageAccounts/sigilimages1"
VTPM_EVENTS = [
    {"pcr": 4, "what": "UKI", "event_type": "EV_EFI_BOOT_SERVICES_APPLICATION", "digest": "41" * 32},
    {"pcr": 11, "what": ".linux", "event_type": "EV_IPL", "digest": "b1" * 32},
    {"pcr": 9, "what": "kernel initrd", "event_type": "EV_EVENT_TAG", "digest": "91" * 32},
]


def sigil_manifest(tmp_path, vhd: bytes) -> dict:
    """The parts of a deploy/image manifest.json the module reads."""
    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "img" / "disk.vhd").write_bytes(vhd)
    rules = "".join(f'  {{ pcr = {e["pcr"]}, digest = "{e["digest"]}" }},\n' for e in VTPM_EVENTS)
    manifest = {
        "disk": {"files": {"disk.vhd": {"sha256": hashlib.sha256(vhd).hexdigest(), "size": len(vhd)}}},
        "image": {"files": {"uki.efi": {"sha256": "b2" * 32}}},
        "vtpm": {"bank": "sha256", "uki_events": VTPM_EVENTS, "pcr11_sha256": "c3" * 32},
        "agent": {"agent_digest": "a1" * 48, "config_digest": "c1" * 48},
        "policy_fragments": {"vtpm-disk": f"[vtpm]\nevents = [\n{rules}]\n"},
    }
    (tmp_path / "img" / "manifest.json").write_text(json.dumps(manifest))
    return {"vhd": str(tmp_path / "img" / "disk.vhd"),
            "manifest": str(tmp_path / "img" / "manifest.json"), "storage_account_id": STORAGE_ID}


def with_image(values: dict, img: dict) -> dict:
    """values booting the image: no release, no SSH key, guest state encryption only."""
    out = {k: v for k, v in values.items() if not k.startswith("agent_release_") and k != "admin_ssh_public_key"}
    return dict(out, sigil_image=img, security_encryption_type="VMGuestStateOnly")


def test_sigil_image_is_uploaded_and_made_a_gallery_image_works(tf_module):
    module = tf_module(MODULE)
    container = module.resource("azurerm_storage_container", "sigil_image")
    assert container["container_access_type"] == "private"
    assert container["storage_account_id"] == "${var.sigil_image.storage_account_id}"
    blob = module.resource("azurerm_storage_blob", "sigil_image")
    assert blob["type"] == "Page"
    assert blob["name"] == "sigil-agent-image/${local.image_vhd.sha256}.vhd"
    assert blob["source"] == "${var.sigil_image.vhd}"
    assert blob["storage_container_name"] == "${azurerm_storage_container.sigil_image[0].name}"
    assert "filesha256(var.sigil_image.vhd) == local.image_vhd.sha256" in module.text
    image = module.resource("azurerm_shared_image", "sigil")
    # The unsigned image's definition and version; a signed image has its own (azapi).
    assert image["count"] == "${local.unsigned_image ? 1 : 0}"
    assert (image["os_type"], image["hyper_v_generation"]) == ("Linux", "V2")
    # Specialized (no OS profile to provision), and a source of confidential VMs' OS disks.
    assert image["specialized"] is True and image["confidential_vm_supported"] is True
    assert not {"confidential_vm_enabled", "trusted_launch_supported", "trusted_launch_enabled"} & set(image)
    version = module.resource("azurerm_shared_image_version", "sigil")
    assert version["blob_uri"] == "${azurerm_storage_blob.sigil_image[0].url}"
    assert version["storage_account_id"] == "${var.sigil_image.storage_account_id}"
    assert version["count"] == "${local.unsigned_image ? 1 : 0}"
    assert version["name"] == "${local.image_version_name}"
    assert module.locals["image_version_name"] == (
        '${local.sigil_image ? "1.0.${parseint(substr(local.image_vhd.sha256, 0, 7), 16)}" : null}')
    assert single(version["target_region"])["name"] == "${var.location}"
    # Azure makes a confidential OS disk FromImage (or ImportSecure with a guest state
    # blob), not by importing a VHD: no managed disk of the module's own.
    assert "azurerm_managed_disk" not in module.resources
    assert module.modules["bootstrap"]["count"] == "${local.sigil_image ? 0 : 1}"
    nic = module.resource("azurerm_network_interface")
    assert nic["accelerated_networking_enabled"] == "${var.accelerated_networking && !local.sigil_image}"


def test_sigil_vm_is_a_specialized_confidential_vm_works(harness, tf_module, tmp_path):
    vm_res = tf_module(MODULE).resource("azapi_resource", "sigil")
    assert vm_res["type"].startswith("Microsoft.Compute/virtualMachines@")
    assert vm_res["count"] == "${local.sigil_image ? 1 : 0}"
    # A new image version (a new disk, or signed instead of unsigned) is a new VM.
    assert single(vm_res["lifecycle"])["replace_triggered_by"] == ["${terraform_data.sigil_image_version[0]}"]
    refs = {"azurerm_shared_image_version.sigil[0].id": IMAGE_ID, "azurerm_network_interface.this.id": NIC_ID,
            "azapi_resource.sigil_signed_image_version[0].id": SIGNED_IMAGE_ID}
    values = with_image(dict(BASE, vm_size="Standard_DC4es_v5"), sigil_manifest(tmp_path, b"disk"))
    assert harness.accepts(values)
    assert harness.evaluate(values, expression(vm_res["parent_id"], refs)) == "/subscriptions/sub-1/resourceGroups/rg"
    body = harness.evaluate(values, expression(vm_res["body"], refs))
    assert set(body) == {"properties"}, "no zone given, none sent"
    props = body["properties"]
    # Specialized: no OS profile (nothing to provision, no account, no custom data).
    assert set(props) == {"hardwareProfile", "securityProfile", "storageProfile", "networkProfile",
                          "diagnosticsProfile"}
    assert props["hardwareProfile"] == {"vmSize": "Standard_DC4es_v5"}
    assert props["securityProfile"] == {
        "securityType": "ConfidentialVM",
        "uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True},
    }
    assert props["storageProfile"] == {
        "imageReference": {"id": IMAGE_ID},
        "osDisk": {
            "osType": "Linux", "createOption": "FromImage", "caching": "ReadWrite", "deleteOption": "Delete",
            "managedDisk": {"storageAccountType": "Premium_LRS",
                            "securityProfile": {"securityEncryptionType": "VMGuestStateOnly"}},
        },
    }
    assert props["networkProfile"] == {"networkInterfaces": [{"id": NIC_ID, "properties": {"primary": True}}]}
    assert props["diagnosticsProfile"] == {"bootDiagnostics": {"enabled": True}}
    zoned = harness.evaluate(dict(values, zone="2"), expression(vm_res["body"], refs))
    assert zoned["zones"] == ["2"] and zoned["properties"] == props
    # Gallery names take no hyphens; the VM's name does.
    gallery = tf_module(MODULE).resource("azurerm_shared_image_gallery", "sigil")
    name = harness.evaluate(dict(values, name="sigil-tdx-1"), f'"{gallery["name"]}"')
    assert name == "sigil_tdx_1_sigil" and re.fullmatch(r"[A-Za-z0-9._]{1,80}", name)
    version = tf_module(MODULE).resource("azurerm_shared_image_version", "sigil")
    got = harness.evaluate(values, expression(version["name"]))
    assert got == f"1.0.{int(hashlib.sha256(b'disk').hexdigest()[:7], 16)}"


@pytest.mark.parametrize("size", ["Standard_DC2as_v5", "Standard_EC16es_v5"])
def test_sigil_image_publishes_its_measurements_works(harness, tf_module, tmp_path, size):
    values = with_image(dict(BASE, vm_size=size), sigil_manifest(tmp_path, b"the disk"))
    assert harness.accepts(values)
    output = tf_module(MODULE).outputs["expected_measurements"]["value"]
    got = harness.evaluate(values, object_expression(output))
    assert got["tee"] == VALID_SIZES[size][0]
    assert got["policy"].startswith("[vtpm]\nevents = [") and "41" * 32 in got["policy"]
    assert got["image"] == {"disk_vhd_sha256": hashlib.sha256(b"the disk").hexdigest(), "uki_sha256": "b2" * 32,
                            "vtpm_events": VTPM_EVENTS, "pcr11_sha256": "c3" * 32,
                            "secure_boot_db_cert_sha256": None, "secure_boot_db_cert_subject": None,
                            "unsigned_uki_sha256": None}
    assert got["secure_boot"] is False, "an unsigned image boots with Secure Boot off"
    assert (got["agent_digest"], got["config_digest"]) == ("a1" * 48, "c1" * 48)
    assert "paravisor" in got["evidence_covers"] and "PCR 4" in got["evidence_covers"]
    assert harness.evaluate(values, "local.image_storage_account") == "sigilimages1"
    # Without the image: the bootstrap's way, unchanged.
    plain = harness.evaluate(dict(BASE, vm_size=size), object_expression(output))
    assert plain["image"] is None and plain["policy"] is None and "[vtpm] pcrs" in plain["evidence_covers"]
    assert plain["secure_boot"] is True, "the marketplace image boots with Secure Boot on"


def test_sigil_image_with_release_gpu_or_bad_settings_rejects(harness, tmp_path):
    img = sigil_manifest(tmp_path, b"the disk")
    good = with_image(dict(BASE, vm_size="Standard_DC4as_v5"), img)
    assert harness.accepts(good)
    rejected = {
        "a release too": dict(good, agent_release_url=BASE["agent_release_url"],
                              agent_release_sha256=BASE["agent_release_sha256"]),
        "a release URL too": dict(good, agent_release_url=BASE["agent_release_url"]),
        "neither": dict(good, sigil_image=None, admin_ssh_public_key=BASE["admin_ssh_public_key"]),
        "no NVIDIA driver in the image": dict(good, vm_size="Standard_NCC40ads_H100_v5"),
        "confidential disk encryption needs Secure Boot": dict(good, security_encryption_type="DiskWithVMGuestState"),
        "an SSH key for an image without accounts": dict(good, admin_ssh_public_key=BASE["admin_ssh_public_key"]),
        "the manifest as the disk": dict(good, sigil_image=dict(img, vhd=img["manifest"])),
        "GCP's tar.gz": dict(good, sigil_image=dict(img, vhd=img["vhd"].replace("disk.vhd", "disk.tar.gz"))),
        "the disk as the manifest": dict(good, sigil_image=dict(img, manifest=img["vhd"])),
        "an account name, not its ID": dict(good, sigil_image=dict(img, storage_account_id="sigilimages1")),
        "a container's ID": dict(good, sigil_image=dict(img, storage_account_id=STORAGE_ID + "/blobServices/default")),
        "an account name Azure refuses": dict(good, sigil_image=dict(img, storage_account_id=STORAGE_ID.replace("sigilimages1", "Sigil_Images"))),
        "a container name Azure refuses": dict(good, name="sigil--test"),
        # The bootstrap's settings: the image's configuration is in the image.
        "a chain URL": dict(good, chain_rpc_url="wss://chain.example.org"),
        "an API token": dict(good, api_token="secret-token"),
        "buyer keys": dict(good, buyer_keys=["ab" * 32]),
        "a container engine": dict(good, container_engine="podman"),
        "extra agent TOML": dict(good, agent_extra_config="[log]\nlevel = \"debug\"\n"),
        "agent measurements": dict(good, agent_measurements={"agent_digest": "a1" * 48, "config_digest": "c1" * 48}),
        "a gRPC port the image's agent does not listen on": dict(good, grpc_port=8443),
    }
    accepted = [why for why, values in rejected.items() if _accepts_or_null_error(harness, values)]
    assert accepted == []


def test_marketplace_way_still_needs_its_inputs_rejects(harness):
    values = dict(BASE, vm_size="Standard_DC4as_v5")
    assert harness.accepts(values)
    for dropped in ("agent_release_url", "agent_release_sha256", "admin_ssh_public_key"):
        assert not harness.accepts({k: v for k, v in values.items() if k != dropped}), dropped


def test_image_manifest_has_what_the_module_reads_works():
    # The keys the module reads, as deploy/image writes them (image.py, disk.py).
    image_py = (REPO_ROOT / "deploy" / "image" / "image.py").read_text()
    disk_py = (REPO_ROOT / "deploy" / "image" / "disk.py").read_text()
    for key in ('"vtpm-disk"', '"uki_events"', '"pcr11_sha256"', '"policy_fragments"', '"agent_digest"',
                '"config_digest"'):
        assert key in image_py, key
    assert '"disk.vhd": raw.digests(footer)' in disk_py


@pytest.mark.parametrize("name", ["azure-sev-snp", "azure-tdx"])
def test_examples_offer_both_ways_works(harness, tf_example, tmp_path, name):
    example = tf_example(name)
    call = example.modules["provider_vm"]
    assert call["sigil_image"] == "${var.sigil_image}"
    assert call["agent_release_url"] == "${var.agent_release_url}"
    assert call["security_encryption_type"] == '${var.sigil_image == null ? "DiskWithVMGuestState" : "VMGuestStateOnly"}'
    assert example.variables["sigil_image"]["default"] is None
    assert list(example.providers) == ["azurerm", "azapi"]
    size = call["vm_size"]
    img = sigil_manifest(tmp_path, b"disk")
    assert harness.accepts(with_image(dict(BASE, vm_size=size), img))
    assert harness.accepts(dict(BASE, vm_size=size, security_encryption_type="DiskWithVMGuestState"))
    tfvars = (example.path / "terraform.tfvars.example").read_text()
    assert "sigil_image" in tfvars and "agent_release_url" in tfvars


def test_gpu_example_keeps_the_bootstrap_works(tf_example):
    call = tf_example("azure-h100-cc").modules["provider_vm"]
    assert "sigil_image" not in call
    assert call["agent_release_url"] == "${var.agent_release_url}"


# --- A signed Sigil image (deploy/image/sign.py): Secure Boot on, the provider's keys in
# the gallery image version's UEFI settings (azapi: azurerm cannot set them).

BLOB_URL = "https://sigilimages1.blob.core.windows.net/sigil-test-sigil-image/sigil-agent-image/x.vhd"
GALLERY_ID = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/galleries/sigil_test_sigil"
SIGNED_DEFINITION_ID = GALLERY_ID + "/images/sigil-agent-signed"
STAND_INS = {
    "azurerm_shared_image_version.sigil[0].id": IMAGE_ID,
    "azapi_resource.sigil_signed_image_version[0].id": SIGNED_IMAGE_ID,
    "azapi_resource.sigil_signed_image[0].id": SIGNED_DEFINITION_ID,
    "azurerm_shared_image_gallery.sigil[0].id": GALLERY_ID,
    "azurerm_storage_blob.sigil_image[0].url": BLOB_URL,
    "azurerm_network_interface.this.id": NIC_ID,
}


def subdir(tmp_path, name: str):
    (tmp_path / name).mkdir()
    return tmp_path / name


def signed_image(tmp_path, vhd: bytes = b"the signed disk") -> tuple[dict, bytes, dict]:
    """sigil_image for a signed build: its manifest has sign.py's secure_boot section and
    secure_boot_db is the certificate it names. (sigil_image, certificate, section)"""
    img = sigil_manifest(tmp_path, vhd)
    cert = der_certificate(tmp_path / "img" / "secure-boot-db.der", "Provider db")
    section = sign_manifest(tmp_path / "img" / "manifest.json", cert, "Provider db")
    return dict(img, secure_boot_db=str(tmp_path / "img" / "secure-boot-db.der")), cert, section


def resources(tf_module):
    module = tf_module(MODULE)
    return (module.resource("azapi_resource", "sigil_signed_image"),
            module.resource("azapi_resource", "sigil_signed_image_version"),
            module.resource("azapi_resource", "sigil"))


def test_signed_image_version_enrolls_only_the_providers_keys_works(harness, tf_module, tmp_path):
    definition, version, _ = resources(tf_module)
    assert version["type"] == "Microsoft.Compute/galleries/images/versions@2024-03-03"
    assert version["count"] == "${local.signed_image ? 1 : 0}"
    assert version["parent_id"] == "${azapi_resource.sigil_signed_image[0].id}"
    img, cert, _ = signed_image(tmp_path)
    values = with_image(dict(BASE, vm_size="Standard_DC4es_v5"), img)
    assert harness.accepts(values)
    assert harness.evaluate(values, expression(version["count"])) == 1
    assert harness.evaluate(values, expression(version["name"])) == (
        f"1.0.{int(hashlib.sha256(b'the signed disk').hexdigest()[:7], 16)}")
    body = harness.evaluate(values, value_expression(version["body"], STAND_INS))
    props = body["properties"]
    # NoSignatureTemplate: none of Azure's default keys (Microsoft's UEFI CA would admit
    # every bootloader it signed); PK, KEK and db the provider's, here one certificate.
    assert props["securityProfile"] == {"uefiSettings": {
        "signatureTemplateNames": ["NoSignatureTemplate"],
        "additionalSignatures": {
            "pk": {"type": "x509", "value": [b64(cert)]},
            "kek": [{"type": "x509", "value": [b64(cert)]}],
            "db": [{"type": "x509", "value": [b64(cert)]}],
        },
    }}
    # What azurerm_shared_image_version sets for an unsigned image, the same here.
    assert props["storageProfile"] == {"osDiskImage": {"source": {"storageAccountId": STORAGE_ID, "uri": BLOB_URL}}}
    assert props["publishingProfile"] == {
        "excludeFromLatest": False, "replicationMode": "Full",
        "targetRegions": [{"name": "eastus2", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS",
                           "excludeFromLatest": False}],
    }
    assert props["safetyProfile"] == {"allowDeletionOfReplicatedLocations": False}
    # Custom UEFI keys need a definition that supports Trusted Launch; the VM is confidential.
    assert definition["type"] == "Microsoft.Compute/galleries/images@2024-03-03"
    assert definition["count"] == "${local.signed_image ? 1 : 0}"
    dprops = harness.evaluate(values, value_expression(definition["body"], STAND_INS))["properties"]
    assert dprops["features"] == [{"name": "SecurityType", "value": "TrustedLaunchAndConfidentialVmSupported"}]
    assert (dprops["osType"], dprops["osState"], dprops["hyperVGeneration"]) == ("Linux", "Specialized", "V2")
    assert dprops["identifier"]["publisher"] == "sigil"


def test_signed_image_takes_the_providers_pk_and_kek_works(harness, tf_module, tmp_path):
    _, version, _ = resources(tf_module)
    img, cert, _ = signed_image(tmp_path)
    pk = der_certificate(tmp_path / "pk.der", "Provider PK")
    kek = der_certificate(tmp_path / "kek.der", "Provider KEK")
    values = with_image(dict(BASE, vm_size="Standard_DC4as_v5"),
                        dict(img, secure_boot_pk=str(tmp_path / "pk.der"), secure_boot_kek=str(tmp_path / "kek.der")))
    assert harness.accepts(values)
    sigs = harness.evaluate(values, value_expression(version["body"], STAND_INS))["properties"]["securityProfile"]
    assert sigs["uefiSettings"]["additionalSignatures"] == {
        "pk": {"type": "x509", "value": [b64(pk)]},
        "kek": [{"type": "x509", "value": [b64(kek)]}],
        "db": [{"type": "x509", "value": [b64(cert)]}],
    }


def test_signed_image_vm_boots_with_secure_boot_works(harness, tf_module, tmp_path):
    _, _, vm_res = resources(tf_module)
    img, _, _ = signed_image(subdir(tmp_path, "s"))
    signed = with_image(dict(BASE, vm_size="Standard_DC4es_v5"), img)
    unsigned = with_image(dict(BASE, vm_size="Standard_DC4es_v5"), sigil_manifest(subdir(tmp_path, "u"), b"disk"))
    body = harness.evaluate(signed, expression(vm_res["body"], STAND_INS))["properties"]
    assert body["securityProfile"] == {"securityType": "ConfidentialVM",
                                       "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
    assert body["storageProfile"]["imageReference"] == {"id": SIGNED_IMAGE_ID}
    assert body["storageProfile"]["osDisk"]["managedDisk"]["securityProfile"] == {
        "securityEncryptionType": "VMGuestStateOnly"}
    body = harness.evaluate(unsigned, expression(vm_res["body"], STAND_INS))["properties"]
    assert body["securityProfile"]["uefiSettings"] == {"secureBootEnabled": False, "vTpmEnabled": True}
    assert body["storageProfile"]["imageReference"] == {"id": IMAGE_ID}
    # The version the VM starts from, whichever kind, replaces the VM when it changes.
    trigger = tf_module(MODULE).resource("terraform_data", "sigil_image_version")
    assert trigger["count"] == "${local.sigil_image ? 1 : 0}"
    assert harness.evaluate(signed, expression(trigger["input"], STAND_INS)) == SIGNED_IMAGE_ID
    assert harness.evaluate(unsigned, expression(trigger["input"], STAND_INS)) == IMAGE_ID
    # One image definition and version of one kind: the unsigned ones for an unsigned image.
    module = tf_module(MODULE)
    for rtype, name in (("azurerm_shared_image", "sigil"), ("azurerm_shared_image_version", "sigil"),
                        ("azapi_resource", "sigil_signed_image"), ("azapi_resource", "sigil_signed_image_version")):
        count = expression(module.resource(rtype, name)["count"])
        assert harness.evaluate(signed, count) == (1 if rtype == "azapi_resource" else 0), name
        assert harness.evaluate(unsigned, count) == (0 if rtype == "azapi_resource" else 1), name


def test_signed_image_db_certificate_must_match_the_manifest_rejects(harness, tf_module, tmp_path):
    _, version, _ = resources(tf_module)
    img, _, _ = signed_image(tmp_path)
    other = tmp_path / "other.der"
    der_certificate(other, "Someone else")
    values = with_image(dict(BASE, vm_size="Standard_DC4as_v5"), img)
    precondition = single(single(version["lifecycle"])["precondition"])
    assert "secure_boot.db_cert_sha256" in precondition["error_message"]
    assert harness.evaluate(values, expression(precondition["condition"])) is True
    wrong = dict(values, sigil_image=dict(img, secure_boot_db=str(other)))
    assert harness.accepts(wrong), "a DER certificate, only not the manifest's: the precondition refuses it"
    assert harness.evaluate(wrong, expression(precondition["condition"])) is False


def test_secure_boot_certificates_go_with_a_signed_image_only_rejects(harness, tmp_path):
    img, _, _ = signed_image(subdir(tmp_path, "s"))
    unsigned = sigil_manifest(subdir(tmp_path, "u"), b"the disk")
    pem = tmp_path / "db.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    base = with_image(dict(BASE, vm_size="Standard_DC4as_v5"), img)
    assert harness.accepts(base)
    assert harness.accepts(dict(base, sigil_image=unsigned))
    rejected = {
        "a signed image without its db certificate": dict(base, sigil_image=dict(img, secure_boot_db=None)),
        "a db certificate for an unsigned image": dict(base, sigil_image=dict(unsigned, secure_boot_db=img["secure_boot_db"])),
        "a PK for an unsigned image": dict(base, sigil_image=dict(unsigned, secure_boot_pk=img["secure_boot_db"])),
        "a KEK for an unsigned image": dict(base, sigil_image=dict(unsigned, secure_boot_kek=img["secure_boot_db"])),
        "a PEM db certificate": dict(base, sigil_image=dict(img, secure_boot_db=str(pem))),
        "a PEM KEK": dict(base, sigil_image=dict(img, secure_boot_kek=str(pem))),
        # Kept: Azure documents confidential OS disk encryption for no custom-key image.
        "confidential disk encryption with a signed image": dict(base, security_encryption_type="DiskWithVMGuestState"),
    }
    accepted = [why for why, values in rejected.items() if harness.accepts(values)]
    assert accepted == []


@pytest.mark.parametrize("size", ["Standard_DC2as_v5", "Standard_EC16es_v5"])
def test_expected_measurements_name_the_enrolled_certificate_works(harness, tf_module, tmp_path, size):
    output = tf_module(MODULE).outputs["expected_measurements"]["value"]
    img, _, section = signed_image(tmp_path)
    got = harness.evaluate(with_image(dict(BASE, vm_size=size), img), object_expression(output))
    assert got["secure_boot"] is True
    assert got["image"]["secure_boot_db_cert_sha256"] == section["db_cert_sha256"]
    assert got["image"]["secure_boot_db_cert_subject"] == "CN=Provider db"
    assert got["image"]["unsigned_uki_sha256"] == "e5" * 32
    assert "Secure Boot is on" in got["evidence_covers"] and "PCR 7" in got["evidence_covers"]
    assert got["policy"].startswith("[vtpm]\nevents = [")
