"""GCP module: confidential settings, shapes per TEE, firewall scope."""

from __future__ import annotations

import hashlib
import re

import pytest

from conftest import (GCP_EXAMPLES, VariableHarness, b64, der_certificate, expression, object_expression,
                      sign_manifest, single)

MODULE = "gcp-confidential-vm"

BASE = {
    "project_id": "provider-project-1",
    "name": "sigil-test",
    "zone": "us-central1-a",
    "allowed_source_ranges": ["203.0.113.0/24"],
    "agent_release_url": "https://releases.example.org/sigil-agent.tar.gz",
    "agent_release_sha256": "a" * 64,
}

# (confidential_instance_type, machine_type) -> (tee, min_cpu_platform, gpu)
VALID_SHAPES = {
    ("SEV_SNP", "n2d-standard-2"): ("SEV-SNP", "AMD Milan", False),
    ("SEV_SNP", "n2d-standard-4"): ("SEV-SNP", "AMD Milan", False),
    ("SEV_SNP", "n2d-highmem-16"): ("SEV-SNP", "AMD Milan", False),
    ("SEV_SNP", "n2d-highcpu-224"): ("SEV-SNP", "AMD Milan", False),
    ("TDX", "c3-standard-4"): ("TDX", None, False),
    ("TDX", "c3-standard-176"): ("TDX", None, False),
    ("TDX", "a3-highgpu-1g"): ("TDX", None, True),
}

INVALID_SHAPES = [
    ("SEV_SNP", "c3-standard-4"),  # Intel
    ("SEV_SNP", "c2d-standard-4"),  # AMD SEV, not SEV-SNP
    ("SEV_SNP", "c3d-standard-4"),  # AMD SEV, not SEV-SNP
    ("SEV_SNP", "n2-standard-4"),  # Intel N2
    ("SEV_SNP", "a3-highgpu-1g"),
    ("TDX", "n2d-standard-4"),
    ("TDX", "c3d-standard-4"),  # AMD
    ("TDX", "a3-highgpu-8g"),  # only the 1-GPU A3 shape has a confidential H100
    ("TDX", "a2-highgpu-1g"),  # A100, no confidential GPU
    ("TDX", "c3-standard-4-lssd"),
    ("SEV", "n2d-standard-4"),  # SEV without SNP is not tier 3
]


@pytest.fixture()
def harness(terraform, tmp_path, tf_module):
    return VariableHarness(terraform, tmp_path, tf_module(MODULE), with_locals=True)


def instance(tf_module):
    return tf_module(MODULE).resource("google_compute_instance")


def test_confidential_instance_type_comes_from_the_validated_variable_works(tf_module):
    cfg = single(instance(tf_module)["confidential_instance_config"])
    assert cfg["confidential_instance_type"] == "${var.confidential_instance_type}"
    # enable_confidential_compute is the legacy SEV-only switch; never turned off.
    assert cfg.get("enable_confidential_compute", True) is not False


def test_host_maintenance_terminates_works(tf_module):
    scheduling = single(instance(tf_module)["scheduling"])
    assert scheduling["on_host_maintenance"] == "TERMINATE"
    assert scheduling["provisioning_model"] == "${var.provisioning_model}"
    assert scheduling["preemptible"] == "${local.spot}"
    assert scheduling["automatic_restart"] == "${!local.spot}"


def test_shielded_vm_secure_boot_and_vtpm_are_hard_wired_works(tf_module):
    shielded = single(instance(tf_module)["shielded_instance_config"])
    # Secure Boot is off only for an unsigned Sigil image (its UKI is named by its
    # measurement): test_secure_boot_is_on_except_for_an_unsigned_image_works.
    assert shielded == {
        "enable_secure_boot": "${local.secure_boot}",
        "enable_vtpm": True,
        "enable_integrity_monitoring": True,
    }


def test_instance_uses_gvnic_own_subnet_and_bootstrap_user_data_works(tf_module):
    vm = instance(tf_module)
    nic = single(vm["network_interface"])
    assert nic["nic_type"] == "GVNIC"
    assert nic["subnetwork"] == "${google_compute_subnetwork.this.id}"
    meta = vm["metadata"]
    assert meta["user-data"] == "${local.sigil_image ? null : module.bootstrap[0].cloud_init}"
    assert meta["serial-port-enable"] == "FALSE"
    assert meta["block-project-ssh-keys"] == "TRUE"
    assert meta["enable-oslogin"] == "TRUE"
    assert vm["min_cpu_platform"] == "${local.min_cpu_platform}"
    assert vm["tags"] == ["${local.network_tag}"]
    sa = single(vm["service_account"])
    assert sa["email"] == "${google_service_account.this.email}"
    assert "https://www.googleapis.com/auth/cloud-platform" not in sa["scopes"]


