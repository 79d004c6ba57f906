//! Collateral the agent puts into its evidence bundles, so buyers and the chain
//! can verify them offline.
//!
//! * TDX ([`tdx::TdxCollateralProvider`]): the DCAP collateral of the quote's
//!   platform (PCK CRL, root CA CRL, TCB Info, QE Identity and their chains) from
//!   Intel's PCS or a PCCS, and/or an operator-supplied collateral file. Kept in
//!   memory and on disk, and fetched again before its `nextUpdate`.
//! * NVIDIA GPUs ([`gpu::GpuCollateralProvider`]): the driver and VBIOS RIMs the
//!   reports name (from a local directory and/or NVIDIA's RIM service, cached on
//!   disk; RIMs never change once published) and OCSP responses for the device
//!   intermediates and RIM signing certificates (from NVIDIA's OCSP responder,
//!   cached on disk until shortly before their `nextUpdate`).
//!
//! * SEV-SNP ([`snp::KdsVcek`]): the VCEK, ASK and ARK of the report's chip and TCB
//!   from AMD's KDS (or a configured file), for hosts that supply no certificates
//!   with the report; cached on disk per chip and TCB.
//! * SEV-SNP ([`snp_crl::KdsCrl`]): AMD's CRL of the report's product line and key kind
//!   (VCEK or VLEK) from AMD's KDS, cached on disk and fetched again when older than
//!   `snp_crl_max_age_secs` or past its `nextUpdate` (bundle version 3).
//!
//! Nothing fetched is trusted here either: verifiers check every signature. The
//! agent only checks what would make a bundle useless (collateral for another
//! platform, expired collateral, OCSP responses that do not verify), so it never
//! signs receipts over evidence that is bound to fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::pcs::FetchError;
use attestation_verifier::time::UnixTime;

use crate::config::CollateralConfig;

pub mod gpu;
pub mod http;
pub mod snp;
pub mod snp_crl;
pub mod tdx;
pub mod vcek;

/// The time collateral is judged at (the system clock in production).
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    })
}

/// Why collateral could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollateralError {
    /// A request to a collateral service failed.
    #[error("{what}: {source}")]
    Fetch {
        /// What was being fetched.
        what: String,
        /// Why.
        source: FetchError,
    },
    /// A configured file could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Collateral that cannot serve (does not parse, wrong shape).
    #[error("{what}: {reason}")]
    Invalid {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
    /// The quote names no platform (FMSPC) to fetch collateral for.
    #[error("the TDX quote's PCK certificate names no FMSPC")]
    NoPlatform,
    /// Collateral for another platform.
    #[error("{what} is for FMSPC {found}, the quote's platform is {expected}")]
    WrongPlatform {
        /// Where it came from.
        what: String,
        /// The quote's FMSPC (hex).
        expected: String,
        /// The collateral's FMSPC (hex).
        found: String,
    },
    /// Every source only had collateral that expired.
    #[error("{what} expired at {next_update} (now {now}) and no newer collateral could be fetched")]
    Stale {
        /// What.
        what: String,
        /// Its `nextUpdate`.
        next_update: UnixTime,
        /// The time it was judged at.
        now: UnixTime,
    },
    /// The collateral exists but cannot be fetched for this evidence.
    #[error("{what}: {reason}")]
    NotFetchable {
        /// What.
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// No source is configured for collateral that is needed.
    #[error("no source configured for {0}")]
    Unconfigured(&'static str),
}

/// Settings shared by both providers, from the `[collateral]` table.
#[derive(Clone)]
pub struct FetchSettings {
    /// Directory of the on-disk caches.
    pub cache_dir: PathBuf,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Collateral whose `nextUpdate` is closer than this is fetched again.
    pub refresh_before_secs: u64,
    /// Least time between two network attempts for one item that failed or
    /// returned nothing newer.
    pub retry_secs: u64,
    /// The clock.
    pub clock: Clock,
}

impl std::fmt::Debug for FetchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchSettings")
            .field("cache_dir", &self.cache_dir)
            .field("timeout", &self.timeout)
            .field("refresh_before_secs", &self.refresh_before_secs)
            .field("retry_secs", &self.retry_secs)
            .finish_non_exhaustive()
    }
}

