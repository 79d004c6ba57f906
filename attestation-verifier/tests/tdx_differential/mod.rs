//! The relation between this crate's TDX verification and `dcap-qvl` 0.7.1's (ring
//! backend) on the same quote bytes and collateral, shared by
//! `tests/dcap_qvl_differential.rs` and the `tdx_quote_differential` fuzz target (which
//! includes this file by path):
//! - whenever this crate accepts, `dcap-qvl` accepts too, with the same TCB status,
//!   advisories, QE and platform statuses, PPID and TD report fields;
//! - whenever `dcap-qvl` accepts and this crate refuses, the refusal is one of the
//!   [`Deliberate`] differences, recognised by its typed error.
//!
//! "Accepts" for this crate is the verifier plus [`policy`]: the default TD attribute
//! rules and every TCB status but `Revoked`, since `dcap-qvl` checks the TD attributes
//! inside verification and leaves statuses other than `Revoked` to its caller.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests; each includer uses part of it

use std::collections::BTreeMap;

use attestation_verifier::crypto::Crypto;
use attestation_verifier::evidence::tdx::{PemError, TdBodyType, TdxParseError, parse_tdx_quote};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{
    TcbStatus, TdxCollateral, TdxEvidence, TdxVerifier, TdxVerifyError,
};
use attestation_verifier::verify::x509::X509Error;
use attestation_verifier::{Verdict, Verified};
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::Report;
use dcap_qvl::verify::VerifiedReport;

/// Where this crate deliberately refuses a quote that `dcap-qvl` 0.7.1 accepts. Each is
/// recognised by the typed error this crate gives; any other refusal of a quote
/// `dcap-qvl` accepts breaks the relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deliberate {
    /// An SGX enclave quote: this is a TDX verifier (`TdxParseError::NotTdx`), while
    /// `dcap-qvl` verifies SGX quotes too.
    SgxQuote,
    /// A root certificate supplied in the quote's PCK chain must be the pinned Intel root,
    /// byte for byte (`UntrustedRoot`, or the supplied root's PEM or DER failing to decode):
    /// a copy differing in any byte is a root nobody checked. `dcap-qvl` builds the path
    /// to its own anchor and never reads the supplied root.
    SuppliedRoot,
    /// The PCK chain must be exactly the PCK certificate, its CA and optionally the root
    /// (`ChainLength`); `dcap-qvl` takes the first certificate as the leaf and ignores
    /// certificates its path does not use.
    PckChainShape,
    /// The quote's certification data must declare type 6 (QE report certification data,
    /// `CertificationDataType`); `dcap-qvl` reads it as type 6 whatever the field says.
    CertificationDataType,
    /// The PCK chain's PEM must be plain: UTF-8 text, certificate blocks of base64 and ASCII
    /// whitespace, no PEM boundary outside them and no headers (`PemError`). `dcap-qvl`'s
    /// `pem` reader skips bytes outside blocks (including a block whose BEGIN or END line is
    /// damaged, which it drops with the certificate), reads RFC 1421 headers, and drops any
    /// Unicode whitespace from the base64.
    StrictPem,
}

const CHAIN: &str = "PCK certificate chain";

impl Deliberate {
    /// The deliberate difference that explains every one of `ours`'s refusals, if any.
    pub fn of(ours: &Ours) -> Option<Self> {
        match ours {
            Ours::Parse(TdxParseError::NotTdx { tee: "SGX", .. }) => Some(Self::SgxQuote),
            Ours::Parse(TdxParseError::CertificationDataType { what: "quote", .. }) => {
                Some(Self::CertificationDataType)
            }
            Ours::Parse(TdxParseError::Pem(_)) => Some(Self::StrictPem),
            Ours::Verify(errors) => {
                let mut kinds = errors.iter().map(Self::of_error);
                let first = kinds.next().flatten()?;
                kinds.all(|k| k == Some(first)).then_some(first)
            }
            _ => None,
        }
    }

    fn of_error(e: &TdxVerifyError) -> Option<Self> {
        match e {
            TdxVerifyError::UntrustedRoot { what: CHAIN } => Some(Self::SuppliedRoot),
            // The supplied root (block 2) is decoded only when its text is not the pinned
            // root's; the leaf and CA are decoded under their own names.
            TdxVerifyError::Pem {
                what: CHAIN,
                source: PemError::Base64(2),
            } => Some(Self::SuppliedRoot),
            TdxVerifyError::Certificate(
                X509Error::Malformed { what: CHAIN, .. }
                | X509Error::UnsupportedAlgorithm { what: CHAIN, .. },
            ) => Some(Self::SuppliedRoot),
            TdxVerifyError::ChainLength { what: CHAIN, .. } => Some(Self::PckChainShape),
            TdxVerifyError::Pem { what: CHAIN, .. } => Some(Self::StrictPem),
            _ => None,
        }
    }
}