def test_bootstrap_is_told_the_tee_and_gpu_works(tf_module):
    call = tf_module(MODULE).modules["bootstrap"]
    assert call["source"] == "../agent-bootstrap"
    assert call["expected_tee"] == "${local.tee}"
    assert call["gpu_mode"] == '${local.gpu ? "required" : "none"}'
    assert call["agent_release_sha256"] == "${var.agent_release_sha256}"


def test_firewall_opens_only_the_grpc_port_works(tf_module):
    module = tf_module(MODULE)
    firewalls = module.resources["google_compute_firewall"]
    assert list(firewalls) == ["grpc"]
    fw = firewalls["grpc"]
    assert fw["direction"] == "INGRESS"
    assert "deny" not in fw
    allow = single(fw["allow"])
    assert allow == {"protocol": "tcp", "ports": ["${tostring(var.grpc_port)}"]}
    assert fw["source_ranges"] == "${var.allowed_source_ranges}"
    assert fw["target_tags"] == ["${local.network_tag}"]
    assert fw["network"] == "${google_compute_network.this.id}"
    # A network of its own: no default-allow-ssh/rdp/icmp rules apply.
    net = module.resource("google_compute_network")
    assert net["auto_create_subnetworks"] is False


@pytest.mark.parametrize(("tee_type", "machine_type"), sorted(VALID_SHAPES))
def test_confidential_shapes_are_accepted_and_mapped_works(harness, tee_type, machine_type):
    values = dict(BASE, confidential_instance_type=tee_type, machine_type=machine_type)
    assert harness.accepts(values)
    got = harness.evaluate(values, "{tee = local.tee, min = local.min_cpu_platform, gpu = local.gpu, region = local.region}")
    tee, min_cpu, gpu = VALID_SHAPES[(tee_type, machine_type)]
    assert got == {"tee": tee, "min": min_cpu, "gpu": gpu, "region": "us-central1"}


@pytest.mark.parametrize(("tee_type", "machine_type"), INVALID_SHAPES)
def test_shapes_without_the_tee_rejects(harness, tee_type, machine_type):
    values = dict(BASE, confidential_instance_type=tee_type, machine_type=machine_type)
    assert not harness.accepts(values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_source_ranges", []),
        ("allowed_source_ranges", ["not-a-cidr"]),
        ("image", "projects/debian-cloud/global/images/family/debian-12"),
        ("provisioning_model", "PREEMPTIBLE"),
        ("boot_disk_type", "pd-standard"),
        ("zone", "us-central1"),
    ],
)
def test_unsafe_or_unsupported_settings_rejects(harness, field, value):
    # The same values without the change pass: test_confidential_shapes_are_accepted_and_mapped_works.
    values = dict(BASE, confidential_instance_type="SEV_SNP", machine_type="n2d-standard-4")
    values[field] = value
    assert not harness.accepts(values)


EXPECTED_EXAMPLES = {
    "gcp-sev-snp": ("SEV_SNP", "n2d-standard-4", "STANDARD"),
    "gcp-tdx": ("TDX", "c3-standard-4", "STANDARD"),
    "gcp-h100-cc": ("TDX", "a3-highgpu-1g", "SPOT"),
}


@pytest.mark.parametrize("name", GCP_EXAMPLES)
def test_examples_pick_the_right_shape_works(tf_example, name):
    call = tf_example(name).modules["provider_vm"]
    tee, machine, model = EXPECTED_EXAMPLES[name]
    assert call["confidential_instance_type"] == tee
    assert call["machine_type"] == machine
    assert call["provisioning_model"] == model
    assert call["allowed_source_ranges"] == "${var.allowed_cidrs}"
    assert (tee, machine) in VALID_SHAPES


@pytest.mark.parametrize("name", GCP_EXAMPLES)
def test_examples_pass_the_module_validations_works(harness, tf_example, name):
    call = tf_example(name).modules["provider_vm"]
    values = dict(BASE)
    values.update({k: v for k, v in call.items() if isinstance(v, str) and not v.startswith("${") and k != "source"})
    assert harness.accepts(values)


AGENT = {"agent_digest": "a1" * 48, "config_digest": "c1" * 48}


