variable "project_id" {
  description = "GCP project that holds the VM, its network and its service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID."
  }
}

variable "name" {
  description = "Name of the VM; also the prefix of the network, firewall and service account it gets."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,22}[a-z0-9])?$", var.name))
    error_message = "name must be 1 to 24 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "zone" {
  description = "Zone to create the VM in; it must offer the chosen machine type with Confidential VM (for example us-central1-a for N2D SEV-SNP and C3 TDX, a zone with A3 capacity for the H100)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must look like us-central1-a."
  }
}

variable "confidential_instance_type" {
  description = "TEE of the VM: SEV_SNP (AMD, N2D on AMD Milan) or TDX (Intel, C3, and A3 with a confidential H100)."
  type        = string

  validation {
    condition     = contains(["SEV_SNP", "TDX"], var.confidential_instance_type)
    error_message = "confidential_instance_type must be SEV_SNP or TDX."
  }
}

variable "machine_type" {
  description = "Machine type. SEV_SNP: n2d-standard-*, n2d-highmem-*, n2d-highcpu-*. TDX: c3-standard-*, or a3-highgpu-1g for one H100 in confidential-computing mode."
  type        = string

  validation {
    condition = (
      var.confidential_instance_type == "SEV_SNP"
      ? can(regex("^n2d-(standard|highmem|highcpu)-[0-9]+$", var.machine_type))
      : can(regex("^(c3-standard-[0-9]+|a3-highgpu-1g)$", var.machine_type))
    )
    error_message = "machine_type does not support the chosen TEE: SEV_SNP needs n2d-(standard|highmem|highcpu)-N; TDX needs c3-standard-N or a3-highgpu-1g."
  }
}

variable "provisioning_model" {
  description = "STANDARD or SPOT. Confidential H100 capacity (a3-highgpu-1g) is mostly sold as Spot; a Spot VM is stopped, not deleted, when preempted."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "SPOT"], var.provisioning_model)
    error_message = "provisioning_model must be STANDARD or SPOT."
  }
}

variable "image" {
  description = "Boot image when sigil_image is null. It must carry the SEV_SNP_CAPABLE or TDX_CAPABLE guest OS feature and run cloud-init: Ubuntu images from ubuntu-os-cloud or ubuntu-os-pro-cloud do."
  type        = string
  default     = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"

  validation {
    condition     = can(regex("^projects/ubuntu-os(-pro)?-cloud/global/images/", var.image))
    error_message = "image must be an Ubuntu image from ubuntu-os-cloud or ubuntu-os-pro-cloud (confidential-capable and cloud-init based)."
  }
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB (the GPU driver needs room: keep 50 or more on a3-highgpu-1g)."
  type        = number
  default     = 50

  validation {
    condition     = var.boot_disk_size_gb >= 20 && var.boot_disk_size_gb <= 2048
    error_message = "boot_disk_size_gb must be between 20 and 2048."
  }
}

variable "boot_disk_type" {
  description = "Boot disk type; C3 and A3 take no pd-standard."
  type        = string
  default     = "pd-balanced"

  validation {
    condition     = contains(["pd-balanced", "pd-ssd", "hyperdisk-balanced"], var.boot_disk_type)
    error_message = "boot_disk_type must be pd-balanced, pd-ssd or hyperdisk-balanced."
  }
}

variable "boot_disk_kms_key_self_link" {
  description = "Cloud KMS key (self link) that encrypts the boot disk; null uses Google-managed keys."
  type        = string
  default     = null
}

variable "subnet_cidr" {
  description = "IPv4 range of the subnet created for the VM."
  type        = string
  default     = "10.42.0.0/24"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be an IPv4 CIDR block."
  }
}

variable "allowed_source_ranges" {
  description = "CIDR blocks allowed to reach the agent's gRPC port; the firewall opens nothing else."
  type        = list(string)

  validation {
    condition     = length(var.allowed_source_ranges) > 0 && alltrue([for c in var.allowed_source_ranges : can(cidrhost(c, 0))])
    error_message = "allowed_source_ranges must be a non-empty list of CIDR blocks."
  }
}

variable "assign_public_ip" {
  description = "Give the VM an ephemeral external IP (buyers reach the gRPC API on it, and the VM downloads the agent release through it)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the VM against deletion."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels added to the VM and its disk."
  type        = map(string)
  default     = {}
}

variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release (archive or binary), installed at first boot by the cloud-init bootstrap. Required without sigil_image; must be null with it."
  type        = string
  default     = null

  validation {
    condition     = (var.agent_release_url == null) == (var.sigil_image != null)
    error_message = "Give either agent_release_url and agent_release_sha256 (an Ubuntu image installs the agent at boot) or sigil_image (the image carries the agent), not both and not neither."
  }
}

variable "agent_release_sha256" {
  description = "SHA-256 (64 lowercase hex digits) of what agent_release_url serves; checked on the VM before install. Required without sigil_image; must be null with it."
  type        = string
  default     = null

  validation {
    condition     = (var.agent_release_sha256 == null) == (var.sigil_image != null)
    error_message = "agent_release_sha256 goes with agent_release_url: set both without sigil_image, neither with it."
  }
}

