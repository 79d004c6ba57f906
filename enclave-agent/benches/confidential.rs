//! What "verify, then send" costs a buyer (a bench binary reporting medians and a ratio).
//!
//! Against a real `sigil-agent` (simulated evidence) on loopback, alternating in one process:
//! 1. a plain submission of a job spec (`Submit`, signed);
//! 2. the confidential path of the same job shape with one 1 KiB secret input: a fresh
//!    `Challenge`, the evidence verified under a policy with the verifier crate (its roots
//!    loaded once per verification, as `sigil job submit` does), the secret sealed to the key
//!    the evidence binds, and `Submit` with the sealed value (which the agent opens and
//!    checks against the spec's commitment).
//!
//! ```text
//! cargo bench -p enclave-agent --bench confidential            # 200 rounds
//! ```
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a few rounds only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use ed25519_dalek::SigningKey;
use sigil_agent_client::{AgentClient, EvidenceMode, JobRequest, Secret, SecretKind};

fn job(n: u64, secret: Option<&Secret>) -> sigil_agent_client::EncodedSpec {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    JobRequest {
        job_id: id,
        tier: 3,
        argv: vec!["true".into()],
        image: None,
        env: Vec::new(),
        inputs: Vec::new(),
        wall_time_ms: 10_000,
        memory_bytes: 0,
        evidence_mode: EvidenceMode::AttestedKey,
        gpu_count: 0,
        provider_key: None,
        not_after_ms: 0,
        buyer: None,
        secrets: secret.map(|s| vec![s.reference()]).unwrap_or_default(),
        output_recipient: None,
    }
    .encode()
    .unwrap()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds: u64 = if full { 200 } else { 3 };
    let state = tempfile::tempdir().unwrap();
    let root = nix::unistd::geteuid().is_root();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigil-agent"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_AGENT_STATE_DIR", state.path())
        .env("SIGIL_AGENT_LISTEN", "127.0.0.1:0")
        .env("SIGIL_AGENT_METRICS_LISTEN", "127.0.0.1:0")
        .env("SIGIL_AGENT_EVIDENCE__BACKEND", "simulated")
        .env("SIGIL_AGENT_EVIDENCE__ALLOW_SIMULATED", "true")
        .env("SIGIL_AGENT_GPUS__ENABLED", "false")
        .env("SIGIL_AGENT_LOG__FILTER", "warn")
        // Rate limits off: they would measure the limiter, not the path.
        .env("SIGIL_AGENT_API__MAX_QUEUED_JOBS", "0")
        .env("SIGIL_AGENT_API__PEER_RATE", "0")
        .env("SIGIL_AGENT_API__GLOBAL_RATE", "0")
        .env("SIGIL_AGENT_API__CHALLENGE_RATE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !root {
        cmd.env("SIGIL_AGENT_ISOLATION__MODE", "off")
            .env("SIGIL_AGENT_JOBS__ALLOW_SECRETS_ON_DISK", "true");
    }
    let mut child = cmd.spawn().unwrap();
    let addr_file = state.path().join("grpc.addr");
    let t = Instant::now();
    let addr = loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file) {
            break s.trim().to_owned();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let client = AgentClient::connect(&format!("http://{addr}"), None)
        .await
        .unwrap();
    let buyer = SigningKey::from_bytes(&[42; 32]);
    let policy = Policy::from_toml("allow_simulated = true\n").unwrap();
    let now = || {
        UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
    };
    let secret_value = vec![0x5a; 1024];
    let (mut plain, mut sealed, mut challenge, mut verify) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut verifier = attestation_verifier::ReceiptVerifier::new(
        attestation_verifier::crypto::DefaultCrypto::default(),
    )
    .unwrap();
    for n in 0..rounds {
        let spec = job(2 * n, None);
        let t = Instant::now();
        client.submit(&spec, &buyer).await.unwrap();
        plain.push(t.elapsed());

        let id = job(2 * n + 1, None).job_id;
        let secret = Secret::new(
            &buyer.to_bytes(),
            &id,
            SecretKind::InputFile,
            "k",
            secret_value.clone(),
        );
        let spec = job(2 * n + 1, Some(&secret));
        let t = Instant::now();
        let agent = client.verify_agent(&policy, &[], now()).await.unwrap();
        let s = secret.seal(&agent.sealing_key, &spec.job_id).unwrap();
        client.submit_sealed(&spec, &buyer, vec![s]).await.unwrap();
        sealed.push(t.elapsed());

        // Its parts: the agent's answer to a challenge, and the buyer's check of it.
        let nonce = [n as u8; 32];
        let t = Instant::now();
        let answer = client.challenge(nonce).await.unwrap();
        challenge.push(t.elapsed());
        let t = Instant::now();
        sigil_agent_client::verify_challenge_with(
            &mut verifier,
            &answer.evidence_bundle,
            &nonce,
            &policy,
            &[],
            now(),
        )
        .unwrap();
        verify.push(t.elapsed());
    }
    let (p, s) = (median(&mut plain), median(&mut sealed));
    println!(
        "confidential submit, {rounds} rounds each, alternating, same agent (simulated evidence):"
    );
    println!(
        "  plain submit                         p50 {:>9.3} ms",
        p.as_secs_f64() * 1e3
    );
    println!(
        "  verify + seal 1 KiB + sealed submit  p50 {:>9.3} ms",
        s.as_secs_f64() * 1e3
    );
    println!(
        "  ratio (verify-then-send / plain)     {:.2}",
        s.as_secs_f64() / p.as_secs_f64()
    );
    let (c, v) = (median(&mut challenge), median(&mut verify));
    println!(
        "  of which: Challenge (agent's evidence)   p50 {:>9.3} ms",
        c.as_secs_f64() * 1e3
    );
    println!(
        "            verification (warm verifier)   p50 {:>9.3} ms",
        v.as_secs_f64() * 1e3
    );
    let _ = child.kill();
    let _ = child.wait();
}
