//! OCI container workloads through the host's container CLI (podman, docker or nerdctl).
//!
//! The agent does not talk to an engine's API: it runs the configured CLI, which every
//! engine keeps compatible for `run`. The image must be pinned by digest (checked in
//! [`super::spec`]); it is pulled only if missing, and a digest reference can only resolve
//! to that content. The container gets no network unless configured, no capabilities, no
//! new privileges, the job's input directory read-only at `/sigil/in` and its output
//! directory at `/sigil/out`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{ContainerConfig, ContainerEngine};
use crate::workload::Gpu;
use crate::workload::spec::Limits;

/// Where the input directory is mounted inside the container.
pub const CONTAINER_INPUT_DIR: &str = "/sigil/in";
/// Where the output directory is mounted inside the container.
pub const CONTAINER_OUTPUT_DIR: &str = "/sigil/out";

/// Everything the `run` command line is built from.
#[derive(Clone, Debug)]
pub struct ContainerRun<'a> {
    /// The engine (decides the GPU flag syntax).
    pub engine: ContainerEngine,
    /// Container settings.
    pub config: &'a ContainerConfig,
    /// Container name (unique per job attempt).
    pub name: &'a str,
    /// Image, `name@sha256:<hex>`.
    pub image: &'a str,
    /// Arguments after the image.
    pub args: &'a [String],
    /// Environment (spec env plus the agent's `SIGIL_*` variables).
    pub env: &'a BTreeMap<String, String>,
    /// Host input directory.
    pub input_dir: &'a Path,
    /// Host output directory.
    pub output_dir: &'a Path,
    /// Assigned GPUs.
    pub gpus: &'a [Gpu],
    /// Limits.
    pub limits: &'a Limits,
    /// Job id, hex (label).
    pub job_hex: &'a str,
}

/// Arguments of `<cli> run ...` (without the program itself).
pub fn run_args(r: &ContainerRun<'_>) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        "--name".into(),
        r.name.into(),
        "--label".into(),
        format!("sigil.job={}", r.job_hex),
        "--pull".into(),
        "missing".into(),
        "--cap-drop".into(),
        "ALL".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
    ];
    if !r.config.network {
        a.push("--network".into());
        a.push("none".into());
    }
    a.push("--volume".into());
    a.push(format!(
        "{}:{CONTAINER_INPUT_DIR}:ro",
        r.input_dir.display()
    ));
    a.push("--volume".into());
    a.push(format!(
        "{}:{CONTAINER_OUTPUT_DIR}:rw",
        r.output_dir.display()
    ));
    if r.limits.memory_bytes != 0 {
        a.push("--memory".into());
        a.push(r.limits.memory_bytes.to_string());
    }
    if r.limits.output_bytes != 0 {
        a.push("--ulimit".into());
        a.push(format!("fsize={0}:{0}", r.limits.output_bytes));
    }
    if r.limits.cpu_time_ms != 0 {
        let secs = r.limits.cpu_time_ms.div_ceil(1000);
        a.push("--ulimit".into());
        a.push(format!("cpu={secs}:{secs}"));
    }
    if !r.gpus.is_empty() {
        match r.engine {
            ContainerEngine::Podman => {
                // Podman exposes NVIDIA GPUs through CDI specs (nvidia-ctk cdi generate).
                for g in r.gpus {
                    a.push("--device".into());
                    a.push(format!("nvidia.com/gpu={}", g.index));
                }
            }
            ContainerEngine::Docker | ContainerEngine::Nerdctl => {
                let list: Vec<String> = r.gpus.iter().map(|g| g.index.to_string()).collect();
                a.push("--gpus".into());
                a.push(format!("\"device={}\"", list.join(",")));
            }
        }
    }
    for (k, v) in r.env {
        a.push("--env".into());
        a.push(format!("{k}={v}"));
    }
    a.extend(r.config.extra_args.iter().cloned());
    a.push(r.image.into());
    a.extend(r.args.iter().cloned());
    a
}

/// Arguments of the command that removes the container, running or not.
pub fn remove_args(name: &str) -> Vec<String> {
    vec!["rm".into(), "--force".into(), name.into()]
}
