//! Shared helpers of the integration tests: a real `sigil-agent` process on loopback
//! with the simulated evidence source, signed requests, and the `sigil-verify` binary.
// Test helpers may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use sigil_proto::v1::job_service_client::JobServiceClient;
use tonic::transport::Channel;

/// A `sigil-agent` child process.
pub struct Agent {
    pub child: Option<Child>,
    pub state: PathBuf,
    pub addr: SocketAddr,
    pub env: Vec<(String, String)>,
}

/// Whether the tests run as root (isolated jobs need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A state directory that outlives agent restarts.
pub fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sigil-agent-test")
        .tempdir()
        .unwrap()
}

impl Agent {
    /// Starts the agent on `state` with test settings plus `env` overrides.
    pub fn start(state: &Path, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_owned(state, env)
    }

    fn start_owned(state: &Path, env: Vec<(String, String)>) -> Self {
        let addr_file = state.join("grpc.addr");
        let _ = std::fs::remove_file(&addr_file);
        let _ = std::fs::remove_file(state.join("metrics.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join("agent.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigil-agent"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIGIL_AGENT_STATE_DIR", state)
            .env("SIGIL_AGENT_LISTEN", "127.0.0.1:0")
            .env("SIGIL_AGENT_METRICS_LISTEN", "127.0.0.1:0")
            .env("SIGIL_AGENT_EVIDENCE__BACKEND", "simulated")
            .env("SIGIL_AGENT_EVIDENCE__ALLOW_SIMULATED", "true")
            .env("SIGIL_AGENT_GPUS__ENABLED", "false")
            .env("SIGIL_AGENT_LOG__FORMAT", "text")
            .env("SIGIL_AGENT_LOG__FILTER", "info")
            .env("SIGIL_AGENT_JOBS__KILL_GRACE_MS", "300");
        // Isolation needs root (own user ids, cgroups, mount namespaces): said explicitly
        // where the tests run without it, as the agent refuses to start otherwise.
        if !is_root() {
            cmd.env("SIGIL_AGENT_ISOLATION__MODE", "off");
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        let mut agent = Self {
            child: Some(child),
            state: state.to_owned(),
            addr: "127.0.0.1:1".parse().unwrap(),
            env,
        };
        let t = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file) {
                agent.addr = s.trim().parse().unwrap();
                return agent;
            }
            if let Some(st) = agent.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sigil-agent exited with {st} at start; log:\n{}",
                    agent.log()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "agent did not start; log:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same state directory and settings.
    pub fn restart(&mut self) {
        let again = Self::start_owned(&self.state, self.env.clone());
        *self = again;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.join("agent.log")).unwrap_or_default()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        std::fs::read_to_string(self.state.join("metrics.addr"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit.
    pub fn sigterm_and_wait(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "agent did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel().await)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The buyer's key.
pub fn buyer() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

/// A job id from a label.
pub fn job_id(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

/// A tier-3 process job running `sh -c script`.
pub fn shell_job(id: [u8; 32], script: &str) -> v1::JobSpec {
    v1::JobSpec {
        job_id: id.to_vec(),
        tier: 3,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: Default::default(),
        })),
        ..Default::default()
    }
}

/// A submission signed by `key`.
pub fn signed(key: &SigningKey, spec: &v1::JobSpec) -> v1::SubmitRequest {
    let bytes = spec.encode_to_vec();
    let msg: [u8; 32] = {
        let mut h = Sha256::new();
        h.update(sigil_proto::SUBMIT_DOMAIN);
        h.update(&bytes);
        h.finalize().into()
    };
    v1::SubmitRequest {
        spec: bytes,
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&msg).to_bytes().to_vec(),
        }),
        sealed_secrets: Vec::new(),
    }
}

/// A `RequestAuth` for `domain` on `id`.
pub fn request_auth(key: &SigningKey, domain: &[u8], id: &[u8; 32]) -> v1::RequestAuth {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut m = domain.to_vec();
    m.extend_from_slice(id);
    m.extend_from_slice(&at.to_le_bytes());
    v1::RequestAuth {
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&m).to_bytes().to_vec(),
        }),
        issued_at_ms: at,
    }
}

/// A `RequestAuth` for one output stream of `id`: `kind`, `offset` and `path`.
pub fn output_auth(
    key: &SigningKey,
    id: &[u8; 32],
    kind: v1::OutputKind,
    offset: u64,
    path: &str,
) -> v1::RequestAuth {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let m = sigil_proto::output_message(id, at, kind as i32, offset, path);
    v1::RequestAuth {
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&m).to_bytes().to_vec(),
        }),
        issued_at_ms: at,
    }
}

/// Watches a job until `pred` holds for its status (or it ends), bounded by 120 s.
pub async fn wait_for(
    client: &mut JobServiceClient<Channel>,
    id: [u8; 32],
    pred: impl Fn(&v1::JobStatus) -> bool,
) -> v1::JobStatus {
    let fut = async {
        let mut stream = client
            .watch(v1::WatchRequest {
                job_id: id.to_vec(),
                auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &id)),
            })
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(ev) = stream.message().await.unwrap() {
            let st = ev.status.unwrap();
            if pred(&st) {
                return st;
            }
            last = Some(st);
        }
        last.unwrap()
    };
    tokio::time::timeout(Duration::from_secs(120), fut)
        .await
        .expect("job did not reach the state in time")
}

/// Waits until the job has ended.
pub async fn wait_final(client: &mut JobServiceClient<Channel>, id: [u8; 32]) -> v1::JobStatus {
    wait_for(client, id, |s| {
        matches!(
            v1::JobState::try_from(s.state).unwrap(),
            v1::JobState::Succeeded | v1::JobState::Failed | v1::JobState::Cancelled
        )
    })
    .await
}

pub fn state(s: &v1::JobStatus) -> v1::JobState {
    v1::JobState::try_from(s.state).unwrap()
}

/// The `sigil-verify` binary of this workspace (built if the test run did not build it).
pub fn sigil_verify() -> PathBuf {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_sigil-agent"));
    let bin = agent.with_file_name("sigil-verify");
    if bin.exists() {
        return bin;
    }
    // `cargo test -p enclave-agent` alone does not build other packages' binaries.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = agent.parent().unwrap().parent().unwrap().to_owned();
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "attestation-verifier",
        "--bin",
        "sigil-verify",
        "--manifest-path",
    ])
    .arg(&manifest)
    .env("CARGO_TARGET_DIR", &target);
    if agent.parent().unwrap().ends_with("release") {
        cmd.arg("--release");
    }
    let st = cmd.status().unwrap();
    assert!(st.success(), "building sigil-verify failed");
    assert!(bin.exists(), "sigil-verify not at {}", bin.display());
    bin
}

/// Runs `sigil-verify receipt` on files; returns (exit code, stdout).
pub fn verify_receipt(dir: &Path, receipt: &[u8], bundle: &[u8], extra: &[&str]) -> (i32, String) {
    let r = dir.join("receipt.bin");
    let b = dir.join("bundle.bin");
    std::fs::write(&r, receipt).unwrap();
    std::fs::write(&b, bundle).unwrap();
    let now = time_now_rfc3339();
    let out = Command::new(sigil_verify())
        .args(["receipt", "--receipt"])
        .arg(&r)
        .arg("--bundle")
        .arg(&b)
        .args(["--at", &now, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Current time as RFC 3339 (UTC).
pub fn time_now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
