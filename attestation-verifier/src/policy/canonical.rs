//! The canonical policy document: SCALE bytes in one fixed field order, the
//! input of the policy id (`docs/policy.md`, *Canonical encoding*).
//!
//! Encoding takes a policy already in canonical form (lists sorted and
//! deduplicated, names in their canonical spelling). Decoding is total: it
//! reads every length before allocating, refuses lengths over the caps, and
//! never panics; [`check_canonical`] then re-encodes the decoded policy and
//! compares, so exactly one byte string names each policy.

use alloc::string::String;
use alloc::vec::Vec;
use parity_scale_codec::{Compact, Decode, Encode};

use super::{
    HexBytes, MinTcb, PcrEventRule, PcrRule, Policy, PolicyError, PolicyTee, TdxEventRule,
};

/// The domain separator hashed before the canonical bytes to give the id.
pub const POLICY_ID_DOMAIN: &[u8] = b"sigil.policy.v2\0";

/// The format version: the first byte of the canonical bytes.
pub const FORMAT_VERSION: u8 = 1;

/// The most entries of any list.
pub const MAX_LIST: usize = 256;

/// The most bytes of any string (a name, a version, an advisory id).
pub const MAX_STRING: usize = 64;

/// The most bytes of any hex value (the longest, REPORT_DATA and CHIP_ID, is 64).
pub const MAX_BYTES: usize = 64;

/// A writer that remembers where each field starts.
struct Writer {
    out: Vec<u8>,
    marks: Vec<(usize, &'static str)>,
}

impl Writer {
    fn mark(&mut self, field: &'static str) {
        self.marks.push((self.out.len(), field));
    }

    fn bool(&mut self, field: &'static str, v: bool) {
        self.mark(field);
        v.encode_to(&mut self.out);
    }

    fn u32(&mut self, field: &'static str, v: u32) {
        self.mark(field);
        v.encode_to(&mut self.out);
    }

    fn u64_opt(&mut self, field: &'static str, v: Option<u64>) {
        self.mark(field);
        v.encode_to(&mut self.out);
    }

    fn u64(&mut self, field: &'static str, v: u64) {
        self.mark(field);
        v.encode_to(&mut self.out);
    }

    fn len(&mut self, n: usize) {
        // Lists and values over the caps are refused by `validate`; a policy
        // built by hand that exceeds u32 is out of any cap anyway.
        Compact(u32::try_from(n).unwrap_or(u32::MAX)).encode_to(&mut self.out);
    }

    fn raw_bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.out.extend_from_slice(v);
    }

    fn bytes_opt(&mut self, field: &'static str, v: Option<&HexBytes>) {
        self.mark(field);
        match v {
            None => self.out.push(0),
            Some(b) => {
                self.out.push(1);
                self.raw_bytes(&b.0);
            }
        }
    }

    fn bytes_list(&mut self, field: &'static str, v: &[HexBytes]) {
        self.mark(field);
        self.len(v.len());
        for b in v {
            self.raw_bytes(&b.0);
        }
    }

    fn strings(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.raw_bytes(s.as_bytes());
        }
    }

    fn string_list(&mut self, field: &'static str, v: &[String]) {
        self.mark(field);
        self.strings(v);
    }

    fn string_list_opt(&mut self, field: &'static str, v: Option<&[String]>) {
        self.mark(field);
        match v {
            None => self.out.push(0),
            Some(l) => {
                self.out.push(1);
                self.strings(l);
            }
        }
    }

    fn string_opt(&mut self, field: &'static str, v: Option<&str>) {
        self.mark(field);
        match v {
            None => self.out.push(0),
            Some(s) => {
                self.out.push(1);
                self.raw_bytes(s.as_bytes());
            }
        }
    }
}

