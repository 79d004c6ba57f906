//! `gpu-monitor`: the one place Sigil talks to the NVIDIA driver.
//!
//! * [`GpuProbe`]: the trait in front of the driver: inventory, confidential-computing state
//!   (and setting the GPUs-ready state), attestation evidence for a nonce, samples for metering,
//!   health readings. [`NvmlProbe`] implements it over NVML; `FakeProbe` (feature `fake`) replays
//!   scripted readings and real evidence for tests.
//! * [`GpuEvidence`]: what the agent embeds for a GPU: the SPDM report NVML returned for a
//!   32-byte nonce, the attestation certificate chain (PEM), the nonce and the GPU's UUID.
//! * [`Meter`]: samples a job's GPUs over its life and returns [`JobGpuUsage`]
//!   (utilisation-weighted GPU time, energy from the total-energy counter, peak memory,
//!   per-process figures).
//! * [`health`]: readiness evaluation: a GPU that left the CC-ready state or fails health is
//!   reported so the agent stops offering it.
//! * [`metrics`]: Prometheus text with the DCGM exporter's names and labels.
//!
//! Without the driver every entry point returns [`GpuError::DriverNotLoaded`], and the agent
//! carries on without GPUs.
//!
//! ```no_run
//! # #[cfg(feature = "nvml")]
//! # fn main() -> Result<(), gpu_monitor::GpuError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use gpu_monitor::{GpuProbe, Meter, Nonce, NvmlProbe};
//!
//! let probe: Arc<dyn GpuProbe> = Arc::new(NvmlProbe::init()?);
//! let evidence = probe.attestation_evidence(0, &Nonce::new([7; 32]))?;
//! let run = Meter::new(Arc::clone(&probe), Duration::from_secs(1)).start(&[0])?;
//! // ... the job runs ...
//! let usage = run.stop()?;
//! println!("{} ms of GPU time, {:?} mJ", usage.gpu_time_ms, usage.energy_mj);
//! # let _ = evidence;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "nvml"))]
//! # fn main() {}
//! ```

mod error;
mod evidence;
#[cfg(any(test, feature = "fake"))]
mod fake;
pub mod health;
mod meter;
pub mod metrics;
mod model;
#[cfg(feature = "nvml")]
mod nvml;
mod probe;

pub use error::{EvidenceError, GpuError};
pub use evidence::{GpuEvidence, NONCE_LEN, Nonce, SPDM_REQUEST_LEN, report_nonce};
#[cfg(any(test, feature = "fake"))]
pub use fake::{FakeGpu, FakeProbe};
pub use meter::{
    EnergySource, GpuUsage, JobGpuUsage, Meter, MeterRun, ProcessUsage, UsageAccumulator,
};
pub use model::{
    CcCpuCapability, CcEnvironment, CcMemory, CcState, GpuInventory, GpuSample, HealthSnapshot,
    MigMode, MultiGpuMode, ProcessAccounting, ProcessSample, RemappedRows, SystemInfo,
    ThrottleReasons,
};
#[cfg(feature = "nvml")]
pub use nvml::NvmlProbe;
pub use probe::{GpuProbe, Inventory};

#[cfg(test)]
mod tests;
