//! Appraisal policy: what verified evidence must show to be accepted.
//!
//! One TOML file format for every evidence kind (see `docs/policy.md`): a
//! top-level `allow_simulated`, `tees` and `key_lifetime_secs`, and one table
//! per kind (`[snp]`, ...). Every field has a strict default: an empty file
//! refuses debug guests and simulated evidence and accepts any genuine,
//! non-debug evidence.
//!
//! A policy is also a canonical document ([`Policy::canonical_bytes`], decoded
//! by [`Policy::from_canonical_bytes`]) named by its id ([`Policy::id`]): the
//! same rules, however spelled in TOML, have the same bytes and the same id.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use crate::evidence::snp::SigningKey;
use crate::verdict::{Verdict, Verified, Violation};
use crate::verify::snp::SnpEvidence;
use crate::verify::tdx::TdxEvidence;

mod canonical;
pub mod genesis;
mod gpu;
mod receipt;
mod tdx;
mod vtpm;
pub use canonical::{FORMAT_VERSION, MAX_BYTES, MAX_LIST, MAX_STRING, POLICY_ID_DOMAIN};
pub use gpu::GpuPolicy;
pub(crate) use gpu::mode_name;
pub use receipt::{evaluate_bundle, evaluate_receipt};
pub use tdx::{TdxEventRule, TdxPolicy};
pub use vtpm::{MAX_PCR_INDEX, PcrEventRule, PcrRule, VtpmPolicy};

/// Bytes written in policy files as lower- or upper-case hex (optional `0x` prefix).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
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
    /// A list has more entries than the canonical form allows ([`MAX_LIST`]).
    #[error("policy {field}: {actual} entries, at most {max}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The most entries allowed.
        max: usize,
        /// The given number.
        actual: usize,
    },
    /// A string or byte value is longer than the canonical form allows
    /// ([`MAX_STRING`], [`MAX_BYTES`]).
    #[error("policy {field}: {actual} bytes, at most {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The most bytes allowed.
        max: usize,
        /// The given length.
        actual: usize,
    },
    /// Canonical bytes start with a format version this build does not know.
    #[error("policy bytes have format version {found}, expected {FORMAT_VERSION}")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// Canonical bytes end before the field is complete.
    #[error("policy bytes end inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Canonical bytes hold a value no policy encodes (a boolean or option tag
    /// other than 0 or 1, an unknown TEE index, a string that is not UTF-8).
    #[error("policy bytes, {field}: {reason}")]
    Malformed {
        /// The field being read.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Canonical bytes continue after the last field.
    #[error("policy bytes have {count} trailing bytes")]
    TrailingBytes {
        /// How many bytes follow the last field.
        count: usize,
    },
    /// The bytes decode to a valid policy but are not its canonical bytes (an
    /// unsorted or duplicated list, a name or number in another spelling).
    #[error("policy bytes are not canonical: {field} differs from the canonical encoding")]
    NotCanonical {
        /// The first field (in encoding order) whose bytes differ.
        field: &'static str,
    },
}

/// A TEE kind a policy may accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyTee {
    /// AMD SEV-SNP (`"sev-snp"`).
    SevSnp,
    /// Intel TDX (`"tdx"`).
    Tdx,
    /// The agent's simulator (`"simulated"`); needs `allow_simulated`.
    Simulated,
}

impl PolicyTee {
    /// Every kind, in canonical order (their index is their canonical byte).
    pub const ALL: [PolicyTee; 3] = [Self::SevSnp, Self::Tdx, Self::Simulated];

    /// The name in policy files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
            Self::Simulated => "simulated",
        }
    }

    /// Parses a name (exact spelling).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The canonical byte (0, 1, 2).
    pub(crate) const fn index(self) -> u8 {
        match self {
            Self::SevSnp => 0,
            Self::Tdx => 1,
            Self::Simulated => 2,
        }
    }
}

impl core::fmt::Display for PolicyTee {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for PolicyTee {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown TEE {s:?} (sev-snp, tdx or simulated)"))
        })
    }
}