/// Encodes a policy in canonical form; returns the bytes and where each field starts.
fn encode_marked(p: &Policy) -> Writer {
    let mut w = Writer {
        out: alloc::vec![FORMAT_VERSION],
        marks: alloc::vec![(0, "version")],
    };
    w.bool("allow_simulated", p.allow_simulated);
    w.mark("tees");
    w.len(p.tees.len());
    for t in &p.tees {
        w.out.push(t.index());
    }
    w.u64_opt("key_lifetime_secs", p.key_lifetime_secs);

    let s = &p.snp;
    w.bool("snp.allow_debug", s.allow_debug);
    w.bool("snp.allow_migration_agent", s.allow_migration_agent);
    w.bool("snp.allow_smt", s.allow_smt);
    w.bytes_list("snp.measurements", &s.measurements);
    w.bytes_opt("snp.report_data", s.report_data.as_ref());
    w.bytes_opt("snp.host_data", s.host_data.as_ref());
    w.mark("snp.min_tcb");
    match &s.min_tcb {
        None => w.out.push(0),
        Some(t) => {
            w.out
                .extend_from_slice(&[1, t.bootloader, t.tee, t.snp, t.microcode, t.fmc]);
        }
    }
    w.mark("snp.vmpls");
    w.len(s.vmpls.len());
    for v in &s.vmpls {
        v.encode_to(&mut w.out);
    }
    w.bytes_list("snp.id_key_digests", &s.id_key_digests);
    w.bytes_list("snp.author_key_digests", &s.author_key_digests);
    w.string_list("snp.signing_keys", &s.signing_keys);
    w.u32("snp.min_guest_svn", s.min_guest_svn);
    w.string_list("snp.products", &s.products);
    w.bytes_list("snp.allow_chip_ids", &s.allow_chip_ids);
    w.bytes_list("snp.deny_chip_ids", &s.deny_chip_ids);

    let t = &p.tdx;
    w.string_list("tdx.accepted_tcb_statuses", &t.accepted_tcb_statuses);
    w.string_list_opt(
        "tdx.accepted_advisory_ids",
        t.accepted_advisory_ids.as_deref(),
    );
    w.string_list("tdx.rejected_advisory_ids", &t.rejected_advisory_ids);
    w.u64("tdx.collateral_grace_seconds", t.collateral_grace_seconds);
    w.u32(
        "tdx.min_tcb_evaluation_data_number",
        t.min_tcb_evaluation_data_number,
    );
    w.bool("tdx.allow_debug", t.allow_debug);
    w.bool("tdx.allow_migratable", t.allow_migratable);
    w.bool("tdx.allow_service_td", t.allow_service_td);
    w.bool("tdx.require_sept_ve_disable", t.require_sept_ve_disable);
    w.bytes_list("tdx.mrtds", &t.mrtds);
    w.bytes_opt("tdx.rtmr0", t.rtmr0.as_ref());
    w.bytes_opt("tdx.rtmr1", t.rtmr1.as_ref());
    w.bytes_opt("tdx.rtmr2", t.rtmr2.as_ref());
    w.bytes_opt("tdx.rtmr3", t.rtmr3.as_ref());
    w.bytes_opt("tdx.mrconfigid", t.mrconfigid.as_ref());
    w.bytes_opt("tdx.mrowner", t.mrowner.as_ref());
    w.bytes_opt("tdx.mrownerconfig", t.mrownerconfig.as_ref());
    w.bytes_list("tdx.mrseams", &t.mrseams);
    w.bytes_opt("tdx.report_data", t.report_data.as_ref());
    w.bytes_list("tdx.allow_fmspcs", &t.allow_fmspcs);
    w.bytes_list("tdx.deny_fmspcs", &t.deny_fmspcs);
    w.bytes_list("tdx.allow_ppids", &t.allow_ppids);
    w.bytes_list("tdx.deny_ppids", &t.deny_ppids);

    let g = &p.gpu;
    w.string_opt("gpu.min_driver_version", g.min_driver_version.as_deref());
    w.string_list("gpu.allowed_vbios_versions", &g.allowed_vbios_versions);
    w.bool("gpu.rim_match_required", g.rim_match_required);
    w.bool("gpu.ocsp_required", g.ocsp_required);
    w.string_list("gpu.allowed_modes", &g.allowed_modes);
    w.string_list("gpu.allowed_archs", &g.allowed_archs);
    w.u32("gpu.min_count", g.min_count);
    w.string_list("gpu.models", &g.models);
    w.bool("gpu.require_confidential_mode", g.require_confidential_mode);
    w.bytes_list("simulated.measurements", &p.simulated.measurements);
    w.u64_opt("gpu.ocsp_max_age_secs", p.gpu.ocsp_max_age_secs);
    w.u64_opt("tdx.max_collateral_age_secs", p.tdx.max_collateral_age_secs);
    w.u64_opt("snp.crl_max_age_secs", p.snp.crl_max_age_secs);
    w.mark("tdx.events");
    w.len(p.tdx.events.len());
    for e in &p.tdx.events {
        w.out.push(e.rtmr);
        w.raw_bytes(&e.digest.0);
    }
    w.bytes_list("tdx.agent_digests", &p.tdx.agent_digests);
    w.bytes_list("tdx.config_digests", &p.tdx.config_digests);
    w.mark("vtpm.pcrs");
    w.len(p.vtpm.pcrs.len());
    for r in &p.vtpm.pcrs {
        w.out.push(r.index);
        w.raw_bytes(&r.sha256.0);
    }
    w.mark("vtpm.events");
    w.len(p.vtpm.events.len());
    for e in &p.vtpm.events {
        w.out.push(e.pcr);
        w.raw_bytes(&e.digest.0);
    }
    w
}

