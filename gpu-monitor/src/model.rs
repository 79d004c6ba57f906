//! What a [`GpuProbe`](crate::GpuProbe) reports: plain data, serialisable, driver-independent.
//!
//! Fields a driver or GPU may not offer are `Option`s: `None` means "not supported here", never
//! zero.

use serde::{Deserialize, Serialize};

/// Driver-wide facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Kernel driver version, e.g. `550.90.07`.
    pub driver_version: String,
    /// NVML library version.
    pub nvml_version: Option<String>,
    /// Highest CUDA version the driver supports, e.g. `12.4`.
    pub cuda_driver_version: Option<String>,
}

/// One GPU's identity and fixed properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInventory {
    /// NVML index (enumeration order; not stable across reboots: use `uuid`).
    pub index: u32,
    /// `GPU-xxxxxxxx-xxxx-...`, stable.
    pub uuid: String,
    /// Product name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Board serial number.
    pub serial: Option<String>,
    /// PCI bus id, `domain:bus:device.function`, e.g. `00000000:3B:00.0`.
    pub pci_bus_id: String,
    /// Minor number: the device node is `/dev/nvidia<minor>`.
    pub minor_number: Option<u32>,
    /// Installed framebuffer memory.
    pub memory_total_bytes: u64,
    /// VBIOS version, e.g. `96.00.9F.00.01`.
    pub vbios_version: Option<String>,
    /// Architecture name, e.g. `Hopper`.
    pub architecture: Option<String>,
    /// Multi-Instance GPU mode.
    pub mig_mode: Option<MigMode>,
    /// Board part number.
    pub board_part_number: Option<String>,
    /// Confidential-computing memory split (CC-capable GPUs only).
    pub cc_memory: Option<CcMemory>,
}

/// MIG mode, current and after the next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigMode {
    /// Enabled now.
    pub current: bool,
    /// Enabled after the next GPU reset.
    pub pending: bool,
}

/// How a CC-capable GPU's memory is split between protected (CPR) and unprotected regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcMemory {
    /// Protected memory size.
    pub protected_bytes: u64,
    /// Unprotected memory size.
    pub unprotected_bytes: u64,
    /// Protected memory in use (when the driver reports it).
    pub protected_used_bytes: Option<u64>,
}

/// The system's confidential-computing state as NVML reports it (it is driver-wide: all GPUs
/// share one CC mode and one ready state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcState {
    /// CC feature on.
    pub cc_enabled: bool,
    /// Where the GPUs run: production, simulation, or not available.
    pub environment: CcEnvironment,
    /// Developer-tools mode (CC with debugging: not confidential).
    pub dev_tools_mode: bool,
    /// Multi-GPU mode (protected PCIe / NVLink encryption); `None` on drivers without
    /// `nvmlSystemGetConfComputeSettings`.
    pub multi_gpu_mode: Option<MultiGpuMode>,
    /// The GPUs-ready state: the GPUs accept work (set after attestation succeeded).
    pub gpus_ready: bool,
    /// What the CPU side offers.
    pub cpu_capability: Option<CcCpuCapability>,
    /// Whether the GPUs are CC capable.
    pub gpus_cc_capable: Option<bool>,
}

impl CcState {
    /// CC on, in production, without developer tools, and the GPUs accept work.
    pub fn is_cc_ready(&self) -> bool {
        self.cc_enabled
            && self.environment == CcEnvironment::Production
            && !self.dev_tools_mode
            && self.gpus_ready
    }

    /// Why GPU evidence collected in this state would not come from confidential GPUs, if it
    /// would not: CC off, not in production, or in developer-tools mode (CC with debugging,
    /// which the signed GPU report does not show). `None`: CC on, in production, no developer
    /// tools (the ready state is set only after attestation, so it is not required here).
    pub fn not_confidential(&self) -> Option<&'static str> {
        if !self.cc_enabled {
            Some("confidential computing is off")
        } else if self.environment != CcEnvironment::Production {
            Some("the confidential-computing environment is not production")
        } else if self.dev_tools_mode {
            Some("the GPUs are in developer-tools mode (not confidential)")
        } else {
            None
        }
    }

    /// Multi-GPU protected PCIe is on.
    pub fn protected_pcie(&self) -> bool {
        self.multi_gpu_mode == Some(MultiGpuMode::ProtectedPcie)
    }
}

/// NVML's CC environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcEnvironment {
    /// Not available.
    Unavailable,
    /// Simulated (not confidential).
    Simulated,
    /// Production.
    Production,
    /// A value newer than this crate.
    Other(u32),
}

/// NVML's multi-GPU CC mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiGpuMode {
    /// Single-GPU CC.
    None,
    /// Protected PCIe (PPCIe): several GPUs and NVSwitches in one trust domain.
    ProtectedPcie,
    /// NVLink encryption.
    Nvle,
    /// A value newer than this crate.
    Other(u32),
}

/// The CPU TEE NVML detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcCpuCapability {
    /// No CPU TEE.
    None,
    /// AMD SEV.
    AmdSev,
    /// Intel TDX.
    IntelTdx,
    /// AMD SEV-SNP.
    AmdSevSnp,
    /// AMD SEV-SNP with vTOM.
    AmdSnpVtom,
    /// A value newer than this crate.
    Other(u32),
}

