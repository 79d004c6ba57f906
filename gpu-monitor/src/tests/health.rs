//! Readiness evaluation and change tracking.

use super::probe::cc_ready;
use crate::health::{self, HealthPolicy, Problem, ReadinessChange, ReadinessTracker, Severity};
use crate::{
    CcEnvironment, FakeGpu, FakeProbe, GpuError, HealthSnapshot, RemappedRows, ThrottleReasons,
};

fn healthy() -> HealthSnapshot {
    HealthSnapshot {
        temperature_c: Some(40),
        slowdown_temperature_c: Some(87),
        power_mw: Some(70_000),
        power_limit_mw: Some(700_000),
        ecc_enabled: Some(true),
        ecc_corrected_volatile: Some(3),
        ecc_uncorrected_volatile: Some(0),
        ecc_uncorrected_aggregate: Some(0),
        throttle_reasons: Some(ThrottleReasons::GPU_IDLE),
        retired_pages_pending: None,
        remapped_rows: Some(RemappedRows {
            correctable: 1,
            uncorrectable: 0,
            pending: false,
            failure: false,
        }),
        pcie_replay_count: Some(0),
    }
}

fn problems(policy: &HealthPolicy, h: &HealthSnapshot) -> Vec<Problem> {
    let gpu = FakeGpu::new(0, "GPU-h").inventory;
    health::evaluate(policy, &gpu, Ok(&cc_ready()), Ok(h)).problems
}

#[test]
fn healthy_gpu_works() {
    assert_eq!(problems(&HealthPolicy::default(), &healthy()), vec![]);
    // Nothing known is not a problem either (older GPUs report little).
    assert_eq!(
        problems(&HealthPolicy::default(), &HealthSnapshot::default()),
        vec![]
    );
}

#[test]
fn cc_problems_reject() {
    let gpu = FakeGpu::new(0, "GPU-h").inventory;
    let policy = HealthPolicy::default();
    let mut cc = cc_ready();
    cc.cc_enabled = false;
    cc.environment = CcEnvironment::Simulated;
    cc.dev_tools_mode = true;
    cc.gpus_ready = false;
    let status = health::evaluate(&policy, &gpu, Ok(&cc), Ok(&healthy()));
    assert_eq!(
        status.problems,
        vec![
            Problem::CcOff,
            Problem::CcNotProduction {
                environment: CcEnvironment::Simulated
            },
            Problem::CcDevToolsMode,
            Problem::CcNotReady,
        ]
    );
    assert!(!status.is_ready());

    let lenient = HealthPolicy {
        allow_dev_tools_mode: true,
        ..HealthPolicy::default()
    };
    let mut dev = cc_ready();
    dev.dev_tools_mode = true;
    assert!(health::evaluate(&lenient, &gpu, Ok(&dev), Ok(&healthy())).is_ready());

    let err = GpuError::NotSupported {
        call: "nvmlSystemGetConfComputeSettings",
    };
    let status = health::evaluate(&policy, &gpu, Err(&err), Ok(&healthy()));
    assert!(matches!(
        status.problems[..],
        [Problem::CcStateUnavailable { .. }]
    ));
    assert!(!status.is_ready());
    // Plain GPU offers do not look at CC at all.
    let status = health::evaluate(&HealthPolicy::without_cc(), &gpu, Err(&err), Ok(&healthy()));
    assert!(status.is_ready() && status.problems.is_empty());
}

#[test]
fn hardware_faults_reject() {
    let policy = HealthPolicy::default();
    let mut dbe = healthy();
    dbe.ecc_uncorrected_volatile = Some(2);
    assert_eq!(
        problems(&policy, &dbe),
        vec![Problem::UncorrectedEcc { count: 2, limit: 0 }]
    );
    let tolerant = HealthPolicy {
        max_uncorrected_ecc_volatile: 2,
        ..HealthPolicy::default()
    };
    assert_eq!(problems(&tolerant, &dbe), vec![]);

    let mut remap = healthy();
    remap.remapped_rows = Some(RemappedRows {
        correctable: 0,
        uncorrectable: 9,
        pending: true,
        failure: true,
    });
    assert_eq!(
        problems(&policy, &remap),
        vec![Problem::RowRemapFailure, Problem::ResetPending]
    );

    let gpu = FakeGpu::new(0, "GPU-h").inventory;
    let lost = GpuError::GpuLost { index: 0 };
    let status = health::evaluate(&policy, &gpu, Ok(&cc_ready()), Err(&lost));
    assert_eq!(status.problems, vec![Problem::GpuLost]);
    assert!(!status.is_ready());
}