/// The canonical bytes of a policy already in canonical form.
pub(super) fn encode(p: &Policy) -> Vec<u8> {
    encode_marked(p).out
}

/// Refuses `bytes` unless they are exactly the canonical bytes of `p`, naming
/// the first field that differs.
pub(super) fn check_canonical(p: &Policy, bytes: &[u8]) -> Result<(), PolicyError> {
    let mut c = p.clone();
    c.canonicalize();
    let w = encode_marked(&c);
    if w.out == bytes {
        return Ok(());
    }
    let at = w
        .out
        .iter()
        .zip(bytes)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| w.out.len().min(bytes.len()));
    let field = w
        .marks
        .iter()
        .rev()
        .find(|(o, _)| *o <= at)
        .map_or("version", |(_, f)| *f);
    Err(PolicyError::NotCanonical { field })
}

/// Reads canonical bytes front to back.
struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self, field: &'static str) -> Result<u8, PolicyError> {
        let (b, rest) = self
            .rest
            .split_first()
            .ok_or(PolicyError::Truncated { field })?;
        self.rest = rest;
        Ok(*b)
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&[u8], PolicyError> {
        if self.rest.len() < n {
            return Err(PolicyError::Truncated { field });
        }
        let (a, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(a)
    }

    fn scale<T: Decode>(&mut self, field: &'static str) -> Result<T, PolicyError> {
        T::decode(&mut self.rest).map_err(|_| PolicyError::Truncated { field })
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, PolicyError> {
        match self.byte(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PolicyError::Malformed {
                field,
                reason: "a boolean is 0 or 1",
            }),
        }
    }

    fn tag(&mut self, field: &'static str) -> Result<bool, PolicyError> {
        match self.byte(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PolicyError::Malformed {
                field,
                reason: "an option tag is 0 or 1",
            }),
        }
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PolicyError> {
        self.scale(field)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, PolicyError> {
        self.scale(field)
    }

    /// A compact length, refused over `max` before anything is allocated.
    fn len(&mut self, field: &'static str, max: usize, list: bool) -> Result<usize, PolicyError> {
        let Compact(n) = self.scale::<Compact<u32>>(field)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max {
            return Err(if list {
                PolicyError::TooMany {
                    field,
                    max,
                    actual: n,
                }
            } else {
                PolicyError::TooLong {
                    field,
                    max,
                    actual: n,
                }
            });
        }
        Ok(n)
    }

    fn bytes(&mut self, field: &'static str) -> Result<HexBytes, PolicyError> {
        let n = self.len(field, MAX_BYTES, false)?;
        Ok(HexBytes(self.take(field, n)?.to_vec()))
    }

    fn bytes_opt(&mut self, field: &'static str) -> Result<Option<HexBytes>, PolicyError> {
        if self.tag(field)? {
            Ok(Some(self.bytes(field)?))
        } else {
            Ok(None)
        }
    }

    fn bytes_list(&mut self, field: &'static str) -> Result<Vec<HexBytes>, PolicyError> {
        let n = self.len(field, MAX_LIST, true)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.bytes(field)?);
        }
        Ok(v)
    }

    fn string(&mut self, field: &'static str) -> Result<String, PolicyError> {
        let n = self.len(field, MAX_STRING, false)?;
        let raw = self.take(field, n)?;
        core::str::from_utf8(raw)
            .map(String::from)
            .map_err(|_| PolicyError::Malformed {
                field,
                reason: "a string is not UTF-8",
            })
    }

    fn string_opt(&mut self, field: &'static str) -> Result<Option<String>, PolicyError> {
        if self.tag(field)? {
            Ok(Some(self.string(field)?))
        } else {
            Ok(None)
        }
    }

    fn string_list(&mut self, field: &'static str) -> Result<Vec<String>, PolicyError> {
        let n = self.len(field, MAX_LIST, true)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.string(field)?);
        }
        Ok(v)
    }

    fn string_list_opt(&mut self, field: &'static str) -> Result<Option<Vec<String>>, PolicyError> {
        if self.tag(field)? {
            Ok(Some(self.string_list(field)?))
        } else {
            Ok(None)
        }
    }
}

