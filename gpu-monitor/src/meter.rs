//! Per-job GPU metering: samples a job's GPUs over its life and sums what the receipt reports.
//!
//! * **GPU time** is utilisation-weighted: each interval between two samples counts its length
//!   times the utilisation read at its end (NVML's utilisation is the share of the last sample
//!   period, 1/6 s to 1 s, during which a kernel ran, so a reading describes the time just
//!   before it). A job that keeps one GPU fully busy for 10 s earns 10 000 ms.
//! * **Energy** is the difference of the GPU's total-energy counter (mJ since the driver loaded)
//!   between the first and last samples. Where the counter is absent (pre-Volta, some vGPUs) or
//!   went backwards (driver reload), it is the trapezoidal integral of the power readings, and
//!   [`EnergySource`] says which.
//! * **Peak memory** is the largest framebuffer use seen; per-process peaks come from the
//!   running-process list, and the driver's accounting record is attached when accounting mode
//!   is on.
//!
//! [`UsageAccumulator`] is the arithmetic (pure, driven by explicit timestamps, tested on its
//! own); [`Meter`] runs it on a std thread with a stop signal, so it works under any async
//! runtime or none (call [`MeterRun::stop`] from a blocking context).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::GpuError;
use crate::model::{GpuSample, ProcessAccounting};
use crate::probe::GpuProbe;

/// Where an energy figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// The GPU's total-energy counter.
    Counter,
    /// Power readings integrated over time (less precise).
    PowerIntegral,
    /// Neither was available.
    Unavailable,
}

/// One GPU's usage over a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuUsage {
    /// NVML index.
    pub index: u32,
    /// GPU UUID.
    pub uuid: String,
    /// Time from the first to the last successful sample, ms.
    pub wall_ms: u64,
    /// Utilisation-weighted GPU time, ms.
    pub gpu_time_ms: u64,
    /// Energy, mJ.
    pub energy_mj: Option<u64>,
    /// How `energy_mj` was obtained.
    pub energy_source: EnergySource,
    /// Largest framebuffer use seen.
    pub peak_memory_bytes: Option<u64>,
    /// Successful samples.
    pub samples: u32,
    /// Failed samples.
    pub failed_samples: u32,
    /// The last sampling error, if any.
    pub last_error: Option<String>,
    /// Compute processes seen on this GPU.
    pub processes: Vec<ProcessUsage>,
}

/// A process's use of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// Process id.
    pub pid: u32,
    /// Samples in which it was running.
    pub samples_seen: u32,
    /// Largest memory use seen in samples.
    pub peak_memory_bytes: Option<u64>,
    /// The driver's accounting record (accounting mode on).
    pub accounting: Option<ProcessAccounting>,
}

/// A job's GPU usage: what feeds the receipt's usage fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobGpuUsage {
    /// Per GPU.
    pub gpus: Vec<GpuUsage>,
    /// Sum of the GPUs' GPU time, ms.
    pub gpu_time_ms: u64,
    /// Sum of the GPUs' energy, mJ; `None` unless every GPU has a figure.
    pub energy_mj: Option<u64>,
    /// Sum of the GPUs' peak memory use (the framebuffer the job held across its GPUs).
    pub peak_memory_bytes: Option<u64>,
}

#[derive(Debug, Default)]
struct ProcessAcc {
    samples_seen: u32,
    peak_memory: Option<u64>,
}

#[derive(Debug)]
struct GpuAcc {
    index: u32,
    uuid: String,
    first_at: Option<Duration>,
    last_at: Option<Duration>,
    samples: u32,
    failed: u32,
    last_error: Option<String>,
    /// Σ interval_µs × utilisation_% (u128: no overflow for any realistic job).
    util_weighted: u128,
    first_energy: Option<u64>,
    last_energy: Option<u64>,
    energy_readings: u32,
    counter_went_back: bool,
    /// Σ interval_ms × mean power_mW = µJ.
    power_integral_uj: u128,
    power_intervals: u32,
    last_power: Option<(Duration, u32)>,
    peak_memory: Option<u64>,
    processes: BTreeMap<u32, ProcessAcc>,
}

