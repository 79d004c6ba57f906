//! NVIDIA GPU: report bytes and collateral to an outcome with claims, for one
//! GPU or a bundle of several.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use super::{Outcome, verdict_reasons};
use crate::crypto::Crypto;
use crate::evidence::nvgpu::{NvGpuReport, parse_nvgpu_report};
use crate::policy::{Policy, mode_name};
use crate::time::UnixTime;
use crate::verify::nvgpu::{GpuInput, NvGpuCollateral, NvGpuEvidence, NvGpuVerifier, OcspCheck};
use crate::verify::rim::RimKind;

/// One measurement block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeasurementClaim {
    /// SPDM index (1-based; RIM index + 1).
    pub index: u8,
    /// The value, hex.
    pub value: String,
}

/// A RIM applied to the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RimClaim {
    /// Its colloquial version.
    pub version: String,
    /// Its tag id.
    pub tag_id: String,
    /// Its signer's common name.
    pub signer: String,
}

/// The RIM result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RimClaims {
    /// The driver RIM, when one was applied.
    pub driver: Option<RimClaim>,
    /// The VBIOS RIM, when one was applied.
    pub vbios: Option<RimClaim>,
    /// Whether every compared golden value matched.
    pub matched: bool,
    /// RIM indices compared.
    pub compared: usize,
    /// RIM indices (0-based) whose values differ.
    pub mismatched_indices: Vec<u32>,
    /// RIM indices active in both RIMs.
    pub conflicting_indices: Vec<u32>,
    /// RIM indices skipped (35 when NVDEC0 is disabled).
    pub skipped_indices: Vec<u32>,
}

/// One certificate's OCSP status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OcspClaim {
    /// The certificate's common name.
    pub subject: String,
    /// `good`, `revoked`, `unknown` or `missing`.
    pub status: &'static str,
}

impl From<&OcspCheck> for OcspClaim {
    fn from(c: &OcspCheck) -> Self {
        Self {
            subject: c.subject.clone(),
            status: c.status.as_ref().map_or("missing", |s| s.name()),
        }
    }
}

/// What a GPU report says. Byte fields are lower-case hex without prefix.
///
/// Report fields are present whenever the report parsed; chain-derived fields
/// (`chip`, `leaf_subject`, `ocsp`) and `rim` only when it verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NvGpuClaims {
    /// "Hopper", "Blackwell" or "unknown".
    pub arch: String,
    /// The chip named by the attestation certificate, e.g. `GH100`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    /// The request nonce.
    pub nonce: String,
    /// The responder's nonce.
    pub response_nonce: String,
    /// SPDM version, `0x`-prefixed.
    pub spdm_version: String,
    /// Driver version.
    pub driver_version: Option<String>,
    /// VBIOS version.
    pub vbios_version: Option<String>,
    /// Firmware id.
    pub fwid: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Project SKU.
    pub project_sku: Option<String>,
    /// Chip SKU.
    pub chip_sku: Option<String>,
    /// Board id.
    pub board_id: Option<String>,
    /// GPU info.
    pub gpu_info: Option<String>,
    /// CC mode from the feature flag: spt, mpt, ppcie or legacy.
    pub mode: String,
    /// NVDEC0 status.
    pub nvdec0_status: Option<u32>,
    /// Protected-PCIe status.
    pub protected_pcie_status: Option<u32>,
    /// Opaque-data field ids, in order.
    pub opaque_field_ids: Vec<u16>,
    /// Number of measurement blocks.
    pub measurement_count: usize,
    /// The measurements.
    pub measurements: Vec<MeasurementClaim>,
    /// Zero bytes after the signature.
    pub trailing_bytes: usize,
    /// The attestation certificate's common name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_subject: Option<String>,
    /// Certificates in the device chain, root included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_chain_length: Option<usize>,
    /// OCSP statuses of the device intermediates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<Vec<OcspClaim>>,
    /// The RIM result, when RIMs were supplied and verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rim: Option<RimClaims>,
}

fn hex_opt(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_ref().map(hex::encode)
}

impl NvGpuClaims {
    /// Claims of a parsed report, completed from its verified evidence when given.
    pub fn new(r: &NvGpuReport, ev: Option<&NvGpuEvidence>) -> Self {
        let f = &r.fields;
        let rim = ev.and_then(|e| {
            let c = e.rim_comparison.as_ref()?;
            let claim = |kind: RimKind| {
                e.rims.iter().find(|s| s.kind == kind).map(|s| RimClaim {
                    version: s.version.clone(),
                    tag_id: s.tag_id.clone(),
                    signer: s.signer.clone(),
                })
            };
            Some(RimClaims {
                driver: claim(RimKind::Driver),
                vbios: claim(RimKind::Vbios),
                matched: c.matches(),
                compared: c.compared.len(),
                mismatched_indices: c.mismatched.clone(),
                conflicting_indices: c.conflicts.clone(),
                skipped_indices: c.skipped.clone(),
            })
        });
        Self {
            arch: ev
                .and_then(|e| e.arch)
                .map_or_else(|| "unknown".into(), |a| a.name().into()),
            chip: ev.map(|e| e.chip.clone()),
            nonce: hex::encode(r.request.nonce),
            response_nonce: hex::encode(r.response_nonce),
            spdm_version: format!("{:#04x}", r.response_version),
            driver_version: f.driver_version.clone(),
            vbios_version: f.vbios_version.clone(),
            fwid: hex_opt(&f.fwid),
            project: f.project.clone(),
            project_sku: f.project_sku.clone(),
            chip_sku: f.chip_sku.clone(),
            board_id: hex_opt(&f.board_id),
            gpu_info: hex_opt(&f.gpu_info),
            mode: mode_name(f.feature_flag),
            nvdec0_status: f.nvdec0_status,
            protected_pcie_status: f.protected_pcie_status,
            opaque_field_ids: r.opaque_field_ids(),
            measurement_count: r.blocks.len(),
            measurements: r
                .blocks
                .iter()
                .map(|b| MeasurementClaim {
                    index: b.index,
                    value: hex::encode(&b.value),
                })
                .collect(),
            trailing_bytes: r.padding,
            leaf_subject: ev.map(|e| e.leaf_subject.clone()),
            cert_chain_length: ev.map(|e| e.chain_length),
            ocsp: ev.map(|e| e.device_ocsp.iter().map(OcspClaim::from).collect()),
            rim,
        }
    }
}

