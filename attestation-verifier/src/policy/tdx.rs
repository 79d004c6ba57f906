//! Intel TDX appraisal rules: the `[tdx]` table of the policy file.
//!
//! Defaults are strict: only `UpToDate` platforms, no debug TDs, no migratable
//! TDs, no service-TD binding, `SEPT_VE_DISABLE` required, and no grace period for
//! expired collateral. Measurement rules are empty (any value is accepted) until set.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use super::{HexBytes, PolicyError, any_of, check_len, listed, sort_dedup};
use crate::verdict::{Verdict, Verified, Violation};
use crate::verify::tdx::{TcbStatus, TdxEvidence};

/// Intel TDX appraisal rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TdxPolicy {
    /// TCB statuses accepted, as Intel spells them (default `["UpToDate"]`).
    /// `Revoked` is never accepted.
    pub accepted_tcb_statuses: Vec<String>,
    /// When set, every advisory on the TCB must be listed here.
    pub accepted_advisory_ids: Option<Vec<String>>,
    /// Advisories that reject the evidence whenever present.
    pub rejected_advisory_ids: Vec<String>,
    /// Seconds collateral (TCB Info, QE Identity, CRLs) stays acceptable after its
    /// nextUpdate (default 0). Certificates get no grace.
    pub collateral_grace_seconds: u64,
    /// Minimum TCB evaluation data number of the collateral (the lower of the TCB
    /// Info's and the QE Identity's).
    pub min_tcb_evaluation_data_number: u32,
    /// Accept debug TDs (TUD.DEBUG or the profiling bits; default false).
    pub allow_debug: bool,
    /// Accept migratable TDs (default false).
    pub allow_migratable: bool,
    /// Accept TDs bound to service TDs: SERVTD_EXT or a non-zero MRSERVICETD
    /// (default false).
    pub allow_service_td: bool,
    /// Require SEPT_VE_DISABLE (default true).
    pub require_sept_ve_disable: bool,
    /// Accepted MRTDs (48 bytes); empty accepts any.
    pub mrtds: Vec<HexBytes>,
    /// Required RTMR0 (48 bytes).
    pub rtmr0: Option<HexBytes>,
    /// Required RTMR1 (48 bytes).
    pub rtmr1: Option<HexBytes>,
    /// Required RTMR2 (48 bytes).
    pub rtmr2: Option<HexBytes>,
    /// Required RTMR3 (48 bytes).
    pub rtmr3: Option<HexBytes>,
    /// Required MRCONFIGID (48 bytes).
    pub mrconfigid: Option<HexBytes>,
    /// Required MROWNER (48 bytes).
    pub mrowner: Option<HexBytes>,
    /// Required MROWNERCONFIG (48 bytes).
    pub mrownerconfig: Option<HexBytes>,
    /// Accepted TDX module measurements MRSEAM (48 bytes); empty accepts any.
    pub mrseams: Vec<HexBytes>,
    /// Required REPORT_DATA (64 bytes).
    pub report_data: Option<HexBytes>,
    /// Accepted platforms by FMSPC (6 bytes); empty accepts any. Also read
    /// under its former key `fmspcs`.
    #[serde(alias = "fmspcs")]
    pub allow_fmspcs: Vec<HexBytes>,
    /// Refused platforms by FMSPC (6 bytes).
    pub deny_fmspcs: Vec<HexBytes>,
    /// Accepted processors by the PPID of their PCK certificate (16 bytes);
    /// empty accepts any.
    pub allow_ppids: Vec<HexBytes>,
    /// Refused processors by the PPID of their PCK certificate (16 bytes).
    pub deny_ppids: Vec<HexBytes>,
    /// The oldest any collateral item (TCB Info, QE Identity, CRLs) may be: seconds from
    /// its issue date to the verification time. `None`: any current collateral.
    pub max_collateral_age_secs: Option<u64>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            accepted_tcb_statuses: alloc::vec![TcbStatus::UpToDate.name().into()],
            accepted_advisory_ids: None,
            rejected_advisory_ids: Vec::new(),
            collateral_grace_seconds: 0,
            min_tcb_evaluation_data_number: 0,
            allow_debug: false,
            allow_migratable: false,
            allow_service_td: false,
            require_sept_ve_disable: true,
            mrtds: Vec::new(),
            rtmr0: None,
            rtmr1: None,
            rtmr2: None,
            rtmr3: None,
            mrconfigid: None,
            mrowner: None,
            mrownerconfig: None,
            mrseams: Vec::new(),
            report_data: None,
            allow_fmspcs: Vec::new(),
            deny_fmspcs: Vec::new(),
            allow_ppids: Vec::new(),
            deny_ppids: Vec::new(),
            max_collateral_age_secs: None,
        }
    }
}

