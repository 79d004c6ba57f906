//! Intel TDX: quote bytes and collateral to an outcome with claims.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use super::{Outcome, verdict_reasons};
use crate::bundle::MeasuredBoot;
use crate::crypto::Crypto;
use crate::evidence::tdx::{TdxQuote, parse_tdx_quote};
use crate::policy::Policy;
use crate::time::UnixTime;
use crate::verify::measured::verify_measured_tdx;
use crate::verify::tdx::{TdxCollateral, TdxEvidence, TdxVerifier, pck_fmspc_unverified};

/// What a TDX quote says. Byte fields are lower-case hex without prefix.
///
/// Fields from the quote are present whenever it parsed; the TCB fields only when
/// it verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// Quote version (4 or 5).
    pub quote_version: u16,
    /// Always "TDX".
    pub tee: &'static str,
    /// TEE type, `0x`-prefixed hex (`0x81`).
    pub tee_type: String,
    /// Attestation key type (2 = ECDSA-256-with-P-256).
    pub att_key_type: u16,
    /// TD report body type (2 = TDX 1.0, 3 = TDX 1.5, 4 = TDX 1.5 extended).
    pub body_type: u16,
    /// QE vendor id.
    pub qe_vendor_id: String,
    /// Header user data.
    pub header_user_data: String,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: String,
    /// TEE_TCB_SVN2 (TDX 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn2: Option<String>,
    /// MRSEAM.
    pub mrseam: String,
    /// MRSIGNERSEAM.
    pub mrsignerseam: String,
    /// SEAM_ATTRIBUTES.
    pub seam_attributes: String,
    /// TD_ATTRIBUTES as in the quote (little-endian bytes).
    pub td_attributes: String,
    /// Whether TD_ATTRIBUTES.DEBUG is set.
    pub debug: bool,
    /// XFAM.
    pub xfam: String,
    /// MRTD.
    pub mrtd: String,
    /// MRCONFIGID.
    pub mrconfigid: String,
    /// MROWNER.
    pub mrowner: String,
    /// MROWNERCONFIG.
    pub mrownerconfig: String,
    /// RTMR0.
    pub rtmr0: String,
    /// RTMR1.
    pub rtmr1: String,
    /// RTMR2.
    pub rtmr2: String,
    /// RTMR3.
    pub rtmr3: String,
    /// REPORT_DATA.
    pub report_data: String,
    /// MRSERVICETD (TDX 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrservicetd: Option<String>,
    /// FMSPC of the PCK certificate (read unverified when the quote did not verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmspc: Option<String>,
    /// PCE-ID of the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pce_id: Option<String>,
    /// PPID of the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<String>,
    /// Final TCB status, as Intel spells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// Advisories that apply.
    pub advisory_ids: Vec<String>,
    /// Status of the platform's TCB level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_tcb_status: Option<String>,
    /// Status of the QE's TCB level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qe_tcb_status: Option<String>,
    /// Date of the matched TCB level (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_date: Option<String>,
    /// TCB evaluation data number of the TCB Info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_evaluation_data_number: Option<u32>,
    /// TCB evaluation data number of the QE Identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qe_tcb_evaluation_data_number: Option<u32>,
    /// Earliest nextUpdate over the collateral (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collateral_next_update: Option<String>,
    /// Whether collateral was accepted only thanks to the grace period.
    pub collateral_in_grace: bool,
}

