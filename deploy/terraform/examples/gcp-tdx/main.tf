# Example: a Sigil provider VM on GCP, Intel TDX on C3.

provider "google" {
  project = var.project_id
  region  = regex("^(.*)-[a-z]$", var.zone)[0]
  zone    = var.zone
}

module "provider_vm" {
  source = "../../modules/gcp-confidential-vm"

  project_id                 = var.project_id
  name                       = var.name
  zone                       = var.zone
  confidential_instance_type = "TDX"
  machine_type               = "c3-standard-4"
  provisioning_model         = "STANDARD"

  allowed_source_ranges = var.allowed_cidrs
  agent_release_url     = var.agent_release_url
  agent_release_sha256  = var.agent_release_sha256
  chain_rpc_url         = var.chain_rpc_url
}
