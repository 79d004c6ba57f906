//! Agent benchmarks (a bench binary: it reports percentiles, which criterion does not).
//!
//! 1. Per-job overhead in attested-key mode: the same no-op process (`/bin/true`) spawned
//!    and reaped bare, against the whole job through the engine (durable `Queued` and
//!    `Running` commits, job directories, spawn under the agent's limits, metering,
//!    output collection, result commitment, receipt signed against the attested-key
//!    evidence, final commit). Also the receipt step alone.
//! 2. Submit throughput over gRPC on loopback: the agent's `Submit` (signature check,
//!    validation, durable insert with group commit) against a bare tonic unary call
//!    returning a canned response, same messages, same concurrency.
//!
//! ```text
//! cargo bench -p enclave-agent --bench agent            # full run
//! cargo bench -p enclave-agent --bench agent -- --quick # fewer iterations
//! ```
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a few iterations only.
// A bench binary, not library code: it may unwrap and index, and times are plain casts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use enclave_agent::attestor::Attestor;
use enclave_agent::config::Config;
use enclave_agent::engine::{Engine, EngineParts};
use enclave_agent::grpc::api::JobApi;
use enclave_agent::job::JobState;
use enclave_agent::metering::GpuMetering;
use enclave_agent::metrics::Metrics;
use enclave_agent::workload::{self, spec};
use prost::Message;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use wait4::Wait4;

static NEXT: AtomicU64 = AtomicU64::new(1);

const BENCH_TOKEN: &str = "bench-token";

fn fresh_id() -> [u8; 32] {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut h = Sha256::new();
    h.update(b"bench");
    h.update(std::process::id().to_le_bytes());
    h.update(n.to_le_bytes());
    h.finalize().into()
}

fn true_job(id: [u8; 32]) -> v1::JobSpec {
    v1::JobSpec {
        job_id: id.to_vec(),
        tier: 3,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: vec!["/bin/true".into()],
            env: Default::default(),
        })),
        evidence_mode: v1::EvidenceMode::AttestedKey as i32,
        ..Default::default()
    }
}

fn signed(key: &SigningKey, spec: &v1::JobSpec) -> v1::SubmitRequest {
    let bytes = spec.encode_to_vec();
    let mut h = Sha256::new();
    h.update(sigil_proto::SUBMIT_DOMAIN);
    h.update(&bytes);
    let msg: [u8; 32] = h.finalize().into();
    v1::SubmitRequest {
        spec: bytes,
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&msg).to_bytes().to_vec(),
        }),
        sealed_secrets: Vec::new(),
    }
}

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i]
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<44} n={:<5} p50={:>9.3} ms  p90={:>9.3} ms  p99={:>9.3} ms",
            self.0.len(),
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99))
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn engine(dir: &std::path::Path, max_concurrent: usize) -> (Arc<Engine>, CancellationToken) {
    engine_as(dir, max_concurrent, None).await
}

/// An engine whose workloads run as `run_as` (`jobs.run_as`; `None`: the default).
async fn engine_as(
    dir: &std::path::Path,
    max_concurrent: usize,
    run_as: Option<&str>,
) -> (Arc<Engine>, CancellationToken) {
    let mut cfg = Config {
        state_dir: dir.to_owned(),
        ..Config::default()
    };
    if let Some(r) = run_as {
        cfg.jobs.run_as = r.into();
    }
    cfg.jobs.max_concurrent = max_concurrent;
    // The submission benchmarks queue many thousands of jobs with the scheduler stopped.
    cfg.api.max_queued_jobs = 0;
    cfg.evidence.allow_simulated = true;
    cfg.auth.token = enclave_agent::config::Secret::new(BENCH_TOKEN);
    let token = CancellationToken::new();
    let engine = Engine::start(
        EngineParts {
            config: enclave_agent::wiring::engine_config(&cfg),
            attestor: Arc::new(Attestor::simulated().unwrap()),
            gpus: Vec::new(),
            gpu_metering: GpuMetering::disabled(),
            metrics: Arc::new(Metrics::new()),
            isolation: None,
        },
        token.clone(),
    )
    .await
    .unwrap();
    (engine, token)
}

