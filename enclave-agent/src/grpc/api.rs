//! The `sigil.v1` gRPC services over the [`Engine`].

use std::pin::Pin;
use std::sync::Arc;

use attestation_verifier::receipt::{EvidenceMode, SignedReceipt, TeeKind};
use sigil_proto::v1;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::limit::Limiter;
use super::status::id32;
use crate::config::ApiConfig;
use crate::engine::{Access, AgentError, Engine};
use crate::job::{JobRecord, JobState, LogKind};
use crate::store::CHUNK;
use crate::workload::spec::{MAX_PATH_BYTES, clip};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Converts a stored record to its wire form.
pub fn job_status(r: &JobRecord) -> v1::JobStatus {
    v1::JobStatus {
        job_id: r.job_id.to_vec(),
        state: wire_state(r.state) as i32,
        reason: r.reason.to_string(),
        exit_code: r.exit_code,
        submitted_at_ms: r.submitted_at_ms,
        started_at_ms: r.started_at_ms,
        finished_at_ms: r.finished_at_ms,
        usage: Some(v1::Usage {
            wall_ms: r.usage.wall_ms,
            cpu_ms: r.usage.cpu_ms,
            peak_memory_bytes: r.usage.peak_memory_bytes,
            gpu_ms: r.usage.gpu_ms,
            gpu_energy_mj: r.usage.gpu_energy_mj,
        }),
        outputs: r
            .outputs
            .iter()
            .map(|o| v1::OutputEntry {
                path: o.path.clone(),
                size: o.size,
                sha256: o.sha256.to_vec(),
                index: o.index,
            })
            .collect(),
        has_receipt: r.has_receipt,
        job_spec_hash: r.spec_hash.to_vec(),
        attempts: r.attempts,
    }
}

fn wire_state(s: JobState) -> v1::JobState {
    match s {
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Succeeded => v1::JobState::Succeeded,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
    }
}

/// Wire form of a TEE kind.
pub fn wire_tee(t: TeeKind) -> v1::TeeKind {
    match t {
        TeeKind::None => v1::TeeKind::None,
        TeeKind::SevSnp => v1::TeeKind::SevSnp,
        TeeKind::Tdx => v1::TeeKind::Tdx,
        TeeKind::Simulated => v1::TeeKind::Simulated,
    }
}

fn wire_mode(m: EvidenceMode) -> v1::EvidenceMode {
    match m {
        EvidenceMode::None => v1::EvidenceMode::None,
        EvidenceMode::AttestedKey => v1::EvidenceMode::AttestedKey,
        EvidenceMode::FreshQuote => v1::EvidenceMode::FreshQuote,
    }
}

/// `sigil.v1.JobService`.
#[derive(Clone, Debug)]
pub struct JobApi {
    engine: Arc<Engine>,
    limits: Arc<Limiter>,
}

impl JobApi {
    /// Over `engine`, with the default `[api]` stream limits.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::with_limits(engine, Arc::new(Limiter::new(&ApiConfig::default())))
    }

    /// Over `engine`, holding streams within `limits`.
    pub fn with_limits(engine: Arc<Engine>, limits: Arc<Limiter>) -> Self {
        Self { engine, limits }
    }
}

/// Sends `item` on `tx` unless the client has not taken the previous message for `idle`;
/// false when the stream should end.
async fn send_within<T>(
    tx: &mpsc::Sender<Result<T, Status>>,
    item: Result<T, Status>,
    idle: std::time::Duration,
) -> bool {
    matches!(tokio::time::timeout(idle, tx.send(item)).await, Ok(Ok(())))
}

#[tonic::async_trait]
impl v1::job_service_server::JobService for JobApi {
    async fn submit(
        &self,
        request: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::SubmitResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let (r, created) = self.engine.submit(&md, req).await?;
        Ok(Response::new(v1::SubmitResponse {
            job: Some(job_status(&r)),
            created,
        }))
    }

    async fn get_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::JobStatus>, Status> {
        let (md, _, req) = request.into_parts();
        let id = id32("job_id", &req.job_id)?;
        let r = self.engine.job(&id)?;
        self.engine
            .authorize(&md, Access::Status, &r, req.auth.as_ref())
            .await?;
        Ok(Response::new(job_status(&r)))
    }

