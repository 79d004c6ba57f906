//! Azure vTPM evidence as Trustee's `az-snp-vtpm` / `az-tdx-vtpm` attesters
//! write it (JSON), so that `sigil-verify azure-vtpm` reads what other tools
//! produce.
//!
//! ```text
//! format 0 (no "version"), SEV-SNP:  {"quote": Q, "report": [u8], "vcek": "PEM"}
//! format 0, TDX:                     {"tpm_quote": Q, "hcl_report": [u8], "td_quote": [u8]}
//! format 1 ("version": 1):           {"version": 1, "tpm_quote": Q, "hcl_report": b64url,
//!                                     "vcek": b64 DER (SEV-SNP) | "td_quote": b64url (TDX)}
//! Q (a TPM quote, also a file of its own):
//!                                    {"signature": S, "message": S, "pcrs": [S]}
//!                                    S = a byte array (format 0) or hex (format 1)
//! ```
//!
//! `message` is the marshaled `TPMS_ATTEST`, `signature` the raw RSA
//! signature (not a `TPMT_SIGNATURE`), `pcrs` the SHA-256 values of the quoted
//! PCRs in selection order. Parsing does no cryptography.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Deserialize;

/// Largest evidence JSON accepted.
pub const MAX_EVIDENCE_JSON_LEN: usize = 1 << 20;

/// Why Trustee vTPM evidence could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VtpmEvidenceError {
    /// Longer than [`MAX_EVIDENCE_JSON_LEN`].
    #[error("vTPM evidence JSON is {0} bytes, more than the {MAX_EVIDENCE_JSON_LEN} allowed")]
    TooLong(usize),
    /// Not JSON of the expected shape.
    #[error("vTPM evidence is not valid JSON of a known format: {0}")]
    Json(String),
    /// A `"version"` this parser does not know.
    #[error("vTPM evidence format version {0} is not supported (0 and 1 are)")]
    Version(u64),
    /// A required member is missing.
    #[error("vTPM evidence has no {0:?}")]
    Missing(&'static str),
    /// A member is not the encoding its format uses.
    #[error("vTPM evidence member {member:?} is not {encoding}")]
    Encoding {
        /// The member.
        member: &'static str,
        /// What it should be.
        encoding: &'static str,
    },
    /// Both or neither of `vcek` and `td_quote`.
    #[error("vTPM evidence must carry exactly one hardware report's material (vcek or td_quote)")]
    Hardware,
}

/// A TPM quote as Trustee carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VtpmQuoteParts {
    /// The marshaled `TPMS_ATTEST`.
    pub attest: Vec<u8>,
    /// The raw RSA signature over it.
    pub signature: Vec<u8>,
    /// The quoted PCR values, in selection order.
    pub pcrs: Vec<Vec<u8>>,
}

/// What vouches for the HCL report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VtpmHardware {
    /// SEV-SNP: the report is inside the HCL report; the VCEK (DER) comes along.
    Snp {
        /// The VCEK, DER.
        vcek: Vec<u8>,
    },
    /// TDX: the TD quote whose REPORT_DATA binds the runtime claims.
    Tdx {
        /// The TD quote.
        td_quote: Vec<u8>,
    },
}

/// Trustee vTPM evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VtpmEvidence {
    /// The format: 0 (byte arrays) or 1 (hex / base64url).
    pub format: u64,
    /// The TPM quote.
    pub tpm_quote: VtpmQuoteParts,
    /// The HCL report.
    pub hcl_report: Vec<u8>,
    /// The hardware report's material.
    pub hardware: VtpmHardware,
}

/// A byte string as either format writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum ByteField {
    Array(Vec<u8>),
    Text(String),
}

#[derive(Deserialize)]
struct RawQuote {
    signature: ByteField,
    message: ByteField,
    pcrs: Vec<ByteField>,
}

#[derive(Deserialize)]
struct RawEvidence {
    version: Option<u64>,
    quote: Option<RawQuote>,
    tpm_quote: Option<RawQuote>,
    report: Option<ByteField>,
    hcl_report: Option<ByteField>,
    vcek: Option<String>,
    td_quote: Option<ByteField>,
}

