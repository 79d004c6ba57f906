//! The buyer's side of a provider's `sigil-agent`: job specs, signed submission, waiting,
//! receipts and outputs over gRPC (`sigil.v1`). The `sigil job ...` commands are built on it.
//!
//! A market job has two halves: the escrow on chain (`sigil_chain_client::ChainClient::fund_job`)
//! commits to `sha256(spec bytes)`, and the same spec bytes, signed by the buyer, go to the bound
//! provider's agent, whose receipt then carries that hash. [`JobRequest::encode`] produces those
//! bytes once; both halves use them unchanged.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use attestation_verifier::crypto::DefaultCrypto;
use attestation_verifier::merkle::{self, InclusionProof};
use attestation_verifier::receipt::{ReceiptBody, SignedReceipt};
use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use sha2_010::{Digest, Sha256};
use sigil_proto::v1;
use sigil_proto::v1::attestation_service_client::AttestationServiceClient;
use sigil_proto::v1::job_service_client::JobServiceClient;
use sigil_proto::v1::provider_service_client::ProviderServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Why talking to an agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent's evidence did not verify under the buyer's policy: nothing was sent.
    #[error("the agent's evidence failed verification, nothing was sent: {}", .0.join("; "))]
    NotVerified(Vec<String>),
    /// The agent URL or TLS settings are unusable.
    #[error("agent endpoint {url}: {detail}")]
    Endpoint {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The agent could not be reached.
    #[error("cannot reach the agent at {url}: {detail}")]
    Connect {
        /// The URL given.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// The agent answered a call with an error status.
    #[error("agent refused {call}: {code:?}: {message}")]
    Status {
        /// The RPC.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The agent's message.
        message: String,
    },
    /// The agent's answer is malformed or inconsistent.
    #[error("agent answer to {call} is invalid: {detail}")]
    BadAnswer {
        /// The RPC.
        call: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A job request is invalid.
    #[error("invalid job request: {0}")]
    BadRequest(String),
    /// A downloaded output does not match the receipt's result commitment.
    #[error("output {path} is not the one the receipt commits to: {detail}")]
    OutputMismatch {
        /// The output's path.
        path: String,
        /// Why.
        detail: String,
    },
    /// The job ended without succeeding, or the wait timed out.
    #[error("job {job_id}: {detail}")]
    Job {
        /// The job (hex).
        job_id: String,
        /// What happened.
        detail: String,
    },
}

impl AgentError {
    fn status(call: &'static str, s: tonic::Status) -> Self {
        Self::Status {
            call,
            code: s.code(),
            message: s.message().to_owned(),
        }
    }

    fn bad(call: &'static str, detail: impl Into<String>) -> Self {
        Self::BadAnswer {
            call,
            detail: detail.into(),
        }
    }
}

/// How a receipt is bound to evidence, as the buyer asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvidenceMode {
    /// The agent's default for the tier.
    #[default]
    Default,
    /// No evidence (tiers 1 and 2).
    None,
    /// The agent key's evidence, referenced by digest.
    AttestedKey,
    /// Evidence bound to this receipt.
    FreshQuote,
}

impl EvidenceMode {
    const fn proto(self) -> v1::EvidenceMode {
        match self {
            Self::Default => v1::EvidenceMode::Unspecified,
            Self::None => v1::EvidenceMode::None,
            Self::AttestedKey => v1::EvidenceMode::AttestedKey,
            Self::FreshQuote => v1::EvidenceMode::FreshQuote,
        }
    }
}

/// A job to run on an agent: a process (`argv`) or a container image pinned by digest.
#[derive(Clone, Debug, Default)]
pub struct JobRequest {
    /// 32 bytes chosen by the buyer: the chain's job id and the agent's idempotency key.
    pub job_id: [u8; 32],
    /// Settlement tier (1, 2 or 3).
    pub tier: u8,
    /// Program and arguments of a process workload (empty for a container).
    pub argv: Vec<String>,
    /// `name@sha256:<digest>` of a container workload (`argv` are then its arguments).
    pub image: Option<String>,
    /// Environment of the workload.
    pub env: Vec<(String, String)>,
    /// Input files: path inside the input directory, content.
    pub inputs: Vec<(String, Vec<u8>)>,
    /// Wall-clock limit (0: the agent's default).
    pub wall_time_ms: u64,
    /// Address-space limit (0: the agent's default).
    pub memory_bytes: u64,
    /// Evidence mode of the receipt.
    pub evidence_mode: EvidenceMode,
    /// GPUs to assign.
    pub gpu_count: u32,
    /// The only agent key that may run the job, if set.
    pub provider_key: Option<[u8; 32]>,
    /// The agent refuses the spec after this time (ms since the epoch; 0: never).
    pub not_after_ms: u64,
    /// The buyer's ed25519 key, named in the spec (`JobSpec.buyer`): only it may submit the
    /// job and read it. Needed for a job funded by an account that is not this ed25519 key
    /// (an sr25519 account): funding the spec's hash vouches for the key.
    pub buyer: Option<[u8; 32]>,
    /// Secrets the spec names by commitment only ([`Secret::reference`]); their values go to
    /// the agent sealed, at submission ([`AgentClient::submit_sealed`]).
    pub secrets: Vec<SecretRef>,
    /// The buyer's X25519 key the agent seals every output and log to, if any.
    pub output_recipient: Option<[u8; 32]>,
}

/// Where a secret goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A file in the job's input directory.
    InputFile,
    /// An environment variable of the workload.
    Env,
}

