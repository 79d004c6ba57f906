//! Choosing the CPU evidence backend: by probing the machine, or as configured.
//!
//! Probe order for `auto`: configfs-tsm (one interface for SNP and TDX on
//! kernels >= 6.7), then `/dev/sev-guest`, then the vTPM of an Azure SEV-SNP or
//! TDX confidential VM (`/dev/tpmrm0` with an SEV-SNP or TDX HCL report in NV index
//! 0x01400001; a TPM without that index is no TEE). A TDX guest without configfs-tsm is
//! reported as unsupported (the `/dev/tdx_guest` ioctl would need `unsafe` code,
//! and every kernel with TDX guest support in the clouds ships configfs-tsm). No
//! TEE found means no backend: the agent then serves tiers 1 and 2 only. The
//! simulator is never chosen by probing.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::backend::azure_vtpm::{AzureVtpmSource, IMDS_TDQUOTE_URL, ImdsTdQuote, TdQuoteSource};
use super::backend::snp::{SEV_GUEST_DEVICE, SevGuestSource};
use super::backend::tsm::{StdFs, TSM_REPORT_ROOT, TsmSource};
use super::tpm::TPM_DEVICE;
use super::{EvidenceError, EvidenceSource};
use crate::collateral::tdx::TdxCollateralSource;
use crate::collateral::vcek::{IMDS_THIM_URL, ImdsVcek, VcekSource};

/// The legacy TDX guest device.
pub const TDX_GUEST_DEVICE: &str = "/dev/tdx_guest";

/// A configured backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Probe the machine.
    Auto,
    /// SEV-SNP through `/dev/sev-guest`.
    SevGuest,
    /// SEV-SNP or TDX through configfs-tsm.
    Tsm,
    /// TDX through `/dev/tdx_guest` (not supported by this build; use `tsm`).
    TdxGuest,
    /// SEV-SNP or TDX on Azure confidential VMs through the vTPM (`/dev/tpmrm0`).
    AzureVtpm,
    /// The simulator (feature `simulator`, and `allow_simulated`).
    Simulated,
    /// No evidence.
    None,
}

impl FromStr for Backend {
    type Err = EvidenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "sev-guest" => Self::SevGuest,
            "tsm" => Self::Tsm,
            "tdx-guest" => Self::TdxGuest,
            "azure-vtpm" => Self::AzureVtpm,
            "simulated" => Self::Simulated,
            "none" => Self::None,
            other => {
                return Err(EvidenceError::Unavailable {
                    backend: other.into(),
                    reason: "unknown backend (auto, sev-guest, tsm, tdx-guest, azure-vtpm, simulated, none)"
                        .into(),
                });
            }
        })
    }
}

/// Where to look and what is allowed.
#[derive(Clone)]
pub struct DetectOptions {
    /// The backend, or `Auto`.
    pub backend: Backend,
    /// Whether the simulator may be used.
    pub allow_simulated: bool,
    /// The configfs-tsm report directory.
    pub tsm_root: PathBuf,
    /// The SEV guest device.
    pub sev_guest_device: PathBuf,
    /// The TDX guest device.
    pub tdx_guest_device: PathBuf,
    /// VMPL for SEV-SNP reports through `/dev/sev-guest`.
    pub vmpl: u32,
    /// DCAP collateral added to TDX quotes (without it TDX receipts cannot be
    /// verified offline).
    pub tdx_collateral: Option<Arc<dyn TdxCollateralSource>>,
    /// The TPM device (Azure vTPM backend).
    pub tpm_device: PathBuf,
    /// The TPM's firmware event log (Azure vTPM backend); a missing file is no log.
    pub tpm_event_log: PathBuf,
    /// Where the Azure vTPM backend gets the VCEK; Azure IMDS when `None`.
    pub azure_vcek: Option<Arc<dyn VcekSource>>,
    /// Where the Azure vTPM backend gets a TDX VM's TD quote; Azure IMDS when `None`.
    pub azure_td_quotes: Option<Arc<dyn TdQuoteSource>>,
    /// Where the sev-guest and configfs-tsm backends get the VCEK when the host supplies
    /// no certificates with the report (AMD KDS or a file); none when `None`.
    pub snp_vcek: Option<Arc<dyn VcekSource>>,
}

