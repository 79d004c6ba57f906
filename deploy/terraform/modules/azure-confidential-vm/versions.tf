terraform {
  # 1.9: validation conditions may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.x argument names (accelerated_networking_enabled, ...); 4.9:
      # azurerm_storage_container.storage_account_id (Resource Manager API).
      version = ">= 4.9, < 5.0"
    }
    azapi = {
      source = "Azure/azapi"
      # 2.x: body is an HCL object. The Sigil image's VM (a specialized confidential VM).
      version = ">= 2.0, < 3.0"
    }
  }
}