#[test]
fn warnings_keep_gpu_ready_works() {
    let gpu = FakeGpu::new(0, "GPU-h").inventory;
    let policy = HealthPolicy::default();
    let mut warm = healthy();
    warm.temperature_c = Some(87);
    warm.throttle_reasons =
        Some(ThrottleReasons::HW_THERMAL_SLOWDOWN.union(ThrottleReasons::SW_POWER_CAP));
    warm.retired_pages_pending = Some(true);
    let status = health::evaluate(&policy, &gpu, Ok(&cc_ready()), Ok(&warm));
    assert_eq!(
        status.problems,
        vec![
            Problem::ResetPending,
            Problem::Overheated {
                celsius: 87,
                limit: 87
            },
            Problem::Throttled {
                reasons: vec!["hw_thermal_slowdown".into()]
            },
        ]
    );
    assert!(
        status
            .problems
            .iter()
            .all(|p| p.severity() == Severity::Warning)
    );
    assert!(status.is_ready());
    // A configured limit wins over the GPU's threshold.
    let strict = HealthPolicy {
        max_temperature_c: Some(60),
        ..HealthPolicy::default()
    };
    let mut h = healthy();
    h.temperature_c = Some(61);
    assert_eq!(
        problems(&strict, &h),
        vec![Problem::Overheated {
            celsius: 61,
            limit: 60
        }]
    );
}

#[test]
fn throttle_names_work() {
    let r = ThrottleReasons(0x8 | 0x80 | 0x1000);
    assert_eq!(
        r.names(),
        vec!["hw_slowdown", "hw_power_brake_slowdown", "0x1000"]
    );
    assert!(ThrottleReasons::NONE.names().is_empty());
}

#[test]
fn tracker_reports_leaving_cc_ready_works() {
    let mut gpu_b = FakeGpu::new(1, "GPU-b");
    gpu_b.health = healthy();
    let mut gpu_a = FakeGpu::new(0, "GPU-a");
    gpu_a.health = healthy();
    let probe = FakeProbe::new("550")
        .with_gpu(gpu_a)
        .with_gpu(gpu_b)
        .with_cc(Some(cc_ready()));
    let policy = HealthPolicy::default();
    let mut tracker = ReadinessTracker::new();

    let first = tracker.poll(&probe, &policy).unwrap().1;
    assert_eq!(
        first,
        vec![
            ReadinessChange::Ready {
                uuid: "GPU-a".into()
            },
            ReadinessChange::Ready {
                uuid: "GPU-b".into()
            },
        ]
    );
    assert_eq!(tracker.poll(&probe, &policy).unwrap().1, vec![]);

    // The ready state is dropped (system-wide): both GPUs must stop being offered.
    probe.update_cc(|cc| cc.as_mut().unwrap().gpus_ready = false);
    let changes = tracker.poll(&probe, &policy).unwrap().1;
    assert_eq!(changes.len(), 2);
    for change in &changes {
        assert!(
            matches!(change, ReadinessChange::NotReady { problems, .. } if problems == &[Problem::CcNotReady]),
            "{change:?}"
        );
    }
    assert_eq!(tracker.is_ready("GPU-a"), Some(false));

    // Back to ready, then GPU b is lost and later disappears from the list.
    probe.update_cc(|cc| cc.as_mut().unwrap().gpus_ready = true);
    assert_eq!(tracker.poll(&probe, &policy).unwrap().1.len(), 2);
    probe.update_gpu(1, |g| g.lost = true);
    assert_eq!(
        tracker.poll(&probe, &policy).unwrap().1,
        vec![ReadinessChange::NotReady {
            uuid: "GPU-b".into(),
            problems: vec![Problem::GpuLost]
        }]
    );
    let only_a = FakeProbe::new("550")
        .with_gpu({
            let mut g = FakeGpu::new(0, "GPU-a");
            g.health = healthy();
            g
        })
        .with_cc(Some(cc_ready()));
    assert_eq!(
        tracker.poll(&only_a, &policy).unwrap().1,
        vec![ReadinessChange::Gone {
            uuid: "GPU-b".into()
        }]
    );
}

#[test]
fn stateless_check_of_lost_gpu_works() {
    let probe = FakeProbe::new("550")
        .with_gpu(FakeGpu::new(0, "GPU-a"))
        .with_cc(Some(cc_ready()));
    probe.update_gpu(0, |g| g.lost = true);
    let statuses = health::check(&probe, &HealthPolicy::default()).unwrap();
    assert_eq!(statuses[0].uuid, "unknown-gpu-0");
    assert_eq!(statuses[0].problems, vec![Problem::GpuLost]);
}

#[test]
fn check_without_driver_rejects() {
    let probe = FakeProbe::without_driver();
    assert!(matches!(
        health::check(&probe, &HealthPolicy::default()),
        Err(GpuError::DriverNotLoaded { .. })
    ));
}

#[test]
fn problems_serialise_works() {
    let json = serde_json::to_value(Problem::Overheated {
        celsius: 90,
        limit: 87,
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "overheated", "celsius": 90, "limit": 87})
    );
    assert_eq!(
        Problem::CcNotReady.to_string(),
        "GPUs-ready state is not set"
    );
}
