//! TDX collateral: the PCK CRL and root CA CRL, the signed TCB Info and QE Identity,
//! and the certificate chains that sign them.
//!
//! Loaded from the bundle layout `dcap-qvl` calls `QuoteCollateralV3` (JSON: PEM
//! chains and JSON documents as strings, CRLs and signatures as hex), or from the
//! raw Intel PCS / PCCS responses. Nothing here is verified: [`super::TdxVerifier`]
//! checks every signature and date.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::time::UnixTime;
use crate::verify::x509::Crl;

use super::tcb::TcbStatus;

/// Why collateral could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollateralError {
    /// A document is not valid JSON of the expected shape.
    #[error("{what} is not valid: {reason}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A field has a value outside its domain.
    #[error("{what} field {field}: {reason}")]
    Field {
        /// Which document.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A TCB Info or QE Identity of another kind than TDX needs.
    #[error("{what} is {id} version {version}, expected {expected}")]
    Kind {
        /// Which document.
        what: &'static str,
        /// Its `id`.
        id: String,
        /// Its `version`.
        version: u32,
        /// What a TDX quote needs.
        expected: &'static str,
    },
}

fn json_err(what: &'static str, e: serde_json::Error) -> CollateralError {
    CollateralError::Json {
        what,
        reason: e.to_string(),
    }
}

/// The collateral items, as supplied (owned bytes; nothing checked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxCollateralParts {
    /// PEM: the PCK CA that issued the PCK CRL, then the root.
    pub pck_crl_issuer_chain: Vec<u8>,
    /// DER: the Intel SGX Root CA CRL.
    pub root_ca_crl: Vec<u8>,
    /// DER: the PCK (Platform or Processor) CA CRL.
    pub pck_crl: Vec<u8>,
    /// PEM: the TCB signing certificate, then the root.
    pub tcb_info_issuer_chain: Vec<u8>,
    /// The `tcbInfo` JSON object, byte for byte as signed.
    pub tcb_info: Vec<u8>,
    /// ECDSA P-256 signature over `tcb_info` (`r || s`).
    pub tcb_info_signature: Vec<u8>,
    /// PEM: the QE Identity signing certificate, then the root.
    pub qe_identity_issuer_chain: Vec<u8>,
    /// The `enclaveIdentity` JSON object, byte for byte as signed.
    pub qe_identity: Vec<u8>,
    /// ECDSA P-256 signature over `qe_identity` (`r || s`).
    pub qe_identity_signature: Vec<u8>,
}

/// A collateral bundle with its content hash (the key of the verified-collateral cache).
///
/// Immutable once built, so the hash always describes the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxCollateral {
    parts: TdxCollateralParts,
    digest: [u8; 32],
}

/// Raw Intel PCS / PCCS responses: bodies and the issuer-chain headers (URL-decoded).
#[derive(Clone, Copy, Debug)]
pub struct PcsResponses<'a> {
    /// `GET /sgx/certification/v4/pckcrl?ca=..&encoding=der` body.
    pub pck_crl: &'a [u8],
    /// Its `SGX-PCK-CRL-Issuer-Chain` header.
    pub pck_crl_issuer_chain: &'a [u8],
    /// The root CA CRL (DER).
    pub root_ca_crl: &'a [u8],
    /// `GET /tdx/certification/v4/tcb?fmspc=..` body: `{"tcbInfo":..,"signature":".."}`.
    pub tcb_info: &'a [u8],
    /// Its `TCB-Info-Issuer-Chain` header.
    pub tcb_info_issuer_chain: &'a [u8],
    /// `GET /tdx/certification/v4/qe/identity` body: `{"enclaveIdentity":..,"signature":".."}`.
    pub qe_identity: &'a [u8],
    /// Its `SGX-Enclave-Identity-Issuer-Chain` header.
    pub qe_identity_issuer_chain: &'a [u8],
}

/// Bytes in the bundle JSON: a hex string, or an array of numbers (serde's
/// default for byte vectors).
#[derive(Deserialize)]
#[serde(untagged)]
enum ByteField {
    Hex(String),
    Array(Vec<u8>),
}

impl ByteField {
    fn into_bytes(self, field: &'static str) -> Result<Vec<u8>, CollateralError> {
        match self {
            Self::Array(v) => Ok(v),
            Self::Hex(s) => hex::decode(s.trim()).map_err(|e| CollateralError::Field {
                what: "collateral",
                field,
                reason: format!("not hex: {e}"),
            }),
        }
    }
}

#[derive(Deserialize)]
struct BundleJson {
    pck_crl_issuer_chain: String,
    root_ca_crl: ByteField,
    pck_crl: ByteField,
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: ByteField,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: ByteField,
    #[serde(default)]
    #[allow(dead_code)] // accepted for compatibility; the PCK chain comes from the quote
    pck_certificate_chain: Option<String>,
}

