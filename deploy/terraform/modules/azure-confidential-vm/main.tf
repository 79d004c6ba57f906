# An Azure confidential VM (security type ConfidentialVM: AMD SEV-SNP on
# DCasv5/ECasv5, Intel TDX on DCesv5/ECesv5, or SEV-SNP with an NVIDIA H100 in
# confidential-computing mode on NCCadsH100v5) that installs and starts
# sigil-agent at first boot, or that boots the Sigil agent image (deploy/image)
# with the agent already in it. Its security group admits only the agent's gRPC
# port, and only from allowed_source_prefixes.

locals {
  tee = can(regex("^Standard_(DC|EC)[0-9]+ed?s_v5$", var.vm_size)) ? "TDX" : "SEV-SNP"
  gpu = var.vm_size == "Standard_NCC40ads_H100_v5"
  tags = merge(var.tags, {
    "sigil-role" = "provider-agent"
    "sigil-tee"  = local.tee
  })
  # What this VM's hardware evidence covers (docs/measured-boot.md, docs/azure-vtpm.md,
  # deploy/image/README.md).
  evidence_covers = "${(local.sigil_image
    ? "${local.tee} on Azure, Sigil image: the hardware report measures the paravisor (HCL), not the guest; the guest's boot is in the vTPM PCRs, which the agent quotes with the vTPM's event log (measured.tpm_quote and measured.event_log, bound to the report by the HCL runtime claims): PCR 4 holds the UKI's Authenticode digest, which covers kernel, initrd (with the agent and its configuration) and command line, PCR 11 systemd-stub's section events, PCR 9 the kernel's command line and initrd; the [vtpm] events of the policy pin them"
    : "${local.tee} on Azure: the hardware report measures the paravisor (HCL), not the guest; the guest's boot chain is in the vTPM PCRs, which the agent quotes (measured.tpm_quote, bound to the report by the HCL runtime claims) and a policy pins with [vtpm] pcrs; the agent's own digests are not measured"
  )}${local.signed_image ? "; Secure Boot is on with the image's own db certificate (expected_measurements.image.secure_boot_db_cert_sha256): PCR 7 also holds the Secure Boot variables and that certificate, which the manifest does not predict and the image's [vtpm] events do not pin" : ""}"
  # Azure guests have no RTMR3 the agent can extend: nothing pins the agent binary.
  agent_policy = null

  # The Sigil agent image (deploy/image/README.md): its manifest names the upload by
  # digest and gives the vTPM events of its disk boot and the [vtpm] rules that pin them.
  sigil_image    = var.sigil_image != null
  image_manifest = local.sigil_image ? jsondecode(file(var.sigil_image.manifest)) : null
  image_vhd      = local.sigil_image ? local.image_manifest.disk.files["disk.vhd"] : null
  image_policy   = local.sigil_image ? local.image_manifest.policy_fragments["vtpm-disk"] : null
  # The storage account named by the last segment of its resource ID.
  image_storage_account = local.sigil_image ? regex("[^/]+$", var.sigil_image.storage_account_id) : null
  # The gallery image version's name: the first 28 bits of the disk's SHA-256.
  image_version_name = local.sigil_image ? "1.0.${parseint(substr(local.image_vhd.sha256, 0, 7), 16)}" : null
  # A signed image (deploy/image/sign.py): its manifest's secure_boot section names the
  # db certificate whose key signed the UKI. Secure Boot is on for it (and for the
  # marketplace image), off only for an unsigned Sigil image.
  image_secure_boot = try(local.image_manifest.secure_boot, null)
  signed_image      = local.image_secure_boot != null
  unsigned_image    = local.sigil_image && !local.signed_image
  secure_boot       = !local.sigil_image || local.signed_image
  # The image version's UEFI keys (DER certificates, base64): db is the image's
  # certificate; PK and KEK are the provider's, or that same certificate when none is
  # given (one key as PK, KEK and db). With a PK the firmware enforces Secure Boot.
  secure_boot_db  = local.signed_image ? filebase64(var.sigil_image.secure_boot_db) : null
  secure_boot_pk  = local.signed_image ? filebase64(coalesce(var.sigil_image.secure_boot_pk, var.sigil_image.secure_boot_db)) : null
  secure_boot_kek = local.signed_image ? filebase64(coalesce(var.sigil_image.secure_boot_kek, var.sigil_image.secure_boot_db)) : null
}

module "bootstrap" {
  source = "../agent-bootstrap"
  count  = local.sigil_image ? 0 : 1

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
  name                = "${var.name}-nic"
  resource_group_name = var.resource_group_name
  location            = var.location
  # The Sigil image has no driver for the accelerated path's virtual function (mlx5,
  # mana): its traffic takes hv_netvsc's synthetic path, so none is asked for.
  accelerated_networking_enabled = var.accelerated_networking && !local.sigil_image
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
  count                           = local.sigil_image ? 0 : 1
  name                            = var.name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  zone                            = var.zone
  size                            = var.vm_size
  admin_username                  = var.admin_username
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.this.id]
  custom_data                     = base64encode(module.bootstrap[0].cloud_init)
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

