//! Wiring: the one place that reads the whole [`Config`] and builds the agent's parts from
//! it (the last layer of the crate, see the crate documentation). Every other module takes
//! only its own configuration section.
//!
//! Used by the `sigil-agent` binary and by tests that assemble an agent: logging, GPU
//! discovery, the evidence source with its collateral sources, the engine's parts,
//! provider information, the address files and settlement on the chain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::receipt::TeeKind;
use sigil_proto::v1;
use tracing_subscriber::EnvFilter;

use crate::attestor::Attestor;
use crate::collateral::tdx::TdxCollateralSource;
use crate::collateral::vcek::{ImdsVcek, NoVcek, VcekFile, VcekSource};
use crate::config::{ChainConfig, Config, EvidenceConfig};
use crate::engine::{Engine, EngineConfig};
use crate::evidence::EvidenceError;
use crate::evidence::detect::{Backend, DetectOptions};
use crate::grpc::api::ProviderApi;
use crate::keys::AgentKey;
use crate::settle;
use crate::workload::Gpu;
use crate::workload::spec::Evidence;

/// Name of the file in `state_dir` holding the bound gRPC address.
pub const ADDR_FILE: &str = "grpc.addr";
/// Name of the file in `state_dir` holding the bound metrics address.
pub const METRICS_ADDR_FILE: &str = "metrics.addr";

/// Checks and builds the isolation of process jobs (`None` with `isolation.mode = "off"`).
/// Jobs do not see the agent's state directory, its TLS key, token and chain key files,
/// nor the paths of `isolation.hide`.
pub fn isolation(
    cfg: &Config,
) -> Result<
    Option<Arc<crate::workload::isolate::Isolation>>,
    crate::workload::isolate::IsolationError,
> {
    let mut hide = vec![cfg.state_dir.clone()];
    hide.extend(cfg.tls.key.iter().cloned());
    hide.extend(cfg.auth.token_file.iter().cloned());
    if !cfg.chain.account_key_file.as_os_str().is_empty() {
        hide.push(cfg.chain.account_key_file.clone());
    }
    crate::workload::isolate::Isolation::start(&cfg.isolation, &cfg.jobs.path, &cfg.state_dir, hide)
        .map(|i| i.map(Arc::new))
}

/// The engine's sections of the configuration.
pub fn engine_config(cfg: &Config) -> EngineConfig {
    EngineConfig {
        state_dir: cfg.state_dir.clone(),
        jobs: cfg.jobs.clone(),
        container: cfg.container.clone(),
        auth: cfg.auth.clone(),
        // `Config::validate` admits only these two spellings.
        default_evidence: if cfg.evidence.default_mode == "fresh-quote" {
            Evidence::FreshQuote
        } else {
            Evidence::AttestedKey
        },
        // A chain taking tier-3 work accepts only evidence bound to its registration nonces:
        // the settler collects and registers it, so the engine does not replace it on its own.
        evidence_refresh: (!chain_refreshes_evidence(cfg))
            .then(|| Duration::from_secs(cfg.evidence.refresh_secs)),
        access: cfg.access.clone(),
        require_funding: cfg.chain.enabled(),
        max_queued_jobs: cfg.api.max_queued_jobs,
        retry_after_ms: cfg.api.retry_after_ms,
        max_chain_lookups: cfg.api.max_chain_lookups,
    }
}

/// Whether the chain settler owns the attested-key evidence: a chain is configured and tier 3
/// is offered (explicitly, or by default when the agent has evidence).
fn chain_refreshes_evidence(cfg: &Config) -> bool {
    cfg.chain.enabled() && (cfg.chain.tiers.is_empty() || cfg.chain.tiers.contains(&3))
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The filter does not parse.
    #[error("log.filter: {0}")]
    Filter(String),
    /// A global subscriber was already installed.
    #[error("logging already initialised: {0}")]
    Init(String),
}

/// Structured logs to stderr: JSON (default) or text, filtered by `RUST_LOG` or `log.filter`.
/// Nothing secret is logged anywhere: tokens are [`crate::config::Secret`], keys are public.
pub fn init_logging(cfg: &Config) -> Result<(), LogError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::try_new(f),
        _ => EnvFilter::try_new(&cfg.log.filter),
    }
    .map_err(|e| LogError::Filter(e.to_string()))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let r = if cfg.log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    r.map_err(|e| LogError::Init(e.to_string()))
}

