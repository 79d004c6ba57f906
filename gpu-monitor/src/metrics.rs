//! Prometheus text exposition (format 0.0.4).
//!
//! Metrics that NVIDIA's DCGM exporter also exports keep its names, types, units (MiB, W, mJ)
//! and labels (`gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`), so dashboards
//! and alerts built for it work unchanged. Sigil's own readings are `sigil_gpu_*`.
//!
//! Written by hand rather than with a metrics crate: the registries of `prometheus` and
//! `prometheus-client` rename counters (`_total` suffixes) and expect long-lived metric objects,
//! while this is a one-shot rendering of a snapshot whose names must match DCGM's exactly.

use std::fmt::Write as _;

use crate::health::GpuStatus;
use crate::model::{CcState, GpuInventory, GpuSample, HealthSnapshot};

/// One GPU's readings for an exposition.
#[derive(Debug, Clone, Copy)]
pub struct GpuReadings<'a> {
    /// Identity (labels).
    pub gpu: &'a GpuInventory,
    /// Utilisation, memory, energy.
    pub sample: Option<&'a GpuSample>,
    /// Health readings.
    pub health: Option<&'a HealthSnapshot>,
    /// Readiness evaluation.
    pub status: Option<&'a GpuStatus>,
}

const MIB: u64 = 1024 * 1024;

