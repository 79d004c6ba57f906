//! `NvmlProbe` against whatever driver this machine has (usually none).

use crate::{GpuError, GpuProbe, Nonce, NvmlProbe};

#[test]
fn missing_library_rejects() {
    let err = NvmlProbe::init_with_library("/nonexistent/libnvidia-ml.so.1".as_ref()).unwrap_err();
    match err {
        GpuError::DriverNotLoaded { detail } => {
            assert!(detail.contains("/nonexistent/"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn init_never_panics_works() {
    // With a driver: a probe; without: the typed error, nothing else.
    match NvmlProbe::init() {
        Ok(probe) => {
            probe.gpu_count().unwrap();
        }
        Err(GpuError::DriverNotLoaded { .. }) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// Exercises every call on a real GPU (`--features hw-tests`, on a machine with the driver).
#[test]
#[cfg_attr(
    not(feature = "hw-tests"),
    ignore = "needs an NVIDIA GPU and driver (feature hw-tests)"
)]
fn real_driver_works() {
    let probe = NvmlProbe::init().unwrap();
    let inventory = probe.inventory().unwrap();
    assert!(!inventory.gpus.is_empty());
    for gpu in &inventory.gpus {
        assert!(gpu.uuid.starts_with("GPU-"), "{gpu:?}");
        let sample = probe.sample(gpu.index).unwrap();
        assert!(sample.memory_total_bytes.is_some());
        probe.health(gpu.index).unwrap();
        if inventory.cc.as_ref().is_some_and(|cc| cc.cc_enabled) {
            let nonce = Nonce::new([0x5a; 32]);
            let evidence = probe.attestation_evidence(gpu.index, &nonce).unwrap();
            assert_eq!(evidence.report_nonce().unwrap(), nonce);
        }
    }
}