impl SecretKind {
    fn proto(self) -> v1::SecretKind {
        match self {
            Self::InputFile => v1::SecretKind::InputFile,
            Self::Env => v1::SecretKind::Env,
        }
    }
}

/// A secret as the spec names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// File or variable.
    pub kind: SecretKind,
    /// Input path or variable name.
    pub name: String,
    /// `SHA-256("sigil.secret.v1\0" || salt || value)`.
    pub commitment: [u8; 32],
}

/// A secret value held by the buyer until it is sealed to a verified agent. The salt is
/// derived from the buyer's key, the job and the name ([`Secret::new`]), so the same
/// inputs give the same commitment at `sigil job new` and at `sigil job submit` without the
/// salt being stored anywhere.
pub struct Secret {
    /// File or variable.
    pub kind: SecretKind,
    /// Input path or variable name.
    pub name: String,
    salt: [u8; 32],
    value: sigil_sealing::zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Domain of a secret's salt derivation from the buyer's key.
pub const SECRET_SALT_DOMAIN: &[u8] = b"sigil.secret-salt.v1\0";

impl Secret {
    /// A secret of job `job_id`, its salt derived from the buyer's 32-byte secret seed:
    /// `SHA-256("sigil.secret-salt.v1\0" || seed || job_id || kind || name)`.
    pub fn new(
        buyer_seed: &[u8; 32],
        job_id: &[u8; 32],
        kind: SecretKind,
        name: &str,
        value: Vec<u8>,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(SECRET_SALT_DOMAIN);
        h.update(buyer_seed);
        h.update(job_id);
        h.update([kind.proto() as u8]);
        h.update(name.as_bytes());
        Self {
            kind,
            name: name.to_owned(),
            salt: h.finalize().into(),
            value: sigil_sealing::zeroize::Zeroizing::new(value),
        }
    }

    /// How the spec names it.
    pub fn reference(&self) -> SecretRef {
        SecretRef {
            kind: self.kind,
            name: self.name.clone(),
            commitment: sigil_sealing::secret_commitment(&self.salt, &self.value),
        }
    }

    /// Sealed to `agent_sealing_key` for job `job_id`.
    pub fn seal(
        &self,
        agent_sealing_key: &[u8; 32],
        job_id: &[u8; 32],
    ) -> Result<v1::SealedSecret, AgentError> {
        let purpose = match self.kind {
            SecretKind::InputFile => sigil_sealing::Purpose::InputFile {
                job_id,
                path: &self.name,
            },
            SecretKind::Env => sigil_sealing::Purpose::Env {
                job_id,
                name: &self.name,
            },
        };
        let s = sigil_sealing::seal_secret(agent_sealing_key, &purpose, &self.salt, &self.value)
            .map_err(|e| AgentError::BadRequest(format!("sealing {:?}: {e}", self.name)))?;
        Ok(v1::SealedSecret {
            kind: self.kind.proto().into(),
            name: self.name.clone(),
            enc: s.sealed.enc.to_vec(),
            ciphertext: s.sealed.ciphertext,
        })
    }
}

/// An agent whose fresh evidence verified under the buyer's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAgent {
    /// Its ed25519 receipt-signing key.
    pub agent_key: [u8; 32],
    /// Its X25519 sealing key, bound by the evidence (binding v2).
    pub sealing_key: [u8; 32],
    /// The evidence's digest.
    pub evidence_digest: [u8; 32],
    /// What the evidence says, as `sigil-verify` prints it.
    pub claims: serde_json::Value,
}

