//! GPU assignment and metering through the engine, with `gpu-monitor`'s scripted probe
//! standing in for NVML (no GPU on the test machine): the job sees its GPU in
//! `CUDA_VISIBLE_DEVICES`, GPU time and energy land in the receipt, and a job asking for
//! more GPUs than exist is refused.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use enclave_agent::attestor::Attestor;
use enclave_agent::config::Config;
use enclave_agent::engine::{AgentError, Engine, EngineParts};
use enclave_agent::job::{JobState, LogKind};
use enclave_agent::metering::GpuMetering;
use enclave_agent::metrics::Metrics;
use enclave_agent::wiring as setup;
use enclave_agent::workload::spec::SpecError;
use gpu_monitor::{FakeGpu, FakeProbe, GpuSample};
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

fn sample(energy_mj: u64) -> GpuSample {
    GpuSample {
        gpu_utilization_pct: Some(100),
        total_energy_mj: Some(energy_mj),
        power_mw: Some(300_000),
        ..GpuSample::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gpu_assignment_and_metering_works() {
    let dir = state_dir();
    let mut gpu = FakeGpu::new(0, "GPU-00000000-1111-2222-3333-444444444444");
    gpu.samples.extend([sample(1_000), sample(5_000)]);
    let probe: Arc<dyn gpu_monitor::GpuProbe> = Arc::new(FakeProbe::new("550.90.07").with_gpu(gpu));
    let mut cfg = Config {
        state_dir: dir.path().to_owned(),
        ..Config::default()
    };
    cfg.gpus.sample_ms = 20;
    cfg.evidence.allow_simulated = true;
    let gpus = setup::gpus_from_probe(&cfg, Arc::clone(&probe));
    assert_eq!(gpus.assignable.len(), 1);
    assert_eq!(gpus.info[0].driver_version, "550.90.07");
    let token = CancellationToken::new();
    let engine = Engine::start(
        EngineParts {
            config: enclave_agent::wiring::engine_config(&cfg),
            attestor: Arc::new(Attestor::simulated().unwrap()),
            gpus: gpus.assignable.clone(),
            gpu_metering: GpuMetering::new(probe, Duration::from_millis(20)),
            metrics: Arc::new(Metrics::new()),
            isolation: None,
        },
        token.clone(),
    )
    .await
    .unwrap();
    let scheduler = tokio::spawn(Arc::clone(&engine).run());
    let md = MetadataMap::new();
    let mut events = engine.subscribe();

    let with_gpu = job_id("gpu-job");
    let mut spec = shell_job(with_gpu, "echo \"$CUDA_VISIBLE_DEVICES\"; sleep 0.3");
    spec.gpu_count = 1;
    engine.submit(&md, signed(&buyer(), &spec)).await.unwrap();
    let without = job_id("cpu-job");
    engine
        .submit(
            &md,
            signed(
                &buyer(),
                &shell_job(without, "echo \"[$CUDA_VISIBLE_DEVICES]\""),
            ),
        )
        .await
        .unwrap();
    let mut two = shell_job(job_id("two-gpus"), "true");
    two.gpu_count = 2;
    let e = engine
        .submit(&md, signed(&buyer(), &two))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            AgentError::Spec(SpecError::NotEnoughGpus {
                requested: 2,
                available: 1
            })
        ),
        "{e}"
    );

    let mut done = 0;
    while done < 2 {
        let r = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .unwrap()
            .unwrap();
        if r.state.is_final() {
            assert_eq!(r.state, JobState::Succeeded, "{}", r.reason);
            done += 1;
        }
    }
    let stdout = |id| {
        engine
            .store()
            .log_chunk(&id, LogKind::Stdout, 0)
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        stdout(with_gpu),
        b"GPU-00000000-1111-2222-3333-444444444444\n"
    );
    assert_eq!(stdout(without), b"[]\n");

    let rec = engine.job(&with_gpu).unwrap();
    assert!(rec.usage.gpu_ms > 0, "{:?}", rec.usage);
    // Energy is the counter's difference between the first and the last reading.
    assert_eq!(rec.usage.gpu_energy_mj, 4_000);
    let receipt = engine.store().receipt(&with_gpu).unwrap().unwrap();
    let body = attestation_verifier::receipt::SignedReceipt::decode_bytes(&receipt)
        .unwrap()
        .body()
        .unwrap();
    assert_eq!(body.usage.gpu_energy_mj, 4_000);
    assert_eq!(body.usage.gpu_ms, rec.usage.gpu_ms);
    let cpu_only = engine.job(&without).unwrap();
    assert_eq!(cpu_only.usage.gpu_ms, 0);
    assert_eq!(cpu_only.usage.gpu_energy_mj, 0);

    token.cancel();
    scheduler.await.unwrap();
    engine.drain().await;
}