/// The whole appraisal policy.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Accept evidence from the simulator (never in production).
    pub allow_simulated: bool,
    /// Accepted TEE kinds; empty accepts SEV-SNP and TDX, and the simulator
    /// when `allow_simulated` is set. Listing `simulated` needs `allow_simulated`.
    pub tees: Vec<PolicyTee>,
    /// How long, in seconds, a key attested under this policy stays valid after
    /// its evidence was produced (applied by the chain); `None` sets no limit.
    pub key_lifetime_secs: Option<u64>,
    /// SEV-SNP rules.
    pub snp: SnpPolicy,
    /// Intel TDX rules.
    pub tdx: TdxPolicy,
    /// NVIDIA GPU rules.
    pub gpu: GpuPolicy,
    /// Rules on the agent's simulator (development chains).
    pub simulated: SimulatedPolicy,
    /// Rules on a vTPM quote's PCRs (Azure confidential VMs).
    pub vtpm: VtpmPolicy,
}

/// Rules on evidence from the agent's simulator: the `[simulated]` table.
///
/// The simulator's "measurement" is the SHA-384 of the running agent executable (see
/// `sigil-verify measure simulated`), so a development policy can pin the exact agent build, as
/// a hardware policy pins a launch measurement. It proves nothing about where the agent runs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatedPolicy {
    /// Accepted measurements (48 bytes each); empty accepts any.
    pub measurements: Vec<HexBytes>,
}

impl SimulatedPolicy {
    /// Checks lengths.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for m in &self.measurements {
            check_len("simulated.measurements", m, 48)?;
        }
        Ok(())
    }

    /// Appraises a simulated report's measurement; lists every violation.
    pub fn evaluate(&self, measurement: &[u8; 48]) -> Verdict {
        if any_of(&self.measurements, measurement) {
            Verdict::Accept
        } else {
            Verdict::from_violations(alloc::vec![Violation {
                rule: "simulated.measurements",
                detail: format!(
                    "simulated measurement {} is not accepted",
                    hex::encode(measurement)
                ),
            }])
        }
    }
}

