//! DCAP collateral for the agent's TDX quotes.
//!
//! Sources, for the quote's platform (FMSPC and PCK CA, read from the PCK
//! certificate inside the quote):
//! 1. memory, while its `nextUpdate` is more than `refresh_before_secs` away;
//! 2. Intel's PCS or a PCCS ([`CollateralFetcher`]), through its disk cache
//!    under `cache_dir/tdx` (reused on the same terms, otherwise fetched again);
//! 3. the operator's collateral file (the verifier's collateral JSON), re-read
//!    each time memory is not fresh enough.
//!
//! Of what these give, the collateral with the latest `nextUpdate` that is still
//! valid now is used. A failed or unfruitful fetch is not retried for
//! `retry_secs` while the collateral in memory is still valid. Collateral for
//! another platform, or only expired collateral, is an error: a bundle carrying
//! it could never verify.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::pcs::CollateralFetcher;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{PckCaKind, TdxCollateral, pck_fmspc_unverified};

use super::http::AgentHttp;
use super::{CollateralError, FetchSettings};

/// DCAP collateral for a TDX quote (PCK CRL, TCB Info, QE Identity and their
/// chains), as the verifier's collateral JSON. It goes into the bundle (and so
/// into its digest) when the quote is collected; a PCS/PCCS client implements it.
pub trait TdxCollateralSource: Send + Sync {
    /// The collateral for `quote`'s platform.
    fn collateral(&self, quote: &[u8]) -> Result<Vec<u8>, CollateralError>;
}

impl<T: TdxCollateralSource + ?Sized> TdxCollateralSource for std::sync::Arc<T> {
    fn collateral(&self, quote: &[u8]) -> Result<Vec<u8>, CollateralError> {
        (**self).collateral(quote)
    }
}

/// Collateral held in memory for one platform.
#[derive(Clone, Debug)]
struct Held {
    json: Vec<u8>,
    next_update: UnixTime,
    /// When the sources were last consulted for this platform.
    checked_at: UnixTime,
}

/// Supplies the DCAP collateral of TDX quotes (see the module documentation).
pub struct TdxCollateralProvider {
    settings: FetchSettings,
    fetcher: Option<CollateralFetcher<AgentHttp>>,
    file: Option<PathBuf>,
    held: Mutex<HashMap<([u8; 6], &'static str), Held>>,
}

impl std::fmt::Debug for TdxCollateralProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TdxCollateralProvider")
            .field(
                "service",
                &self.fetcher.as_ref().map(CollateralFetcher::base),
            )
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The FMSPC a collateral's TCB Info is for (lower-case hex).
fn collateral_fmspc(c: &TdxCollateral) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&c.parts().tcb_info).ok()?;
    Some(v.get("fmspc")?.as_str()?.to_ascii_lowercase())
}

impl TdxCollateralProvider {
    /// A provider fetching from the PCS/PCCS at `service` (when given) and
    /// reading `file` (when given).
    pub fn new(settings: FetchSettings, service: Option<&str>, file: Option<PathBuf>) -> Self {
        let fetcher = service.map(|url| {
            CollateralFetcher::new(
                AgentHttp::new(settings.timeout),
                url,
                Some(settings.cache_dir.join("tdx")),
            )
        });
        Self {
            settings,
            fetcher,
            file,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The collateral JSON for `quote`'s platform.
    pub fn collateral_for(&self, quote: &[u8]) -> Result<Vec<u8>, CollateralError> {
        let q = parse_tdx_quote(quote).map_err(|e| CollateralError::Invalid {
            what: "TDX quote".into(),
            reason: e.to_string(),
        })?;
        let (fmspc, ca) = pck_fmspc_unverified(&q).ok_or(CollateralError::NoPlatform)?;
        let now = (self.settings.clock)();
        let fresh_until = UnixTime(now.0.saturating_add(self.settings.refresh_before_secs));
        let key = (fmspc, ca.pcs_name());
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(h) = &held {
            let recently = h.checked_at.0.saturating_add(self.settings.retry_secs) > now.0;
            if h.next_update >= fresh_until || (recently && h.next_update >= now) {
                return Ok(h.json.clone());
            }
        }
        let (candidates, error) = self.gather(&fmspc, ca, now, fresh_until);
        let expected = hex::encode(fmspc);
        let mut best: Option<(TdxCollateral, UnixTime)> =
            held.and_then(|h| Some((TdxCollateral::from_json(&h.json).ok()?, h.next_update)));
        let mut stale = None;
        for (what, c) in candidates {
            let found = collateral_fmspc(&c).unwrap_or_default();
            if found != expected {
                return Err(CollateralError::WrongPlatform {
                    what,
                    expected,
                    found,
                });
            }
            let next_update = c.next_update().map_err(|e| CollateralError::Invalid {
                what: what.clone(),
                reason: e.to_string(),
            })?;
            if next_update < now {
                stale = Some(CollateralError::Stale {
                    what,
                    next_update,
                    now,
                });
            } else if best.as_ref().is_none_or(|(_, n)| next_update > *n) {
                best = Some((c, next_update));
            }
        }
        let Some((c, next_update)) = best.filter(|(_, n)| *n >= now) else {
            return Err(stale
                .or(error)
                .unwrap_or(CollateralError::Unconfigured("TDX collateral")));
        };
        let json = c.to_json().map_err(|e| CollateralError::Invalid {
            what: "TDX collateral".into(),
            reason: e.to_string(),
        })?;
        let json = json.into_bytes();
        if next_update < fresh_until {
            tracing::warn!(fmspc = %expected, next_update = next_update.0, "TDX collateral expires soon and no newer one was found");
        }
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                key,
                Held {
                    json: json.clone(),
                    next_update,
                    checked_at: now,
                },
            );
        Ok(json)
    }

    /// What the service and the file offer now, and the last error met.
    fn gather(
        &self,
        fmspc: &[u8; 6],
        ca: PckCaKind,
        now: UnixTime,
        fresh_until: UnixTime,
    ) -> (Vec<(String, TdxCollateral)>, Option<CollateralError>) {
        let mut out = Vec::new();
        let mut error = None;
        if let Some(f) = &self.fetcher {
            let what = format!("TDX collateral from {}", f.base());
            match f.fetch(fmspc, ca, fresh_until) {
                Ok(c) => out.push((what, c)),
                Err(source) => {
                    tracing::warn!(error = %source, "fetching TDX collateral failed");
                    if let Some(c) = f.cached(fmspc, ca, now) {
                        out.push((format!("cached {what}"), c));
                    }
                    error = Some(CollateralError::Fetch { what, source });
                }
            }
        }
        if let Some(path) = &self.file {
            let what = format!("TDX collateral file {}", path.display());
            match std::fs::read(path) {
                Err(source) => {
                    error = Some(CollateralError::File {
                        path: path.clone(),
                        source,
                    });
                }
                Ok(bytes) => match TdxCollateral::from_json(&bytes) {
                    Ok(c) => out.push((what, c)),
                    Err(e) => {
                        error = Some(CollateralError::Invalid {
                            what,
                            reason: e.to_string(),
                        });
                    }
                },
            }
        }
        (out, error)
    }
}

impl TdxCollateralSource for TdxCollateralProvider {
    fn collateral(&self, quote: &[u8]) -> Result<Vec<u8>, CollateralError> {
        self.collateral_for(quote)
    }
}