/// GPUs found at start.
#[derive(Clone, Default)]
pub struct GpuSetup {
    /// The probe (NVML), when a driver answered.
    pub probe: Option<Arc<dyn gpu_monitor::GpuProbe>>,
    /// GPUs jobs may be given.
    pub assignable: Vec<Gpu>,
    /// Their description for `ProviderService.Info`.
    pub info: Vec<v1::Gpu>,
}

impl std::fmt::Debug for GpuSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSetup")
            .field("probe", &self.probe.is_some())
            .field("assignable", &self.assignable)
            .finish()
    }
}

/// Discovers GPUs through NVML (`gpus.enabled`), keeping `gpus.indices` if set. Without a
/// driver the agent simply has no GPUs.
pub fn gpus(cfg: &Config) -> GpuSetup {
    if !cfg.gpus.enabled {
        return GpuSetup::default();
    }
    let probe: Arc<dyn gpu_monitor::GpuProbe> = match gpu_monitor::NvmlProbe::init() {
        Ok(p) => Arc::new(p),
        Err(e) => {
            tracing::info!(reason = %e, "no NVIDIA GPUs available");
            return GpuSetup::default();
        }
    };
    gpus_from_probe(cfg, probe)
}

/// [`gpus`] over a given probe.
pub fn gpus_from_probe(cfg: &Config, probe: Arc<dyn gpu_monitor::GpuProbe>) -> GpuSetup {
    let inventory = match probe.gpus() {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "listing GPUs failed; running without GPUs");
            return GpuSetup::default();
        }
    };
    let system = probe.system_info().ok();
    let cc = probe.cc_state().ok();
    let mut setup = GpuSetup {
        probe: Some(Arc::clone(&probe)),
        ..GpuSetup::default()
    };
    for g in inventory {
        if !cfg.gpus.indices.is_empty() && !cfg.gpus.indices.contains(&g.index) {
            continue;
        }
        setup.assignable.push(Gpu {
            index: g.index,
            uuid: Some(g.uuid.clone()),
            minor: g.minor_number,
        });
        setup.info.push(v1::Gpu {
            index: g.index,
            uuid: g.uuid,
            name: g.name,
            memory_bytes: g.memory_total_bytes,
            cc_enabled: cc.as_ref().is_some_and(|c| c.cc_enabled),
            driver_version: system
                .as_ref()
                .map(|s| s.driver_version.clone())
                .unwrap_or_default(),
            vbios_version: g.vbios_version.unwrap_or_default(),
        });
    }
    tracing::info!(gpus = setup.assignable.len(), "GPUs available to jobs");
    setup
}

/// Launch measurement (`measurement`) and named measurements from an evidence bundle.
pub fn measurements(bundle: &[u8]) -> (Vec<u8>, HashMap<String, Vec<u8>>) {
    let mut named = HashMap::new();
    let Ok(b) = EvidenceBundle::from_bytes(bundle) else {
        return (Vec::new(), named);
    };
    match &b.cpu {
        CpuEvidence::SevSnp { report, .. } => {
            match attestation_verifier::evidence::snp::parse_snp_report(report) {
                Ok(r) => {
                    named.insert("host_data".into(), r.host_data.to_vec());
                    (r.measurement.to_vec(), named)
                }
                Err(_) => (Vec::new(), named),
            }
        }
        CpuEvidence::Tdx { quote, .. }
        | CpuEvidence::AzureTdxVtpm {
            td_quote: quote, ..
        } => match attestation_verifier::evidence::tdx::parse_tdx_quote(quote) {
            Ok(q) => {
                for (i, r) in q.body.rtmr.iter().enumerate() {
                    named.insert(format!("rtmr{i}"), r.to_vec());
                }
                (q.body.mr_td.to_vec(), named)
            }
            Err(_) => (Vec::new(), named),
        },
        CpuEvidence::AzureSnpVtpm { hcl_report, .. } => {
            match attestation_verifier::evidence::azure_hcl::parse_hcl_report(hcl_report)
                .ok()
                .and_then(|h| {
                    attestation_verifier::evidence::snp::parse_snp_report(&h.snp_report).ok()
                }) {
                Some(r) => {
                    named.insert("host_data".into(), r.host_data.to_vec());
                    (r.measurement.to_vec(), named)
                }
                None => (Vec::new(), named),
            }
        }
        CpuEvidence::Simulated { report } => {
            match attestation_verifier::evidence::simulated::parse_simulated_report(report) {
                Ok(r) => (r.body.measurement.to_vec(), named),
                Err(_) => (Vec::new(), named),
            }
        }
    }
}

