//! SEV-SNP endorsement certificates for hosts that supply none with the report.
//!
//! A guest's extended report carries the VCEK (or VLEK) only when the host
//! provisioned it (`SNP_SET_EXT_CONFIG`); many clouds, Google Cloud among them, and
//! plain KVM hosts do not. The VCEK is then fetched from AMD's Key Distribution
//! Service (KDS, "VCEK Certificate and KDS Interface Specification", chapter 4):
//!
//! * `GET {kds}/vcek/v1/{product}/{hwID}?{SPLs}`: the VCEK (DER) of one chip at one
//!   TCB. `hwID` is the report's `CHIP_ID` in hex (its first 8 bytes on Turin); the
//!   SPLs are the report's `REPORTED_TCB` components (`blSPL`, `teeSPL`, `snpSPL`,
//!   `ucodeSPL`, and `fmcSPL` first on Turin).
//! * `GET {kds}/vcek/v1/{product}/cert_chain`: the ASK and the ARK (PEM, in that order).
//!
//! Steps for a report:
//! 1. The report must be VCEK-signed with its chip id unmasked (a VLEK only comes from
//!    the cloud provider; a masked chip id names no chip), and name its product (CPUID
//!    fields of report v3+, or `collateral.snp_product`).
//! 2. Memory, then the disk cache (`{cache_dir}/snp/`), then the KDS.
//! 3. What was found is checked as a verifier will check it: the chain to AMD's pinned
//!    ARK of the product, and the report's signature under the VCEK (so it is this
//!    chip's VCEK at this TCB). Certificates that fail are not used or kept.
//!
//! KDS limits request rates, so a chip's certificates are fetched once per TCB and kept
//! on disk across restarts, and a failed fetch is not retried within `retry_secs`.

use std::path::PathBuf;
use std::sync::Mutex;

use attestation_verifier::crypto::DefaultCrypto;
use attestation_verifier::evidence::nvgpu::split_pem_chain;
use attestation_verifier::evidence::snp::{Product, SigningKey, SnpReport, TcbVersion};
use attestation_verifier::pcs::{FetchError, HttpGet};
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};

use super::vcek::{ChipTcb, SnpCertificates, VcekFile, VcekSource};
use super::{CollateralError, FetchSettings, write_atomic};

/// AMD's Key Distribution Service.
pub use crate::config::AMD_KDS_URL;

const WHAT: &str = "VCEK from AMD KDS";

/// The VCEK (with ASK and ARK) of a report's chip and TCB from AMD KDS, cached.
pub struct KdsVcek {
    http: Box<dyn HttpGet + Send + Sync>,
    base: String,
    product: Option<Product>,
    settings: FetchSettings,
    held: Mutex<Option<(ChipTcb, SnpCertificates)>>,
    /// The last failed fetch: for what, when (Unix seconds) and why.
    failed: Mutex<Option<(ChipTcb, u64, String)>>,
}