impl Policy {
    /// Parses a TOML policy and checks its values. The result is in canonical
    /// form: lists sorted and deduplicated, names in their canonical spelling.
    #[cfg(feature = "std")]
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let mut p: Self = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(alloc::string::ToString::to_string(&e)))?;
        p.validate()?;
        p.canonicalize();
        Ok(p)
    }

    /// Checks lengths and domains of every value, and the caps of the
    /// canonical form ([`MAX_LIST`], [`MAX_STRING`]).
    pub fn validate(&self) -> Result<(), PolicyError> {
        canonical::check_caps(self)?;
        if self.tees.contains(&PolicyTee::Simulated) && !self.allow_simulated {
            return Err(PolicyError::Value {
                field: "tees",
                reason: "\"simulated\" is listed but allow_simulated is false".into(),
            });
        }
        if self.key_lifetime_secs == Some(0) {
            return Err(PolicyError::Value {
                field: "key_lifetime_secs",
                reason: "must be greater than 0 when set".into(),
            });
        }
        self.tdx.validate()?;
        self.gpu.validate()?;
        self.simulated.validate()?;
        self.vtpm.validate()?;
        self.snp.validate()
    }

    /// Sorts and deduplicates every list and spells every name canonically
    /// (values that do not validate are left as they are).
    fn canonicalize(&mut self) {
        sort_dedup(&mut self.tees);
        self.snp.canonicalize();
        self.tdx.canonicalize();
        self.gpu.canonicalize();
        sort_dedup(&mut self.simulated.measurements);
        self.vtpm.canonicalize();
    }

    /// The canonical bytes of the policy (`docs/policy.md`, *Canonical
    /// encoding*): format version [`FORMAT_VERSION`], then every field in a
    /// fixed order, SCALE-encoded; every list sorted and deduplicated, every
    /// name in its one canonical spelling, hex values as raw bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut p = self.clone();
        p.canonicalize();
        canonical::encode(&p)
    }

    /// Decodes canonical bytes. Refuses an unknown format version, a truncated
    /// or malformed field, a list or value over the caps ([`MAX_LIST`],
    /// [`MAX_STRING`], [`MAX_BYTES`]), trailing bytes, values that fail
    /// [`Policy::validate`], and bytes that are not exactly the
    /// [`Policy::canonical_bytes`] of the policy they decode to.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let p = canonical::decode(bytes)?;
        p.validate()?;
        canonical::check_canonical(&p, bytes)?;
        Ok(p)
    }

    /// The policy id: SHA-256([`POLICY_ID_DOMAIN`] || canonical bytes).
    pub fn id(&self) -> [u8; 32] {
        use crate::crypto::Crypto;
        let mut msg = Vec::from(POLICY_ID_DOMAIN);
        msg.extend_from_slice(&self.canonical_bytes());
        crate::crypto::RustCrypto.sha256(&msg)
    }

    /// The TEE kinds the policy accepts: `tees`, or when it is empty SEV-SNP
    /// and TDX, plus the simulator when `allow_simulated` is set. Sorted.
    pub fn accepted_tees(&self) -> Vec<PolicyTee> {
        let mut t = if self.tees.is_empty() {
            let mut t = alloc::vec![PolicyTee::SevSnp, PolicyTee::Tdx];
            if self.allow_simulated {
                t.push(PolicyTee::Simulated);
            }
            t
        } else {
            self.tees.clone()
        };
        sort_dedup(&mut t);
        t
    }

    /// Whether every accepted hardware TEE kind has its launch measurement
    /// pinned: SEV-SNP needs `snp.measurements`, TDX `tdx.mrtds`. `Err` names
    /// the first missing rule. A policy accepting only the simulator is `Ok`.
    pub fn check_pinned(&self) -> Result<(), &'static str> {
        let tees = self.accepted_tees();
        if tees.contains(&PolicyTee::SevSnp) && self.snp.measurements.is_empty() {
            return Err("snp.measurements");
        }
        if tees.contains(&PolicyTee::Tdx) && self.tdx.mrtds.is_empty() {
            return Err("tdx.mrtds");
        }
        Ok(())
    }

    /// Every rule as TOML, in canonical form; [`Policy::from_toml`] reads it
    /// back to the same canonical bytes.
    #[cfg(feature = "std")]
    pub fn to_toml(&self) -> String {
        let mut p = self.clone();
        p.canonicalize();
        canonical::to_toml(&p)
    }

    /// The rules that apply to evidence as a whole: its TEE kind is accepted
    /// (`tees`) and it carries at least `gpu.min_count` verified GPU reports.
    /// Simulated evidence refused by `allow_simulated` is not reported twice.
    pub(crate) fn evaluate_evidence(&self, tee: PolicyTee, gpus: usize, v: &mut Vec<Violation>) {
        let refused_as_simulated = tee == PolicyTee::Simulated && !self.allow_simulated;
        if !refused_as_simulated && !self.accepted_tees().contains(&tee) {
            v.push(Violation {
                rule: "tees",
                detail: format!("{tee} evidence is not accepted"),
            });
        }
        v.extend(self.evaluate_gpu_count(gpus));
    }

    /// `gpu.min_count` for evidence carrying `gpus` verified GPU reports.
    pub(crate) fn evaluate_gpu_count(&self, gpus: usize) -> Option<Violation> {
        let min = usize::try_from(self.gpu.min_count).unwrap_or(usize::MAX);
        (gpus < min).then(|| Violation {
            rule: "gpu.min_count",
            detail: format!(
                "evidence carries {gpus} verified GPU reports, at least {min} required"
            ),
        })
    }

    /// Appraises a verified SEV-SNP report on its own (no GPU reports):
    /// `tees`, `gpu.min_count` and the `[snp]` table; lists every violation.
    pub fn evaluate_snp(&self, ev: &Verified<SnpEvidence>) -> Verdict {
        let mut v = Vec::new();
        self.evaluate_evidence(PolicyTee::SevSnp, 0, &mut v);
        if let Verdict::Reject(vs) = self.snp.evaluate(ev) {
            v.extend(vs);
        }
        Verdict::from_violations(v)
    }

    /// Appraises a verified TDX quote on its own (no GPU reports): `tees`,
    /// `gpu.min_count` and the `[tdx]` table; lists every violation.
    pub fn evaluate_tdx(&self, ev: &Verified<TdxEvidence>) -> Verdict {
        self.evaluate_tdx_measured(ev, None)
    }

    /// [`Self::evaluate_tdx`] with the quote's verified measured-boot evidence, if any
    /// (`None`: every `[tdx]` event, agent and configuration rule is violated).
    pub fn evaluate_tdx_measured(
        &self,
        ev: &Verified<TdxEvidence>,
        measured: Option<&Verified<crate::verify::measured::MeasuredBootEvidence>>,
    ) -> Verdict {
        let mut v = Vec::new();
        self.evaluate_evidence(PolicyTee::Tdx, 0, &mut v);
        if let Verdict::Reject(vs) = self.tdx.evaluate(ev) {
            v.extend(vs);
        }
        self.tdx.evaluate_measured(measured, &mut v);
        Verdict::from_violations(v)
    }
}