/// Checks an agent's answer to the challenge `nonce` (see [`AgentClient::verify_agent`]).
pub fn verify_challenge(
    bundle: &[u8],
    nonce: &[u8; 32],
    policy: &attestation_verifier::policy::Policy,
    expected_keys: &[[u8; 32]],
    now: attestation_verifier::time::UnixTime,
) -> Result<VerifiedAgent, AgentError> {
    let mut verifier = Verifier::new(DefaultCrypto::default())
        .map_err(|e| AgentError::NotVerified(vec![format!("pinned roots: {e}")]))?;
    verify_challenge_with(&mut verifier, bundle, nonce, policy, expected_keys, now)
}

/// [`verify_challenge`] with a verifier kept across calls (its caches warm).
pub fn verify_challenge_with(
    verifier: &mut attestation_verifier::ReceiptVerifier<DefaultCrypto>,
    bundle: &[u8],
    nonce: &[u8; 32],
    policy: &attestation_verifier::policy::Policy,
    expected_keys: &[[u8; 32]],
    now: attestation_verifier::time::UnixTime,
) -> Result<VerifiedAgent, AgentError> {
    let outcome =
        attestation_verifier::check_bundle(verifier, bundle, None, Some(nonce), policy, now);
    let mut reasons = outcome.reasons.clone();
    let parsed = attestation_verifier::bundle::EvidenceBundle::from_bytes(bundle).ok();
    if let Some(b) = &parsed {
        if !expected_keys.is_empty() && !expected_keys.contains(&b.agent_key) {
            reasons.push(format!(
                "the agent's key 0x{} is not the key of a provider the chain bound to this job",
                hex::encode(b.agent_key)
            ));
        }
        if b.sealing_key.is_none() {
            reasons.push("the evidence binds no sealing key (bundle version before 4)".into());
        }
    }
    match (parsed, reasons.is_empty()) {
        (Some(b), true) => Ok(VerifiedAgent {
            agent_key: b.agent_key,
            sealing_key: b.sealing_key.unwrap_or_default(),
            evidence_digest: b.digest(&DefaultCrypto::default()),
            claims: serde_json::to_value(&outcome.claims).unwrap_or_default(),
        }),
        (None, true) => Err(AgentError::NotVerified(vec![
            "the evidence bundle does not decode".into(),
        ])),
        (_, false) => Err(AgentError::NotVerified(reasons)),
    }
}

/// The canonical bytes of a job spec and their hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSpec {
    /// The job id.
    pub job_id: [u8; 32],
    /// Protobuf bytes of the `JobSpec`, exactly as signed and submitted.
    pub bytes: Vec<u8>,
    /// `sha256(bytes)`: the chain's `spec_hash` and the receipt's `job_spec_hash`.
    pub spec_hash: [u8; 32],
}

impl EncodedSpec {
    /// Wraps spec bytes read back from a file, checking they decode as a job spec.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AgentError> {
        let spec = v1::JobSpec::decode(bytes.as_slice())
            .map_err(|e| AgentError::BadRequest(format!("spec does not decode: {e}")))?;
        let job_id: [u8; 32] = spec
            .job_id
            .as_slice()
            .try_into()
            .map_err(|_| AgentError::BadRequest("spec job_id is not 32 bytes".into()))?;
        let spec_hash = sha256(&bytes);
        Ok(Self {
            job_id,
            bytes,
            spec_hash,
        })
    }

    /// The spec's tier (0 when the bytes do not decode; [`EncodedSpec::from_bytes`]
    /// checked they do).
    pub fn tier(&self) -> u32 {
        v1::JobSpec::decode(self.bytes.as_slice()).map_or(0, |s| s.tier)
    }

    /// The secrets the spec names (kinds the API does not define are left out).
    pub fn secrets(&self) -> Vec<SecretRef> {
        let Ok(spec) = v1::JobSpec::decode(self.bytes.as_slice()) else {
            return Vec::new();
        };
        spec.secrets
            .iter()
            .filter_map(|r| {
                let kind = match v1::SecretKind::try_from(r.kind).ok()? {
                    v1::SecretKind::InputFile => SecretKind::InputFile,
                    v1::SecretKind::Env => SecretKind::Env,
                    v1::SecretKind::Unspecified => return None,
                };
                Some(SecretRef {
                    kind,
                    name: r.name.clone(),
                    commitment: r.commitment.as_slice().try_into().ok()?,
                })
            })
            .collect()
    }
}

