//! `sigil-verify measure`: compute the launch measurement a policy pins, from the
//! published guest image (see `docs/measure.md`).
//!
//! Exit status: 0 computed, 1 the inputs are refused by the calculation (the JSON
//! says why: `{"verdict": "rejected", "reasons": [...], "code": "..."}`), 2 the
//! command could not run (bad flag, unreadable file).

use std::format;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::vec::Vec;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::measure::MAX_FIRMWARE_LEN;
use crate::measure::snp::{
    self, KernelHashes, SnpLaunch, SnpMeasureError, SnpMeasurement, Svsm, VmmType,
};
use crate::measure::tdx::{self, TdxMeasureError};

/// The largest kernel or initrd accepted (2 GiB); they are hashed as a stream.
pub const MAX_KERNEL_LEN: u64 = 2 << 30;

/// Arguments of `sigil-verify measure`.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// What to measure.
    #[command(subcommand)]
    pub target: MeasureTarget,
}

/// The measurement kinds.
#[derive(Debug, Subcommand)]
pub enum MeasureTarget {
    /// The AMD SEV-SNP launch measurement (report MEASUREMENT) of a guest launched
    /// with this firmware, kernel, vCPUs and VMM.
    Snp(MeasureSnpArgs),
    /// The Intel TDX MRTD of a TD launched with this TDVF firmware.
    Tdx(MeasureTdxArgs),
    /// The measurement the agent's simulator reports when it runs this agent executable
    /// (SHA-384 of the file; development chains only).
    Simulated(MeasureSimulatedArgs),
    /// The events a TPM's SHA-256 bank (a cloud vTPM) records when this Unified Kernel
    /// Image boots from disk: PCR 4 (the firmware's) and PCR 11 (systemd-stub's), as the
    /// `[vtpm] events` rules of a policy.
    Vtpm(MeasureVtpmArgs),
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MeasureFormat {
    /// One JSON object.
    Json,
    /// A TOML fragment for the policy file (`[snp] measurements` / `[tdx] mrtds`).
    Policy,
}

/// The hypervisor (VMSA register values differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Vmm {
    /// QEMU/KVM.
    Qemu,
    /// AWS EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

impl From<Vmm> for VmmType {
    fn from(v: Vmm) -> Self {
        match v {
            Vmm::Qemu => VmmType::Qemu,
            Vmm::Ec2 => VmmType::Ec2,
            Vmm::Gce => VmmType::Gce,
        }
    }
}

/// Arguments of `sigil-verify measure snp`.
#[derive(Debug, Args)]
pub struct MeasureSnpArgs {
    /// The OVMF firmware image (e.g. OVMF.amdsev.fd; at most 64 MiB).
    #[arg(long, value_name = "FILE")]
    pub ovmf: PathBuf,
    /// Measured direct boot: the kernel image (needs an OVMF with SNP_KERNEL_HASHES, e.g. AmdSev).
    #[arg(long, value_name = "FILE", conflicts_with = "svsm")]
    pub kernel: Option<PathBuf>,
    /// The initrd (none: the hash of an empty initrd, as QEMU measures it).
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// The kernel command line, hashed exactly as given plus a NUL. An empty
    /// string is an empty command line (SHA-256 of 0x00), as is its absence.
    #[arg(
        long,
        value_name = "STR",
        requires = "kernel",
        allow_hyphen_values = true
    )]
    pub append: Option<String>,
    /// COCONUT-SVSM mode: the SVSM image, launched below the OVMF variables (QEMU only).
    #[arg(long, value_name = "FILE", requires = "vars_size")]
    pub svsm: Option<PathBuf>,
    /// SVSM mode: size of the OVMF variable store in bytes.
    #[arg(long, value_name = "BYTES", requires = "svsm")]
    pub vars_size: Option<u64>,
    /// Number of vCPUs.
    #[arg(long, value_name = "N")]
    pub vcpus: u32,
    /// QEMU vCPU model (EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3],
    /// EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin[-v1,-v2]); gives the RDX
    /// signature. Unused on ec2 and gce (RDX 0x600).
    #[arg(long, value_name = "MODEL", value_parser = parse_vcpu_type)]
    pub vcpu_type: Option<String>,
    /// The vCPU signature (CPUID 1 EAX, hex), instead of or overriding --vcpu-type.
    #[arg(long, value_name = "HEX", value_parser = parse_hex_u32)]
    pub vcpu_sig: Option<u32>,
    /// The VMM that launches the guest.
    #[arg(long, value_enum)]
    pub vmm_type: Vmm,
    /// The guest features (VMSA SEV_FEATURES, hex; 0x prefix optional), e.g. 0x1 or 0x21.
    #[arg(long, value_name = "HEX", value_parser = parse_hex_u64)]
    pub guest_features: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MeasureFormat::Json)]
    pub format: MeasureFormat,
}