/// The metering arithmetic, fed with samples and the time each was taken.
#[derive(Debug)]
pub struct UsageAccumulator {
    gpus: Vec<GpuAcc>,
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl UsageAccumulator {
    /// For the GPUs `(index, uuid)`.
    pub fn new(gpus: impl IntoIterator<Item = (u32, String)>) -> Self {
        Self {
            gpus: gpus
                .into_iter()
                .map(|(index, uuid)| GpuAcc {
                    index,
                    uuid,
                    first_at: None,
                    last_at: None,
                    samples: 0,
                    failed: 0,
                    last_error: None,
                    util_weighted: 0,
                    first_energy: None,
                    last_energy: None,
                    energy_readings: 0,
                    counter_went_back: false,
                    power_integral_uj: 0,
                    power_intervals: 0,
                    last_power: None,
                    peak_memory: None,
                    processes: BTreeMap::new(),
                })
                .collect(),
        }
    }

    fn gpu(&mut self, index: u32) -> Option<&mut GpuAcc> {
        self.gpus.iter_mut().find(|g| g.index == index)
    }

    /// Records GPU `index`'s sample taken at `at` (time since an arbitrary origin; samples of
    /// one GPU must come in time order; one out of order is ignored). Unknown GPUs are ignored.
    pub fn record(&mut self, index: u32, at: Duration, sample: &GpuSample) {
        let Some(g) = self.gpu(index) else { return };
        if g.last_at.is_some_and(|last| at < last) {
            return;
        }
        if let (Some(last), Some(util)) = (g.last_at, sample.gpu_utilization_pct) {
            let dt = micros(at.saturating_sub(last));
            let weighted = dt.saturating_mul(u128::from(util.min(100)));
            g.util_weighted = g.util_weighted.saturating_add(weighted);
        }
        if let Some(energy) = sample.total_energy_mj {
            if g.first_energy.is_none() {
                g.first_energy = Some(energy);
            }
            if g.last_energy.is_some_and(|last| energy < last) {
                g.counter_went_back = true;
            }
            g.last_energy = Some(energy);
            g.energy_readings = g.energy_readings.saturating_add(1);
        }
        if let Some(power) = sample.power_mw {
            if let Some((then, before)) = g.last_power {
                let dt_ms = at.saturating_sub(then).as_millis();
                // mean of the two readings × interval: mW × ms = µJ (halved at the end of the
                // sum rather than per interval, to keep the rounding out).
                let twice = u128::from(before).saturating_add(u128::from(power));
                g.power_integral_uj = g
                    .power_integral_uj
                    .saturating_add(dt_ms.saturating_mul(twice));
                g.power_intervals = g.power_intervals.saturating_add(1);
            }
            g.last_power = Some((at, power));
        }
        g.peak_memory = max_opt(g.peak_memory, sample.memory_used_bytes);
        if let Some(processes) = &sample.processes {
            for p in processes {
                let acc = g.processes.entry(p.pid).or_default();
                acc.samples_seen = acc.samples_seen.saturating_add(1);
                acc.peak_memory = max_opt(acc.peak_memory, p.used_memory_bytes);
            }
        }
        if g.first_at.is_none() {
            g.first_at = Some(at);
        }
        g.last_at = Some(at);
        g.samples = g.samples.saturating_add(1);
    }

    /// Records that sampling GPU `index` failed.
    pub fn record_error(&mut self, index: u32, error: &GpuError) {
        if let Some(g) = self.gpu(index) {
            g.failed = g.failed.saturating_add(1);
            g.last_error = Some(error.to_string());
        }
    }

    /// The pids seen on each GPU: `(index, pid)`.
    pub fn processes(&self) -> Vec<(u32, u32)> {
        self.gpus
            .iter()
            .flat_map(|g| g.processes.keys().map(move |&pid| (g.index, pid)))
            .collect()
    }

    /// The usage; `accounting(index, pid)` supplies the driver's accounting records.
    pub fn finish(
        self,
        mut accounting: impl FnMut(u32, u32) -> Option<ProcessAccounting>,
    ) -> JobGpuUsage {
        let gpus: Vec<GpuUsage> = self
            .gpus
            .into_iter()
            .map(|g| {
                let wall = match (g.first_at, g.last_at) {
                    (Some(first), Some(last)) => last.saturating_sub(first),
                    _ => Duration::ZERO,
                };
                // Two readings at least: one alone spans no time and would claim 0 mJ.
                let counter = match (g.first_energy, g.last_energy) {
                    (Some(first), Some(last)) if !g.counter_went_back && g.energy_readings > 1 => {
                        last.checked_sub(first)
                    }
                    _ => None,
                };
                let (energy_mj, energy_source) = match counter {
                    Some(mj) => (Some(mj), EnergySource::Counter),
                    None if g.power_intervals > 0 => (
                        // µJ×2 -> mJ
                        Some(to_u64(g.power_integral_uj / 2000)),
                        EnergySource::PowerIntegral,
                    ),
                    None => (None, EnergySource::Unavailable),
                };
                let index = g.index;
                let processes = g
                    .processes
                    .into_iter()
                    .map(|(pid, p)| ProcessUsage {
                        pid,
                        samples_seen: p.samples_seen,
                        peak_memory_bytes: p.peak_memory,
                        accounting: accounting(index, pid),
                    })
                    .collect();
                GpuUsage {
                    index,
                    uuid: g.uuid,
                    wall_ms: to_u64(wall.as_millis()),
                    // µs × % -> ms
                    gpu_time_ms: to_u64(g.util_weighted / 100_000),
                    energy_mj,
                    energy_source,
                    peak_memory_bytes: g.peak_memory,
                    samples: g.samples,
                    failed_samples: g.failed,
                    last_error: g.last_error,
                    processes,
                }
            })
            .collect();
        let gpu_time_ms = gpus
            .iter()
            .fold(0u64, |sum, g| sum.saturating_add(g.gpu_time_ms));
        let energy_mj = gpus
            .iter()
            .try_fold(0u64, |sum, g| g.energy_mj.map(|e| sum.saturating_add(e)));
        let peak_memory_bytes = gpus
            .iter()
            .filter_map(|g| g.peak_memory_bytes)
            .reduce(u64::saturating_add);
        JobGpuUsage {
            energy_mj: if gpus.is_empty() { None } else { energy_mj },
            gpus,
            gpu_time_ms,
            peak_memory_bytes,
        }
    }
}

/// Samples GPUs over jobs.
#[derive(Clone)]
pub struct Meter {
    probe: Arc<dyn GpuProbe>,
    interval: Duration,
}

impl core::fmt::Debug for Meter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Meter")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// Default sampling interval: NVML's utilisation window is at most 1 s.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    /// A meter sampling every `interval` (at least 10 ms).
    pub fn new(probe: Arc<dyn GpuProbe>, interval: Duration) -> Self {
        Self {
            probe,
            interval: interval.max(Duration::from_millis(10)),
        }
    }