impl std::fmt::Debug for KdsVcek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdsVcek")
            .field("base", &self.base)
            .field("product", &self.product)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KdsVcek {
    /// A client of the KDS at `base` (normally [`AMD_KDS_URL`]); `product` names the
    /// product for reports older than v3, which do not.
    pub fn new(
        http: Box<dyn HttpGet + Send + Sync>,
        base: &str,
        product: Option<Product>,
        settings: FetchSettings,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            product,
            settings,
            held: Mutex::new(None),
            failed: Mutex::new(None),
        }
    }

    /// The VCEK's URL for `report` of `product`.
    pub fn vcek_url(&self, report: &SnpReport, product: Product) -> String {
        let tcb = TcbVersion::decode(report.reported_tcb, product);
        let spl = |name: &str, v: u8| format!("{name}SPL={v}");
        let mut params = Vec::with_capacity(5);
        if product == Product::Turin {
            params.push(spl("fmc", tcb.fmc));
        }
        params.extend([
            spl("bl", tcb.bootloader),
            spl("tee", tcb.tee),
            spl("snp", tcb.snp),
            spl("ucode", tcb.microcode),
        ]);
        format!(
            "{}/vcek/v1/{}/{}?{}",
            self.base,
            product.name(),
            hex::encode(hw_id(report, product)),
            params.join("&")
        )
    }

    fn cache_path(&self, report: &SnpReport, product: Product) -> PathBuf {
        self.settings.cache_dir.join("snp").join(format!(
            "{}-{}-{:016x}.pem",
            product.name(),
            hex::encode(hw_id(report, product)),
            report.reported_tcb
        ))
    }

    /// Step 1: the product of a report whose VCEK KDS can give.
    fn product(&self, report: &SnpReport) -> Result<Product, CollateralError> {
        let refuse = |reason: &'static str| CollateralError::NotFetchable {
            what: WHAT.into(),
            reason,
        };
        if report.signing_key == SigningKey::Vlek {
            return Err(refuse(
                "the report is VLEK-signed; only the cloud provider can supply its VLEK",
            ));
        }
        if report.mask_chip_key || report.chip_id == [0; 64] {
            return Err(refuse("the report masks its chip id, so it names no chip"));
        }
        report.product_from_cpuid().or(self.product).ok_or(refuse(
            "the report names no CPU model (version < 3): set collateral.snp_product",
        ))
    }

    /// Step 3: `certs` are this report's chip's, at its TCB, under a pinned ARK.
    fn check(&self, report: &SnpReport, certs: &SnpCertificates) -> Result<(), CollateralError> {
        let invalid = |reason: String| CollateralError::Invalid {
            what: WHAT.into(),
            reason,
        };
        let vek = certs
            .vcek
            .as_deref()
            .ok_or_else(|| invalid("no VCEK".into()))?;
        let mut verifier = SnpVerifier::new(DefaultCrypto::default())
            .map_err(|e| invalid(format!("pinned AMD roots: {e}")))?;
        let collateral = SnpCollateral {
            vek,
            intermediate: certs.ask.as_deref(),
            ark: certs.ark.as_deref(),
            crl: None,
        };
        verifier
            .verify(report, &collateral, (self.settings.clock)())
            .map(drop)
            .map_err(|f| invalid(format!("does not verify the report: {f}")))
    }

    /// Step 2 on disk.
    fn cached_on_disk(&self, report: &SnpReport, product: Product) -> Option<SnpCertificates> {
        let path = self.cache_path(report, product);
        if !path.exists() {
            return None;
        }
        // The file is what `collateral.snp_vcek_file` takes: PEM, sorted by common name.
        let certs = VcekFile::new(path.clone()).certificates(report).ok()?;
        match self.check(report, &certs) {
            Ok(()) => Some(certs),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached VCEK unusable; fetching it again");
                None
            }
        }
    }

    /// Step 2 from the KDS.
    fn fetch(
        &self,
        report: &SnpReport,
        product: Product,
    ) -> Result<SnpCertificates, CollateralError> {
        let vcek_url = self.vcek_url(report, product);
        // DER, as the KDS specification gives it.
        let vcek = self.get(&vcek_url)?;
        let chain_url = format!("{}/vcek/v1/{}/cert_chain", self.base, product.name());
        let chain = self.get(&chain_url)?;
        let mut ders = split_pem_chain(&String::from_utf8_lossy(&chain))
            .map_err(|e| CollateralError::Invalid {
                what: format!("AMD KDS {} certificate chain", product.name()),
                reason: e.to_string(),
            })?
            .into_iter();
        let certs = SnpCertificates {
            vcek: Some(vcek),
            vlek: None,
            ask: ders.next(),
            ark: ders.next(),
        };
        self.check(report, &certs)?;
        let path = self.cache_path(report, product);
        if let Err(e) = write_atomic(&path, pem_set(&certs).as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "VCEK not cached on disk");
        }
        Ok(certs)
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, CollateralError> {
        let fetch = |source: FetchError| CollateralError::Fetch {
            what: WHAT.into(),
            source,
        };
        let resp = self.http.get(url).map_err(fetch)?;
        if resp.status != 200 {
            return Err(fetch(FetchError::Status {
                url: url.into(),
                status: resp.status,
            }));
        }
        Ok(resp.body)
    }

    fn certificates_inner(&self, report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        let product = self.product(report)?;
        let key = (report.chip_id, report.reported_tcb);
        if let Some((k, certs)) = lock(&self.held).as_ref()
            && *k == key
        {
            return Ok(certs.clone());
        }
        let certs = match self.cached_on_disk(report, product) {
            Some(c) => c,
            None => {
                let now = (self.settings.clock)().0;
                if let Some((k, at, why)) = lock(&self.failed).as_ref()
                    && *k == key
                    && now.saturating_sub(*at) < self.settings.retry_secs
                {
                    return Err(CollateralError::Invalid {
                        what: WHAT.into(),
                        reason: format!(
                            "the last fetch failed {}s ago ({why}); next attempt after {}s",
                            now.saturating_sub(*at),
                            self.settings.retry_secs
                        ),
                    });
                }
                match self.fetch(report, product) {
                    Ok(c) => {
                        tracing::info!(
                            product = product.name(),
                            tcb = format!("{:#018x}", report.reported_tcb),
                            "VCEK fetched from AMD KDS"
                        );
                        *lock(&self.failed) = None;
                        c
                    }
                    Err(e) => {
                        *lock(&self.failed) = Some((key, now, e.to_string()));
                        return Err(e);
                    }
                }
            }
        };
        *lock(&self.held) = Some((key, certs.clone()));
        Ok(certs)
    }
}

impl VcekSource for KdsVcek {
    fn certificates(&self, report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        self.certificates_inner(report)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hwID KDS names a chip by: the whole chip id, or its first 8 bytes on Turin.
fn hw_id(report: &SnpReport, product: Product) -> &[u8] {
    let len = if product == Product::Turin { 8 } else { 64 };
    report.chip_id.get(..len).unwrap_or(&report.chip_id)
}

/// VCEK, ASK and ARK as one PEM file (the disk cache), in that order.
fn pem_set(certs: &SnpCertificates) -> String {
    [&certs.vcek, &certs.ask, &certs.ark]
        .into_iter()
        .flatten()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
