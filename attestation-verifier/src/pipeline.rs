//! The whole pipeline in one call per kind of evidence (`check_*`): bytes to an
//! outcome, that is parse ([`crate::evidence`]), verify ([`crate::verify`]),
//! appraise ([`crate::policy`]), and the claims a buyer reads. Used by
//! `sigil-verify`, the agent, the chain client's audit and the tests.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use crate::crypto::Crypto;
use crate::evidence::snp::{Product, SnpReport, TcbVersion, parse_snp_report};
use crate::policy::Policy;
use crate::time::UnixTime;
use crate::verdict::Verdict;
use crate::verify::snp::{SnpCollateral, SnpEvidence, SnpVerifier};

mod gpu;
mod measured;
mod receipt;
mod tdx;
pub use gpu::{
    GpuBundleClaims, GpuBytes, MeasurementClaim, NvGpuClaims, OcspClaim, RimClaim, RimClaims,
    check_gpu, check_gpu_bundle,
};
pub use measured::{AgentEventClaim, EventClaim, MeasuredBootClaims, PcrEventClaim};
pub use receipt::{
    AzureHclClaims, AzureTdxVtpmClaims, AzureVtpmClaims, CpuClaims, EvidenceClaims, GpuEntryClaims,
    ReceiptClaims, SimulatedClaims, SnpCrlClaims, UsageClaims, VtpmQuoteClaims, check_bundle,
    check_receipt,
};
pub use tdx::{TdxClaims, check_tdx, check_tdx_measured};

/// The outcome of checking one piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<C> {
    /// What the evidence says (present whenever it parsed, accepted or not).
    pub claims: Option<C>,
    /// Every reason for rejection; empty when accepted.
    pub reasons: Vec<String>,
}

impl<C> Outcome<C> {
    /// Whether the evidence was accepted.
    pub fn accepted(&self) -> bool {
        self.claims.is_some() && self.reasons.is_empty()
    }

    fn rejected(claims: Option<C>, reason: impl ToString) -> Self {
        Self {
            claims,
            reasons: alloc::vec![reason.to_string()],
        }
    }
}

fn verdict_reasons(v: Verdict) -> Vec<String> {
    match v {
        Verdict::Accept => Vec::new(),
        Verdict::Reject(vs) => vs.iter().map(ToString::to_string).collect(),
    }
}

/// A TCB version as claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcbClaims {
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
    /// FMC SPL (Turin; absent for older products).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// The raw TCB_VERSION, `0x`-prefixed hex.
    pub raw: String,
}

impl TcbClaims {
    fn new(raw: u64, product: Option<Product>) -> Self {
        let p = product.unwrap_or(Product::Milan);
        let t = TcbVersion::decode(raw, p);
        Self {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: p.has_fmc().then_some(t.fmc),
            raw: format!("{raw:#018x}"),
        }
    }
}

/// What an SEV-SNP report says. Byte fields are lower-case hex without prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    /// "Milan", "Genoa", "Turin", or "unknown" when neither report nor certificate tells.
    pub product: String,
    /// Report version.
    pub version: u32,
    /// "VCEK" or "VLEK".
    pub signing_key: String,
    /// Launch measurement.
    pub measurement: String,
    /// What the launch measurement covers ([`SNP_MEASUREMENT_COVERS`]): a measurement names
    /// only the software in the guest's initial memory.
    pub measurement_covers: &'static str,
    /// REPORT_DATA.
    pub report_data: String,
    /// Chip id.
    pub chip_id: String,
    /// HOST_DATA.
    pub host_data: String,
    /// Reported TCB.
    pub reported_tcb: TcbClaims,
    /// Current TCB.
    pub current_tcb: TcbClaims,
    /// Committed TCB.
    pub committed_tcb: TcbClaims,
    /// Launch TCB.
    pub launch_tcb: TcbClaims,
    /// Guest policy, `0x`-prefixed hex.
    pub policy: String,
    /// Whether the guest policy allows debugging.
    pub debug: bool,
    /// VMPL.
    pub vmpl: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Family id.
    pub family_id: String,
    /// Image id.
    pub image_id: String,
    /// ID key digest.
    pub id_key_digest: String,
    /// Author key digest.
    pub author_key_digest: String,
    /// Report id.
    pub report_id: String,
    /// Platform info, `0x`-prefixed hex.
    pub platform_info: String,
    /// Current firmware version "major.minor.build".
    pub current_version: String,
    /// Committed firmware version "major.minor.build".
    pub committed_version: String,
}

