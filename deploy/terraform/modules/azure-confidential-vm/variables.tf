variable "name" {
  description = "Name of the VM; also the prefix of its network, security group, public IP and NIC."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2 to 40 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "resource_group_name" {
  description = "Existing resource group that receives every resource of the module."
  type        = string
}

variable "location" {
  description = "Azure region; it must offer the chosen confidential size (for example eastus2 or westeurope for Standard_NCC40ads_H100_v5)."
  type        = string
}

variable "zone" {
  description = "Availability zone (\"1\", \"2\" or \"3\"), or null for none."
  type        = string
  default     = null

  validation {
    condition     = var.zone == null || contains(["1", "2", "3"], coalesce(var.zone, "-"))
    error_message = "zone must be \"1\", \"2\", \"3\" or null."
  }
}

variable "vm_size" {
  description = "Confidential VM size. AMD SEV-SNP: Standard_DC*as_v5, Standard_DC*ads_v5, Standard_EC*as_v5, Standard_EC*ads_v5, or Standard_NCC40ads_H100_v5 (SEV-SNP with one H100 in confidential-computing mode). Intel TDX: Standard_DC*es_v5, Standard_DC*eds_v5, Standard_EC*es_v5, Standard_EC*eds_v5."
  type        = string

  validation {
    condition     = can(regex("^Standard_((DC|EC)[0-9]+(a|e)d?s_v5|NCC40ads_H100_v5)$", var.vm_size))
    error_message = "vm_size must be a confidential size: Standard_(DC|EC)N(as|ads|es|eds)_v5 or Standard_NCC40ads_H100_v5."
  }
}

variable "security_encryption_type" {
  description = "Confidential OS-disk encryption: DiskWithVMGuestState (OS disk and VM guest state encrypted, keys released only to the attested VM; needs Secure Boot) or VMGuestStateOnly (guest state only; the only choice with sigil_image, signed or not)."
  type        = string
  default     = "DiskWithVMGuestState"

  validation {
    condition     = contains(["DiskWithVMGuestState", "VMGuestStateOnly"], var.security_encryption_type)
    error_message = "security_encryption_type must be DiskWithVMGuestState or VMGuestStateOnly."
  }
}

variable "secure_vm_disk_encryption_set_id" {
  description = "Disk encryption set (customer-managed key) for the confidential OS disk; null uses platform-managed keys. Only with DiskWithVMGuestState."
  type        = string
  default     = null

  validation {
    condition     = var.secure_vm_disk_encryption_set_id == null || var.security_encryption_type == "DiskWithVMGuestState"
    error_message = "secure_vm_disk_encryption_set_id needs security_encryption_type = DiskWithVMGuestState."
  }
}

variable "os_disk_storage_account_type" {
  description = "Storage type of the OS disk."
  type        = string
  default     = "Premium_LRS"

  validation {
    condition     = contains(["Premium_LRS", "StandardSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS"], var.os_disk_storage_account_type)
    error_message = "os_disk_storage_account_type must be Premium_LRS, StandardSSD_LRS, Premium_ZRS or StandardSSD_ZRS."
  }
}

variable "os_disk_size_gb" {
  description = "OS disk size in GB (the GPU driver needs room on Standard_NCC40ads_H100_v5). Not used with sigil_image: its disk is the size of disk.vhd (1 GiB)."
  type        = number
  default     = 64

  validation {
    condition     = var.os_disk_size_gb >= 30 && var.os_disk_size_gb <= 4095
    error_message = "os_disk_size_gb must be between 30 and 4095."
  }
}

variable "image" {
  description = "Marketplace image when sigil_image is null; it must be a confidential-VM image (Canonical's `cvm` SKUs): Ubuntu 24.04 is ubuntu-24_04-lts/cvm, Ubuntu 22.04 is 0001-com-ubuntu-confidential-vm-jammy/22_04-lts-cvm."
  type = object({
    publisher = string
    offer     = string
    sku       = string
    version   = string
  })
  default = {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "cvm"
    version   = "latest"
  }

  validation {
    condition     = var.image.publisher == "Canonical" && can(regex("cvm$", var.image.sku))
    error_message = "image must be one of Canonical's confidential-VM images (SKU ending in cvm)."
  }
}

variable "admin_username" {
  description = "Administrator account created on the VM (SSH key login only; no inbound SSH is opened)."
  type        = string
  default     = "sigil"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_username)) && !contains(["root", "admin", "administrator"], var.admin_username)
    error_message = "admin_username must be a valid Linux user name other than root, admin or administrator."
  }
}