impl JobRequest {
    /// Checks the request and encodes its `JobSpec`.
    pub fn encode(&self) -> Result<EncodedSpec, AgentError> {
        if !(1..=3).contains(&self.tier) {
            return Err(AgentError::BadRequest(format!(
                "tier {} is not 1, 2 or 3",
                self.tier
            )));
        }
        let env = self.env.iter().cloned().collect();
        let workload = match &self.image {
            Some(image) => v1::job_spec::Workload::Container(v1::ContainerWorkload {
                image: image.clone(),
                args: self.argv.clone(),
                env,
            }),
            None if self.argv.is_empty() => {
                return Err(AgentError::BadRequest(
                    "a process job needs a program (argv)".into(),
                ));
            }
            None => v1::job_spec::Workload::Process(v1::ProcessWorkload {
                argv: self.argv.clone(),
                env,
            }),
        };
        let spec = v1::JobSpec {
            job_id: self.job_id.to_vec(),
            tier: u32::from(self.tier),
            workload: Some(workload),
            inputs: self
                .inputs
                .iter()
                .map(|(path, content)| v1::InputFile {
                    path: path.clone(),
                    content: content.clone(),
                })
                .collect(),
            limits: Some(v1::Limits {
                wall_time_ms: self.wall_time_ms,
                memory_bytes: self.memory_bytes,
                ..Default::default()
            }),
            evidence_mode: self.evidence_mode.proto().into(),
            gpu_count: self.gpu_count,
            on_restart: v1::RestartPolicy::Unspecified.into(),
            provider: self.provider_key.map(|k| k.to_vec()).unwrap_or_default(),
            not_after_ms: self.not_after_ms,
            buyer: self.buyer.map(|k| k.to_vec()).unwrap_or_default(),
            secrets: self
                .secrets
                .iter()
                .map(|r| v1::SecretRef {
                    kind: r.kind.proto().into(),
                    name: r.name.clone(),
                    commitment: r.commitment.to_vec(),
                })
                .collect(),
            output_recipient: self
                .output_recipient
                .map(|k| k.to_vec())
                .unwrap_or_default(),
        };
        let bytes = spec.encode_to_vec();
        Ok(EncodedSpec {
            job_id: self.job_id,
            spec_hash: sha256(&bytes),
            bytes,
        })
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A job's state as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JobView {
    /// The job id (hex).
    pub job_id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: &'static str,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Exit code of the workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Wall time in ms.
    pub wall_ms: u64,
    /// CPU time in ms.
    pub cpu_ms: u64,
    /// The outputs: path, size, SHA-256 (hex).
    pub outputs: Vec<(String, u64, String)>,
    /// Whether a receipt is available.
    pub has_receipt: bool,
    /// `sha256(spec)` (hex).
    pub job_spec_hash: String,
}

impl JobView {
    fn from_proto(s: &v1::JobStatus) -> Self {
        let state = match v1::JobState::try_from(s.state) {
            Ok(v1::JobState::Queued) => "queued",
            Ok(v1::JobState::Running) => "running",
            Ok(v1::JobState::Succeeded) => "succeeded",
            Ok(v1::JobState::Failed) => "failed",
            Ok(v1::JobState::Cancelled) => "cancelled",
            _ => "unknown",
        };
        let usage = s.usage.unwrap_or_default();
        Self {
            job_id: hex::encode(&s.job_id),
            state,
            reason: s.reason.clone(),
            exit_code: s.exit_code,
            wall_ms: usage.wall_ms,
            cpu_ms: usage.cpu_ms,
            outputs: s
                .outputs
                .iter()
                .map(|o| (o.path.clone(), o.size, hex::encode(&o.sha256)))
                .collect(),
            has_receipt: s.has_receipt,
            job_spec_hash: hex::encode(&s.job_spec_hash),
        }
    }

