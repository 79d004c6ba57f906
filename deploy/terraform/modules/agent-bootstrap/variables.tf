variable "agent_release_url" {
  description = "HTTPS URL of the pinned sigil-agent release: a .tar.gz/.tgz archive holding one `sigil-agent` binary, or the bare binary."
  type        = string

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~:/?#@!&+,;=%-]*$", var.agent_release_url))
    error_message = "agent_release_url must be an https:// URL without spaces, quotes or shell metacharacters."
  }
}

variable "agent_release_sha256" {
  description = "SHA-256 of exactly what agent_release_url serves, as 64 lowercase hex digits. The VM refuses to install anything else."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.agent_release_sha256))
    error_message = "agent_release_sha256 must be 64 lowercase hex digits."
  }
}

variable "expected_tee" {
  description = "The TEE the VM is created for. The bootstrap refuses to start the agent in any other guest."
  type        = string

  validation {
    condition     = contains(["SEV-SNP", "TDX"], var.expected_tee)
    error_message = "expected_tee must be SEV-SNP or TDX."
  }
}

variable "gpu_mode" {
  description = "GPU handling: `required` (the shape has an NVIDIA CC GPU; the boot fails without one in CC mode), `auto` (use one if present, only in CC mode) or `none`."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "required", "none"], var.gpu_mode)
    error_message = "gpu_mode must be auto, required or none."
  }
}

variable "nvidia_driver_branch" {
  description = "NVIDIA server driver branch installed (Ubuntu's signed open kernel modules) when a GPU is present and no driver is; empty to never install one."
  type        = string
  default     = "570"

  validation {
    condition     = var.nvidia_driver_branch == "" || can(regex("^[0-9]{3}$", var.nvidia_driver_branch))
    error_message = "nvidia_driver_branch must be a three-digit branch such as 570, or empty."
  }
}

variable "grpc_port" {
  description = "TCP port sigil-agent serves its gRPC API (sigil.v1) on."
  type        = number
  default     = 7443

  validation {
    condition     = var.grpc_port >= 1024 && var.grpc_port <= 65535 && floor(var.grpc_port) == var.grpc_port
    error_message = "grpc_port must be an integer between 1024 and 65535."
  }
}

variable "metrics_port" {
  description = "TCP port of the agent's Prometheus metrics endpoint, bound to 127.0.0.1 only."
  type        = number
  default     = 9464

  validation {
    condition     = var.metrics_port >= 1024 && var.metrics_port <= 65535 && floor(var.metrics_port) == var.metrics_port
    error_message = "metrics_port must be an integer between 1024 and 65535."
  }
}

variable "evidence_mode" {
  description = "Receipt binding mode: `attested-key` (evidence at start binds the signing key) or `fresh-quote` (evidence per receipt as well)."
  type        = string
  default     = "attested-key"

  validation {
    condition     = contains(["attested-key", "fresh-quote"], var.evidence_mode)
    error_message = "evidence_mode must be attested-key or fresh-quote."
  }
}

variable "chain_rpc_url" {
  description = "WebSocket RPC URL of the chain the agent submits receipts to; null to run without chain submission."
  type        = string
  default     = null

  validation {
    condition     = var.chain_rpc_url == null || can(regex("^wss?://[^\\s\"'`$\\\\]+$", var.chain_rpc_url))
    error_message = "chain_rpc_url must be a ws:// or wss:// URL."
  }
}

variable "buyer_keys" {
  description = "Hex ed25519 public keys of the buyers allowed to submit jobs; empty accepts any correctly signed submission."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.buyer_keys : can(regex("^[0-9a-fA-F]{64}$", k))])
    error_message = "buyer_keys must be 64-digit hex ed25519 public keys."
  }
}

variable "container_engine" {
  description = "Container engine installed and used for OCI workloads (`podman` or `docker`); null for process workloads only."
  type        = string
  default     = null

  validation {
    condition     = var.container_engine == null || contains(["podman", "docker"], coalesce(var.container_engine, "-"))
    error_message = "container_engine must be podman, docker or null."
  }
}

variable "api_token" {
  description = "Optional token that authenticates job submissions, written to /etc/sigil/api-token (0600). It is stored in the Terraform state as part of the VM's user data; prefer buyer-signed submissions and leave this null."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.api_token == null || can(regex("^[A-Za-z0-9._~+/=-]{32,512}$", var.api_token))
    error_message = "api_token must be 32 to 512 URL-safe characters."
  }
}

variable "log_format" {
  description = "Agent log format on the journal: `text` (one line per event, as the bootstrap and operators read it) or `json`."
  type        = string
  default     = "text"

  validation {
    condition     = contains(["text", "json"], var.log_format)
    error_message = "log_format must be text or json."
  }
}

variable "log_level" {
  description = "Agent log level (its tracing filter)."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["error", "warn", "info", "debug", "trace"], var.log_level)
    error_message = "log_level must be error, warn, info, debug or trace."
  }
}

variable "attestation_timeout_seconds" {
  description = "How long the bootstrap waits for the agent's `attested:` line before it marks the boot as failed."
  type        = number
  default     = 600

  validation {
    condition     = var.attestation_timeout_seconds >= 30 && var.attestation_timeout_seconds <= 3600
    error_message = "attestation_timeout_seconds must be between 30 and 3600."
  }
}

variable "extra_config" {
  description = "Extra TOML appended to the agent configuration: tables the module does not write, such as [jobs] (and [container] when container_engine is null); must start with a [table] header."
  type        = string
  default     = ""

  validation {
    condition     = var.extra_config == "" || startswith(trimspace(var.extra_config), "[")
    error_message = "extra_config must be empty or start with a [table] header."
  }
}

variable "systemd_unit" {
  description = "Content of the systemd unit to install; null uses the repository's deploy/systemd/sigil-agent.service. Its ExecStart must run /usr/local/bin/sigil-agent --config /etc/sigil/agent.toml."
  type        = string
  default     = null

  validation {
    condition     = var.systemd_unit == null || strcontains(coalesce(var.systemd_unit, "-"), "/usr/local/bin/sigil-agent --config /etc/sigil/agent.toml")
    error_message = "systemd_unit must start /usr/local/bin/sigil-agent --config /etc/sigil/agent.toml."
  }
}
