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
  description = "Confidential OS-disk encryption: DiskWithVMGuestState (OS disk and VM guest state encrypted, keys released only to the attested VM) or VMGuestStateOnly (guest state only)."
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
  description = "OS disk size in GB (the GPU driver needs room on Standard_NCC40ads_H100_v5)."
  type        = number
  default     = 64

  validation {
    condition     = var.os_disk_size_gb >= 30 && var.os_disk_size_gb <= 4095
    error_message = "os_disk_size_gb must be between 30 and 4095."
  }
}

variable "image" {
  description = "Marketplace image; it must be a confidential-VM image (Canonical's `cvm` SKUs): Ubuntu 24.04 is ubuntu-24_04-lts/cvm, Ubuntu 22.04 is 0001-com-ubuntu-confidential-vm-jammy/22_04-lts-cvm."
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
  description = "OpenSSH public key for admin_username (for the serial console or a bastion; the NSG admits no SSH)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp[0-9]+) [A-Za-z0-9+/=]+", var.admin_ssh_public_key))
    error_message = "admin_ssh_public_key must be an OpenSSH public key."
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
  description = "Enable accelerated networking on the NIC (supported by the DCasv5/ECasv5, DCesv5/ECesv5 and NCCadsH100v5 families)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release (archive or binary)."
  type        = string
}

variable "agent_release_sha256" {
  description = "SHA-256 (64 lowercase hex digits) of what agent_release_url serves; checked on the VM before install."
  type        = string
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
