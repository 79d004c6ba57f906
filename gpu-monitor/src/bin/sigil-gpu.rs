//! `sigil-gpu`: NVIDIA GPU inventory, confidential-computing state, live readings, attestation
//! evidence and Prometheus metrics, for operators and the provider's boot flow.
//!
//! Exit status: 0 on success, 2 on any error (no driver, no GPU, a failed call), with a one-line
//! reason on stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use gpu_monitor::health::{GpuStatus, HealthPolicy, ReadinessTracker};
use gpu_monitor::metrics::{self, GpuReadings};
use gpu_monitor::{
    CcState, GpuError, GpuEvidence, GpuInventory, GpuProbe, GpuSample, HealthSnapshot, Inventory,
    Nonce, NvmlProbe,
};
use serde::Serialize;

/// NVIDIA GPU inventory, confidential-computing state, readings and attestation evidence.
#[derive(Parser)]
#[command(name = "sigil-gpu", version)]
struct Cli {
    /// Output format.
    #[arg(long, value_enum, global = true, default_value_t = Format::Text)]
    format: Format,
    /// NVML library to load instead of the system's libnvidia-ml.so.1.
    #[arg(long, global = true, value_name = "PATH")]
    nvml_library: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable.
    Text,
    /// JSON (one document; `watch` prints one per line).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// List the driver, the GPUs and the confidential-computing state.
    Inventory,
    /// Print utilisation, memory, power, temperature and readiness at an interval.
    Watch {
        /// Milliseconds between readings.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Stop after this many rounds (0: run until interrupted).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Judge readiness without demanding confidential computing.
        #[arg(long)]
        no_cc: bool,
    },
    /// Get each GPU's attestation report and certificate chain for a 32-byte nonce.
    Attest {
        /// The nonce, 64 hex digits.
        #[arg(long)]
        nonce: Nonce,
        /// Only this GPU (index or UUID); default: every GPU.
        #[arg(long)]
        gpu: Option<String>,
        /// Also write `<dir>/<uuid>/{report.bin,cert_chain.pem,nonce.hex}`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Show the GPUs-ready state, or set it (needs root).
    Ready {
        /// Set the state: `true` lets the GPUs accept work, `false` stops new work.
        #[arg(long)]
        set: Option<bool>,
    },
    /// Print one Prometheus exposition (DCGM exporter names and labels).
    Metrics {
        /// Judge readiness without demanding confidential computing.
        #[arg(long)]
        no_cc: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole chain, no backtrace.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("sigil-gpu: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let probe = match &cli.nvml_library {
        Some(path) => NvmlProbe::init_with_library(path.as_os_str()),
        None => NvmlProbe::init(),
    }?;
    let count = probe.gpu_count().context("cannot count GPUs")?;
    if count == 0 {
        return Err(GpuError::NoGpu.into());
    }
    match &cli.command {
        Command::Inventory => inventory(&probe, cli.format),
        Command::Watch {
            interval_ms,
            count,
            no_cc,
        } => watch(&probe, cli.format, *interval_ms, *count, policy(*no_cc)),
        Command::Attest { nonce, gpu, out } => {
            attest(&probe, cli.format, *nonce, gpu.as_deref(), out.as_deref())
        }
        Command::Ready { set } => ready(&probe, cli.format, *set),
        Command::Metrics { no_cc } => {
            let round = Round::take(&probe, &policy(*no_cc), &mut ReadinessTracker::new())?;
            let readings = round.readings();
            print(&metrics::render(&hostname(), round.cc.as_ref(), &readings))
        }
    }
}

fn policy(no_cc: bool) -> HealthPolicy {
    if no_cc {
        HealthPolicy::without_cc()
    } else {
        HealthPolicy::default()
    }
}

fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .context("cannot encode JSON")
}

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn cc_line(cc: &CcState) -> String {
    format!(
        "CC: {} (environment {:?}, dev-tools {}, multi-GPU {}, GPUs ready {}, CPU TEE {}) -> {}",
        if cc.cc_enabled { "on" } else { "off" },
        cc.environment,
        if cc.dev_tools_mode { "on" } else { "off" },
        cc.multi_gpu_mode
            .map_or_else(|| "unknown".to_owned(), |m| format!("{m:?}")),
        yes(cc.gpus_ready),
        cc.cpu_capability
            .map_or_else(|| "unknown".to_owned(), |c| format!("{c:?}")),
        if cc.is_cc_ready() {
            "CC-ready"
        } else {
            "not CC-ready"
        },
    )
}

fn inventory(probe: &NvmlProbe, format: Format) -> Result<()> {
    let inv: Inventory = probe.inventory().context("cannot read the inventory")?;
    if format == Format::Json {
        return print(&json(&inv)?);
    }
    let mut text = format!(
        "driver {}  NVML {}  CUDA {}\n",
        inv.system.driver_version,
        inv.system.nvml_version.as_deref().unwrap_or("?"),
        inv.system.cuda_driver_version.as_deref().unwrap_or("?"),
    );
    match &inv.cc {
        Some(cc) => text.push_str(&cc_line(cc)),
        None => text.push_str("CC: not supported"),
    }
    text.push('\n');
    for g in &inv.gpus {
        text.push_str(&gpu_line(g));
        text.push('\n');
    }
    print(&text)
}

fn gpu_line(g: &GpuInventory) -> String {
    let mut line = format!(
        "GPU {}  {}  {}  {}  {} MiB  VBIOS {}  {}  serial {}",
        g.index,
        g.uuid,
        g.name,
        g.pci_bus_id,
        mib(g.memory_total_bytes),
        g.vbios_version.as_deref().unwrap_or("?"),
        g.architecture.as_deref().unwrap_or("?"),
        g.serial.as_deref().unwrap_or("?"),
    );
    if let Some(m) = g.mig_mode {
        line.push_str(&format!(
            "  MIG {}{}",
            if m.current { "on" } else { "off" },
            if m.pending != m.current {
                " (pending change)"
            } else {
                ""
            }
        ));
    }
    if let Some(m) = g.cc_memory {
        line.push_str(&format!(
            "  CC memory: protected {} MiB, unprotected {} MiB",
            mib(m.protected_bytes),
            mib(m.unprotected_bytes)
        ));
    }
    line
}

/// One round of readings for every GPU.
#[derive(Serialize)]
struct Round {
    cc: Option<CcState>,
    gpus: Vec<GpuRound>,
}

#[derive(Serialize)]
struct GpuRound {
    status: GpuStatus,
    /// `None` when the GPU cannot be identified (lost): the status says why.
    gpu: Option<GpuInventory>,
    sample: Option<GpuSample>,
    sample_error: Option<String>,
    health: Option<HealthSnapshot>,
}

impl Round {
    fn take(
        probe: &NvmlProbe,
        policy: &HealthPolicy,
        tracker: &mut ReadinessTracker,
    ) -> Result<Self> {
        let (statuses, _changes) = tracker
            .poll(probe, policy)
            .context("cannot check the GPUs")?;
        let cc = probe.cc_state().ok();
        let gpus = statuses
            .into_iter()
            .map(|status| {
                let gpu = probe.gpu_inventory(status.index).ok();
                let (sample, health_reading) = match gpu {
                    Some(_) => (
                        Some(probe.sample(status.index)),
                        probe.health(status.index).ok(),
                    ),
                    None => (None, None),
                };
                GpuRound {
                    sample_error: sample
                        .as_ref()
                        .and_then(|s| s.as_ref().err())
                        .map(ToString::to_string),
                    sample: sample.and_then(Result::ok),
                    health: health_reading,
                    gpu,
                    status,
                }
            })
            .collect();
        Ok(Self { cc, gpus })
    }

