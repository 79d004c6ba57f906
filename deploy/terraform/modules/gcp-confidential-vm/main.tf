# A GCP Confidential VM (AMD SEV-SNP on N2D, Intel TDX on C3, or Intel TDX with
# an NVIDIA H100 in confidential-computing mode on a3-highgpu-1g) that installs
# and starts sigil-agent at first boot, or that boots the Sigil agent image
# (deploy/image) with the agent already in it. Its own network admits only the
# agent's gRPC port, and only from allowed_source_ranges.

locals {
  region = regex("^(.*)-[a-z]$", var.zone)[0]
  tee    = var.confidential_instance_type == "SEV_SNP" ? "SEV-SNP" : "TDX"
  # a3-highgpu-1g comes with one H100 attached by the machine type itself.
  gpu = startswith(var.machine_type, "a3-")
  # SEV-SNP is offered on AMD Milan only; TDX runs on the one CPU platform of
  # its families (Sapphire Rapids), so no minimum is set there.
  min_cpu_platform = var.confidential_instance_type == "SEV_SNP" ? "AMD Milan" : null
  spot             = var.provisioning_model == "SPOT"
  network_tag      = "${var.name}-sigil-agent"
  labels           = merge(var.labels, { "sigil-role" = "provider-agent", "sigil-tee" = lower(var.confidential_instance_type) })
  # What this VM's hardware evidence covers (docs/measured-boot.md, deploy/image/README.md).
  evidence_covers = "${local.tee == "SEV-SNP" ? "SEV-SNP on GCP: the launch MEASUREMENT covers Google's firmware and the vCPU count only; the guest kernel, initrd and sigil-agent are not in the hardware evidence (a policy pins the firmware measurement and names no guest software)" : "TDX on GCP: MRTD covers Google's TDVF; RTMR1/RTMR2 hold the guest's boot chain (the CCEL event log the agent carries replays to them) and RTMR3 the agent's own digests where the kernel has the TDX measurement interface (Linux 6.16 or later)"}${local.signed_image ? local.secure_boot_covers : ""}"
  # With a signed Sigil image the firmware also measures the Secure Boot variables and the
  # db certificate that admitted the UKI; the manifest does not predict them.
  secure_boot_covers = "; Secure Boot is on with the image's own db certificate (expected_measurements.image.secure_boot_db_cert_sha256)${local.tee == "TDX" ? ": RTMR0 also holds the Secure Boot variables and that certificate, which the manifest does not predict and the image's policy does not pin" : ", which the SEV-SNP evidence does not cover either"}"
  # The [tdx] rules that pin the agent (TDX only: SEV-SNP has no runtime register).
  agent_policy = var.agent_measurements == null || local.tee != "TDX" ? null : "[tdx]\nagent_digests = [\"${try(var.agent_measurements.agent_digest, "")}\"]\nconfig_digests = [\"${try(var.agent_measurements.config_digest, "")}\"]\n"

  # The Sigil agent image (deploy/image/README.md): its manifest names the upload by
  # digest and says what TDX evidence of its disk boot holds (the UKI's RTMR1 event,
  # which covers kernel, initrd, agent, configuration and command line).
  sigil_image    = var.sigil_image != null
  image_manifest = local.sigil_image ? jsondecode(file(var.sigil_image.manifest)) : null
  image_tar_gz   = local.sigil_image ? local.image_manifest.disk.files["disk.tar.gz"] : null
  image_policy   = local.sigil_image && local.tee == "TDX" ? local.image_manifest.policy_fragments["tdx-disk"] : null
  # A signed image (deploy/image/sign.py): its manifest's secure_boot section names the
  # db certificate whose key signed the UKI. Secure Boot is on for it (and for Ubuntu's
  # signed chain), off only for an unsigned Sigil image.
  image_secure_boot = try(local.image_manifest.secure_boot, null)
  signed_image      = local.image_secure_boot != null
  secure_boot       = !local.sigil_image || local.signed_image
  # The image's UEFI variables (DER certificates, base64): db is the image's certificate;
  # PK and KEK are the provider's, or that same certificate when none is given (one key
  # as PK, KEK and db). With a PK the firmware is in User Mode and enforces Secure Boot.
  secure_boot_db  = local.signed_image ? filebase64(var.sigil_image.secure_boot_db) : null
  secure_boot_pk  = local.signed_image ? filebase64(coalesce(var.sigil_image.secure_boot_pk, var.sigil_image.secure_boot_db)) : null
  secure_boot_kek = local.signed_image ? filebase64(coalesce(var.sigil_image.secure_boot_kek, var.sigil_image.secure_boot_db)) : null
  # The image's name carries the disk's digest and, signed, the enrolled keys' (new keys
  # are a new image, and a new image a new VM: keys are copied into a VM when it is made).
  image_keys = local.signed_image ? "-${substr(sha256(join(",", [local.secure_boot_pk, local.secure_boot_kek, local.secure_boot_db])), 0, 8)}" : ""
  image_name = local.sigil_image ? "${var.name}-sigil-${substr(local.image_tar_gz.sha256, 0, 16)}${local.image_keys}" : null
}

module "bootstrap" {
  source = "../agent-bootstrap"
  count  = local.sigil_image ? 0 : 1

  agent_release_url    = var.agent_release_url
  agent_release_sha256 = var.agent_release_sha256
  expected_tee         = local.tee
  gpu_mode             = local.gpu ? "required" : "none"
  nvidia_driver_branch = var.nvidia_driver_branch
  grpc_port            = var.grpc_port
  chain_rpc_url        = var.chain_rpc_url
  api_token            = var.api_token
  buyer_keys           = var.buyer_keys
  container_engine     = var.container_engine
  evidence_mode        = var.evidence_mode
  extra_config         = var.agent_extra_config
}

