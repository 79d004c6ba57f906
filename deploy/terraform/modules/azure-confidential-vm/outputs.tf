output "vm_id" {
  description = "Resource ID of the VM."
  value       = local.sigil_image ? azapi_resource.sigil[0].id : azurerm_linux_virtual_machine.this[0].id
}

output "vm_name" {
  description = "Name of the VM."
  value       = local.sigil_image ? azapi_resource.sigil[0].name : azurerm_linux_virtual_machine.this[0].name
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
  description = "Shows the bootstrap's result and the agent's `attested:` line from the boot diagnostics serial log (with sigil_image: the image's init lines, the agent's start and the vTPM's event log)."
  value       = "az vm boot-diagnostics get-boot-log --resource-group ${var.resource_group_name} --name ${local.sigil_image ? azapi_resource.sigil[0].name : azurerm_linux_virtual_machine.this[0].name} | grep -E '${local.sigil_image ? "init:|attested|hardware evidence|sigil-tpm" : "sigil-bootstrap:"}'"
}

output "agent_config_sha256" {
  description = "SHA-256 of the agent configuration written to the VM; null with sigil_image, whose configuration is part of the image (expected_measurements.config_digest)."
  value       = local.sigil_image ? null : module.bootstrap[0].agent_config_sha256
}

output "expected_measurements" {
  description = "What the hardware evidence of this VM covers, whether Secure Boot is on, the agent measurements (given in var.agent_measurements, or the Sigil image's), and the policy rules that pin what the evidence shows (the Sigil image: its [vtpm] events), for policy authors and buyers. With a signed Sigil image, `image` also names the db certificate enrolled for Secure Boot and the unsigned UKI."
  value = {
    tee             = local.tee
    evidence_covers = local.evidence_covers
    # On for the marketplace image (Azure's default keys) and a signed Sigil image (its db
    # certificate only).
    secure_boot   = local.secure_boot
    agent_digest  = local.sigil_image ? local.image_manifest.agent.agent_digest : try(var.agent_measurements.agent_digest, null)
    config_digest = local.sigil_image ? local.image_manifest.agent.config_digest : try(var.agent_measurements.config_digest, null)
    policy        = local.sigil_image ? local.image_policy : local.agent_policy
    # The Sigil image only: its disk's digests and the vTPM events of its boot (PCR 4:
    # the UKI; PCR 11: systemd-stub's sections; PCR 9: the kernel's command line and
    # initrd), which `policy` pins.
    image = local.sigil_image ? {
      disk_vhd_sha256 = local.image_vhd.sha256
      uki_sha256      = local.image_manifest.image.files["uki.efi"].sha256
      vtpm_events     = local.image_manifest.vtpm.uki_events
      pcr11_sha256    = local.image_manifest.vtpm.pcr11_sha256
      # A signed image: the db certificate enrolled (the only key Secure Boot admits) and
      # the UKI before signing (the reproducible build's).
      secure_boot_db_cert_sha256  = local.signed_image ? local.image_secure_boot.db_cert_sha256 : null
      secure_boot_db_cert_subject = local.signed_image ? local.image_secure_boot.db_cert_subject : null
      unsigned_uki_sha256         = local.signed_image ? local.image_secure_boot.unsigned_uki.sha256 : null
    } : null
  }
}