/// Arguments of `sigil-verify measure tdx`.
#[derive(Debug, Args)]
pub struct MeasureTdxArgs {
    /// The TDVF firmware image, as given to QEMU with -bios (e.g. OVMF.fd; at most 64 MiB).
    #[arg(long, value_name = "FILE")]
    pub tdvf: PathBuf,
    /// Direct boot: the kernel (a PE32+ image with an EFI stub, as given to QEMU with
    /// -kernel; at most 256 MiB): its Authenticode digest, the RTMR1 event.
    #[arg(long, value_name = "FILE", conflicts_with = "uki")]
    pub kernel: Option<PathBuf>,
    /// Boot from disk: a Unified Kernel Image (systemd-stub with .linux, .osrel, .cmdline,
    /// .initrd, ... sections; at most 1 GiB): its Authenticode digest, the RTMR1 event, and
    /// the RTMR2 events systemd-stub extends for its sections. Not with --kernel/--initrd.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "initrd", "cmdline"])]
    pub uki: Option<PathBuf>,
    /// Direct boot: the initrd (-initrd): its digest, an RTMR2 event.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// Direct boot: the kernel command line (-append), measured as OVMF hands it to the
    /// kernel (with " initrd=initrd" when an initrd is given): an RTMR2 event.
    #[arg(long, value_name = "CMDLINE", requires = "kernel", alias = "append")]
    pub cmdline: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MeasureFormat::Json)]
    pub format: MeasureFormat,
}

/// Arguments of `sigil-verify measure vtpm`.
#[derive(Debug, Args)]
pub struct MeasureVtpmArgs {
    /// The Unified Kernel Image booted from disk (at most 1 GiB).
    #[arg(long, value_name = "FILE")]
    pub uki: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MeasureFormat::Json)]
    pub format: MeasureFormat,
}

/// Arguments of `sigil-verify measure simulated`.
#[derive(Debug, Args)]
pub struct MeasureSimulatedArgs {
    /// The agent executable (`enclave-agent`).
    #[arg(long, value_name = "FILE")]
    pub agent: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MeasureFormat::Json)]
    pub format: MeasureFormat,
}

fn parse_vcpu_type(s: &str) -> Result<String, String> {
    snp::VCPU_TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(n, _)| (*n).to_string())
        .ok_or_else(|| {
            let names: Vec<&str> = snp::VCPU_TYPES.iter().map(|(n, _)| *n).collect();
            format!("unknown vCPU type {s:?} (known: {})", names.join(", "))
        })
}