    fn readings(&self) -> Vec<GpuReadings<'_>> {
        self.gpus
            .iter()
            .filter_map(|g| {
                Some(GpuReadings {
                    gpu: g.gpu.as_ref()?,
                    sample: g.sample.as_ref(),
                    health: g.health.as_ref(),
                    status: Some(&g.status),
                })
            })
            .collect()
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v}{unit}"))
}

fn watch(
    probe: &NvmlProbe,
    format: Format,
    interval_ms: u64,
    count: u64,
    policy: HealthPolicy,
) -> Result<()> {
    let mut round_no: u64 = 0;
    let mut tracker = ReadinessTracker::new();
    loop {
        let round = Round::take(probe, &policy, &mut tracker)?;
        let text = match format {
            Format::Json => {
                let mut line = serde_json::to_string(&round).context("cannot encode JSON")?;
                line.push('\n');
                line
            }
            Format::Text => {
                let mut text = String::new();
                for g in &round.gpus {
                    let s = g.sample.clone().unwrap_or_default();
                    let h = g.health.clone().unwrap_or_default();
                    let readiness = if g.status.is_ready() {
                        "ready".to_owned()
                    } else {
                        "NOT READY".to_owned()
                    };
                    let problems: Vec<String> =
                        g.status.problems.iter().map(ToString::to_string).collect();
                    text.push_str(&format!(
                        "GPU {} {}  util {}  mem {}/{}  power {}  temp {}  energy {}  {}{}\n",
                        g.status.index,
                        g.status.uuid,
                        opt(s.gpu_utilization_pct, "%"),
                        opt(s.memory_used_bytes.map(mib), ""),
                        opt(s.memory_total_bytes.map(mib), " MiB"),
                        opt(s.power_mw.map(|mw| f64::from(mw) / 1000.0), " W"),
                        opt(h.temperature_c, " C"),
                        opt(s.total_energy_mj, " mJ"),
                        readiness,
                        if problems.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", problems.join("; "))
                        },
                    ));
                }
                text
            }
        };
        print(&text)?;
        round_no = round_no.saturating_add(1);
        if count != 0 && round_no >= count {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
}

fn select(probe: &NvmlProbe, gpu: Option<&str>) -> Result<Vec<u32>> {
    match gpu {
        None => Ok((0..probe.gpu_count()?).collect()),
        Some(text) => match text.parse::<u32>() {
            Ok(index) => Ok(vec![index]),
            Err(_) => Ok(vec![probe.index_of(text)?]),
        },
    }
}

fn attest(
    probe: &NvmlProbe,
    format: Format,
    nonce: Nonce,
    gpu: Option<&str>,
    out: Option<&Path>,
) -> Result<()> {
    let mut all: Vec<GpuEvidence> = Vec::new();
    for index in select(probe, gpu)? {
        let evidence = probe
            .attestation_evidence(index, &nonce)
            .with_context(|| format!("GPU {index}: cannot get attestation evidence"))?;
        if let Some(dir) = out {
            write_evidence(dir, &evidence)?;
        }
        all.push(evidence);
    }
    if format == Format::Json {
        return print(&json(&all)?);
    }
    let mut text = String::new();
    for e in &all {
        let certs = e.certificates_der().map(|c| c.len()).unwrap_or(0);
        text.push_str(&format!(
            "{}: report {} bytes, {} certificates, nonce {}\n",
            e.gpu_uuid,
            e.report.len(),
            certs,
            e.nonce
        ));
    }
    print(&text)
}

fn write_evidence(dir: &Path, e: &GpuEvidence) -> Result<()> {
    if e.gpu_uuid.contains(['/', '\\']) || e.gpu_uuid.starts_with('.') {
        bail!(
            "refusing to use GPU UUID {:?} as a directory name",
            e.gpu_uuid
        );
    }
    let dir = dir.join(&e.gpu_uuid);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let nonce = format!("{}\n", e.nonce);
    let files: [(&str, &[u8]); 3] = [
        ("report.bin", &e.report),
        ("cert_chain.pem", e.cert_chain_pem.as_bytes()),
        ("nonce.hex", nonce.as_bytes()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn ready(probe: &NvmlProbe, format: Format, set: Option<bool>) -> Result<()> {
    if let Some(ready) = set {
        probe
            .set_ready_state(ready)
            .context("cannot set the GPUs-ready state")?;
    }
    let cc = probe
        .cc_state()
        .context("cannot read the confidential-computing state")?;
    match format {
        Format::Json => print(&json(&cc)?),
        Format::Text => print(&format!("{}\n", cc_line(&cc))),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}