/// Sorts and deduplicates a list.
fn sort_dedup<T: Ord>(list: &mut Vec<T>) {
    list.sort_unstable();
    list.dedup();
}

/// Minimum TCB component versions.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
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
    /// Accepted CHIP_IDs (64 bytes); empty accepts any. VLEK-signed reports
    /// may carry a zeroed CHIP_ID (guest policy MASK_CHIP_ID), which a
    /// non-empty list refuses unless it lists the zeros.
    pub allow_chip_ids: Vec<HexBytes>,
    /// Refused CHIP_IDs (64 bytes).
    pub deny_chip_ids: Vec<HexBytes>,
    /// Require an AMD CRL for the chip's product line (checked by the verifier:
    /// ARK signature, `thisUpdate <= now < nextUpdate`, neither certificate
    /// listed) whose `thisUpdate` is at most this many seconds before the
    /// verification time; `None` requires no CRL.
    pub crl_max_age_secs: Option<u64>,
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
            allow_chip_ids: Vec::new(),
            deny_chip_ids: Vec::new(),
            crl_max_age_secs: None,
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

fn listed(list: &[HexBytes], value: &[u8]) -> bool {
    list.iter().any(|h| h.matches(value))
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
        for c in &self.allow_chip_ids {
            check_len("snp.allow_chip_ids", c, 64)?;
        }
        for c in &self.deny_chip_ids {
            check_len("snp.deny_chip_ids", c, 64)?;
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

    /// Sorts and deduplicates every list; products as AMD spells them.
    fn canonicalize(&mut self) {
        sort_dedup(&mut self.measurements);
        sort_dedup(&mut self.vmpls);
        sort_dedup(&mut self.id_key_digests);
        sort_dedup(&mut self.author_key_digests);
        sort_dedup(&mut self.signing_keys);
        for p in &mut self.products {
            if let Some(c) = crate::evidence::snp::Product::from_name(p) {
                *p = c.name().into();
            }
        }
        sort_dedup(&mut self.products);
        sort_dedup(&mut self.allow_chip_ids);
        sort_dedup(&mut self.deny_chip_ids);
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
                .any(|p| crate::evidence::snp::Product::from_name(p) == Some(ev.product))
        {
            fail(
                "snp.products",
                format!("product {} is not accepted", ev.product),
            );
        }
        if !any_of(&self.allow_chip_ids, &r.chip_id) {
            fail(
                "snp.allow_chip_ids",
                format!("CHIP_ID {} is not accepted", hex::encode(r.chip_id)),
            );
        }
        if listed(&self.deny_chip_ids, &r.chip_id) {
            fail(
                "snp.deny_chip_ids",
                format!("CHIP_ID {} is refused", hex::encode(r.chip_id)),
            );
        }
        if let Some(max) = self.crl_max_age_secs {
            match &ev.crl {
                None => fail(
                    "snp.crl_max_age_secs",
                    format!(
                        "the evidence carries no AMD CRL for {} {} certificates",
                        ev.product,
                        r.signing_key.name()
                    ),
                ),
                Some(w) => {
                    let age = ev
                        .verified_at
                        .as_secs()
                        .saturating_sub(w.not_before.as_secs());
                    if age > max {
                        fail(
                            "snp.crl_max_age_secs",
                            format!(
                                "the AMD CRL was issued {age} s before (thisUpdate {}), at most {max} s",
                                w.not_before
                            ),
                        );
                    }
                }
            }
        }
        Verdict::from_violations(v)
    }
}

#[cfg(test)]
mod tests;
