# Example: a Sigil provider VM on Azure, AMD SEV-SNP on DCasv5.

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
  # The Sigil image's upload (a blob) with Microsoft Entra ID, for storage accounts
  # without shared keys: the caller needs Storage Blob Data Contributor on the account.
  storage_use_azuread = true
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
  vm_size             = "Standard_DC4as_v5"

  allowed_source_prefixes = var.allowed_cidrs
  chain_rpc_url           = var.chain_rpc_url

  # Either the Sigil agent image (deploy/image), booted as it is...
  sigil_image = var.sigil_image
  # (The image's VM encrypts its guest state only: Azure's confidential OS disk
  # encryption needs Secure Boot, which an unsigned image boots without, and the disk
  # holds only the public image.)
  security_encryption_type = var.sigil_image == null ? "DiskWithVMGuestState" : "VMGuestStateOnly"

  # ...or Canonical's confidential Ubuntu image, which installs this release at boot.
  admin_ssh_public_key = var.admin_ssh_public_key
  agent_release_url    = var.agent_release_url
  agent_release_sha256 = var.agent_release_sha256
}