/// What an SEV-SNP launch measurement covers, as the claims say it (`docs/measured-boot.md`).
pub const SNP_MEASUREMENT_COVERS: &str = "the guest's initial memory: the firmware, the vCPUs \
    (count, type, guest features) and, with a measured direct boot (AmdSev OVMF), the hashes of \
    the kernel, initrd and command line; on Google Cloud only Google's firmware (not the guest \
    kernel or the agent); on Azure the paravisor (the guest is measured by the vTPM)";

impl SnpClaims {
    /// Claims of a parsed report; `product` is the verified product when known.
    pub fn new(r: &SnpReport, product: Option<Product>) -> Self {
        let product = product.or_else(|| r.product_from_cpuid());
        let ver = |(b, mi, ma): (u8, u8, u8)| format!("{ma}.{mi}.{b}");
        Self {
            product: product.map_or_else(|| "unknown".into(), |p| p.name().into()),
            version: r.version,
            signing_key: r.signing_key.name().into(),
            measurement: hex::encode(r.measurement),
            measurement_covers: SNP_MEASUREMENT_COVERS,
            report_data: hex::encode(r.report_data),
            chip_id: hex::encode(r.chip_id),
            host_data: hex::encode(r.host_data),
            reported_tcb: TcbClaims::new(r.reported_tcb, product),
            current_tcb: TcbClaims::new(r.current_tcb, product),
            committed_tcb: TcbClaims::new(r.committed_tcb, product),
            launch_tcb: TcbClaims::new(r.launch_tcb, product),
            policy: format!("{:#x}", r.policy.0),
            debug: r.policy.debug(),
            vmpl: r.vmpl,
            guest_svn: r.guest_svn,
            family_id: hex::encode(r.family_id),
            image_id: hex::encode(r.image_id),
            id_key_digest: hex::encode(r.id_key_digest),
            author_key_digest: hex::encode(r.author_key_digest),
            report_id: hex::encode(r.report_id),
            platform_info: format!("{:#x}", r.platform_info),
            current_version: ver(r.current_version),
            committed_version: ver(r.committed_version),
        }
    }

    /// Claims of a parsed report, from its evidence when it verified.
    fn of(parsed: &SnpReport, verified: Option<&SnpEvidence>) -> Self {
        match verified {
            Some(ev) => Self::new(&ev.report, Some(ev.product)),
            None => Self::new(parsed, None),
        }
    }
}

/// Parses, verifies and appraises an SEV-SNP report ([`Policy::evaluate_snp`]:
/// the report carries no GPU reports, so `gpu.min_count` > 0 refuses it).
pub fn check_snp<C: Crypto>(
    verifier: &mut SnpVerifier<C>,
    report: &[u8],
    collateral: &SnpCollateral<'_>,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<SnpClaims> {
    let parsed = match parse_snp_report(report) {
        Ok(r) => r,
        Err(e) => return Outcome::rejected(None, e),
    };
    match verifier.verify(&parsed, collateral, now) {
        Err(failures) => Outcome {
            claims: Some(SnpClaims::of(&parsed, None)),
            reasons: failures.0.iter().map(ToString::to_string).collect(),
        },
        Ok(ev) => Outcome {
            claims: Some(SnpClaims::of(&parsed, Some(&ev))),
            reasons: verdict_reasons(policy.evaluate_snp(&ev)),
        },
    }
}
