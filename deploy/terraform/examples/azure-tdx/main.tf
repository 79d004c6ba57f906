# Example: a Sigil provider VM on Azure, Intel TDX on DCesv5.

provider "azurerm" {
  features {}
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
  vm_size             = "Standard_DC4es_v5"

  admin_ssh_public_key    = var.admin_ssh_public_key
  allowed_source_prefixes = var.allowed_cidrs
  agent_release_url       = var.agent_release_url
  agent_release_sha256    = var.agent_release_sha256
  chain_rpc_url           = var.chain_rpc_url
}
