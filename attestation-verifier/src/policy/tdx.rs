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
use crate::verify::measured::MeasuredBootEvidence;
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
    /// Events the firmware log must hold (measured boot, bundle version 5): each
    /// an RTMR and the SHA-384 digest an event extended into it, e.g. the
    /// kernel's or UKI's Authenticode hash, the command line, the initrd. The log
    /// must replay to the quote's registers; without a verified log every rule
    /// here fails.
    pub events: Vec<TdxEventRule>,
    /// Accepted agent executables: SHA-384 of the `sigil-agent` binary the agent
    /// measured into RTMR3 at its last start (48 bytes); empty accepts any, and
    /// evidence without the agent's measurement only while empty.
    pub agent_digests: Vec<HexBytes>,
    /// Accepted agent configurations: SHA-384 of the effective configuration the
    /// agent measured into RTMR3 at its last start (48 bytes); empty accepts any.
    pub config_digests: Vec<HexBytes>,
}

/// One event the firmware log must hold: `{ rtmr = 1, digest = "..." }`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(deny_unknown_fields)]
pub struct TdxEventRule {
    /// The register the event extends (0..=3).
    pub rtmr: u8,
    /// The SHA-384 digest it extends (48 bytes).
    pub digest: HexBytes,
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
            events: Vec::new(),
            agent_digests: Vec::new(),
            config_digests: Vec::new(),
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
        for e in &self.events {
            check_len("tdx.events", &e.digest, 48)?;
            if e.rtmr > 3 {
                return Err(PolicyError::Value {
                    field: "tdx.events",
                    reason: format!("rtmr {} is not 0 to 3", e.rtmr),
                });
            }
        }
        for d in &self.agent_digests {
            check_len("tdx.agent_digests", d, 48)?;
        }
        for d in &self.config_digests {
            check_len("tdx.config_digests", d, 48)?;
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
        sort_dedup(&mut self.events);
        sort_dedup(&mut self.agent_digests);
        sort_dedup(&mut self.config_digests);
    }

    /// Whether any rule needs measured-boot evidence.
    pub fn needs_measured_boot(&self) -> bool {
        !self.events.is_empty() || !self.agent_digests.is_empty() || !self.config_digests.is_empty()
    }

    /// Appraises the measured-boot evidence of TDX evidence (`None`: the bundle
    /// carried none); appends every violation.
    pub fn evaluate_measured(
        &self,
        m: Option<&Verified<MeasuredBootEvidence>>,
        v: &mut Vec<Violation>,
    ) {
        let mut fail = |rule: &'static str, detail: String| v.push(Violation { rule, detail });
        let log = m.and_then(|m| m.log.as_ref().map(|_| m));
        for e in &self.events {
            let held = log.is_some_and(|m| {
                e.digest
                    .0
                    .as_slice()
                    .try_into()
                    .is_ok_and(|d: [u8; 48]| m.has_event(e.rtmr, &d))
            });
            if !held {
                fail(
                    "tdx.events",
                    if log.is_none() {
                        format!(
                            "no verified event log, so no event extending RTMR{} with {}",
                            e.rtmr,
                            hex::encode(&e.digest.0)
                        )
                    } else {
                        format!(
                            "no event extends RTMR{} with {}",
                            e.rtmr,
                            hex::encode(&e.digest.0)
                        )
                    },
                );
            }
        }
        for (rule, list, what, digest) in [
            (
                "tdx.agent_digests",
                &self.agent_digests,
                "agent executable",
                m.and_then(|m| m.agent_digest()),
            ),
            (
                "tdx.config_digests",
                &self.config_digests,
                "agent configuration",
                m.and_then(|m| m.config_digest()),
            ),
        ] {
            if list.is_empty() {
                continue;
            }
            match digest {
                None => fail(
                    rule,
                    format!("the evidence carries no measurement of the {what}"),
                ),
                Some(d) if !listed(list, d) => fail(
                    rule,
                    format!("{what} digest {} is not accepted", hex::encode(d)),
                ),
                Some(_) => {}
            }
        }
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
