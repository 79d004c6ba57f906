# Example: a Sigil provider VM on GCP, Intel TDX with one NVIDIA H100 in confidential-computing mode (a3-highgpu-1g).

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
  machine_type               = "a3-highgpu-1g"
  provisioning_model         = "SPOT"

  allowed_source_ranges = var.allowed_cidrs
  agent_release_url     = var.agent_release_url
  agent_release_sha256  = var.agent_release_sha256
  chain_rpc_url         = var.chain_rpc_url
}
