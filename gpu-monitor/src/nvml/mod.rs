//! [`GpuProbe`] over NVML (nvml-wrapper).
//!
//! The driver library is loaded at run time: without it [`NvmlProbe::init`] returns
//! [`GpuError::DriverNotLoaded`], so one binary serves GPU and GPU-less machines.

mod raw;

use std::ffi::OsStr;

use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use crate::error::GpuError;
use crate::evidence::{GpuEvidence, Nonce};
use crate::model::{
    CcCpuCapability, CcEnvironment, CcMemory, CcState, GpuInventory, GpuSample, HealthSnapshot,
    MigMode, MultiGpuMode, ProcessAccounting, ProcessSample, RemappedRows, SystemInfo,
    ThrottleReasons,
};
use crate::probe::GpuProbe;

/// The NVML-backed probe.
pub struct NvmlProbe {
    nvml: Nvml,
}

impl core::fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NvmlProbe").finish_non_exhaustive()
    }
}

impl NvmlProbe {
    /// Loads `libnvidia-ml.so.1` and initialises NVML.
    pub fn init() -> Result<Self, GpuError> {
        Nvml::init()
            .map(|nvml| Self { nvml })
            .map_err(|e| map_error("nvmlInit_v2", None, e))
    }

    /// Initialises NVML from a library at `path` (for drivers installed off the loader path).
    pub fn init_with_library(path: &OsStr) -> Result<Self, GpuError> {
        Nvml::builder()
            .lib_path(path)
            .init()
            .map(|nvml| Self { nvml })
            .map_err(|e| map_error("nvmlInit_v2", None, e))
    }

    /// The underlying handle, for calls this crate does not wrap.
    pub fn nvml(&self) -> &Nvml {
        &self.nvml
    }

    fn device(&self, index: u32) -> Result<Device<'_>, GpuError> {
        match self.nvml.device_by_index(index) {
            Ok(device) => Ok(device),
            Err(NvmlError::InvalidArg) => Err(GpuError::NoSuchGpu {
                index,
                count: self.gpu_count()?,
            }),
            Err(e) => Err(map_error("nvmlDeviceGetHandleByIndex_v2", Some(index), e)),
        }
    }
}

/// Maps an NVML error to ours, naming the call.
pub(crate) fn map_error(call: &'static str, index: Option<u32>, error: NvmlError) -> GpuError {
    match error {
        NvmlError::LibloadingError(e) => GpuError::DriverNotLoaded {
            detail: e.to_string(),
        },
        NvmlError::DriverNotLoaded => GpuError::DriverNotLoaded {
            detail: "the NVIDIA kernel driver is not running".into(),
        },
        NvmlError::LibraryNotFound => GpuError::DriverNotLoaded {
            detail: "NVML shared library not found".into(),
        },
        NvmlError::NotSupported => GpuError::NotSupported { call },
        NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound => {
            GpuError::SymbolMissing { symbol: call }
        }
        NvmlError::NoPermission => GpuError::NoPermission { call },
        NvmlError::GpuLost => match index {
            Some(index) => GpuError::GpuLost { index },
            None => GpuError::Driver {
                call,
                detail: "a GPU is lost".into(),
            },
        },
        other => GpuError::Driver {
            call,
            detail: other.to_string(),
        },
    }
}

/// `Ok(Some)`, or `Ok(None)` where the GPU or driver does not offer the reading.
fn optional<T>(
    call: &'static str,
    index: u32,
    result: Result<T, NvmlError>,
) -> Result<Option<T>, GpuError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) => absent_as_none(Err(map_error(call, Some(index), e))),
    }
}

/// Turns "not offered here" errors into `None`.
fn absent_as_none<T>(result: Result<T, GpuError>) -> Result<Option<T>, GpuError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(
            GpuError::NotSupported { .. }
            | GpuError::SymbolMissing { .. }
            | GpuError::NoPermission { .. },
        ) => Ok(None),
        Err(e) => Err(e),
    }
}

fn required<T>(
    call: &'static str,
    index: u32,
    result: Result<T, NvmlError>,
) -> Result<T, GpuError> {
    result.map_err(|e| map_error(call, Some(index), e))
}

const KIB: u64 = 1024;

fn environment(value: u32) -> CcEnvironment {
    match value {
        0 => CcEnvironment::Unavailable,
        1 => CcEnvironment::Simulated,
        2 => CcEnvironment::Production,
        other => CcEnvironment::Other(other),
    }
}

fn multi_gpu_mode(value: u32) -> MultiGpuMode {
    match value {
        0 => MultiGpuMode::None,
        1 => MultiGpuMode::ProtectedPcie,
        2 => MultiGpuMode::Nvle,
        other => MultiGpuMode::Other(other),
    }
}

