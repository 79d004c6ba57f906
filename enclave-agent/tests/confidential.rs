//! Confidential jobs through the real agent (issue 20): the buyer verifies the agent before
//! sending, its secrets reach the workload sealed and never the agent's store or logs, its
//! outputs come back sealed to the buyer, and every tampering stops the buyer before a byte
//! of a secret leaves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // tests

mod common;

use std::time::Duration;

use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use common::{Agent, buyer, is_root, job_id, state_dir};
use sigil_agent_client::{
    AgentClient, AgentError, EvidenceMode, JobRequest, Secret, SecretKind, verify_challenge,
};
use sigil_sealing::SealingKey;

const FILE_SECRET: &[u8] = b"model-key-4f1c9a2e7b3d";
const ENV_SECRET: &str = "api-token-8e2d61c0a5";

fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

fn dev_policy() -> Policy {
    Policy::from_toml("allow_simulated = true\n").unwrap()
}

fn start() -> (tempfile::TempDir, Agent) {
    let dir = state_dir();
    // Without root the job directory cannot be a private tmpfs: the development switch.
    let env: &[(&str, &str)] = if is_root() {
        &[]
    } else {
        &[("SIGIL_AGENT_JOBS__ALLOW_SECRETS_ON_DISK", "true")]
    };
    let agent = Agent::start(dir.path(), env);
    (dir, agent)
}

struct Job {
    id: [u8; 32],
    spec: sigil_agent_client::EncodedSpec,
    secrets: Vec<Secret>,
}

/// A tier-3 process job running `script` under `sh -c`, its secrets named by commitment.
fn tier3_spec(
    id: [u8; 32],
    script: &str,
    inputs: Vec<(String, Vec<u8>)>,
    secrets: &[Secret],
    output_recipient: Option<[u8; 32]>,
) -> sigil_agent_client::EncodedSpec {
    JobRequest {
        job_id: id,
        tier: 3,
        argv: vec!["sh".into(), "-c".into(), script.into()],
        image: None,
        env: Vec::new(),
        inputs,
        wall_time_ms: 60_000,
        memory_bytes: 0,
        evidence_mode: EvidenceMode::AttestedKey,
        gpu_count: 0,
        provider_key: None,
        not_after_ms: 0,
        buyer: Some(buyer().verifying_key().to_bytes()),
        secrets: secrets.iter().map(Secret::reference).collect(),
        output_recipient,
    }
    .encode()
    .unwrap()
}

