//! Where the VCEK (and its ASK and ARK) of an SEV-SNP report comes from: the one
//! [`VcekSource`] trait the evidence backends ask, and its sources: Azure IMDS
//! ([`ImdsVcek`]), a file ([`VcekFile`]), AMD KDS ([`super::snp::KdsVcek`]), or none
//! ([`NoVcek`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::evidence::nvgpu::split_pem_chain;
use attestation_verifier::evidence::snp::SnpReport;
use attestation_verifier::pcs::FetchError;
use attestation_verifier::verify::x509::Cert;

use super::CollateralError;
pub use crate::config::IMDS_THIM_URL;

/// SEV-SNP endorsement certificates (DER), by kind: from the host's certificate table
/// (`crate::evidence::certtable`) or from a [`VcekSource`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnpCertificates {
    /// The VCEK.
    pub vcek: Option<Vec<u8>>,
    /// The VLEK.
    pub vlek: Option<Vec<u8>>,
    /// The ASK (or ASVK).
    pub ask: Option<Vec<u8>>,
    /// The ARK.
    pub ark: Option<Vec<u8>>,
}

/// The VCEK and its chain for a report's chip and TCB.
pub trait VcekSource: Send + Sync {
    /// Certificates (DER) for `report`: at least the VCEK; the ASK and ARK when known.
    fn certificates(&self, report: &SnpReport) -> Result<SnpCertificates, CollateralError>;
}

impl<T: VcekSource + ?Sized> VcekSource for Arc<T> {
    fn certificates(&self, report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        (**self).certificates(report)
    }
}

/// Sorts DER certificates by their common names: `SEV-VCEK`, `SEV-<product>`
/// (ASK), `ARK-<product>`.
fn classify(what: &str, ders: Vec<Vec<u8>>) -> Result<SnpCertificates, CollateralError> {
    let invalid = |reason: String| CollateralError::Invalid {
        what: what.into(),
        reason,
    };
    let mut certs = SnpCertificates::default();
    for der in ders {
        let cn = Cert::from_der("certificate", &der)
            .map_err(|e| invalid(e.to_string()))?
            .subject_cn()
            .unwrap_or_default();
        let slot = if cn == "SEV-VCEK" {
            &mut certs.vcek
        } else if cn.starts_with("ARK-") {
            &mut certs.ark
        } else if cn.starts_with("SEV-") && !cn.starts_with("SEV-VLEK") {
            &mut certs.ask
        } else {
            continue;
        };
        *slot = Some(der);
    }
    if certs.vcek.is_none() {
        return Err(invalid("no SEV-VCEK certificate".into()));
    }
    Ok(certs)
}

/// The JSON IMDS's THIM endpoint answers with.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThimResponse {
    vcek_cert: String,
    #[serde(default)]
    certificate_chain: String,
}

/// Certificates from IMDS THIM JSON (`vcekCert`, then `certificateChain`: ASK and ARK).
pub fn parse_thim(what: &str, json: &[u8]) -> Result<SnpCertificates, CollateralError> {
    let invalid = |reason: String| CollateralError::Invalid {
        what: what.into(),
        reason,
    };
    let t: ThimResponse = serde_json::from_slice(json).map_err(|e| invalid(e.to_string()))?;
    let mut ders = split_pem_chain(&t.vcek_cert).map_err(|e| invalid(e.to_string()))?;
    if !t.certificate_chain.trim().is_empty() {
        ders.extend(split_pem_chain(&t.certificate_chain).map_err(|e| invalid(e.to_string()))?);
    }
    classify(what, ders)
}

/// A report's chip id and reported TCB: what a VCEK is issued for.
pub(crate) type ChipTcb = ([u8; 64], u64);

/// The VCEK from Azure's Instance Metadata Service (`Metadata: true`), cached
/// for the chip and TCB it was fetched for (a TCB update fetches it again).
pub struct ImdsVcek {
    agent: ureq::Agent,
    url: String,
    cache: Mutex<Option<(ChipTcb, SnpCertificates)>>,
}

impl ImdsVcek {
    /// A client of `url` (normally [`IMDS_THIM_URL`]) whose requests end within `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            agent: super::http::agent(timeout),
            url: url.into(),
            cache: Mutex::new(None),
        }
    }

    fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let http = |e: ureq::Error| FetchError::Http {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let mut resp = self
            .agent
            .get(&self.url)
            .header("Metadata", "true")
            .call()
            .map_err(http)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: self.url.clone(),
                status,
            });
        }
        resp.body_mut().read_to_vec().map_err(http)
    }
}

impl VcekSource for ImdsVcek {
    fn certificates(&self, report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        let key = (report.chip_id, report.reported_tcb);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, certs)) = cache.as_ref()
            && *k == key
        {
            return Ok(certs.clone());
        }
        let body = self.fetch().map_err(|source| CollateralError::Fetch {
            what: "VCEK from Azure IMDS".into(),
            source,
        })?;
        let certs = parse_thim("VCEK from Azure IMDS", &body)?;
        *cache = Some((key, certs.clone()));
        Ok(certs)
    }
}

/// The VCEK (and ASK, ARK) from a file: PEM certificates in any order, or the
/// JSON IMDS's THIM endpoint returns. Read at every request, so it can be
/// replaced after a TCB update.
pub struct VcekFile {
    path: PathBuf,
}

impl VcekFile {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl VcekSource for VcekFile {
    fn certificates(&self, _report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        let bytes = std::fs::read(&self.path).map_err(|source| CollateralError::File {
            path: self.path.clone(),
            source,
        })?;
        let what = self.path.display().to_string();
        if bytes.trim_ascii_start().starts_with(b"{") {
            return parse_thim(&what, &bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let ders = split_pem_chain(&text).map_err(|e| CollateralError::Invalid {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        classify(&what, ders)
    }
}

/// No VCEK source configured: every request fails with that reason.
#[derive(Debug)]
pub struct NoVcek;

impl VcekSource for NoVcek {
    fn certificates(&self, _report: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        Err(CollateralError::Unconfigured(
            "the Azure VCEK (evidence.azure_imds_url or evidence.azure_vcek_file)",
        ))
    }
}