fn strip_hex(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

fn parse_hex_u32(s: &str) -> Result<u32, String> {
    u32::from_str_radix(strip_hex(s), 16)
        .map_err(|e| format!("{s:?} is not a 32-bit hex value: {e}"))
}

fn parse_hex_u64(s: &str) -> Result<u64, String> {
    u64::from_str_radix(strip_hex(s), 16)
        .map_err(|e| format!("{s:?} is not a 64-bit hex value: {e}"))
}

/// Runs `sigil-verify measure`.
pub fn run(args: &MeasureArgs) -> anyhow::Result<ExitCode> {
    match &args.target {
        MeasureTarget::Snp(a) => run_snp(a),
        MeasureTarget::Tdx(a) => run_tdx(a),
        MeasureTarget::Simulated(a) => run_simulated(a),
        MeasureTarget::Vtpm(a) => run_vtpm(a),
    }
}

fn run_simulated(a: &MeasureSimulatedArgs) -> anyhow::Result<ExitCode> {
    let file =
        std::fs::File::open(&a.agent).map_err(|e| anyhow::anyhow!("{}: {e}", a.agent.display()))?;
    let m = crate::evidence::simulated::executable_measurement(std::io::BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.agent.display()))?;
    match a.format {
        MeasureFormat::Json => {
            let out = json!({
                "verdict": "computed",
                "measurement": hex::encode(m),
                "agent": a.agent.display().to_string(),
            });
            super::emit(&serde_json::to_string(&out)?)?;
        }
        MeasureFormat::Policy => {
            super::emit(&std::format!(
                "# sigil-verify measure simulated: agent {} (SHA-384 of the executable)",
                a.agent.display()
            ))?;
            super::emit("[simulated]")?;
            super::emit(&std::format!("measurements = [\"{}\"]", hex::encode(m)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A firmware file, or why it is refused (too large).
enum Firmware {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

fn read_firmware(path: &Path) -> anyhow::Result<Firmware> {
    let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut data = Vec::new();
    let cap = MAX_FIRMWARE_LEN as u64;
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .with_context(|| format!("reading {}", path.display()))?;
    if data.len() as u64 > cap {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(cap);
        return Ok(Firmware::TooLarge(len));
    }
    Ok(Firmware::Bytes(data))
}

/// SHA-256 of a file read as a stream, or `None` when it is over [`MAX_KERNEL_LEN`].
fn sha256_file(path: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    Ok(digest_file::<sha2::Sha256>(path)?.map(Into::into))
}

/// SHA-384 of a file read as a stream, or `None` when it is over [`MAX_KERNEL_LEN`].
fn sha384_file(path: &Path) -> anyhow::Result<Option<[u8; 48]>> {
    Ok(digest_file::<sha2::Sha384>(path)?.map(Into::into))
}

fn digest_file<D: sha2::Digest>(path: &Path) -> anyhow::Result<Option<sha2::digest::Output<D>>> {
    let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = D::new();
    let mut reader = file.take(MAX_KERNEL_LEN.saturating_add(1));
    let mut buf = std::vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        h.update(chunk);
        total = total.saturating_add(n as u64);
    }
    if total > MAX_KERNEL_LEN {
        return Ok(None);
    }
    Ok(Some(h.finalize()))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

#[derive(Serialize)]
struct Rejection<'a> {
    verdict: &'static str,
    reasons: &'a [String],
    code: &'a str,
}

/// Prints a refusal and returns exit status 1.
fn reject(format: MeasureFormat, code: &str, reason: String) -> anyhow::Result<ExitCode> {
    let reasons = [reason];
    match format {
        MeasureFormat::Json => super::emit(&serde_json::to_string(&Rejection {
            verdict: "rejected",
            reasons: &reasons,
            code,
        })?)?,
        MeasureFormat::Policy => {
            for r in &reasons {
                std::eprintln!("sigil-verify: rejected ({code}): {r}");
            }
        }
    }
    Ok(ExitCode::from(1))
}

fn too_large(
    format: MeasureFormat,
    what: &str,
    path: &Path,
    len: u64,
    max: u64,
) -> anyhow::Result<ExitCode> {
    reject(
        format,
        "input-too-large",
        format!(
            "{what} {} is {len} bytes, larger than the {max}-byte limit",
            path.display()
        ),
    )
}

/// A stable machine-readable name for each refusal.
fn snp_code(e: &SnpMeasureError) -> &'static str {
    match e {
        SnpMeasureError::Firmware { .. } => "firmware-unusable",
        SnpMeasureError::Vcpus { .. } => "vcpus-out-of-range",
        SnpMeasureError::KernelHashesUnsupported => "kernel-hashes-unsupported",
        SnpMeasureError::NoHashesTable => "kernel-hashes-table-missing",
        SnpMeasureError::HashesTablePlacement { .. } => "kernel-hashes-table-placement",
        SnpMeasureError::NoResetVector { .. } => "reset-vector-missing",
        SnpMeasureError::NoApResetVector { .. } => "ap-reset-vector-missing",
        SnpMeasureError::SvsmVmm { .. } => "svsm-vmm-unsupported",
        SnpMeasureError::SvsmKernel => "svsm-kernel-unsupported",
        SnpMeasureError::SvsmPlacement { .. } | SnpMeasureError::VarsSize { .. } => {
            "svsm-placement"
        }
    }
}

fn tdx_code(e: &TdxMeasureError) -> &'static str {
    match e {
        TdxMeasureError::TooLarge { .. } => "input-too-large",
        TdxMeasureError::GuidTable(_) => "firmware-unusable",
        TdxMeasureError::NoTdvfMetadata => "tdvf-metadata-missing",
        TdxMeasureError::DataOutsideImage { .. } => "tdvf-section-outside-image",
        TdxMeasureError::TooManyPages { .. } | TdxMeasureError::TooManyExtendedBytes { .. } => {
            "tdvf-too-many-pages"
        }
        TdxMeasureError::EntryTooShort { .. }
        | TdxMeasureError::DescriptorOutsideImage { .. }
        | TdxMeasureError::Signature
        | TdxMeasureError::Version { .. }
        | TdxMeasureError::Sections { .. }
        | TdxMeasureError::SectionType { .. }
        | TdxMeasureError::Attributes { .. }
        | TdxMeasureError::Unaligned { .. }
        | TdxMeasureError::RawLargerThanMemory { .. } => "tdvf-metadata-malformed",
    }
}

fn hex_u64(v: u64) -> String {
    format!("{v:#x}")
}

fn run_snp(a: &MeasureSnpArgs) -> anyhow::Result<ExitCode> {
    if a.vcpus == 0 || a.vcpus > snp::MAX_VCPUS {
        bail!("--vcpus must be 1 to {}", snp::MAX_VCPUS);
    }
    let vmm = VmmType::from(a.vmm_type);
    let svsm_mode = a.svsm.is_some();
    let type_sig = a.vcpu_type.as_deref().and_then(snp::vcpu_sig);
    let sig = a.vcpu_sig.or(type_sig);
    let sig_used = vmm == VmmType::Qemu;
    if sig_used && sig.is_none() {
        bail!("--vmm-type qemu needs --vcpu-type or --vcpu-sig (the initial RDX)");
    }
    let ovmf = match read_firmware(&a.ovmf)? {
        Firmware::Bytes(b) => b,
        Firmware::TooLarge(len) => {
            return too_large(a.format, "OVMF", &a.ovmf, len, MAX_FIRMWARE_LEN as u64);
        }
    };
    let svsm = match &a.svsm {
        None => None,
        Some(p) => match read_firmware(p)? {
            Firmware::Bytes(b) => Some(b),
            Firmware::TooLarge(len) => {
                return too_large(a.format, "SVSM", p, len, MAX_FIRMWARE_LEN as u64);
            }
        },
    };
    let mut kernel_json = Value::Null;
    let mut initrd_json = Value::Null;
    let kernel = match &a.kernel {
        None => None,
        Some(kp) => {
            let Some(k) = sha256_file(kp)? else {
                return too_large(
                    a.format,
                    "kernel",
                    kp,
                    MAX_KERNEL_LEN.saturating_add(1),
                    MAX_KERNEL_LEN,
                );
            };
            kernel_json = json!({"path": kp.display().to_string(), "sha256": hex::encode(k)});
            let initrd = match &a.initrd {
                None => sha2::Sha256::digest([]).into(),
                Some(ip) => {
                    let Some(i) = sha256_file(ip)? else {
                        return too_large(
                            a.format,
                            "initrd",
                            ip,
                            MAX_KERNEL_LEN.saturating_add(1),
                            MAX_KERNEL_LEN,
                        );
                    };
                    initrd_json =
                        json!({"path": ip.display().to_string(), "sha256": hex::encode(i)});
                    i
                }
            };
            Some(KernelHashes::new(k, initrd, a.append.as_deref()))
        }
    };
    let launch = SnpLaunch {
        ovmf: &ovmf,
        vcpus: a.vcpus,
        vcpu_sig: sig.unwrap_or_default(),
        vmm,
        guest_features: a.guest_features,
        kernel,
        svsm: svsm.as_deref().map(|image| Svsm {
            image,
            vars_size: a.vars_size.unwrap_or_default(),
        }),
    };
    let m = match snp::snp_launch_digest(&launch) {
        Ok(m) => m,
        Err(e) => return reject(a.format, snp_code(&e), e.to_string()),
    };
    let mut notes: Vec<&str> = Vec::new();
    if !sig_used && (a.vcpu_type.is_some() || a.vcpu_sig.is_some()) {
        notes.push("the vCPU type/signature is not used on this VMM: its initial RDX is 0x600");
    }
    if svsm_mode && a.guest_features != 1 {
        notes.push("guest features are not part of an SVSM launch: the SVSM's VMSA has SEV_FEATURES 0x1 and OVMF's VMSAs are created by the SVSM later");
    }
    match a.format {
        MeasureFormat::Json => {
            let out = snp_json(
                a,
                &ovmf,
                svsm.as_deref(),
                &m,
                sig,
                kernel_json,
                initrd_json,
                notes,
            );
            super::emit(&serde_json::to_string(&out)?)?;
        }
        MeasureFormat::Policy => {
            let vcpu = match (sig_used, &a.vcpu_type, sig) {
                (false, _, _) => String::new(),
                (true, Some(t), Some(s)) => format!(" {t} ({s:#x})"),
                (true, _, Some(s)) => format!(" vCPU signature {s:#x}"),
                (true, _, None) => String::new(),
            };
            super::emit(&std::format!(
                "# sigil-verify measure snp: vmm {}, {} vCPU{}{}, guest features {:#x}",
                vmm,
                a.vcpus,
                if a.vcpus == 1 { "" } else { "s" },
                vcpu,
                a.guest_features
            ))?;
            super::emit(&std::format!(
                "# OVMF {} sha256 {}",
                a.ovmf.display(),
                sha256_hex(&ovmf)
            ))?;
            if let (Some(p), Some(s)) = (&a.svsm, &svsm) {
                super::emit(&std::format!(
                    "# SVSM {} sha256 {}",
                    p.display(),
                    sha256_hex(s)
                ))?;
            }
            if let (Some(p), Some(k)) = (&a.kernel, &kernel) {
                super::emit(&std::format!(
                    "# kernel {} sha256 {}",
                    p.display(),
                    hex::encode(k.kernel)
                ))?;
                super::emit(&std::format!("# initrd sha256 {}", hex::encode(k.initrd)))?;
                super::emit(&std::format!(
                    "# cmdline {:?} sha256 {}",
                    a.append.as_deref().unwrap_or_default(),
                    hex::encode(k.cmdline)
                ))?;
            }
            super::emit("[snp]")?;
            super::emit(&std::format!(
                "measurements = [\"{}\"]",
                hex::encode(m.measurement)
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)] // one JSON object from every input
fn snp_json(
    a: &MeasureSnpArgs,
    ovmf: &[u8],
    svsm: Option<&[u8]>,
    m: &SnpMeasurement,
    sig: Option<u32>,
    kernel: Value,
    initrd: Value,
    notes: Vec<&str>,
) -> Value {
    let sections: Vec<Value> = m
        .sections
        .iter()
        .map(|s| json!({"type": s.kind.name(), "gpa": hex_u64(s.gpa.into()), "size": hex_u64(s.size.into())}))
        .collect();
    json!({
        "verdict": "computed",
        "measurement": hex::encode(m.measurement),
        "mode": if svsm.is_some() { "snp-svsm" } else { "snp" },
        "vmm_type": VmmType::from(a.vmm_type).name(),
        "vcpus": a.vcpus,
        "vcpu_type": a.vcpu_type,
        "vcpu_sig": sig.map(|s| hex_u64(s.into())),
        "guest_features": hex_u64(a.guest_features),
        "ovmf": {
            "path": a.ovmf.display().to_string(),
            "size": ovmf.len(),
            "sha256": sha256_hex(ovmf),
            "gpa": hex_u64(m.ovmf_gpa),
            "snp_ovmf_hash": hex::encode(m.ovmf_hash),
        },
        "svsm": svsm.map(|s| json!({
            "path": a.svsm.as_ref().map(|p| p.display().to_string()),
            "size": s.len(),
            "sha256": sha256_hex(s),
            "gpa": m.svsm_gpa.map(hex_u64),
            "vars_size": a.vars_size,
        })),
        "kernel": kernel,
        "initrd": initrd,
        "append": a.append,
        "cmdline_sha256": a.kernel.as_ref().map(|_| hex::encode(snp::cmdline_sha256(a.append.as_deref().unwrap_or_default()))),
        "hashes_table_gpa": m.hashes_table_gpa.map(|g| hex_u64(g.into())),
        "ap_eip": hex_u64(m.ap_eip),
        "metadata_sections": sections,
        "notes": notes,
    })
}

/// The largest kernel image whose Authenticode digest is computed (it is read whole).
pub const MAX_PE_KERNEL_LEN: u64 = 256 << 20;

/// One boot event a direct boot extends (RTMR1/RTMR2), as printed.
struct BootEvent {
    rtmr: u8,
    what: String,
    event_type: &'static str,
    digest: [u8; 48],
    input: Value,
}

/// The RTMR1/RTMR2 events of the direct boot `a` describes (none without `--kernel`),
/// or the rejection to print.
fn tdx_boot_events(a: &MeasureTdxArgs) -> anyhow::Result<Result<Vec<BootEvent>, ExitCode>> {
    use crate::measure::tdx_boot;
    let mut events = Vec::new();
    if let Some(up) = &a.uki {
        return uki_events(a.format, up);
    }
    let Some(kp) = &a.kernel else {
        return Ok(Ok(events));
    };
    let mut kernel = Vec::new();
    File::open(kp)
        .with_context(|| format!("reading {}", kp.display()))?
        .take(MAX_PE_KERNEL_LEN.saturating_add(1))
        .read_to_end(&mut kernel)
        .with_context(|| format!("reading {}", kp.display()))?;
    if kernel.len() as u64 > MAX_PE_KERNEL_LEN {
        let len = std::fs::metadata(kp).map_or(MAX_PE_KERNEL_LEN, |m| m.len());
        return too_large(a.format, "kernel", kp, len, MAX_PE_KERNEL_LEN).map(Err);
    }
    let digest = match tdx_boot::kernel_digest(&kernel) {
        Ok(d) => d,
        Err(e) => return reject(a.format, "kernel-not-pe", e.to_string()).map(Err),
    };
    events.push(BootEvent {
        rtmr: 1,
        what: "kernel".into(),
        event_type: "EV_EFI_BOOT_SERVICES_APPLICATION",
        digest,
        input: json!({"path": kp.display().to_string(), "sha256": sha256_hex(&kernel)}),
    });
    let cmdline = a.cmdline.as_deref().unwrap_or_default();
    let with_initrd = a.initrd.is_some();
    let digest = match tdx_boot::cmdline_digest(cmdline, with_initrd) {
        Ok(d) => d,
        Err(e) => return reject(a.format, "cmdline-not-ascii", e.to_string()).map(Err),
    };
    events.push(BootEvent {
        rtmr: 2,
        what: "cmdline".into(),
        event_type: "EV_EVENT_TAG LOADED_IMAGE::LoadOptions",
        digest,
        input: json!({
            "cmdline": cmdline,
            "load_options": format!("{cmdline}{}", if with_initrd { " initrd=initrd" } else { "" }),
        }),
    });
    if let Some(ip) = &a.initrd {
        let Some(digest) = sha384_file(ip)? else {
            return too_large(
                a.format,
                "initrd",
                ip,
                MAX_KERNEL_LEN.saturating_add(1),
                MAX_KERNEL_LEN,
            )
            .map(Err);
        };
        events.push(BootEvent {
            rtmr: 2,
            what: "initrd".into(),
            event_type: "EV_EVENT_TAG Linux initrd",
            digest,
            input: json!({"path": ip.display().to_string()}),
        });
    }
    Ok(Ok(events))
}

/// The largest UKI whose events are computed (it is read whole).
pub const MAX_UKI_LEN: u64 = 1 << 30;

/// A UKI's bytes and events, or the rejection printed.
fn read_uki(
    format: MeasureFormat,
    path: &Path,
) -> anyhow::Result<Result<(Vec<u8>, crate::measure::uki::UkiMeasurement), ExitCode>> {
    use crate::measure::uki::{self, UkiError};
    let mut image = Vec::new();
    File::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .take(MAX_UKI_LEN.saturating_add(1))
        .read_to_end(&mut image)
        .with_context(|| format!("reading {}", path.display()))?;
    if image.len() as u64 > MAX_UKI_LEN {
        let len = std::fs::metadata(path).map_or(MAX_UKI_LEN, |m| m.len());
        return too_large(format, "UKI", path, len, MAX_UKI_LEN).map(Err);
    }
    match uki::uki_events(&image) {
        Ok(m) => Ok(Ok((image, m))),
        Err(e) => {
            let code = match e {
                UkiError::NotPe(_) | UkiError::PeOffsets => "uki-not-pe",
                UkiError::TooLarge { .. } => "input-too-large",
                UkiError::NoLinux => "uki-no-linux",
                UkiError::Profiles | UkiError::HardwareSelected { .. } => {
                    "uki-profiles-unsupported"
                }
                _ => "uki-malformed",
            };
            reject(format, code, e.to_string()).map(Err)
        }
    }
}

/// `sigil-verify measure vtpm`: the UKI's events in a TPM's SHA-256 bank.
fn run_vtpm(a: &MeasureVtpmArgs) -> anyhow::Result<ExitCode> {
    use crate::measure::uki::UkiEventKind;
    let (image, m) = match read_uki(a.format, &a.uki)? {
        Ok(read) => read,
        Err(code) => return Ok(code),
    };
    // (pcr, what, event type, SHA-256 digest)
    let mut events = vec![(
        4u8,
        String::from("uki"),
        "EV_EFI_BOOT_SERVICES_APPLICATION",
        m.authenticode_sha256,
    )];
    for e in &m.sections {
        let part = if e.kind == UkiEventKind::Name {
            "name"
        } else {
            "contents"
        };
        events.push((
            11,
            format!("{} {part}", e.section),
            "EV_IPL",
            e.digest_sha256,
        ));
    }
    // The kernel's EFI stub: PCR 9, where the UKI decides the bytes.
    let mut not_predicted = Vec::new();
    for k in &m.kernel {
        match k {
            Ok(e) => events.push((
                9,
                kernel_event_what(e.kind).into(),
                kernel_event_type(e.kind),
                e.digest_sha256,
            )),
            Err((kind, why)) => not_predicted.push((*kind, why.to_string())),
        }
    }
    match a.format {
        MeasureFormat::Json => {
            let out = json!({
                "verdict": "computed",
                "bank": "sha256",
                "uki": {
                    "path": a.uki.display().to_string(),
                    "size": image.len(),
                    "sha256": sha256_hex(&image),
                },
                "pcr_events": events.iter().map(|(pcr, what, event_type, digest)| json!({
                    "pcr": pcr,
                    "what": what,
                    "event_type": event_type,
                    "digest": hex::encode(digest),
                })).collect::<Vec<_>>(),
                "pcr11_sha256": hex::encode(m.pcr11_sha256()),
                "stub_version": m.stub_version,
                "not_predicted": not_predicted_json(&not_predicted),
            });
            super::emit(&serde_json::to_string(&out)?)?;
        }
        MeasureFormat::Policy => {
            super::emit(&std::format!(
                "# sigil-verify measure vtpm: UKI {} sha256 {} (TPM SHA-256 bank: PCR 4 firmware, PCR 11 systemd-stub, PCR 9 the kernel's EFI stub)",
                a.uki.display(),
                sha256_hex(&image)
            ))?;
            for (kind, why) in &not_predicted {
                super::emit(&std::format!(
                    "# not predicted: {}: {why}",
                    kernel_event_what(*kind)
                ))?;
            }
            super::emit("[vtpm]")?;
            super::emit("events = [")?;
            for (pcr, what, _, digest) in &events {
                super::emit(&std::format!(
                    "  {{ pcr = {pcr}, digest = \"{}\" }},   # {what}",
                    hex::encode(digest)
                ))?;
            }
            super::emit("]")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How `measure --uki` names a kernel event.
fn kernel_event_what(kind: crate::measure::uki::KernelEventKind) -> &'static str {
    use crate::measure::uki::KernelEventKind;
    match kind {
        KernelEventKind::LoadOptions => "kernel load options",
        KernelEventKind::Initrd => "kernel initrd",
    }
}

/// A kernel event's type as printed (the direct boot's names for the same events).
fn kernel_event_type(kind: crate::measure::uki::KernelEventKind) -> &'static str {
    use crate::measure::uki::KernelEventKind;
    match kind {
        KernelEventKind::LoadOptions => "EV_EVENT_TAG LOADED_IMAGE::LoadOptions",
        KernelEventKind::Initrd => "EV_EVENT_TAG Linux initrd",
    }
}

fn not_predicted_json(omitted: &[(crate::measure::uki::KernelEventKind, String)]) -> Value {
    Value::Array(
        omitted
            .iter()
            .map(|(kind, why)| json!({"what": kernel_event_what(*kind), "reason": why}))
            .collect(),
    )
}

/// The RTMR1/RTMR2 events of a UKI booted from disk, or the rejection to print.
fn uki_events(
    format: MeasureFormat,
    path: &Path,
) -> anyhow::Result<Result<Vec<BootEvent>, ExitCode>> {
    use crate::measure::uki::UkiEventKind;
    let (image, m) = match read_uki(format, path)? {
        Ok(read) => read,
        Err(code) => return Ok(Err(code)),
    };
    let mut events = Vec::with_capacity(m.sections.len().saturating_add(3));
    let not_predicted: Vec<_> = m
        .kernel
        .iter()
        .filter_map(|k| k.as_ref().err().map(|(kind, why)| (*kind, why.to_string())))
        .collect();
    events.push(BootEvent {
        rtmr: 1,
        what: "uki".into(),
        event_type: "EV_EFI_BOOT_SERVICES_APPLICATION",
        digest: m.authenticode,
        input: json!({
            "path": path.display().to_string(),
            "sha256": sha256_hex(&image),
            "pcr11_sha384": hex::encode(m.pcr11()),
            "stub_version": m.stub_version,
            "kernel_events_not_predicted": not_predicted_json(&not_predicted),
        }),
    });
    for e in &m.sections {
        let (what, input) = match e.kind {
            UkiEventKind::Name => (
                format!("{} name", e.section),
                json!({"section": e.section, "measured": "name", "bytes": e.len}),
            ),
            _ => (
                format!("{} contents", e.section),
                json!({"section": e.section, "measured": "contents", "bytes": e.len}),
            ),
        };
        events.push(BootEvent {
            rtmr: 2,
            what,
            event_type: "EV_IPL",
            digest: e.digest,
            input,
        });
    }
    // The kernel's EFI stub measures through the CC measurement protocol: PCR 9, RTMR2.
    for e in m.kernel.iter().flatten() {
        events.push(BootEvent {
            rtmr: 2,
            what: kernel_event_what(e.kind).into(),
            event_type: kernel_event_type(e.kind),
            digest: e.digest,
            input: json!({"tag": e.kind.tag(), "bytes": e.len}),
        });
    }
    Ok(Ok(events))
}

fn run_tdx(a: &MeasureTdxArgs) -> anyhow::Result<ExitCode> {
    let boot = match tdx_boot_events(a)? {
        Ok(events) => events,
        Err(code) => return Ok(code),
    };
    let image = match read_firmware(&a.tdvf)? {
        Firmware::Bytes(b) => b,
        Firmware::TooLarge(len) => {
            return too_large(a.format, "TDVF", &a.tdvf, len, MAX_FIRMWARE_LEN as u64);
        }
    };
    let m = match tdx::tdx_mrtd(&image) {
        Ok(m) => m,
        Err(e) => return reject(a.format, tdx_code(&e), e.to_string()),
    };
    match a.format {
        MeasureFormat::Json => {
            let sections: Vec<Value> = m
                .sections
                .iter()
                .map(|s| {
                    json!({
                        "type": s.section_type.name(),
                        "data_offset": hex_u64(s.data_offset.into()),
                        "raw_size": hex_u64(s.raw_size.into()),
                        "gpa": hex_u64(s.gpa),
                        "mem_size": hex_u64(s.mem_size),
                        "attributes": hex_u64(s.attributes.into()),
                        "mr_extend": s.extended(),
                        "page_aug": !s.added(),
                    })
                })
                .collect();
            let out = json!({
                "verdict": "computed",
                "mrtd": hex::encode(m.mrtd),
                "mrtd_order": "per-page: each MEM.PAGE.ADD followed by its MR.EXTENDs (upstream KVM/QEMU)",
                "mrtd_two_pass": hex::encode(m.mrtd_two_pass),
                "mrtd_two_pass_order": "two-pass: all MEM.PAGE.ADDs of a section, then its MR.EXTENDs (older TDX stacks)",
                "tdvf": {
                    "path": a.tdvf.display().to_string(),
                    "size": image.len(),
                    "sha256": sha256_hex(&image),
                },
                "sections": sections,
                "pages_added": m.pages_added,
                "bytes_extended": m.bytes_extended,
                "boot_events": boot.iter().map(|e| json!({
                    "rtmr": e.rtmr,
                    "what": e.what,
                    "event_type": e.event_type,
                    "digest": hex::encode(e.digest),
                    "input": e.input,
                })).collect::<Vec<_>>(),
            });
            super::emit(&serde_json::to_string(&out)?)?;
        }
        MeasureFormat::Policy => {
            super::emit(&std::format!(
                "# sigil-verify measure tdx: TDVF {} sha256 {} (per-page MEM.PAGE.ADD + MR.EXTEND, upstream KVM/QEMU)",
                a.tdvf.display(),
                sha256_hex(&image)
            ))?;
            super::emit("[tdx]")?;
            super::emit(&std::format!("mrtds = [\"{}\"]", hex::encode(m.mrtd)))?;
            if !boot.is_empty() {
                super::emit("events = [")?;
                for e in &boot {
                    super::emit(&std::format!(
                        "  {{ rtmr = {}, digest = \"{}\" }},   # {}",
                        e.rtmr,
                        hex::encode(e.digest),
                        e.what
                    ))?;
                }
                super::emit("]")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
