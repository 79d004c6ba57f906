variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "name" {
  description = "Name of the provider VM."
  type        = string
  default     = "sigil-sev-snp"
}

variable "location" {
  description = "Region that offers Standard_DC4as_v5."
  type        = string
  default     = "eastus2"
}

variable "admin_ssh_public_key" {
  description = "OpenSSH public key of the VM's administrator (no inbound SSH is opened)."
  type        = string
}

variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release (archive or binary)."
  type        = string
}

variable "agent_release_sha256" {
  description = "SHA-256 (64 lowercase hex digits) of what agent_release_url serves."
  type        = string
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