    /// Whether the job has ended.
    pub fn is_final(&self) -> bool {
        matches!(self.state, "succeeded" | "failed" | "cancelled")
    }
}

/// A receipt and the evidence bundle it references, as fetched from the agent.
#[derive(Clone, Debug)]
pub struct FetchedReceipt {
    /// `SCALE(SignedReceipt)`: what `sigil-verify receipt` and the chain take.
    pub signed_receipt: Vec<u8>,
    /// `SCALE(EvidenceBundle)` (empty without evidence).
    pub evidence_bundle: Vec<u8>,
    /// The decoded, signature-checked body.
    pub body: ReceiptBody,
}

/// A gRPC connection to one agent.
#[derive(Clone)]
pub struct AgentClient {
    url: String,
    channel: Channel,
    /// The buyer key that signs status and receipt requests, if set.
    reader: Option<SigningKey>,
    /// The verifier of agents' evidence, its pinned roots parsed once and its caches kept
    /// across verifications (shared by clones).
    verifier: std::sync::Arc<std::sync::Mutex<Option<Verifier>>>,
    /// With [`AgentClient::connect_attested`]: the ed25519 key the TLS server proved it holds.
    tls_key: Option<std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>>,
}

type Verifier = attestation_verifier::ReceiptVerifier<DefaultCrypto>;

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("url", &self.url)
            .field(
                "reader",
                &self
                    .reader
                    .as_ref()
                    .map(|k| hex::encode(k.verifying_key().to_bytes())),
            )
            .finish_non_exhaustive()
    }
}

/// A request signature by `key` over `message(issued_at_ms)`, issued now.
fn request_auth(key: &SigningKey, message: impl FnOnce(u64) -> Vec<u8>) -> v1::RequestAuth {
    let issued_at_ms = now_ms();
    let m = message(issued_at_ms);
    v1::RequestAuth {
        signature: Some(v1::BuyerSignature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&m).to_bytes().to_vec(),
        }),
        issued_at_ms,
    }
}

