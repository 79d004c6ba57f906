//! TCB Info (v3, TDX) and QE Identity (v2, TD_QE): their contents, and Intel's
//! TCB level selection and status convergence (Intel "Quote Verification Library",
//! `TcbLevelsVerifier` / `convergeTcbStatuses` / `checkForRelaunch`).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use crate::evidence::tdx::{EnclaveReport, TdReport};
use crate::time::UnixTime;

use super::TdxVerifyError;
use super::collateral::{CollateralError, date, hex_array, status};

/// A TCB status, as Intel spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcbStatus {
    /// The platform is patched to the latest TCB.
    UpToDate,
    /// Patched, but software mitigations are needed (see the advisories).
    SWHardeningNeeded,
    /// Patched, but the platform's configuration needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// The TCB is out of date.
    OutOfDate,
    /// Out of date, and the configuration needs changes.
    OutOfDateConfigurationNeeded,
    /// The TCB has been revoked: its keys cannot be trusted.
    Revoked,
    /// TDX 1.5: launched on an out-of-date TDX module, now running an updated one.
    TDRelaunchAdvised,
    /// As [`TcbStatus::TDRelaunchAdvised`], and the configuration needs changes.
    TDRelaunchAdvisedConfigurationNeeded,
}

impl TcbStatus {
    /// Every status.
    pub const ALL: [TcbStatus; 9] = [
        Self::UpToDate,
        Self::SWHardeningNeeded,
        Self::ConfigurationNeeded,
        Self::ConfigurationAndSWHardeningNeeded,
        Self::OutOfDate,
        Self::OutOfDateConfigurationNeeded,
        Self::Revoked,
        Self::TDRelaunchAdvised,
        Self::TDRelaunchAdvisedConfigurationNeeded,
    ];

    /// The name as Intel spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SWHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
            Self::TDRelaunchAdvised => "TDRelaunchAdvised",
            Self::TDRelaunchAdvisedConfigurationNeeded => "TDRelaunchAdvisedConfigurationNeeded",
        }
    }

    /// Parses a name (exact spelling).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The seven statuses that collateral may carry (the relaunch ones are derived).
    pub(crate) fn from_collateral_name(s: &str) -> Option<Self> {
        Self::from_name(s).filter(|t| {
            !matches!(
                t,
                Self::TDRelaunchAdvised | Self::TDRelaunchAdvisedConfigurationNeeded
            )
        })
    }

    /// Converges a platform status with a component's (QE or TDX module): only an
    /// `OutOfDate` or `Revoked` component changes the platform status.
    pub(crate) fn converge(self, component: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (component, self) {
            (Revoked, _) => Revoked,
            (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
            (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => {
                OutOfDateConfigurationNeeded
            }
            _ => self,
        }
    }

    /// Combines a TD 1.5's launch status with its current one.
    pub(crate) fn check_for_relaunch(self, current: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        let config = |s| {
            matches!(
                s,
                ConfigurationNeeded
                    | OutOfDateConfigurationNeeded
                    | ConfigurationAndSWHardeningNeeded
                    | TDRelaunchAdvisedConfigurationNeeded
            )
        };
        match (self, current) {
            (
                OutOfDate | OutOfDateConfigurationNeeded,
                UpToDate
                | SWHardeningNeeded
                | ConfigurationNeeded
                | ConfigurationAndSWHardeningNeeded,
            ) => {
                if config(self) || config(current) {
                    TDRelaunchAdvisedConfigurationNeeded
                } else {
                    TDRelaunchAdvised
                }
            }
            _ => self,
        }
    }
}

impl core::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One TCB level of a TCB Info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbLevel {
    /// Minimum SGX TCB component SVNs.
    pub sgx: [u8; 16],
    /// Minimum PCE SVN.
    pub pce_svn: u16,
    /// Minimum TDX TCB component SVNs.
    pub tdx: [u8; 16],
    /// The level's date.
    pub date: UnixTime,
    /// The status of platforms at this level.
    pub status: TcbStatus,
    /// Intel security advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// Expected TDX module signer and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModule {
    /// MRSIGNER_SEAM.
    pub mrsigner: [u8; 48],
    /// SEAM_ATTRIBUTES.
    pub attributes: [u8; 8],
    /// Mask applied to SEAM_ATTRIBUTES before comparing.
    pub attributes_mask: [u8; 8],
}

/// A TDX module identity level (by module ISVSVN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLevel {
    /// Minimum module ISVSVN (`TEE_TCB_SVN[0]`).
    pub isvsvn: u8,
    /// The level's date.
    pub date: UnixTime,
    /// Status.
    pub status: TcbStatus,
    /// Advisories.
    pub advisory_ids: Vec<String>,
}

