variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "name" {
  description = "Name of the provider VM."
  type        = string
  default     = "sigil-tdx"
}

variable "location" {
  description = "Region that offers Standard_DC4es_v5."
  type        = string
  default     = "westeurope"
}

variable "admin_ssh_public_key" {
  description = "OpenSSH public key of the VM's administrator (no inbound SSH is opened); null with sigil_image."
  type        = string
  default     = null
}

variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release (archive or binary); null with sigil_image."
  type        = string
  default     = null
}

variable "agent_release_sha256" {
  description = "SHA-256 (64 lowercase hex digits) of what agent_release_url serves; null with sigil_image."
  type        = string
  default     = null
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach the agent's gRPC port."
  type        = list(string)
}

variable "chain_rpc_url" {
  description = "WebSocket RPC URL of the chain the agent submits receipts to; null for none."
  type        = string
  default     = null
}

variable "sigil_image" {
  description = "The Sigil agent image to boot instead of installing agent_release_url: {vhd = \"DIR/disk.vhd\", manifest = \"DIR/manifest.json\", storage_account_id = \"<an existing storage account in location>\"} from `bash deploy/image/build.sh --out DIR`, booted with Secure Boot off; a signed image (`deploy/image/sign.py --out DIR`) adds secure_boot_db = \"DIR/secure-boot-db.der\" and boots with Secure Boot on (optional secure_boot_pk, secure_boot_kek: the module's README). null for the release."
  type = object({
    vhd                = string
    manifest           = string
    storage_account_id = string
    secure_boot_db     = optional(string)
    secure_boot_pk     = optional(string)
    secure_boot_kek    = optional(string)
  })
  default = null
}
