//! The one trait between Sigil and the GPU driver.

use serde::{Deserialize, Serialize};

use crate::error::GpuError;
use crate::evidence::{GpuEvidence, Nonce};
use crate::model::{
    CcState, GpuInventory, GpuSample, HealthSnapshot, ProcessAccounting, SystemInfo,
};

/// Access to the GPUs of this machine.
///
/// [`NvmlProbe`](crate::NvmlProbe) talks to the NVIDIA driver; `FakeProbe` (feature `fake`)
/// replays scripted readings and real evidence for tests. Implementations are thread-safe so the
/// agent can hold one as `Arc<dyn GpuProbe>` and meter several jobs at once.
///
/// GPUs are addressed by NVML index; [`GpuInventory::uuid`] is the stable name.
pub trait GpuProbe: Send + Sync {
    /// Driver-wide facts.
    fn system_info(&self) -> Result<SystemInfo, GpuError>;

    /// How many GPUs the driver sees.
    fn gpu_count(&self) -> Result<u32, GpuError>;

    /// One GPU's identity and fixed properties.
    fn gpu_inventory(&self, index: u32) -> Result<GpuInventory, GpuError>;

    /// The system's confidential-computing state (mode, environment, ready state).
    fn cc_state(&self) -> Result<CcState, GpuError>;

    /// Sets the GPUs-ready state: `true` lets the GPUs accept work (done by the provider's boot
    /// flow once attestation succeeded), `false` stops new work. Needs root.
    fn set_ready_state(&self, ready: bool) -> Result<(), GpuError>;

    /// The GPU's attestation report for `nonce` and its certificate chain.
    fn attestation_evidence(&self, index: u32, nonce: &Nonce) -> Result<GpuEvidence, GpuError>;

    /// Utilisation, memory, energy, power and processes now.
    fn sample(&self, index: u32) -> Result<GpuSample, GpuError>;

    /// Temperature, power, ECC, throttling and memory-repair state now.
    fn health(&self, index: u32) -> Result<HealthSnapshot, GpuError>;

    /// The driver's accounting record for `pid`, `None` when accounting is off or the driver
    /// has no record of it.
    fn process_accounting(
        &self,
        index: u32,
        pid: u32,
    ) -> Result<Option<ProcessAccounting>, GpuError>;

    /// Every GPU's inventory.
    fn gpus(&self) -> Result<Vec<GpuInventory>, GpuError> {
        let count = self.gpu_count()?;
        (0..count).map(|i| self.gpu_inventory(i)).collect()
    }

    /// System facts, GPUs and CC state together. The CC state is `None` where the driver or
    /// GPUs do not support confidential computing.
    fn inventory(&self) -> Result<Inventory, GpuError> {
        let system = self.system_info()?;
        let gpus = self.gpus()?;
        let cc = match self.cc_state() {
            Ok(cc) => Some(cc),
            Err(GpuError::NotSupported { .. } | GpuError::SymbolMissing { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(Inventory { system, gpus, cc })
    }

    /// Every GPU's attestation evidence for one nonce, in index order (what the agent embeds
    /// for a multi-GPU machine).
    fn all_evidence(&self, nonce: &Nonce) -> Result<Vec<GpuEvidence>, GpuError> {
        let count = self.gpu_count()?;
        (0..count)
            .map(|i| self.attestation_evidence(i, nonce))
            .collect()
    }

    /// The index of the GPU with `uuid`.
    fn index_of(&self, uuid: &str) -> Result<u32, GpuError> {
        let count = self.gpu_count()?;
        for index in 0..count {
            if self.gpu_inventory(index)?.uuid == uuid {
                return Ok(index);
            }
        }
        Err(GpuError::UnknownUuid {
            uuid: uuid.to_owned(),
        })
    }
}

/// Everything `sigil-gpu inventory` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Driver facts.
    pub system: SystemInfo,
    /// The GPUs.
    pub gpus: Vec<GpuInventory>,
    /// CC state, where supported.
    pub cc: Option<CcState>,
}