/// The identity of one TDX module version (`TDX_01`, `TDX_03`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// `TDX_<version, 2 hex digits>`.
    pub id: String,
    /// Signer and attributes.
    pub module: TdxModule,
    /// Levels, best first.
    pub levels: Vec<ModuleLevel>,
}

/// A parsed TDX TCB Info (version 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbInfo {
    /// FMSPC it applies to.
    pub fmspc: [u8; 6],
    /// PCE id it applies to.
    pub pce_id: [u8; 2],
    /// Issue date.
    pub issue_date: UnixTime,
    /// Next update: the end of its validity.
    pub next_update: UnixTime,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// The TDX module's expected signer and attributes.
    pub tdx_module: TdxModule,
    /// Per-version module identities.
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    /// Levels in Intel's canonical order (highest TCB first).
    pub levels: Vec<TcbLevel>,
}

/// One QE TCB level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QeLevel {
    /// Minimum QE ISVSVN.
    pub isvsvn: u16,
    /// The level's date.
    pub date: UnixTime,
    /// Status.
    pub status: TcbStatus,
    /// Advisories.
    pub advisory_ids: Vec<String>,
}

/// A parsed QE Identity (version 2, id `TD_QE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QeIdentity {
    /// Issue date.
    pub issue_date: UnixTime,
    /// Next update.
    pub next_update: UnixTime,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// Expected MISCSELECT (after the mask).
    pub miscselect: u32,
    /// MISCSELECT mask.
    pub miscselect_mask: u32,
    /// Expected ATTRIBUTES (after the mask).
    pub attributes: [u8; 16],
    /// ATTRIBUTES mask.
    pub attributes_mask: [u8; 16],
    /// Expected MRSIGNER.
    pub mrsigner: [u8; 32],
    /// Expected ISVPRODID.
    pub isvprodid: u16,
    /// Levels, best first.
    pub levels: Vec<QeLevel>,
}

// ---- JSON shapes (strings borrowed from the document where it has no escapes) ----

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoJson<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    version: u32,
    #[serde(borrow)]
    issue_date: Str<'a>,
    #[serde(borrow)]
    next_update: Str<'a>,
    #[serde(borrow)]
    fmspc: Str<'a>,
    #[serde(borrow)]
    pce_id: Str<'a>,
    tcb_evaluation_data_number: u32,
    #[serde(default, borrow)]
    tdx_module: Option<TdxModuleJson<'a>>,
    #[serde(default, borrow)]
    tdx_module_identities: Vec<TdxModuleIdentityJson<'a>>,
    #[serde(borrow)]
    tcb_levels: Vec<TcbLevelJson<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleJson<'a> {
    #[serde(borrow)]
    mrsigner: Str<'a>,
    #[serde(borrow)]
    attributes: Str<'a>,
    #[serde(borrow)]
    attributes_mask: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentityJson<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow)]
    mrsigner: Str<'a>,
    #[serde(borrow)]
    attributes: Str<'a>,
    #[serde(borrow)]
    attributes_mask: Str<'a>,
    #[serde(borrow)]
    tcb_levels: Vec<ModuleLevelJson<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleLevelJson<'a> {
    tcb: IsvSvnJson,
    #[serde(borrow)]
    tcb_date: Str<'a>,
    #[serde(borrow)]
    tcb_status: Str<'a>,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct IsvSvnJson {
    isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevelJson<'a> {
    tcb: TcbJson,
    #[serde(borrow)]
    tcb_date: Str<'a>,
    #[serde(borrow)]
    tcb_status: Str<'a>,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

