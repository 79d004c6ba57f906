# Example: a Sigil provider VM on Azure, AMD SEV-SNP with one NVIDIA H100 in confidential-computing mode (NCCadsH100v5).

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}

# The module's Sigil-image VM is an azapi resource; the provider is needed either way.
provider "azapi" {
  subscription_id = var.subscription_id
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
}

module "provider_vm" {
  source = "../../modules/azure-confidential-vm"

  name                = var.name
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  vm_size             = "Standard_NCC40ads_H100_v5"

  admin_ssh_public_key    = var.admin_ssh_public_key
  allowed_source_prefixes = var.allowed_cidrs
  agent_release_url       = var.agent_release_url
  agent_release_sha256    = var.agent_release_sha256
  chain_rpc_url           = var.chain_rpc_url

  # No sigil_image here: the Sigil image has no NVIDIA driver, so this size installs
  # the release on Canonical's confidential Ubuntu image.
}