def test_expected_measurements_say_what_the_evidence_covers_works(harness, tf_module):
    out = tf_module(MODULE).text
    assert 'output "expected_measurements"' in (tf_module(MODULE).path / "outputs.tf").read_text()
    snp = dict(BASE, confidential_instance_type="SEV_SNP", machine_type="n2d-standard-4",
               agent_measurements=AGENT)
    assert harness.accepts(snp)
    got = harness.evaluate(snp, "{covers = local.evidence_covers, policy = local.agent_policy}")
    assert "Google's firmware" in got["covers"] and "not in the hardware evidence" in got["covers"]
    assert got["policy"] is None, "SEV-SNP has no register that pins the agent"
    tdx = dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
               agent_measurements=AGENT)
    got = harness.evaluate(tdx, "{covers = local.evidence_covers, policy = local.agent_policy}")
    assert "RTMR3" in got["covers"]
    assert got["policy"] == (
        f'[tdx]\nagent_digests = ["{"a1" * 48}"]\nconfig_digests = ["{"c1" * 48}"]\n'
    )
    assert "evidence_covers" in out


@pytest.mark.parametrize("field", ["agent_digest", "config_digest"])
def test_agent_measurements_must_be_sha384_rejects(harness, field):
    bad = dict(AGENT, **{field: "ab" * 32})
    values = dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
                  agent_measurements=bad)
    assert not harness.accepts(values)


def sigil_manifest(tmp_path, tar_gz: bytes) -> dict:
    """The parts of a deploy/image manifest.json the module reads."""
    import hashlib
    import json

    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "img" / "disk.tar.gz").write_bytes(tar_gz)
    manifest = {
        "disk": {"files": {"disk.tar.gz": {"sha256": hashlib.sha256(tar_gz).hexdigest(), "size": len(tar_gz)}}},
        "image": {"files": {"uki.efi": {"sha256": "b2" * 32}}},
        "tdx": {"uki_boot_events": [{"rtmr": 1, "digest": "d1" * 48}, {"rtmr": 2, "digest": "d2" * 48}]},
        "agent": {"agent_digest": "a1" * 48, "config_digest": "c1" * 48},
        "policy_fragments": {"tdx-disk": f'[tdx]\nevents = [\n  {{ rtmr = 1, digest = "{"d1" * 48}" }},\n]\n'},
    }
    (tmp_path / "img" / "manifest.json").write_text(json.dumps(manifest))
    return {"tar_gz": str(tmp_path / "img" / "disk.tar.gz"),
            "manifest": str(tmp_path / "img" / "manifest.json"), "bucket": "provider-images"}


def without_release(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.startswith("agent_release_")}


def test_sigil_image_is_imported_and_booted_works(tf_module):
    module = tf_module(MODULE)
    obj = module.resource("google_storage_bucket_object", "sigil_image")
    assert obj["name"] == "sigil-agent-image/${local.image_tar_gz.sha256}.tar.gz"
    assert "filesha256(var.sigil_image.tar_gz) == local.image_tar_gz.sha256" in module.text
    image = module.resource("google_compute_image", "sigil")
    assert "google_storage_bucket_object.sigil_image[0].name" in single(image["raw_disk"])["source"]
    features = [b for b in image["dynamic"] if "guest_os_features" in b][0]["guest_os_features"]["for_each"]
    assert features == ["UEFI_COMPATIBLE", "GVNIC", "SEV_SNP_CAPABLE", "TDX_CAPABLE"]
    disk = single(single(instance(tf_module)["boot_disk"])["initialize_params"])
    assert disk["image"] == "${local.sigil_image ? google_compute_image.sigil[0].self_link : var.image}"
    assert module.modules["bootstrap"]["count"] == "${local.sigil_image ? 0 : 1}"


def test_sigil_image_publishes_its_measurements_works(harness, tmp_path):
    img = sigil_manifest(tmp_path, b"the disk")
    tdx = without_release(dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
                               sigil_image=img))
    assert harness.accepts(tdx)
    got = harness.evaluate(tdx, "{policy = local.image_policy, tar = local.image_tar_gz}")
    assert got["policy"].startswith("[tdx]\nevents = [") and "d1" * 48 in got["policy"]
    assert got["tar"]["size"] == len(b"the disk")
    snp = dict(tdx, confidential_instance_type="SEV_SNP", machine_type="n2d-standard-4")
    assert harness.evaluate(snp, "local.image_policy") is None


