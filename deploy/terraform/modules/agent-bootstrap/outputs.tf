output "cloud_init" {
  description = "cloud-init document (#cloud-config) for the VM's user data. Sensitive because it carries api_token when one is set."
  value       = local.cloud_init
  sensitive   = true
}

output "agent_config" {
  description = "The sigil-agent TOML configuration written to /etc/sigil/agent.toml (holds no secret)."
  value       = local.agent_config
}

output "agent_config_sha256" {
  description = "SHA-256 of the agent configuration, to compare with what the running agent reports."
  value       = sha256(local.agent_config)
}

output "grpc_port" {
  description = "TCP port of the agent's gRPC API."
  value       = var.grpc_port
}

output "expected_tee" {
  description = "The TEE the bootstrap insists on (SEV-SNP or TDX)."
  value       = var.expected_tee
}