/// A TCB level's components: exactly 16 of each kind (serde checks the count).
#[derive(Deserialize)]
struct TcbJson {
    sgxtcbcomponents: [SvnJson; 16],
    pcesvn: u16,
    #[serde(default)]
    tdxtcbcomponents: Option<[SvnJson; 16]>,
}

#[derive(Deserialize, Clone, Copy)]
struct SvnJson {
    svn: u8,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityJson<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    version: u32,
    #[serde(borrow)]
    issue_date: Str<'a>,
    #[serde(borrow)]
    next_update: Str<'a>,
    tcb_evaluation_data_number: u32,
    #[serde(borrow)]
    miscselect: Str<'a>,
    #[serde(borrow)]
    miscselect_mask: Str<'a>,
    #[serde(borrow)]
    attributes: Str<'a>,
    #[serde(borrow)]
    attributes_mask: Str<'a>,
    #[serde(borrow)]
    mrsigner: Str<'a>,
    isvprodid: u16,
    #[serde(borrow)]
    tcb_levels: Vec<ModuleLevelJson<'a>>,
}

fn components(c: &[SvnJson; 16]) -> [u8; 16] {
    c.map(|s| s.svn)
}

fn module(what: &'static str, m: &TdxModuleJson<'_>) -> Result<TdxModule, CollateralError> {
    Ok(TdxModule {
        mrsigner: hex_array(what, "mrsigner", &m.mrsigner)?,
        attributes: hex_array(what, "attributes", &m.attributes)?,
        attributes_mask: hex_array(what, "attributesMask", &m.attributes_mask)?,
    })
}

fn module_level(
    what: &'static str,
    l: &ModuleLevelJson<'_>,
) -> Result<ModuleLevel, CollateralError> {
    Ok(ModuleLevel {
        isvsvn: u8::try_from(l.tcb.isvsvn).map_err(|_| CollateralError::Field {
            what,
            field: "isvsvn",
            reason: format!("{} does not fit a module ISVSVN", l.tcb.isvsvn),
        })?,
        date: date(what, "tcbDate", &l.tcb_date)?,
        status: status(what, &l.tcb_status)?,
        advisory_ids: l.advisory_ids.clone(),
    })
}

