# An Azure confidential VM (security type ConfidentialVM: AMD SEV-SNP on
# DCasv5/ECasv5, Intel TDX on DCesv5/ECesv5, or SEV-SNP with an NVIDIA H100 in
# confidential-computing mode on NCCadsH100v5) that installs and starts
# sigil-agent at first boot. Its security group admits only the agent's gRPC
# port, and only from allowed_source_prefixes.

locals {
  tee = can(regex("^Standard_(DC|EC)[0-9]+ed?s_v5$", var.vm_size)) ? "TDX" : "SEV-SNP"
  gpu = var.vm_size == "Standard_NCC40ads_H100_v5"
  tags = merge(var.tags, {
    "sigil-role" = "provider-agent"
    "sigil-tee"  = local.tee
  })
  # What this VM's hardware evidence covers (docs/measured-boot.md, deploy/image/README.md).
  evidence_covers = "${local.tee} on Azure: the hardware report measures the paravisor (HCL), not the guest; the guest's boot chain is in the vTPM PCRs, which the agent quotes (measured.tpm_quote, bound to the report by the HCL runtime claims) and a policy pins with [vtpm] pcrs; the agent's own digests are not measured"
  # Azure guests have no RTMR3 the agent can extend: nothing pins the agent binary.
  agent_policy = null
}

module "bootstrap" {
  source = "../agent-bootstrap"

  agent_release_url    = var.agent_release_url
  agent_release_sha256 = var.agent_release_sha256
  expected_tee         = local.tee
  gpu_mode             = local.gpu ? "required" : "none"
  nvidia_driver_branch = var.nvidia_driver_branch
  grpc_port            = var.grpc_port
  chain_rpc_url        = var.chain_rpc_url
  api_token            = var.api_token
  buyer_keys           = var.buyer_keys
  container_engine     = var.container_engine
  evidence_mode        = var.evidence_mode
  extra_config         = var.agent_extra_config
}

resource "azurerm_virtual_network" "this" {
  name                = "${var.name}-vnet"
  resource_group_name = var.resource_group_name
  location            = var.location
  address_space       = [var.vnet_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "this" {
  name                 = "${var.name}-subnet"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.subnet_prefix]
}

resource "azurerm_network_security_group" "this" {
  name                = "${var.name}-nsg"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags

  # The only inbound allowance: the agent's gRPC port.
  security_rule {
    name                       = "allow-sigil-grpc"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = tostring(var.grpc_port)
    source_address_prefixes    = var.allowed_source_prefixes
    destination_address_prefix = "*"
  }

  # Overrides Azure's default AllowVnetInBound and AllowAzureLoadBalancerInBound.
  security_rule {
    name                       = "deny-all-other-inbound"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "this" {
  subnet_id                 = azurerm_subnet.this.id
  network_security_group_id = azurerm_network_security_group.this.id
}

resource "azurerm_public_ip" "this" {
  count               = var.assign_public_ip ? 1 : 0
  name                = "${var.name}-pip"
  resource_group_name = var.resource_group_name
  location            = var.location
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = var.zone == null ? null : [var.zone]
  tags                = local.tags
}

resource "azurerm_network_interface" "this" {
  #checkov:skip=CKV_AZURE_119: buyers reach the agent's gRPC API on the public IP; the security group admits only that port from allowed_source_prefixes, and assign_public_ip = false removes it.
  name                           = "${var.name}-nic"
  resource_group_name            = var.resource_group_name
  location                       = var.location
  accelerated_networking_enabled = var.accelerated_networking
  ip_forwarding_enabled          = false
  tags                           = local.tags

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.this.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = var.assign_public_ip ? azurerm_public_ip.this[0].id : null
  }
}

resource "azurerm_network_interface_security_group_association" "this" {
  network_interface_id      = azurerm_network_interface.this.id
  network_security_group_id = azurerm_network_security_group.this.id
}

resource "azurerm_linux_virtual_machine" "this" {
  name                            = var.name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  zone                            = var.zone
  size                            = var.vm_size
  admin_username                  = var.admin_username
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.this.id]
  custom_data                     = base64encode(module.bootstrap.cloud_init)
  tags                            = local.tags

  # ConfidentialVM security type: set by os_disk.security_encryption_type,
  # which requires the vTPM; secure boot keeps unsigned kernels and modules out.
  secure_boot_enabled = true
  vtpm_enabled        = true

  # The VM agent reports provisioning; no extension may run code in the VM.
  provision_vm_agent         = true
  allow_extension_operations = false

  admin_ssh_key {
    username   = var.admin_username
    public_key = var.admin_ssh_public_key
  }

  os_disk {
    caching                          = "ReadWrite"
    storage_account_type             = var.os_disk_storage_account_type
    disk_size_gb                     = var.os_disk_size_gb
    security_encryption_type         = var.security_encryption_type
    secure_vm_disk_encryption_set_id = var.secure_vm_disk_encryption_set_id
  }

  source_image_reference {
    publisher = var.image.publisher
    offer     = var.image.offer
    sku       = var.image.sku
    version   = var.image.version
  }

  # Managed boot diagnostics: the serial log shows the bootstrap's result.
  boot_diagnostics {}
}
