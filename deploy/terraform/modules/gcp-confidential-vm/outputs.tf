output "instance_name" {
  description = "Name of the VM."
  value       = google_compute_instance.this.name
}

output "instance_id" {
  description = "Server-assigned ID of the VM."
  value       = google_compute_instance.this.instance_id
}

output "tee" {
  description = "TEE the VM runs in (SEV-SNP or TDX)."
  value       = local.tee
}

output "confidential_gpu" {
  description = "Whether the VM carries an NVIDIA H100 in confidential-computing mode."
  value       = local.gpu
}

output "external_ip" {
  description = "External IPv4 address of the VM (null without assign_public_ip)."
  value       = try(google_compute_instance.this.network_interface[0].access_config[0].nat_ip, null)
}

output "internal_ip" {
  description = "Internal IPv4 address of the VM."
  value       = google_compute_instance.this.network_interface[0].network_ip
}

output "grpc_endpoint" {
  description = "host:port of the agent's gRPC API (sigil.v1)."
  value       = "${coalesce(try(google_compute_instance.this.network_interface[0].access_config[0].nat_ip, null), google_compute_instance.this.network_interface[0].network_ip)}:${var.grpc_port}"
}

output "attestation_command" {
  description = "Fetches fresh attestation evidence for a random nonce from the running agent (grpcurl; the API has server reflection)."
  value       = "grpcurl -insecure -d \"{\\\"nonce\\\":\\\"$(openssl rand -base64 32)\\\"}\" ${coalesce(try(google_compute_instance.this.network_interface[0].access_config[0].nat_ip, null), google_compute_instance.this.network_interface[0].network_ip)}:${var.grpc_port} sigil.v1.AttestationService/Challenge"
}

output "boot_log_command" {
  description = "Shows the bootstrap's result and the agent's `attested:` line from the serial console."
  value       = "gcloud compute instances get-serial-port-output ${google_compute_instance.this.name} --project ${var.project_id} --zone ${var.zone} | grep -E '${local.sigil_image ? "init:|attested|hardware evidence" : "sigil-bootstrap:"}'"
}

output "agent_config_sha256" {
  description = "SHA-256 of the agent configuration written to the VM; null with sigil_image, whose configuration is part of the image (expected_measurements.config_digest)."
  value       = local.sigil_image ? null : module.bootstrap[0].agent_config_sha256
}

output "expected_measurements" {
  description = "What the hardware evidence of this VM covers, whether Secure Boot is on, and the agent measurements given in var.agent_measurements with the policy rules that pin them (TDX), for policy authors and buyers. With a signed Sigil image, `image` also names the db certificate enrolled for Secure Boot and the unsigned UKI."
  value = {
    tee             = local.tee
    evidence_covers = local.evidence_covers
    # On for Ubuntu (Google's default keys) and a signed Sigil image (its db certificate only).
    secure_boot   = local.secure_boot
    agent_digest  = local.sigil_image ? local.image_manifest.agent.agent_digest : try(var.agent_measurements.agent_digest, null)
    config_digest = local.sigil_image ? local.image_manifest.agent.config_digest : try(var.agent_measurements.config_digest, null)
    policy        = local.sigil_image ? local.image_policy : local.agent_policy
    # The Sigil image only: its disk's digests and, on TDX, the UKI event that names it.
    image = local.sigil_image ? {
      disk_tar_gz_sha256 = local.image_tar_gz.sha256
      uki_sha256         = local.image_manifest.image.files["uki.efi"].sha256
      uki_rtmr1_events   = [for e in local.image_manifest.tdx.uki_boot_events : e.digest if e.rtmr == 1]
      # A signed image: the db certificate enrolled (the only key Secure Boot admits) and
      # the UKI before signing (the reproducible build's).
      secure_boot_db_cert_sha256  = local.signed_image ? local.image_secure_boot.db_cert_sha256 : null
      secure_boot_db_cert_subject = local.signed_image ? local.image_secure_boot.db_cert_subject : null
      unsigned_uki_sha256         = local.signed_image ? local.image_secure_boot.unsigned_uki.sha256 : null
    } : null
  }
}