fn bare_spawn() -> Duration {
    let t = Instant::now();
    let child = Command::new("/bin/true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let r = child.wait4().unwrap();
    assert!(r.status.success());
    t.elapsed()
}

async fn job_overhead(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(dir.path(), 1).await;
    let scheduler = tokio::spawn(Arc::clone(&engine).run());
    let key = SigningKey::from_bytes(&[3; 32]);
    let md = MetadataMap::new();

    // Warm up both paths (page cache, binaries, store file growth).
    for _ in 0..20 {
        bare_spawn();
    }
    // The same, with workloads under the agent's own user: the path where the agent sets
    // the limits with prlimit(2) itself, as a deployed agent holding CAP_SYS_RESOURCE does
    // for workloads of another user (this machine's root may lack the capability).
    let same_dir = tempfile::tempdir().unwrap();
    let (same, same_token) = engine_as(same_dir.path(), 1, Some("agent")).await;
    let same_scheduler = tokio::spawn(Arc::clone(&same).run());
    let mut bare = Vec::with_capacity(n);
    let mut agent = Vec::with_capacity(n);
    let mut agent_same = Vec::with_capacity(n);
    let mut receipt = Vec::with_capacity(n);
    let mut events = engine.subscribe();
    let mut same_events = same.subscribe();
    for round in 0..n + 20 {
        // Interleave them so drift (other load on the machine) hits all alike.
        let b = tokio::task::spawn_blocking(bare_spawn).await.unwrap();
        let id = fresh_id();
        let t = Instant::now();
        same.submit(&md, signed(&key, &true_job(id))).await.unwrap();
        loop {
            let r = same_events.recv().await.unwrap();
            if r.job_id == id && r.state.is_final() {
                assert_eq!(r.state, JobState::Succeeded, "{:?}", r.reason);
                break;
            }
        }
        let a_same = t.elapsed();
        let id = fresh_id();
        let req = signed(&key, &true_job(id));
        let t = Instant::now();
        engine.submit(&md, req).await.unwrap();
        loop {
            let r = events.recv().await.unwrap();
            if r.job_id == id && r.state.is_final() {
                assert_eq!(r.state, JobState::Succeeded, "{:?}", r.reason);
                break;
            }
        }
        let a = t.elapsed();
        // The receipt step alone, for a finished job of the same shape.
        let spec_bytes = true_job(id).encode_to_vec();
        let plan =
            spec::validate(&spec_bytes, &engine.config().jobs, engine.capabilities(), 0).unwrap();
        let rec = engine.job(&id).unwrap();
        let t = Instant::now();
        let issued = engine.make_receipt(&plan, &rec, &[]).await.unwrap();
        let rc = t.elapsed();
        assert!(!issued.signed.is_empty());
        if round >= 20 {
            bare.push(b);
            agent.push(a);
            agent_same.push(a_same);
            receipt.push(rc);
        }
    }
    same_token.cancel();
    let _ = same_scheduler.await;
    same.drain().await;
    token.cancel();
    let _ = scheduler.await;
    engine.drain().await;

    // Parts of the job path, to see where the time goes.
    let mut commit = Vec::with_capacity(n);
    let mut run = Vec::with_capacity(n);
    let rec = engine.store().all().unwrap().pop().unwrap();
    let plan_bytes = true_job(rec.job_id).encode_to_vec();
    let plan =
        spec::validate(&plan_bytes, &engine.config().jobs, engine.capabilities(), 0).unwrap();
    let dirs = workload::JobDirs::new(&engine.config().work_dir(), "bench-run");
    // The agent's default (prlimit(2) after the spawn), and util-linux prlimit exec'd in
    // front of the workload (`jobs.prlimit`), alternately.
    let prlimit_bin = workload::which("prlimit", &engine.config().jobs.path);
    let mut run_exec = Vec::with_capacity(n);
    for i in 0..2 * n {
        let exec = i % 2 == 1;
        if exec && prlimit_bin.is_none() {
            continue;
        }
        if !exec {
            let mut r = rec.clone();
            r.version += 1;
            let t = Instant::now();
            engine.store().put(r).await.unwrap();
            commit.push(t.elapsed());
        }
        workload::prepare(&dirs, &plan, workload::Owner::Agent).unwrap();
        let stop = workload::StopSignal::new();
        let req = workload::RunRequest {
            plan: &plan,
            jobs: &engine.config().jobs,
            container: &engine.config().container,
            dirs: &dirs,
            gpus: &[],
            stop: &stop,
            run_as: None,
            prlimit: if exec { prlimit_bin.as_deref() } else { None },
            container_cli: None,
            isolated: None,
            secret_env: &[],
        };
        let t = Instant::now();
        let out = workload::run(&req, |_| {}).await.unwrap();
        if exec { &mut run_exec } else { &mut run }.push(t.elapsed());
        assert_eq!(out.exit_code, 0);
    }
    // Isolated runs (root only): own id, cgroup, launcher; with and without the mount
    // namespace. Same plan, same directories, alternating with nothing else.
    let mut run_iso = Vec::with_capacity(n);
    let mut run_iso_no_ns = Vec::with_capacity(n);
    if nix::unistd::geteuid().is_root() {
        use enclave_agent::config::{IsolationConfig, NamespaceMode};
        use enclave_agent::workload::isolate::Isolation;
        let state = engine.config().state_dir.clone();
        for (namespace, out) in [
            (NamespaceMode::Required, &mut run_iso),
            (NamespaceMode::Off, &mut run_iso_no_ns),
        ] {
            let icfg = IsolationConfig {
                launcher: Some(env!("CARGO_BIN_EXE_sigil-launch").into()),
                namespace,
                ..IsolationConfig::default()
            };
            let iso = Isolation::start(
                &icfg,
                &engine.config().jobs.path,
                &state,
                vec![state.clone()],
            )
            .unwrap()
            .unwrap();
            for _ in 0..n {
                let lease = iso.lease().unwrap();
                workload::prepare(&dirs, &plan, workload::Owner::Job { id: lease.id() }).unwrap();
                let stop = workload::StopSignal::new();
                let req = workload::RunRequest {
                    plan: &plan,
                    jobs: &engine.config().jobs,
                    container: &engine.config().container,
                    dirs: &dirs,
                    gpus: &[],
                    stop: &stop,
                    run_as: None,
                    prlimit: None,
                    container_cli: None,
                    isolated: Some(workload::Isolated {
                        isolation: &iso,
                        id: lease.id(),
                    }),
                    secret_env: &[],
                };
                let t = Instant::now();
                let out_run = workload::run(&req, |_| {}).await.unwrap();
                out.push(t.elapsed());
                assert_eq!(out_run.exit_code, 0);
            }
        }
    }
    let (bare, agent, receipt) = (Stats(bare), Stats(agent), Stats(receipt));
    let agent_same = Stats(agent_same);
    let (commit, run) = (Stats(commit), Stats(run));
    println!("{}", bare.line("spawn /bin/true bare (spawn + wait4)"));
    println!("{}", agent.line("job through the agent (attested key)"));
    println!("{}", receipt.line("receipt step alone (commitment + sign)"));
    println!("{}", commit.line("one durable store commit (fsync)"));
    println!("{}", run.line("workload::run alone (limits, pipes, wait4)"));
    if !run_exec.is_empty() {
        println!(
            "{}",
            Stats(run_exec).line("workload::run, limits by exec of prlimit(1)")
        );
    }
    println!("{}", agent_same.line("job, workloads as the agent's user"));
    if !run_iso.is_empty() {
        let (iso, iso_no_ns) = (Stats(run_iso), Stats(run_iso_no_ns));
        println!(
            "{}",
            iso.line("workload::run isolated (id, cgroup, namespace)")
        );
        println!("{}", iso_no_ns.line("workload::run isolated, no namespace"));
        println!(
            "isolation over workload::run at p50: +{:.3} ms ({:.2}x); without the namespace: +{:.3} ms ({:.2}x); over bare spawn: {:.2}x",
            ms(iso.pct(0.5)) - ms(run.pct(0.5)),
            ms(iso.pct(0.5)) / ms(run.pct(0.5)),
            ms(iso_no_ns.pct(0.5)) - ms(run.pct(0.5)),
            ms(iso_no_ns.pct(0.5)) / ms(run.pct(0.5)),
            ms(iso.pct(0.5)) / ms(bare.pct(0.5)),
        );
    }
    println!(
        "overhead per job over bare at p50: {:.3} ms (workloads as the agent's user: {:.3} ms)",
        ms(agent.pct(0.5)) - ms(bare.pct(0.5)),
        ms(agent_same.pct(0.5)) - ms(bare.pct(0.5))
    );
}

/// A JobService whose Submit returns a canned response: the tonic floor.
#[derive(Clone)]
struct Bare;

#[tonic::async_trait]
impl v1::job_service_server::JobService for Bare {
    async fn submit(
        &self,
        r: tonic::Request<v1::SubmitRequest>,
    ) -> Result<tonic::Response<v1::SubmitResponse>, tonic::Status> {
        let _ = r.into_inner();
        Ok(tonic::Response::new(v1::SubmitResponse {
            job: Some(v1::JobStatus::default()),
            created: true,
        }))
    }
    async fn get_job(
        &self,
        _: tonic::Request<v1::GetJobRequest>,
    ) -> Result<tonic::Response<v1::JobStatus>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    type WatchStream = tokio_stream::Empty<Result<v1::JobEvent, tonic::Status>>;
    async fn watch(
        &self,
        _: tonic::Request<v1::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn cancel(
        &self,
        _: tonic::Request<v1::CancelRequest>,
    ) -> Result<tonic::Response<v1::JobStatus>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    type GetOutputStream = tokio_stream::Empty<Result<v1::OutputChunk, tonic::Status>>;
    async fn get_output(
        &self,
        _: tonic::Request<v1::GetOutputRequest>,
    ) -> Result<tonic::Response<Self::GetOutputStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn get_receipt(
        &self,
        _: tonic::Request<v1::GetReceiptRequest>,
    ) -> Result<tonic::Response<v1::ReceiptResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
}

async fn serve<S>(svc: S) -> (std::net::SocketAddr, CancellationToken)
where
    S: v1::job_service_server::JobService,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(v1::job_service_server::JobServiceServer::new(svc))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move { t.cancelled().await },
            )
            .await
            .unwrap();
    });
    (addr, token)
}

