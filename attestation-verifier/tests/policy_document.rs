//! The policy as a canonical, content-addressed document: one byte string and
//! one id per set of rules however the TOML spells them, strict decoding of
//! canonical bytes, and the rules added with it (`tees`, `key_lifetime_secs`,
//! CHIP_ID, FMSPC and PPID lists, GPU count, models and confidential mode)
//! appraised on real evidence from the shared vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::nvgpu::split_pem_chain;
use attestation_verifier::policy::{HexBytes, MAX_LIST, MAX_STRING};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier};
use attestation_verifier::{
    GpuBytes, POLICY_ID_DOMAIN, Policy, PolicyError, PolicyTee, check_gpu, check_gpu_bundle,
    check_snp, check_tdx,
};
use common::Case;
use proptest::prelude::*;

fn h(byte: u8, len: usize) -> String {
    hex::encode(vec![byte; len])
}

fn id_hex(p: &Policy) -> String {
    hex::encode(p.id())
}

fn parse(text: &str) -> Policy {
    Policy::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A policy that sets every key to a value other than its default.
fn every_key_toml() -> String {
    format!(
        r#"
allow_simulated = true
tees = ["sev-snp", "tdx", "simulated"]
key_lifetime_secs = 86400

[snp]
allow_debug = true
allow_migration_agent = true
allow_smt = false
measurements = ["{m1}", "{m2}"]
report_data = "{rd}"
host_data = "{hd}"
min_tcb = {{ bootloader = 3, tee = 1, snp = 8, microcode = 115, fmc = 2 }}
vmpls = [0, 1]
id_key_digests = ["{d1}"]
author_key_digests = ["{d2}"]
signing_keys = ["VCEK"]
min_guest_svn = 7
products = ["Genoa", "Milan"]
allow_chip_ids = ["{c1}"]
deny_chip_ids = ["{c2}"]
crl_max_age_secs = 604800

[tdx]
accepted_tcb_statuses = ["SWHardeningNeeded", "UpToDate"]
accepted_advisory_ids = ["INTEL-SA-00615"]
rejected_advisory_ids = ["INTEL-SA-00837"]
collateral_grace_seconds = 3600
min_tcb_evaluation_data_number = 17
allow_debug = true
allow_migratable = true
allow_service_td = true
require_sept_ve_disable = false
mrtds = ["{t1}"]
rtmr0 = "{r0}"
rtmr1 = "{r1}"
rtmr2 = "{r2}"
rtmr3 = "{r3}"
mrconfigid = "{mc}"
mrowner = "{mo}"
mrownerconfig = "{moc}"
mrseams = ["{ms}"]
report_data = "{trd}"
allow_fmspcs = ["b0c06f000000"]
deny_fmspcs = ["00906ed50000"]
allow_ppids = ["811dca2a26b952e85bb6448b097ba4fd"]
deny_ppids = ["{pp}"]
max_collateral_age_secs = 2592000

[gpu]
min_driver_version = "550.127.5"
allowed_vbios_versions = ["96.00.9f.00.01"]
rim_match_required = false
ocsp_required = true
allowed_modes = ["ppcie", "spt"]
allowed_archs = ["Hopper"]
min_count = 2
models = ["GH100"]
require_confidential_mode = true
ocsp_max_age_secs = 86400

[simulated]
measurements = ["{m1}"]
"#,
        m1 = h(1, 48),
        m2 = h(2, 48),
        rd = h(3, 64),
        hd = h(4, 32),
        d1 = h(5, 48),
        d2 = h(6, 48),
        c1 = h(7, 64),
        c2 = h(8, 64),
        t1 = h(9, 48),
        r0 = h(10, 48),
        r1 = h(11, 48),
        r2 = h(12, 48),
        r3 = h(13, 48),
        mc = h(14, 48),
        mo = h(15, 48),
        moc = h(16, 48),
        ms = h(17, 48),
        trd = h(18, 64),
        pp = h(19, 16),
    )
}

/// The canonical bytes of the default policy (`docs/policy.md`).
const DEFAULT_CANONICAL_HEX: &str = "0100000000000100000000000000000000000000000004205570546f446174650000000000000000000000000000000000010000000000000000000000000000000001000000000000000000000000000000000000";

/// The golden id of the default policy: any change of the encoding, the
/// domain or a default fails here.
#[test]
fn default_policy_id_is_stable() {
    let p = Policy::default();
    assert_eq!(POLICY_ID_DOMAIN, b"sigil.policy.v2\0");
    assert_eq!(
        hex::encode(p.canonical_bytes()),
        DEFAULT_CANONICAL_HEX,
        "format version 1, then every field in order"
    );
    assert_eq!(
        id_hex(&p),
        "395cc2432594f386179ada230c25a242b1c800a2b49e829909f1a9ab8b2e2270"
    );
    assert_eq!(parse("").id(), p.id());
    assert_eq!(parse("# nothing\n\n").id(), p.id());
}

#[test]
fn same_rules_spelled_differently_give_same_id_works() {
    let a = format!(
        r#"
allow_simulated = true
tees = ["tdx", "sev-snp"]

[snp]
measurements = ["{m1}", "{m2}"]
products = ["Milan", "Genoa"]
allow_chip_ids = ["{c1}"]

[tdx]
fmspcs = ["B0C06F000000"]
rejected_advisory_ids = ["INTEL-SA-00837"]
accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]

[gpu]
min_driver_version = "550.127.05"
allowed_vbios_versions = ["96.00.9F.00.01"]
models = ["GH100"]
"#,
        m1 = h(1, 48),
        m2 = h(0xab, 48),
        c1 = h(0xcd, 64),
    );
    let b = format!(
        r#"
# the same rules, in another order and spelling
[gpu]
models = ["gh100", "GH100"]
allowed_vbios_versions = ["96.00.9f.00.01"]
min_driver_version = "550.127.5"

[tdx]
accepted_tcb_statuses = ["SWHardeningNeeded", "UpToDate", "UpToDate"]
rejected_advisory_ids = ["intel-sa-00837"]
allow_fmspcs = ["0xb0c06f000000", "b0c06f000000"]

[snp]
allow_chip_ids = [   "0x{c1}"   ]
products = ["genoa", "Milan", "milan"]
measurements = ["{m2}", "0x{m1}", "{m1}"]

[ignored_by_no_one]
"#,
        m1 = h(1, 48),
        m2 = h(0xab, 48).to_uppercase(),
        c1 = h(0xcd, 64).to_uppercase(),
    );
    // The extra table is an error (unknown keys never pass silently); without it
    // the two files are the same rules.
    assert!(matches!(Policy::from_toml(&b), Err(PolicyError::Syntax(_))));
    let b = b.replace("[ignored_by_no_one]\n", "");
    let b = format!("tees = [\"sev-snp\", \"tdx\", \"tdx\"]\nallow_simulated = true\n{b}");
    let (pa, pb) = (parse(&a), parse(&b));
    assert_eq!(pa, pb);
    assert_eq!(pa.canonical_bytes(), pb.canonical_bytes());
    assert_eq!(pa.id(), pb.id());
    // The former key `fmspcs` and `allow_fmspcs` are one rule.
    let old = parse("[tdx]\nfmspcs = [\"b0c06f000000\"]\n");
    let new = parse("[tdx]\nallow_fmspcs = [\"B0C06F000000\"]\n");
    assert_eq!(old.id(), new.id());
    assert_eq!(old.tdx.allow_fmspcs, new.tdx.allow_fmspcs);
    // Both keys at once is a duplicate.
    assert!(
        Policy::from_toml("[tdx]\nfmspcs = []\nallow_fmspcs = []\n").is_err(),
        "both spellings at once"
    );
}