# The Sigil image: disk.tar.gz uploaded under its own SHA-256 (a changed file is a new
# object and a new image, never an overwrite), then imported as a custom image.
resource "google_storage_bucket_object" "sigil_image" {
  count        = local.sigil_image ? 1 : 0
  bucket       = var.sigil_image.bucket
  name         = "sigil-agent-image/${local.image_tar_gz.sha256}.tar.gz"
  source       = var.sigil_image.tar_gz
  content_type = "application/gzip"

  lifecycle {
    precondition {
      condition     = filesha256(var.sigil_image.tar_gz) == local.image_tar_gz.sha256
      error_message = "sigil_image.tar_gz is not the disk.tar.gz its manifest.json names (SHA-256 differs): give the files of one build."
    }
  }
}

resource "google_compute_image" "sigil" {
  count       = local.sigil_image ? 1 : 0
  project     = var.project_id
  name        = local.image_name
  description = "Sigil agent image; disk.tar.gz SHA-256 ${local.image_tar_gz.sha256}${local.signed_image ? "; UKI signed, db certificate SHA-256 ${local.image_secure_boot.db_cert_sha256}" : ""}"
  labels      = local.labels

  raw_disk {
    source = "https://storage.googleapis.com/${var.sigil_image.bucket}/${google_storage_bucket_object.sigil_image[0].name}"
  }

  # UEFI boot of the UKI; gVNIC (the image's initrd has gve); both confidential TEEs.
  dynamic "guest_os_features" {
    for_each = ["UEFI_COMPATIBLE", "GVNIC", "SEV_SNP_CAPABLE", "TDX_CAPABLE"]
    content {
      type = guest_os_features.value
    }
  }

  # A signed image: its UEFI variables, which replace Google's default keys (Microsoft's),
  # so that Secure Boot starts only what the provider's db key signed. No dbx: nothing
  # this key signed is revoked.
  dynamic "shielded_instance_initial_state" {
    for_each = local.signed_image ? [1] : []
    content {
      pk {
        content   = local.secure_boot_pk
        file_type = "X509"
      }
      keks {
        content   = local.secure_boot_kek
        file_type = "X509"
      }
      dbs {
        content   = local.secure_boot_db
        file_type = "X509"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.signed_image ? filesha256(var.sigil_image.secure_boot_db) == local.image_secure_boot.db_cert_sha256 : true
      error_message = "sigil_image.secure_boot_db is not the certificate the signed image's manifest.json names (secure_boot.db_cert_sha256 differs): give the secure-boot-db.der of the same sign.py run."
    }
  }
}

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = "${var.name}-net"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  #checkov:skip=CKV_GCP_26: VPC flow logs are billed per GB and carry no attestation value; providers enable them on their own network if they want them.
  project                  = var.project_id
  name                     = "${var.name}-subnet"
  region                   = local.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
}

# The only ingress: the agent's gRPC port, to VMs with this module's tag.
resource "google_compute_firewall" "grpc" {
  project       = var.project_id
  name          = "${var.name}-allow-grpc"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = var.allowed_source_ranges
  target_tags   = [local.network_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.grpc_port)]
  }
}

# A VM-only identity with no project roles: the agent needs no GCP API.
resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = "${var.name}-agent"
  display_name = "sigil-agent on ${var.name}"
}

resource "google_compute_instance" "this" {
  #checkov:skip=CKV_GCP_40: buyers reach the agent's gRPC API on the external IP; the firewall admits only that port from allowed_source_ranges, and assign_public_ip = false removes it.
  #checkov:skip=CKV_GCP_38: CSEK keys would have to sit in Terraform state; boot_disk_kms_key_self_link gives customer-managed (KMS) keys instead, and the data in use is protected by the TEE.
  project             = var.project_id
  name                = var.name
  zone                = var.zone
  machine_type        = var.machine_type
  min_cpu_platform    = local.min_cpu_platform
  deletion_protection = var.deletion_protection
  tags                = [local.network_tag]
  labels              = local.labels

  confidential_instance_config {
    confidential_instance_type = var.confidential_instance_type
  }

  # Confidential VMs cannot live-migrate (SEV-SNP, TDX) and GPU VMs never do.
  scheduling {
    on_host_maintenance         = "TERMINATE"
    provisioning_model          = var.provisioning_model
    preemptible                 = local.spot
    automatic_restart           = !local.spot
    instance_termination_action = local.spot ? "STOP" : null
  }

  # Secure Boot stays on for the signed Ubuntu chain, and for a signed Sigil image, whose
  # image enrolls the provider's db certificate. An unsigned Sigil image's UKI is not
  # signed by a key in Google's default db, so Secure Boot would refuse it: it boots with
  # Secure Boot off, and what it boots is named instead by its measurement (TDX: the UKI's
  # RTMR1 event, expected_measurements).
  shielded_instance_config {
    enable_secure_boot          = local.secure_boot
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  boot_disk {
    kms_key_self_link = var.boot_disk_kms_key_self_link

    initialize_params {
      image  = local.sigil_image ? google_compute_image.sigil[0].self_link : var.image
      size   = var.boot_disk_size_gb
      type   = var.boot_disk_type
      labels = local.labels
    }
  }

  network_interface {
    subnetwork = google_compute_subnetwork.this.id
    nic_type   = "GVNIC"

    dynamic "access_config" {
      for_each = var.assign_public_ip ? [1] : []
      content {}
    }
  }

  metadata = {
    user-data              = local.sigil_image ? null : module.bootstrap[0].cloud_init
    block-project-ssh-keys = "TRUE"
    enable-oslogin         = "TRUE"
    serial-port-enable     = "FALSE"
  }

  service_account {
    email  = google_service_account.this.email
    scopes = ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring.write"]
  }
}
