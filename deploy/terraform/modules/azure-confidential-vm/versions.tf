terraform {
  # 1.9: validation conditions may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.x argument names (accelerated_networking_enabled, ...).
      version = ">= 4.0, < 5.0"
    }
  }
}
