//! AMD's certificate revocation lists for SEV-SNP evidence, so a bundle proves its
//! VCEK/VLEK (and the ASK/ASVK above it) was not revoked recently.
//!
//! AMD's Key Distribution Service serves one CRL per product line and key kind
//! ("VCEK Certificate and KDS Interface Specification", chapter 4), signed by the
//! product's ARK:
//!
//! * `GET {kds}/vcek/v1/{product}/crl` for VCEK-signed reports,
//! * `GET {kds}/vlek/v1/{product}/crl` for VLEK-signed reports.
//!
//! Steps for a report:
//! 1. The product: the report's CPUID fields (v3+) or `collateral.snp_product`; the
//!    key kind: the report's signing key.
//! 2. Memory, then the disk cache (`{cache_dir}/snp/crl-{vcek|vlek}-{product}.der`).
//!    What is held is used while `thisUpdate` is at most `collateral.snp_crl_max_age_secs`
//!    old and `nextUpdate` is still ahead.
//! 3. Otherwise KDS, at most once per `retry_secs`. What comes back must parse, be
//!    signed by AMD's pinned ARK of the product and be current; it is then kept in
//!    memory and on disk. When the fetch fails, a held CRL that is still before its
//!    `nextUpdate` is used (with a warning); else there is none.
//!
//! The CRL is optional evidence: a failure here never blocks a job. The attestor
//! logs it and bundles the evidence without a CRL, which only policies with
//! `[snp] crl_max_age_secs` refuse.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use attestation_verifier::bundle::MAX_CRL_LEN;
use attestation_verifier::crypto::DefaultCrypto;
use attestation_verifier::evidence::snp::{Product, SigningKey, SnpReport};
use attestation_verifier::pcs::{FetchError, HttpGet};
use attestation_verifier::roots::amd;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::x509::{Cert, Crl};

use super::{CollateralError, FetchSettings, write_atomic};

/// Where the AMD CRL of a report's product line and key kind comes from.
pub trait SnpCrlSource: Send + Sync {
    /// The CRL (DER) for `report`'s product and signing key kind.
    fn crl(&self, report: &SnpReport) -> Result<Vec<u8>, CollateralError>;
}

impl<T: SnpCrlSource + ?Sized> SnpCrlSource for Arc<T> {
    fn crl(&self, report: &SnpReport) -> Result<Vec<u8>, CollateralError> {
        (**self).crl(report)
    }
}

/// A CRL held for one product and key kind.
#[derive(Clone, Debug)]
struct Held {
    der: Vec<u8>,
    this_update: UnixTime,
    next_update: UnixTime,
    /// When it was fetched (Unix seconds; 0 when read from the disk cache).
    fetched_at: u64,
}

/// One product and key kind's state: the CRL held, and the last KDS attempt that
/// failed or was refused (Unix seconds, and why).
#[derive(Clone, Debug, Default)]
struct Slot {
    held: Option<Held>,
    failed: Option<(u64, String)>,
}

/// The key kind's path segment and name.
const fn kind_name(kind: SigningKey) -> &'static str {
    match kind {
        SigningKey::Vcek => "vcek",
        SigningKey::Vlek => "vlek",
    }
}

