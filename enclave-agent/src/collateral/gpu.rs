//! RIMs and OCSP responses for the agent's NVIDIA GPU evidence.
//!
//! * RIMs: the ids the reports name (`NV_GPU_DRIVER_<chip>_<version>`,
//!   `NV_GPU_VBIOS_<project>_<sku>_<chip sku>_<version>`), each read from
//!   `rim_dir/<id>.xml` when present, else fetched from the RIM service through
//!   its cache (`cache_dir/rims/<id>.xml`). RIMs are immutable once published, so
//!   they are kept for the process's life. A configured RIM source that cannot
//!   supply a RIM is an error: without it the default `[gpu]` policy rejects
//!   the evidence.
//! * OCSP: one request per certificate (SHA-384 `CertID`, as NVIDIA's verifier
//!   sends them) for every device-chain intermediate and every RIM signing
//!   certificate below its root, POSTed to the responder. A response is kept
//!   (memory and `cache_dir/ocsp/<sha256 of the CertID>.der`) until
//!   `refresh_before_secs` before its `nextUpdate`. Only responses that verify
//!   (signed by the issuer or its delegate, current, about that certificate) go
//!   into a bundle, because a bad one fails the whole evidence. OCSP is best
//!   effort: the default policy does not require it, so a failure is logged and
//!   the response left out.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use attestation_verifier::bundle::{GpuCollateral, GpuEvidence};
use attestation_verifier::crypto::{Crypto, DefaultCrypto};
use attestation_verifier::evidence::nvgpu::{parse_nvgpu_report, split_pem_chain};
use attestation_verifier::evidence::rim::parse_rim;
use attestation_verifier::rim_service::{RimFetcher, rim_ids};
use attestation_verifier::roots::nvidia;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::ocsp::{CertId, CertStatus, cert_id_sha384, parse_ocsp};
use attestation_verifier::verify::x509::Cert;
use der::Encode;

use super::http::AgentHttp;
use super::{CollateralError, FetchSettings, write_atomic};

/// `OCSPRequest` (RFC 6960 4.1.1) without the optional fields.
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct OcspRequest {
    pub(crate) tbs_request: TbsRequest,
}

/// `TBSRequest`: version (default v1), no requestor name, no extensions.
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct TbsRequest {
    pub(crate) request_list: Vec<Request>,
}

/// `Request`: one certificate, no extensions.
#[derive(Clone, Debug, der::Sequence)]
pub(crate) struct Request {
    pub(crate) req_cert: CertId,
}

/// Media type of an OCSP request body.
const OCSP_REQUEST_TYPE: &str = "application/ocsp-request";

/// The DER `OCSPRequest` for `cert` issued by `issuer`.
pub fn ocsp_request(cert: &Cert, issuer: &Cert) -> Result<Vec<u8>, CollateralError> {
    let invalid = |e: der::Error| CollateralError::Invalid {
        what: format!("OCSP request for {}", cert.subject_cn().unwrap_or_default()),
        reason: e.to_string(),
    };
    let id = cert_id_sha384(&DefaultCrypto::default(), cert, issuer).map_err(invalid)?;
    OcspRequest {
        tbs_request: TbsRequest {
            request_list: vec![Request { req_cert: id }],
        },
    }
    .to_der()
    .map_err(invalid)
}

/// An OCSP response held in memory.
#[derive(Clone, Debug)]
struct HeldResponse {
    der: Vec<u8>,
    next_update: UnixTime,
    checked_at: UnixTime,
}

/// Supplies RIMs and OCSP responses for GPU evidence (see the module documentation).
pub struct GpuCollateralProvider {
    settings: FetchSettings,
    rim_dir: Option<PathBuf>,
    rim_fetcher: Option<RimFetcher<AgentHttp>>,
    ocsp_url: Option<String>,
    http: AgentHttp,
    device_root: Option<Cert>,
    rim_root: Option<Cert>,
    rims: Mutex<HashMap<String, Vec<u8>>>,
    responses: Mutex<HashMap<[u8; 32], HeldResponse>>,
}

impl std::fmt::Debug for GpuCollateralProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuCollateralProvider")
            .field("rim_dir", &self.rim_dir)
            .field("rim_service", &self.rim_fetcher.is_some())
            .field("ocsp_url", &self.ocsp_url)
            .finish_non_exhaustive()
    }
}

/// `(certificate, issuer)` for every certificate of `chain` that is not
/// self-signed; the last one's issuer is `root`.
fn issued_pairs(chain: &[Cert], root: Option<&Cert>) -> Vec<(Cert, Cert)> {
    let mut out = Vec::new();
    for (i, c) in chain.iter().enumerate() {
        if c.issued_by_name(c) {
            continue;
        }
        let issuer = chain.get(i.saturating_add(1)).or(root);
        if let Some(issuer) = issuer {
            out.push((c.clone(), issuer.clone()));
        }
    }
    out
}