#[test]
fn each_changed_rule_changes_id_works() {
    let changes: Vec<String> = vec![
        "allow_simulated = true".into(),
        "tees = [\"sev-snp\"]".into(),
        "tees = [\"tdx\"]".into(),
        "tees = [\"sev-snp\", \"tdx\"]".into(),
        format!("[simulated]\nmeasurements = [\"{}\"]", h(1, 48)),
        format!("[simulated]\nmeasurements = [\"{}\"]", h(2, 48)),
        "[gpu]\nocsp_max_age_secs = 60".into(),
        "[gpu]\nocsp_max_age_secs = 0".into(),
        "[tdx]\nmax_collateral_age_secs = 60".into(),
        "[snp]\ncrl_max_age_secs = 60".into(),
        "[snp]\ncrl_max_age_secs = 0".into(),
        "key_lifetime_secs = 60".into(),
        "key_lifetime_secs = 61".into(),
        "[snp]\nallow_debug = true".into(),
        "[snp]\nallow_migration_agent = true".into(),
        "[snp]\nallow_smt = false".into(),
        format!("[snp]\nmeasurements = [\"{}\"]", h(1, 48)),
        format!("[snp]\nmeasurements = [\"{}\"]", h(2, 48)),
        format!("[snp]\nreport_data = \"{}\"", h(1, 64)),
        format!("[snp]\nhost_data = \"{}\"", h(1, 32)),
        "[snp]\nmin_tcb = { snp = 8 }".into(),
        "[snp]\nmin_tcb = { microcode = 8 }".into(),
        "[snp]\nmin_tcb = {}".into(),
        "[snp]\nvmpls = [0]".into(),
        format!("[snp]\nid_key_digests = [\"{}\"]", h(1, 48)),
        format!("[snp]\nauthor_key_digests = [\"{}\"]", h(1, 48)),
        "[snp]\nsigning_keys = [\"VLEK\"]".into(),
        "[snp]\nmin_guest_svn = 1".into(),
        "[snp]\nproducts = [\"Turin\"]".into(),
        format!("[snp]\nallow_chip_ids = [\"{}\"]", h(1, 64)),
        format!("[snp]\ndeny_chip_ids = [\"{}\"]", h(1, 64)),
        "[tdx]\naccepted_tcb_statuses = [\"OutOfDate\"]".into(),
        "[tdx]\naccepted_tcb_statuses = []".into(),
        "[tdx]\naccepted_advisory_ids = []".into(),
        "[tdx]\naccepted_advisory_ids = [\"INTEL-SA-00615\"]".into(),
        "[tdx]\nrejected_advisory_ids = [\"INTEL-SA-00615\"]".into(),
        "[tdx]\ncollateral_grace_seconds = 1".into(),
        "[tdx]\nmin_tcb_evaluation_data_number = 1".into(),
        "[tdx]\nallow_debug = true".into(),
        "[tdx]\nallow_migratable = true".into(),
        "[tdx]\nallow_service_td = true".into(),
        "[tdx]\nrequire_sept_ve_disable = false".into(),
        format!("[tdx]\nmrtds = [\"{}\"]", h(1, 48)),
        format!("[tdx]\nrtmr0 = \"{}\"", h(1, 48)),
        format!("[tdx]\nrtmr1 = \"{}\"", h(1, 48)),
        format!("[tdx]\nrtmr2 = \"{}\"", h(1, 48)),
        format!("[tdx]\nrtmr3 = \"{}\"", h(1, 48)),
        format!("[tdx]\nmrconfigid = \"{}\"", h(1, 48)),
        format!("[tdx]\nmrowner = \"{}\"", h(1, 48)),
        format!("[tdx]\nmrownerconfig = \"{}\"", h(1, 48)),
        format!("[tdx]\nmrseams = [\"{}\"]", h(1, 48)),
        format!("[tdx]\nreport_data = \"{}\"", h(1, 64)),
        "[tdx]\nallow_fmspcs = [\"b0c06f000000\"]".into(),
        "[tdx]\ndeny_fmspcs = [\"b0c06f000000\"]".into(),
        format!("[tdx]\nallow_ppids = [\"{}\"]", h(1, 16)),
        format!("[tdx]\ndeny_ppids = [\"{}\"]", h(1, 16)),
        "[gpu]\nmin_driver_version = \"550\"".into(),
        "[gpu]\nmin_driver_version = \"550.0\"".into(),
        "[gpu]\nallowed_vbios_versions = [\"96.00.9f.00.01\"]".into(),
        "[gpu]\nrim_match_required = false".into(),
        "[gpu]\nocsp_required = true".into(),
        "[gpu]\nallowed_modes = [\"legacy\"]".into(),
        "[gpu]\nallowed_archs = [\"Blackwell\"]".into(),
        "[gpu]\nmin_count = 1".into(),
        "[gpu]\nmin_count = 8".into(),
        "[gpu]\nmodels = [\"GH100\"]".into(),
        "[gpu]\nrequire_confidential_mode = true".into(),
    ];
    let mut ids = std::collections::BTreeMap::new();
    ids.insert(Policy::default().id(), "default".to_string());
    for c in &changes {
        let p = parse(c);
        if let Some(prev) = ids.insert(p.id(), c.clone()) {
            panic!("{c:?} has the id of {prev:?}");
        }
    }
    // Every key of the full policy changes the id: it differs from all above.
    assert!(!ids.contains_key(&parse(&every_key_toml()).id()));
}