/// The `ProviderService` with GPUs and measurements gathered now.
pub fn provider_api(engine: &Arc<Engine>, gpus: &GpuSetup) -> ProviderApi {
    let (m, named) = engine
        .current_evidence()
        .map(|e| measurements(&e.bytes))
        .unwrap_or_default();
    ProviderApi::new(Arc::clone(engine), gpus.info.clone(), m, named)
}

/// Logs the attested start in one line that deployment tooling waits for:
/// `attested tee=<kind> measurement=<hex> key=<hex>` (nothing without evidence).
pub fn log_attested(engine: &Engine) {
    let Some(ev) = engine.current_evidence() else {
        tracing::warn!(key = %hex::encode(engine.attestor().public_key()), "started without hardware evidence (tiers 1 and 2 only)");
        return;
    };
    let (measurement, _) = measurements(&ev.bytes);
    tracing::info!(
        "attested tee={} measurement={} key={} evidence={}",
        ev.bundle.tee,
        hex::encode(measurement),
        hex::encode(engine.attestor().public_key()),
        hex::encode(ev.digest)
    );
}

/// The gRPC server's settings from `cfg`.
pub fn serve_settings(cfg: &Config) -> crate::grpc::ServeSettings {
    crate::grpc::ServeSettings {
        listen: cfg.listen,
        tls: cfg.tls.clone(),
        max_request_bytes: cfg.jobs.max_request_bytes,
        api: cfg.api.clone(),
    }
}

/// Writes a bound address to `state_dir/<name>` (replaced atomically).
pub fn write_addr_file(cfg: &Config, name: &str, addr: SocketAddr) -> std::io::Result<()> {
    let tmp = cfg.state_dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(tmp, cfg.state_dir.join(name))
}

/// The agent key (fresh from the OS RNG), the configured or detected evidence backend and
/// the `[collateral]` sources.
pub fn attestor(
    cfg: &Config,
    probe: Option<Arc<dyn gpu_monitor::GpuProbe>>,
) -> Result<Attestor, EvidenceError> {
    let key = AgentKey::generate().map_err(|e| EvidenceError::Rng(e.to_string()))?;
    attestor_with_key(cfg, key, probe)
}

/// [`attestor`] with a given key: the backend `cfg` names (or the one detected), with the
/// collateral sources of its `[collateral]` table.
pub fn attestor_with_key(
    cfg: &Config,
    key: AgentKey,
    gpu: Option<Arc<dyn gpu_monitor::GpuProbe>>,
) -> Result<Attestor, EvidenceError> {
    let backend: Backend = cfg.evidence.backend.parse()?;
    let mut opts = DetectOptions::new(backend, cfg.evidence.allow_simulated);
    opts.tdx_collateral = crate::collateral::tdx_from_config(&cfg.collateral, &cfg.state_dir)
        .map(|c| c as Arc<dyn TdxCollateralSource>);
    opts.azure_vcek = Some(azure_vcek(
        &cfg.evidence,
        Duration::from_secs(cfg.collateral.timeout_secs),
    ));
    opts.azure_td_quotes = Some(Arc::new(
        crate::evidence::backend::azure_vtpm::ImdsTdQuote::new(
            cfg.evidence.azure_tdquote_url.clone(),
            Duration::from_secs(cfg.collateral.timeout_secs),
        ),
    ));
    opts.snp_vcek = crate::collateral::snp_vcek_from_config(&cfg.collateral, &cfg.state_dir);
    opts.tpm_event_log = cfg.evidence.tpm_event_log_path.clone();
    let a = Attestor::open(key, &opts, gpu, cfg.gpus.indices.clone())?;
    let a = measured_boot(cfg, a)?;
    let a = match crate::collateral::gpu_from_config(&cfg.collateral, &cfg.state_dir) {
        Some(c) if a.has_gpus() => a.with_gpu_collateral(c),
        _ => a,
    };
    Ok(
        match crate::collateral::snp_crl_from_config(&cfg.collateral, &cfg.state_dir) {
            Some(c) if a.tee() == TeeKind::SevSnp => a.with_snp_crl(c),
            _ => a,
        },
    )
}