/// CPU seconds used so far by each thread name of this process (client, server, store
/// writer, verifier), from each thread's `schedstat` (nanoseconds on a CPU), and the seconds
/// each spent runnable but waiting for a CPU (its second field).
fn cpu_by_thread() -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut m = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return m;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let mut f = stat
            .split_whitespace()
            .map(|v| v.parse::<u64>().ok().unwrap_or(0) as f64 / 1e9);
        let (run, wait) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let e = m.entry(name.trim().to_owned()).or_insert((0.0, 0.0));
        e.0 += run;
        e.1 += wait;
    }
    m
}

/// CPU microseconds per call of each thread name between two readings, and microseconds
/// per call it waited for a CPU.
fn cpu_split(
    before: &std::collections::BTreeMap<String, (f64, f64)>,
    n: usize,
) -> Vec<(String, f64, f64)> {
    cpu_by_thread()
        .into_iter()
        .map(|(k, (run, wait))| {
            let (r0, w0) = before.get(&k).copied().unwrap_or((0.0, 0.0));
            let per = |d: f64| d * 1e6 / n as f64;
            (k, per(run - r0), per(wait - w0))
        })
        .filter(|(_, us, _)| *us >= 0.5)
        .collect()
}

/// Sends `reqs` with `concurrency` calls in flight on one HTTP/2 connection; returns
/// submissions per second.
async fn blast(
    addr: std::net::SocketAddr,
    reqs: Vec<v1::SubmitRequest>,
    concurrency: usize,
    token: bool,
) -> f64 {
    let ch = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let n = reqs.len();
    let queue = Arc::new(std::sync::Mutex::new(reqs));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (q, ch) = (Arc::clone(&queue), ch.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = v1::job_service_client::JobServiceClient::new(ch);
            loop {
                let Some(r) = q.lock().unwrap().pop() else {
                    break;
                };
                let mut r = tonic::Request::new(r);
                if token {
                    r.metadata_mut().insert(
                        "authorization",
                        format!("Bearer {BENCH_TOKEN}").parse().unwrap(),
                    );
                }
                let resp = c.submit(r).await.unwrap().into_inner();
                assert!(resp.created);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn in_process(engine: &Arc<Engine>, reqs: Vec<v1::SubmitRequest>, concurrency: usize) -> f64 {
    let n = reqs.len();
    let queue = Arc::new(std::sync::Mutex::new(reqs));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (q, e) = (Arc::clone(&queue), Arc::clone(engine));
        tasks.push(tokio::spawn(async move {
            let md = MetadataMap::new();
            loop {
                let Some(r) = q.lock().unwrap().pop() else {
                    break;
                };
                assert!(e.submit(&md, r).await.unwrap().1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Durable inserts alone (what `Submit` stores), `concurrency` at a time: the group commit.
async fn store_inserts(n: usize, concurrency: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = enclave_agent::store::Store::open(&dir.path().join("s.redb")).unwrap();
    let spec = true_job([0; 32]).encode_to_vec();
    let ids: Vec<[u8; 32]> = (0..n).map(|_| fresh_id()).collect();
    let queue = Arc::new(std::sync::Mutex::new(ids));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (q, st, spec) = (Arc::clone(&queue), store.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(id) = q.lock().unwrap().pop() else {
                    break;
                };
                let r = enclave_agent::job::JobRecord::queued(id, [1; 32], Some([2; 32]), 1);
                st.insert(r, spec.clone()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Rounds alternate between the bare server and the agent so that load from elsewhere on
/// the machine hits both alike; medians over rounds are reported.
async fn submit_throughput(n: usize, concurrency: usize, rounds: usize) {
    let key = SigningKey::from_bytes(&[4; 32]);
    let make = |n: usize| {
        (0..n)
            .map(|_| signed(&key, &true_job(fresh_id())))
            .collect::<Vec<_>>()
    };
    let unsigned = |n: usize| {
        (0..n)
            .map(|_| v1::SubmitRequest {
                spec: true_job(fresh_id()).encode_to_vec(),
                signature: None,
                sealed_secrets: Vec::new(),
            })
            .collect::<Vec<_>>()
    };
    let (bare_addr, bare_stop) = serve(Bare).await;
    // The agent's Submit; the scheduler is not started, so nothing runs and the
    // measurement is the submission path alone.
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(dir.path(), 1).await;
    let (agent_addr, agent_stop) = serve(JobApi::new(Arc::clone(&engine))).await;
    blast(bare_addr, make(500), concurrency, false).await;
    blast(agent_addr, make(500), concurrency, false).await;
    let (mut bare, mut agent, mut tok, mut local, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // CPU time per call, client and server together (both in this process).
    let (mut bare_cpu, mut agent_cpu) = (Vec::new(), Vec::new());
    let mut agent_split = Vec::new();
    for _ in 0..rounds {
        let reqs = make(n);
        let c = cpu_by_thread();
        let b = blast(bare_addr, reqs, concurrency, false).await;
        bare_cpu.push(cpu_split(&c, n).iter().map(|(_, us, _)| us).sum());
        let reqs = make(n);
        let c = cpu_by_thread();
        let a = blast(agent_addr, reqs, concurrency, false).await;
        let split = cpu_split(&c, n);
        agent_cpu.push(split.iter().map(|(_, us, _)| us).sum());
        agent_split = split;
        bare.push(b);
        agent.push(a);
        ratios.push(a / b);
        // With the bearer token instead of a buyer signature (a dispatcher in front).
        tok.push(blast(agent_addr, unsigned(n), concurrency, true).await);
        // The same path without gRPC, to separate transport from engine cost.
        local.push(in_process(&engine, make(n), concurrency).await);
    }
    let sigs = engine.metrics().signature_stats().snapshot();
    agent_stop.cancel();
    bare_stop.cancel();
    token.cancel();
    let stored = store_inserts(n, concurrency).await;
    println!(
        "submit throughput, {concurrency} calls in flight, {n} calls x {rounds} rounds (medians):"
    );
    println!(
        "  bare tonic unary (canned response)        {:>9.0} calls/s",
        median(bare)
    );
    println!(
        "  agent Submit (ed25519 + validate + fsync) {:>9.0} calls/s",
        median(agent)
    );
    println!(
        "  agent Submit with bearer token            {:>9.0} calls/s",
        median(tok)
    );
    println!(
        "  agent Submit in process (no gRPC)         {:>9.0} calls/s",
        median(local)
    );
    println!("  store inserts alone (group commit)        {stored:>9.0} inserts/s");
    println!(
        "  ratio agent/bare (median of rounds)       {:>9.2}",
        median(ratios)
    );
    println!(
        "  CPU per call, client and server: bare {:.0} us, agent {:.0} us (medians)",
        median(bare_cpu),
        median(agent_cpu)
    );
    let split: Vec<String> = agent_split
        .iter()
        .map(|(name, us, wait)| format!("{name} {us:.0} (+{wait:.0} waiting)"))
        .collect();
    println!(
        "  agent CPU per call by thread (last round, us, and us runnable without a CPU): {}",
        split.join(", ")
    );
    println!(
        "  buyer signatures: {} verified alone, {} in {} batches ({:.1} per batch)",
        sigs.inline,
        sigs.signatures,
        sigs.batches,
        sigs.signatures as f64 / sigs.batches.max(1) as f64
    );
}

/// Cost of the buyer-signature check per submission, with the two ed25519 implementations
/// at hand (ed25519-dalek, used by the agent; aws-lc-rs through the verifier's crypto trait).
fn signature_check(n: usize) {
    use attestation_verifier::crypto::{AwsLc, Crypto};
    let key = SigningKey::from_bytes(&[5; 32]);
    let pk = key.verifying_key();
    let msg = [7u8; 32];
    let sig = key.sign(&msg);
    let t = Instant::now();
    for _ in 0..n {
        pk.verify_strict(std::hint::black_box(&msg), &sig).unwrap();
    }
    let dalek = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let (pkb, sigb) = (pk.to_bytes(), sig.to_bytes());
    let t = Instant::now();
    for _ in 0..n {
        AwsLc
            .verify_ed25519(&pkb, std::hint::black_box(&msg), &sigb)
            .unwrap();
    }
    let awslc = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("ed25519 verify: ed25519-dalek {dalek:.1} us, aws-lc-rs {awslc:.1} us");
    // The agent's batch check (its verifier thread runs it on whatever is queued), one
    // buyer, batches of 64 and 1.
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("submission {i}").into_bytes())
        .collect();
    let sigs: Vec<[u8; 64]> = msgs.iter().map(|m| key.sign(m).to_bytes()).collect();
    let signed: Vec<_> = msgs
        .iter()
        .zip(&sigs)
        .map(|(m, s)| (&pkb, s, m.as_slice()))
        .collect();
    let mut checker = enclave_agent::auth::batch::BatchChecker::new();
    for size in [1usize, 8, 64] {
        let t = Instant::now();
        for chunk in signed.chunks(size) {
            let (v, fell_back) = checker.check(chunk);
            assert!(!fell_back && v.iter().all(Result::is_ok));
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "  agent batch check, batches of {size:>2}: {per:.1} us/signature, {:.2}x ed25519-dalek",
            per / dalek
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let (jobs, subs, rounds) = match (bench, quick) {
        (true, false) => (500, 5_000, 7),
        (true, true) => (100, 2_000, 3),
        (false, _) => (5, 200, 1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `--only jobs|submit|sig` runs one part.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    rt.block_on(async {
        if run("jobs") {
            job_overhead(jobs).await;
        }
        // `SIGIL_BENCH_INFLIGHT` overrides the calls in flight (default 64).
        let inflight = std::env::var("SIGIL_BENCH_INFLIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64);
        if run("submit") {
            submit_throughput(subs, inflight, rounds).await;
        }
        if run("sig") {
            signature_check(subs);
        }
    });
}
