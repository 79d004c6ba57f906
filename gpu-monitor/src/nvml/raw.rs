//! Raw NVML calls that nvml-wrapper 0.13 has no (usable) safe method for.
//!
//! * CC settings, state, capabilities and the GPUs-ready state are system-wide in NVML, but the
//!   wrapper only offers them as `Device` methods, and its capabilities call returns `Unknown`
//!   for the SEV-SNP CPU capability values (3 and 4) that every SNP guest reports.
//! * CC memory sizes, protected memory usage and remapped rows have no wrapper at all.
//!
//! Every symbol is taken from the `Result` fields of [`Nvml::lib`], never through the bindings'
//! `unsafe fn` forms, which panic when the driver lacks the symbol: a driver older than the call
//! gives [`GpuError::SymbolMissing`] instead.
#![allow(unsafe_code)]

use core::mem::size_of;

use nvml_wrapper::error::nvml_try;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlConfComputeMemSizeInfo_t, nvmlConfComputeSystemCaps_t, nvmlConfComputeSystemState_t,
    nvmlMemory_t, nvmlSystemConfComputeSettings_t, nvmlSystemConfComputeSettings_v1_t,
};

use super::map_error;
use crate::error::GpuError;

/// `NVML_STRUCT_VERSION(SystemConfComputeSettings, 1)`: the struct size with the version in the
/// top byte, as `nvml.h` defines it.
const SETTINGS_V1: u32 = 0x0100_0000 | size_of::<nvmlSystemConfComputeSettings_v1_t>() as u32;

/// `Ok(symbol)` or `SymbolMissing`.
fn symbol<'a, T, E>(name: &'static str, sym: &'a Result<T, E>) -> Result<&'a T, GpuError> {
    sym.as_ref()
        .map_err(|_| GpuError::SymbolMissing { symbol: name })
}

/// The CC settings (environment, feature, developer tools, multi-GPU mode).
pub(super) fn cc_settings(nvml: &Nvml) -> Result<nvmlSystemConfComputeSettings_t, GpuError> {
    const CALL: &str = "nvmlSystemGetConfComputeSettings";
    let f = symbol(CALL, &nvml.lib().nvmlSystemGetConfComputeSettings)?;
    let mut settings = nvmlSystemConfComputeSettings_t {
        version: SETTINGS_V1,
        environment: 0,
        ccFeature: 0,
        devToolsMode: 0,
        multiGpuMode: 0,
    };
    // SAFETY: `f` is the driver's nvmlSystemGetConfComputeSettings; it writes into the v1 struct
    // it is given, which is versioned as the header requires and outlives the call.
    let rc = unsafe { f(&mut settings) };
    nvml_try(rc).map_err(|e| map_error(CALL, None, e))?;
    Ok(settings)
}

/// The CC state (drivers from before the settings call).
pub(super) fn cc_system_state(nvml: &Nvml) -> Result<nvmlConfComputeSystemState_t, GpuError> {
    const CALL: &str = "nvmlSystemGetConfComputeState";
    let f = symbol(CALL, &nvml.lib().nvmlSystemGetConfComputeState)?;
    let mut state = nvmlConfComputeSystemState_t {
        environment: 0,
        ccFeature: 0,
        devToolsMode: 0,
    };
    // SAFETY: `f` is the driver's nvmlSystemGetConfComputeState, given a valid pointer to a
    // struct of the layout the header declares.
    let rc = unsafe { f(&mut state) };
    nvml_try(rc).map_err(|e| map_error(CALL, None, e))?;
    Ok(state)
}

/// The CPU and GPU CC capabilities.
pub(super) fn cc_capabilities(nvml: &Nvml) -> Result<nvmlConfComputeSystemCaps_t, GpuError> {
    const CALL: &str = "nvmlSystemGetConfComputeCapabilities";
    let f = symbol(CALL, &nvml.lib().nvmlSystemGetConfComputeCapabilities)?;
    let mut caps = nvmlConfComputeSystemCaps_t {
        cpuCaps: 0,
        gpusCaps: 0,
    };
    // SAFETY: `f` is the driver's nvmlSystemGetConfComputeCapabilities, given a valid pointer.
    let rc = unsafe { f(&mut caps) };
    nvml_try(rc).map_err(|e| map_error(CALL, None, e))?;
    Ok(caps)
}

