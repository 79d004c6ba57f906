output "vm_id" {
  description = "Resource ID of the VM."
  value       = azurerm_linux_virtual_machine.this.id
}

output "vm_name" {
  description = "Name of the VM."
  value       = azurerm_linux_virtual_machine.this.name
}

output "tee" {
  description = "TEE the VM runs in (SEV-SNP or TDX)."
  value       = local.tee
}

output "confidential_gpu" {
  description = "Whether the VM carries an NVIDIA H100 in confidential-computing mode."
  value       = local.gpu
}

output "public_ip" {
  description = "Public IPv4 address of the VM (null without assign_public_ip)."
  value       = var.assign_public_ip ? azurerm_public_ip.this[0].ip_address : null
}

output "private_ip" {
  description = "Private IPv4 address of the VM."
  value       = azurerm_network_interface.this.private_ip_address
}

output "grpc_endpoint" {
  description = "host:port of the agent's gRPC API (sigil.v1)."
  value       = "${var.assign_public_ip ? azurerm_public_ip.this[0].ip_address : azurerm_network_interface.this.private_ip_address}:${var.grpc_port}"
}

output "attestation_command" {
  description = "Fetches fresh attestation evidence for a random nonce from the running agent (grpcurl; the API has server reflection)."
  value       = "grpcurl -insecure -d \"{\\\"nonce\\\":\\\"$(openssl rand -base64 32)\\\"}\" ${var.assign_public_ip ? azurerm_public_ip.this[0].ip_address : azurerm_network_interface.this.private_ip_address}:${var.grpc_port} sigil.v1.AttestationService/Challenge"
}

output "boot_log_command" {
  description = "Shows the bootstrap's result and the agent's `attested:` line from the boot diagnostics serial log."
  value       = "az vm boot-diagnostics get-boot-log --resource-group ${var.resource_group_name} --name ${azurerm_linux_virtual_machine.this.name} | grep -E 'sigil-bootstrap:'"
}

output "agent_config_sha256" {
  description = "SHA-256 of the agent configuration written to the VM."
  value       = module.bootstrap.agent_config_sha256
}

output "expected_measurements" {
  description = "What the hardware evidence of this VM covers, and the agent measurements given in var.agent_measurements with the policy rules that pin them (TDX), for policy authors and buyers."
  value = {
    tee             = local.tee
    evidence_covers = local.evidence_covers
    agent_digest    = try(var.agent_measurements.agent_digest, null)
    config_digest   = try(var.agent_measurements.config_digest, null)
    policy          = local.agent_policy
  }
}