    type WatchStream = BoxStream<v1::JobEvent>;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (md, _, req) = request.into_parts();
        let id = id32("job_id", &req.job_id)?;
        let r = self.engine.job(&id)?;
        self.engine
            .authorize(&md, Access::Status, &r, req.auth.as_ref())
            .await?;
        let permit = self.limits.open_stream()?;
        let idle = self.limits.stream_idle();
        // Subscribe before reading, so no change between the two is missed.
        let mut events = self.engine.subscribe();
        let first = self.engine.job(&id)?;
        let (tx, rx) = mpsc::channel(16);
        let engine = Arc::clone(&self.engine);
        let drained = self.engine.drained().clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut last = first.version;
            let mut done = first.state.is_final();
            let send = |r: &JobRecord| v1::JobEvent {
                seq: r.version,
                status: Some(job_status(r)),
            };
            if !send_within(&tx, Ok(send(&first)), idle).await {
                return;
            }
            while !done {
                let next = tokio::select! {
                    () = tx.closed() => return,
                    () = drained.cancelled() => {
                        let _ = tx.send(Err(Status::unavailable("the agent is shutting down"))).await;
                        return;
                    }
                    e = events.recv() => e,
                };
                let rec = match next {
                    Ok(r) if r.job_id == id => Some((*r).clone()),
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(_)) => engine.job(&id).ok(),
                    Err(broadcast::error::RecvError::Closed) => {
                        let _ = tx
                            .send(Err(Status::unavailable("the agent is shutting down")))
                            .await;
                        return;
                    }
                };
                if let Some(r) = rec.filter(|r| r.version > last) {
                    last = r.version;
                    done = r.state.is_final();
                    if !send_within(&tx, Ok(send(&r)), idle).await {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn cancel(
        &self,
        request: Request<v1::CancelRequest>,
    ) -> Result<Response<v1::JobStatus>, Status> {
        let (md, _, req) = request.into_parts();
        let id = id32("job_id", &req.job_id)?;
        let r = self.engine.job(&id)?;
        self.engine
            .authorize(&md, Access::Cancel, &r, req.auth.as_ref())
            .await?;
        let r = self.engine.cancel(&id).await?;
        Ok(Response::new(job_status(&r)))
    }

    type GetOutputStream = BoxStream<v1::OutputChunk>;

    async fn get_output(
        &self,
        request: Request<v1::GetOutputRequest>,
    ) -> Result<Response<Self::GetOutputStream>, Status> {
        let (md, _, req) = request.into_parts();
        let id = id32("job_id", &req.job_id)?;
        let kind = v1::OutputKind::try_from(req.kind).map_err(|_| AgentError::BadField {
            field: "kind",
            reason: format!("{} is not a value of the API", req.kind),
        })?;
        if req.path.len() > MAX_PATH_BYTES {
            return Err(AgentError::BadField {
                field: "path",
                reason: format!("longer than {MAX_PATH_BYTES} bytes"),
            }
            .into());
        }
        let r = self.engine.job(&id)?;
        let access = Access::Output {
            kind: req.kind,
            offset: req.offset,
            path: &req.path,
        };
        self.engine
            .authorize(&md, access, &r, req.auth.as_ref())
            .await?;
        if !r.state.is_final() {
            return Err(AgentError::WrongState {
                job: hex::encode(id),
                state: r.state.name(),
                reason: "outputs are available once the job has ended",
            }
            .into());
        }
        let (source, total, proof, index) = match kind {
            v1::OutputKind::File | v1::OutputKind::Unspecified => {
                let meta = r
                    .outputs
                    .iter()
                    .find(|o| o.path == req.path)
                    .ok_or_else(|| AgentError::NotFound {
                        what: format!("output {:?} of job {}", clip(&req.path), hex::encode(id)),
                    })?;
                let proof = self.engine.output_proof(&r, &meta.path).unwrap_or_default();
                (
                    Source::File(meta.path.clone()),
                    meta.size,
                    proof,
                    meta.index,
                )
            }
            v1::OutputKind::Stdout => {
                let n = self
                    .engine
                    .store()
                    .log_size(&id, LogKind::Stdout)
                    .map_err(AgentError::from)?;
                (Source::Log(LogKind::Stdout), n, Vec::new(), 0)
            }
            v1::OutputKind::Stderr => {
                let n = self
                    .engine
                    .store()
                    .log_size(&id, LogKind::Stderr)
                    .map_err(AgentError::from)?;
                (Source::Log(LogKind::Stderr), n, Vec::new(), 0)
            }
        };
        if req.offset > total {
            return Err(AgentError::BadField {
                field: "offset",
                reason: format!("{} is past the end ({total} bytes)", req.offset),
            }
            .into());
        }
        let permit = self.limits.open_stream()?;
        let idle = self.limits.stream_idle();
        let (tx, rx) = mpsc::channel(4);
        let store = self.engine.store().clone();
        tokio::spawn(async move {
            let _permit = permit;
            let chunk = u64::try_from(CHUNK).unwrap_or(u64::MAX);
            let mut offset = req.offset;
            let mut first = true;
            loop {
                let idx = offset
                    .checked_div(chunk)
                    .and_then(|i| u32::try_from(i).ok())
                    .unwrap_or(u32::MAX);
                let skip = offset
                    .checked_rem(chunk)
                    .and_then(|s| usize::try_from(s).ok())
                    .unwrap_or(0);
                let (store, source) = (store.clone(), source.clone());
                let data = tokio::task::spawn_blocking(move || match &source {
                    Source::File(p) => store.output_chunk(&id, p, idx),
                    Source::Log(k) => store.log_chunk(&id, *k, idx),
                })
                .await;
                let data = match data {
                    Ok(Ok(d)) => d.unwrap_or_default(),
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(AgentError::from(e).into())).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(AgentError::Internal(e.to_string()).into()))
                            .await;
                        return;
                    }
                };
                let part = data.get(skip..).unwrap_or_default().to_vec();
                let len = u64::try_from(part.len()).unwrap_or(0);
                let msg = v1::OutputChunk {
                    offset,
                    data: part,
                    total_size: total,
                    proof: if first { proof.clone() } else { Vec::new() },
                    index,
                };
                first = false;
                if !send_within(&tx, Ok(msg), idle).await {
                    return;
                }
                offset = offset.saturating_add(len);
                if len == 0 || offset >= total {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_receipt(
        &self,
        request: Request<v1::GetReceiptRequest>,
    ) -> Result<Response<v1::ReceiptResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let id = id32("job_id", &req.job_id)?;
        let r = self.engine.job(&id)?;
        self.engine
            .authorize(&md, Access::Receipt, &r, req.auth.as_ref())
            .await?;
        let bytes = self.engine.store().receipt(&id).map_err(AgentError::from)?;
        let Some(bytes) = bytes else {
            return Err(AgentError::WrongState {
                job: hex::encode(id),
                state: r.state.name(),
                reason: if r.state.is_final() {
                    "it ended without a receipt"
                } else {
                    "the receipt is issued when it ends"
                },
            }
            .into());
        };
        let signed = SignedReceipt::decode_bytes(&bytes)
            .map_err(|e| AgentError::Internal(format!("stored receipt: {e}")))?;
        let body = signed
            .body()
            .map_err(|e| AgentError::Internal(format!("stored receipt body: {e}")))?;
        let bundle = match body.evidence.mode {
            EvidenceMode::None => Vec::new(),
            _ => self
                .engine
                .store()
                .bundle(&body.evidence.digest)
                .map_err(AgentError::from)?
                .ok_or_else(|| {
                    AgentError::Internal("evidence bundle of a receipt is missing".into())
                })?,
        };
        let u = body.usage;
        let view = v1::ReceiptView {
            version: u32::from(body.version),
            job_id: body.job_id.to_vec(),
            job_spec_hash: body.job_spec_hash.to_vec(),
            provider: body.provider.to_vec(),
            tier: u32::from(body.tier),
            result_commitment: body.result_commitment.to_vec(),
            output_count: body.output_count,
            started_at_ms: body.started_at_ms,
            finished_at_ms: body.finished_at_ms,
            exit_code: body.exit_code,
            usage: Some(v1::Usage {
                wall_ms: u.wall_ms,
                cpu_ms: u.cpu_ms,
                peak_memory_bytes: u.peak_memory_bytes,
                gpu_ms: u.gpu_ms,
                gpu_energy_mj: u.gpu_energy_mj,
            }),
            evidence_mode: wire_mode(body.evidence.mode) as i32,
            tee: wire_tee(body.evidence.tee) as i32,
            evidence_digest: body.evidence.digest.to_vec(),
        };
        Ok(Response::new(v1::ReceiptResponse {
            signature: signed.signature.to_vec(),
            body: signed.body.clone(),
            signed_receipt: bytes,
            view: Some(view),
            evidence_bundle: bundle,
        }))
    }
}

#[derive(Clone, Debug)]
enum Source {
    File(String),
    Log(LogKind),
}

/// `sigil.v1.AttestationService`.
#[derive(Clone, Debug)]
pub struct AttestationApi {
    engine: Arc<Engine>,
}

impl AttestationApi {
    /// Over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[tonic::async_trait]
impl v1::attestation_service_server::AttestationService for AttestationApi {
    async fn challenge(
        &self,
        request: Request<v1::ChallengeRequest>,
    ) -> Result<Response<v1::ChallengeResponse>, Status> {
        let nonce = id32("nonce", &request.get_ref().nonce)?;
        if !self.engine.capabilities().has_tee {
            return Err(AgentError::NoEvidence.into());
        }
        let (bytes, digest, tee) = self.engine.attest(nonce, "challenge").await?;
        Ok(Response::new(v1::ChallengeResponse {
            evidence_bundle: bytes,
            agent_public_key: self.engine.attestor().public_key().to_vec(),
            tee: wire_tee(tee) as i32,
            evidence_digest: digest.to_vec(),
            sealing_public_key: self.engine.attestor().sealing_public_key().to_vec(),
        }))
    }
}

/// `sigil.v1.ProviderService`.
#[derive(Clone, Debug)]
pub struct ProviderApi {
    engine: Arc<Engine>,
    info: v1::ProviderInfo,
}

impl ProviderApi {
    /// Over `engine`; `gpus` and `measurements` are gathered once at start.
    pub fn new(
        engine: Arc<Engine>,
        gpus: Vec<v1::Gpu>,
        measurement: Vec<u8>,
        measurements: std::collections::HashMap<String, Vec<u8>>,
    ) -> Self {
        let caps = engine.capabilities();
        let mut modes = vec![v1::EvidenceMode::None as i32];
        if caps.has_tee {
            modes.push(v1::EvidenceMode::AttestedKey as i32);
            modes.push(v1::EvidenceMode::FreshQuote as i32);
        }
        let mut workloads = Vec::new();
        if engine.config().jobs.allow_process {
            workloads.push("process".to_owned());
        }
        if caps.containers {
            workloads.push("container".to_owned());
        }
        let info = v1::ProviderInfo {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            tee: wire_tee(engine.attestor().tee()) as i32,
            agent_public_key: caps.agent_key.to_vec(),
            gpus,
            measurement,
            measurements,
            modes,
            workloads,
            evidence_digest: Vec::new(),
            max_request_bytes: u64::try_from(engine.config().jobs.max_request_bytes)
                .unwrap_or(u64::MAX),
            sealing_public_key: engine.attestor().sealing_public_key().to_vec(),
        };
        Self { engine, info }
    }
}

#[tonic::async_trait]
impl v1::provider_service_server::ProviderService for ProviderApi {
    async fn info(
        &self,
        _request: Request<v1::InfoRequest>,
    ) -> Result<Response<v1::ProviderInfo>, Status> {
        let mut info = self.info.clone();
        if let Some(e) = self.engine.current_evidence() {
            info.evidence_digest = e.digest.to_vec();
        }
        Ok(Response::new(info))
    }
}