/// Measured boot on TDX (`evidence.measured_boot`): the firmware event log and the agent's
/// own RTMR3 events in every bundle. `auto` logs what could not be had; `required` refuses
/// to start without it; other TEEs carry none.
fn measured_boot(cfg: &Config, a: Attestor) -> Result<Attestor, EvidenceError> {
    use crate::evidence::measured::{
        MeasurePaths, SelfMeasurement, binary_digest, config_digest, measure_at_start,
    };
    let mode = cfg.evidence.measured_boot.as_str();
    if mode == "off" || a.tee() != TeeKind::Tdx {
        return Ok(a);
    }
    if a.backend() == Some("azure-vtpm") {
        // An Azure TDX VM's TD (its RTMRs, its CCEL) is the paravisor's: the guest's boot
        // is in the vTPM's PCRs and event log, which every bundle carries with its quote.
        tracing::info!(
            "Azure TDX: measured boot through the vTPM (its quote and event log), not RTMR3"
        );
        return Ok(a);
    }
    let unavailable = |reason: String| EvidenceError::Unavailable {
        backend: "measured-boot".into(),
        reason,
    };
    let binary = binary_digest()
        .map_err(|e| unavailable(format!("reading the agent's own executable: {e}")))?;
    let me = SelfMeasurement {
        binary,
        config: config_digest(cfg),
    };
    let paths = MeasurePaths {
        ccel: cfg.evidence.ccel_path.clone(),
        rtmr3: cfg.evidence.rtmr3_path.clone(),
        log: cfg.evidence.measurement_log.clone(),
    };
    let state = measure_at_start(&crate::evidence::backend::tsm::StdFs, &paths, &me);
    match &state.unmeasured {
        None => tracing::info!(
            agent_digest = %hex::encode(me.binary),
            config_digest = %hex::encode(me.config),
            event_log = state.evidence.event_log.is_some(),
            "measured into RTMR3"
        ),
        Some(e) if mode == "required" => return Err(unavailable(e.to_string())),
        Some(e) => tracing::warn!(
            reason = %e,
            event_log = state.evidence.event_log.is_some(),
            "the agent's own measurements are not in the evidence"
        ),
    }
    Ok(a.with_measured(state.evidence))
}

/// The VCEK source of the `azure-vtpm` backend that `[evidence]` names: the file when
/// `azure_vcek_file` is set, else Azure IMDS (requests ending within `timeout`,
/// `[collateral].timeout_secs`), else none.
pub fn azure_vcek(e: &EvidenceConfig, timeout: Duration) -> Arc<dyn VcekSource> {
    match (&e.azure_vcek_file, e.azure_imds_url.as_str()) {
        (Some(path), _) => Arc::new(VcekFile::new(path.clone())),
        (None, "") => Arc::new(NoVcek),
        (None, url) => Arc::new(ImdsVcek::new(url, timeout)),
    }
}

/// Connects to the market chain of `cfg` (retrying until it answers or `token` is
/// cancelled) and runs the provider side there for `engine`'s jobs: registration, evidence
/// refresh, receipt submission. `gpu_model` is the first GPU's name.
pub async fn settle_on_chain(
    engine: Arc<Engine>,
    cfg: ChainConfig,
    gpu_model: Option<String>,
    token: tokio_util::sync::CancellationToken,
) {
    let retry = Duration::from_secs(cfg.retry_secs.max(1));
    let link = loop {
        match settle::connect(&cfg).await {
            Ok(link) => break link,
            Err(e @ settle::SettleError::Config { .. }) => {
                tracing::error!(error = %e, "chain settlement disabled");
                return;
            }
            Err(e) => tracing::warn!(error = %e, url = %cfg.url, "chain not reachable; will retry"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    };
    let account = link.account_id().0;
    let key = engine.attestor_handle().public_key();
    engine.set_funding(Arc::new(settle::ChainFunding::new(
        link.clone(),
        account,
        key,
    )));
    let settler = settle::Settler::new(
        link,
        account,
        engine.store().clone(),
        Arc::clone(engine.attestor_handle()),
        &engine.config().state_dir,
        &cfg,
        gpu_model.as_deref(),
    );
    match settler {
        Ok(settler) => {
            tracing::info!(url = %cfg.url, account = %hex::encode(account), "settling receipts on chain");
            settler.run(engine.subscribe(), token).await;
        }
        Err(e) => tracing::error!(error = %e, "chain settlement disabled"),
    }
}