variable "admin_ssh_public_key" {
  description = "OpenSSH public key for admin_username (for the serial console or a bastion; the NSG admits no SSH). Required without sigil_image; must be null with it (the image has no accounts and no SSH, and its VM no OS profile)."
  type        = string
  default     = null

  validation {
    condition = (var.sigil_image == null
      ? can(regex("^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp[0-9]+) [A-Za-z0-9+/=]+", var.admin_ssh_public_key))
      : var.admin_ssh_public_key == null
    )
    error_message = "admin_ssh_public_key must be an OpenSSH public key without sigil_image, and null with it (the Sigil image has no accounts and no SSH)."
  }
}

variable "vnet_address_space" {
  description = "Address space of the virtual network created for the VM."
  type        = string
  default     = "10.43.0.0/16"

  validation {
    condition     = can(cidrhost(var.vnet_address_space, 0))
    error_message = "vnet_address_space must be an IPv4 CIDR block."
  }
}

variable "subnet_prefix" {
  description = "Address prefix of the VM's subnet (inside vnet_address_space)."
  type        = string
  default     = "10.43.1.0/24"

  validation {
    condition     = can(cidrhost(var.subnet_prefix, 0))
    error_message = "subnet_prefix must be an IPv4 CIDR block."
  }
}

variable "allowed_source_prefixes" {
  description = "CIDR blocks allowed to reach the agent's gRPC port; the security group denies every other inbound flow."
  type        = list(string)

  validation {
    condition     = length(var.allowed_source_prefixes) > 0 && alltrue([for c in var.allowed_source_prefixes : can(cidrhost(c, 0))])
    error_message = "allowed_source_prefixes must be a non-empty list of CIDR blocks."
  }
}

variable "assign_public_ip" {
  description = "Give the VM a static Standard public IP (buyers reach the gRPC API on it)."
  type        = bool
  default     = true
}

