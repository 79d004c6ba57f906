//! Metering arithmetic with explicit timestamps, and the sampling thread over `FakeProbe`.

use std::sync::Arc;
use std::time::Duration;

use crate::{
    EnergySource, FakeGpu, FakeProbe, GpuError, GpuProbe, GpuSample, Meter, ProcessAccounting,
    ProcessSample, UsageAccumulator,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sample(util: u32, energy: Option<u64>, power_mw: Option<u32>, mem: u64) -> GpuSample {
    GpuSample {
        gpu_utilization_pct: Some(util),
        memory_utilization_pct: Some(0),
        memory_used_bytes: Some(mem),
        memory_total_bytes: Some(80 << 30),
        total_energy_mj: energy,
        power_mw,
        processes: None,
    }
}

fn one_gpu() -> UsageAccumulator {
    UsageAccumulator::new([(0, "GPU-a".to_owned())])
}

#[test]
fn gpu_time_works() {
    let mut acc = one_gpu();
    // The first reading opens the window; each later one covers the second before it.
    acc.record(0, secs(0), &sample(100, None, None, 0));
    for s in 1..=10 {
        acc.record(0, secs(s), &sample(50, None, None, 0));
    }
    let usage = acc.finish(|_, _| None);
    let g = &usage.gpus[0];
    assert_eq!(g.wall_ms, 10_000);
    assert_eq!(g.gpu_time_ms, 5_000);
    assert_eq!(g.samples, 11);
    assert_eq!(usage.gpu_time_ms, 5_000);
}

#[test]
fn uneven_intervals_work() {
    let mut acc = one_gpu();
    acc.record(0, Duration::ZERO, &sample(0, None, None, 0));
    acc.record(0, Duration::from_millis(250), &sample(100, None, None, 0));
    acc.record(0, Duration::from_millis(1250), &sample(30, None, None, 0));
    acc.record(0, Duration::from_millis(1251), &sample(250, None, None, 0)); // clamped to 100
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!(g.gpu_time_ms, 250 + 300 + 1);
}

#[test]
fn out_of_order_sample_rejects() {
    let mut acc = one_gpu();
    acc.record(0, secs(10), &sample(100, Some(5_000), None, 0));
    acc.record(0, secs(5), &sample(100, Some(9_000), None, 10));
    acc.record(1, secs(11), &sample(100, None, None, 0)); // unknown GPU
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!(g.samples, 1);
    assert_eq!(g.peak_memory_bytes, Some(0));
    assert_eq!(g.energy_mj, None);
}

#[test]
fn energy_counter_works() {
    let mut acc = one_gpu();
    acc.record(0, secs(0), &sample(0, Some(1_000_000), Some(100_000), 0));
    acc.record(0, secs(1), &sample(0, None, Some(100_000), 0)); // one reading missing
    acc.record(0, secs(2), &sample(0, Some(1_250_000), Some(100_000), 0));
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!(g.energy_source, EnergySource::Counter);
    assert_eq!(g.energy_mj, Some(250_000));
}

#[test]
fn power_integral_works() {
    // No counter: 100 W rising linearly to 300 W over 2 s is 400 J; then 300 W for 1 s.
    let mut acc = one_gpu();
    acc.record(0, secs(0), &sample(0, None, Some(100_000), 0));
    acc.record(0, secs(2), &sample(0, None, Some(300_000), 0));
    acc.record(0, secs(3), &sample(0, None, Some(300_000), 0));
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!(g.energy_source, EnergySource::PowerIntegral);
    assert_eq!(g.energy_mj, Some(700_000));
}

#[test]
fn counter_reset_falls_back_works() {
    // The driver reloaded mid-job: the counter restarted, so the difference means nothing.
    let mut acc = one_gpu();
    acc.record(0, secs(0), &sample(0, Some(9_000_000), Some(200_000), 0));
    acc.record(0, secs(1), &sample(0, Some(10), Some(200_000), 0));
    acc.record(0, secs(2), &sample(0, Some(200_010), Some(200_000), 0));
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!(g.energy_source, EnergySource::PowerIntegral);
    assert_eq!(g.energy_mj, Some(400_000));
}

#[test]
fn no_energy_reading_rejects() {
    let mut acc = UsageAccumulator::new([(0, "GPU-a".to_owned()), (1, "GPU-b".to_owned())]);
    acc.record(0, secs(0), &sample(0, None, None, 0));
    acc.record(0, secs(1), &sample(0, None, None, 0));
    acc.record(1, secs(0), &sample(0, Some(0), None, 0));
    acc.record(1, secs(1), &sample(0, Some(500), None, 0));
    let usage = acc.finish(|_, _| None);
    assert_eq!(usage.gpus[0].energy_source, EnergySource::Unavailable);
    assert_eq!(usage.gpus[0].energy_mj, None);
    assert_eq!(usage.gpus[1].energy_mj, Some(500));
    // A job total that silently left out a GPU would under-bill.
    assert_eq!(usage.energy_mj, None);
}

#[test]
fn memory_and_processes_work() {
    let mut acc = UsageAccumulator::new([(0, "GPU-a".to_owned()), (1, "GPU-b".to_owned())]);
    let with = |mem: u64, procs: &[(u32, Option<u64>)]| GpuSample {
        processes: Some(
            procs
                .iter()
                .map(|&(pid, used_memory_bytes)| ProcessSample {
                    pid,
                    used_memory_bytes,
                })
                .collect(),
        ),
        ..sample(10, Some(0), None, mem)
    };
    acc.record(0, secs(0), &with(1 << 30, &[(100, Some(1 << 30))]));
    acc.record(
        0,
        secs(1),
        &with(6 << 30, &[(100, Some(4 << 30)), (200, None)]),
    );
    acc.record(0, secs(2), &with(2 << 30, &[(200, Some(1 << 30))]));
    acc.record(1, secs(0), &with(3 << 30, &[]));
    acc.record(1, secs(1), &with(1 << 30, &[]));
    assert_eq!(acc.processes(), vec![(0, 100), (0, 200)]);
    let record = ProcessAccounting {
        gpu_utilization_pct: Some(42),
        memory_utilization_pct: Some(7),
        max_memory_bytes: Some(5 << 30),
        time_ms: 1234,
        is_running: false,
    };
    let usage = acc.finish(|gpu, pid| (gpu == 0 && pid == 100).then_some(record));
    let g = &usage.gpus[0];
    assert_eq!(g.peak_memory_bytes, Some(6 << 30));
    assert_eq!(g.processes.len(), 2);
    assert_eq!(g.processes[0].pid, 100);
    assert_eq!(g.processes[0].samples_seen, 2);
    assert_eq!(g.processes[0].peak_memory_bytes, Some(4 << 30));
    assert_eq!(g.processes[0].accounting, Some(record));
    assert_eq!(g.processes[1].peak_memory_bytes, Some(1 << 30));
    assert_eq!(g.processes[1].accounting, None);
    assert_eq!(usage.peak_memory_bytes, Some(9 << 30));
    assert_eq!(usage.energy_mj, Some(0));
}

#[test]
fn sample_errors_are_counted() {
    let mut acc = one_gpu();
    acc.record_error(0, &GpuError::GpuLost { index: 0 });
    let g = &acc.finish(|_, _| None).gpus[0];
    assert_eq!((g.samples, g.failed_samples), (0, 1));
    assert!(g.last_error.as_deref().unwrap().contains("lost"));
    assert_eq!(g.wall_ms, 0);
}

fn metered_probe() -> Arc<FakeProbe> {
    let mut gpu = FakeGpu::new(0, "GPU-m");
    // First reading at start, then every later one repeats: the counter difference does not
    // depend on how many ticks the thread manages.
    gpu.samples
        .push_back(sample(80, Some(10_000), Some(300_000), 1 << 30));
    gpu.samples.push_back(GpuSample {
        processes: Some(vec![ProcessSample {
            pid: 7,
            used_memory_bytes: Some(2 << 30),
        }]),
        ..sample(80, Some(14_000), Some(300_000), 3 << 30)
    });
    gpu.accounting.insert(
        7,
        ProcessAccounting {
            gpu_utilization_pct: Some(80),
            memory_utilization_pct: None,
            max_memory_bytes: Some(2 << 30),
            time_ms: 0,
            is_running: true,
        },
    );
    Arc::new(FakeProbe::new("550").with_gpu(gpu))
}

#[test]
fn meter_thread_works() {
    let probe = metered_probe();
    let meter = Meter::new(probe.clone(), Duration::from_millis(10));
    let run = meter.start(&[0]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let usage = run.stop().unwrap();
    let g = &usage.gpus[0];
    assert_eq!(g.uuid, "GPU-m");
    assert!(g.samples >= 2, "start and stop readings at least: {g:?}");
    assert_eq!(g.failed_samples, 0);
    assert_eq!(g.energy_source, EnergySource::Counter);
    assert_eq!(g.energy_mj, Some(4_000));
    assert_eq!(g.peak_memory_bytes, Some(3 << 30));
    assert_eq!(g.processes.len(), 1);
    assert_eq!(
        g.processes[0].accounting.unwrap().gpu_utilization_pct,
        Some(80)
    );
}

#[test]
fn meter_drop_without_stop_works() {
    let probe = metered_probe();
    let run = Meter::new(probe.clone(), Duration::from_secs(3600))
        .start(&[0])
        .unwrap();
    drop(run);
    // The probe is still usable and nothing hangs.
    assert!(probe.sample(0).is_ok());
}

#[test]
fn meter_bad_gpu_rejects() {
    let probe: Arc<dyn GpuProbe> = metered_probe();
    let meter = Meter::new(probe, Duration::from_millis(10));
    assert!(matches!(
        meter.start(&[3]),
        Err(GpuError::NoSuchGpu { index: 3, count: 1 })
    ));
    let none: Arc<dyn GpuProbe> = Arc::new(FakeProbe::without_driver());
    let meter = Meter::new(none, Duration::from_millis(10));
    assert!(matches!(
        meter.start(&[0]),
        Err(GpuError::DriverNotLoaded { .. })
    ));
}

#[test]
fn meter_gpu_lost_mid_job_works() {
    let probe = metered_probe();
    let run = Meter::new(probe.clone(), Duration::from_secs(3600))
        .start(&[0])
        .unwrap();
    probe.update_gpu(0, |g| g.lost = true);
    let usage = run.stop().unwrap();
    let g = &usage.gpus[0];
    assert_eq!((g.samples, g.failed_samples), (1, 1));
    // One reading spans no time: no energy figure rather than a false 0 mJ.
    assert_eq!(g.energy_source, EnergySource::Unavailable);
    assert_eq!(g.energy_mj, None);
}