impl AgentClient {
    /// Connects to `url` (`http://` on loopback, or `https://`; `ca_pem` pins the agent's CA
    /// instead of the system roots).
    pub async fn connect(url: &str, ca_pem: Option<&Path>) -> Result<Self, AgentError> {
        let endpoint_err = |detail: String| AgentError::Endpoint {
            url: url.to_owned(),
            detail,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| endpoint_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(10));
        if url.starts_with("https://") {
            // Other crates in a build may compile rustls's ring backend in as well; with two
            // backends rustls picks none by itself. An already installed provider is kept.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = ca_pem {
                let pem = std::fs::read(ca)
                    .map_err(|e| endpoint_err(format!("CA file {}: {e}", ca.display())))?;
                tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| endpoint_err(e.to_string()))?;
        } else if ca_pem.is_some() {
            return Err(endpoint_err("a CA file needs an https:// URL".into()));
        }
        let channel = endpoint.connect().await.map_err(|e| AgentError::Connect {
            url: url.to_owned(),
            detail: error_chain(&e),
        })?;
        Ok(Self {
            url: url.to_owned(),
            channel,
            reader: None,
            verifier: std::sync::Arc::default(),
            tls_key: None,
        })
    }

    /// Connects over TLS to an agent whose certificate is for its own attested key
    /// (`tls.attested`): the certificate is not checked against any CA (it is self-signed);
    /// the server must prove it holds the certificate's key in the handshake, and the key is
    /// kept so that [`AgentClient::check_channel`] can compare it with the key the agent's
    /// evidence binds. Until that check passed the channel is anyone's.
    pub async fn connect_attested(url: &str) -> Result<Self, AgentError> {
        let endpoint_err = |detail: String| AgentError::Endpoint {
            url: url.to_owned(),
            detail,
        };
        let uri: tonic::codegen::http::Uri =
            url.parse().map_err(|e| endpoint_err(format!("{e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(endpoint_err(
                "an attested channel needs an https:// URL".into(),
            ));
        }
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| endpoint_err(format!("server name {host:?}: {e}")))?;
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let verifier = attested_tls::RecordingVerifier {
            provider: std::sync::Arc::clone(&provider),
            seen: std::sync::Arc::clone(&slot),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| endpoint_err(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        // tonic dials through this connector: plain TCP to the URL's host and port, then TLS.
        let plain = format!("http://{host}:{port}");
        let endpoint = Endpoint::from_shared(plain)
            .map_err(|e| endpoint_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(10));
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
                let (connector, server_name, addr) = (
                    connector.clone(),
                    server_name.clone(),
                    format!("{host}:{port}"),
                );
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let tls = connector.connect(server_name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            }))
            .await
            .map_err(|e| AgentError::Connect {
                url: url.to_owned(),
                detail: error_chain(&e),
            })?;
        Ok(Self {
            url: url.to_owned(),
            channel,
            reader: None,
            verifier: std::sync::Arc::default(),
            tls_key: Some(slot),
        })
    }

    /// Whether the TLS channel ends at `agent`'s verified key: the key the server proved in
    /// the handshake ([`AgentClient::connect_attested`]) must be the signing key the
    /// evidence binds. A client not connected that way has no channel to check.
    pub fn check_channel(&self, agent: &VerifiedAgent) -> Result<(), AgentError> {
        let Some(slot) = &self.tls_key else {
            return Err(AgentError::NotVerified(vec![
                "the channel was not opened as an attested TLS channel".into(),
            ]));
        };
        let seen = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match seen {
            Some(k) if k.as_slice() == agent.agent_key.as_slice() => Ok(()),
            Some(k) => Err(AgentError::NotVerified(vec![format!(
                "the TLS channel ends at key 0x{}, not at the attested agent key 0x{}",
                hex::encode(k),
                hex::encode(agent.agent_key)
            )])),
            None => Err(AgentError::NotVerified(vec![
                "the TLS handshake showed no ed25519 key".into(),
            ])),
        }
    }

    /// Signs status (`job`, `wait`) and receipt requests with the buyer's `key`, as agents
    /// require unless they make status public.
    #[must_use]
    pub fn with_buyer(mut self, key: SigningKey) -> Self {
        self.reader = Some(key);
        self
    }

    /// A signature for a request on `job_id` under `domain`, when a buyer key is set.
    fn read_auth(&self, domain: &[u8], job_id: &[u8; 32]) -> Option<v1::RequestAuth> {
        self.reader
            .as_ref()
            .map(|k| request_auth(k, |at| sigil_proto::request_message(domain, job_id, at)))
    }

    /// The URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the provider offers (`ProviderService.Info`).
    pub async fn info(&self) -> Result<v1::ProviderInfo, AgentError> {
        ProviderServiceClient::new(self.channel.clone())
            .info(v1::InfoRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| AgentError::status("Info", s))
    }

    /// Evidence bound to `nonce` and the agent key (`AttestationService.Challenge`).
    pub async fn challenge(&self, nonce: [u8; 32]) -> Result<v1::ChallengeResponse, AgentError> {
        AttestationServiceClient::new(self.channel.clone())
            .challenge(v1::ChallengeRequest {
                nonce: nonce.to_vec(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| AgentError::status("Challenge", s))
    }

    /// Submits `spec`, signed by the buyer's ed25519 `key`. Idempotent on the job id.
    pub async fn submit(
        &self,
        spec: &EncodedSpec,
        key: &SigningKey,
    ) -> Result<(JobView, bool), AgentError> {
        self.submit_sealed(spec, key, Vec::new()).await
    }

    /// Verify, then send: asks the agent for evidence bound to a fresh random nonce and
    /// checks it with the verifier crate (the code the chain runs) under `policy` at `now`:
    /// signatures to the pinned vendor roots, TCB, measurements, GPUs, the binding of the
    /// agent's keys and of the nonce (a replayed answer fails), and, when `expected_keys`
    /// is not empty, that the agent's signing key is one of them (the providers the chain
    /// bound). Returns the verified keys; a failure lists every failed rule, and nothing is
    /// sent before it.
    pub async fn verify_agent(
        &self,
        policy: &attestation_verifier::policy::Policy,
        expected_keys: &[[u8; 32]],
        now: attestation_verifier::time::UnixTime,
    ) -> Result<VerifiedAgent, AgentError> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce)
            .map_err(|e| AgentError::BadRequest(format!("no randomness: {e}")))?;
        let answer = self.challenge(nonce).await?;
        let mut cached = self
            .verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let verifier = match cached.as_mut() {
            Some(v) => v,
            None => cached.insert(
                Verifier::new(DefaultCrypto::default())
                    .map_err(|e| AgentError::NotVerified(vec![format!("pinned roots: {e}")]))?,
            ),
        };
        verify_challenge_with(
            verifier,
            &answer.evidence_bundle,
            &nonce,
            policy,
            expected_keys,
            now,
        )
    }

    /// Submits `spec` with the values of its secrets sealed to the agent
    /// ([`Secret::seal`]), signed by the buyer's ed25519 `key`. Idempotent on the job id.
    pub async fn submit_sealed(
        &self,
        spec: &EncodedSpec,
        key: &SigningKey,
        sealed_secrets: Vec<v1::SealedSecret>,
    ) -> Result<(JobView, bool), AgentError> {
        let mut h = Sha256::new();
        h.update(sigil_proto::SUBMIT_DOMAIN);
        h.update(&spec.bytes);
        let message: [u8; 32] = h.finalize().into();
        let request = v1::SubmitRequest {
            spec: spec.bytes.clone(),
            signature: Some(v1::BuyerSignature {
                public_key: key.verifying_key().to_bytes().to_vec(),
                signature: key.sign(&message).to_bytes().to_vec(),
            }),
            sealed_secrets,
        };
        let response = JobServiceClient::new(self.channel.clone())
            .submit(request)
            .await
            .map_err(|s| AgentError::status("Submit", s))?
            .into_inner();
        let job = response
            .job
            .ok_or_else(|| AgentError::bad("Submit", "no job status"))?;
        Ok((JobView::from_proto(&job), response.created))
    }

    /// The job's current status.
    pub async fn job(&self, job_id: &[u8; 32]) -> Result<JobView, AgentError> {
        let status = JobServiceClient::new(self.channel.clone())
            .get_job(v1::GetJobRequest {
                job_id: job_id.to_vec(),
                auth: self.read_auth(sigil_proto::STATUS_DOMAIN, job_id),
            })
            .await
            .map_err(|s| AgentError::status("GetJob", s))?
            .into_inner();
        Ok(JobView::from_proto(&status))
    }

    /// Follows the job's events until it ends (or `timeout` passes) and returns its last status.
    pub async fn wait(&self, job_id: &[u8; 32], timeout: Duration) -> Result<JobView, AgentError> {
        let follow = async {
            let mut stream = JobServiceClient::new(self.channel.clone())
                .watch(v1::WatchRequest {
                    job_id: job_id.to_vec(),
                    auth: self.read_auth(sigil_proto::STATUS_DOMAIN, job_id),
                })
                .await
                .map_err(|s| AgentError::status("Watch", s))?
                .into_inner();
            let mut last = None;
            while let Some(event) = stream
                .message()
                .await
                .map_err(|s| AgentError::status("Watch", s))?
            {
                if let Some(status) = event.status {
                    let view = JobView::from_proto(&status);
                    if view.is_final() {
                        return Ok(view);
                    }
                    last = Some(view);
                }
            }
            // The stream ends after a final state; if it ended early, ask once more.
            match last {
                Some(_) | None => self.job(job_id).await,
            }
        };
        tokio::time::timeout(timeout, follow)
            .await
            .map_err(|_| AgentError::Job {
                job_id: hex::encode(job_id),
                detail: format!("did not end within {} s", timeout.as_secs()),
            })?
    }

    /// The job's signed receipt and evidence bundle. The receipt's signature is checked, and its
    /// job id must be `job_id`; whether it is bound to attested evidence is `sigil-verify
    /// receipt`'s (or the chain's) business.
    pub async fn receipt(&self, job_id: &[u8; 32]) -> Result<FetchedReceipt, AgentError> {
        let r = JobServiceClient::new(self.channel.clone())
            .get_receipt(v1::GetReceiptRequest {
                job_id: job_id.to_vec(),
                auth: self.read_auth(sigil_proto::RECEIPT_DOMAIN, job_id),
            })
            .await
            .map_err(|s| AgentError::status("GetReceipt", s))?
            .into_inner();
        let signed = SignedReceipt::decode_bytes(&r.signed_receipt)
            .map_err(|e| AgentError::bad("GetReceipt", format!("receipt: {e}")))?;
        let checked = signed
            .verify(&DefaultCrypto::default())
            .map_err(|e| AgentError::bad("GetReceipt", format!("receipt: {e}")))?;
        let body = checked.body;
        if body.job_id != *job_id {
            return Err(AgentError::bad(
                "GetReceipt",
                "the receipt is for another job",
            ));
        }
        Ok(FetchedReceipt {
            signed_receipt: r.signed_receipt,
            evidence_bundle: r.evidence_bundle,
            body,
        })
    }

    /// Downloads the output `path` of a finished job (signed by the buyer `key` that submitted
    /// it) and checks it against the receipt's result commitment with the inclusion proof the
    /// agent sends, so the file is the one the receipt (and the chain) commits to.
    pub async fn output(
        &self,
        job_id: &[u8; 32],
        path: &str,
        key: &SigningKey,
        receipt: &ReceiptBody,
    ) -> Result<Vec<u8>, AgentError> {
        let kind = i32::from(v1::OutputKind::File);
        // Signed for this file from offset 0 only: the signature opens no other output.
        let auth = request_auth(key, |at| {
            sigil_proto::output_message(job_id, at, kind, 0, path)
        });
        let mut stream = JobServiceClient::new(self.channel.clone())
            .get_output(v1::GetOutputRequest {
                job_id: job_id.to_vec(),
                kind,
                path: path.to_owned(),
                offset: 0,
                auth: Some(auth),
            })
            .await
            .map_err(|s| AgentError::status("GetOutput", s))?
            .into_inner();
        let mut data = Vec::new();
        let mut proof = None;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| AgentError::status("GetOutput", s))?
        {
            if proof.is_none() && !chunk.proof.is_empty() {
                proof = Some(
                    InclusionProof::from_bytes(&chunk.proof)
                        .map_err(|e| AgentError::bad("GetOutput", format!("proof: {e}")))?,
                );
            }
            if chunk.offset != u64::try_from(data.len()).unwrap_or(u64::MAX) {
                return Err(AgentError::bad("GetOutput", "chunks out of order"));
            }
            data.extend_from_slice(&chunk.data);
        }
        let mismatch = |detail: String| AgentError::OutputMismatch {
            path: path.to_owned(),
            detail,
        };
        let proof = proof.ok_or_else(|| mismatch("the agent sent no inclusion proof".into()))?;
        merkle::verify_inclusion(
            &DefaultCrypto::default(),
            &receipt.result_commitment,
            receipt.output_count,
            path.as_bytes(),
            &sha256(&data),
            &proof,
        )
        .map_err(|e| mismatch(e.to_string()))?;
        Ok(data)
    }
}

/// The transport error with its causes (tonic's top-level message alone says "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;

/// A TLS server certificate verifier for agents that serve with their attested key.
mod attested_tls {
    use std::sync::{Arc, Mutex};

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use x509_cert::der::Decode;

    /// Takes the end-entity certificate's key without a CA (the agent's certificate is
    /// self-signed), checks the handshake signature with it (so the server holds the key),
    /// and records the key for the comparison with the verified evidence.
    #[derive(Debug)]
    pub(super) struct RecordingVerifier {
        pub(super) provider: Arc<CryptoProvider>,
        pub(super) seen: Arc<Mutex<Option<Vec<u8>>>>,
    }

    impl ServerCertVerifier for RecordingVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let cert = x509_cert::Certificate::from_der(end_entity.as_ref()).map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
            })?;
            let spki = &cert.tbs_certificate().subject_public_key_info();
            // Ed25519 (RFC 8410) only: the agent's key.
            if spki.algorithm.oid != const_oid::db::rfc8410::ID_ED_25519 {
                return Err(rustls::Error::General(
                    "the agent's certificate is not for an Ed25519 key (its attested key)".into(),
                ));
            }
            let key = spki.subject_public_key.raw_bytes().to_vec();
            *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}