fn json_err(e: &serde_json::Error) -> VtpmEvidenceError {
    VtpmEvidenceError::Json(e.to_string())
}

fn hex_or_array(member: &'static str, f: ByteField) -> Result<Vec<u8>, VtpmEvidenceError> {
    match f {
        ByteField::Array(v) => Ok(v),
        ByteField::Text(s) => hex::decode(s.trim()).map_err(|_| VtpmEvidenceError::Encoding {
            member,
            encoding: "hex",
        }),
    }
}

/// Base64 in either alphabet, padded or not, whitespace ignored.
fn base64_any(member: &'static str, s: &str) -> Result<Vec<u8>, VtpmEvidenceError> {
    use base64ct::Encoding;
    let clean: String = s
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .collect();
    base64ct::Base64UrlUnpadded::decode_vec(&clean)
        .or_else(|_| base64ct::Base64Unpadded::decode_vec(&clean))
        .map_err(|_| VtpmEvidenceError::Encoding {
            member,
            encoding: "base64",
        })
}

fn b64_or_array(member: &'static str, f: ByteField) -> Result<Vec<u8>, VtpmEvidenceError> {
    match f {
        ByteField::Array(v) => Ok(v),
        ByteField::Text(s) => base64_any(member, &s),
    }
}

/// The DER inside a PEM certificate, or the base64 DER itself.
fn certificate(s: &str) -> Result<Vec<u8>, VtpmEvidenceError> {
    let body: String = if s.contains("-----BEGIN") {
        s.lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect()
    } else {
        s.into()
    };
    base64_any("vcek", &body)
}

fn quote(raw: RawQuote) -> Result<VtpmQuoteParts, VtpmEvidenceError> {
    Ok(VtpmQuoteParts {
        attest: hex_or_array("message", raw.message)?,
        signature: hex_or_array("signature", raw.signature)?,
        pcrs: raw
            .pcrs
            .into_iter()
            .map(|p| hex_or_array("pcrs", p))
            .collect::<Result<_, _>>()?,
    })
}

/// Parses a TPM quote file (`{"signature", "message", "pcrs"}`, hex or byte arrays).
pub fn parse_vtpm_quote_json(json: &[u8]) -> Result<VtpmQuoteParts, VtpmEvidenceError> {
    if json.len() > MAX_EVIDENCE_JSON_LEN {
        return Err(VtpmEvidenceError::TooLong(json.len()));
    }
    quote(serde_json::from_slice(json).map_err(|e| json_err(&e))?)
}

/// Parses Trustee's `az-snp-vtpm` or `az-tdx-vtpm` evidence, format 0 or 1.
pub fn parse_vtpm_evidence_json(json: &[u8]) -> Result<VtpmEvidence, VtpmEvidenceError> {
    if json.len() > MAX_EVIDENCE_JSON_LEN {
        return Err(VtpmEvidenceError::TooLong(json.len()));
    }
    let raw: RawEvidence = serde_json::from_slice(json).map_err(|e| json_err(&e))?;
    let format = raw.version.unwrap_or(0);
    if format > 1 {
        return Err(VtpmEvidenceError::Version(format));
    }
    let q = raw
        .tpm_quote
        .or(raw.quote)
        .ok_or(VtpmEvidenceError::Missing("tpm_quote"))?;
    let hcl = raw
        .hcl_report
        .or(raw.report)
        .ok_or(VtpmEvidenceError::Missing("hcl_report"))?;
    let hardware = match (raw.vcek, raw.td_quote) {
        (Some(v), None) => VtpmHardware::Snp {
            vcek: certificate(&v)?,
        },
        (None, Some(t)) => VtpmHardware::Tdx {
            td_quote: b64_or_array("td_quote", t)?,
        },
        _ => return Err(VtpmEvidenceError::Hardware),
    };
    Ok(VtpmEvidence {
        format,
        tpm_quote: quote(q)?,
        hcl_report: b64_or_array("hcl_report", hcl)?,
        hardware,
    })
}
