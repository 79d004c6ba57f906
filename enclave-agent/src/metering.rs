//! Per-job metering: wall time, CPU time and peak memory of the workload's process (from
//! `wait4`'s rusage, which covers the process and every descendant it waited for), and GPU
//! time and energy through `gpu-monitor`'s [`gpu_monitor::Meter`] when GPUs are assigned.

use std::sync::Arc;
use std::time::Duration;

use crate::job::UsageRecord;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// CPU-side usage of a workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    /// Wall-clock milliseconds from spawn to exit.
    pub wall_ms: u64,
    /// User + system CPU milliseconds of the process and its waited-for descendants.
    pub cpu_ms: u64,
    /// Largest resident set of the process or one waited-for descendant, bytes.
    pub peak_memory_bytes: u64,
}

impl ProcessUsage {
    /// From `wait4`'s rusage and the measured wall time.
    pub fn from_rusage(r: &wait4::ResourceUsage, wall: Duration) -> Self {
        Self {
            wall_ms: ms(wall),
            cpu_ms: ms(r.utime.saturating_add(r.stime)),
            peak_memory_bytes: r.maxrss,
        }
    }
}

/// GPU usage of a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuUsage {
    /// Utilisation-weighted GPU milliseconds, summed over the job's GPUs.
    pub gpu_ms: u64,
    /// Energy in millijoules (0 when the driver reports none).
    pub energy_mj: u64,
}

/// Combines CPU and GPU usage into the stored record.
pub fn usage_record(p: ProcessUsage, g: GpuUsage) -> UsageRecord {
    UsageRecord {
        wall_ms: p.wall_ms,
        cpu_ms: p.cpu_ms,
        peak_memory_bytes: p.peak_memory_bytes,
        gpu_ms: g.gpu_ms,
        gpu_energy_mj: g.energy_mj,
    }
}

/// GPU metering for the agent: a [`gpu_monitor::Meter`] when the agent has GPUs.
#[derive(Clone, Default)]
pub struct GpuMetering {
    meter: Option<Arc<gpu_monitor::Meter>>,
}

impl std::fmt::Debug for GpuMetering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMetering")
            .field("enabled", &self.meter.is_some())
            .finish()
    }
}

/// GPU metering of one running job.
pub struct GpuMeterRun(Option<gpu_monitor::MeterRun>);

impl std::fmt::Debug for GpuMeterRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GpuMeterRun")
    }
}

impl GpuMetering {
    /// Metering through `probe`, sampling every `interval`.
    pub fn new(probe: Arc<dyn gpu_monitor::GpuProbe>, interval: Duration) -> Self {
        Self {
            meter: Some(Arc::new(gpu_monitor::Meter::new(probe, interval))),
        }
    }

    /// No GPUs: every run measures zero.
    pub fn disabled() -> Self {
        Self { meter: None }
    }

    /// Starts metering the GPUs `indices` (nothing if empty or disabled). A failure to start
    /// is logged and the job runs unmetered on the GPU side.
    pub fn start(&self, indices: &[u32]) -> GpuMeterRun {
        match (&self.meter, indices.is_empty()) {
            (Some(m), false) => match m.start(indices) {
                Ok(run) => GpuMeterRun(Some(run)),
                Err(e) => {
                    tracing::warn!(error = %e, "GPU metering did not start");
                    GpuMeterRun(None)
                }
            },
            _ => GpuMeterRun(None),
        }
    }
}

impl GpuMeterRun {
    /// Stops metering and returns the totals.
    pub fn stop(self) -> GpuUsage {
        let Some(run) = self.0 else {
            return GpuUsage::default();
        };
        match run.stop() {
            Ok(u) => GpuUsage {
                gpu_ms: u.gpu_time_ms,
                energy_mj: u.energy_mj.unwrap_or(0),
            },
            Err(e) => {
                tracing::warn!(error = %e, "GPU metering failed");
                GpuUsage::default()
            }
        }
    }
}