impl FetchSettings {
    /// The settings of the `[collateral]` table `c` with the system clock; the cache is in
    /// `state_dir` unless `c` names one.
    pub fn from_config(c: &CollateralConfig, state_dir: &Path) -> Self {
        Self {
            cache_dir: c
                .cache_dir
                .clone()
                .unwrap_or_else(|| state_dir.join("collateral")),
            timeout: Duration::from_secs(c.timeout_secs),
            refresh_before_secs: c.refresh_before_secs,
            retry_secs: c.retry_secs,
            clock: system_clock(),
        }
    }
}

/// A configured URL: `None` when empty (the source is disabled).
fn url(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// The TDX provider `c` asks for (`None` when neither a PCS/PCCS nor a file is configured).
pub fn tdx_from_config(
    c: &CollateralConfig,
    state_dir: &Path,
) -> Option<Arc<tdx::TdxCollateralProvider>> {
    let pccs = url(&c.pccs_url);
    if pccs.is_none() && c.tdx_file.is_none() {
        return None;
    }
    Some(Arc::new(tdx::TdxCollateralProvider::new(
        FetchSettings::from_config(c, state_dir),
        pccs,
        c.tdx_file.clone(),
    )))
}

/// The GPU provider `c` asks for (`None` when no RIM or OCSP source is configured).
pub fn gpu_from_config(
    c: &CollateralConfig,
    state_dir: &Path,
) -> Option<Arc<gpu::GpuCollateralProvider>> {
    let rim_service = url(&c.rim_service_url);
    let ocsp = url(&c.ocsp_url);
    if rim_service.is_none() && ocsp.is_none() && c.rim_dir.is_none() {
        return None;
    }
    Some(Arc::new(gpu::GpuCollateralProvider::new(
        FetchSettings::from_config(c, state_dir),
        c.rim_dir.clone(),
        rim_service,
        ocsp,
    )))
}

/// Where SEV-SNP endorsement certificates come from when the host supplies none with
/// the report: `collateral.snp_vcek_file` when set, else AMD KDS at
/// `collateral.amd_kds_url` (`None` when that is `""`).
pub fn snp_vcek_from_config(
    c: &CollateralConfig,
    state_dir: &Path,
) -> Option<Arc<dyn vcek::VcekSource>> {
    if let Some(path) = &c.snp_vcek_file {
        return Some(Arc::new(vcek::VcekFile::new(path.clone())));
    }
    let base = url(&c.amd_kds_url)?;
    let settings = FetchSettings::from_config(c, state_dir);
    let http = http::AgentHttp::new(settings.timeout);
    Some(Arc::new(snp::KdsVcek::new(
        Box::new(http),
        base,
        c.snp_product(),
        settings,
    )))
}

/// The AMD CRL source `c` asks for: KDS at `collateral.amd_kds_url` when
/// `collateral.snp_crl` is set (`None` when it is not, or the URL is `""`).
pub fn snp_crl_from_config(c: &CollateralConfig, state_dir: &Path) -> Option<Arc<snp_crl::KdsCrl>> {
    if !c.snp_crl {
        return None;
    }
    let base = url(&c.amd_kds_url)?;
    let settings = FetchSettings::from_config(c, state_dir);
    let http = http::AgentHttp::new(settings.timeout);
    Some(Arc::new(snp_crl::KdsCrl::new(
        Box::new(http),
        base,
        c.snp_product(),
        settings,
        c.snp_crl_max_age_secs,
    )))
}

/// Writes `bytes` to `path` atomically (a temporary file, then a rename), so a
/// concurrent reader never sees half a file.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
pub(crate) mod tests;
