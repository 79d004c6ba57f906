//! Appraisal policy: what verified evidence must show to be accepted.
//!
//! One TOML file format for every evidence kind (see `docs/policy.md`): a
//! top-level `allow_simulated` and one table per kind (`[snp]`, ...). Every
//! field has a strict default: an empty file refuses debug guests and simulated
//! evidence and accepts any genuine, non-debug evidence.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use crate::evidence::snp::SigningKey;
use crate::verdict::{Verdict, Verified, Violation};
use crate::verify::snp::SnpEvidence;

mod gpu;
mod receipt;
mod tdx;
pub use gpu::GpuPolicy;
pub(crate) use gpu::mode_name;
pub use receipt::{evaluate_bundle, evaluate_receipt};
pub use tdx::TdxPolicy;

/// Bytes written in policy files as lower- or upper-case hex (optional `0x` prefix).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.strip_prefix("0x").unwrap_or(&s);
        hex::decode(s)
            .map(HexBytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid hex: {e}")))
    }
}

impl HexBytes {
    fn matches(&self, value: &[u8]) -> bool {
        self.0.as_slice() == value
    }
}

/// Why a policy is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is not valid TOML for this schema.
    #[error("policy file is invalid: {0}")]
    Syntax(String),
    /// A value has the wrong length for its field.
    #[error("policy {field}: expected {expected} bytes, got {actual}")]
    Length {
        /// The field.
        field: &'static str,
        /// Its required length.
        expected: usize,
        /// The given length.
        actual: usize,
    },
    /// A field has a value outside its domain.
    #[error("policy {field}: {reason}")]
    Value {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The whole appraisal policy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Accept evidence from the simulator (never in production).
    pub allow_simulated: bool,
    /// SEV-SNP rules.
    pub snp: SnpPolicy,
    /// Intel TDX rules.
    pub tdx: TdxPolicy,
    /// NVIDIA GPU rules.
    pub gpu: GpuPolicy,
}

impl Policy {
    /// Parses a TOML policy and checks its values.
    #[cfg(feature = "std")]
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let p: Self = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(alloc::string::ToString::to_string(&e)))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks lengths and domains of every value.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.tdx.validate()?;
        self.gpu.validate()?;
        self.snp.validate()
    }
}

/// Minimum TCB component versions.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MinTcb {
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
    /// FMC SPL (Turin).
    pub fmc: u8,
}

/// SEV-SNP appraisal rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnpPolicy {
    /// Accept guests whose policy allows debugging (default false).
    pub allow_debug: bool,
    /// Accept guests that may be associated with a migration agent (default false).
    pub allow_migration_agent: bool,
    /// Accept guests that allow SMT (default true).
    pub allow_smt: bool,
    /// Accepted launch measurements (48 bytes each); empty accepts any.
    pub measurements: Vec<HexBytes>,
    /// Required REPORT_DATA (64 bytes).
    pub report_data: Option<HexBytes>,
    /// Required HOST_DATA (32 bytes).
    pub host_data: Option<HexBytes>,
    /// Minimum reported TCB.
    pub min_tcb: Option<MinTcb>,
    /// Accepted VMPLs; empty accepts any.
    pub vmpls: Vec<u32>,
    /// Accepted ID key digests (48 bytes); empty accepts any.
    pub id_key_digests: Vec<HexBytes>,
    /// Accepted author key digests (48 bytes); empty accepts any.
    pub author_key_digests: Vec<HexBytes>,
    /// Accepted signing keys ("VCEK", "VLEK"); empty accepts both.
    pub signing_keys: Vec<String>,
    /// Minimum guest SVN.
    pub min_guest_svn: u32,
    /// Accepted products ("Milan", "Genoa", "Turin"); empty accepts any.
    pub products: Vec<String>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            measurements: Vec::new(),
            report_data: None,
            host_data: None,
            min_tcb: None,
            vmpls: Vec::new(),
            id_key_digests: Vec::new(),
            author_key_digests: Vec::new(),
            signing_keys: Vec::new(),
            min_guest_svn: 0,
            products: Vec::new(),
        }
    }
}

fn check_len(field: &'static str, v: &HexBytes, expected: usize) -> Result<(), PolicyError> {
    if v.0.len() == expected {
        Ok(())
    } else {
        Err(PolicyError::Length {
            field,
            expected,
            actual: v.0.len(),
        })
    }
}

fn any_of(list: &[HexBytes], value: &[u8]) -> bool {
    list.is_empty() || list.iter().any(|h| h.matches(value))
}