fn parse_chain(what: &str, ders: &[Vec<u8>]) -> Result<Vec<Cert>, CollateralError> {
    ders.iter()
        .map(|d| {
            Cert::from_der("certificate", d).map_err(|e| CollateralError::Invalid {
                what: what.to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl GpuCollateralProvider {
    /// A provider reading RIMs from `rim_dir` and/or the RIM service at
    /// `rim_service`, and fetching OCSP responses from `ocsp_url`.
    pub fn new(
        settings: FetchSettings,
        rim_dir: Option<PathBuf>,
        rim_service: Option<&str>,
        ocsp_url: Option<&str>,
    ) -> Self {
        let http = AgentHttp::new(settings.timeout);
        let rim_fetcher = rim_service.map(|url| {
            RimFetcher::new(
                http.clone(),
                url,
                Some(settings.cache_dir.join("rims").as_path()),
            )
        });
        Self {
            rim_dir,
            rim_fetcher,
            ocsp_url: ocsp_url.map(str::to_string),
            http,
            device_root: Cert::from_der("NVIDIA device root", nvidia::DEVICE_IDENTITY_CA).ok(),
            rim_root: Cert::from_der("NVIDIA RIM root", nvidia::RIM_ROOT_CA).ok(),
            rims: Mutex::new(HashMap::new()),
            responses: Mutex::new(HashMap::new()),
            settings,
        }
    }

    /// The RIMs and OCSP responses for `gpus`.
    pub fn collateral_for(&self, gpus: &[GpuEvidence]) -> Result<GpuCollateral, CollateralError> {
        let now = (self.settings.clock)();
        let mut ids: Vec<String> = Vec::new();
        let mut pairs: Vec<(Cert, Cert)> = Vec::new();
        for g in gpus {
            let what = format!("GPU {}", g.uuid);
            let report = parse_nvgpu_report(&g.report).map_err(|e| CollateralError::Invalid {
                what: format!("{what} report"),
                reason: e.to_string(),
            })?;
            let ders =
                split_pem_chain(&g.cert_chain_pem).map_err(|e| CollateralError::Invalid {
                    what: format!("{what} certificate chain"),
                    reason: e.to_string(),
                })?;
            let chain = parse_chain(&format!("{what} certificate chain"), &ders)?;
            // The chip names the driver RIM (`GH100 A01 GSP FMC LF` -> `GH100`).
            let chip = chain
                .first()
                .and_then(Cert::subject_cn)
                .and_then(|cn| cn.split_whitespace().next().map(str::to_string))
                .unwrap_or_default();
            for id in rim_ids(&report, &chip) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            pairs.extend(issued_pairs(
                chain.get(1..).unwrap_or_default(),
                self.device_root.as_ref(),
            ));
        }
        let mut rims = Vec::new();
        if self.rim_dir.is_some() || self.rim_fetcher.is_some() {
            for id in &ids {
                let xml = self.rim(id)?;
                let rim = parse_rim(&xml).map_err(|e| CollateralError::Invalid {
                    what: format!("RIM {id}"),
                    reason: e.to_string(),
                })?;
                let chain = parse_chain(
                    &format!("RIM {id} signing chain"),
                    &rim.signature.certificates,
                )?;
                pairs.extend(issued_pairs(&chain, self.rim_root.as_ref()));
                rims.push(xml);
            }
        }
        let mut ocsp = Vec::new();
        if let Some(url) = &self.ocsp_url {
            let mut seen: Vec<Vec<u8>> = Vec::new();
            for (cert, issuer) in &pairs {
                if seen.iter().any(|d| d.as_slice() == cert.der()) {
                    continue;
                }
                seen.push(cert.der().to_vec());
                match self.ocsp(url, cert, issuer, now) {
                    Ok(der) => {
                        if !ocsp.contains(&der) {
                            ocsp.push(der);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "no OCSP response for the bundle"),
                }
            }
        }
        Ok(GpuCollateral { rims, ocsp })
    }

    /// RIM `id`: memory, the RIM directory, then the service (through its cache).
    fn rim(&self, id: &str) -> Result<Vec<u8>, CollateralError> {
        if let Some(x) = self
            .rims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            return Ok(x.clone());
        }
        let mut error = None;
        let from_dir = self.rim_dir.as_ref().and_then(|d| {
            // Ids contain only letters, digits, `_`, `.` and `-` (checked by the
            // service client too), so they are safe file names.
            if !attestation_verifier::rim_service::valid_rim_id(id) {
                return None;
            }
            let p = d.join(format!("{id}.xml"));
            match std::fs::read(&p) {
                Ok(x) => Some(x),
                Err(source) => {
                    error = Some(CollateralError::File { path: p, source });
                    None
                }
            }
        });
        let xml = match (from_dir, &self.rim_fetcher) {
            (Some(x), _) => x,
            (None, Some(f)) => f.fetch(id).map_err(|source| CollateralError::Fetch {
                what: format!("RIM {id}"),
                source,
            })?,
            (None, None) => return Err(error.unwrap_or(CollateralError::Unconfigured("RIMs"))),
        };
        self.rims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_string(), xml.clone());
        Ok(xml)
    }

    /// A verified, current OCSP response about `cert`: memory, the disk cache, or
    /// the responder at `url`.
    fn ocsp(
        &self,
        url: &str,
        cert: &Cert,
        issuer: &Cert,
        now: UnixTime,
    ) -> Result<Vec<u8>, CollateralError> {
        let request = ocsp_request(cert, issuer)?;
        let crypto = DefaultCrypto::default();
        let key = crypto.sha256(&request);
        let what = format!(
            "OCSP response for {}",
            cert.subject_cn().unwrap_or_default()
        );
        let fresh_until = UnixTime(now.0.saturating_add(self.settings.refresh_before_secs));
        let held = self
            .responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(h) = &held {
            let recently = h.checked_at.0.saturating_add(self.settings.retry_secs) > now.0;
            if h.next_update >= fresh_until || (recently && h.next_update >= now) {
                return Ok(h.der.clone());
            }
        }
        let path = self
            .settings
            .cache_dir
            .join("ocsp")
            .join(format!("{}.der", hex::encode(key)));
        let mut best: Option<(Vec<u8>, UnixTime)> = held
            .filter(|h| h.next_update >= now)
            .map(|h| (h.der, h.next_update));
        fn consider(best: &mut Option<(Vec<u8>, UnixTime)>, der: Vec<u8>, n: UnixTime) {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                *best = Some((der, n));
            }
        }
        if let Ok(der) = std::fs::read(&path)
            && let Ok(n) = usable(&der, cert, issuer, now)
        {
            consider(&mut best, der, n);
        }
        let mut error = None;
        if best.as_ref().is_none_or(|(_, n)| *n < fresh_until) {
            match self.http.post(url, OCSP_REQUEST_TYPE, &request) {
                Ok(r) if r.status == 200 => match usable(&r.body, cert, issuer, now) {
                    Ok(n) => {
                        if let Err(e) = write_atomic(&path, &r.body) {
                            tracing::warn!(path = %path.display(), error = %e, "could not cache an OCSP response");
                        }
                        consider(&mut best, r.body, n);
                    }
                    Err(reason) => {
                        error = Some(CollateralError::Invalid {
                            what: format!("{what} from {url}"),
                            reason,
                        });
                    }
                },
                Ok(r) => {
                    error = Some(CollateralError::Fetch {
                        what: what.clone(),
                        source: attestation_verifier::pcs::FetchError::Status {
                            url: url.to_string(),
                            status: r.status,
                        },
                    });
                }
                Err(source) => {
                    error = Some(CollateralError::Fetch {
                        what: what.clone(),
                        source,
                    });
                }
            }
        }
        let Some((der, next_update)) = best else {
            return Err(error.unwrap_or(CollateralError::Unconfigured("OCSP responses")));
        };
        self.responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                key,
                HeldResponse {
                    der: der.clone(),
                    next_update,
                    checked_at: now,
                },
            );
        Ok(der)
    }
}

/// Collateral for GPU evidence (RIMs, OCSP responses), put into the bundle
/// beside the reports.
pub trait GpuCollateralSource: Send + Sync {
    /// The collateral for `gpus`.
    fn collateral(&self, gpus: &[GpuEvidence]) -> Result<GpuCollateral, CollateralError>;
}

impl GpuCollateralSource for GpuCollateralProvider {
    fn collateral(&self, gpus: &[GpuEvidence]) -> Result<GpuCollateral, CollateralError> {
        self.collateral_for(gpus)
    }
}

/// Whether `der` is a response the verifier will accept about `cert` at `now`:
/// its `nextUpdate` when it is.
fn usable(der: &[u8], cert: &Cert, issuer: &Cert, now: UnixTime) -> Result<UnixTime, String> {
    let r = parse_ocsp(der).map_err(|e| e.to_string())?;
    let status = r
        .status(&DefaultCrypto::default(), cert, issuer, now)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the response is about another certificate".to_string())?;
    if let CertStatus::Revoked { at } = status {
        tracing::error!(
            subject = %cert.subject_cn().unwrap_or_default(),
            revoked_at = at.0,
            "OCSP says a GPU or RIM certificate is revoked"
        );
    }
    r.basic()
        .tbs_response_data
        .responses
        .iter()
        .filter_map(|s| s.next_update.as_ref())
        .map(|t| UnixTime(t.to_unix_duration().as_secs()))
        .min()
        .ok_or_else(|| "the response has no nextUpdate".to_string())
}