variable "accelerated_networking" {
  description = "Enable accelerated networking on the NIC (supported by the DCasv5/ECasv5, DCesv5/ECesv5 and NCCadsH100v5 families). Off with sigil_image, whose image has no driver for the virtual function (it uses hv_netvsc's synthetic path)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release (archive or binary), installed at first boot by the cloud-init bootstrap. Required without sigil_image; must be null with it."
  type        = string
  default     = null

  validation {
    condition     = (var.agent_release_url == null) == (var.sigil_image != null)
    error_message = "Give either agent_release_url and agent_release_sha256 (a marketplace image installs the agent at boot) or sigil_image (the image carries the agent), not both and not neither."
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
  description = "Boot the Sigil agent image (deploy/image: `bash deploy/image/build.sh --out DIR`) instead of `image` with the cloud-init bootstrap: `vhd` is DIR/disk.vhd, uploaded as a page blob to a private container the module creates in the existing storage account `storage_account_id` (same region as the VM) and made a specialized, confidential-VM supported image version in a gallery of the module's; `manifest` is DIR/manifest.json, whose digests are checked against the upload and name it, and whose vTPM events and [vtpm] rules the expected_measurements output publishes. The VM starts from that image as a specialized image (no OS profile, no provisioning agent), vTPM on. An unsigned image (build.sh's) boots with Secure Boot off. A signed one (`deploy/image/sign.py --out DIR`, its manifest has a `secure_boot` section) boots with Secure Boot on: `secure_boot_db` is then required, DIR/secure-boot-db.der, checked against the manifest's secure_boot.db_cert_sha256 and enrolled as the image version's only db certificate (UEFI signature template NoSignatureTemplate: none of Azure's default keys); `secure_boot_pk` and `secure_boot_kek` are optional DER certificates of the provider's Platform Key and Key Exchange Key, and default to the db certificate itself (one key as PK, KEK and db). Either way security_encryption_type must be VMGuestStateOnly: Azure's confidential OS disk encryption needs Secure Boot, which an unsigned image boots without, and is not documented for a custom-key image; the disk holds only the public image. The image carries the agent, its configuration and its kernel, and installs nothing at boot: the bootstrap's agent settings (chain_rpc_url, api_token, buyer_keys, container_engine, agent_extra_config, agent_measurements, a grpc_port other than 7443) are refused with it. No NVIDIA driver is in it: not for Standard_NCC40ads_H100_v5. null: `image` and the bootstrap."
  type = object({
    vhd                = string
    manifest           = string
    storage_account_id = string
    secure_boot_db     = optional(string)
    secure_boot_pk     = optional(string)
    secure_boot_kek    = optional(string)
  })
  default = null

  validation {
    condition = var.sigil_image == null ? true : (
      endswith(var.sigil_image.vhd, "disk.vhd") &&
      endswith(var.sigil_image.manifest, "manifest.json") &&
      can(regex("^/subscriptions/[^/]+/resource[Gg]roups/[^/]+/providers/Microsoft\\.Storage/storageAccounts/[a-z0-9]{3,24}$", var.sigil_image.storage_account_id))
    )
    error_message = "sigil_image.vhd must be the build's disk.vhd, .manifest its manifest.json, .storage_account_id the resource ID of a storage account (/subscriptions/.../resourceGroups/.../providers/Microsoft.Storage/storageAccounts/NAME)."
  }

  validation {
    condition     = var.sigil_image == null || var.vm_size != "Standard_NCC40ads_H100_v5"
    error_message = "The Sigil image carries no NVIDIA driver: Standard_NCC40ads_H100_v5 (confidential H100) needs the marketplace image and the bootstrap."
  }

  validation {
    condition     = var.sigil_image == null || var.security_encryption_type == "VMGuestStateOnly"
    error_message = "With sigil_image set security_encryption_type = \"VMGuestStateOnly\": Azure encrypts a confidential OS disk (DiskWithVMGuestState) only with Secure Boot on, which an unsigned image boots without, and does not document it for an image with custom UEFI keys (a signed one); the disk holds only the public image and the agent keeps its state in memory."
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

  validation {
    # These configure the bootstrap's agent; the image's configuration is in the image.
    condition = var.sigil_image == null || (
      var.chain_rpc_url == null && var.api_token == null && length(var.buyer_keys) == 0 &&
      var.container_engine == null && var.agent_extra_config == "" && var.agent_measurements == null &&
      var.grpc_port == 7443
    )
    error_message = "With sigil_image the agent's configuration is the image's (deploy/image/agent.toml, its digest in the manifest; gRPC on 7443): chain_rpc_url, api_token, buyer_keys, container_engine, agent_extra_config and agent_measurements configure the bootstrap's agent only, and grpc_port must stay 7443."
  }

  validation {
    # The container the module creates is named after the VM: no "--" in a container name.
    condition     = var.sigil_image == null || !strcontains(var.name, "--")
    error_message = "With sigil_image, name must not contain \"--\" (it names the image's storage container)."
  }
}

variable "grpc_port" {
  description = "TCP port of the agent's gRPC API, the only port the security group opens."
  type        = number
  default     = 7443
}

variable "chain_rpc_url" {
  description = "WebSocket RPC URL of the chain the agent submits receipts to; null for none."
  type        = string
  default     = null
}

variable "api_token" {
  description = "Optional submission token for the agent (kept in state as part of custom_data; prefer buyer-signed submissions)."
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
  description = "NVIDIA server driver branch installed on GPU sizes (Ubuntu's signed open kernel modules)."
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