#[test]
fn canonical_bytes_round_trip_works() {
    for p in [Policy::default(), parse(&every_key_toml())] {
        let bytes = p.canonical_bytes();
        assert_eq!(Policy::from_canonical_bytes(&bytes).unwrap(), p);
        // to_toml reads back to the same rules and id.
        let text = p.to_toml();
        let back = parse(&text);
        assert_eq!(back, p, "{text}");
        assert_eq!(back.canonical_bytes(), bytes);
        assert_eq!(back.id(), p.id());
    }
    // The id is the domain-separated SHA-256 of the bytes.
    let p = parse(&every_key_toml());
    let mut msg = POLICY_ID_DOMAIN.to_vec();
    msg.extend(p.canonical_bytes());
    assert_eq!(
        p.id(),
        attestation_verifier::Crypto::sha256(&RustCrypto, &msg)
    );
}

/// A policy built by hand, out of canonical order, has the bytes of its
/// canonical form.
#[test]
fn hand_built_policy_is_canonicalized_works() {
    let mut p = Policy::default();
    p.snp.measurements = vec![
        HexBytes(vec![2; 48]),
        HexBytes(vec![1; 48]),
        HexBytes(vec![2; 48]),
    ];
    p.snp.products = vec!["turin".into(), "Milan-B0".into()];
    p.tdx.rejected_advisory_ids = vec!["intel-sa-00615".into()];
    p.gpu.models = vec!["gh100".into()];
    p.gpu.min_driver_version = Some("550.090.07".into());
    p.tees = vec![PolicyTee::Tdx, PolicyTee::SevSnp, PolicyTee::Tdx];
    let bytes = p.canonical_bytes();
    let q = Policy::from_canonical_bytes(&bytes).unwrap();
    assert_eq!(q.snp.measurements[0].0, vec![1; 48]);
    assert_eq!(q.snp.measurements.len(), 2);
    assert_eq!(q.snp.products, ["Milan", "Turin"]);
    assert_eq!(q.tdx.rejected_advisory_ids, ["INTEL-SA-00615"]);
    assert_eq!(q.gpu.models, ["GH100"]);
    assert_eq!(q.gpu.min_driver_version.as_deref(), Some("550.90.7"));
    assert_eq!(q.tees, [PolicyTee::SevSnp, PolicyTee::Tdx]);
    assert_eq!(q.id(), p.id());
    assert_eq!(parse(&p.to_toml()), q);
}