#[derive(Serialize)]
struct BundleJsonOut<'a> {
    pck_crl_issuer_chain: &'a str,
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: &'a str,
    tcb_info: &'a str,
    tcb_info_signature: String,
    qe_identity_issuer_chain: &'a str,
    qe_identity: &'a str,
    qe_identity_signature: String,
}

#[derive(Deserialize)]
struct SignedTcbInfo<'a> {
    #[serde(rename = "tcbInfo", borrow)]
    tcb_info: &'a serde_json::value::RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct SignedQeIdentity<'a> {
    #[serde(rename = "enclaveIdentity", borrow)]
    enclave_identity: &'a serde_json::value::RawValue,
    signature: String,
}

fn text<'a>(what: &'static str, b: &'a [u8]) -> Result<&'a str, CollateralError> {
    core::str::from_utf8(b).map_err(|_| CollateralError::Json {
        what,
        reason: "not UTF-8".into(),
    })
}

fn signature_hex(what: &'static str, s: &str) -> Result<Vec<u8>, CollateralError> {
    hex::decode(s.trim()).map_err(|e| CollateralError::Field {
        what,
        field: "signature",
        reason: format!("not hex: {e}"),
    })
}

impl TdxCollateral {
    /// Wraps supplied items, hashing them for the verified-collateral cache.
    pub fn new(parts: TdxCollateralParts) -> Self {
        let digest = Self::hash(&parts);
        Self { parts, digest }
    }