impl TdxPolicy {
    /// Checks lengths and status names.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for s in &self.accepted_tcb_statuses {
            match TcbStatus::from_name(s) {
                None => {
                    return Err(PolicyError::Value {
                        field: "tdx.accepted_tcb_statuses",
                        reason: format!(
                            "unknown TCB status {s:?} (UpToDate, SWHardeningNeeded, \
                             ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, \
                             OutOfDateConfigurationNeeded, TDRelaunchAdvised, \
                             TDRelaunchAdvisedConfigurationNeeded)"
                        ),
                    });
                }
                Some(TcbStatus::Revoked) => {
                    return Err(PolicyError::Value {
                        field: "tdx.accepted_tcb_statuses",
                        reason: "Revoked is never accepted".into(),
                    });
                }
                Some(_) => {}
            }
        }
        for m in &self.mrtds {
            check_len("tdx.mrtds", m, 48)?;
        }
        for m in &self.mrseams {
            check_len("tdx.mrseams", m, 48)?;
        }
        for (field, v) in [
            ("tdx.rtmr0", &self.rtmr0),
            ("tdx.rtmr1", &self.rtmr1),
            ("tdx.rtmr2", &self.rtmr2),
            ("tdx.rtmr3", &self.rtmr3),
            ("tdx.mrconfigid", &self.mrconfigid),
            ("tdx.mrowner", &self.mrowner),
            ("tdx.mrownerconfig", &self.mrownerconfig),
        ] {
            if let Some(v) = v {
                check_len(field, v, 48)?;
            }
        }
        if let Some(r) = &self.report_data {
            check_len("tdx.report_data", r, 64)?;
        }
        for f in &self.allow_fmspcs {
            check_len("tdx.allow_fmspcs", f, 6)?;
        }
        for f in &self.deny_fmspcs {
            check_len("tdx.deny_fmspcs", f, 6)?;
        }
        for p in &self.allow_ppids {
            check_len("tdx.allow_ppids", p, 16)?;
        }
        for p in &self.deny_ppids {
            check_len("tdx.deny_ppids", p, 16)?;
        }
        Ok(())
    }

    /// Sorts and deduplicates every list; advisory ids in upper case.
    pub(super) fn canonicalize(&mut self) {
        sort_dedup(&mut self.accepted_tcb_statuses);
        if let Some(ids) = &mut self.accepted_advisory_ids {
            ids.iter_mut().for_each(|id| id.make_ascii_uppercase());
            sort_dedup(ids);
        }
        self.rejected_advisory_ids
            .iter_mut()
            .for_each(|id| id.make_ascii_uppercase());
        sort_dedup(&mut self.rejected_advisory_ids);
        sort_dedup(&mut self.mrtds);
        sort_dedup(&mut self.mrseams);
        sort_dedup(&mut self.allow_fmspcs);
        sort_dedup(&mut self.deny_fmspcs);
        sort_dedup(&mut self.allow_ppids);
        sort_dedup(&mut self.deny_ppids);
    }

    /// Appraises a verified quote; lists every violation.
    pub fn evaluate(&self, ev: &Verified<TdxEvidence>) -> Verdict {
        let b = &ev.body;
        let a = b.td_attributes;
        let mut v = Vec::new();
        let mut fail = |rule: &'static str, detail: String| v.push(Violation { rule, detail });
        let status = ev.tcb_status.name();
        if !self.accepted_tcb_statuses.iter().any(|s| s == status) {
            fail(
                "tdx.accepted_tcb_statuses",
                format!("TCB status {status} is not accepted"),
            );
        }
        for id in &ev.advisory_ids {
            if self
                .rejected_advisory_ids
                .iter()
                .any(|r| r.eq_ignore_ascii_case(id))
            {
                fail(
                    "tdx.rejected_advisory_ids",
                    format!("advisory {id} applies"),
                );
            }
            if let Some(ok) = &self.accepted_advisory_ids
                && !ok.iter().any(|r| r.eq_ignore_ascii_case(id))
            {
                fail(
                    "tdx.accepted_advisory_ids",
                    format!("advisory {id} is not accepted"),
                );
            }
        }
        let eval_number = ev
            .tcb_evaluation_data_number
            .min(ev.qe_tcb_evaluation_data_number);
        if eval_number < self.min_tcb_evaluation_data_number {
            fail(
                "tdx.min_tcb_evaluation_data_number",
                format!(
                    "collateral TCB evaluation data number {} is below {}",
                    eval_number, self.min_tcb_evaluation_data_number
                ),
            );
        }
        if let Some(max) = self.max_collateral_age_secs {
            let age = ev
                .verified_at
                .as_secs()
                .saturating_sub(ev.oldest_collateral_issued.as_secs());
            if age > max {
                fail(
                    "tdx.max_collateral_age_secs",
                    format!("the oldest collateral was issued {age} s before, at most {max} s"),
                );
            }
        }
        if a.debug() && !self.allow_debug {
            fail("tdx.allow_debug", "TD_ATTRIBUTES.DEBUG is set".into());
        }
        if a.profiling() && !self.allow_debug {
            fail(
                "tdx.allow_debug",
                "TD_ATTRIBUTES profiling bits are set".into(),
            );
        }
        if a.reserved() != 0 {
            fail(
                "tdx.td_attributes",
                format!(
                    "reserved TD_ATTRIBUTES bits are set ({:#018x})",
                    a.reserved()
                ),
            );
        }
        if a.migratable() && !self.allow_migratable {
            fail("tdx.allow_migratable", "the TD is migratable".into());
        }
        let service_td = b.td15.is_some_and(|t| t.mr_service_td != [0; 48]);
        if (a.servtd_ext() || service_td) && !self.allow_service_td {
            fail(
                "tdx.allow_service_td",
                "the TD is bound to service TDs".into(),
            );
        }
        if self.require_sept_ve_disable && !a.sept_ve_disable() {
            fail(
                "tdx.require_sept_ve_disable",
                "TD_ATTRIBUTES.SEPT_VE_DISABLE is not set".into(),
            );
        }
        if !any_of(&self.mrtds, &b.mr_td) {
            fail(
                "tdx.mrtds",
                format!("MRTD {} is not accepted", hex::encode(b.mr_td)),
            );
        }
        if !any_of(&self.mrseams, &b.mr_seam) {
            fail(
                "tdx.mrseams",
                format!("MRSEAM {} is not accepted", hex::encode(b.mr_seam)),
            );
        }
        let [r0, r1, r2, r3] = &b.rtmr;
        let exact = [
            ("tdx.rtmr0", &self.rtmr0, r0),
            ("tdx.rtmr1", &self.rtmr1, r1),
            ("tdx.rtmr2", &self.rtmr2, r2),
            ("tdx.rtmr3", &self.rtmr3, r3),
            ("tdx.mrconfigid", &self.mrconfigid, &b.mr_config_id),
            ("tdx.mrowner", &self.mrowner, &b.mr_owner),
            ("tdx.mrownerconfig", &self.mrownerconfig, &b.mr_owner_config),
        ];
        for (rule, want, have) in exact {
            if let Some(want) = want
                && !want.matches(have)
            {
                fail(rule, format!("value is {}", hex::encode(have)));
            }
        }
        if let Some(want) = &self.report_data
            && !want.matches(&b.report_data)
        {
            fail(
                "tdx.report_data",
                format!("report_data is {}", hex::encode(b.report_data)),
            );
        }
        if !any_of(&self.allow_fmspcs, &ev.pck.fmspc) {
            fail(
                "tdx.allow_fmspcs",
                format!("FMSPC {} is not accepted", hex::encode(ev.pck.fmspc)),
            );
        }
        if listed(&self.deny_fmspcs, &ev.pck.fmspc) {
            fail(
                "tdx.deny_fmspcs",
                format!("FMSPC {} is refused", hex::encode(ev.pck.fmspc)),
            );
        }
        if !any_of(&self.allow_ppids, &ev.pck.ppid) {
            fail(
                "tdx.allow_ppids",
                format!("PPID {} is not accepted", hex::encode(&ev.pck.ppid)),
            );
        }
        if listed(&self.deny_ppids, &ev.pck.ppid) {
            fail(
                "tdx.deny_ppids",
                format!("PPID {} is refused", hex::encode(&ev.pck.ppid)),
            );
        }
        Verdict::from_violations(v)
    }
}