fn cpu_capability(value: u32) -> CcCpuCapability {
    match value {
        0 => CcCpuCapability::None,
        1 => CcCpuCapability::AmdSev,
        2 => CcCpuCapability::IntelTdx,
        3 => CcCpuCapability::AmdSevSnp,
        4 => CcCpuCapability::AmdSnpVtom,
        other => CcCpuCapability::Other(other),
    }
}

/// `12040` -> `12.4`.
fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

impl GpuProbe for NvmlProbe {
    fn system_info(&self) -> Result<SystemInfo, GpuError> {
        let driver_version = self
            .nvml
            .sys_driver_version()
            .map_err(|e| map_error("nvmlSystemGetDriverVersion", None, e))?;
        Ok(SystemInfo {
            driver_version,
            nvml_version: self.nvml.sys_nvml_version().ok(),
            cuda_driver_version: self.nvml.sys_cuda_driver_version().ok().map(cuda_version),
        })
    }

    fn gpu_count(&self) -> Result<u32, GpuError> {
        self.nvml
            .device_count()
            .map_err(|e| map_error("nvmlDeviceGetCount_v2", None, e))
    }

    fn gpu_inventory(&self, index: u32) -> Result<GpuInventory, GpuError> {
        let d = self.device(index)?;
        let cc_memory = match absent_as_none(raw::cc_mem_size(&d, index))? {
            Some(sizes) => Some(CcMemory {
                protected_bytes: sizes.protectedMemSizeKib.saturating_mul(KIB),
                unprotected_bytes: sizes.unprotectedMemSizeKib.saturating_mul(KIB),
                protected_used_bytes: absent_as_none(raw::cc_protected_memory(&d, index))?
                    .map(|m| m.used),
            }),
            None => None,
        };
        Ok(GpuInventory {
            index,
            uuid: required("nvmlDeviceGetUUID", index, d.uuid())?,
            name: required("nvmlDeviceGetName", index, d.name())?,
            serial: optional("nvmlDeviceGetSerial", index, d.serial())?,
            pci_bus_id: required("nvmlDeviceGetPciInfo", index, d.pci_info())?.bus_id,
            minor_number: optional("nvmlDeviceGetMinorNumber", index, d.minor_number())?,
            memory_total_bytes: required("nvmlDeviceGetMemoryInfo_v2", index, d.memory_info())?
                .total,
            vbios_version: optional("nvmlDeviceGetVbiosVersion", index, d.vbios_version())?,
            architecture: optional("nvmlDeviceGetArchitecture", index, d.architecture())?
                .map(|a| a.to_string()),
            mig_mode: optional("nvmlDeviceGetMigMode", index, d.mig_mode())?.map(|m| MigMode {
                current: m.current == 1,
                pending: m.pending == 1,
            }),
            board_part_number: optional(
                "nvmlDeviceGetBoardPartNumber",
                index,
                d.board_part_number(),
            )?,
            cc_memory,
        })
    }

    fn cc_state(&self) -> Result<CcState, GpuError> {
        // The settings call (r550+) adds the multi-GPU mode; older CC drivers only have the
        // state call.
        let (cc_enabled, env, dev_tools_mode, multi) = match raw::cc_settings(&self.nvml) {
            Ok(s) => (
                s.ccFeature == 1,
                s.environment,
                s.devToolsMode == 1,
                Some(multi_gpu_mode(s.multiGpuMode)),
            ),
            Err(GpuError::SymbolMissing { .. } | GpuError::NotSupported { .. }) => {
                let s = raw::cc_system_state(&self.nvml)?;
                (s.ccFeature == 1, s.environment, s.devToolsMode == 1, None)
            }
            Err(e) => return Err(e),
        };
        let gpus_ready = absent_as_none(raw::gpus_ready_state(&self.nvml))?.unwrap_or(0) == 1;
        let caps = absent_as_none(raw::cc_capabilities(&self.nvml))?;
        Ok(CcState {
            cc_enabled,
            environment: environment(env),
            dev_tools_mode,
            multi_gpu_mode: multi,
            gpus_ready,
            cpu_capability: caps.map(|c| cpu_capability(c.cpuCaps)),
            gpus_cc_capable: caps.map(|c| c.gpusCaps == 1),
        })
    }

    fn set_ready_state(&self, ready: bool) -> Result<(), GpuError> {
        raw::set_gpus_ready_state(&self.nvml, u32::from(ready))
    }