/// Replaces the only occurrence of `from` in `bytes` with `to` (same length).
fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{from:?} occurs {} times", at.len());
    let mut out = bytes.to_vec();
    out[at[0]..at[0] + to.len()].copy_from_slice(to);
    out
}

#[test]
fn non_canonical_bytes_rejects() {
    let base = Policy::default().canonical_bytes();

    // Trailing byte, unknown version, empty and truncated input.
    let mut t = base.clone();
    t.push(0);
    assert_eq!(
        Policy::from_canonical_bytes(&t),
        Err(PolicyError::TrailingBytes { count: 1 })
    );
    let mut v = base.clone();
    v[0] = 2;
    assert_eq!(
        Policy::from_canonical_bytes(&v),
        Err(PolicyError::Version { found: 2 })
    );
    assert_eq!(
        Policy::from_canonical_bytes(&[]),
        Err(PolicyError::Truncated { field: "version" })
    );
    for n in 1..base.len() {
        assert!(
            matches!(
                Policy::from_canonical_bytes(&base[..n]),
                Err(PolicyError::Truncated { .. })
            ),
            "prefix of {n} bytes"
        );
    }
    // A boolean that is not 0 or 1 (allow_simulated is byte 1).
    let mut b = base.clone();
    b[1] = 2;
    assert!(matches!(
        Policy::from_canonical_bytes(&b),
        Err(PolicyError::Malformed {
            field: "allow_simulated",
            ..
        })
    ));

    // An unsorted list and a duplicated entry.
    let (a, z) = (vec![0x11; 48], vec![0x22; 48]);
    let mut p = Policy::default();
    p.snp.measurements = vec![HexBytes(a.clone()), HexBytes(z.clone())];
    let sorted = p.canonical_bytes();
    let swapped = replace_once(&replace_once(&sorted, &a, &[0; 48]), &z, &a);
    let swapped = replace_once(&swapped, &[0; 48], &z);
    assert_eq!(
        Policy::from_canonical_bytes(&swapped),
        Err(PolicyError::NotCanonical {
            field: "snp.measurements"
        })
    );
    let duplicated = replace_once(&sorted, &z, &a);
    assert_eq!(
        Policy::from_canonical_bytes(&duplicated),
        Err(PolicyError::NotCanonical {
            field: "snp.measurements"
        })
    );

    // Names in another spelling: they validate, but are not canonical.
    let mut p = Policy::default();
    p.snp.products = vec!["Genoa".into()];
    p.tdx.rejected_advisory_ids = vec!["INTEL-SA-00615".into()];
    p.gpu.models = vec!["GH100".into()];
    let bytes = p.canonical_bytes();
    for (from, to, field) in [
        (&b"Genoa"[..], &b"genoa"[..], "snp.products"),
        (
            b"INTEL-SA-00615",
            b"intel-sa-00615",
            "tdx.rejected_advisory_ids",
        ),
        (b"GH100", b"gh100", "gpu.models"),
    ] {
        let spelled = replace_once(&bytes, from, to);
        assert_eq!(
            Policy::from_canonical_bytes(&spelled),
            Err(PolicyError::NotCanonical { field }),
            "{field}"
        );
    }
    // A version with a leading zero (a string one byte longer, with its length).
    let mut p = Policy::default();
    p.gpu.min_driver_version = Some("550.90.7".into());
    let bytes = p.canonical_bytes();
    let from = [&[8 << 2][..], b"550.90.7"].concat();
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let spelled = [
        &bytes[..at],
        &[9 << 2],
        b"550.90.07",
        &bytes[at + from.len()..],
    ]
    .concat();
    assert_eq!(
        Policy::from_canonical_bytes(&spelled),
        Err(PolicyError::NotCanonical {
            field: "gpu.min_driver_version"
        })
    );

    // Wrong-length hex (encoded from a hand-built policy) is a Length error.
    let mut p = Policy::default();
    p.snp.allow_chip_ids = vec![HexBytes(vec![1; 63])];
    assert_eq!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(PolicyError::Length {
            field: "snp.allow_chip_ids",
            expected: 64,
            actual: 63
        })
    );
    let mut p = Policy::default();
    p.tdx.deny_ppids = vec![HexBytes(vec![1; 17])];
    assert!(matches!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(PolicyError::Length {
            field: "tdx.deny_ppids",
            ..
        })
    ));

    // Too many entries, too long a string: refused before allocating, and by
    // validate (so from_toml refuses them too).
    let mut p = Policy::default();
    p.snp.vmpls = (0..=u32::try_from(MAX_LIST).unwrap()).collect();
    let too_many = PolicyError::TooMany {
        field: "snp.vmpls",
        max: MAX_LIST,
        actual: MAX_LIST + 1,
    };
    assert_eq!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(too_many.clone())
    );
    assert_eq!(p.validate(), Err(too_many));
    let list: Vec<String> = (0..=MAX_LIST).map(|i| i.to_string()).collect();
    assert!(matches!(
        Policy::from_toml(&format!("[snp]\nvmpls = [{}]\n", list.join(","))),
        Err(PolicyError::TooMany { .. })
    ));
    let mut p = Policy::default();
    p.gpu.allowed_vbios_versions = vec!["9".repeat(MAX_STRING + 1)];
    assert!(matches!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(PolicyError::TooLong {
            field: "gpu.allowed_vbios_versions",
            ..
        })
    ));
    // A list length far over the cap is refused from its prefix alone.
    let mut huge = vec![1, 0];
    huge.extend([0xfe, 0xff, 0xff, 0xff]); // compact length 2^30 - 1
    assert!(matches!(
        Policy::from_canonical_bytes(&huge),
        Err(PolicyError::TooMany { field: "tees", .. })
    ));
    // An unknown TEE index.
    assert!(matches!(
        Policy::from_canonical_bytes(&[1, 0, 4, 3]),
        Err(PolicyError::Malformed { field: "tees", .. })
    ));

    // Values that fail validate.
    let p = Policy {
        tees: vec![PolicyTee::Simulated],
        ..Policy::default()
    };
    assert!(matches!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(PolicyError::Value { field: "tees", .. })
    ));
    let p = Policy {
        key_lifetime_secs: Some(0),
        ..Policy::default()
    };
    assert!(matches!(
        Policy::from_canonical_bytes(&p.canonical_bytes()),
        Err(PolicyError::Value {
            field: "key_lifetime_secs",
            ..
        })
    ));
}