/// This crate's outcome for one input.
pub enum Ours {
    Accepted(Box<Verified<TdxEvidence>>),
    Parse(TdxParseError),
    Verify(Vec<TdxVerifyError>),
    Policy(Vec<String>),
}

impl Ours {
    pub fn describe(&self) -> String {
        match self {
            Self::Accepted(ev) => format!("accepts ({})", ev.tcb_status.name()),
            Self::Parse(e) => format!("parse error: {e} [{e:?}]"),
            Self::Verify(es) => {
                let list: Vec<String> = es.iter().map(|e| format!("{e} [{e:?}]")).collect();
                format!("verification failed: {}", list.join("; "))
            }
            Self::Policy(v) => format!("policy rejects: {}", v.join("; ")),
        }
    }
}

/// The default TD attribute rules, every TCB status but `Revoked`.
pub fn policy() -> Policy {
    let mut p = Policy::default();
    p.tdx.accepted_tcb_statuses = TcbStatus::ALL
        .into_iter()
        .filter(|s| *s != TcbStatus::Revoked)
        .map(|s| s.name().to_string())
        .collect();
    p
}

pub fn ours<C: Crypto>(
    verifier: &mut TdxVerifier<C>,
    quote: &[u8],
    collateral: &TdxCollateral,
    policy: &Policy,
    now: u64,
) -> Ours {
    let parsed = match parse_tdx_quote(quote) {
        Ok(q) => q,
        Err(e) => return Ours::Parse(e),
    };
    match verifier.verify(&parsed, collateral, UnixTime(now)) {
        Err(f) => Ours::Verify(f.0),
        Ok(ev) => match policy.evaluate_tdx(&ev) {
            Verdict::Accept => Ours::Accepted(Box::new(ev)),
            Verdict::Reject(v) => Ours::Policy(
                v.iter()
                    .map(|v| format!("{}: {}", v.rule, v.detail))
                    .collect(),
            ),
        },
    }
}

/// The same collateral in `dcap-qvl`'s layout (its `QuoteCollateralV3` JSON is the
/// bundle's).
pub fn reference_collateral(c: &TdxCollateral) -> QuoteCollateralV3 {
    let p = c.parts();
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    QuoteCollateralV3 {
        pck_crl_issuer_chain: s(&p.pck_crl_issuer_chain),
        root_ca_crl: p.root_ca_crl.clone(),
        pck_crl: p.pck_crl.clone(),
        tcb_info_issuer_chain: s(&p.tcb_info_issuer_chain),
        tcb_info: s(&p.tcb_info),
        tcb_info_signature: p.tcb_info_signature.clone(),
        qe_identity_issuer_chain: s(&p.qe_identity_issuer_chain),
        qe_identity: s(&p.qe_identity),
        qe_identity_signature: p.qe_identity_signature.clone(),
        pck_certificate_chain: None,
    }
}

