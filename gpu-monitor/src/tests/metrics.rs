//! Prometheus exposition: DCGM names, units and labels; text-format validity.

use std::collections::HashSet;

use super::probe::cc_ready;
use crate::health::{GpuStatus, Problem};
use crate::metrics::{GpuReadings, render};
use crate::{CcMemory, FakeGpu, GpuSample, HealthSnapshot, RemappedRows, ThrottleReasons};

/// Checks the text format: HELP then TYPE before a family's samples, each family once, sample
/// lines `name{labels} value` with a numeric value and well-formed labels.
fn assert_valid_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut seen = HashSet::new();
    let mut current: Option<String> = None;
    let mut typed = false;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(seen.insert(name.clone()), "family {name} twice");
            current = Some(name);
            typed = false;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            assert_eq!(parts.next(), current.as_deref(), "{line}");
            assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
            typed = true;
        } else {
            let open = line.find('{').unwrap();
            let close = line.rfind('}').unwrap();
            let name = &line[..open];
            assert_eq!(
                Some(name),
                current.as_deref(),
                "sample outside its family: {line}"
            );
            assert!(typed, "{line}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            let value: f64 = line[close + 1..].trim().parse().unwrap();
            let labels = &line[open + 1..close];
            // name="value" pairs with escaped quotes only.
            let mut rest = labels;
            while !rest.is_empty() {
                let eq = rest.find("=\"").unwrap();
                assert!(
                    rest[..eq]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                );
                let mut chars = rest[eq + 2..].char_indices();
                let end = loop {
                    match chars.next().unwrap() {
                        (_, '\\') => {
                            assert!(matches!(chars.next().unwrap().1, '\\' | '"' | 'n'));
                        }
                        (i, '"') => break eq + 2 + i,
                        (_, '\n') => panic!("raw newline"),
                        _ => {}
                    }
                };
                rest = rest[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&rest[end + 1..]);
            }
            samples.push((name.to_owned(), labels.to_owned(), value));
        }
    }
    samples
}

fn value(samples: &[(String, String, f64)], name: &str, gpu: u32) -> Option<f64> {
    let tag = format!("gpu=\"{gpu}\",");
    samples
        .iter()
        .find(|(n, l, _)| n == name && l.starts_with(&tag))
        .map(|s| s.2)
}

#[test]
fn dcgm_exposition_works() {
    let mut g0 = FakeGpu::new(0, "GPU-5fb2a5b0-2c1a-4f1e-9d60-0123456789ab").inventory;
    g0.cc_memory = Some(CcMemory {
        protected_bytes: 80 << 30,
        unprotected_bytes: 1 << 30,
        protected_used_bytes: Some(2 << 30),
    });
    let mut g1 = FakeGpu::new(1, "GPU-b").inventory;
    g1.name = "Weird \"model\" \\ name\nx".into();
    g1.minor_number = None;
    let s0 = GpuSample {
        gpu_utilization_pct: Some(97),
        memory_utilization_pct: Some(40),
        memory_used_bytes: Some(10 * 1024 * 1024 * 1024 + 5),
        memory_total_bytes: Some(80 * 1024 * 1024 * 1024),
        total_energy_mj: Some(123_456_789),
        power_mw: Some(350_123),
        processes: None,
    };
    let h0 = HealthSnapshot {
        temperature_c: Some(61),
        slowdown_temperature_c: Some(87),
        throttle_reasons: Some(ThrottleReasons::SW_POWER_CAP),
        ecc_uncorrected_volatile: Some(0),
        ecc_corrected_volatile: Some(4),
        remapped_rows: Some(RemappedRows {
            correctable: 2,
            uncorrectable: 0,
            pending: false,
            failure: false,
        }),
        ..HealthSnapshot::default()
    };
    let st0 = GpuStatus {
        index: 0,
        uuid: g0.uuid.clone(),
        problems: vec![],
    };
    let st1 = GpuStatus {
        index: 1,
        uuid: "GPU-b".into(),
        problems: vec![Problem::GpuLost],
    };
    let cc = cc_ready();
    let text = render(
        "node-7",
        Some(&cc),
        &[
            GpuReadings {
                gpu: &g0,
                sample: Some(&s0),
                health: Some(&h0),
                status: Some(&st0),
            },
            GpuReadings {
                gpu: &g1,
                sample: None,
                health: None,
                status: Some(&st1),
            },
        ],
    );
    let samples = assert_valid_exposition(&text);

    assert!(text.contains(
        "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-5fb2a5b0-2c1a-4f1e-9d60-0123456789ab\",\
         pci_bus_id=\"00000000:18:00.0\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",\
         Hostname=\"node-7\"} 97\n"
    ));
    assert!(text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
    assert!(text.contains("# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n"));
    assert_eq!(value(&samples, "DCGM_FI_DEV_FB_USED", 0), Some(10240.0));
    assert_eq!(value(&samples, "DCGM_FI_DEV_FB_FREE", 0), Some(71679.0));
    assert_eq!(value(&samples, "DCGM_FI_DEV_POWER_USAGE", 0), Some(350.123));
    assert_eq!(
        value(&samples, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 0),
        Some(123_456_789.0)
    );
    assert_eq!(value(&samples, "DCGM_FI_DEV_GPU_TEMP", 0), Some(61.0));
    assert_eq!(
        value(&samples, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 0),
        Some(4.0)
    );
    assert_eq!(
        value(&samples, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 0),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0),
        Some(2.0)
    );
    assert_eq!(value(&samples, "sigil_gpu_cc_ready", 0), Some(1.0));
    assert_eq!(value(&samples, "sigil_gpu_cc_ready", 1), Some(1.0));
    assert_eq!(
        value(&samples, "sigil_gpu_cc_protected_memory_bytes", 0),
        Some((80u64 << 30) as f64)
    );
    assert_eq!(value(&samples, "sigil_gpu_ready", 0), Some(1.0));
    assert_eq!(value(&samples, "sigil_gpu_ready", 1), Some(0.0));
    assert_eq!(value(&samples, "sigil_gpu_problems", 1), Some(1.0));
    // Absent readings are left out, not reported as zero.
    assert_eq!(value(&samples, "DCGM_FI_DEV_GPU_UTIL", 1), None);
    assert!(!text.contains("DCGM_FI_DEV_PCIE_REPLAY_COUNTER"));
    // GPU 1: escaped model name, device from the index when the minor number is unknown.
    assert!(text.contains("modelName=\"Weird \\\"model\\\" \\\\ name\\nx\",Hostname=\"node-7\""));
    assert!(
        text.contains(
            "gpu=\"1\",UUID=\"GPU-b\",pci_bus_id=\"00000000:19:00.0\",device=\"nvidia1\""
        )
    );
    assert!(text.contains("sigil_gpu_info{gpu=\"0\""));
}

#[test]
fn empty_exposition_works() {
    assert_eq!(render("h", None, &[]), "");
}