    fn hash(p: &TdxCollateralParts) -> [u8; 32] {
        // Domain-separated, length-prefixed concatenation of every item.
        let mut h = sha2::Sha256::new();
        h.update(b"sigil.tdx.collateral.v1");
        for part in [
            &p.pck_crl_issuer_chain,
            &p.root_ca_crl,
            &p.pck_crl,
            &p.tcb_info_issuer_chain,
            &p.tcb_info,
            &p.tcb_info_signature,
            &p.qe_identity_issuer_chain,
            &p.qe_identity,
            &p.qe_identity_signature,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    /// Reads the bundle JSON (`dcap-qvl`'s `QuoteCollateralV3` layout).
    pub fn from_json(json: &[u8]) -> Result<Self, CollateralError> {
        let b: BundleJson =
            serde_json::from_slice(json).map_err(|e| json_err("collateral JSON", e))?;
        Ok(Self::new(TdxCollateralParts {
            pck_crl_issuer_chain: b.pck_crl_issuer_chain.into_bytes(),
            root_ca_crl: b.root_ca_crl.into_bytes("root_ca_crl")?,
            pck_crl: b.pck_crl.into_bytes("pck_crl")?,
            tcb_info_issuer_chain: b.tcb_info_issuer_chain.into_bytes(),
            tcb_info: b.tcb_info.into_bytes(),
            tcb_info_signature: b.tcb_info_signature.into_bytes("tcb_info_signature")?,
            qe_identity_issuer_chain: b.qe_identity_issuer_chain.into_bytes(),
            qe_identity: b.qe_identity.into_bytes(),
            qe_identity_signature: b
                .qe_identity_signature
                .into_bytes("qe_identity_signature")?,
        }))
    }

    /// Builds the bundle from raw PCS / PCCS responses. The signed JSON objects are
    /// cut out of the response bodies byte for byte (never re-serialised).
    pub fn from_pcs(r: &PcsResponses<'_>) -> Result<Self, CollateralError> {
        let tcb: SignedTcbInfo<'_> = serde_json::from_str(text("TCB Info response", r.tcb_info)?)
            .map_err(|e| json_err("TCB Info response", e))?;
        let qe: SignedQeIdentity<'_> =
            serde_json::from_str(text("QE Identity response", r.qe_identity)?)
                .map_err(|e| json_err("QE Identity response", e))?;
        Ok(Self::new(TdxCollateralParts {
            pck_crl_issuer_chain: r.pck_crl_issuer_chain.to_vec(),
            root_ca_crl: r.root_ca_crl.to_vec(),
            pck_crl: r.pck_crl.to_vec(),
            tcb_info_issuer_chain: r.tcb_info_issuer_chain.to_vec(),
            tcb_info: tcb.tcb_info.get().as_bytes().to_vec(),
            tcb_info_signature: signature_hex("TCB Info response", &tcb.signature)?,
            qe_identity_issuer_chain: r.qe_identity_issuer_chain.to_vec(),
            qe_identity: qe.enclave_identity.get().as_bytes().to_vec(),
            qe_identity_signature: signature_hex("QE Identity response", &qe.signature)?,
        }))
    }

    /// Writes the bundle JSON (the layout [`TdxCollateral::from_json`] reads).
    pub fn to_json(&self) -> Result<String, CollateralError> {
        let p = &self.parts;
        let out = BundleJsonOut {
            pck_crl_issuer_chain: text("PCK CRL issuer chain", &p.pck_crl_issuer_chain)?,
            root_ca_crl: hex::encode(&p.root_ca_crl),
            pck_crl: hex::encode(&p.pck_crl),
            tcb_info_issuer_chain: text("TCB Info issuer chain", &p.tcb_info_issuer_chain)?,
            tcb_info: text("TCB Info", &p.tcb_info)?,
            tcb_info_signature: hex::encode(&p.tcb_info_signature),
            qe_identity_issuer_chain: text(
                "QE Identity issuer chain",
                &p.qe_identity_issuer_chain,
            )?,
            qe_identity: text("QE Identity", &p.qe_identity)?,
            qe_identity_signature: hex::encode(&p.qe_identity_signature),
        };
        serde_json::to_string_pretty(&out).map_err(|e| json_err("collateral JSON", e))
    }

    /// The items.
    pub fn parts(&self) -> &TdxCollateralParts {
        &self.parts
    }

    /// SHA-256 over every item (domain-separated, length-prefixed).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The earliest `nextUpdate` of the TCB Info, QE Identity and both CRLs, read
    /// without verifying anything (to decide when cached collateral must be refetched).
    pub fn next_update(&self) -> Result<UnixTime, CollateralError> {
        let p = &self.parts;
        let tcb = DatesJson::parse("TCB Info", &p.tcb_info)?;
        let qe = DatesJson::parse("QE Identity", &p.qe_identity)?;
        let mut earliest = tcb.min(qe);
        for (what, der) in [("root CA CRL", &p.root_ca_crl), ("PCK CRL", &p.pck_crl)] {
            let crl = Crl::from_der(what, der).map_err(|e| CollateralError::Json {
                what,
                reason: e.to_string(),
            })?;
            earliest = earliest.min(crl.window().not_after);
        }
        Ok(earliest)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatesJson {
    next_update: String,
}

impl DatesJson {
    fn parse(what: &'static str, json: &[u8]) -> Result<UnixTime, CollateralError> {
        let d: Self = serde_json::from_slice(json).map_err(|e| json_err(what, e))?;
        parse_time(&d.next_update).ok_or_else(|| CollateralError::Field {
            what,
            field: "nextUpdate",
            reason: format!("{:?} is not an RFC 3339 UTC time", d.next_update),
        })
    }
}

/// Parses the RFC 3339 UTC times Intel writes (`2025-06-19T10:16:03Z`, optionally
/// with fractional seconds or a `+00:00` offset). Hand-written: the core has no
/// date crate.
pub(crate) fn parse_time(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u64> {
        let digits = b.get(from..from.checked_add(len)?)?;
        digits.iter().try_fold(0u64, |acc, d| {
            d.is_ascii_digit().then(|| {
                acc.checked_mul(10)?
                    .checked_add(u64::from(d.wrapping_sub(b'0')))
            })?
        })
    };
    let sep = |i: usize, c: u8| b.get(i).is_some_and(|x| *x == c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && (sep(10, b'T') || sep(10, b't'))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = b.get(19..)?;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    if !(rest == b"Z" || rest == b"z" || rest == b"+00:00" || rest == b"-00:00") {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(hour.checked_mul(3600)?)?
        .checked_add(minute.checked_mul(60)?)?
        .checked_add(second)?;
    Some(UnixTime(secs))
}

const fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y.checked_sub(era.checked_mul(400)?)?;
    let mp = if month > 2 {
        month.checked_sub(3)?
    } else {
        month.checked_add(9)?
    };
    let doy = (153u64.checked_mul(mp)?.checked_add(2)? / 5)
        .checked_add(day)?
        .checked_sub(1)?;
    let doe = yoe
        .checked_mul(365)?
        .checked_add(yoe / 4)?
        .checked_sub(yoe / 100)?
        .checked_add(doy)?;
    era.checked_mul(146_097)?
        .checked_add(doe)?
        .checked_sub(719_468)
}

/// Hex of `len` bytes (either case) into a fixed array.
pub(crate) fn hex_array<const N: usize>(
    what: &'static str,
    field: &'static str,
    s: &str,
) -> Result<[u8; N], CollateralError> {
    let v = hex::decode(s).map_err(|e| CollateralError::Field {
        what,
        field,
        reason: format!("not hex: {e}"),
    })?;
    v.as_slice().try_into().map_err(|_| CollateralError::Field {
        what,
        field,
        reason: format!("{} bytes, expected {N}", v.len()),
    })
}

/// Reads a TCB status as Intel spells it in TCB Info and QE Identity.
pub(crate) fn status(what: &'static str, s: &str) -> Result<TcbStatus, CollateralError> {
    TcbStatus::from_collateral_name(s).ok_or_else(|| CollateralError::Field {
        what,
        field: "tcbStatus",
        reason: format!("unknown status {s:?}"),
    })
}

/// Reads an RFC 3339 date field.
pub(crate) fn date(
    what: &'static str,
    field: &'static str,
    s: &str,
) -> Result<UnixTime, CollateralError> {
    parse_time(s).ok_or_else(|| CollateralError::Field {
        what,
        field,
        reason: format!("{s:?} is not an RFC 3339 UTC time"),
    })
}
