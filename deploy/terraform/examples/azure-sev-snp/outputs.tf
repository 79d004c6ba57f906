output "grpc_endpoint" {
  description = "host:port of the agent's gRPC API."
  value       = module.provider_vm.grpc_endpoint
}

output "tee" {
  description = "TEE the VM runs in."
  value       = module.provider_vm.tee
}

output "attestation_command" {
  description = "grpcurl command that fetches fresh attestation evidence from the agent."
  value       = module.provider_vm.attestation_command
}

output "boot_log_command" {
  description = "Command that shows the bootstrap result and the agent's attested line."
  value       = module.provider_vm.boot_log_command
}

output "expected_measurements" {
  description = "What the VM's evidence covers and, with sigil_image, the image's vTPM events and the [vtpm] rules that pin them."
  value       = module.provider_vm.expected_measurements
}
