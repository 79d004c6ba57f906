//! Readiness: is a GPU fit to be offered? A GPU that left the CC-ready state or fails health is
//! reported, and [`ReadinessTracker`] tells the agent when that changes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::GpuError;
use crate::model::{CcEnvironment, CcState, GpuInventory, HealthSnapshot, ThrottleReasons};
use crate::probe::GpuProbe;

/// What counts as unfit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Demand CC on, in production, without developer tools, and the GPUs-ready state set
    /// (tier-3 offers). Off for plain GPU offers.
    pub require_cc_ready: bool,
    /// Accept CC developer-tools mode (never for tier 3: it is not confidential).
    pub allow_dev_tools_mode: bool,
    /// Temperature at or above which a warning is raised; `None` uses the GPU's own slowdown
    /// threshold.
    pub max_temperature_c: Option<u32>,
    /// Uncorrected ECC errors since the driver loaded that are tolerated.
    pub max_uncorrected_ecc_volatile: u64,
    /// Throttle reasons that raise a warning.
    pub warn_throttle: ThrottleReasons,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            require_cc_ready: true,
            allow_dev_tools_mode: false,
            max_temperature_c: None,
            max_uncorrected_ecc_volatile: 0,
            warn_throttle: ThrottleReasons::HW_SLOWDOWN
                .union(ThrottleReasons::HW_THERMAL_SLOWDOWN)
                .union(ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN)
                .union(ThrottleReasons::SW_THERMAL_SLOWDOWN),
        }
    }
}

impl HealthPolicy {
    /// For GPUs offered without confidential computing.
    pub fn without_cc() -> Self {
        Self {
            require_cc_ready: false,
            ..Self::default()
        }
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth an alert; the GPU stays offered.
    Warning,
    /// The GPU must not be offered.
    Fatal,
}

/// One reason a GPU is not (fully) fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The CC state could not be read.
    CcStateUnavailable {
        /// Why.
        detail: String,
    },
    /// CC mode is off.
    CcOff,
    /// CC runs outside production.
    CcNotProduction {
        /// The environment reported.
        environment: CcEnvironment,
    },
    /// CC developer-tools mode is on.
    CcDevToolsMode,
    /// The GPUs-ready state is not set: the GPUs do not accept work.
    CcNotReady,
    /// The GPU is lost.
    GpuLost,
    /// Health readings failed.
    ProbeFailed {
        /// Why.
        detail: String,
    },
    /// Uncorrected ECC errors since the driver loaded.
    UncorrectedEcc {
        /// How many.
        count: u64,
        /// How many the policy tolerates.
        limit: u64,
    },
    /// Row remapping failed: the GPU needs service.
    RowRemapFailure,
    /// A row remapping or page retirement waits for a GPU reset.
    ResetPending,
    /// Temperature at or above the limit.
    Overheated {
        /// Reading, °C.
        celsius: u32,
        /// Limit, °C.
        limit: u32,
    },
    /// Clocks are held down.
    Throttled {
        /// The reasons.
        reasons: Vec<String>,
    },
}

impl Problem {
    /// How bad it is.
    pub fn severity(&self) -> Severity {
        match self {
            Self::Overheated { .. } | Self::Throttled { .. } | Self::ResetPending => {
                Severity::Warning
            }
            _ => Severity::Fatal,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CcStateUnavailable { detail } => write!(f, "CC state unavailable: {detail}"),
            Self::CcOff => f.write_str("CC mode is off"),
            Self::CcNotProduction { environment } => {
                write!(f, "CC environment is {environment:?}, not production")
            }
            Self::CcDevToolsMode => f.write_str("CC developer-tools mode is on"),
            Self::CcNotReady => f.write_str("GPUs-ready state is not set"),
            Self::GpuLost => f.write_str("GPU lost"),
            Self::ProbeFailed { detail } => write!(f, "health readings failed: {detail}"),
            Self::UncorrectedEcc { count, limit } => {
                write!(f, "{count} uncorrected ECC errors (limit {limit})")
            }
            Self::RowRemapFailure => f.write_str("row remapping failed"),
            Self::ResetPending => f.write_str("memory repair pending a GPU reset"),
            Self::Overheated { celsius, limit } => write!(f, "{celsius} °C (limit {limit} °C)"),
            Self::Throttled { reasons } => write!(f, "throttled: {}", reasons.join(", ")),
        }
    }
}

