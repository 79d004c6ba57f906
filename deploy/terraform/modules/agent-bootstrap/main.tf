# The shared first-boot configuration of a Sigil provider VM: one cloud-init
# document that GCP (metadata `user-data`) and Azure (`custom_data`) both run.
# It writes the agent configuration, the settings of the bootstrap script, the
# systemd unit and the script itself, then runs the script.

locals {
  # The unit is the repository's deploy/systemd/sigil-agent.service; consume
  # this module through a relative path or a git source so that it resolves.
  unit_path    = "${path.module}/../../../systemd/sigil-agent.service"
  systemd_unit = var.systemd_unit != null ? var.systemd_unit : file(local.unit_path)
  script_path  = "${path.module}/files/sigil-bootstrap.sh"

  agent_config = templatefile("${path.module}/templates/agent.toml.tftpl", {
    listen           = jsonencode("0.0.0.0:${var.grpc_port}")
    metrics_listen   = jsonencode("127.0.0.1:${var.metrics_port}")
    buyer_keys       = jsonencode(var.buyer_keys)
    token_enabled    = nonsensitive(var.api_token != null)
    evidence_mode    = jsonencode(var.evidence_mode)
    gpu_enabled      = var.gpu_mode != "none"
    container_engine = var.container_engine
    log_format       = jsonencode(var.log_format)
    log_filter       = jsonencode(var.log_level)
    extra_config     = trimspace(var.extra_config)
  })

  # Ubuntu packages of the container engines the agent can drive.
  container_packages = var.container_engine == null ? [] : [lookup({ podman = "podman", docker = "docker.io" }, var.container_engine)]

  # Shell assignments; every value is validated above to hold no quote.
  bootstrap_env = join("\n", [
    "SIGIL_AGENT_URL='${var.agent_release_url}'",
    "SIGIL_AGENT_SHA256='${var.agent_release_sha256}'",
    "SIGIL_EXPECTED_TEE='${var.expected_tee}'",
    "SIGIL_GPU_MODE='${var.gpu_mode}'",
    "SIGIL_NVIDIA_DRIVER_BRANCH='${var.nvidia_driver_branch}'",
    "SIGIL_ATTEST_TIMEOUT='${var.attestation_timeout_seconds}'",
    "",
  ])

  files = concat(
    [
      {
        path        = "/etc/sigil/agent.toml"
        owner       = "root:root"
        permissions = "0640"
        content     = local.agent_config
      },
      {
        path        = "/etc/sigil/bootstrap.env"
        owner       = "root:root"
        permissions = "0600"
        content     = local.bootstrap_env
      },
      {
        path        = "/usr/local/lib/sigil/sigil-agent.service"
        owner       = "root:root"
        permissions = "0644"
        content     = local.systemd_unit
      },
      {
        path        = "/usr/local/lib/sigil/sigil-bootstrap.sh"
        owner       = "root:root"
        permissions = "0755"
        content     = file(local.script_path)
      },
    ],
    var.api_token == null ? [] : [
      {
        path        = "/etc/sigil/api-token"
        owner       = "root:root"
        permissions = "0600"
        content     = var.api_token
      },
    ],
  )

  cloud_init = join("", [
    "#cloud-config\n",
    yamlencode({
      package_update = true
      packages       = concat(["ca-certificates", "curl", "openssl", "pciutils"], local.container_packages)
      write_files    = local.files
      runcmd         = [["/usr/local/lib/sigil/sigil-bootstrap.sh"]]
    }),
  ])
}