variable "sigil_image" {
  description = "Boot the Sigil agent image (deploy/image: `bash deploy/image/build.sh --out DIR`) instead of `image` with the cloud-init bootstrap: `tar_gz` is DIR/disk.tar.gz, uploaded to the existing bucket `bucket` and imported as this project's custom image (guest OS features UEFI_COMPATIBLE, GVNIC, SEV_SNP_CAPABLE, TDX_CAPABLE); `manifest` is DIR/manifest.json, whose digests are checked against the upload's name and whose measurements the expected_measurements output publishes. The image carries the agent, its configuration and its kernel, and installs nothing at boot. No NVIDIA driver is in it: not for a3-highgpu-1g. An unsigned image (build.sh's) boots with Secure Boot off. A signed one (`deploy/image/sign.py --out DIR`, its manifest has a `secure_boot` section) boots with Secure Boot on: `secure_boot_db` is then required, DIR/secure-boot-db.der, checked against the manifest's secure_boot.db_cert_sha256 and enrolled as the image's only db certificate; `secure_boot_pk` and `secure_boot_kek` are optional DER certificates of the provider's Platform Key and Key Exchange Key, and default to the db certificate itself (one key as PK, KEK and db). Google's default keys are not enrolled: only what the db key signed boots. null: `image` and the bootstrap."
  type = object({
    tar_gz          = string
    manifest        = string
    bucket          = string
    secure_boot_db  = optional(string)
    secure_boot_pk  = optional(string)
    secure_boot_kek = optional(string)
  })
  default = null

  validation {
    condition = var.sigil_image == null ? true : (
      endswith(var.sigil_image.tar_gz, "disk.tar.gz") &&
      endswith(var.sigil_image.manifest, "manifest.json") &&
      can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.sigil_image.bucket))
    )
    error_message = "sigil_image.tar_gz must be the build's disk.tar.gz, .manifest its manifest.json, .bucket a GCS bucket name."
  }

  validation {
    condition     = var.sigil_image == null || !startswith(var.machine_type, "a3-")
    error_message = "The Sigil image carries no NVIDIA driver: a3-highgpu-1g (confidential H100) needs the Ubuntu image and the bootstrap."
  }

  validation {
    # The db certificate goes with a signed image (its manifest's secure_boot section).
    condition = var.sigil_image == null ? true : (
      (var.sigil_image.secure_boot_db != null) == (try(jsondecode(file(var.sigil_image.manifest)).secure_boot, null) != null)
    )
    error_message = "sigil_image.secure_boot_db is required exactly for a signed image: give DIR/secure-boot-db.der of `deploy/image/sign.py --out DIR` when the manifest has a secure_boot section, and leave it out for an unsigned image (build.sh's), which boots with Secure Boot off."
  }

  validation {
    condition = var.sigil_image == null ? true : (
      var.sigil_image.secure_boot_db != null || (var.sigil_image.secure_boot_pk == null && var.sigil_image.secure_boot_kek == null)
    )
    error_message = "sigil_image.secure_boot_pk and .secure_boot_kek go with a signed image and its secure_boot_db."
  }

  validation {
    # DER (a certificate's base64 starts with MI: 0x30 0x82, a SEQUENCE), not PEM.
    condition = var.sigil_image == null ? true : alltrue([
      for f in compact([var.sigil_image.secure_boot_db, var.sigil_image.secure_boot_pk, var.sigil_image.secure_boot_kek]) :
      can(regex("^MI", filebase64(f)))
    ])
    error_message = "sigil_image.secure_boot_db, .secure_boot_pk and .secure_boot_kek must be X.509 certificates in DER (`openssl x509 -in CERT.pem -outform DER -out CERT.der`)."
  }
}

variable "grpc_port" {
  description = "TCP port of the agent's gRPC API, the only port the firewall opens."
  type        = number
  default     = 7443
}

variable "chain_rpc_url" {
  description = "WebSocket RPC URL of the chain the agent submits receipts to; null for none."
  type        = string
  default     = null
}

variable "api_token" {
  description = "Optional submission token for the agent (kept in state as part of the user data; prefer buyer-signed submissions)."
  type        = string
  default     = null
  sensitive   = true
}

variable "evidence_mode" {
  description = "Receipt binding mode: attested-key or fresh-quote."
  type        = string
  default     = "attested-key"
}

variable "buyer_keys" {
  description = "Hex ed25519 public keys of the buyers allowed to submit jobs; empty accepts any correctly signed submission."
  type        = list(string)
  default     = []
}

variable "container_engine" {
  description = "Container engine (podman or docker) installed for OCI workloads; null for process workloads only."
  type        = string
  default     = null
}

variable "nvidia_driver_branch" {
  description = "NVIDIA server driver branch installed on GPU shapes (Ubuntu's signed open kernel modules)."
  type        = string
  default     = "570"
}

variable "agent_extra_config" {
  description = "Extra TOML appended to the agent configuration (must start with a [table] header)."
  type        = string
  default     = ""
}

variable "agent_measurements" {
  description = "What the agent extends into RTMR3 at start on TDX, as `sigil-agent --config <the VM's agent.toml> measure --binary <the release's sigil-agent>` prints it ({agent_digest, config_digest}, SHA-384 hex); published in the expected_measurements output for policy authors. null: not published."
  type = object({
    agent_digest  = string
    config_digest = string
  })
  default = null

  validation {
    condition = var.agent_measurements == null ? true : (
      can(regex("^[0-9a-f]{96}$", var.agent_measurements.agent_digest)) &&
      can(regex("^[0-9a-f]{96}$", var.agent_measurements.config_digest))
    )
    error_message = "agent_measurements.agent_digest and .config_digest must be SHA-384 values, 96 lower-case hex digits."
  }
}