/// The GPUs-ready state (`NVML_CC_ACCEPTING_CLIENT_REQUESTS_*`).
pub(super) fn gpus_ready_state(nvml: &Nvml) -> Result<u32, GpuError> {
    const CALL: &str = "nvmlSystemGetConfComputeGpusReadyState";
    let f = symbol(CALL, &nvml.lib().nvmlSystemGetConfComputeGpusReadyState)?;
    let mut ready: u32 = 0;
    // SAFETY: `f` is the driver's nvmlSystemGetConfComputeGpusReadyState, given a valid pointer
    // to an unsigned int.
    let rc = unsafe { f(&mut ready) };
    nvml_try(rc).map_err(|e| map_error(CALL, None, e))?;
    Ok(ready)
}

/// Sets the GPUs-ready state.
pub(super) fn set_gpus_ready_state(nvml: &Nvml, ready: u32) -> Result<(), GpuError> {
    const CALL: &str = "nvmlSystemSetConfComputeGpusReadyState";
    let f = symbol(CALL, &nvml.lib().nvmlSystemSetConfComputeGpusReadyState)?;
    // SAFETY: `f` is the driver's nvmlSystemSetConfComputeGpusReadyState; it takes a value.
    let rc = unsafe { f(ready) };
    nvml_try(rc).map_err(|e| map_error(CALL, None, e))
}

/// Protected and unprotected memory sizes, KiB.
pub(super) fn cc_mem_size(
    device: &Device<'_>,
    index: u32,
) -> Result<nvmlConfComputeMemSizeInfo_t, GpuError> {
    const CALL: &str = "nvmlDeviceGetConfComputeMemSizeInfo";
    let f = symbol(
        CALL,
        &device.nvml().lib().nvmlDeviceGetConfComputeMemSizeInfo,
    )?;
    let mut info = nvmlConfComputeMemSizeInfo_t {
        protectedMemSizeKib: 0,
        unprotectedMemSizeKib: 0,
    };
    // SAFETY: the handle comes from a live `Device` of this `Nvml`; `f` is the driver's
    // nvmlDeviceGetConfComputeMemSizeInfo, given a valid pointer.
    let rc = unsafe { f(device.handle(), &mut info) };
    nvml_try(rc).map_err(|e| map_error(CALL, Some(index), e))?;
    Ok(info)
}

/// Protected memory usage (total, free, used bytes).
pub(super) fn cc_protected_memory(
    device: &Device<'_>,
    index: u32,
) -> Result<nvmlMemory_t, GpuError> {
    const CALL: &str = "nvmlDeviceGetConfComputeProtectedMemoryUsage";
    let f = symbol(
        CALL,
        &device
            .nvml()
            .lib()
            .nvmlDeviceGetConfComputeProtectedMemoryUsage,
    )?;
    let mut memory = nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: as above; the v1 memory struct has no version field.
    let rc = unsafe { f(device.handle(), &mut memory) };
    nvml_try(rc).map_err(|e| map_error(CALL, Some(index), e))?;
    Ok(memory)
}

/// Remapped rows: (correctable, uncorrectable, pending, failure).
pub(super) fn remapped_rows(
    device: &Device<'_>,
    index: u32,
) -> Result<(u32, u32, bool, bool), GpuError> {
    const CALL: &str = "nvmlDeviceGetRemappedRows";
    let f = symbol(CALL, &device.nvml().lib().nvmlDeviceGetRemappedRows)?;
    let (mut corrected, mut uncorrected, mut pending, mut failure) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: as above; four valid pointers to unsigned ints.
    let rc = unsafe {
        f(
            device.handle(),
            &mut corrected,
            &mut uncorrected,
            &mut pending,
            &mut failure,
        )
    };
    nvml_try(rc).map_err(|e| map_error(CALL, Some(index), e))?;
    Ok((corrected, uncorrected, pending != 0, failure != 0))
}