impl TcbInfo {
    /// Parses the signed `tcbInfo` JSON object of a TDX TCB Info (version 3).
    pub fn parse(json: &[u8]) -> Result<Self, CollateralError> {
        const WHAT: &str = "TCB Info";
        let j: TcbInfoJson = serde_json::from_slice(json).map_err(|e| CollateralError::Json {
            what: WHAT,
            reason: alloc::string::ToString::to_string(&e),
        })?;
        if j.id != "TDX" || j.version != 3 {
            return Err(CollateralError::Kind {
                what: WHAT,
                id: j.id.into_owned(),
                version: j.version,
                expected: "TDX version 3",
            });
        }
        let tdx_module = module(
            WHAT,
            j.tdx_module.as_ref().ok_or(CollateralError::Field {
                what: WHAT,
                field: "tdxModule",
                reason: "missing".into(),
            })?,
        )?;
        let mut tdx_module_identities = Vec::with_capacity(j.tdx_module_identities.len());
        for m in &j.tdx_module_identities {
            tdx_module_identities.push(TdxModuleIdentity {
                id: m.id.clone().into_owned(),
                module: module(
                    WHAT,
                    &TdxModuleJson {
                        mrsigner: m.mrsigner.clone(),
                        attributes: m.attributes.clone(),
                        attributes_mask: m.attributes_mask.clone(),
                    },
                )?,
                levels: {
                    let mut v = m
                        .tcb_levels
                        .iter()
                        .map(|l| module_level(WHAT, l))
                        .collect::<Result<Vec<_>, _>>()?;
                    v.sort_by_key(|l| core::cmp::Reverse(l.isvsvn));
                    v
                },
            });
        }
        let mut levels = Vec::with_capacity(j.tcb_levels.len());
        for l in &j.tcb_levels {
            levels.push(TcbLevel {
                sgx: components(&l.tcb.sgxtcbcomponents),
                pce_svn: l.tcb.pcesvn,
                tdx: components(
                    l.tcb
                        .tdxtcbcomponents
                        .as_ref()
                        .ok_or(CollateralError::Field {
                            what: WHAT,
                            field: "tdxtcbcomponents",
                            reason: "missing".into(),
                        })?,
                ),
                date: date(WHAT, "tcbDate", &l.tcb_date)?,
                status: status(WHAT, &l.tcb_status)?,
                advisory_ids: l.advisory_ids.clone(),
            });
        }
        // Intel's QVL keeps levels in a set ordered by SGX components, then PCE SVN,
        // then TDX components, highest first; the JSON order is not relied on.
        levels.sort_by(|a, b| {
            b.sgx
                .cmp(&a.sgx)
                .then_with(|| b.pce_svn.cmp(&a.pce_svn))
                .then_with(|| b.tdx.cmp(&a.tdx))
        });
        Ok(Self {
            fmspc: hex_array(WHAT, "fmspc", &j.fmspc)?,
            pce_id: hex_array(WHAT, "pceId", &j.pce_id)?,
            issue_date: date(WHAT, "issueDate", &j.issue_date)?,
            next_update: date(WHAT, "nextUpdate", &j.next_update)?,
            tcb_evaluation_data_number: j.tcb_evaluation_data_number,
            tdx_module,
            tdx_module_identities,
            levels,
        })
    }
}

impl QeIdentity {
    /// Parses the signed `enclaveIdentity` JSON object of a TD_QE identity (version 2).
    pub fn parse(json: &[u8]) -> Result<Self, CollateralError> {
        const WHAT: &str = "QE Identity";
        let j: QeIdentityJson =
            serde_json::from_slice(json).map_err(|e| CollateralError::Json {
                what: WHAT,
                reason: alloc::string::ToString::to_string(&e),
            })?;
        if j.id != "TD_QE" || j.version != 2 {
            return Err(CollateralError::Kind {
                what: WHAT,
                id: j.id.into_owned(),
                version: j.version,
                expected: "TD_QE version 2",
            });
        }
        let mut levels = Vec::with_capacity(j.tcb_levels.len());
        for l in &j.tcb_levels {
            levels.push(QeLevel {
                isvsvn: l.tcb.isvsvn,
                date: date(WHAT, "tcbDate", &l.tcb_date)?,
                status: status(WHAT, &l.tcb_status)?,
                advisory_ids: l.advisory_ids.clone(),
            });
        }
        levels.sort_by_key(|l| core::cmp::Reverse(l.isvsvn));
        // MISCSELECT is written as a big-endian hex number.
        let misc = |field, s: &str| hex_array::<4>(WHAT, field, s).map(u32::from_be_bytes);
        Ok(Self {
            issue_date: date(WHAT, "issueDate", &j.issue_date)?,
            next_update: date(WHAT, "nextUpdate", &j.next_update)?,
            tcb_evaluation_data_number: j.tcb_evaluation_data_number,
            miscselect: misc("miscselect", &j.miscselect)?,
            miscselect_mask: misc("miscselectMask", &j.miscselect_mask)?,
            attributes: hex_array(WHAT, "attributes", &j.attributes)?,
            attributes_mask: hex_array(WHAT, "attributesMask", &j.attributes_mask)?,
            mrsigner: hex_array(WHAT, "mrsigner", &j.mrsigner)?,
            isvprodid: j.isvprodid,
            levels,
        })
    }
}

/// A status with its advisories and date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusWithAdvisories {
    /// The status.
    pub status: TcbStatus,
    /// Advisories, in order of first appearance, without duplicates.
    pub advisory_ids: Vec<String>,
    /// The oldest date among the merged levels.
    pub date: UnixTime,
}