fn h(b: impl AsRef<[u8]>) -> String {
    b.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

/// The differences between what each verifier reports for an accepted quote, empty when
/// they agree on every field both expose.
pub fn compare(ev: &TdxEvidence, r: &VerifiedReport) -> Vec<String> {
    let mut d = Vec::new();
    let mut eq = |what: &str, ours: String, theirs: String| {
        if ours != theirs {
            d.push(format!("{what}: ours {ours}, dcap-qvl {theirs}"));
        }
    };
    eq("TCB status", ev.tcb_status.name().into(), r.status.clone());
    eq(
        "advisories",
        format!("{:?}", ev.advisory_ids),
        format!("{:?}", r.advisory_ids),
    );
    eq(
        "QE TCB status",
        ev.qe_tcb_status.name().into(),
        r.qe_status.status.to_string(),
    );
    eq(
        "platform TCB status",
        ev.platform_tcb_status.name().into(),
        r.platform_status.status.to_string(),
    );
    eq("PPID", h(&ev.pck.ppid), h(&r.ppid));
    let (kind, base, td15) = match &r.report {
        Report::TD10(b) => (TdBodyType::Td10, b, None),
        Report::TD15(t) => (TdBodyType::Td15, &t.base, Some(t)),
        Report::TD15Ex(t) => (TdBodyType::Td15Ex, &t.base.base, Some(&t.base)),
        Report::SgxEnclave(_) => {
            eq("report kind", format!("{:?}", ev.body_type), "SGX".into());
            return d;
        }
    };
    eq(
        "body type",
        format!("{:?}", ev.body_type),
        format!("{kind:?}"),
    );
    let b = &ev.body;
    eq("TEE_TCB_SVN", h(b.tee_tcb_svn), h(base.tee_tcb_svn));
    eq("MRSEAM", h(b.mr_seam), h(base.mr_seam));
    eq("MRSIGNERSEAM", h(b.mr_signer_seam), h(base.mr_signer_seam));
    eq(
        "SEAMATTRIBUTES",
        h(b.seam_attributes),
        h(base.seam_attributes),
    );
    eq(
        "TDATTRIBUTES",
        h(b.td_attributes_raw),
        h(base.td_attributes),
    );
    eq("XFAM", h(b.xfam), h(base.xfam));
    eq("MRTD", h(b.mr_td), h(base.mr_td));
    eq("MRCONFIGID", h(b.mr_config_id), h(base.mr_config_id));
    eq("MROWNER", h(b.mr_owner), h(base.mr_owner));
    eq(
        "MROWNERCONFIG",
        h(b.mr_owner_config),
        h(base.mr_owner_config),
    );
    eq("RTMR0", h(b.rtmr[0]), h(base.rt_mr0));
    eq("RTMR1", h(b.rtmr[1]), h(base.rt_mr1));
    eq("RTMR2", h(b.rtmr[2]), h(base.rt_mr2));
    eq("RTMR3", h(b.rtmr[3]), h(base.rt_mr3));
    eq("REPORTDATA", h(b.report_data), h(base.report_data));
    eq(
        "TEE_TCB_SVN2",
        b.td15
            .as_ref()
            .map(|t| h(t.tee_tcb_svn2))
            .unwrap_or_default(),
        td15.map(|t| h(t.tee_tcb_svn2)).unwrap_or_default(),
    );
    eq(
        "MRSERVICETD",
        b.td15
            .as_ref()
            .map(|t| h(t.mr_service_td))
            .unwrap_or_default(),
        td15.map(|t| h(t.mr_service_td)).unwrap_or_default(),
    );
    if let Report::TD15Ex(t) = &r.report {
        use parity_scale_codec::Encode;
        // The 1.5ex fields after the TD 1.5 report, in their quote layout (SCALE encodes
        // byte arrays and a `u8` as themselves).
        let full = t.encode();
        let base_len = t.base.encode().len();
        eq(
            "TD 1.5ex fields",
            b.td15_ex.as_ref().map(|x| h(&x.raw)).unwrap_or_default(),
            h(&full[base_len..]),
        );
    }
    d
}

/// How the two verifiers agreed on one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Agreement {
    BothAccept,
    BothReject,
    Deliberate(Deliberate),
}

/// Both verifiers on one input at `now`: how they agree, or why the relation fails.
pub fn relation<C: Crypto>(
    verifier: &mut TdxVerifier<C>,
    policy: &Policy,
    collateral: &TdxCollateral,
    reference: &QuoteCollateralV3,
    now: u64,
    quote: &[u8],
) -> Result<Agreement, String> {
    let o = ours(verifier, quote, collateral, policy, now);
    let r = dcap_qvl::verify::ring::verify(quote, reference, now);
    match (&o, &r) {
        (Ours::Accepted(ev), Ok(report)) => {
            let d = compare(ev, report);
            if d.is_empty() {
                Ok(Agreement::BothAccept)
            } else {
                Err(format!(
                    "both accept, reporting differently: {}",
                    d.join("; ")
                ))
            }
        }
        (Ours::Accepted(_), Err(e)) => {
            Err(format!("ours {}, dcap-qvl rejects: {e:#}", o.describe()))
        }
        (_, Ok(report)) => Deliberate::of(&o)
            .map(Agreement::Deliberate)
            .ok_or_else(|| {
                format!(
                    "dcap-qvl accepts ({}), ours refuses with no deliberate difference: {}",
                    report.status,
                    o.describe()
                )
            }),
        (_, Err(_)) => Ok(Agreement::BothReject),
    }
}

/// Counts of [`Agreement`]s.
#[derive(Default, Debug)]
pub struct Tally(pub BTreeMap<Agreement, usize>);

impl Tally {
    pub fn add(&mut self, a: Agreement) {
        *self.0.entry(a).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, n) in &other.0 {
            *self.0.entry(*a).or_default() += n;
        }
    }

    pub fn get(&self, a: Agreement) -> usize {
        self.0.get(&a).copied().unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}