/// Parses, verifies and appraises one GPU report; the request must carry `nonce`.
/// One report: `gpu.min_count` > 1 refuses it.
pub fn check_gpu<C: Crypto>(
    verifier: &mut NvGpuVerifier<C>,
    report: &[u8],
    collateral: &NvGpuCollateral<'_>,
    nonce: &[u8; 32],
    policy: &Policy,
    now: UnixTime,
) -> Outcome<NvGpuClaims> {
    let parsed = match parse_nvgpu_report(report) {
        Ok(r) => r,
        Err(e) => return Outcome::rejected(None, e),
    };
    match verifier.verify(&parsed, collateral, nonce, now) {
        Err(failures) => Outcome {
            claims: Some(NvGpuClaims::new(&parsed, None)),
            reasons: failures.0.iter().map(ToString::to_string).collect(),
        },
        Ok(ev) => {
            let mut reasons: Vec<String> = policy
                .evaluate_gpu_count(1)
                .iter()
                .map(ToString::to_string)
                .collect();
            reasons.extend(verdict_reasons(policy.gpu.evaluate(&ev)));
            Outcome {
                claims: Some(NvGpuClaims::new(&ev.report, Some(&ev))),
                reasons,
            }
        }
    }
}

/// What a bundle of GPU reports says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpuBundleClaims {
    /// Number of GPUs.
    pub count: usize,
    /// Each GPU's claims (absent where its report did not parse).
    pub gpus: Vec<Option<NvGpuClaims>>,
}

/// One GPU of a bundle as bytes: report, device chain (DER, leaf first), nonce.
#[derive(Clone, Copy, Debug)]
pub struct GpuBytes<'a> {
    /// The report (request || response).
    pub report: &'a [u8],
    /// Its device chain.
    pub cert_chain: &'a [Vec<u8>],
    /// The nonce its request must carry.
    pub nonce: [u8; 32],
}

/// Parses, verifies and appraises several GPUs' reports in one call (shared
/// RIMs and OCSP responses). The bundle is accepted only when every report is;
/// reasons are prefixed with the GPU's position.
pub fn check_gpu_bundle<C: Crypto>(
    verifier: &mut NvGpuVerifier<C>,
    gpus: &[GpuBytes<'_>],
    rims: &[Vec<u8>],
    ocsp: &[Vec<u8>],
    policy: &Policy,
    now: UnixTime,
) -> Outcome<GpuBundleClaims> {
    let mut reasons = Vec::new();
    if gpus.is_empty() {
        reasons.push("bundle has no GPU report".into());
    }
    if let Some(v) = policy.evaluate_gpu_count(gpus.len()) {
        reasons.push(v.to_string());
    }
    let parsed: Vec<Option<NvGpuReport>> = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| match parse_nvgpu_report(g.report) {
            Ok(r) => Some(r),
            Err(e) => {
                reasons.push(format!("gpu {i}: {e}"));
                None
            }
        })
        .collect();
    let inputs: Vec<(usize, GpuInput<'_>)> = parsed
        .iter()
        .zip(gpus)
        .enumerate()
        .filter_map(|(i, (p, g))| {
            p.as_ref().map(|report| {
                (
                    i,
                    GpuInput {
                        report,
                        cert_chain: g.cert_chain,
                        nonce: g.nonce,
                    },
                )
            })
        })
        .collect();
    let just_inputs: Vec<GpuInput<'_>> = inputs.iter().map(|(_, g)| *g).collect();
    let results = verifier.verify_bundle(&just_inputs, rims, ocsp, now);
    let mut claims: Vec<Option<NvGpuClaims>> = parsed
        .iter()
        .map(|p| p.as_ref().map(|r| NvGpuClaims::new(r, None)))
        .collect();
    for ((i, _), result) in inputs.iter().zip(results) {
        match result {
            Err(failures) => {
                reasons.extend(failures.0.iter().map(|e| format!("gpu {i}: {e}")));
            }
            Ok(ev) => {
                reasons.extend(
                    verdict_reasons(policy.gpu.evaluate(&ev))
                        .into_iter()
                        .map(|r| format!("gpu {i}: {r}")),
                );
                if let Some(slot) = claims.get_mut(*i) {
                    *slot = Some(NvGpuClaims::new(&ev.report, Some(&ev)));
                }
            }
        }
    }
    Outcome {
        claims: Some(GpuBundleClaims {
            count: gpus.len(),
            gpus: claims,
        }),
        reasons,
    }
}