/// Decodes the fields of canonical bytes (no validation, no canonical check);
/// refuses an unknown version and trailing bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Policy, PolicyError> {
    let mut r = Reader { rest: bytes };
    let version = r.byte("version")?;
    if version != FORMAT_VERSION {
        return Err(PolicyError::Version { found: version });
    }
    let mut p = Policy {
        allow_simulated: r.bool("allow_simulated")?,
        ..Policy::default()
    };
    let n = r.len("tees", MAX_LIST, true)?;
    for _ in 0..n {
        let i = r.byte("tees")?;
        let t =
            PolicyTee::ALL
                .into_iter()
                .find(|t| t.index() == i)
                .ok_or(PolicyError::Malformed {
                    field: "tees",
                    reason: "unknown TEE index",
                })?;
        p.tees.push(t);
    }
    p.key_lifetime_secs = if r.tag("key_lifetime_secs")? {
        Some(r.u64("key_lifetime_secs")?)
    } else {
        None
    };

    let s = &mut p.snp;
    s.allow_debug = r.bool("snp.allow_debug")?;
    s.allow_migration_agent = r.bool("snp.allow_migration_agent")?;
    s.allow_smt = r.bool("snp.allow_smt")?;
    s.measurements = r.bytes_list("snp.measurements")?;
    s.report_data = r.bytes_opt("snp.report_data")?;
    s.host_data = r.bytes_opt("snp.host_data")?;
    s.min_tcb = if r.tag("snp.min_tcb")? {
        let t = r.take("snp.min_tcb", 5)?;
        match *t {
            [bootloader, tee, snp, microcode, fmc] => Some(MinTcb {
                bootloader,
                tee,
                snp,
                microcode,
                fmc,
            }),
            _ => {
                return Err(PolicyError::Truncated {
                    field: "snp.min_tcb",
                });
            }
        }
    } else {
        None
    };
    let n = r.len("snp.vmpls", MAX_LIST, true)?;
    s.vmpls = Vec::with_capacity(n);
    for _ in 0..n {
        s.vmpls.push(r.u32("snp.vmpls")?);
    }
    s.id_key_digests = r.bytes_list("snp.id_key_digests")?;
    s.author_key_digests = r.bytes_list("snp.author_key_digests")?;
    s.signing_keys = r.string_list("snp.signing_keys")?;
    s.min_guest_svn = r.u32("snp.min_guest_svn")?;
    s.products = r.string_list("snp.products")?;
    s.allow_chip_ids = r.bytes_list("snp.allow_chip_ids")?;
    s.deny_chip_ids = r.bytes_list("snp.deny_chip_ids")?;

    let t = &mut p.tdx;
    t.accepted_tcb_statuses = r.string_list("tdx.accepted_tcb_statuses")?;
    t.accepted_advisory_ids = r.string_list_opt("tdx.accepted_advisory_ids")?;
    t.rejected_advisory_ids = r.string_list("tdx.rejected_advisory_ids")?;
    t.collateral_grace_seconds = r.u64("tdx.collateral_grace_seconds")?;
    t.min_tcb_evaluation_data_number = r.u32("tdx.min_tcb_evaluation_data_number")?;
    t.allow_debug = r.bool("tdx.allow_debug")?;
    t.allow_migratable = r.bool("tdx.allow_migratable")?;
    t.allow_service_td = r.bool("tdx.allow_service_td")?;
    t.require_sept_ve_disable = r.bool("tdx.require_sept_ve_disable")?;
    t.mrtds = r.bytes_list("tdx.mrtds")?;
    t.rtmr0 = r.bytes_opt("tdx.rtmr0")?;
    t.rtmr1 = r.bytes_opt("tdx.rtmr1")?;
    t.rtmr2 = r.bytes_opt("tdx.rtmr2")?;
    t.rtmr3 = r.bytes_opt("tdx.rtmr3")?;
    t.mrconfigid = r.bytes_opt("tdx.mrconfigid")?;
    t.mrowner = r.bytes_opt("tdx.mrowner")?;
    t.mrownerconfig = r.bytes_opt("tdx.mrownerconfig")?;
    t.mrseams = r.bytes_list("tdx.mrseams")?;
    t.report_data = r.bytes_opt("tdx.report_data")?;
    t.allow_fmspcs = r.bytes_list("tdx.allow_fmspcs")?;
    t.deny_fmspcs = r.bytes_list("tdx.deny_fmspcs")?;
    t.allow_ppids = r.bytes_list("tdx.allow_ppids")?;
    t.deny_ppids = r.bytes_list("tdx.deny_ppids")?;

    let g = &mut p.gpu;
    g.min_driver_version = r.string_opt("gpu.min_driver_version")?;
    g.allowed_vbios_versions = r.string_list("gpu.allowed_vbios_versions")?;
    g.rim_match_required = r.bool("gpu.rim_match_required")?;
    g.ocsp_required = r.bool("gpu.ocsp_required")?;
    g.allowed_modes = r.string_list("gpu.allowed_modes")?;
    g.allowed_archs = r.string_list("gpu.allowed_archs")?;
    g.min_count = r.u32("gpu.min_count")?;
    g.models = r.string_list("gpu.models")?;
    g.require_confidential_mode = r.bool("gpu.require_confidential_mode")?;
    p.simulated.measurements = r.bytes_list("simulated.measurements")?;
    p.gpu.ocsp_max_age_secs = if r.tag("gpu.ocsp_max_age_secs")? {
        Some(r.u64("gpu.ocsp_max_age_secs")?)
    } else {
        None
    };
    p.tdx.max_collateral_age_secs = if r.tag("tdx.max_collateral_age_secs")? {
        Some(r.u64("tdx.max_collateral_age_secs")?)
    } else {
        None
    };
    p.snp.crl_max_age_secs = if r.tag("snp.crl_max_age_secs")? {
        Some(r.u64("snp.crl_max_age_secs")?)
    } else {
        None
    };
    let n = r.len("tdx.events", MAX_LIST, true)?;
    for _ in 0..n {
        let rtmr = r.byte("tdx.events")?;
        let digest = r.bytes("tdx.events")?;
        p.tdx.events.push(TdxEventRule { rtmr, digest });
    }
    p.tdx.agent_digests = r.bytes_list("tdx.agent_digests")?;
    p.tdx.config_digests = r.bytes_list("tdx.config_digests")?;
    let n = r.len("vtpm.pcrs", MAX_LIST, true)?;
    for _ in 0..n {
        let index = r.byte("vtpm.pcrs")?;
        let sha256 = r.bytes("vtpm.pcrs")?;
        p.vtpm.pcrs.push(PcrRule { index, sha256 });
    }
    let n = r.len("vtpm.events", MAX_LIST, true)?;
    for _ in 0..n {
        let pcr = r.byte("vtpm.events")?;
        let digest = r.bytes("vtpm.events")?;
        p.vtpm.events.push(PcrEventRule { pcr, digest });
    }

    if !r.rest.is_empty() {
        return Err(PolicyError::TrailingBytes {
            count: r.rest.len(),
        });
    }
    Ok(p)
}