def test_sigil_image_with_release_or_gpu_or_bad_paths_rejects(harness, tmp_path):
    img = sigil_manifest(tmp_path, b"the disk")
    tdx = dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4", sigil_image=img)
    assert not harness.accepts(tdx), "both a release and the image"
    assert not harness.accepts(without_release(dict(tdx, sigil_image=None))), "neither"
    bare = without_release(tdx)
    assert not harness.accepts(dict(bare, machine_type="a3-highgpu-1g")), "no NVIDIA driver in the image"
    assert not harness.accepts(dict(bare, sigil_image=dict(img, tar_gz=img["manifest"])))
    assert not harness.accepts(dict(bare, sigil_image=dict(img, bucket="Not A Bucket")))


# --- A signed Sigil image (deploy/image/sign.py): Secure Boot on, the image's db
# certificate enrolled in the image's UEFI variables.


def subdir(tmp_path, name: str):
    (tmp_path / name).mkdir()
    return tmp_path / name


def signed_image(tmp_path, tar_gz: bytes = b"the signed disk") -> tuple[dict, bytes, dict]:
    """sigil_image for a signed build: its manifest has sign.py's secure_boot section and
    secure_boot_db is the certificate it names. (sigil_image, certificate, section)"""
    img = sigil_manifest(tmp_path, tar_gz)
    cert = der_certificate(tmp_path / "img" / "secure-boot-db.der", "Provider db")
    section = sign_manifest(tmp_path / "img" / "manifest.json", cert, "Provider db")
    return dict(img, secure_boot_db=str(tmp_path / "img" / "secure-boot-db.der")), cert, section


def image_resource(tf_module):
    return tf_module(MODULE).resource("google_compute_image", "sigil")


def initial_state(tf_module) -> dict:
    blocks = [b["shielded_instance_initial_state"] for b in image_resource(tf_module)["dynamic"]
              if "shielded_instance_initial_state" in b]
    assert len(blocks) == 1, "the image's shielded_instance_initial_state (its UEFI keys) is missing"
    return blocks[0]


def test_signed_image_enrolls_its_db_certificate_works(harness, tf_module, tmp_path):
    state = initial_state(tf_module)
    # Every key is an X.509 certificate (DER, base64); PK, KEK and db are all set, so the
    # firmware is out of Setup Mode and enforces Secure Boot.
    assert single(state["content"]) == {
        "pk": [{"content": "${local.secure_boot_pk}", "file_type": "X509"}],
        "keks": [{"content": "${local.secure_boot_kek}", "file_type": "X509"}],
        "dbs": [{"content": "${local.secure_boot_db}", "file_type": "X509"}],
    }
    img, cert, section = signed_image(tmp_path)
    values = without_release(dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
                                  sigil_image=img))
    assert harness.accepts(values)
    assert harness.evaluate(values, expression(state["for_each"])) == [1]
    got = harness.evaluate(values, "{db = local.secure_boot_db, pk = local.secure_boot_pk, kek = local.secure_boot_kek}")
    # One key as PK, KEK and db when the provider gives no PK or KEK of its own.
    assert got == {"db": b64(cert), "pk": b64(cert), "kek": b64(cert)}
    shielded = single(instance(tf_module)["shielded_instance_config"])
    assert harness.evaluate(values, expression(shielded["enable_secure_boot"])) is True
    # The image is named by the disk and the keys: other keys, another image (and VM).
    name = harness.evaluate(values, expression(image_resource(tf_module)["name"]))
    tar_sha = hashlib.sha256(b"the signed disk").hexdigest()
    assert re.fullmatch(f"sigil-test-sigil-{tar_sha[:16]}-[0-9a-f]{{8}}", name) and len(name) <= 63
    description = harness.evaluate(values, f'"{image_resource(tf_module)["description"]}"')
    assert section["db_cert_sha256"] in description


def test_signed_image_takes_the_providers_pk_and_kek_works(harness, tmp_path):
    img, cert, _ = signed_image(tmp_path)
    pk = der_certificate(tmp_path / "pk.der", "Provider PK")
    kek = der_certificate(tmp_path / "kek.der", "Provider KEK")
    values = without_release(dict(BASE, confidential_instance_type="SEV_SNP", machine_type="n2d-standard-4",
                                  sigil_image=dict(img, secure_boot_pk=str(tmp_path / "pk.der"),
                                                   secure_boot_kek=str(tmp_path / "kek.der"))))
    assert harness.accepts(values)
    got = harness.evaluate(values, "{db = local.secure_boot_db, pk = local.secure_boot_pk, kek = local.secure_boot_kek}")
    assert got == {"db": b64(cert), "pk": b64(pk), "kek": b64(kek)}


