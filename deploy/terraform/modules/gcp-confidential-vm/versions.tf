terraform {
  # 1.9: validation conditions may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # confidential_instance_config.confidential_instance_type (SEV_SNP, TDX).
      version = ">= 6.0, < 8.0"
    }
  }
}