/// A GPU's fitness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuStatus {
    /// NVML index.
    pub index: u32,
    /// UUID.
    pub uuid: String,
    /// Everything wrong, empty when healthy.
    pub problems: Vec<Problem>,
}

impl GpuStatus {
    /// No fatal problem: the GPU may be offered.
    pub fn is_ready(&self) -> bool {
        self.problems.iter().all(|p| p.severity() < Severity::Fatal)
    }
}

/// Evaluates one GPU against `policy`.
pub fn evaluate(
    policy: &HealthPolicy,
    gpu: &GpuInventory,
    cc: Result<&CcState, &GpuError>,
    health: Result<&HealthSnapshot, &GpuError>,
) -> GpuStatus {
    let mut problems = Vec::new();
    if policy.require_cc_ready {
        match cc {
            Ok(cc) => {
                if !cc.cc_enabled {
                    problems.push(Problem::CcOff);
                }
                if cc.environment != CcEnvironment::Production {
                    problems.push(Problem::CcNotProduction {
                        environment: cc.environment,
                    });
                }
                if cc.dev_tools_mode && !policy.allow_dev_tools_mode {
                    problems.push(Problem::CcDevToolsMode);
                }
                if !cc.gpus_ready {
                    problems.push(Problem::CcNotReady);
                }
            }
            Err(e) => problems.push(Problem::CcStateUnavailable {
                detail: e.to_string(),
            }),
        }
    }
    match health {
        Ok(h) => health_problems(policy, h, &mut problems),
        Err(GpuError::GpuLost { .. }) => problems.push(Problem::GpuLost),
        Err(e) => problems.push(Problem::ProbeFailed {
            detail: e.to_string(),
        }),
    }
    GpuStatus {
        index: gpu.index,
        uuid: gpu.uuid.clone(),
        problems,
    }
}

fn health_problems(policy: &HealthPolicy, h: &HealthSnapshot, problems: &mut Vec<Problem>) {
    if let Some(count) = h.ecc_uncorrected_volatile
        && count > policy.max_uncorrected_ecc_volatile
    {
        problems.push(Problem::UncorrectedEcc {
            count,
            limit: policy.max_uncorrected_ecc_volatile,
        });
    }
    if let Some(rows) = h.remapped_rows {
        if rows.failure {
            problems.push(Problem::RowRemapFailure);
        }
        if rows.pending {
            problems.push(Problem::ResetPending);
        }
    }
    if h.retired_pages_pending == Some(true) && !problems.contains(&Problem::ResetPending) {
        problems.push(Problem::ResetPending);
    }
    let limit = policy.max_temperature_c.or(h.slowdown_temperature_c);
    if let (Some(celsius), Some(limit)) = (h.temperature_c, limit)
        && celsius >= limit
    {
        problems.push(Problem::Overheated { celsius, limit });
    }
    if let Some(reasons) = h.throttle_reasons {
        let bad = reasons.intersection(policy.warn_throttle);
        if !bad.is_empty() {
            problems.push(Problem::Throttled {
                reasons: bad.names(),
            });
        }
    }
}

/// Evaluates every GPU the probe sees. Fails only when the GPUs cannot be counted.
///
/// A GPU whose identity cannot be read (lost, for instance) is reported under the UUID
/// `unknown-gpu-<index>`; [`ReadinessTracker::poll`] remembers UUIDs across rounds instead.
pub fn check(probe: &dyn GpuProbe, policy: &HealthPolicy) -> Result<Vec<GpuStatus>, GpuError> {
    check_known(probe, policy, &BTreeMap::new()).map(|(statuses, _)| statuses)
}

