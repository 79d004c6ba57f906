//! NVIDIA GPU appraisal rules: the `[gpu]` table of the policy file.
//!
//! Defaults: the report's measurements must match the golden values of a
//! verified driver RIM and a verified VBIOS RIM (`rim_match_required = true`);
//! OCSP responses are checked whenever supplied (a revoked certificate always
//! fails verification) but are not required (`ocsp_required = false`), because
//! they expire within days and evidence is replayed later by the chain and by
//! buyers. Version, mode and architecture lists are empty (anything accepted)
//! until set.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;

use super::{PolicyError, sort_dedup};
use crate::verdict::{Verdict, Verified, Violation};
use crate::verify::nvgpu::{NvGpuEvidence, OcspCheck};
use crate::verify::ocsp::CertStatus;
use crate::verify::rim::RimKind;

/// NVIDIA GPU appraisal rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GpuPolicy {
    /// Lowest accepted driver version (dotted numbers, compared numerically,
    /// e.g. `"550.127.05"`).
    pub min_driver_version: Option<String>,
    /// Accepted VBIOS versions (case-insensitive, e.g. `"96.00.9f.00.01"`); empty accepts any.
    pub allowed_vbios_versions: Vec<String>,
    /// Require verified driver and VBIOS RIMs whose active golden values all
    /// match the report (default true).
    pub rim_match_required: bool,
    /// Require a `good` OCSP status for every device intermediate and every
    /// RIM signing certificate (default false).
    pub ocsp_required: bool,
    /// Accepted confidential-computing modes from the report's feature flag:
    /// `"spt"` (single GPU), `"mpt"` (multi-GPU), `"ppcie"` (protected PCIe),
    /// `"legacy"` (no feature flag, older firmware); empty accepts any.
    pub allowed_modes: Vec<String>,
    /// Accepted architectures (`"Hopper"`, `"Blackwell"`); empty accepts any.
    pub allowed_archs: Vec<String>,
    /// The fewest verified GPU reports evidence must carry (default 0). Applies
    /// to every kind of evidence: a CPU report appraised on its own carries none.
    pub min_count: u32,
    /// Accepted chips as the attestation certificate names them (`"GH100"`,
    /// compared case-insensitively, canonical in upper case); empty accepts any.
    pub models: Vec<String>,
    /// Require the report's feature flag to name a confidential mode (`spt`,
    /// `mpt` or `ppcie`; not `legacy` or an unknown value). Default false.
    pub require_confidential_mode: bool,
    /// The oldest an OCSP response may be: seconds from its `thisUpdate` to the
    /// verification time. Applies to every supplied response (with
    /// `ocsp_required`, to every certificate). `None`: any current response.
    pub ocsp_max_age_secs: Option<u64>,
}

impl Default for GpuPolicy {
    fn default() -> Self {
        Self {
            min_driver_version: None,
            allowed_vbios_versions: Vec::new(),
            rim_match_required: true,
            ocsp_required: false,
            allowed_modes: Vec::new(),
            allowed_archs: Vec::new(),
            min_count: 0,
            models: Vec::new(),
            require_confidential_mode: false,
            ocsp_max_age_secs: None,
        }
    }
}

/// The mode names, by feature-flag value.
const MODES: [&str; 3] = ["spt", "mpt", "ppcie"];

/// The CC mode a report's feature flag names (`legacy` when absent).
pub(crate) fn mode_name(feature_flag: Option<u32>) -> String {
    match feature_flag {
        None => "legacy".into(),
        Some(v) => usize::try_from(v)
            .ok()
            .and_then(|i| MODES.get(i))
            .map_or_else(|| format!("unknown({v})"), |m| (*m).to_string()),
    }
}

