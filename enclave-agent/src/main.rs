//! `sigil-agent`: the Sigil provider agent daemon.
//!
//! ```text
//! sigil-agent [--config /etc/sigil/agent.toml]          # run
//! sigil-agent --config agent.toml check-config          # print the effective configuration
//! sigil-agent --config agent.toml measure [--binary F]  # the digests it extends into RTMR3
//! ```
//!
//! Thin by design: configuration, logging, the evidence source, the engine, then the gRPC
//! server, the metrics endpoint and SIGTERM handling. See `docs/agent.md`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use enclave_agent::config::Config;
use enclave_agent::engine::{Engine, EngineParts};
use enclave_agent::grpc;
use enclave_agent::metering::GpuMetering;
use enclave_agent::metrics::Metrics;
use enclave_agent::shutdown;

use enclave_agent::wiring;

/// Sigil provider agent: runs jobs in a confidential VM and returns attested receipts.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file (every key can be overridden by SIGIL_AGENT_* variables).
    #[arg(long, env = "SIGIL_AGENT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Load and check the configuration, print it (secrets redacted) and exit.
    CheckConfig,
    /// Print the digests the agent extends into RTMR3 at start on TDX (its executable and
    /// its effective configuration), as JSON or as the `[tdx]` policy rules that pin them.
    Measure {
        /// The agent executable to measure (default: this one).
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
        /// `json` (the digests and the canonical configuration hashed) or `policy`.
        #[arg(long, default_value = "json", value_parser = ["json", "policy"])]
        format: String,
    },
}

fn main() -> std::process::ExitCode {
    // The agent's own executable is the launcher of isolated jobs (see
    // `enclave_agent::workload::isolate::launch`); it reads its spec from stdin.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            enclave_agent::workload::isolate::launch::LAUNCH_ARG,
        ))
    {
        return enclave_agent::workload::isolate::launch::main();
    }
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sigil-agent: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    // Fails only when a provider is already installed, which is then the one in use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cfg = Config::load(cli.config.as_deref()).context("loading the configuration")?;
    match &cli.command {
        Some(Command::CheckConfig) => {
            println!("{cfg:#?}");
            return Ok(());
        }
        Some(Command::Measure { binary, format }) => {
            return measure(&cfg, binary.as_deref(), format);
        }
        _ => {}
    }
    wiring::init_logging(&cfg).context("initialising logging")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sigil-agent")
        .build()
        .context("starting the async runtime")?
        .block_on(run(cfg))
}

/// `sigil-agent measure`: what a policy pins to name this agent build and configuration.
fn measure(cfg: &Config, binary: Option<&std::path::Path>, format: &str) -> anyhow::Result<()> {
    use enclave_agent::evidence::measured::{
        binary_digest, canonical_config, config_digest, file_digest,
    };
    let agent = match binary {
        Some(p) => file_digest(p).with_context(|| format!("reading {}", p.display()))?,
        None => binary_digest().context("reading the agent's own executable")?,
    };
    let config = hex::encode(config_digest(cfg));
    let agent = hex::encode(agent);
    let out = if format == "policy" {
        format!("[tdx]\nagent_digests = [\"{agent}\"]\nconfig_digests = [\"{config}\"]")
    } else {
        serde_json::json!({
            "agent_digest": agent,
            "config_digest": config,
            "canonical_config": canonical_config(cfg),
        })
        .to_string()
    };
    // A closed pipe or a full disk is an error to report, not a panic.
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, format!("{out}\n").as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout))
        .context("writing to stdout")
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    tokio::spawn(shutdown::on_signal(token.clone()));

    let gpus = wiring::gpus(&cfg);
    let attestor =
        wiring::attestor(&cfg, gpus.probe.clone()).context("starting the evidence source")?;
    let metrics = Arc::new(Metrics::new());
    let gpu_metering = match &gpus.probe {
        Some(p) => GpuMetering::new(
            Arc::clone(p),
            std::time::Duration::from_millis(cfg.gpus.sample_ms),
        ),
        None => GpuMetering::disabled(),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let engine = Engine::start(
        EngineParts {
            config: wiring::engine_config(&cfg),
            attestor: Arc::new(attestor),
            gpus: gpus.assignable.clone(),
            gpu_metering,
            metrics: Arc::clone(&metrics),
            isolation: wiring::isolation(&cfg).context("isolating jobs")?,
        },
        token.clone(),
    )
    .await
    .context("starting the job engine")?;
    let provider = wiring::provider_api(&engine, &gpus);
    wiring::log_attested(&engine);

    if let Some(addr) = cfg.metrics_listen {
        let (m, t) = (Arc::clone(&metrics), token.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        let bound = listener.local_addr().unwrap_or(addr);
        tracing::info!(addr = %bound, "metrics endpoint listening");
        wiring::write_addr_file(&cfg, wiring::METRICS_ADDR_FILE, bound)
            .context("writing the metrics address file")?;
        tokio::spawn(async move {
            if let Err(e) = enclave_agent::metrics::serve_on(listener, m, t).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }
    // Tools and tests that start the agent on port 0 read the bound address here.
    wiring::write_addr_file(&cfg, wiring::ADDR_FILE, local).context("writing the address file")?;

    let scheduler = tokio::spawn(Arc::clone(&engine).run());
    if cfg.chain.enabled() {
        let gpu_model = gpus.info.first().map(|g| g.name.clone());
        tokio::spawn(wiring::settle_on_chain(
            Arc::clone(&engine),
            cfg.chain.clone(),
            gpu_model,
            token.clone(),
        ));
    }
    // Jobs get their grace period from the moment shutdown starts, while the server
    // finishes in-flight calls (event streams end once the jobs are ended or checkpointed).
    let drain = {
        let (engine, token) = (Arc::clone(&engine), token.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            engine.drain().await;
        })
    };
    let served = grpc::serve(
        Arc::clone(&engine),
        provider,
        listener,
        &wiring::serve_settings(&cfg),
        token.clone(),
    )
    .await;
    // However the server ended, shut the rest down in order.
    token.cancel();
    let _ = scheduler.await;
    let _ = drain.await;
    tracing::info!("stopped");
    served.context("gRPC server")
}