/// `check`, falling back on `known` for GPUs whose identity cannot be read; also returns the
/// inventories read.
fn check_known(
    probe: &dyn GpuProbe,
    policy: &HealthPolicy,
    known: &BTreeMap<u32, GpuInventory>,
) -> Result<(Vec<GpuStatus>, BTreeMap<u32, GpuInventory>), GpuError> {
    let count = probe.gpu_count()?;
    let cc = if policy.require_cc_ready {
        probe.cc_state()
    } else {
        // Not consulted.
        Err(GpuError::NotSupported {
            call: "cc_state (not required)",
        })
    };
    let mut statuses = Vec::new();
    let mut seen = BTreeMap::new();
    for index in 0..count {
        let status = match probe.gpu_inventory(index) {
            Ok(gpu) => {
                let health = probe.health(index);
                let status = evaluate(policy, &gpu, cc.as_ref(), health.as_ref());
                seen.insert(index, gpu);
                status
            }
            Err(e) => {
                let problem = match e {
                    GpuError::GpuLost { .. } => Problem::GpuLost,
                    other => Problem::ProbeFailed {
                        detail: other.to_string(),
                    },
                };
                let uuid = known
                    .get(&index)
                    .map_or_else(|| format!("unknown-gpu-{index}"), |g| g.uuid.clone());
                if let Some(gpu) = known.get(&index) {
                    seen.insert(index, gpu.clone());
                }
                GpuStatus {
                    index,
                    uuid,
                    problems: vec![problem],
                }
            }
        };
        statuses.push(status);
    }
    Ok((statuses, seen))
}

/// A change in a GPU's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ReadinessChange {
    /// Seen for the first time, or fit again.
    Ready {
        /// UUID.
        uuid: String,
    },
    /// Seen for the first time unfit, or no longer fit: stop offering it.
    NotReady {
        /// UUID.
        uuid: String,
        /// Its fatal problems.
        problems: Vec<Problem>,
    },
    /// No longer listed by the driver: stop offering it.
    Gone {
        /// UUID.
        uuid: String,
    },
}

/// Remembers each GPU's last readiness and reports changes.
#[derive(Debug, Default, Clone)]
pub struct ReadinessTracker {
    last: BTreeMap<String, bool>,
    known: BTreeMap<u32, GpuInventory>,
}

impl ReadinessTracker {
    /// An empty tracker: the first update reports every GPU.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the current statuses and returns what changed since the last call.
    pub fn update(&mut self, statuses: &[GpuStatus]) -> Vec<ReadinessChange> {
        let mut changes = Vec::new();
        let mut now = BTreeMap::new();
        for status in statuses {
            let ready = status.is_ready();
            if self.last.get(&status.uuid) != Some(&ready) {
                changes.push(if ready {
                    ReadinessChange::Ready {
                        uuid: status.uuid.clone(),
                    }
                } else {
                    ReadinessChange::NotReady {
                        uuid: status.uuid.clone(),
                        problems: status
                            .problems
                            .iter()
                            .filter(|p| p.severity() == Severity::Fatal)
                            .cloned()
                            .collect(),
                    }
                });
            }
            now.insert(status.uuid.clone(), ready);
        }
        for uuid in self.last.keys() {
            if !now.contains_key(uuid) {
                changes.push(ReadinessChange::Gone { uuid: uuid.clone() });
            }
        }
        self.last = now;
        changes
    }

    /// Checks every GPU (remembering identities, so a GPU that becomes unreadable keeps its
    /// UUID) and returns the statuses and what changed.
    pub fn poll(
        &mut self,
        probe: &dyn GpuProbe,
        policy: &HealthPolicy,
    ) -> Result<(Vec<GpuStatus>, Vec<ReadinessChange>), GpuError> {
        let (statuses, seen) = check_known(probe, policy, &self.known)?;
        self.known = seen;
        let changes = self.update(&statuses);
        Ok((statuses, changes))
    }

    /// Whether the GPU was ready at the last update (`None`: not seen).
    pub fn is_ready(&self, uuid: &str) -> Option<bool> {
        self.last.get(uuid).copied()
    }
}
