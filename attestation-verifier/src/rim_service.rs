//! Fetching NVIDIA RIMs from NVIDIA's RIM service, with a file cache (feature
//! `fetch`; never part of the `no_std` core).
//!
//! `GET {base}/v1/rim/{id}` answers `{"id": .., "rim": <base64 SWID XML>, ..}`.
//! Ids: `NV_GPU_DRIVER_<chip>_<driver version>` and
//! `NV_GPU_VBIOS_<project>_<project SKU>_<chip SKU>_<VBIOS version without dots>`
//! (see [`NvGpuReport::driver_rim_id`] and [`NvGpuReport::vbios_rim_id`]).
//!
//! Nothing fetched is trusted: every RIM is verified (XML-DSig, chain to the
//! pinned RIM root) each time it is used. The cache only saves round trips; a
//! RIM is immutable once published, so entries do not expire.

use std::format;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::evidence::nvgpu::NvGpuReport;
use crate::pcs::{FetchError, HttpGet};

/// NVIDIA's RIM service.
pub const NVIDIA_RIM_SERVICE_URL: &str = "https://rim.attestation.nvidia.com";

/// The URL of RIM `id` under `base`.
pub fn rim_url(base: &str, id: &str) -> String {
    format!("{}/v1/rim/{id}", base.trim_end_matches('/'))
}

/// Whether `id` is a plausible RIM id (letters, digits, `_`, `.`, `-`): ids
/// become URL path segments and file names.
pub fn valid_rim_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The RIM ids a report needs: driver then VBIOS.
pub fn rim_ids(report: &NvGpuReport, chip: &str) -> Vec<String> {
    report
        .driver_rim_id(chip)
        .into_iter()
        .chain(report.vbios_rim_id())
        .collect()
}

/// Extracts the RIM XML from the service's JSON answer for `id`.
pub fn decode_service_response(url: &str, id: &str, body: &[u8]) -> Result<Vec<u8>, FetchError> {
    let bad = |reason: String| FetchError::Body {
        url: url.to_string(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(got) = v.get("id").and_then(|x| x.as_str())
        && got != id
    {
        return Err(bad(format!("answer is for {got}, not {id}")));
    }
    let b64 = v
        .get("rim")
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad("no \"rim\" field".into()))?;
    crate::evidence::nvgpu::decode_base64(b64).map_err(|()| bad("\"rim\" is not base64".into()))
}

/// Fetches RIMs by id through a file cache.
pub struct RimFetcher<H: HttpGet> {
    http: H,
    base: String,
    cache: Option<PathBuf>,
}

impl<H: HttpGet> RimFetcher<H> {
    /// A fetcher for the service at `base`, caching in `cache` when given.
    pub fn new(http: H, base: &str, cache: Option<&Path>) -> Self {
        Self {
            http,
            base: base.to_string(),
            cache: cache.map(Path::to_path_buf),
        }
    }

    /// The cache file of `id`.
    pub fn cache_path(&self, id: &str) -> Option<PathBuf> {
        self.cache.as_ref().map(|d| d.join(format!("{id}.xml")))
    }

    /// RIM `id` (XML), from the cache or the service.
    pub fn fetch(&self, id: &str) -> Result<Vec<u8>, FetchError> {
        let url = rim_url(&self.base, id);
        if !valid_rim_id(id) {
            return Err(FetchError::Body {
                url,
                reason: format!("{id:?} is not a RIM id"),
            });
        }
        let path = self.cache_path(id);
        if let Some(p) = &path
            && let Some(bytes) = crate::pcs::read_cached(p)
        {
            return Ok(bytes);
        }
        let resp = self.http.get(&url)?;
        if resp.status != 200 {
            return Err(FetchError::Status {
                url,
                status: resp.status,
            });
        }
        let xml = decode_service_response(&url, id, &resp.body)?;
        if let Some(p) = path {
            let cache_err = |e: std::io::Error| FetchError::Cache {
                path: p.clone(),
                reason: e.to_string(),
            };
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(cache_err)?;
            }
            // Write then rename, so a concurrent reader never sees half a file.
            let tmp = p.with_extension("xml.partial");
            std::fs::write(&tmp, &xml).map_err(cache_err)?;
            std::fs::rename(&tmp, &p).map_err(cache_err)?;
        }
        Ok(xml)
    }
}
