//! Access rules with a chain configured (issue 19), over a fake chain: only jobs funded and
//! bound here with the submitted spec's hash run; a stranger cannot squat a funded job's id;
//! unfunded jobs are refused, or taken from the operator's allow list where the
//! configuration allows off-chain jobs; only the job's buyer reads it. Served over gRPC on
//! a local socket, as clients see it.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{buyer, job_id, output_auth, request_auth, shell_job, signed, state, wait_final};
use ed25519_dalek::SigningKey;
use enclave_agent::attestor::Attestor;
use enclave_agent::config::Config;
use enclave_agent::engine::{Engine, EngineParts};
use enclave_agent::funding::{Funding, FundingError, FundingFuture, FundingOracle};
use enclave_agent::metering::GpuMetering;
use enclave_agent::metrics::Metrics;
use enclave_agent::wiring;
use prost::Message;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use sigil_proto::v1::job_service_client::JobServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

/// The chain's jobs by id; `None` in the map: the chain cannot be read.
#[derive(Debug, Default)]
struct FakeChain {
    jobs: Mutex<HashMap<[u8; 32], Funding>>,
    down: Mutex<bool>,
    asked: Mutex<u32>,
    /// When set, each answer waits for a permit (a slow chain).
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl FundingOracle for FakeChain {
    fn funding<'a>(&'a self, job_id: &'a [u8; 32]) -> FundingFuture<'a> {
        *self.asked.lock().unwrap() += 1;
        let r = if *self.down.lock().unwrap() {
            Err(FundingError::Unavailable("fake chain down".into()))
        } else {
            Ok(self.jobs.lock().unwrap().get(job_id).copied())
        };
        let gate = self.gate.lock().unwrap().clone();
        Box::pin(async move {
            if let Some(g) = gate {
                g.acquire().await.unwrap().forget();
            }
            r
        })
    }
}

impl FakeChain {
    fn fund(&self, spec: &v1::JobSpec, buyer: [u8; 32]) {
        let id: [u8; 32] = spec.job_id.as_slice().try_into().unwrap();
        self.jobs.lock().unwrap().insert(
            id,
            Funding {
                buyer,
                spec_hash: Sha256::digest(spec.encode_to_vec()).into(),
                open: true,
                bound_here: true,
            },
        );
    }
}

struct Served {
    engine: Arc<Engine>,
    chain: Arc<FakeChain>,
    jobs: JobServiceClient<Channel>,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

const TOKEN: &str = "operator-token";

async fn serve(edit: impl FnOnce(&mut Config)) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        state_dir: dir.path().to_owned(),
        ..Config::default()
    };
    cfg.jobs.run_as = "agent".into();
    cfg.jobs.kill_grace_ms = 200;
    cfg.auth.token = enclave_agent::config::Secret::new(TOKEN);
    // A chain is configured (never connected here: the fake answers for it).
    cfg.chain.url = "ws://127.0.0.1:9".into();
    edit(&mut cfg);
    let token = CancellationToken::new();
    let engine = Engine::start(
        EngineParts {
            config: wiring::engine_config(&cfg),
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
    let chain = Arc::new(FakeChain::default());
    engine.set_funding(Arc::clone(&chain) as Arc<dyn FundingOracle>);
    tokio::spawn(Arc::clone(&engine).run());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let provider = wiring::provider_api(&engine, &wiring::GpuSetup::default());
    let settings = wiring::serve_settings(&cfg);
    let (e, t) = (Arc::clone(&engine), token.clone());
    tokio::spawn(async move {
        enclave_agent::grpc::serve(e, provider, listener, &settings, t)
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Served {
        engine,
        chain,
        jobs: JobServiceClient::new(channel),
        token,
        _dir: dir,
    }
}

fn with_token<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

fn key_of(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// Regression test for issue 19: a funded job runs for its buyer, who alone reads it.
#[tokio::test(flavor = "multi_thread")]
async fn funded_job_runs_for_its_buyer_works() {
    let mut s = serve(|_| {}).await;
    let id = job_id("access-funded");
    let spec = shell_job(id, "echo hi > \"$SIGIL_OUTPUT_DIR/out\"");
    s.chain.fund(&spec, key_of(&buyer()));
    let r = s
        .jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    let st = wait_final(&mut s.jobs, id).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    let file = v1::OutputKind::File;
    let out = |auth| v1::GetOutputRequest {
        job_id: id.to_vec(),
        kind: file as i32,
        path: "out".into(),
        offset: 0,
        auth,
    };
    let mut stream = s
        .jobs
        .get_output(out(Some(output_auth(&buyer(), &id, file, 0, "out"))))
        .await
        .unwrap()
        .into_inner();
    let chunk = stream.message().await.unwrap().unwrap();
    assert_eq!(chunk.data, b"hi\n");
    // Another key is refused; so is the operator token (not configured to read outputs).
    let stranger = SigningKey::from_bytes(&[0x66; 32]);
    let e = s
        .jobs
        .get_output(out(Some(output_auth(&stranger, &id, file, 0, "out"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = s.jobs.get_output(with_token(out(None))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // The token reads status and receipts.
    s.jobs
        .get_receipt(with_token(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: None,
        }))
        .await
        .unwrap();
    let e = s
        .jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&stranger, sigil_proto::RECEIPT_DOMAIN, &id)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

/// Regression test for issue 19: the operator token reads buyers' outputs only when the
/// configuration says so.
#[tokio::test(flavor = "multi_thread")]
async fn operator_reads_outputs_when_configured_works() {
    let mut s = serve(|c| c.access.operator_reads_outputs = true).await;
    let id = job_id("access-operator-reads");
    let spec = shell_job(id, "echo op > \"$SIGIL_OUTPUT_DIR/out\"");
    s.chain.fund(&spec, key_of(&buyer()));
    s.jobs.submit(signed(&buyer(), &spec)).await.unwrap();
    wait_final(&mut s.jobs, id).await;
    let mut stream = s
        .jobs
        .get_output(with_token(v1::GetOutputRequest {
            job_id: id.to_vec(),
            kind: v1::OutputKind::File as i32,
            path: "out".into(),
            offset: 0,
            auth: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().data, b"op\n");
}

/// Regression test for issue 19: a stranger cannot squat a funded job's id with another spec
/// (nor with the funded spec under his own key); the buyer then submits normally.
#[tokio::test(flavor = "multi_thread")]
async fn squatting_rejects() {
    let mut s = serve(|_| {}).await;
    let id = job_id("access-squat");
    let spec = shell_job(id, "true");
    s.chain.fund(&spec, key_of(&buyer()));
    let stranger = SigningKey::from_bytes(&[0x55; 32]);
    let other = shell_job(id, "echo mine");
    let e = s.jobs.submit(signed(&stranger, &other)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("another spec"), "{}", e.message());
    let e = s.jobs.submit(signed(&stranger, &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Nothing was stored: the buyer's submission creates the job.
    assert!(s.engine.store().get(&id).unwrap().is_none());
    let r = s
        .jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    // A repeat is idempotent.
    let r = s
        .jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.created);
}

/// Regression test for issue 19: a spec naming its buyer key may be funded by another account
/// (an sr25519 one); only that key submits and reads.
#[tokio::test(flavor = "multi_thread")]
async fn spec_named_buyer_works() {
    let mut s = serve(|_| {}).await;
    let id = job_id("access-named-buyer");
    let mut spec = shell_job(id, "true");
    spec.buyer = key_of(&buyer()).to_vec();
    s.chain.fund(&spec, [0x11; 32]);
    let stranger = SigningKey::from_bytes(&[0x44; 32]);
    let e = s.jobs.submit(signed(&stranger, &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        s.jobs
            .submit(signed(&buyer(), &spec))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    wait_final(&mut s.jobs, id).await;
}

/// Regression test for issue 19: with a chain, an unfunded job, one bound elsewhere, or one
/// whose escrow closed, is refused before anything is stored; a chain that cannot be read is
/// `UNAVAILABLE`.
#[tokio::test(flavor = "multi_thread")]
async fn unfunded_rejects() {
    let mut s = serve(|_| {}).await;
    let id = job_id("access-unfunded");
    let spec = shell_job(id, "true");
    let e = s.jobs.submit(signed(&buyer(), &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("not funded"), "{}", e.message());
    // The token does not bypass the chain either.
    let e = s
        .jobs
        .submit(with_token(signed(&buyer(), &spec)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    s.chain.fund(&spec, key_of(&buyer()));
    s.chain
        .jobs
        .lock()
        .unwrap()
        .get_mut(&id)
        .unwrap()
        .bound_here = false;
    let e = s.jobs.submit(signed(&buyer(), &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("not bound"), "{}", e.message());
    s.chain
        .jobs
        .lock()
        .unwrap()
        .get_mut(&id)
        .unwrap()
        .bound_here = true;
    s.chain.jobs.lock().unwrap().get_mut(&id).unwrap().open = false;
    let e = s.jobs.submit(signed(&buyer(), &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    *s.chain.down.lock().unwrap() = true;
    let e = s.jobs.submit(signed(&buyer(), &spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(s.engine.store().get(&id).unwrap().is_none());
}

/// Regression test for issue 19: where off-chain jobs are allowed, the operator's allow list
/// (and the token) submit them; other keys are refused.
#[tokio::test(flavor = "multi_thread")]
async fn off_chain_allow_list_works() {
    let listed = SigningKey::from_bytes(&[0x33; 32]);
    let mut s = serve(|c| {
        c.access.allow_off_chain = true;
        c.auth.buyer_keys = vec![hex::encode(key_of(&listed))];
    })
    .await;
    let e = s
        .jobs
        .submit(signed(&buyer(), &shell_job(job_id("off-a"), "true")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let id = job_id("off-b");
    assert!(
        s.jobs
            .submit(signed(&listed, &shell_job(id, "true")))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    let t = v1::SubmitRequest {
        spec: shell_job(job_id("off-c"), "true").encode_to_vec(),
        signature: None,
        sealed_secrets: Vec::new(),
    };
    assert!(
        s.jobs
            .submit(with_token(t))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    // The listed buyer reads its own job's status.
    s.jobs
        .get_job(v1::GetJobRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&listed, sigil_proto::STATUS_DOMAIN, &id)),
        })
        .await
        .unwrap();
}

/// Regression test for issue 19: funding checks in flight are bounded, so submissions cannot
/// flood the chain node; the refusal carries a retry hint.
#[tokio::test(flavor = "multi_thread")]
async fn chain_lookups_are_bounded_rejects() {
    let s = serve(|c| c.api.max_chain_lookups = 1).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *s.chain.gate.lock().unwrap() = Some(Arc::clone(&gate));
    let mut first = s.jobs.clone();
    let slow = tokio::spawn(async move {
        first
            .submit(signed(&buyer(), &shell_job(job_id("lookup-a"), "true")))
            .await
    });
    while *s.chain.asked.lock().unwrap() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut second = s.jobs.clone();
    let e = second
        .submit(signed(&buyer(), &shell_job(job_id("lookup-b"), "true")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.metadata().get("retry-after-ms").is_some());
    gate.add_permits(1);
    let e = slow.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "not funded: {e:?}");
}
