//! The `GpuProbe` contract through `FakeProbe`, with real evidence.

use super::nvgpu_case;
use crate::{
    CcEnvironment, CcState, EvidenceError, FakeGpu, FakeProbe, GpuError, GpuProbe, MultiGpuMode,
    Nonce,
};

pub(crate) fn cc_ready() -> CcState {
    CcState {
        cc_enabled: true,
        environment: CcEnvironment::Production,
        dev_tools_mode: false,
        multi_gpu_mode: Some(MultiGpuMode::None),
        gpus_ready: true,
        cpu_capability: None,
        gpus_cc_capable: Some(true),
    }
}

fn attested_gpu(index: u32, case: &str) -> (FakeGpu, Nonce) {
    let (report, chain, nonce) = nvgpu_case(case);
    let mut gpu = FakeGpu::new(index, format!("GPU-{index:08}-0000-0000-0000-000000000000"));
    gpu.evidence = Some((report, chain));
    (gpu, nonce)
}

#[test]
fn attestation_evidence_works() {
    let (gpu, nonce) = attested_gpu(0, "hopper-trustee-coco-ci");
    let probe = FakeProbe::new("580.95.05")
        .with_gpu(gpu)
        .with_cc(Some(cc_ready()));
    let evidence = probe.attestation_evidence(0, &nonce).unwrap();
    assert_eq!(
        evidence.gpu_uuid,
        "GPU-00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(evidence.nonce, nonce);
    assert_eq!(evidence.certificates_der().unwrap().len(), 5);
    // One trailing byte after the signature (a quirk of this capture) is kept as returned.
    assert_eq!(evidence.report.len(), 4130);
}

#[test]
fn all_evidence_works() {
    // Two GPUs of one HGX capture, asked with the nonce their reports carry.
    let (gpu0, nonce) = attested_gpu(0, "hopper-ppcie-hgx-gpu0");
    let (gpu1, nonce1) = attested_gpu(1, "hopper-ppcie-hgx-gpu1");
    assert_eq!(nonce, nonce1);
    let probe = FakeProbe::new("590.12").with_gpu(gpu0).with_gpu(gpu1);
    let all = probe.all_evidence(&nonce).unwrap();
    assert_eq!(all.len(), 2);
    assert_ne!(all[0].report, all[1].report);
    assert_ne!(all[0].cert_chain_pem, all[1].cert_chain_pem);
    // A GPU without evidence fails the whole set: partial evidence would be mistaken for all.
    let probe = FakeProbe::new("590.12")
        .with_gpu(attested_gpu(0, "hopper-ppcie-hgx-gpu0").0)
        .with_gpu(FakeGpu::new(1, "GPU-plain"));
    assert!(matches!(
        probe.all_evidence(&nonce),
        Err(GpuError::NotSupported { .. })
    ));
}

#[test]
fn stale_report_rejects() {
    // The driver hands back a report for another nonce: never let it out as fresh evidence.
    let (gpu, nonce) = attested_gpu(0, "hopper-nvtrust-sample");
    let probe = FakeProbe::new("550.90.07").with_gpu(gpu);
    let mut other = *nonce.as_bytes();
    other[0] ^= 0xFF;
    let err = probe
        .attestation_evidence(0, &Nonce::new(other))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Evidence { ref uuid, source: EvidenceError::NonceMismatch { .. } }
                if uuid.starts_with("GPU-")
        ),
        "{err:?}"
    );
}

#[test]
fn no_driver_rejects_everywhere() {
    let probe = FakeProbe::without_driver();
    let nonce = Nonce::new([1; 32]);
    let results = [
        probe.system_info().map(|_| ()),
        probe.gpu_count().map(|_| ()),
        probe.gpu_inventory(0).map(|_| ()),
        probe.cc_state().map(|_| ()),
        probe.set_ready_state(true),
        probe.attestation_evidence(0, &nonce).map(|_| ()),
        probe.sample(0).map(|_| ()),
        probe.health(0).map(|_| ()),
        probe.process_accounting(0, 1).map(|_| ()),
        probe.inventory().map(|_| ()),
    ];
    for r in results {
        assert!(matches!(r, Err(GpuError::DriverNotLoaded { .. })), "{r:?}");
    }
}

#[test]
fn inventory_works() {
    let probe = FakeProbe::new("550.90.07")
        .with_gpu(FakeGpu::new(0, "GPU-a"))
        .with_gpu(FakeGpu::new(1, "GPU-b"));
    let inv = probe.inventory().unwrap();
    assert_eq!(inv.system.driver_version, "550.90.07");
    assert_eq!(inv.gpus.len(), 2);
    // CC unsupported is not an error for the inventory.
    assert_eq!(inv.cc, None);
    assert_eq!(probe.index_of("GPU-b").unwrap(), 1);
    assert!(matches!(
        probe.index_of("GPU-z"),
        Err(GpuError::UnknownUuid { .. })
    ));
    assert!(matches!(
        probe.gpu_inventory(5),
        Err(GpuError::NoSuchGpu { index: 5, count: 2 })
    ));
    let json = serde_json::to_string(&inv).unwrap();
    let back: crate::Inventory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, inv);
}

#[test]
fn lost_gpu_rejects() {
    let probe = FakeProbe::new("550").with_gpu(FakeGpu::new(0, "GPU-a"));
    probe.update_gpu(0, |g| g.lost = true);
    assert!(matches!(
        probe.sample(0),
        Err(GpuError::GpuLost { index: 0 })
    ));
    assert!(matches!(
        probe.health(0),
        Err(GpuError::GpuLost { index: 0 })
    ));
}

#[test]
fn ready_state_works() {
    let mut cc = cc_ready();
    cc.gpus_ready = false;
    let probe = FakeProbe::new("550").with_cc(Some(cc));
    assert!(!probe.cc_state().unwrap().is_cc_ready());
    probe.set_ready_state(true).unwrap();
    assert!(probe.cc_state().unwrap().is_cc_ready());
    assert_eq!(probe.ready_writes(), vec![true]);
}

#[test]
fn cc_readiness_rejects() {
    let ready = cc_ready();
    assert!(ready.is_cc_ready());
    for change in [
        (|c: &mut CcState| c.cc_enabled = false) as fn(&mut CcState),
        |c| c.environment = CcEnvironment::Simulated,
        |c| c.dev_tools_mode = true,
        |c| c.gpus_ready = false,
    ] {
        let mut cc = ready.clone();
        change(&mut cc);
        assert!(!cc.is_cc_ready(), "{cc:?}");
    }
}
