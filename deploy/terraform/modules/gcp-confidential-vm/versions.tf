terraform {
  # 1.9: validation conditions may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # confidential_instance_config.confidential_instance_type (SEV_SNP, TDX); 6.36:
      # google_compute_image.shielded_instance_initial_state (a signed Sigil image's keys).
      version = ">= 6.36, < 8.0"
    }
  }
}