# The Sigil image. disk.vhd (a fixed VHD, 1 MiB aligned) goes to a private container of
# the given storage account as a page blob named by its SHA-256 (a changed file is a new
# blob and a new image, never an overwrite) and becomes a specialized, confidential-VM
# supported image version in a gallery of the module's; the VM is created from it with no
# OS profile, no provisioning and no VM agent (README.md, "Booting the Sigil agent image
# instead"). Azure creates a confidential OS disk FromImage (and ImportSecure/
# UploadPreparedSecure with a guest state blob), not by importing a VHD into one.
resource "azurerm_storage_container" "sigil_image" {
  #checkov:skip=CKV2_AZURE_21: blob read logging is a setting of the storage account the caller gives (its diagnostic settings), not of this container; what it holds is the public image, named by its digest.
  count                 = local.sigil_image ? 1 : 0
  name                  = "${var.name}-sigil-image"
  storage_account_id    = var.sigil_image.storage_account_id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "sigil_image" {
  count                  = local.sigil_image ? 1 : 0
  name                   = "sigil-agent-image/${local.image_vhd.sha256}.vhd"
  storage_account_name   = local.image_storage_account
  storage_container_name = azurerm_storage_container.sigil_image[0].name
  type                   = "Page"
  source                 = var.sigil_image.vhd

  lifecycle {
    precondition {
      condition     = filesha256(var.sigil_image.vhd) == local.image_vhd.sha256
      error_message = "sigil_image.vhd is not the disk.vhd its manifest.json names (SHA-256 differs): give the files of one build."
    }
  }
}

resource "azurerm_shared_image_gallery" "sigil" {
  count               = local.sigil_image ? 1 : 0
  name                = "${replace(var.name, "-", "_")}_sigil"
  resource_group_name = var.resource_group_name
  location            = var.location
  description         = "Sigil agent image of ${var.name}"
  tags                = local.tags
}

resource "azurerm_shared_image" "sigil" {
  count               = local.unsigned_image ? 1 : 0
  name                = "sigil-agent"
  gallery_name        = azurerm_shared_image_gallery.sigil[0].name
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  hyper_v_generation  = "V2"
  # Specialized: nothing in the image to provision (no OS profile is sent, none is
  # needed). Confidential-VM supported: a Gen2 OS disk VHD without guest state, from
  # which Azure creates a confidential VM's OS disk and its guest state.
  specialized               = true
  confidential_vm_supported = true
  tags                      = local.tags

  identifier {
    publisher = "sigil"
    offer     = "sigil-agent-image"
    sku       = "uki-disk"
  }
}

resource "azurerm_shared_image_version" "sigil" {
  count               = local.unsigned_image ? 1 : 0
  name                = local.image_version_name
  gallery_name        = azurerm_shared_image_gallery.sigil[0].name
  image_name          = azurerm_shared_image.sigil[0].name
  resource_group_name = var.resource_group_name
  location            = var.location
  blob_uri            = azurerm_storage_blob.sigil_image[0].url
  storage_account_id  = var.sigil_image.storage_account_id
  tags                = local.tags

  target_region {
    name                   = var.location
    regional_replica_count = 1
    storage_account_type   = "Standard_LRS"
  }
}

# A signed image (deploy/image/sign.py) boots with Secure Boot on and the provider's keys
# in its UEFI variables. Azure takes custom UEFI keys only from a gallery image version's
# securityProfile.uefiSettings, which azurerm_shared_image_version does not set, and only
# for an image definition of security type TrustedLaunchSupported or
# TrustedLaunchAndConfidentialVmSupported, which azurerm_shared_image cannot express (its
# confidential_vm_supported is ConfidentialVmSupported): both are ARM resources here,
# through azapi, with the settings the azurerm resources above give an unsigned image.
resource "azapi_resource" "sigil_signed_image" {
  count     = local.signed_image ? 1 : 0
  type      = "Microsoft.Compute/galleries/images@2024-03-03"
  name      = "sigil-agent-signed"
  parent_id = azurerm_shared_image_gallery.sigil[0].id
  location  = var.location
  tags      = local.tags

  body = {
    properties = {
      osType           = "Linux"
      osState          = "Specialized"
      hyperVGeneration = "V2"
      architecture     = "x64"
      identifier = {
        publisher = "sigil"
        offer     = "sigil-agent-image"
        sku       = "uki-disk-signed"
      }
      # Confidential VMs (and Trusted Launch, which custom UEFI keys require) from it.
      features = [{ name = "SecurityType", value = "TrustedLaunchAndConfidentialVmSupported" }]
    }
  }
}

resource "azapi_resource" "sigil_signed_image_version" {
  count     = local.signed_image ? 1 : 0
  type      = "Microsoft.Compute/galleries/images/versions@2024-03-03"
  name      = local.image_version_name
  parent_id = azapi_resource.sigil_signed_image[0].id
  location  = var.location
  tags      = local.tags

  body = {
    properties = {
      publishingProfile = {
        excludeFromLatest = false
        replicationMode   = "Full"
        targetRegions = [{
          name                 = var.location
          regionalReplicaCount = 1
          storageAccountType   = "Standard_LRS"
          excludeFromLatest    = false
        }]
      }
      safetyProfile = { allowDeletionOfReplicatedLocations = false }
      storageProfile = {
        osDiskImage = {
          source = {
            storageAccountId = var.sigil_image.storage_account_id
            uri              = azurerm_storage_blob.sigil_image[0].url
          }
        }
      }
      # The VM's UEFI variables. NoSignatureTemplate: none of Azure's default keys, only
      # the provider's. MicrosoftUefiCertificateAuthorityTemplate would put Microsoft's
      # UEFI CA into db, and with it every shim and bootloader that CA ever signed (each
      # of which boots whatever its own keys allow), so Secure Boot would no longer say
      # that the VM started the provider's UKI.
      securityProfile = {
        uefiSettings = {
          signatureTemplateNames = ["NoSignatureTemplate"]
          additionalSignatures = {
            pk  = { type = "x509", value = [local.secure_boot_pk] }
            kek = [{ type = "x509", value = [local.secure_boot_kek] }]
            db  = [{ type = "x509", value = [local.secure_boot_db] }]
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = filesha256(var.sigil_image.secure_boot_db) == local.image_secure_boot.db_cert_sha256
      error_message = "sigil_image.secure_boot_db is not the certificate the signed image's manifest.json names (secure_boot.db_cert_sha256 differs): give the secure-boot-db.der of the same sign.py run."
    }
  }
}

# The image version the VM starts from, as a value: a new one (a new disk, or the image
# signed or no longer signed) replaces the VM through replace_triggered_by, which takes
# resource instances that exist, so not the version resource of the other kind.
resource "terraform_data" "sigil_image_version" {
  count = local.sigil_image ? 1 : 0
  input = local.signed_image ? azapi_resource.sigil_signed_image_version[0].id : azurerm_shared_image_version.sigil[0].id
}

# azurerm_linux_virtual_machine always sends an OS profile (computer name, admin
# account), which Azure refuses for a VM from a specialized image; azurerm_virtual_machine
# has no security profile (no ConfidentialVM, no vTPM). So the ARM resource itself,
# through azapi.
resource "azapi_resource" "sigil" {
  count     = local.sigil_image ? 1 : 0
  type      = "Microsoft.Compute/virtualMachines@2024-03-01"
  name      = var.name
  parent_id = regex("^/subscriptions/[^/]+/resource[Gg]roups/[^/]+", azurerm_network_interface.this.id)
  location  = var.location
  tags      = local.tags

  body = merge({ for z in compact([var.zone]) : "zones" => [z] }, {
    properties = {
      hardwareProfile = { vmSize = var.vm_size }

      # ConfidentialVM with the vTPM (it holds the boot's measurements and the key
      # the agent's quotes are signed with). Secure Boot is on for a signed image, whose
      # image version carries the provider's keys. It is off for an unsigned one: its
      # UKI is not signed by a key in Azure's default db, so Secure Boot would refuse
      # it. Either way what it boots is named by its measurements (the UKI's PCR 4
      # event, expected_measurements).
      securityProfile = {
        securityType = "ConfidentialVM"
        uefiSettings = { secureBootEnabled = local.signed_image, vTpmEnabled = true }
      }

      # The OS disk is created from the image version with the VM (and deleted with it):
      # a confidential disk whose guest state (the vTPM's) is encrypted with a key
      # released only to the attested VM. It holds only the public image.
      storageProfile = {
        imageReference = { id = local.signed_image ? azapi_resource.sigil_signed_image_version[0].id : azurerm_shared_image_version.sigil[0].id }
        osDisk = {
          osType       = "Linux"
          createOption = "FromImage"
          caching      = "ReadWrite"
          deleteOption = "Delete"
          managedDisk = {
            storageAccountType = var.os_disk_storage_account_type
            securityProfile    = { securityEncryptionType = var.security_encryption_type }
          }
        }
      }

      networkProfile = {
        networkInterfaces = [{ id = azurerm_network_interface.this.id, properties = { primary = true } }]
      }

      # Managed boot diagnostics: the serial log shows the agent's start and the vTPM's
      # event log ("The TPM check" in deploy/image/README.md).
      diagnosticsProfile = { bootDiagnostics = { enabled = true } }
    }
  })

  lifecycle {
    # A new image is a new OS disk, and a VM's OS disk is replaced with the VM.
    replace_triggered_by = [terraform_data.sigil_image_version[0]]
  }
}