#[test]
fn new_keys_bad_values_rejects() {
    for (text, field) in [
        ("tees = [\"simulated\"]", "tees"),
        ("key_lifetime_secs = 0", "key_lifetime_secs"),
        ("[gpu]\nmodels = [\"GH-100\"]", "gpu.models"),
        ("[gpu]\nmodels = [\"\"]", "gpu.models"),
    ] {
        assert!(
            matches!(Policy::from_toml(text), Err(PolicyError::Value { field: f, .. }) if f == field),
            "{text}"
        );
    }
    for (text, field) in [
        ("[snp]\nallow_chip_ids = [\"00\"]", "snp.allow_chip_ids"),
        ("[snp]\ndeny_chip_ids = [\"00\"]", "snp.deny_chip_ids"),
        ("[tdx]\nallow_fmspcs = [\"00\"]", "tdx.allow_fmspcs"),
        ("[tdx]\nfmspcs = [\"00\"]", "tdx.allow_fmspcs"),
        ("[tdx]\ndeny_fmspcs = [\"00\"]", "tdx.deny_fmspcs"),
        ("[tdx]\nallow_ppids = [\"00\"]", "tdx.allow_ppids"),
        ("[tdx]\ndeny_ppids = [\"00\"]", "tdx.deny_ppids"),
    ] {
        assert!(
            matches!(Policy::from_toml(text), Err(PolicyError::Length { field: f, .. }) if f == field),
            "{text}"
        );
    }
    assert!(matches!(
        Policy::from_toml("tees = [\"sgx\"]"),
        Err(PolicyError::Syntax(_))
    ));
    assert!(matches!(
        Policy::from_toml("[gpu]\nmin_count = -1"),
        Err(PolicyError::Syntax(_))
    ));
    // "simulated" with allow_simulated is fine.
    let p = parse("allow_simulated = true\ntees = [\"simulated\"]");
    assert_eq!(p.accepted_tees(), [PolicyTee::Simulated]);
}

#[test]
fn accepted_tees_and_check_pinned_works() {
    let d = Policy::default();
    assert_eq!(d.accepted_tees(), [PolicyTee::SevSnp, PolicyTee::Tdx]);
    assert_eq!(d.check_pinned(), Err("snp.measurements"));
    let sim = parse("allow_simulated = true");
    assert_eq!(
        sim.accepted_tees(),
        [PolicyTee::SevSnp, PolicyTee::Tdx, PolicyTee::Simulated]
    );
    let snp_only = parse("tees = [\"sev-snp\"]");
    assert_eq!(snp_only.accepted_tees(), [PolicyTee::SevSnp]);
    assert_eq!(snp_only.check_pinned(), Err("snp.measurements"));
    let snp_pinned = parse(&format!(
        "tees = [\"sev-snp\"]\n[snp]\nmeasurements = [\"{}\"]",
        h(1, 48)
    ));
    assert_eq!(snp_pinned.check_pinned(), Ok(()));
    let both_snp_pinned = parse(&format!("[snp]\nmeasurements = [\"{}\"]", h(1, 48)));
    assert_eq!(both_snp_pinned.check_pinned(), Err("tdx.mrtds"));
    let tdx_only = parse("tees = [\"tdx\"]");
    assert_eq!(tdx_only.check_pinned(), Err("tdx.mrtds"));
    let both = parse(&format!(
        "[snp]\nmeasurements = [\"{}\"]\n[tdx]\nmrtds = [\"{}\"]",
        h(1, 48),
        h(2, 48)
    ));
    assert_eq!(both.check_pinned(), Ok(()));
    let only_sim = parse("allow_simulated = true\ntees = [\"simulated\"]");
    assert_eq!(only_sim.check_pinned(), Ok(()));
    // allow_simulated with the hardware default still needs its pins.
    assert_eq!(sim.check_pinned(), Err("snp.measurements"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes never panic; whatever decodes is canonical.
    #[test]
    fn from_canonical_bytes_never_panics_works(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(p) = Policy::from_canonical_bytes(&bytes) {
            prop_assert_eq!(p.canonical_bytes(), bytes);
        }
    }

    /// Canonical bytes of a full policy with one byte changed or cut never
    /// panic; whatever still decodes is canonical.
    #[test]
    fn mutated_canonical_bytes_never_panic_works(at in any::<prop::sample::Index>(), x in 1u8..=255, cut in any::<bool>()) {
        let mut bytes = parse(&every_key_toml()).canonical_bytes();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] ^= x;
        }
        if let Ok(p) = Policy::from_canonical_bytes(&bytes) {
            prop_assert_eq!(p.canonical_bytes(), bytes);
        }
    }
}