impl std::fmt::Debug for DetectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectOptions")
            .field("backend", &self.backend)
            .field("allow_simulated", &self.allow_simulated)
            .field("tsm_root", &self.tsm_root)
            .field("sev_guest_device", &self.sev_guest_device)
            .field("tdx_guest_device", &self.tdx_guest_device)
            .field("vmpl", &self.vmpl)
            .field("tdx_collateral", &self.tdx_collateral.is_some())
            .field("tpm_device", &self.tpm_device)
            .field("tpm_event_log", &self.tpm_event_log)
            .field("azure_vcek", &self.azure_vcek.is_some())
            .field("azure_td_quotes", &self.azure_td_quotes.is_some())
            .field("snp_vcek", &self.snp_vcek.is_some())
            .finish()
    }
}

impl DetectOptions {
    /// The standard paths with `backend`.
    pub fn new(backend: Backend, allow_simulated: bool) -> Self {
        Self {
            backend,
            allow_simulated,
            tsm_root: PathBuf::from(TSM_REPORT_ROOT),
            sev_guest_device: PathBuf::from(SEV_GUEST_DEVICE),
            tdx_guest_device: PathBuf::from(TDX_GUEST_DEVICE),
            vmpl: 0,
            tdx_collateral: None,
            tpm_device: PathBuf::from(TPM_DEVICE),
            tpm_event_log: PathBuf::from(crate::config::TPM_EVENT_LOG_PATH),
            azure_vcek: None,
            azure_td_quotes: None,
            snp_vcek: None,
        }
    }
}

fn unavailable(backend: &str, reason: impl Into<String>) -> EvidenceError {
    EvidenceError::Unavailable {
        backend: backend.into(),
        reason: reason.into(),
    }
}

/// Opens the configured or detected backend; `None` when the machine has no TEE
/// (or `none` is configured).
pub fn open_source(opts: &DetectOptions) -> Result<Option<Arc<dyn EvidenceSource>>, EvidenceError> {
    let source: Arc<dyn EvidenceSource> = match opts.backend {
        Backend::None => return Ok(None),
        Backend::Tsm => Arc::new(tsm(opts)?),
        Backend::SevGuest => {
            if !opts.sev_guest_device.exists() {
                return Err(unavailable(
                    "sev-guest",
                    format!("{} does not exist", opts.sev_guest_device.display()),
                ));
            }
            Arc::new(SevGuestSource::open(opts.vmpl)?.with_vcek_source(opts.snp_vcek.clone()))
        }
        Backend::TdxGuest => {
            return Err(unavailable(
                "tdx-guest",
                "the /dev/tdx_guest ioctl is not supported by this build; use the tsm backend (Linux >= 6.7)",
            ));
        }
        Backend::AzureVtpm => {
            if !opts.tpm_device.exists() {
                return Err(unavailable(
                    "azure-vtpm",
                    format!("{} does not exist", opts.tpm_device.display()),
                ));
            }
            Arc::new(azure_vtpm(opts)?)
        }
        Backend::Simulated => return simulated(opts.allow_simulated).map(Some),
        Backend::Auto => return auto(opts),
    };
    tracing::info!(backend = source.name(), tee = %source.tee(), "evidence backend");
    Ok(Some(source))
}

/// The configfs-tsm source at `opts.tsm_root`, adding collateral to TDX quotes.
fn tsm(opts: &DetectOptions) -> Result<TsmSource, EvidenceError> {
    let s = TsmSource::with_fs(Box::new(StdFs), opts.tsm_root.clone())?;
    if s.tee() == attestation_verifier::receipt::TeeKind::SevSnp {
        return Ok(s.with_vcek_source(opts.snp_vcek.clone()));
    }
    if s.tee() != attestation_verifier::receipt::TeeKind::Tdx {
        return Ok(s);
    }
    Ok(match &opts.tdx_collateral {
        Some(c) => s.with_tdx_collateral(Box::new(Arc::clone(c))),
        None => {
            tracing::warn!(
                "TDX without a collateral source: bundles will lack DCAP collateral and receipts cannot be verified offline"
            );
            s
        }
    })
}