fn cap_list<T>(field: &'static str, v: &[T]) -> Result<(), PolicyError> {
    if v.len() > MAX_LIST {
        return Err(PolicyError::TooMany {
            field,
            max: MAX_LIST,
            actual: v.len(),
        });
    }
    Ok(())
}

fn cap_len(field: &'static str, len: usize, max: usize) -> Result<(), PolicyError> {
    if len > max {
        return Err(PolicyError::TooLong {
            field,
            max,
            actual: len,
        });
    }
    Ok(())
}

fn cap_strings(field: &'static str, v: &[String]) -> Result<(), PolicyError> {
    cap_list(field, v)?;
    v.iter()
        .try_for_each(|s| cap_len(field, s.len(), MAX_STRING))
}

fn cap_bytes(field: &'static str, v: &[HexBytes]) -> Result<(), PolicyError> {
    cap_list(field, v)?;
    v.iter()
        .try_for_each(|b| cap_len(field, b.0.len(), MAX_BYTES))
}

/// Checks the caps of the canonical form: at most [`MAX_LIST`] entries per
/// list, [`MAX_STRING`] bytes per string (exact hex lengths are `validate`'s).
pub(super) fn check_caps(p: &Policy) -> Result<(), PolicyError> {
    cap_list("tees", &p.tees)?;
    let s = &p.snp;
    cap_bytes("snp.measurements", &s.measurements)?;
    cap_list("snp.vmpls", &s.vmpls)?;
    cap_bytes("snp.id_key_digests", &s.id_key_digests)?;
    cap_bytes("snp.author_key_digests", &s.author_key_digests)?;
    cap_strings("snp.signing_keys", &s.signing_keys)?;
    cap_strings("snp.products", &s.products)?;
    cap_bytes("snp.allow_chip_ids", &s.allow_chip_ids)?;
    cap_bytes("snp.deny_chip_ids", &s.deny_chip_ids)?;
    let t = &p.tdx;
    cap_strings("tdx.accepted_tcb_statuses", &t.accepted_tcb_statuses)?;
    if let Some(ids) = &t.accepted_advisory_ids {
        cap_strings("tdx.accepted_advisory_ids", ids)?;
    }
    cap_strings("tdx.rejected_advisory_ids", &t.rejected_advisory_ids)?;
    cap_bytes("tdx.mrtds", &t.mrtds)?;
    cap_bytes("tdx.mrseams", &t.mrseams)?;
    cap_bytes("tdx.allow_fmspcs", &t.allow_fmspcs)?;
    cap_bytes("tdx.deny_fmspcs", &t.deny_fmspcs)?;
    cap_bytes("tdx.allow_ppids", &t.allow_ppids)?;
    cap_bytes("tdx.deny_ppids", &t.deny_ppids)?;
    cap_list("tdx.events", &t.events)?;
    t.events
        .iter()
        .try_for_each(|e| cap_len("tdx.events", e.digest.0.len(), MAX_BYTES))?;
    cap_bytes("tdx.agent_digests", &t.agent_digests)?;
    cap_bytes("tdx.config_digests", &t.config_digests)?;
    cap_list("vtpm.pcrs", &p.vtpm.pcrs)?;
    p.vtpm
        .pcrs
        .iter()
        .try_for_each(|r| cap_len("vtpm.pcrs", r.sha256.0.len(), MAX_BYTES))?;
    cap_list("vtpm.events", &p.vtpm.events)?;
    p.vtpm
        .events
        .iter()
        .try_for_each(|e| cap_len("vtpm.events", e.digest.0.len(), MAX_BYTES))?;
    let g = &p.gpu;
    if let Some(v) = &g.min_driver_version {
        cap_len("gpu.min_driver_version", v.len(), MAX_STRING)?;
    }
    cap_strings("gpu.allowed_vbios_versions", &g.allowed_vbios_versions)?;
    cap_strings("gpu.allowed_modes", &g.allowed_modes)?;
    cap_strings("gpu.allowed_archs", &g.allowed_archs)?;
    cap_strings("gpu.models", &g.models)?;
    cap_bytes("simulated.measurements", &p.simulated.measurements)
}