/// Parses a dotted version into numbers (`None` when a part is not a number).
pub(crate) fn parse_version(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// A dotted version in its canonical spelling: decimal numbers without
/// leading zeros (`"550.127.05"` is `"550.127.5"`).
fn canonical_version(v: &str) -> Option<String> {
    let parts = parse_version(v)?;
    let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
    Some(parts.join("."))
}

impl GpuPolicy {
    /// Checks values.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(v) = &self.min_driver_version
            && parse_version(v).is_none()
        {
            return Err(PolicyError::Value {
                field: "gpu.min_driver_version",
                reason: format!("{v:?} is not a dotted numeric version"),
            });
        }
        for m in &self.allowed_modes {
            if m != "legacy" && !MODES.contains(&m.as_str()) {
                return Err(PolicyError::Value {
                    field: "gpu.allowed_modes",
                    reason: format!("unknown mode {m:?} (spt, mpt, ppcie or legacy)"),
                });
            }
        }
        for a in &self.allowed_archs {
            if a != "Hopper" && a != "Blackwell" {
                return Err(PolicyError::Value {
                    field: "gpu.allowed_archs",
                    reason: format!("unknown architecture {a:?} (Hopper or Blackwell)"),
                });
            }
        }
        for m in &self.models {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(PolicyError::Value {
                    field: "gpu.models",
                    reason: format!("{m:?} is not a chip name (letters and digits, e.g. GH100)"),
                });
            }
        }
        Ok(())
    }

    /// Sorts and deduplicates every list; the driver version as plain numbers,
    /// VBIOS versions in lower case, models in upper case.
    pub(super) fn canonicalize(&mut self) {
        if let Some(v) = &mut self.min_driver_version
            && let Some(c) = canonical_version(v)
        {
            *v = c;
        }
        self.allowed_vbios_versions
            .iter_mut()
            .for_each(|v| v.make_ascii_lowercase());
        sort_dedup(&mut self.allowed_vbios_versions);
        sort_dedup(&mut self.allowed_modes);
        sort_dedup(&mut self.allowed_archs);
        self.models
            .iter_mut()
            .for_each(|m| m.make_ascii_uppercase());
        sort_dedup(&mut self.models);
    }

    /// Appraises a verified report; lists every violation.
    pub fn evaluate(&self, ev: &Verified<NvGpuEvidence>) -> Verdict {
        let f = &ev.report.fields;
        let mut v = Vec::new();
        let mut fail = |rule: &'static str, detail: String| v.push(Violation { rule, detail });
        if let Some(min) = &self.min_driver_version {
            let have = f.driver_version.as_deref().unwrap_or_default();
            let ok = match (parse_version(have), parse_version(min)) {
                (Some(h), Some(m)) => h >= m,
                _ => false,
            };
            if !ok {
                fail(
                    "gpu.min_driver_version",
                    format!("driver {have:?} is below {min}"),
                );
            }
        }
        if !self.allowed_vbios_versions.is_empty() {
            let have = f.vbios_version.as_deref().unwrap_or_default();
            if !self
                .allowed_vbios_versions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(have))
            {
                fail(
                    "gpu.allowed_vbios_versions",
                    format!("VBIOS {have:?} is not accepted"),
                );
            }
        }
        if self.rim_match_required {
            for kind in [RimKind::Driver, RimKind::Vbios] {
                if !ev.has_rim(kind) {
                    fail(
                        "gpu.rim_match_required",
                        format!("no verified {} RIM was supplied", kind.name()),
                    );
                }
            }
            if let Some(c) = &ev.rim_comparison {
                if !c.mismatched.is_empty() {
                    fail(
                        "gpu.rim_match_required",
                        format!(
                            "measurements differ from the golden values at RIM indices {:?}",
                            c.mismatched
                        ),
                    );
                }
                if !c.conflicts.is_empty() {
                    fail(
                        "gpu.rim_match_required",
                        format!("driver and VBIOS RIMs both claim indices {:?}", c.conflicts),
                    );
                }
            }
        }
        if self.ocsp_required {
            let rim_checks = ev.rims.iter().flat_map(|r| r.ocsp.iter());
            for OcspCheck {
                subject, status, ..
            } in ev.device_ocsp.iter().chain(rim_checks)
            {
                match status {
                    Some(CertStatus::Good) => {}
                    Some(s) => fail(
                        "gpu.ocsp_required",
                        format!("OCSP status of {subject} is {}", s.name()),
                    ),
                    None => fail(
                        "gpu.ocsp_required",
                        format!("no OCSP response for {subject}"),
                    ),
                }
            }
        }
        if let Some(max) = self.ocsp_max_age_secs {
            let rim_checks = ev.rims.iter().flat_map(|r| r.ocsp.iter());
            for c in ev.device_ocsp.iter().chain(rim_checks) {
                if let Some(t) = c.this_update {
                    let age = c.checked_at.as_secs().saturating_sub(t.as_secs());
                    if age > max {
                        fail(
                            "gpu.ocsp_max_age_secs",
                            format!(
                                "the OCSP response for {} is {age} s old, at most {max} s",
                                c.subject
                            ),
                        );
                    }
                }
            }
        }
        if !self.allowed_modes.is_empty() {
            let mode = mode_name(f.feature_flag);
            if !self.allowed_modes.contains(&mode) {
                fail("gpu.allowed_modes", format!("mode {mode} is not accepted"));
            }
        }
        if !self.models.is_empty() && !self.models.iter().any(|m| m.eq_ignore_ascii_case(&ev.chip))
        {
            fail("gpu.models", format!("chip {} is not accepted", ev.chip));
        }
        if self.require_confidential_mode {
            let mode = mode_name(f.feature_flag);
            if !MODES.contains(&mode.as_str()) {
                fail(
                    "gpu.require_confidential_mode",
                    format!("mode {mode} is not a confidential-computing mode"),
                );
            }
        }
        if !self.allowed_archs.is_empty() {
            let arch = ev.arch.map_or("unknown", |a| a.name());
            if !self.allowed_archs.iter().any(|a| a == arch) {
                fail(
                    "gpu.allowed_archs",
                    format!("architecture {arch} ({}) is not accepted", ev.chip),
                );
            }
        }
        Verdict::from_violations(v)
    }
}