// ---- the new rules on real evidence --------------------------------------

fn case(kind: &str, name: &str) -> Case {
    common::cases(kind)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no vector {kind}/{name}"))
}

fn pem_or_der(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(b"-----BEGIN") {
        pem::parse(&bytes).unwrap().into_contents()
    } else {
        bytes
    }
}

/// Rules named by an outcome's reasons (`policy <rule>: ...`).
fn rules(reasons: &[String]) -> Vec<&str> {
    reasons
        .iter()
        .map(|r| r.strip_prefix("policy ").unwrap_or(r))
        .map(|r| r.split(':').next().unwrap())
        .collect()
}

const SNP_BASE: &str = "[snp]\nallow_debug = true\nallow_migration_agent = true\n";

/// A real Milan report under `top` (top-level keys and other tables) plus
/// `snp_rows` in the `[snp]` table.
fn snp(
    top: &str,
    snp_rows: &str,
) -> attestation_verifier::Outcome<attestation_verifier::SnpClaims> {
    let c = case("snp", "milan-v3-oak-oc-release");
    let (report, vek, ask, ark) = (
        c.file("report.bin"),
        pem_or_der(c.file("vcek.der")),
        pem_or_der(c.file("ask.pem")),
        pem_or_der(c.file("ark.pem")),
    );
    let policy = parse(&format!("{top}\n{SNP_BASE}{snp_rows}\n"));
    let mut v = SnpVerifier::new(RustCrypto).unwrap();
    let out = check_snp(
        &mut v,
        &report,
        &SnpCollateral {
            vek: &vek,
            intermediate: Some(&ask),
            ark: Some(&ark),
            crl: None,
        },
        &policy,
        UnixTime(c.verification_time()),
    );
    assert!(out.claims.is_some());
    out
}

fn snp_with(snp_rows: &str) -> Vec<String> {
    snp("", snp_rows).reasons
}

#[test]
fn snp_chip_id_tees_and_gpu_count_on_real_report_works() {
    let base = snp("", "");
    assert!(base.accepted(), "{:?}", base.reasons);
    let chip = base.claims.unwrap().chip_id;
    assert_eq!(chip.len(), 128);
    let other = h(0xee, 64);

    assert!(snp_with(&format!("allow_chip_ids = [\"{chip}\", \"{other}\"]")).is_empty());
    assert!(snp_with(&format!("deny_chip_ids = [\"{other}\"]")).is_empty());
    assert_eq!(
        rules(&snp_with(&format!("allow_chip_ids = [\"{other}\"]"))),
        ["snp.allow_chip_ids"]
    );
    assert_eq!(
        rules(&snp_with(&format!(
            "deny_chip_ids = [\"{}\"]",
            chip.to_uppercase()
        ))),
        ["snp.deny_chip_ids"]
    );

    // tees: a report is accepted only where SEV-SNP is.
    assert!(snp("tees = [\"sev-snp\"]", "").accepted());
    assert_eq!(rules(&snp("tees = [\"tdx\"]", "").reasons), ["tees"]);
    // gpu.min_count: a CPU report on its own carries no GPU report.
    assert!(snp("[gpu]\nmin_count = 0", "").accepted());
    assert_eq!(
        rules(&snp("[gpu]\nmin_count = 1", "").reasons),
        ["gpu.min_count"]
    );
}

fn tdx(policy: &str) -> attestation_verifier::Outcome<attestation_verifier::TdxClaims> {
    let c = case("tdx", "tdx-v4-dcap-qvl-sample");
    let mut v = TdxVerifier::new(RustCrypto).unwrap();
    check_tdx(
        &mut v,
        &c.file("quote.bin"),
        &TdxCollateral::from_json(&c.file("collateral.json")).unwrap(),
        &parse(policy),
        UnixTime(c.verification_time()),
    )
}