impl TdxClaims {
    /// Claims of a parsed quote; the TCB fields come from `verified` when given.
    pub fn new(q: &TdxQuote, verified: Option<&TdxEvidence>) -> Self {
        let b = &q.body;
        let h = &q.header;
        let [r0, r1, r2, r3] = &b.rtmr;
        let mut c = Self {
            quote_version: h.version,
            tee: "TDX",
            tee_type: format!("{:#x}", h.tee_type),
            att_key_type: h.attestation_key_type,
            body_type: q.body_type.number(),
            qe_vendor_id: hex::encode(h.qe_vendor_id),
            header_user_data: hex::encode(h.user_data),
            tee_tcb_svn: hex::encode(b.tee_tcb_svn),
            tee_tcb_svn2: b.td15.map(|t| hex::encode(t.tee_tcb_svn2)),
            mrseam: hex::encode(b.mr_seam),
            mrsignerseam: hex::encode(b.mr_signer_seam),
            seam_attributes: hex::encode(b.seam_attributes),
            td_attributes: hex::encode(b.td_attributes_raw),
            debug: b.td_attributes.debug(),
            xfam: hex::encode(b.xfam),
            mrtd: hex::encode(b.mr_td),
            mrconfigid: hex::encode(b.mr_config_id),
            mrowner: hex::encode(b.mr_owner),
            mrownerconfig: hex::encode(b.mr_owner_config),
            rtmr0: hex::encode(r0),
            rtmr1: hex::encode(r1),
            rtmr2: hex::encode(r2),
            rtmr3: hex::encode(r3),
            report_data: hex::encode(b.report_data),
            mrservicetd: b.td15.map(|t| hex::encode(t.mr_service_td)),
            fmspc: None,
            pce_id: None,
            ppid: None,
            tcb_status: None,
            advisory_ids: Vec::new(),
            platform_tcb_status: None,
            qe_tcb_status: None,
            tcb_date: None,
            tcb_evaluation_data_number: None,
            qe_tcb_evaluation_data_number: None,
            collateral_next_update: None,
            collateral_in_grace: false,
        };
        match verified {
            Some(ev) => {
                c.fmspc = Some(hex::encode(ev.pck.fmspc));
                c.pce_id = Some(hex::encode(ev.pck.pce_id));
                c.ppid = Some(hex::encode(&ev.pck.ppid));
                c.tcb_status = Some(ev.tcb_status.name().into());
                c.advisory_ids = ev.advisory_ids.clone();
                c.platform_tcb_status = Some(ev.platform_tcb_status.name().into());
                c.qe_tcb_status = Some(ev.qe_tcb_status.name().into());
                c.tcb_date = Some(ev.tcb_date.to_string());
                c.tcb_evaluation_data_number = Some(ev.tcb_evaluation_data_number);
                c.qe_tcb_evaluation_data_number = Some(ev.qe_tcb_evaluation_data_number);
                c.collateral_next_update = Some(ev.collateral_window.not_after.to_string());
                c.collateral_in_grace = ev.collateral_in_grace;
            }
            None => {
                c.fmspc = pck_fmspc_unverified(q).map(|(f, _)| hex::encode(f));
            }
        }
        c
    }
}

/// Parses, verifies and appraises a TDX quote ([`Policy::evaluate_tdx`]: the
/// quote carries no GPU reports, so `gpu.min_count` > 0 refuses it, and no
/// measured-boot evidence, so every `[tdx]` event, agent and configuration rule
/// refuses it). The policy's `tdx.collateral_grace_seconds` applies to the
/// collateral's validity.
pub fn check_tdx<C: Crypto>(
    verifier: &mut TdxVerifier<C>,
    quote: &[u8],
    collateral: &TdxCollateral,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<TdxClaims> {
    check_tdx_measured(
        verifier,
        quote,
        collateral,
        &MeasuredBoot::default(),
        policy,
        now,
    )
}

/// [`check_tdx`] with measured-boot evidence beside the quote (an event log, the
/// agent's RTMR3 events): it must replay to the verified quote's registers
/// ([`crate::verify::measured`]), and the `[tdx]` event, agent and configuration
/// rules are appraised against it.
pub fn check_tdx_measured<C: Crypto>(
    verifier: &mut TdxVerifier<C>,
    quote: &[u8],
    collateral: &TdxCollateral,
    measured: &MeasuredBoot,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<TdxClaims> {
    let parsed = match parse_tdx_quote(quote) {
        Ok(q) => q,
        Err(e) => return Outcome::rejected(None, e),
    };
    match verifier.verify_with_grace(
        &parsed,
        collateral,
        now,
        policy.tdx.collateral_grace_seconds,
    ) {
        Err(failures) => Outcome {
            claims: Some(TdxClaims::new(&parsed, None)),
            reasons: failures.0.iter().map(ToString::to_string).collect(),
        },
        Ok(ev) => {
            let replay = verify_measured_tdx(measured, &ev.body.rtmr);
            let reasons = match replay {
                Some(Err(errors)) => errors.iter().map(ToString::to_string).collect(),
                Some(Ok(m)) => verdict_reasons(policy.evaluate_tdx_measured(&ev, Some(&m))),
                None => verdict_reasons(policy.evaluate_tdx_measured(&ev, None)),
            };
            Outcome {
                claims: Some(TdxClaims::new(&parsed, Some(&ev))),
                reasons,
            }
        }
    }
}