    /// Starts metering the GPUs `indices`: resolves their UUIDs, takes the first sample now
    /// (so the energy counter is read at the job's start) and samples on a background thread
    /// until [`MeterRun::stop`].
    pub fn start(&self, indices: &[u32]) -> Result<MeterRun, GpuError> {
        let mut gpus = Vec::with_capacity(indices.len());
        for &index in indices {
            gpus.push((index, self.probe.gpu_inventory(index)?.uuid));
        }
        let mut acc = UsageAccumulator::new(gpus);
        let origin = Instant::now();
        sample_all(self.probe.as_ref(), indices, &mut acc, origin);

        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let probe = Arc::clone(&self.probe);
        let interval = self.interval;
        let thread_indices = indices.to_vec();
        let handle = std::thread::Builder::new()
            .name("sigil-gpu-meter".into())
            .spawn(move || {
                // A message or a closed channel ends the run; a timeout is the next tick.
                while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(interval) {
                    sample_all(probe.as_ref(), &thread_indices, &mut acc, origin);
                }
                acc
            })
            .map_err(|e| GpuError::MeterThread {
                detail: e.to_string(),
            })?;
        Ok(MeterRun {
            probe: Arc::clone(&self.probe),
            indices: indices.to_vec(),
            origin,
            stop: Some(stop_tx),
            handle: Some(handle),
        })
    }
}

fn sample_all(probe: &dyn GpuProbe, indices: &[u32], acc: &mut UsageAccumulator, origin: Instant) {
    for &index in indices {
        match probe.sample(index) {
            Ok(sample) => acc.record(index, origin.elapsed(), &sample),
            Err(e) => acc.record_error(index, &e),
        }
    }
}

/// A metering run in progress. Dropping it stops the thread without a result.
pub struct MeterRun {
    probe: Arc<dyn GpuProbe>,
    indices: Vec<u32>,
    origin: Instant,
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<UsageAccumulator>>,
}

impl core::fmt::Debug for MeterRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeterRun")
            .field("indices", &self.indices)
            .finish_non_exhaustive()
    }
}

impl MeterRun {
    /// Stops sampling, takes a last sample now, attaches accounting records and returns the
    /// usage. Blocks for at most one sampling round.
    pub fn stop(mut self) -> Result<JobGpuUsage, GpuError> {
        drop(self.stop.take());
        let handle = self.handle.take().ok_or_else(|| GpuError::MeterThread {
            detail: "already stopped".into(),
        })?;
        let mut acc = handle.join().map_err(|_| GpuError::MeterThread {
            detail: "sampling thread panicked".into(),
        })?;
        sample_all(self.probe.as_ref(), &self.indices, &mut acc, self.origin);
        let probe = Arc::clone(&self.probe);
        Ok(acc.finish(|index, pid| probe.process_accounting(index, pid).ok().flatten()))
    }
}

impl Drop for MeterRun {
    fn drop(&mut self) {
        // Closing the channel ends the thread at its next wake-up; not joined, so dropping never
        // blocks.
        drop(self.stop.take());
    }
}