/// `[tdx] max_collateral_age_secs` on the real quote and its real collateral, at the case's
/// verification time: the bound is exact (the age of the oldest item accepted, one second less
/// refused, naming the rule).
#[test]
fn tdx_max_collateral_age_on_real_collateral_works() {
    // The oldest item's age, found by bisection over the rule itself.
    let accepted = |max: u64| tdx(&format!("[tdx]\nmax_collateral_age_secs = {max}")).accepted();
    assert!(accepted(u64::MAX / 2));
    assert!(
        !accepted(0),
        "the collateral was issued before the verification time"
    );
    let (mut lo, mut hi) = (0u64, 10 * 365 * 86_400);
    assert!(accepted(hi));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if accepted(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let out = tdx(&format!("[tdx]\nmax_collateral_age_secs = {lo}"));
    assert!(
        out.reasons
            .iter()
            .any(|r| r.contains("tdx.max_collateral_age_secs") && r.contains(&format!("{hi} s"))),
        "{:?}",
        out.reasons
    );
}

#[test]
fn tdx_fmspc_ppid_tees_and_gpu_count_on_real_quote_works() {
    let c = case("tdx", "tdx-v4-dcap-qvl-sample");
    let facts = c.facts().unwrap();
    let fmspc = facts["fmspc"].as_str().unwrap();
    let ppid = facts["ppid"].as_str().unwrap();
    assert_eq!(ppid.len(), 32);
    let base = tdx("");
    assert!(base.accepted(), "{:?}", base.reasons);
    assert_eq!(base.claims.unwrap().fmspc.as_deref(), Some(fmspc));

    let other_fmspc = "00906ed50000";
    let other_ppid = h(0x5a, 16);
    for accepted in [
        format!(
            "[tdx]\nallow_fmspcs = [\"{}\", \"{other_fmspc}\"]",
            fmspc.to_uppercase()
        ),
        format!("[tdx]\nfmspcs = [\"{fmspc}\"]"),
        format!("[tdx]\ndeny_fmspcs = [\"{other_fmspc}\"]"),
        format!("[tdx]\nallow_ppids = [\"{ppid}\"]"),
        format!("[tdx]\ndeny_ppids = [\"{other_ppid}\"]"),
        "tees = [\"tdx\"]".to_string(),
    ] {
        let out = tdx(&accepted);
        assert!(out.accepted(), "{accepted}: {:?}", out.reasons);
    }
    for (refused, rule) in [
        (
            format!("[tdx]\nallow_fmspcs = [\"{other_fmspc}\"]"),
            "tdx.allow_fmspcs",
        ),
        (
            format!("[tdx]\nfmspcs = [\"{other_fmspc}\"]"),
            "tdx.allow_fmspcs",
        ),
        (
            format!("[tdx]\ndeny_fmspcs = [\"{fmspc}\"]"),
            "tdx.deny_fmspcs",
        ),
        (
            format!("[tdx]\nallow_ppids = [\"{other_ppid}\"]"),
            "tdx.allow_ppids",
        ),
        (
            format!("[tdx]\ndeny_ppids = [\"0x{}\"]", ppid.to_uppercase()),
            "tdx.deny_ppids",
        ),
        ("tees = [\"sev-snp\"]".to_string(), "tees"),
        ("[gpu]\nmin_count = 1".to_string(), "gpu.min_count"),
    ] {
        let out = tdx(&refused);
        assert_eq!(rules(&out.reasons), [rule], "{refused}: {:?}", out.reasons);
    }
}

fn gpu_chain(c: &Case) -> Vec<Vec<u8>> {
    split_pem_chain(std::str::from_utf8(&c.file("cert_chain.pem")).unwrap()).unwrap()
}

fn gpu_nonce(c: &Case) -> [u8; 32] {
    hex::decode(String::from_utf8(c.file("nonce.hex")).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap()
}

const GPU_BASE: &str = "[gpu]\nrim_match_required = false\n";

fn gpu(name: &str, rows: &str) -> attestation_verifier::Outcome<attestation_verifier::NvGpuClaims> {
    let c = case("nvgpu", name);
    let chain = gpu_chain(&c);
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    check_gpu(
        &mut v,
        &c.file("report.bin"),
        &NvGpuCollateral {
            cert_chain: &chain,
            ..Default::default()
        },
        &gpu_nonce(&c),
        &parse(&format!("{GPU_BASE}{rows}\n")),
        UnixTime(c.verification_time()),
    )
}

#[test]
fn gpu_models_and_confidential_mode_on_real_reports_works() {
    for name in ["hopper-nvtrust-sample", "hopper-ppcie-hgx-gpu0"] {
        let base = gpu(name, "");
        assert!(base.accepted(), "{name}: {:?}", base.reasons);
        let claims = base.claims.unwrap();
        assert_eq!(claims.chip.as_deref(), Some("GH100"), "{name}");
        assert!(gpu(name, "models = [\"GH100\", \"GB100\"]").accepted());
        assert!(gpu(name, "models = [\"gh100\"]").accepted());
        assert_eq!(
            rules(&gpu(name, "models = [\"GB100\"]").reasons),
            ["gpu.models"],
            "{name}"
        );
        let confidential = ["spt", "mpt", "ppcie"].contains(&claims.mode.as_str());
        let out = gpu(name, "require_confidential_mode = true");
        if confidential {
            assert!(out.accepted(), "{name}: {:?}", out.reasons);
        } else {
            assert_eq!(
                rules(&out.reasons),
                ["gpu.require_confidential_mode"],
                "{name}"
            );
        }
        // One report on its own is one GPU.
        assert!(gpu(name, "min_count = 1").accepted());
        assert_eq!(
            rules(&gpu(name, "min_count = 2").reasons),
            ["gpu.min_count"]
        );
    }
    // The HGX capture was taken in protected-PCIe mode: the flag names it.
    assert_eq!(
        gpu("hopper-ppcie-hgx-gpu0", "").claims.unwrap().mode,
        "ppcie"
    );
}

#[test]
fn gpu_min_count_on_real_hgx_bundle_works() {
    let cases: Vec<Case> = common::cases("nvgpu")
        .into_iter()
        .filter(|c| c.name.starts_with("hopper-ppcie-hgx-gpu"))
        .collect();
    let n = cases.len();
    assert!(n >= 5);
    let reports: Vec<Vec<u8>> = cases.iter().map(|c| c.file("report.bin")).collect();
    let chains: Vec<Vec<Vec<u8>>> = cases.iter().map(gpu_chain).collect();
    let gpus: Vec<GpuBytes<'_>> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| GpuBytes {
            report: &reports[i],
            cert_chain: &chains[i],
            nonce: gpu_nonce(c),
        })
        .collect();
    let now = UnixTime(cases[0].verification_time());
    let mut v = NvGpuVerifier::new(RustCrypto).unwrap();
    let run = |v: &mut NvGpuVerifier<RustCrypto>, rows: &str| {
        check_gpu_bundle(
            v,
            &gpus,
            &[],
            &[],
            &parse(&format!("{GPU_BASE}{rows}\n")),
            now,
        )
    };
    let at = run(
        &mut v,
        &format!("min_count = {n}\nrequire_confidential_mode = true\nmodels = [\"GH100\"]"),
    );
    assert!(at.accepted(), "{:?}", at.reasons);
    let over = run(&mut v, &format!("min_count = {}", n + 1));
    assert_eq!(
        rules(&over.reasons),
        ["gpu.min_count"],
        "{:?}",
        over.reasons
    );
}