impl SnpPolicy {
    /// Checks lengths and names.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for m in &self.measurements {
            check_len("snp.measurements", m, 48)?;
        }
        if let Some(r) = &self.report_data {
            check_len("snp.report_data", r, 64)?;
        }
        if let Some(h) = &self.host_data {
            check_len("snp.host_data", h, 32)?;
        }
        for d in &self.id_key_digests {
            check_len("snp.id_key_digests", d, 48)?;
        }
        for d in &self.author_key_digests {
            check_len("snp.author_key_digests", d, 48)?;
        }
        for k in &self.signing_keys {
            if k != "VCEK" && k != "VLEK" {
                return Err(PolicyError::Value {
                    field: "snp.signing_keys",
                    reason: format!("unknown signing key {k:?} (VCEK or VLEK)"),
                });
            }
        }
        for p in &self.products {
            if crate::evidence::snp::Product::from_name(p).is_none() {
                return Err(PolicyError::Value {
                    field: "snp.products",
                    reason: format!("unknown product {p:?} (Milan, Genoa or Turin)"),
                });
            }
        }
        Ok(())
    }

    /// Appraises a verified report; lists every violation.
    pub fn evaluate(&self, ev: &Verified<SnpEvidence>) -> Verdict {
        let r = &ev.report;
        let mut v = Vec::new();
        let mut fail = |rule: &'static str, detail: String| v.push(Violation { rule, detail });
        if r.policy.debug() && !self.allow_debug {
            fail("snp.allow_debug", "guest policy allows debugging".into());
        }
        if r.policy.migrate_ma() && !self.allow_migration_agent {
            fail(
                "snp.allow_migration_agent",
                "guest policy allows a migration agent".into(),
            );
        }
        if r.policy.smt() && !self.allow_smt {
            fail("snp.allow_smt", "guest policy allows SMT".into());
        }
        if !any_of(&self.measurements, &r.measurement) {
            fail(
                "snp.measurements",
                format!("measurement {} is not accepted", hex::encode(r.measurement)),
            );
        }
        if let Some(want) = &self.report_data
            && !want.matches(&r.report_data)
        {
            fail(
                "snp.report_data",
                format!("report_data is {}", hex::encode(r.report_data)),
            );
        }
        if let Some(want) = &self.host_data
            && !want.matches(&r.host_data)
        {
            fail(
                "snp.host_data",
                format!("host_data is {}", hex::encode(r.host_data)),
            );
        }
        if let Some(min) = &self.min_tcb {
            let t = &ev.reported_tcb;
            let fmc_applies = ev.product.has_fmc();
            for (name, have, want) in [
                ("bootloader", t.bootloader, min.bootloader),
                ("tee", t.tee, min.tee),
                ("snp", t.snp, min.snp),
                ("microcode", t.microcode, min.microcode),
                ("fmc", t.fmc, if fmc_applies { min.fmc } else { 0 }),
            ] {
                if have < want {
                    fail(
                        "snp.min_tcb",
                        format!("reported TCB {name} is {have}, minimum is {want}"),
                    );
                }
            }
        }
        if !self.vmpls.is_empty() && !self.vmpls.contains(&r.vmpl) {
            fail("snp.vmpls", format!("VMPL {} is not accepted", r.vmpl));
        }
        if !any_of(&self.id_key_digests, &r.id_key_digest) {
            fail(
                "snp.id_key_digests",
                format!(
                    "ID key digest {} is not accepted",
                    hex::encode(r.id_key_digest)
                ),
            );
        }
        if !any_of(&self.author_key_digests, &r.author_key_digest) {
            fail(
                "snp.author_key_digests",
                format!(
                    "author key digest {} is not accepted",
                    hex::encode(r.author_key_digest)
                ),
            );
        }
        let key = match r.signing_key {
            SigningKey::Vcek => "VCEK",
            SigningKey::Vlek => "VLEK",
        };
        if !self.signing_keys.is_empty() && !self.signing_keys.iter().any(|k| k == key) {
            fail(
                "snp.signing_keys",
                format!("{key}-signed reports are not accepted"),
            );
        }
        if r.guest_svn < self.min_guest_svn {
            fail(
                "snp.min_guest_svn",
                format!("guest SVN {} is below {}", r.guest_svn, self.min_guest_svn),
            );
        }
        if !self.products.is_empty()
            && !self
                .products
                .iter()
                .any(|p| p.eq_ignore_ascii_case(ev.product.name()))
        {
            fail(
                "snp.products",
                format!("product {} is not accepted", ev.product),
            );
        }
        Verdict::from_violations(v)
    }
}

#[cfg(test)]
mod tests;