impl StatusWithAdvisories {
    fn merge(&mut self, status: TcbStatus, advisories: &[String], date: UnixTime) {
        self.status = self.status.converge(status);
        for a in advisories {
            if !self.advisory_ids.contains(a) {
                self.advisory_ids.push(a.clone());
            }
        }
        self.date = self.date.min(date);
    }
}

fn hex_upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

/// The QE's TCB level: checks the QE report against the QE Identity (MRSIGNER,
/// ISVPRODID, masked MISCSELECT and ATTRIBUTES, not in debug mode) and picks the
/// first level whose ISVSVN the QE meets.
pub(crate) fn qe_level(
    qe: &QeIdentity,
    report: &EnclaveReport,
) -> Result<StatusWithAdvisories, Vec<TdxVerifyError>> {
    let mut errors = Vec::new();
    let mismatch =
        |field: &'static str, expected: String, found: String| TdxVerifyError::QeIdentityMismatch {
            field,
            expected,
            found,
        };
    if report.mr_signer != qe.mrsigner {
        errors.push(mismatch(
            "MRSIGNER",
            hex_upper(&qe.mrsigner),
            hex_upper(&report.mr_signer),
        ));
    }
    if report.isv_prod_id != qe.isvprodid {
        errors.push(mismatch(
            "ISVPRODID",
            format!("{}", qe.isvprodid),
            format!("{}", report.isv_prod_id),
        ));
    }
    if report.misc_select & qe.miscselect_mask != qe.miscselect & qe.miscselect_mask {
        errors.push(mismatch(
            "MISCSELECT",
            format!("{:08X}", qe.miscselect & qe.miscselect_mask),
            format!("{:08X}", report.misc_select & qe.miscselect_mask),
        ));
    }
    let masked = |a: &[u8; 16]| {
        let mut out = [0u8; 16];
        for ((o, x), m) in out.iter_mut().zip(a).zip(&qe.attributes_mask) {
            *o = x & m;
        }
        out
    };
    if masked(&report.attributes) != masked(&qe.attributes) {
        errors.push(mismatch(
            "ATTRIBUTES",
            hex_upper(&masked(&qe.attributes)),
            hex_upper(&masked(&report.attributes)),
        ));
    }
    if report.debug() {
        errors.push(TdxVerifyError::QeDebug);
    }
    let level = qe.levels.iter().find(|l| report.isv_svn >= l.isvsvn);
    match level {
        None => errors.push(TdxVerifyError::QeTcbTooLow {
            isvsvn: report.isv_svn,
            minimum: qe.levels.last().map(|l| l.isvsvn),
        }),
        Some(l) if errors.is_empty() => {
            return Ok(StatusWithAdvisories {
                status: l.status,
                advisory_ids: l.advisory_ids.clone(),
                date: l.date,
            });
        }
        Some(_) => {}
    }
    Err(errors)
}

