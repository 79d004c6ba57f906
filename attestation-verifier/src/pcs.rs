//! Fetching TDX collateral from Intel's Provisioning Certification Service (PCS) or
//! a caching service (PCCS) that speaks the same v4 API, with a file cache
//! (feature `fetch`; never part of the `no_std` core).
//!
//! Requests for a platform with FMSPC `F` whose PCK certificate was issued by CA
//! `ca` (`platform` or `processor`):
//!
//! | item | request | issuer chain |
//! |---|---|---|
//! | PCK CRL | `GET {base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der` | header `SGX-PCK-CRL-Issuer-Chain` |
//! | TCB Info | `GET {base}/tdx/certification/v4/tcb?fmspc={F}` | header `TCB-Info-Issuer-Chain` |
//! | QE Identity | `GET {base}/tdx/certification/v4/qe/identity` | header `SGX-Enclave-Identity-Issuer-Chain` |
//! | root CA CRL | PCS: `https://certificates.trustedservices.intel.com/IntelSGXRootCA.der`; PCCS: `GET {base}/sgx/certification/v4/rootcacrl` (hex or DER) | |
//!
//! Nothing fetched is trusted: the verifier checks every signature. The cache only
//! saves round trips; an entry is reused until the earliest `nextUpdate` among its
//! items has passed.

use std::format;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::time::UnixTime;
use crate::verify::tdx::{CollateralError, PckCaKind, PcsResponses, TdxCollateral};

/// Intel's PCS.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// The Intel SGX Root CA CRL, as distributed by Intel.
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// Why collateral could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (DNS, TLS, connection, ...).
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The service answered with an error status.
    #[error("GET {url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A response lacks its issuer-chain header.
    #[error("GET {url}: response has no {header} header")]
    MissingHeader {
        /// The URL.
        url: String,
        /// The header.
        header: &'static str,
    },
    /// A response body is not what the API promises.
    #[error("GET {url}: {reason}")]
    Body {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The responses do not form collateral.
    #[error(transparent)]
    Collateral(#[from] CollateralError),
    /// The cache could not be written.
    #[error("collateral cache {path}: {reason}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// An HTTP response: status, headers and body.
#[derive(Clone, Debug, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names as received).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP GET (a trait so the collateral logic is tested without a network).
pub trait HttpGet {
    /// Fetches `url`.
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError>;
}

/// [`HttpGet`] over `ureq` (rustls, Mozilla's roots).
#[derive(Clone, Debug)]
pub struct UreqHttp {
    agent: ureq::Agent,
}

impl Default for UreqHttp {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(core::time::Duration::from_secs(60)))
            .http_status_as_error(false)
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl HttpGet for UreqHttp {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let http = |e: ureq::Error| FetchError::Http {
            url: url.into(),
            reason: e.to_string(),
        };
        let mut resp = self.agent.get(url).call().map_err(http)?;
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec().map_err(http)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The URLs of one platform's collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollateralUrls {
    /// PCK CRL (DER).
    pub pck_crl: String,
    /// TDX TCB Info.
    pub tcb_info: String,
    /// TDX QE Identity.
    pub qe_identity: String,
    /// Root CA CRL.
    pub root_ca_crl: String,
}

/// Normalises a PCS / PCCS base URL: no trailing slash or API path.
pub(crate) fn base_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/');
    for suffix in ["/sgx/certification/v4", "/tdx/certification/v4"] {
        u = u.strip_suffix(suffix).unwrap_or(u).trim_end_matches('/');
    }
    u.to_string()
}

/// Whether `base` is Intel's PCS (rather than a PCCS).
pub(crate) fn is_intel_pcs(base: &str) -> bool {
    base_url(base).eq_ignore_ascii_case(INTEL_PCS_URL)
}

/// The collateral URLs for a platform.
pub(crate) fn collateral_urls(base: &str, fmspc: &[u8; 6], ca: PckCaKind) -> CollateralUrls {
    let base = base_url(base);
    let root_ca_crl = if is_intel_pcs(&base) {
        INTEL_ROOT_CA_CRL_URL.to_string()
    } else {
        format!("{base}/sgx/certification/v4/rootcacrl")
    };
    CollateralUrls {
        pck_crl: format!(
            "{base}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
            ca.pcs_name()
        ),
        tcb_info: format!(
            "{base}/tdx/certification/v4/tcb?fmspc={}",
            hex::encode_upper(fmspc)
        ),
        qe_identity: format!("{base}/tdx/certification/v4/qe/identity"),
        root_ca_crl,
    }
}

/// Decodes `%XX` escapes (issuer chains arrive URL-encoded in headers).
///
/// Hand-written: a dozen lines do not justify another dependency.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        let hex_pair = b
            .get(i.saturating_add(1)..i.saturating_add(3))
            .and_then(|h| core::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex_pair) {
            (b'%', Some(v)) => {
                out.push(v);
                i = i.saturating_add(3);
            }
            _ => {
                out.push(c);
                i = i.saturating_add(1);
            }
        }
    }
    out
}

/// The file a platform's collateral is cached in.
pub(crate) fn cache_file(dir: &Path, base: &str, fmspc: &[u8; 6], ca: PckCaKind) -> PathBuf {
    use sha2::Digest;
    let service = sha2::Sha256::digest(base_url(base).as_bytes());
    let tag = hex::encode(service.get(..6).unwrap_or_default());
    dir.join(format!(
        "tdx-{}-{}-{tag}.json",
        hex::encode(fmspc),
        ca.pcs_name()
    ))
}