/// The Azure vTPM source on `opts.tpm_device`, with the configured VCEK and TD quote
/// sources (Azure IMDS by default), the TDX collateral source, and the TPM's event log
/// at `opts.tpm_event_log`.
fn azure_vtpm(opts: &DetectOptions) -> Result<AzureVtpmSource, EvidenceError> {
    let vcek: Box<dyn VcekSource> = match &opts.azure_vcek {
        Some(v) => Box::new(Arc::clone(v)),
        None => Box::new(ImdsVcek::new(
            IMDS_THIM_URL,
            std::time::Duration::from_secs(10),
        )),
    };
    let s = AzureVtpmSource::open(&opts.tpm_device, vcek)?;
    let s = azure_tdx(s, opts);
    Ok(s.with_event_log_file(&opts.tpm_event_log))
}

/// An Azure TDX VM's source with its TD quote and collateral sources (SEV-SNP: as is).
fn azure_tdx(s: AzureVtpmSource, opts: &DetectOptions) -> AzureVtpmSource {
    if s.tee() != attestation_verifier::receipt::TeeKind::Tdx {
        return s;
    }
    let quotes: Box<dyn TdQuoteSource> = match &opts.azure_td_quotes {
        Some(q) => Box::new(Arc::clone(q)),
        None => Box::new(ImdsTdQuote::new(
            IMDS_TDQUOTE_URL,
            std::time::Duration::from_secs(10),
        )),
    };
    let s = s.with_td_quotes(quotes);
    match &opts.tdx_collateral {
        Some(c) => s.with_tdx_collateral(Box::new(Arc::clone(c))),
        None => {
            tracing::warn!(
                "Azure TDX without a collateral source: bundles will lack DCAP collateral and receipts cannot be verified offline"
            );
            s
        }
    }
}

fn auto(opts: &DetectOptions) -> Result<Option<Arc<dyn EvidenceSource>>, EvidenceError> {
    if opts.tsm_root.is_dir() {
        match tsm(opts) {
            Ok(s) => {
                tracing::info!(backend = "tsm", tee = %s.tee(), "evidence backend detected");
                return Ok(Some(Arc::new(s)));
            }
            Err(e) => tracing::warn!(error = %e, "configfs-tsm present but unusable"),
        }
    }
    if opts.sev_guest_device.exists() {
        let s = SevGuestSource::open(opts.vmpl)?.with_vcek_source(opts.snp_vcek.clone());
        tracing::info!(backend = "sev-guest", "evidence backend detected");
        return Ok(Some(Arc::new(s)));
    }
    if opts.tpm_device.exists() {
        match azure_vtpm(opts) {
            Ok(s) => {
                tracing::info!(backend = "azure-vtpm", "evidence backend detected");
                return Ok(Some(Arc::new(s)));
            }
            Err(e) => tracing::info!(error = %e, "TPM present but no Azure SEV-SNP or TDX report"),
        }
    }
    if opts.tdx_guest_device.exists() {
        return Err(unavailable(
            "auto",
            "TDX guest without configfs-tsm: the /dev/tdx_guest ioctl is not supported by this build",
        ));
    }
    tracing::info!("no TEE found: receipts will carry no evidence (tiers 1 and 2 only)");
    Ok(None)
}

#[cfg(feature = "simulator")]
fn simulated(allow: bool) -> Result<Arc<dyn EvidenceSource>, EvidenceError> {
    if !allow {
        return Err(unavailable(
            "simulated",
            "evidence.allow_simulated is false",
        ));
    }
    Ok(Arc::new(
        super::backend::simulated::SimulatedEvidenceSource::new()?,
    ))
}

#[cfg(not(feature = "simulator"))]
fn simulated(_allow: bool) -> Result<Arc<dyn EvidenceSource>, EvidenceError> {
    Err(unavailable(
        "simulated",
        "this build has no simulator (build with the `simulator` feature)",
    ))
}