/// The genesis policies' ids (`docs/chain.md`): any change of the encoding or
/// of a genesis policy fails here.
#[test]
fn genesis_policy_ids_works() {
    use attestation_verifier::policy::genesis;
    let ids: Vec<String> = genesis::NAMES
        .iter()
        .map(|n| hex::encode(genesis::named(n).unwrap().id()))
        .collect();
    assert_eq!(
        ids,
        [
            "395cc2432594f386179ada230c25a242b1c800a2b49e829909f1a9ab8b2e2270",
            "753eeca28027055c58ff962aed6729d5b7ea217e45c3b1f588ab27fb28b1f71a",
            "c63ae525c6801650e48470ab825685e25d49e6f9f2cc3ba042707a9cc10c249b",
        ]
    );
}

/// `[vtpm] pcrs`: parsed, canonical (sorted), round-tripped through TOML and
/// the canonical bytes; a bad index or length refused.
#[test]
fn vtpm_pcrs_policy_works() {
    let a = "aa".repeat(32);
    let b = "bb".repeat(32);
    let p = parse(&format!(
        "[vtpm]\npcrs = [{{ index = 7, sha256 = \"{b}\" }}, {{ index = 0, sha256 = \"{a}\" }}]\n"
    ));
    assert_eq!(p.vtpm.pcrs.len(), 2);
    assert_eq!(p.vtpm.pcrs[0].index, 0);
    assert_eq!(parse(&p.to_toml()).id(), p.id());
    let bytes = p.canonical_bytes();
    assert_eq!(Policy::from_canonical_bytes(&bytes).unwrap(), p);
    assert_ne!(p.id(), Policy::default().id());
}

#[test]
fn vtpm_pcrs_policy_rejects() {
    let a = "aa".repeat(32);
    for text in [
        format!("[vtpm]\npcrs = [{{ index = 24, sha256 = \"{a}\" }}]\n"),
        "[vtpm]\npcrs = [{ index = 1, sha256 = \"aa\" }]\n".to_string(),
        format!("[vtpm]\npcrs = [{{ index = 1, sha384 = \"{a}\" }}]\n"),
    ] {
        assert!(Policy::from_toml(&text).is_err(), "{text}");
    }
}

/// `[vtpm] events`: parsed, canonical (sorted), round-tripped through TOML and the
/// canonical bytes; a bad PCR or length refused.
#[test]
fn vtpm_events_policy_works() {
    let a = "aa".repeat(32);
    let b = "bb".repeat(32);
    let p = parse(&format!(
        "[vtpm]\nevents = [{{ pcr = 8, digest = \"{b}\" }}, {{ pcr = 4, digest = \"{a}\" }}, {{ pcr = 4, digest = \"{a}\" }}]\n"
    ));
    assert_eq!(p.vtpm.events.len(), 2);
    assert_eq!(p.vtpm.events[0].pcr, 4);
    assert!(p.vtpm.needs_quote());
    assert_eq!(parse(&p.to_toml()).id(), p.id());
    let bytes = p.canonical_bytes();
    assert_eq!(Policy::from_canonical_bytes(&bytes).unwrap(), p);
    assert_ne!(p.id(), Policy::default().id());
    // The last field: the default policy's bytes end with its empty list.
    assert_eq!(Policy::default().canonical_bytes().last(), Some(&0));
}

#[test]
fn vtpm_events_policy_rejects() {
    let a = "aa".repeat(32);
    for text in [
        format!("[vtpm]\nevents = [{{ pcr = 24, digest = \"{a}\" }}]\n"),
        "[vtpm]\nevents = [{ pcr = 1, digest = \"aa\" }]\n".to_string(),
        format!("[vtpm]\nevents = [{{ index = 1, digest = \"{a}\" }}]\n"),
    ] {
        assert!(Policy::from_toml(&text).is_err(), "{text}");
    }
}