fn secret_job(label: &str, seal_outputs: bool) -> Job {
    let id = job_id(label);
    let seed = buyer().to_bytes();
    let secrets = vec![
        Secret::new(
            &seed,
            &id,
            SecretKind::InputFile,
            "keys/model.key",
            FILE_SECRET.to_vec(),
        ),
        Secret::new(
            &seed,
            &id,
            SecretKind::Env,
            "API_TOKEN",
            ENV_SECRET.as_bytes().to_vec(),
        ),
    ];
    let script = r#"set -eu
cat "$SIGIL_INPUT_DIR/keys/model.key" > "$SIGIL_OUTPUT_DIR/seen.txt"
printf '|%s' "$API_TOKEN" >> "$SIGIL_OUTPUT_DIR/seen.txt"
mount | grep -c " $(dirname "$SIGIL_INPUT_DIR") " > "$SIGIL_OUTPUT_DIR/mounts.txt" || true
echo "log line with $API_TOKEN""#;
    let spec = tier3_spec(
        id,
        script,
        vec![("plain.txt".into(), b"not secret".to_vec())],
        &secrets,
        seal_outputs.then(|| SealingKey::for_outputs(&seed, &id).public_key()),
    );
    Job { id, spec, secrets }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, read whole.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.extend(std::fs::read(&p).unwrap_or_default()),
                _ => {}
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_job_round_trip_works() {
    let (dir, mut agent) = start();
    let client = AgentClient::connect(&agent.url(), None)
        .await
        .unwrap()
        .with_buyer(buyer());
    // Verify, then send.
    let verified = client
        .verify_agent(&dev_policy(), &[], now())
        .await
        .unwrap();
    let info = client.info().await.unwrap();
    assert_eq!(info.sealing_public_key, verified.sealing_key.to_vec());
    assert_eq!(info.agent_public_key, verified.agent_key.to_vec());
    let job = secret_job("confidential", true);
    let sealed = job
        .secrets
        .iter()
        .map(|s| s.seal(&verified.sealing_key, &job.id))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let (_, created) = client
        .submit_sealed(&job.spec, &buyer(), sealed)
        .await
        .unwrap();
    assert!(created);
    let view = client.wait(&job.id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(view.state, "succeeded", "{view:?}\n{}", agent.log());

    // The output is sealed to the buyer: the agent serves ciphertext that the receipt
    // commits to, and only the buyer's key for this job opens it.
    let receipt = client.receipt(&job.id).await.unwrap();
    let sealed_out = client
        .output(&job.id, "seen.txt", &buyer(), &receipt.body)
        .await
        .unwrap();
    assert!(!contains(&sealed_out, FILE_SECRET));
    let key = SealingKey::for_outputs(&buyer().to_bytes(), &job.id);
    let seen = key
        .open_output(&sealed_out, &job.id, 1, "seen.txt")
        .unwrap();
    let mut want = FILE_SECRET.to_vec();
    want.extend_from_slice(format!("|{ENV_SECRET}").as_bytes());
    assert_eq!(seen.as_slice(), want.as_slice());
    if is_root() {
        // The job directory was a tmpfs of its own.
        let mounts = client
            .output(&job.id, "mounts.txt", &buyer(), &receipt.body)
            .await
            .unwrap();
        let mounts = key.open_output(&mounts, &job.id, 1, "mounts.txt").unwrap();
        assert_ne!(
            mounts.as_slice(),
            b"0\n",
            "no private mount seen by the job"
        );
    }
    // Another buyer key does not open it.
    let stranger = SealingKey::for_outputs(&[9; 32], &job.id);
    assert!(
        stranger
            .open_output(&sealed_out, &job.id, 1, "seen.txt")
            .is_err()
    );

    // Nothing of the secrets in the agent's state directory (store, journal, job
    // directories, which are gone) or its log.
    agent.sigterm_and_wait();
    let state = all_bytes(dir.path());
    for secret in [FILE_SECRET, ENV_SECRET.as_bytes()] {
        assert!(
            !contains(&state, secret),
            "a secret reached the agent's state directory"
        );
    }
    let work = dir.path().join("work").join(hex::encode(job.id));
    assert!(!work.exists(), "the job's private directory was not wiped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_foreign_evidence_rejects() {
    let (_dir, agent) = start();
    let client = AgentClient::connect(&agent.url(), None).await.unwrap();
    let nonce = [5u8; 32];
    let answer = client.challenge(nonce).await.unwrap();
    let bundle = answer.evidence_bundle.clone();
    let policy = dev_policy();
    verify_challenge(&bundle, &nonce, &policy, &[], now()).unwrap();

    let rejected = |bytes: &[u8], nonce: &[u8; 32], policy: &Policy, keys: &[[u8; 32]]| {
        match verify_challenge(bytes, nonce, policy, keys, now()) {
            Err(AgentError::NotVerified(reasons)) => reasons.join("; "),
            other => panic!("accepted: {other:?}"),
        }
    };
    // A replayed answer: evidence bound to another nonce.
    let r = rejected(&bundle, &[6; 32], &policy, &[]);
    assert!(r.contains("nonce"), "{r}");
    // A swapped sealing key (a relay offering its own key): the binding no longer holds.
    let mut b = EvidenceBundle::from_bytes(&bundle).unwrap();
    b.sealing_key = Some(SealingKey::generate().unwrap().public_key());
    let r = rejected(&b.to_bytes(), &nonce, &policy, &[]);
    assert!(r.to_lowercase().contains("report"), "{r}");
    // A tampered binding: the bundle claims no sealing key at all (binding v1).
    let mut b = EvidenceBundle::from_bytes(&bundle).unwrap();
    b.sealing_key = None;
    let r = rejected(&b.to_bytes(), &nonce, &policy, &[]);
    assert!(
        r.contains("sealing key") || r.to_lowercase().contains("report"),
        "{r}"
    );
    // The policy refuses this evidence (no simulator; a pinned measurement it lacks).
    let r = rejected(&bundle, &nonce, &Policy::default(), &[]);
    assert!(r.contains("simulat"), "{r}");
    let pinned = Policy::from_toml(&format!(
        "allow_simulated = true\n[simulated]\nmeasurements = [\"{}\"]\n",
        "00".repeat(48)
    ))
    .unwrap();
    let r = rejected(&bundle, &nonce, &pinned, &[]);
    assert!(r.contains("measurement"), "{r}");
    // Another agent than the one the chain bound.
    let r = rejected(&bundle, &nonce, &policy, &[[7; 32]]);
    assert!(r.contains("not the key of a provider"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_sealed_secret_rejects() {
    let (_dir, agent) = start();
    let client = AgentClient::connect(&agent.url(), None).await.unwrap();
    let verified = client
        .verify_agent(&dev_policy(), &[], now())
        .await
        .unwrap();
    let job = secret_job("confidential-bad", false);
    let refused = |e: AgentError| match e {
        AgentError::Status { code, message, .. } => {
            assert_eq!(code, tonic::Code::InvalidArgument, "{message}");
            message
        }
        other => panic!("{other:?}"),
    };
    // Sealed to another key (the buyer was shown a swapped key).
    let other = SealingKey::generate().unwrap().public_key();
    let sealed: Vec<_> = job
        .secrets
        .iter()
        .map(|s| s.seal(&other, &job.id).unwrap())
        .collect();
    let m = refused(
        client
            .submit_sealed(&job.spec, &buyer(), sealed)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("does not open"), "{m}");
    // One missing.
    let sealed = vec![job.secrets[0].seal(&verified.sealing_key, &job.id).unwrap()];
    let m = refused(
        client
            .submit_sealed(&job.spec, &buyer(), sealed)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("not sent sealed"), "{m}");
    // A value other than the committed one.
    let seed = buyer().to_bytes();
    let liar = Secret::new(
        &seed,
        &job.id,
        SecretKind::InputFile,
        "keys/model.key",
        b"other".to_vec(),
    );
    let sealed = vec![
        liar.seal(&verified.sealing_key, &job.id).unwrap(),
        job.secrets[1].seal(&verified.sealing_key, &job.id).unwrap(),
    ];
    let m = refused(
        client
            .submit_sealed(&job.spec, &buyer(), sealed)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("commitment"), "{m}");
    // Sealed for another job.
    let sealed: Vec<_> = job
        .secrets
        .iter()
        .map(|s| s.seal(&verified.sealing_key, &[1; 32]).unwrap())
        .collect();
    let m = refused(
        client
            .submit_sealed(&job.spec, &buyer(), sealed)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("does not open"), "{m}");
}

/// The key-release pattern of `docs/confidential-jobs.md`: the model travels encrypted as an
/// ordinary input (what the provider stores and could read), its key as a sealed secret; only
/// the workload, inside the verified agent, decrypts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_key_release_works() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no openssl to encrypt the model with");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let model: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let key = b"0f8e7d6c5b4a39281706f5e4d3c2b1a0-model-key";
    std::fs::write(work.path().join("model"), &model).unwrap();
    std::fs::write(work.path().join("key"), key).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["enc", "-aes-256-ctr", "-pbkdf2", "-pass"])
        .arg(format!("file:{}", work.path().join("key").display()))
        .arg("-in")
        .arg(work.path().join("model"))
        .arg("-out")
        .arg(work.path().join("model.enc"))
        .status()
        .unwrap();
    assert!(st.success());
    let encrypted = std::fs::read(work.path().join("model.enc")).unwrap();

    let (dir, mut agent) = start();
    let client = AgentClient::connect(&agent.url(), None)
        .await
        .unwrap()
        .with_buyer(buyer());
    let verified = client
        .verify_agent(&dev_policy(), &[], now())
        .await
        .unwrap();
    let id = job_id("model-release");
    let seed = buyer().to_bytes();
    let secret = Secret::new(
        &seed,
        &id,
        SecretKind::InputFile,
        "keys/model.key",
        key.to_vec(),
    );
    let script = r#"set -eu
openssl enc -d -aes-256-ctr -pbkdf2 -pass "file:$SIGIL_INPUT_DIR/keys/model.key" \
    -in "$SIGIL_INPUT_DIR/model.enc" | sha256sum | cut -d' ' -f1 > "$SIGIL_OUTPUT_DIR/model.sha256""#;
    let spec = tier3_spec(
        id,
        script,
        vec![("model.enc".into(), encrypted)],
        std::slice::from_ref(&secret),
        Some(SealingKey::for_outputs(&seed, &id).public_key()),
    );
    let sealed = vec![secret.seal(&verified.sealing_key, &id).unwrap()];
    client.submit_sealed(&spec, &buyer(), sealed).await.unwrap();
    let view = client.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(view.state, "succeeded", "{view:?}\n{}", agent.log());
    let receipt = client.receipt(&id).await.unwrap();
    let out = client
        .output(&id, "model.sha256", &buyer(), &receipt.body)
        .await
        .unwrap();
    let out = SealingKey::for_outputs(&seed, &id)
        .open_output(&out, &id, 1, "model.sha256")
        .unwrap();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&model))
    };
    assert_eq!(String::from_utf8_lossy(&out).trim(), want);
    agent.sigterm_and_wait();
    let state = all_bytes(dir.path());
    assert!(
        !contains(&state, key),
        "the model key reached the agent's state directory"
    );
    assert!(
        !contains(&state, &model[..4096]),
        "the model in clear reached the agent's state directory"
    );
}

/// `tls.attested`: the agent serves TLS with its own attested key, and a buyer who verified
/// the evidence checks that the channel ends there; an agent behind an ordinary certificate
/// fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_tls_channel_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[("SIGIL_AGENT_TLS__ATTESTED", "true")]);
    let url = format!("https://{}", agent.addr);
    let client = AgentClient::connect_attested(&url).await.unwrap();
    let verified = client
        .verify_agent(&dev_policy(), &[], now())
        .await
        .unwrap();
    client.check_channel(&verified).unwrap();
    // The whole API works over it.
    assert_eq!(
        client.info().await.unwrap().agent_public_key,
        verified.agent_key.to_vec()
    );

    // An agent whose TLS key is another key (a certificate from a file, as a TLS-terminating
    // proxy would hold): its evidence verifies, the channel check does not.
    let other = state_dir();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["proxy".to_owned()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let (cert_file, key_file) = (other.path().join("tls.crt"), other.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, pair.serialize_pem()).unwrap();
    let proxied = Agent::start(
        other.path(),
        &[
            ("SIGIL_AGENT_TLS__CERT", cert_file.to_str().unwrap()),
            ("SIGIL_AGENT_TLS__KEY", key_file.to_str().unwrap()),
        ],
    );
    let client = AgentClient::connect_attested(&format!("https://{}", proxied.addr))
        .await
        .unwrap();
    let verified = client
        .verify_agent(&dev_policy(), &[], now())
        .await
        .unwrap();
    match client.check_channel(&verified) {
        Err(AgentError::NotVerified(r)) => {
            assert!(r[0].contains("not at the attested agent key"), "{r:?}");
        }
        other => panic!("{other:?}"),
    }
    // A plaintext client has no channel to check.
    let plain = AgentClient::connect(&format!("http://{}", agent.addr), None).await;
    assert!(plain.is_err() || plain.unwrap().check_channel(&verified).is_err());
}