def test_unsigned_image_enrolls_nothing_and_boots_without_secure_boot_works(harness, tf_module, tmp_path):
    img = sigil_manifest(tmp_path, b"the disk")
    values = without_release(dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
                                  sigil_image=img))
    assert harness.accepts(values)
    assert harness.evaluate(values, expression(initial_state(tf_module)["for_each"])) == []
    shielded = single(instance(tf_module)["shielded_instance_config"])
    assert harness.evaluate(values, expression(shielded["enable_secure_boot"])) is False
    got = harness.evaluate(values, "{signed = local.signed_image, db = local.secure_boot_db, pk = local.secure_boot_pk}")
    assert got == {"signed": False, "db": None, "pk": None}
    # Named as before signed images existed: the same image, not a new one.
    name = harness.evaluate(values, expression(image_resource(tf_module)["name"]))
    assert name == f"sigil-test-sigil-{hashlib.sha256(b'the disk').hexdigest()[:16]}"
    # Ubuntu (no Sigil image): Secure Boot on with Google's default keys.
    ubuntu = dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4")
    assert harness.evaluate(ubuntu, expression(shielded["enable_secure_boot"])) is True
    assert harness.evaluate(ubuntu, expression(initial_state(tf_module)["for_each"])) == []


def test_signed_image_db_certificate_must_match_the_manifest_rejects(harness, tf_module, tmp_path):
    img, _, _ = signed_image(tmp_path)
    other = tmp_path / "other.der"
    der_certificate(other, "Someone else")
    values = without_release(dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4",
                                  sigil_image=img))
    precondition = single(single(image_resource(tf_module)["lifecycle"])["precondition"])
    assert "secure_boot.db_cert_sha256" in precondition["error_message"]
    assert harness.evaluate(values, expression(precondition["condition"])) is True
    wrong = dict(values, sigil_image=dict(img, secure_boot_db=str(other)))
    assert harness.accepts(wrong), "a DER certificate, only not the manifest's: the precondition refuses it"
    assert harness.evaluate(wrong, expression(precondition["condition"])) is False
    unsigned = dict(values, sigil_image=sigil_manifest(subdir(tmp_path, "u"), b"disk"))
    assert harness.evaluate(unsigned, expression(precondition["condition"])) is True


def test_secure_boot_certificates_go_with_a_signed_image_only_rejects(harness, tmp_path):
    img, _, _ = signed_image(subdir(tmp_path, "s"))
    unsigned = sigil_manifest(subdir(tmp_path, "u"), b"the disk")
    pem = tmp_path / "db.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    base = without_release(dict(BASE, confidential_instance_type="TDX", machine_type="c3-standard-4"))
    assert harness.accepts(dict(base, sigil_image=img))
    assert harness.accepts(dict(base, sigil_image=unsigned))
    rejected = {
        "a signed image without its db certificate": dict(img, secure_boot_db=None),
        "a db certificate for an unsigned image": dict(unsigned, secure_boot_db=img["secure_boot_db"]),
        "a PK for an unsigned image": dict(unsigned, secure_boot_pk=img["secure_boot_db"]),
        "a KEK for an unsigned image": dict(unsigned, secure_boot_kek=img["secure_boot_db"]),
        "a PEM db certificate": dict(img, secure_boot_db=str(pem)),
        "a PEM PK": dict(img, secure_boot_pk=str(pem)),
    }
    accepted = [why for why, image in rejected.items() if harness.accepts(dict(base, sigil_image=image))]
    assert accepted == []


@pytest.mark.parametrize(("tee", "machine"), [("TDX", "c3-standard-4"), ("SEV_SNP", "n2d-standard-4")])
def test_expected_measurements_name_the_enrolled_certificate_works(harness, tf_module, tmp_path, tee, machine):
    output = tf_module(MODULE).outputs["expected_measurements"]["value"]
    img, _, section = signed_image(tmp_path)
    values = without_release(dict(BASE, confidential_instance_type=tee, machine_type=machine, sigil_image=img))
    got = harness.evaluate(values, object_expression(output))
    assert got["secure_boot"] is True
    assert got["image"]["secure_boot_db_cert_sha256"] == section["db_cert_sha256"]
    assert got["image"]["secure_boot_db_cert_subject"] == "CN=Provider db"
    assert got["image"]["unsigned_uki_sha256"] == "e5" * 32
    assert "Secure Boot is on" in got["evidence_covers"]
    assert ("RTMR0" in got["evidence_covers"]) == (tee == "TDX")
    plain = harness.evaluate(dict(values, sigil_image=sigil_manifest(subdir(tmp_path, "u"), b"disk")),
                             object_expression(output))
    assert plain["secure_boot"] is False and plain["image"]["secure_boot_db_cert_sha256"] is None
    assert "Secure Boot" not in plain["evidence_covers"]
