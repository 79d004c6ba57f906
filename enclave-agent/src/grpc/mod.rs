//! The gRPC server: `sigil.v1` services, gRPC health and reflection, TLS and limits.

pub mod api;
pub mod limit;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sigil_proto::v1;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use api::{AttestationApi, JobApi, ProviderApi};

use crate::config::{ApiConfig, TlsConfig};
use crate::engine::Engine;
use limit::{Limiter, Rpc};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A TLS file could not be read.
    #[error("reading {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// tonic refused the TLS configuration, or the transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The attested TLS certificate could not be made.
    #[error("attested TLS: {0}")]
    AttestedTls(String),
    /// Building the reflection service failed.
    #[error("gRPC reflection: {0}")]
    Reflection(String),
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

/// The TLS configuration from `tls.*`, or `None` for plaintext (checked by
/// `Config::load`: only on loopback or with `allow_plaintext`).
pub fn tls_config(tls: &TlsConfig) -> Result<Option<ServerTlsConfig>, ServeError> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return Ok(None);
    };
    let mut server = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &tls.client_ca {
        server = server.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(server))
}

/// What the server needs of the configuration (`listen`, `[tls]`, `jobs.max_request_bytes`).
#[derive(Clone, Debug)]
pub struct ServeSettings {
    /// The configured listen address (for the plaintext warning; the listener is bound).
    pub listen: SocketAddr,
    /// TLS, or plaintext when no certificate is set.
    pub tls: TlsConfig,
    /// Largest `Submit` request, bytes.
    pub max_request_bytes: usize,
    /// `[api]`: rates, streams, timeouts.
    pub api: ApiConfig,
}

/// An interceptor that counts each call against `limits` (by the peer's IP address).
fn limited(
    limits: &Arc<Limiter>,
    rpc: Rpc,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone + use<> {
    let limits = Arc::clone(limits);
    move |req: tonic::Request<()>| {
        limits.admit(req.remote_addr().map(|a| a.ip()), rpc)?;
        Ok(req)
    }
}

/// Serves the agent's gRPC API on `listener` until `shutdown`, then stops accepting and
/// lets in-flight calls finish.
pub async fn serve(
    engine: Arc<Engine>,
    provider: ProviderApi,
    listener: tokio::net::TcpListener,
    settings: &ServeSettings,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let max = settings.max_request_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<v1::job_service_server::JobServiceServer<JobApi>>()
        .await;
    health
        .set_serving::<v1::attestation_service_server::AttestationServiceServer<AttestationApi>>()
        .await;
    health
        .set_serving::<v1::provider_service_server::ProviderServiceServer<ProviderApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let limits = Arc::new(Limiter::new(&settings.api));
    let jobs = InterceptedService::new(
        v1::job_service_server::JobServiceServer::new(JobApi::with_limits(
            Arc::clone(&engine),
            Arc::clone(&limits),
        ))
        .max_decoding_message_size(max),
        limited(&limits, Rpc::Any),
    );
    let attestation = InterceptedService::new(
        v1::attestation_service_server::AttestationServiceServer::new(AttestationApi::new(
            Arc::clone(&engine),
        ))
        .max_decoding_message_size(64 * 1024),
        limited(&limits, Rpc::Challenge),
    );
    let provider = InterceptedService::new(
        v1::provider_service_server::ProviderServiceServer::new(provider)
            .max_decoding_message_size(64 * 1024),
        limited(&limits, Rpc::Any),
    );
    let health_service = InterceptedService::new(health_service, limited(&limits, Rpc::Any));
    let reflection = InterceptedService::new(reflection, limited(&limits, Rpc::Any));

    let streams = settings.api.max_streams_per_connection;
    let mut builder = Server::builder()
        .concurrency_limit_per_connection(usize::try_from(streams).unwrap_or(usize::MAX))
        .max_concurrent_streams(Some(streams))
        .timeout(Duration::from_secs(settings.api.request_timeout_secs))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_nodelay(true);
    if settings.tls.attested {
        let (cert, key) = engine
            .attestor()
            .tls_identity()
            .map_err(|e| ServeError::AttestedTls(e.to_string()))?;
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key.as_bytes()));
        if let Some(ca) = &settings.tls.client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        builder = builder.tls_config(tls)?;
        tracing::info!(key = %hex::encode(engine.attestor().public_key()), "TLS with the agent's attested key (tls.attested)");
    } else if let Some(tls) = tls_config(&settings.tls)? {
        builder = builder.tls_config(tls)?;
    } else if !settings.listen.ip().is_loopback() {
        tracing::warn!(listen = %settings.listen, "serving plaintext gRPC on a non-loopback address (allow_plaintext)");
    }
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, tls = settings.tls.cert.is_some() || settings.tls.attested, "gRPC server listening");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let stop = shutdown.clone();
    let health_on_stop = health.clone();
    builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(jobs)
        .add_service(attestation)
        .add_service(provider)
        .serve_with_incoming_shutdown(incoming, async move {
            stop.cancelled().await;
            health_on_stop
                .set_not_serving::<v1::job_service_server::JobServiceServer<JobApi>>()
                .await;
        })
        .await?;
    Ok(())
}
