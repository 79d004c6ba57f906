//! A scripted [`GpuProbe`] for tests on machines without a GPU.
//!
//! It returns what it was given: fixed inventory and CC state, queued samples (the last one
//! repeats), and real attestation reports and certificate chains, which go through the same
//! structural checks ([`GpuEvidence::from_driver`]) as the driver's. It never invents evidence.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::GpuError;
use crate::evidence::{GpuEvidence, Nonce};
use crate::model::{
    CcState, GpuInventory, GpuSample, HealthSnapshot, ProcessAccounting, SystemInfo,
};
use crate::probe::GpuProbe;

/// A GPU as the fake presents it.
#[derive(Debug, Clone)]
pub struct FakeGpu {
    /// Identity.
    pub inventory: GpuInventory,
    /// Samples served in order; the last one repeats. Empty: `NotSupported`.
    pub samples: VecDeque<GpuSample>,
    /// Health readings.
    pub health: HealthSnapshot,
    /// Attestation report (request || response) and certificate-chain bytes, as the driver
    /// would return them.
    pub evidence: Option<(Vec<u8>, Vec<u8>)>,
    /// Accounting records by pid.
    pub accounting: BTreeMap<u32, ProcessAccounting>,
    /// Every per-GPU call fails with `GpuLost`.
    pub lost: bool,
}

impl FakeGpu {
    /// A GPU with the given index and UUID and H100-like identity, no samples or evidence.
    pub fn new(index: u32, uuid: impl Into<String>) -> Self {
        Self {
            inventory: GpuInventory {
                index,
                uuid: uuid.into(),
                name: "NVIDIA H100 80GB HBM3".into(),
                serial: None,
                pci_bus_id: format!("00000000:{:02X}:00.0", index.saturating_add(0x18)),
                minor_number: Some(index),
                memory_total_bytes: 85_520_809_984,
                vbios_version: Some("96.00.9F.00.01".into()),
                architecture: Some("Hopper".into()),
                mig_mode: None,
                board_part_number: None,
                cc_memory: None,
            },
            samples: VecDeque::new(),
            health: HealthSnapshot::default(),
            evidence: None,
            accounting: BTreeMap::new(),
            lost: false,
        }
    }
}

#[derive(Debug)]
struct State {
    driver: bool,
    system: SystemInfo,
    cc: Option<CcState>,
    gpus: Vec<FakeGpu>,
    ready_writes: Vec<bool>,
}

/// The fake probe.
#[derive(Debug)]
pub struct FakeProbe {
    state: Mutex<State>,
}

impl FakeProbe {
    /// A driver with version `driver_version` and no GPUs.
    pub fn new(driver_version: impl Into<String>) -> Self {
        Self {
            state: Mutex::new(State {
                driver: true,
                system: SystemInfo {
                    driver_version: driver_version.into(),
                    nvml_version: None,
                    cuda_driver_version: None,
                },
                cc: None,
                gpus: Vec::new(),
                ready_writes: Vec::new(),
            }),
        }
    }

    /// A machine without the driver: every call fails with `DriverNotLoaded`.
    pub fn without_driver() -> Self {
        let probe = Self::new("");
        probe.lock().driver = false;
        probe
    }

    /// Adds a GPU (its `inventory.index` should be its position).
    pub fn with_gpu(self, gpu: FakeGpu) -> Self {
        self.lock().gpus.push(gpu);
        self
    }

    /// Sets the CC state (`None`: CC calls are not supported).
    pub fn with_cc(self, cc: Option<CcState>) -> Self {
        self.lock().cc = cc;
        self
    }

    /// Changes GPU `index` in place (samples, health, loss...).
    pub fn update_gpu(&self, index: u32, change: impl FnOnce(&mut FakeGpu)) {
        if let Some(gpu) = self
            .lock()
            .gpus
            .iter_mut()
            .find(|g| g.inventory.index == index)
        {
            change(gpu);
        }
    }

    /// Changes the CC state in place.
    pub fn update_cc(&self, change: impl FnOnce(&mut Option<CcState>)) {
        change(&mut self.lock().cc);
    }

    /// Every value passed to [`GpuProbe::set_ready_state`], in order.
    pub fn ready_writes(&self) -> Vec<bool> {
        self.lock().ready_writes.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_driver<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        let mut state = self.lock();
        if !state.driver {
            return Err(GpuError::DriverNotLoaded {
                detail: "libnvidia-ml.so.1: cannot open shared object file (fake)".into(),
            });
        }
        f(&mut state)
    }

    fn with_gpu_at<T>(
        &self,
        index: u32,
        f: impl FnOnce(&mut FakeGpu) -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        self.with_driver(|state| {
            let count = u32::try_from(state.gpus.len()).unwrap_or(u32::MAX);
            let gpu = state
                .gpus
                .iter_mut()
                .find(|g| g.inventory.index == index)
                .ok_or(GpuError::NoSuchGpu { index, count })?;
            if gpu.lost {
                return Err(GpuError::GpuLost { index });
            }
            f(gpu)
        })
    }
}

impl GpuProbe for FakeProbe {
    fn system_info(&self) -> Result<SystemInfo, GpuError> {
        self.with_driver(|s| Ok(s.system.clone()))
    }

    fn gpu_count(&self) -> Result<u32, GpuError> {
        self.with_driver(|s| Ok(u32::try_from(s.gpus.len()).unwrap_or(u32::MAX)))
    }

    fn gpu_inventory(&self, index: u32) -> Result<GpuInventory, GpuError> {
        self.with_gpu_at(index, |g| Ok(g.inventory.clone()))
    }

    fn cc_state(&self) -> Result<CcState, GpuError> {
        self.with_driver(|s| {
            s.cc.clone().ok_or(GpuError::NotSupported {
                call: "nvmlSystemGetConfComputeSettings",
            })
        })
    }

    fn set_ready_state(&self, ready: bool) -> Result<(), GpuError> {
        self.with_driver(|s| {
            let cc = s.cc.as_mut().ok_or(GpuError::NotSupported {
                call: "nvmlSystemSetConfComputeGpusReadyState",
            })?;
            cc.gpus_ready = ready;
            s.ready_writes.push(ready);
            Ok(())
        })
    }

    fn attestation_evidence(&self, index: u32, nonce: &Nonce) -> Result<GpuEvidence, GpuError> {
        self.with_gpu_at(index, |g| {
            let (report, chain) = g.evidence.clone().ok_or(GpuError::NotSupported {
                call: "nvmlDeviceGetConfComputeGpuAttestationReport",
            })?;
            let uuid = g.inventory.uuid.clone();
            GpuEvidence::from_driver(uuid.clone(), *nonce, report, &chain)
                .map_err(|source| GpuError::Evidence { uuid, source })
        })
    }

    fn sample(&self, index: u32) -> Result<GpuSample, GpuError> {
        self.with_gpu_at(index, |g| {
            let sample = if g.samples.len() > 1 {
                g.samples.pop_front()
            } else {
                g.samples.front().cloned()
            };
            sample.ok_or(GpuError::NotSupported {
                call: "nvmlDeviceGetUtilizationRates",
            })
        })
    }

    fn health(&self, index: u32) -> Result<HealthSnapshot, GpuError> {
        self.with_gpu_at(index, |g| Ok(g.health.clone()))
    }

    fn process_accounting(
        &self,
        index: u32,
        pid: u32,
    ) -> Result<Option<ProcessAccounting>, GpuError> {
        self.with_gpu_at(index, |g| Ok(g.accounting.get(&pid).copied()))
    }
}