    fn attestation_evidence(&self, index: u32, nonce: &Nonce) -> Result<GpuEvidence, GpuError> {
        let d = self.device(index)?;
        let uuid = required("nvmlDeviceGetUUID", index, d.uuid())?;
        let report = required(
            "nvmlDeviceGetConfComputeGpuAttestationReport",
            index,
            d.confidential_compute_gpu_attestation_report(*nonce.as_bytes()),
        )?;
        let certificate = required(
            "nvmlDeviceGetConfComputeGpuCertificate",
            index,
            d.confidential_compute_gpu_certificate(),
        )?;
        GpuEvidence::from_driver(
            uuid.clone(),
            *nonce,
            report.attestation_report,
            &certificate.attestation_cert_chain,
        )
        .map_err(|source| GpuError::Evidence { uuid, source })
    }

    fn sample(&self, index: u32) -> Result<GpuSample, GpuError> {
        let d = self.device(index)?;
        let utilization = optional(
            "nvmlDeviceGetUtilizationRates",
            index,
            d.utilization_rates(),
        )?;
        let memory = optional("nvmlDeviceGetMemoryInfo_v2", index, d.memory_info())?;
        let processes = optional(
            "nvmlDeviceGetComputeRunningProcesses",
            index,
            d.running_compute_processes(),
        )?
        .map(|list| {
            list.into_iter()
                .map(|p| ProcessSample {
                    pid: p.pid,
                    used_memory_bytes: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect()
        });
        Ok(GpuSample {
            gpu_utilization_pct: utilization.as_ref().map(|u| u.gpu),
            memory_utilization_pct: utilization.as_ref().map(|u| u.memory),
            memory_used_bytes: memory.as_ref().map(|m| m.used),
            memory_total_bytes: memory.as_ref().map(|m| m.total),
            total_energy_mj: optional(
                "nvmlDeviceGetTotalEnergyConsumption",
                index,
                d.total_energy_consumption(),
            )?,
            power_mw: optional("nvmlDeviceGetPowerUsage", index, d.power_usage())?,
            processes,
        })
    }

    fn health(&self, index: u32) -> Result<HealthSnapshot, GpuError> {
        let d = self.device(index)?;
        const ECC: &str = "nvmlDeviceGetTotalEccErrors";
        Ok(HealthSnapshot {
            temperature_c: optional(
                "nvmlDeviceGetTemperature",
                index,
                d.temperature(TemperatureSensor::Gpu),
            )?,
            slowdown_temperature_c: optional(
                "nvmlDeviceGetTemperatureThreshold",
                index,
                d.temperature_threshold(TemperatureThreshold::Slowdown),
            )?,
            power_mw: optional("nvmlDeviceGetPowerUsage", index, d.power_usage())?,
            power_limit_mw: optional(
                "nvmlDeviceGetEnforcedPowerLimit",
                index,
                d.enforced_power_limit(),
            )?,
            ecc_enabled: optional("nvmlDeviceGetEccMode", index, d.is_ecc_enabled())?
                .map(|m| m.currently_enabled),
            ecc_corrected_volatile: optional(
                ECC,
                index,
                d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile),
            )?,
            ecc_uncorrected_volatile: optional(
                ECC,
                index,
                d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
            )?,
            ecc_uncorrected_aggregate: optional(
                ECC,
                index,
                d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate),
            )?,
            throttle_reasons: optional(
                "nvmlDeviceGetCurrentClocksThrottleReasons",
                index,
                d.current_throttle_reasons(),
            )?
            .map(|r| ThrottleReasons(r.bits())),
            retired_pages_pending: optional(
                "nvmlDeviceGetRetiredPagesPendingStatus",
                index,
                d.are_pages_pending_retired(),
            )?,
            remapped_rows: absent_as_none(raw::remapped_rows(&d, index))?.map(
                |(correctable, uncorrectable, pending, failure)| RemappedRows {
                    correctable,
                    uncorrectable,
                    pending,
                    failure,
                },
            ),
            pcie_replay_count: optional(
                "nvmlDeviceGetPcieReplayCounter",
                index,
                d.pcie_replay_counter(),
            )?,
        })
    }

    fn process_accounting(
        &self,
        index: u32,
        pid: u32,
    ) -> Result<Option<ProcessAccounting>, GpuError> {
        let d = self.device(index)?;
        let enabled = optional(
            "nvmlDeviceGetAccountingMode",
            index,
            d.is_accounting_enabled(),
        )?;
        if enabled != Some(true) {
            return Ok(None);
        }
        match d.accounting_stats_for(pid) {
            Ok(s) => Ok(Some(ProcessAccounting {
                gpu_utilization_pct: s.gpu_utilization,
                memory_utilization_pct: s.memory_utilization,
                max_memory_bytes: s.max_memory_usage,
                time_ms: s.time,
                is_running: s.is_running,
            })),
            Err(NvmlError::NotFound) => Ok(None),
            Err(e) => absent_as_none(Err(map_error(
                "nvmlDeviceGetAccountingStats",
                Some(index),
                e,
            )))
            .map(|_: Option<()>| None),
        }
    }
}