/// Fetches collateral from a PCS / PCCS, through an optional file cache.
pub struct CollateralFetcher<H: HttpGet> {
    http: H,
    base: String,
    cache_dir: Option<PathBuf>,
}

impl<H: HttpGet> CollateralFetcher<H> {
    /// A fetcher for the service at `base`, caching in `cache_dir` when given.
    pub fn new(http: H, base: &str, cache_dir: Option<PathBuf>) -> Self {
        Self {
            http,
            base: base_url(base),
            cache_dir,
        }
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Cached collateral for the platform that is still fresh at `now`, if any.
    pub fn cached(&self, fmspc: &[u8; 6], ca: PckCaKind, now: UnixTime) -> Option<TdxCollateral> {
        let path = cache_file(self.cache_dir.as_deref()?, &self.base, fmspc, ca);
        let bytes = read_cached(&path)?;
        let c = TdxCollateral::from_json(&bytes).ok()?;
        (c.next_update().ok()? >= now).then_some(c)
    }

    /// The collateral for a platform: from the cache while fresh at `now`, else
    /// fetched (and cached).
    pub fn fetch(
        &self,
        fmspc: &[u8; 6],
        ca: PckCaKind,
        now: UnixTime,
    ) -> Result<TdxCollateral, FetchError> {
        if let Some(c) = self.cached(fmspc, ca, now) {
            return Ok(c);
        }
        let c = self.fetch_fresh(fmspc, ca)?;
        if let Some(dir) = &self.cache_dir {
            let path = cache_file(dir, &self.base, fmspc, ca);
            let cache_err = |e: std::io::Error| FetchError::Cache {
                path: path.clone(),
                reason: e.to_string(),
            };
            std::fs::create_dir_all(dir).map_err(cache_err)?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, c.to_json()?).map_err(cache_err)?;
            std::fs::rename(&tmp, &path).map_err(cache_err)?;
        }
        Ok(c)
    }

    /// Fetches the collateral, bypassing the cache.
    pub(crate) fn fetch_fresh(
        &self,
        fmspc: &[u8; 6],
        ca: PckCaKind,
    ) -> Result<TdxCollateral, FetchError> {
        let urls = collateral_urls(&self.base, fmspc, ca);
        let (pck_crl, pck_chain) =
            self.get_with_chain(&urls.pck_crl, &["SGX-PCK-CRL-Issuer-Chain"])?;
        let (tcb_info, tcb_chain) = self.get_with_chain(
            &urls.tcb_info,
            &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
        )?;
        let (qe_identity, qe_chain) =
            self.get_with_chain(&urls.qe_identity, &["SGX-Enclave-Identity-Issuer-Chain"])?;
        let root = self.get(&urls.root_ca_crl)?.body;
        let root_ca_crl = der_or_hex(&urls.root_ca_crl, &root)?;
        let pck_crl = der_or_hex(&urls.pck_crl, &pck_crl)?;
        Ok(TdxCollateral::from_pcs(&PcsResponses {
            pck_crl: &pck_crl,
            pck_crl_issuer_chain: &pck_chain,
            root_ca_crl: &root_ca_crl,
            tcb_info: &tcb_info,
            tcb_info_issuer_chain: &tcb_chain,
            qe_identity: &qe_identity,
            qe_identity_issuer_chain: &qe_chain,
        })?)
    }

    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let r = self.http.get(url)?;
        if !(200..300).contains(&r.status) {
            return Err(FetchError::Status {
                url: url.into(),
                status: r.status,
            });
        }
        Ok(r)
    }

    fn get_with_chain(
        &self,
        url: &str,
        headers: &[&'static str],
    ) -> Result<(Vec<u8>, Vec<u8>), FetchError> {
        let r = self.get(url)?;
        let chain = headers
            .iter()
            .find_map(|h| r.header(h))
            .map(percent_decode)
            .ok_or_else(|| FetchError::MissingHeader {
                url: url.into(),
                header: headers.first().copied().unwrap_or_default(),
            })?;
        Ok((r.body, chain))
    }
}

/// A CRL body: DER as is, or hex-encoded DER (what PCCS serves for the root CA CRL).
fn der_or_hex(url: &str, body: &[u8]) -> Result<Vec<u8>, FetchError> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = core::str::from_utf8(body).map_err(|_| FetchError::Body {
        url: url.into(),
        reason: "CRL is neither DER nor hex".into(),
    })?;
    hex::decode(text.trim()).map_err(|_| FetchError::Body {
        url: url.into(),
        reason: "CRL is neither DER nor hex".into(),
    })
}

#[cfg(test)]
mod tests;

/// The most bytes read from one cache file (fetched collateral or RIM): a larger file is
/// treated as absent and fetched again.
pub const MAX_CACHED_LEN: u64 = 16 << 20;

/// A cache file's bytes, read through a reader bounded at [`MAX_CACHED_LEN`]; `None` when it
/// cannot be read or is larger.
pub(crate) fn read_cached(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_CACHED_LEN.saturating_add(1))
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_CACHED_LEN).then_some(bytes)
}