/// AMD CRLs from KDS, checked against AMD's pinned ARKs, cached in memory and on disk.
pub struct KdsCrl {
    http: Box<dyn HttpGet + Send + Sync>,
    base: String,
    product: Option<Product>,
    settings: FetchSettings,
    max_age_secs: u64,
    arks: Vec<(Product, Cert)>,
    slots: Mutex<HashMap<(Product, &'static str), Slot>>,
}

impl std::fmt::Debug for KdsCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdsCrl")
            .field("base", &self.base)
            .field("product", &self.product)
            .field("max_age_secs", &self.max_age_secs)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KdsCrl {
    /// A client of the KDS at `base` (normally [`crate::config::AMD_KDS_URL`]); `product`
    /// names the product for reports older than v3; a held CRL whose `thisUpdate` is more
    /// than `max_age_secs` old is fetched again.
    pub fn new(
        http: Box<dyn HttpGet + Send + Sync>,
        base: &str,
        product: Option<Product>,
        settings: FetchSettings,
        max_age_secs: u64,
    ) -> Self {
        let arks = Product::ALL
            .into_iter()
            .filter_map(|p| {
                Cert::from_der("ARK", amd::roots(p).ark)
                    .ok()
                    .map(|c| (p, c))
            })
            .collect();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            product,
            settings,
            max_age_secs,
            arks,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Trusts `ark` (DER) instead of AMD's pinned ARK of `product` (tests with a
    /// synthetic PKI).
    #[cfg(test)]
    #[allow(clippy::unwrap_used)] // tests: a bad test ARK is the failure report
    pub(crate) fn with_ark(mut self, product: Product, ark: &[u8]) -> Self {
        self.arks.retain(|(p, _)| *p != product);
        self.arks
            .push((product, Cert::from_der("ARK", ark).unwrap()));
        self
    }

    /// The CRL's URL for `product` and `kind`.
    pub fn crl_url(&self, product: Product, kind: SigningKey) -> String {
        format!(
            "{}/{}/v1/{}/crl",
            self.base,
            kind_name(kind),
            product.name()
        )
    }

    fn cache_path(&self, product: Product, kind: SigningKey) -> PathBuf {
        self.settings.cache_dir.join("snp").join(format!(
            "crl-{}-{}.der",
            kind_name(kind),
            product.name()
        ))
    }

    fn what(product: Product, kind: SigningKey) -> String {
        format!("AMD {} CRL for {}", kind.name(), product.name())
    }

    /// Step 1.
    fn product(&self, report: &SnpReport) -> Result<Product, CollateralError> {
        report
            .product_from_cpuid()
            .or(self.product)
            .ok_or(CollateralError::NotFetchable {
                what: "AMD CRL".into(),
                reason: "the report names no CPU model (version < 3): set collateral.snp_product",
            })
    }

    /// Parses `der` and checks it as a verifier will: size, ARK signature, and that
    /// `now` lies in `[thisUpdate, nextUpdate)`.
    fn check(
        &self,
        product: Product,
        kind: SigningKey,
        der: Vec<u8>,
        now: UnixTime,
    ) -> Result<Held, CollateralError> {
        let invalid = |reason: String| CollateralError::Invalid {
            what: Self::what(product, kind),
            reason,
        };
        if der.len() > MAX_CRL_LEN {
            return Err(invalid(format!(
                "{} bytes, more than the {MAX_CRL_LEN} a bundle may carry",
                der.len()
            )));
        }
        let ark = self
            .arks
            .iter()
            .find(|(p, _)| *p == product)
            .map(|(_, c)| c)
            .ok_or_else(|| invalid("no pinned ARK".into()))?;
        let crl = Crl::from_der("CRL", &der).map_err(|e| invalid(e.to_string()))?;
        let crypto = DefaultCrypto::default();
        crl.verify_signature(&crypto, "CRL", ark, "ARK")
            .map_err(|e| invalid(e.to_string()))?;
        let next_update = crl
            .next_update()
            .ok_or_else(|| invalid("no nextUpdate".into()))?;
        if now < crl.this_update() {
            return Err(invalid(format!(
                "issued at {}, after the current time {now}",
                crl.this_update()
            )));
        }
        if next_update <= now {
            return Err(CollateralError::Stale {
                what: Self::what(product, kind),
                next_update,
                now,
            });
        }
        Ok(Held {
            der,
            this_update: crl.this_update(),
            next_update,
            fetched_at: 0,
        })
    }

    /// Whether `held` may go into a bundle at `now` without fetching again: before its
    /// `nextUpdate`, and issued at most `max_age_secs` ago or fetched within `retry_secs`
    /// (KDS may not have issued a newer one yet).
    fn fresh(&self, held: &Held, now: UnixTime) -> bool {
        let now_s = now.as_secs();
        now < held.next_update
            && (now_s.saturating_sub(held.this_update.as_secs()) <= self.max_age_secs
                || now_s.saturating_sub(held.fetched_at) < self.settings.retry_secs)
    }

    /// Step 2 on disk.
    fn cached_on_disk(&self, product: Product, kind: SigningKey, now: UnixTime) -> Option<Held> {
        let path = self.cache_path(product, kind);
        let der = std::fs::read(&path).ok()?;
        match self.check(product, kind, der, now) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached AMD CRL unusable");
                None
            }
        }
    }

    /// Step 3.
    fn fetch(
        &self,
        product: Product,
        kind: SigningKey,
        now: UnixTime,
    ) -> Result<Held, CollateralError> {
        let url = self.crl_url(product, kind);
        let fetch = |source: FetchError| CollateralError::Fetch {
            what: Self::what(product, kind),
            source,
        };
        let resp = self.http.get(&url).map_err(fetch)?;
        if resp.status != 200 {
            return Err(fetch(FetchError::Status {
                url,
                status: resp.status,
            }));
        }
        let mut held = self.check(product, kind, resp.body, now)?;
        held.fetched_at = now.as_secs();
        let path = self.cache_path(product, kind);
        if let Err(e) = write_atomic(&path, &held.der) {
            tracing::warn!(path = %path.display(), error = %e, "AMD CRL not cached on disk");
        }
        Ok(held)
    }
}

impl SnpCrlSource for KdsCrl {
    fn crl(&self, report: &SnpReport) -> Result<Vec<u8>, CollateralError> {
        let product = self.product(report)?;
        let kind = report.signing_key;
        let now = (self.settings.clock)();
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = slots.entry((product, kind_name(kind))).or_default();
        if slot.held.is_none() {
            slot.held = self.cached_on_disk(product, kind, now);
        }
        if let Some(h) = &slot.held
            && self.fresh(h, now)
        {
            return Ok(h.der.clone());
        }
        let usable = |slot: &Slot| {
            slot.held
                .as_ref()
                .filter(|h| now < h.next_update)
                .map(|h| h.der.clone())
        };
        if let Some((at, why)) = &slot.failed
            && now.as_secs().saturating_sub(*at) < self.settings.retry_secs
        {
            return usable(slot).ok_or_else(|| CollateralError::Invalid {
                what: Self::what(product, kind),
                reason: format!(
                    "the last fetch failed {}s ago ({why}); next attempt after {}s",
                    now.as_secs().saturating_sub(*at),
                    self.settings.retry_secs
                ),
            });
        }
        match self.fetch(product, kind, now) {
            Ok(h) => {
                tracing::info!(
                    product = product.name(),
                    key = kind.name(),
                    this_update = %h.this_update,
                    next_update = %h.next_update,
                    "AMD CRL fetched from KDS"
                );
                let der = h.der.clone();
                slot.held = Some(h);
                slot.failed = None;
                Ok(der)
            }
            Err(e) => {
                slot.failed = Some((now.as_secs(), e.to_string()));
                match usable(slot) {
                    Some(der) => {
                        tracing::warn!(error = %e, "AMD CRL not refreshed; using the one held");
                        Ok(der)
                    }
                    None => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