/// A metric value.
enum Value {
    Int(u64),
    Watts(u32),
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    get: fn(&GpuReadings<'_>, Option<&CcState>) -> Option<Value>,
}

fn bool_value(b: bool) -> Value {
    Value::Int(u64::from(b))
}

const FAMILIES: &[Family] = &[
    Family {
        name: "DCGM_FI_DEV_GPU_UTIL",
        kind: "gauge",
        help: "GPU utilization (in %).",
        get: |r, _| {
            r.sample
                .and_then(|s| s.gpu_utilization_pct)
                .map(|v| Value::Int(v.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_MEM_COPY_UTIL",
        kind: "gauge",
        help: "Memory utilization (in %).",
        get: |r, _| {
            r.sample
                .and_then(|s| s.memory_utilization_pct)
                .map(|v| Value::Int(v.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_FB_USED",
        kind: "gauge",
        help: "Framebuffer memory used (in MiB).",
        get: |r, _| {
            r.sample
                .and_then(|s| s.memory_used_bytes)
                .map(|b| Value::Int(b / MIB))
        },
    },
    Family {
        name: "DCGM_FI_DEV_FB_FREE",
        kind: "gauge",
        help: "Framebuffer memory free (in MiB).",
        get: |r, _| {
            let s = r.sample?;
            let free = s.memory_total_bytes?.saturating_sub(s.memory_used_bytes?);
            Some(Value::Int(free / MIB))
        },
    },
    Family {
        name: "DCGM_FI_DEV_FB_TOTAL",
        kind: "gauge",
        help: "Total framebuffer memory (in MiB).",
        get: |r, _| Some(Value::Int(r.gpu.memory_total_bytes / MIB)),
    },
    Family {
        name: "DCGM_FI_DEV_GPU_TEMP",
        kind: "gauge",
        help: "GPU temperature (in C).",
        get: |r, _| {
            r.health
                .and_then(|h| h.temperature_c)
                .map(|v| Value::Int(v.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_SLOWDOWN_TEMP",
        kind: "gauge",
        help: "Slowdown temperature threshold (in C).",
        get: |r, _| {
            r.health
                .and_then(|h| h.slowdown_temperature_c)
                .map(|v| Value::Int(v.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_POWER_USAGE",
        kind: "gauge",
        help: "Power draw (in W).",
        get: |r, _| {
            r.sample
                .and_then(|s| s.power_mw)
                .or_else(|| r.health.and_then(|h| h.power_mw))
                .map(Value::Watts)
        },
    },
    Family {
        name: "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
        kind: "gauge",
        help: "Effective power limit that the driver enforces after taking into account all limiters (in W).",
        get: |r, _| r.health.and_then(|h| h.power_limit_mw).map(Value::Watts),
    },
    Family {
        name: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        kind: "counter",
        help: "Total energy consumption since boot (in mJ).",
        get: |r, _| r.sample.and_then(|s| s.total_energy_mj).map(Value::Int),
    },
    Family {
        name: "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        kind: "gauge",
        help: "Current clock throttle reasons (bitmask).",
        get: |r, _| {
            r.health
                .and_then(|h| h.throttle_reasons)
                .map(|t| Value::Int(t.0))
        },
    },
    Family {
        name: "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        kind: "counter",
        help: "Total number of single-bit volatile ECC errors.",
        get: |r, _| {
            r.health
                .and_then(|h| h.ecc_corrected_volatile)
                .map(Value::Int)
        },
    },
    Family {
        name: "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        kind: "counter",
        help: "Total number of double-bit volatile ECC errors.",
        get: |r, _| {
            r.health
                .and_then(|h| h.ecc_uncorrected_volatile)
                .map(Value::Int)
        },
    },
    Family {
        name: "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        kind: "counter",
        help: "Total number of double-bit persistent ECC errors.",
        get: |r, _| {
            r.health
                .and_then(|h| h.ecc_uncorrected_aggregate)
                .map(Value::Int)
        },
    },
    Family {
        name: "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        kind: "counter",
        help: "Number of remapped rows for correctable errors",
        get: |r, _| {
            r.health
                .and_then(|h| h.remapped_rows)
                .map(|m| Value::Int(m.correctable.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        kind: "counter",
        help: "Number of remapped rows for uncorrectable errors",
        get: |r, _| {
            r.health
                .and_then(|h| h.remapped_rows)
                .map(|m| Value::Int(m.uncorrectable.into()))
        },
    },
    Family {
        name: "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        kind: "gauge",
        help: "Whether remapping of rows has failed",
        get: |r, _| {
            r.health
                .and_then(|h| h.remapped_rows)
                .map(|m| bool_value(m.failure))
        },
    },
    Family {
        name: "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        kind: "counter",
        help: "Total number of PCIe retries.",
        get: |r, _| {
            r.health
                .and_then(|h| h.pcie_replay_count)
                .map(|v| Value::Int(v.into()))
        },
    },
    Family {
        name: "sigil_gpu_cc_enabled",
        kind: "gauge",
        help: "Confidential-computing mode is on (system-wide, repeated per GPU).",
        get: |_, cc| cc.map(|c| bool_value(c.cc_enabled)),
    },
    Family {
        name: "sigil_gpu_cc_dev_tools_mode",
        kind: "gauge",
        help: "Confidential-computing developer-tools mode is on (not confidential).",
        get: |_, cc| cc.map(|c| bool_value(c.dev_tools_mode)),
    },
    Family {
        name: "sigil_gpu_cc_protected_pcie",
        kind: "gauge",
        help: "Multi-GPU protected PCIe mode is on.",
        get: |_, cc| cc.map(|c| bool_value(c.protected_pcie())),
    },
    Family {
        name: "sigil_gpu_cc_ready",
        kind: "gauge",
        help: "CC on, in production, without developer tools, and the GPUs-ready state set.",
        get: |_, cc| cc.map(|c| bool_value(c.is_cc_ready())),
    },
    Family {
        name: "sigil_gpu_cc_protected_memory_bytes",
        kind: "gauge",
        help: "Protected (CPR) memory size in bytes.",
        get: |r, _| r.gpu.cc_memory.map(|m| Value::Int(m.protected_bytes)),
    },
    Family {
        name: "sigil_gpu_cc_protected_memory_used_bytes",
        kind: "gauge",
        help: "Protected (CPR) memory in use in bytes.",
        get: |r, _| {
            r.gpu
                .cc_memory
                .and_then(|m| m.protected_used_bytes)
                .map(Value::Int)
        },
    },
    Family {
        name: "sigil_gpu_ready",
        kind: "gauge",
        help: "The GPU passes the readiness policy and may be offered.",
        get: |r, _| r.status.map(|s| bool_value(s.is_ready())),
    },
    Family {
        name: "sigil_gpu_problems",
        kind: "gauge",
        help: "Number of readiness problems (warnings and fatal).",
        get: |r, _| {
            r.status
                .map(|s| Value::Int(u64::try_from(s.problems.len()).unwrap_or(u64::MAX)))
        },
    },
];

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The DCGM exporter's label set for a GPU.
fn labels(gpu: &GpuInventory, hostname: &str) -> String {
    let device = format!("nvidia{}", gpu.minor_number.unwrap_or(gpu.index));
    format!(
        "gpu=\"{}\",UUID=\"{}\",pci_bus_id=\"{}\",device=\"{}\",modelName=\"{}\",Hostname=\"{}\"",
        gpu.index,
        escape(&gpu.uuid),
        escape(&gpu.pci_bus_id),
        escape(&device),
        escape(&gpu.name),
        escape(hostname),
    )
}

/// Renders the exposition for `gpus` on host `hostname`; `cc` is the system CC state.
///
/// A family is left out when no GPU has a reading for it (absent is not zero).
pub fn render(hostname: &str, cc: Option<&CcState>, gpus: &[GpuReadings<'_>]) -> String {
    let mut out = String::new();
    let label_sets: Vec<String> = gpus.iter().map(|r| labels(r.gpu, hostname)).collect();
    for family in FAMILIES {
        let mut header = false;
        for (readings, labels) in gpus.iter().zip(&label_sets) {
            let Some(value) = (family.get)(readings, cc) else {
                continue;
            };
            // Writing to a String cannot fail.
            if !header {
                let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
                let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
                header = true;
            }
            let _ = match value {
                Value::Int(v) => writeln!(out, "{}{{{labels}}} {v}", family.name),
                Value::Watts(mw) => {
                    writeln!(
                        out,
                        "{}{{{labels}}} {}",
                        family.name,
                        f64::from(mw) / 1000.0
                    )
                }
            };
        }
    }
    // sigil_gpu_info carries the versions as labels, value 1.
    let mut header = false;
    for (readings, labels) in gpus.iter().zip(&label_sets) {
        if !header {
            let _ = writeln!(
                out,
                "# HELP sigil_gpu_info GPU identity: VBIOS version and architecture as labels."
            );
            let _ = writeln!(out, "# TYPE sigil_gpu_info gauge");
            header = true;
        }
        let gpu = readings.gpu;
        let _ = writeln!(
            out,
            "sigil_gpu_info{{{labels},vbios_version=\"{}\",architecture=\"{}\",serial=\"{}\"}} 1",
            escape(gpu.vbios_version.as_deref().unwrap_or("")),
            escape(gpu.architecture.as_deref().unwrap_or("")),
            escape(gpu.serial.as_deref().unwrap_or("")),
        );
    }
    out
}