/// One reading of the quantities metering needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSample {
    /// Percent of the last sample period (1/6 s to 1 s, driver-chosen) during which a kernel ran.
    pub gpu_utilization_pct: Option<u32>,
    /// Percent of that period during which device memory was read or written.
    pub memory_utilization_pct: Option<u32>,
    /// Framebuffer memory allocated.
    pub memory_used_bytes: Option<u64>,
    /// Framebuffer memory installed.
    pub memory_total_bytes: Option<u64>,
    /// Energy since the driver was loaded, millijoules (Volta and newer).
    pub total_energy_mj: Option<u64>,
    /// Power draw, milliwatts.
    pub power_mw: Option<u32>,
    /// Compute processes on the GPU.
    pub processes: Option<Vec<ProcessSample>>,
}

/// A compute process seen on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Process id (in the driver's PID namespace).
    pub pid: u32,
    /// GPU memory it has allocated, when the driver reports it.
    pub used_memory_bytes: Option<u64>,
}

/// The driver's per-process accounting record (accounting mode must be on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessAccounting {
    /// Percent of the process's lifetime during which a kernel ran.
    pub gpu_utilization_pct: Option<u32>,
    /// Percent of its lifetime during which device memory was read or written.
    pub memory_utilization_pct: Option<u32>,
    /// The most memory it ever had allocated.
    pub max_memory_bytes: Option<u64>,
    /// Time its compute context was active, milliseconds (0 while it still runs).
    pub time_ms: u64,
    /// Still running.
    pub is_running: bool,
}

/// Health readings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// GPU die temperature, °C.
    pub temperature_c: Option<u32>,
    /// The temperature at which the GPU slows itself down, °C.
    pub slowdown_temperature_c: Option<u32>,
    /// Power draw, milliwatts.
    pub power_mw: Option<u32>,
    /// Power management limit, milliwatts.
    pub power_limit_mw: Option<u32>,
    /// ECC currently on.
    pub ecc_enabled: Option<bool>,
    /// Corrected (single-bit) ECC errors since the driver loaded.
    pub ecc_corrected_volatile: Option<u64>,
    /// Uncorrected (double-bit) ECC errors since the driver loaded.
    pub ecc_uncorrected_volatile: Option<u64>,
    /// Uncorrected ECC errors over the GPU's lifetime.
    pub ecc_uncorrected_aggregate: Option<u64>,
    /// Current clock throttle (clock event) reasons.
    pub throttle_reasons: Option<ThrottleReasons>,
    /// Memory pages waiting to be retired at the next reset (pre-Ampere).
    pub retired_pages_pending: Option<bool>,
    /// Row remapping (Ampere and newer).
    pub remapped_rows: Option<RemappedRows>,
    /// PCIe replay counter.
    pub pcie_replay_count: Option<u32>,
}

/// Row-remapping state (Ampere and newer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemappedRows {
    /// Rows remapped after correctable errors.
    pub correctable: u32,
    /// Rows remapped after uncorrectable errors.
    pub uncorrectable: u32,
    /// A remapping waits for the next GPU reset.
    pub pending: bool,
    /// A remapping failed: the GPU needs service.
    pub failure: bool,
}

/// NVML clock throttle (clock event) reasons, a bit mask whose values are NVML's ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ThrottleReasons(pub u64);

impl ThrottleReasons {
    /// Nothing slows the clocks.
    pub const NONE: Self = Self(0);
    /// Idle.
    pub const GPU_IDLE: Self = Self(0x1);
    /// Application clocks setting.
    pub const APPLICATIONS_CLOCKS_SETTING: Self = Self(0x2);
    /// Software power cap.
    pub const SW_POWER_CAP: Self = Self(0x4);
    /// Hardware slowdown (thermal or power brake, signalled by the board).
    pub const HW_SLOWDOWN: Self = Self(0x8);
    /// Sync boost.
    pub const SYNC_BOOST: Self = Self(0x10);
    /// Software thermal slowdown.
    pub const SW_THERMAL_SLOWDOWN: Self = Self(0x20);
    /// Hardware thermal slowdown.
    pub const HW_THERMAL_SLOWDOWN: Self = Self(0x40);
    /// Hardware power brake.
    pub const HW_POWER_BRAKE_SLOWDOWN: Self = Self(0x80);
    /// Display clock setting.
    pub const DISPLAY_CLOCK_SETTING: Self = Self(0x100);

    const NAMES: [(Self, &'static str); 9] = [
        (Self::GPU_IDLE, "gpu_idle"),
        (
            Self::APPLICATIONS_CLOCKS_SETTING,
            "applications_clocks_setting",
        ),
        (Self::SW_POWER_CAP, "sw_power_cap"),
        (Self::HW_SLOWDOWN, "hw_slowdown"),
        (Self::SYNC_BOOST, "sync_boost"),
        (Self::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (Self::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (Self::HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake_slowdown"),
        (Self::DISPLAY_CLOCK_SETTING, "display_clock_setting"),
    ];

    /// All bits of `other` are set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The bits set in either.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the bits set (unknown bits as `0x...`).
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        let mut known = 0u64;
        for (flag, name) in Self::NAMES {
            known |= flag.0;
            if self.contains(flag) {
                names.push(name.to_owned());
            }
        }
        let unknown = self.0 & !known;
        if unknown != 0 {
            names.push(format!("{unknown:#x}"));
        }
        names
    }
}