/// Every rule of a policy in canonical form as TOML.
#[cfg(feature = "std")]
pub(super) fn to_toml(p: &Policy) -> String {
    use alloc::format;
    use core::fmt::Write;

    fn q(s: &str) -> String {
        alloc::string::ToString::to_string(&toml::Value::String(s.into()))
    }
    fn strs(v: &[String]) -> String {
        let items: Vec<String> = v.iter().map(|s| q(s)).collect();
        format!("[{}]", items.join(", "))
    }
    fn hex(b: &HexBytes) -> String {
        format!("\"{}\"", hex::encode(&b.0))
    }
    fn hexes(v: &[HexBytes]) -> String {
        let items: Vec<String> = v.iter().map(hex).collect();
        format!("[{}]", items.join(", "))
    }

    fn line(o: &mut String, k: &str, v: String) {
        // Writing to a String cannot fail.
        let _ = writeln!(o, "{k} = {v}");
    }

    let mut o = String::new();
    line(&mut o, "allow_simulated", format!("{}", p.allow_simulated));
    let tees: Vec<String> = p.tees.iter().map(|t| t.name().into()).collect();
    line(&mut o, "tees", strs(&tees));
    if let Some(k) = p.key_lifetime_secs {
        line(&mut o, "key_lifetime_secs", format!("{k}"));
    }

    let s = &p.snp;
    o.push_str("\n[snp]\n");
    line(&mut o, "allow_debug", format!("{}", s.allow_debug));
    line(
        &mut o,
        "allow_migration_agent",
        format!("{}", s.allow_migration_agent),
    );
    line(&mut o, "allow_smt", format!("{}", s.allow_smt));
    line(&mut o, "measurements", hexes(&s.measurements));
    if let Some(v) = &s.report_data {
        line(&mut o, "report_data", hex(v));
    }
    if let Some(v) = &s.host_data {
        line(&mut o, "host_data", hex(v));
    }
    if let Some(t) = &s.min_tcb {
        line(
            &mut o,
            "min_tcb",
            format!(
                "{{ bootloader = {}, tee = {}, snp = {}, microcode = {}, fmc = {} }}",
                t.bootloader, t.tee, t.snp, t.microcode, t.fmc
            ),
        );
    }
    let vmpls: Vec<String> = s.vmpls.iter().map(|v| format!("{v}")).collect();
    line(&mut o, "vmpls", format!("[{}]", vmpls.join(", ")));
    line(&mut o, "id_key_digests", hexes(&s.id_key_digests));
    line(&mut o, "author_key_digests", hexes(&s.author_key_digests));
    line(&mut o, "signing_keys", strs(&s.signing_keys));
    line(&mut o, "min_guest_svn", format!("{}", s.min_guest_svn));
    line(&mut o, "products", strs(&s.products));
    line(&mut o, "allow_chip_ids", hexes(&s.allow_chip_ids));
    line(&mut o, "deny_chip_ids", hexes(&s.deny_chip_ids));
    if let Some(v) = s.crl_max_age_secs {
        line(&mut o, "crl_max_age_secs", format!("{v}"));
    }

    let t = &p.tdx;
    o.push_str("\n[tdx]\n");
    line(
        &mut o,
        "accepted_tcb_statuses",
        strs(&t.accepted_tcb_statuses),
    );
    if let Some(ids) = &t.accepted_advisory_ids {
        line(&mut o, "accepted_advisory_ids", strs(ids));
    }
    line(
        &mut o,
        "rejected_advisory_ids",
        strs(&t.rejected_advisory_ids),
    );
    line(
        &mut o,
        "collateral_grace_seconds",
        format!("{}", t.collateral_grace_seconds),
    );
    line(
        &mut o,
        "min_tcb_evaluation_data_number",
        format!("{}", t.min_tcb_evaluation_data_number),
    );
    line(&mut o, "allow_debug", format!("{}", t.allow_debug));
    line(
        &mut o,
        "allow_migratable",
        format!("{}", t.allow_migratable),
    );
    line(
        &mut o,
        "allow_service_td",
        format!("{}", t.allow_service_td),
    );
    line(
        &mut o,
        "require_sept_ve_disable",
        format!("{}", t.require_sept_ve_disable),
    );
    line(&mut o, "mrtds", hexes(&t.mrtds));
    for (k, v) in [
        ("rtmr0", &t.rtmr0),
        ("rtmr1", &t.rtmr1),
        ("rtmr2", &t.rtmr2),
        ("rtmr3", &t.rtmr3),
        ("mrconfigid", &t.mrconfigid),
        ("mrowner", &t.mrowner),
        ("mrownerconfig", &t.mrownerconfig),
    ] {
        if let Some(v) = v {
            line(&mut o, k, hex(v));
        }
    }
    line(&mut o, "mrseams", hexes(&t.mrseams));
    if let Some(v) = &t.report_data {
        line(&mut o, "report_data", hex(v));
    }
    line(&mut o, "allow_fmspcs", hexes(&t.allow_fmspcs));
    line(&mut o, "deny_fmspcs", hexes(&t.deny_fmspcs));
    line(&mut o, "allow_ppids", hexes(&t.allow_ppids));
    line(&mut o, "deny_ppids", hexes(&t.deny_ppids));
    if let Some(v) = t.max_collateral_age_secs {
        line(&mut o, "max_collateral_age_secs", format!("{v}"));
    }
    let events: Vec<String> = t
        .events
        .iter()
        .map(|e| format!("{{ rtmr = {}, digest = {} }}", e.rtmr, hex(&e.digest)))
        .collect();
    line(&mut o, "events", format!("[{}]", events.join(", ")));
    line(&mut o, "agent_digests", hexes(&t.agent_digests));
    line(&mut o, "config_digests", hexes(&t.config_digests));

    let g = &p.gpu;
    o.push_str("\n[gpu]\n");
    if let Some(v) = &g.min_driver_version {
        line(&mut o, "min_driver_version", q(v));
    }
    line(
        &mut o,
        "allowed_vbios_versions",
        strs(&g.allowed_vbios_versions),
    );
    line(
        &mut o,
        "rim_match_required",
        format!("{}", g.rim_match_required),
    );
    line(&mut o, "ocsp_required", format!("{}", g.ocsp_required));
    line(&mut o, "allowed_modes", strs(&g.allowed_modes));
    line(&mut o, "allowed_archs", strs(&g.allowed_archs));
    line(&mut o, "min_count", format!("{}", g.min_count));
    line(&mut o, "models", strs(&g.models));
    line(
        &mut o,
        "require_confidential_mode",
        format!("{}", g.require_confidential_mode),
    );
    if let Some(v) = g.ocsp_max_age_secs {
        line(&mut o, "ocsp_max_age_secs", format!("{v}"));
    }

    o.push_str("\n[simulated]\n");
    line(&mut o, "measurements", hexes(&p.simulated.measurements));

    o.push_str("\n[vtpm]\n");
    let pcrs: Vec<String> = p
        .vtpm
        .pcrs
        .iter()
        .map(|r| format!("{{ index = {}, sha256 = {} }}", r.index, hex(&r.sha256)))
        .collect();
    line(&mut o, "pcrs", format!("[{}]", pcrs.join(", ")));
    let events: Vec<String> = p
        .vtpm
        .events
        .iter()
        .map(|e| format!("{{ pcr = {}, digest = {} }}", e.pcr, hex(&e.digest)))
        .collect();
    line(&mut o, "events", format!("[{}]", events.join(", ")));
    o
}