impl TcbInfo {
    /// The module identity for `tee_tcb_svn`'s module version (byte 1), if non-zero.
    fn module_identity(
        &self,
        tee_tcb_svn: &[u8; 16],
    ) -> Result<Option<&TdxModuleIdentity>, TdxVerifyError> {
        let version = tee_tcb_svn.get(1).copied().unwrap_or(0);
        if version == 0 {
            return Ok(None);
        }
        let id = format!("TDX_{version:02X}");
        self.tdx_module_identities
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(&id))
            .map(Some)
            .ok_or(TdxVerifyError::TdxModuleIdentityNotFound { id })
    }

    /// Selects the platform TCB level for the PCK certificate's CPUSVN and PCESVN
    /// and a TD's `tee_tcb_svn`, converged with the TDX module's level.
    pub(crate) fn evaluate(
        &self,
        cpusvn: &[u8; 16],
        pce_svn: u16,
        tee_tcb_svn: &[u8; 16],
    ) -> Result<StatusWithAdvisories, TdxVerifyError> {
        // With a module version, components 0 and 1 belong to the module identity.
        let skip = if tee_tcb_svn.get(1).is_some_and(|v| *v > 0) {
            2
        } else {
            0
        };
        let meets = |l: &&TcbLevel| {
            cpusvn.iter().zip(&l.sgx).all(|(have, need)| have >= need)
                && pce_svn >= l.pce_svn
                && tee_tcb_svn
                    .iter()
                    .zip(&l.tdx)
                    .skip(skip)
                    .all(|(have, need)| have >= need)
        };
        let level = self
            .levels
            .iter()
            .find(meets)
            .ok_or(TdxVerifyError::TcbLevelNotFound {
                fmspc: hex::encode(self.fmspc),
            })?;
        let mut out = StatusWithAdvisories {
            status: level.status,
            advisory_ids: level.advisory_ids.clone(),
            date: level.date,
        };
        if let Some(identity) = self.module_identity(tee_tcb_svn)? {
            let isvsvn = tee_tcb_svn.first().copied().unwrap_or(0);
            let m = identity
                .levels
                .iter()
                .find(|l| isvsvn >= l.isvsvn)
                .ok_or_else(|| TdxVerifyError::TdxModuleTcbTooLow {
                    id: identity.id.clone(),
                    isvsvn,
                })?;
            out.merge(m.status, &m.advisory_ids, m.date);
        }
        Ok(out)
    }

    /// Checks the TD report's MRSIGNER_SEAM and SEAM_ATTRIBUTES against the module
    /// identity of its module version (or the base `tdxModule`).
    pub(crate) fn check_module(&self, td: &TdReport) -> Result<(), TdxVerifyError> {
        let m = match self.module_identity(&td.tee_tcb_svn)? {
            Some(identity) => &identity.module,
            None => &self.tdx_module,
        };
        if td.mr_signer_seam != m.mrsigner {
            return Err(TdxVerifyError::TdxModuleMismatch {
                field: "MRSIGNER_SEAM",
                expected: hex_upper(&m.mrsigner),
                found: hex_upper(&td.mr_signer_seam),
            });
        }
        let fits = td
            .seam_attributes
            .iter()
            .zip(&m.attributes)
            .zip(&m.attributes_mask)
            .all(|((have, want), mask)| have & mask == want & mask && have & !mask == 0);
        if !fits {
            return Err(TdxVerifyError::TdxModuleMismatch {
                field: "SEAM_ATTRIBUTES",
                expected: hex_upper(&m.attributes),
                found: hex_upper(&td.seam_attributes),
            });
        }
        Ok(())
    }
}

/// The final status of a TD: platform level merged with the QE's; for a TD 1.5,
/// its current TCB (`TEE_TCB_SVN2`) must also match a level, and an out-of-date
/// launch on a now up-to-date module becomes a relaunch advice.
pub(crate) struct TdStatus {
    /// Converged status.
    pub(crate) status: StatusWithAdvisories,
    /// The platform level's status alone (with the module's).
    pub(crate) platform: TcbStatus,
}

pub(crate) fn td_status(
    info: &TcbInfo,
    cpusvn: &[u8; 16],
    pce_svn: u16,
    td: &TdReport,
    qe: &StatusWithAdvisories,
) -> Result<TdStatus, TdxVerifyError> {
    let platform = info.evaluate(cpusvn, pce_svn, &td.tee_tcb_svn)?;
    info.check_module(td)?;
    let current = match &td.td15 {
        Some(t) => Some(info.evaluate(cpusvn, pce_svn, &t.tee_tcb_svn2)?),
        None => None,
    };
    let platform_status = platform.status;
    let mut merged = platform;
    merged.merge(qe.status, &qe.advisory_ids, qe.date);
    let current = current.map(|c| c.status.converge(qe.status));
    if merged.status == TcbStatus::Revoked || current == Some(TcbStatus::Revoked) {
        return Err(TdxVerifyError::TcbRevoked);
    }
    if let Some(c) = current {
        merged.status = merged.status.check_for_relaunch(c);
    }
    Ok(TdStatus {
        status: merged,
        platform: platform_status,
    })
}
