//! Intel TDX DCAP quotes, versions 4 and 5 ("Intel TDX DCAP Quoting Library API",
//! appendix "Quote Format"; TDX module ABI specification for the TD report bodies).
//!
//! Layout of what is parsed:
//!
//! ```text
//! header (48) | [v5: body type u16, body size u32] | TD report body (584 / 648 / 885)
//! | signature data length u32 | signature data:
//!     ECDSA signature (64) | attestation key (64)
//!     | certification data: type u16 (= 6) | size u32 | QE report certification data:
//!         QE report (384) | QE report signature (64) | QE auth data: size u16 | data
//!         | certification data: type u16 (= 5) | size u32 | PCK certificate chain (PEM)
//! ```
//!
//! Hand-written because the reference parser (`dcap-qvl`, used in this crate's
//! differential tests) is published with a crate type that breaks `no_std` and
//! `wasm32` builds, and this parser must run inside the chain runtime. Total: any
//! byte string yields a quote or a typed error, never a panic.

use alloc::vec::Vec;

use super::Bytes;

/// Size of the quote header.
pub const HEADER_LEN: usize = 48;
/// Size of a TDX 1.0 TD report body.
pub const TD_REPORT10_LEN: usize = 584;
/// Size of a TDX 1.5 TD report body.
pub const TD_REPORT15_LEN: usize = 648;
/// Size of a TDX 1.5 "extended" TD report body (quote v5, body type 4).
pub const TD_REPORT15_EX_LEN: usize = 885;
/// Size of an SGX enclave report (the QE report).
pub const ENCLAVE_REPORT_LEN: usize = 384;
/// `tee_type` of a TDX quote.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// `tee_type` of an SGX quote.
pub const TEE_TYPE_SGX: u32 = 0x00;
/// Attestation key type ECDSA-256-with-P-256.
pub const ATT_KEY_ECDSA_P256: u16 = 2;
/// Certification data type: PCK certificate chain (PEM).
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type: QE report certification data.
pub const CERT_DATA_QE_REPORT: u16 = 6;
/// Intel's QE vendor id.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// Why quote bytes could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxParseError {
    /// The quote ends before a field.
    #[error(
        "quote is truncated: {what} needs {needed} bytes at offset {offset}, quote has {actual}"
    )]
    Truncated {
        /// The field that did not fit.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// The input's length.
        actual: usize,
    },
    /// The quote is from another TEE (an SGX enclave quote).
    #[error(
        "not a TDX quote: quote v{version} has TEE type {tee_type:#x} ({tee}), expected 0x81 (TDX)"
    )]
    NotTdx {
        /// Quote version.
        version: u16,
        /// The header's TEE type (or the v5 body type when that names SGX).
        tee_type: u32,
        /// "SGX" or "unknown".
        tee: &'static str,
    },
    /// The quote version is not 4 or 5.
    #[error("unsupported quote version {0} (TDX quotes are version 4 or 5)")]
    UnsupportedVersion(u16),
    /// The attestation key is not ECDSA-256-with-P-256.
    #[error("unsupported attestation key type {0} (expected 2, ECDSA-256-with-P-256)")]
    UnsupportedAttestationKey(u16),
    /// A v5 body type that is not a TD report.
    #[error("unsupported quote v5 body type {0} (expected 2, 3 or 4)")]
    UnsupportedBodyType(u16),
    /// A v5 body size that does not match its type.
    #[error("quote v5 body type {body_type} must be {expected} bytes, header says {declared}")]
    BodySize {
        /// The body type.
        body_type: u16,
        /// Its size.
        expected: usize,
        /// The declared size.
        declared: u32,
    },
    /// Certification data of a type this verifier does not handle.
    #[error("{what} has certification data type {found}, expected {expected}")]
    CertificationDataType {
        /// Which certification data.
        what: &'static str,
        /// The type found.
        found: u16,
        /// The type required.
        expected: u16,
    },
    /// A declared length disagrees with the bytes that carry it.
    #[error("{what} declares {declared} bytes but {available} are available")]
    Length {
        /// The length field.
        what: &'static str,
        /// Its value.
        declared: usize,
        /// What the enclosing structure leaves.
        available: usize,
    },
    /// The PCK certificate chain is not a PEM certificate sequence.
    #[error("PCK certificate chain is not valid PEM: {0}")]
    Pem(PemError),
}

/// Why a PEM certificate sequence could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN CERTIFICATE-----` block.
    #[error("no certificate")]
    Empty,
    /// A `BEGIN` without its `END`.
    #[error("certificate {0} has no END line")]
    Unterminated(usize),
    /// A block whose body is not base64.
    #[error("certificate {0} is not base64")]
    Base64(usize),
    /// The text is not UTF-8.
    #[error("not text")]
    NotText,
    /// Text outside the certificate blocks (before certificate `.0`, or after the last
    /// when `.0` is their count) holds a PEM boundary's dashes (a block with another label,
    /// or one whose `BEGIN` or `END` line is damaged), or a dash right before a `BEGIN` line.
    #[error("text before certificate {0} holds a PEM boundary outside a certificate block")]
    StrayBoundary(usize),
    /// A blank line inside a block's base64: what RFC 1421 PEM readers take for the end of
    /// encapsulated headers, so that they decode other bytes than the whole block.
    #[error("certificate {0} has a blank line inside its base64")]
    BlankLine(usize),
}

/// The quote header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuoteHeader {
    /// Quote version (4 or 5).
    pub version: u16,
    /// Attestation key type (2 = ECDSA-256-with-P-256).
    pub attestation_key_type: u16,
    /// TEE type (0x81 = TDX).
    pub tee_type: u32,
    /// Reserved (QE SVN in SGX v3 quotes).
    pub qe_svn: u16,
    /// Reserved (PCE SVN in SGX v3 quotes).
    pub pce_svn: u16,
    /// QE vendor id (Intel's: `939a7233f79c4ca9940a0db3957f0607`).
    pub qe_vendor_id: [u8; 16],
    /// User data (the first 16 bytes are the QE id).
    pub user_data: [u8; 20],
}

/// Which TD report body the quote carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdBodyType {
    /// TDX 1.0 (quote v4, or v5 body type 2).
    Td10,
    /// TDX 1.5 (v5 body type 3).
    Td15,
    /// TDX 1.5 with the extended fields (v5 body type 4).
    Td15Ex,
}

impl TdBodyType {
    /// The v5 body type number.
    pub const fn number(self) -> u16 {
        match self {
            Self::Td10 => 2,
            Self::Td15 => 3,
            Self::Td15Ex => 4,
        }
    }

    /// The body's size in bytes.
    pub const fn len(self) -> usize {
        match self {
            Self::Td10 => TD_REPORT10_LEN,
            Self::Td15 => TD_REPORT15_LEN,
            Self::Td15Ex => TD_REPORT15_EX_LEN,
        }
    }

    /// Always false (a body is never empty); pairs with [`TdBodyType::len`].
    pub const fn is_empty(self) -> bool {
        false
    }
}

/// TD attributes (TDX module ABI, `TD_ATTRIBUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    /// Bits that must be zero (TDX module ABI 348551-008, table 3.23).
    pub const RESERVED_MASK: u64 = ones(1, 3) | ones(7, 15) | ones(23, 26) | ones(32, 61);

    const fn bit(self, n: u32) -> bool {
        self.0 & (1u64 << n) != 0
    }

    /// TUD.DEBUG: the TD runs in debug mode, its state is visible to the host.
    pub const fn debug(self) -> bool {
        self.bit(0)
    }

    /// TUD bits 4..=6 (profiling and tracing).
    pub const fn profiling(self) -> bool {
        self.0 & ones(4, 6) != 0
    }

    /// SEC.SEPT_VE_DISABLE: EPT violations are not converted to #VE.
    pub const fn sept_ve_disable(self) -> bool {
        self.bit(28)
    }

    /// SEC.MIGRATABLE.
    pub const fn migratable(self) -> bool {
        self.bit(29)
    }

    /// SEC.SERVTD_EXT (TDX 1.5): service TDs may be bound later.
    pub const fn servtd_ext(self) -> bool {
        self.bit(17)
    }

    /// The reserved bits that are set.
    pub const fn reserved(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}

/// Bits `lo..=hi` set (`lo <= hi < 64`; only used with constants).
const fn ones(lo: u32, hi: u32) -> u64 {
    (u64::MAX << lo) & (u64::MAX >> 63u32.saturating_sub(hi))
}

/// The fields TDX 1.5 adds to the TD report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdReport15 {
    /// The TCB SVN of the current TDX module (after a TD-preserving update).
    pub tee_tcb_svn2: [u8; 16],
    /// Measurement of the service TDs bound to this TD.
    pub mr_service_td: [u8; 48],
}

/// The extended TDX 1.5 fields (v5 body type 4), kept as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport15Ex {
    /// The 237 bytes after the TDX 1.5 fields, as in the quote.
    pub raw: Vec<u8>,
}

/// A TD report body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport {
    /// TEE_TCB_SVN: the TDX module's TCB (byte 0 module ISVSVN, byte 1 module version).
    pub tee_tcb_svn: [u8; 16],
    /// Measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// Signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: [u8; 48],
    /// TDX module attributes.
    pub seam_attributes: [u8; 8],
    /// TD attributes.
    pub td_attributes: TdAttributes,
    /// Raw TD attributes as in the quote.
    pub td_attributes_raw: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// Build-time measurement of the TD.
    pub mr_td: [u8; 48],
    /// Software-defined id of the TD's configuration.
    pub mr_config_id: [u8; 48],
    /// Software-defined id of the TD's owner.
    pub mr_owner: [u8; 48],
    /// Software-defined id of the owner's configuration.
    pub mr_owner_config: [u8; 48],
    /// Run-time extendable measurement registers 0..=3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORT_DATA.
    pub report_data: [u8; 64],
    /// TDX 1.5 fields.
    pub td15: Option<TdReport15>,
    /// Extended TDX 1.5 fields.
    pub td15_ex: Option<TdReport15Ex>,
}

/// An SGX enclave report (here: the Quoting Enclave's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnclaveReport {
    /// CPU SVN.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORT_DATA.
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Parses a 384-byte enclave report.
    pub fn parse(b: &[u8; ENCLAVE_REPORT_LEN]) -> Self {
        let c = Bytes::new(b);
        // Every offset below lies inside the fixed 384-byte array.
        Self {
            cpu_svn: c.array(0).unwrap_or_default(),
            misc_select: c.u32_le(16).unwrap_or_default(),
            attributes: c.array(48).unwrap_or_default(),
            mr_enclave: c.array(64).unwrap_or_default(),
            mr_signer: c.array(128).unwrap_or_default(),
            isv_prod_id: c.array(256).map(u16::from_le_bytes).unwrap_or_default(),
            isv_svn: c.array(258).map(u16::from_le_bytes).unwrap_or_default(),
            report_data: c.array(320).unwrap_or([0; 64]),
        }
    }

    /// ATTRIBUTES.DEBUG.
    pub fn debug(&self) -> bool {
        self.attributes.first().is_some_and(|b| b & 0x02 != 0)
    }
}

/// A parsed TDX quote. Nothing in it is trusted until verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxQuote {
    /// The header.
    pub header: QuoteHeader,
    /// The body's kind.
    pub body_type: TdBodyType,
    /// The TD report.
    pub body: TdReport,
    /// The bytes the attestation key signed: header, (v5) body descriptor and body.
    pub signed: Vec<u8>,
    /// ECDSA P-256 signature over `signed` (`r || s`).
    pub signature: [u8; 64],
    /// The attestation key (P-256 point `x || y`, no SEC1 prefix).
    pub attestation_key: [u8; 64],
    /// The QE report, raw (signed by the PCK key).
    pub qe_report_raw: [u8; ENCLAVE_REPORT_LEN],
    /// The QE report, parsed.
    pub qe_report: EnclaveReport,
    /// The PCK key's ECDSA P-256 signature over the QE report (`r || s`).
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
    /// The PCK certificate chain (PEM: leaf, PCK CA, root), as in the quote.
    pub pck_chain_pem: Vec<u8>,
    /// The bytes endorsing the attestation key: the key followed by the whole
    /// certification data. Identical in every quote of one platform and QE.
    pub endorsement: Vec<u8>,
    /// Bytes after the signature data (some quote producers pad).
    pub trailing: usize,
}

impl TdxQuote {
    /// The attestation key as a SEC1 uncompressed point.
    pub fn attestation_key_sec1(&self) -> [u8; 65] {
        let mut out = [0x04; 65];
        for (o, b) in out.iter_mut().skip(1).zip(self.attestation_key) {
            *o = b;
        }
        out
    }

    /// The PCK certificate chain as DER certificates (leaf first).
    pub fn pck_chain_der(&self) -> Result<Vec<Vec<u8>>, PemError> {
        pem_certificates(&self.pck_chain_pem)
    }
}

fn truncated(what: &'static str, offset: usize, needed: usize, actual: usize) -> TdxParseError {
    TdxParseError::Truncated {
        what,
        offset,
        needed,
        actual,
    }
}

struct Reader<'a> {
    b: Bytes<'a>,
    len: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            b: Bytes::new(data),
            len: data.len(),
            pos: 0,
        }
    }

    fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], TdxParseError> {
        let s = self
            .b
            .slice(self.pos, n)
            .ok_or_else(|| truncated(what, self.pos, n, self.len))?;
        self.pos = self.pos.saturating_add(n);
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TdxParseError> {
        let s = self.take(what, N)?;
        s.try_into()
            .map_err(|_| truncated(what, self.pos, N, self.len))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TdxParseError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TdxParseError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// A length-prefixed block whose length is checked against what remains.
    fn block(&mut self, what: &'static str, declared: usize) -> Result<&'a [u8], TdxParseError> {
        let available = self.len.saturating_sub(self.pos);
        if declared > available {
            return Err(TdxParseError::Length {
                what,
                declared,
                available,
            });
        }
        self.take(what, declared)
    }
}

fn u32_len(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Parses a TDX quote (v4 or v5). An SGX quote is refused as [`TdxParseError::NotTdx`].
pub fn parse_tdx_quote(data: &[u8]) -> Result<TdxQuote, TdxParseError> {
    let mut r = Reader::new(data);
    let version = r.u16("version")?;
    let attestation_key_type = r.u16("attestation key type")?;
    let tee_type = r.u32("TEE type")?;
    let header = QuoteHeader {
        version,
        attestation_key_type,
        tee_type,
        qe_svn: r.u16("reserved")?,
        pce_svn: r.u16("reserved")?,
        qe_vendor_id: r.array("QE vendor id")?,
        user_data: r.array("user data")?,
    };
    if tee_type != TEE_TYPE_TDX {
        let tee = if tee_type == TEE_TYPE_SGX {
            "SGX"
        } else {
            "unknown"
        };
        return Err(TdxParseError::NotTdx {
            version,
            tee_type,
            tee,
        });
    }
    let body_type = match version {
        4 => TdBodyType::Td10,
        5 => {
            let t = r.u16("body type")?;
            let size = r.u32("body size")?;
            let body_type = match t {
                1 => {
                    return Err(TdxParseError::NotTdx {
                        version,
                        tee_type: u32::from(t),
                        tee: "SGX",
                    });
                }
                2 => TdBodyType::Td10,
                3 => TdBodyType::Td15,
                4 => TdBodyType::Td15Ex,
                other => return Err(TdxParseError::UnsupportedBodyType(other)),
            };
            if u32_len(size) != body_type.len() {
                return Err(TdxParseError::BodySize {
                    body_type: t,
                    expected: body_type.len(),
                    declared: size,
                });
            }
            body_type
        }
        other => return Err(TdxParseError::UnsupportedVersion(other)),
    };
    if attestation_key_type != ATT_KEY_ECDSA_P256 {
        return Err(TdxParseError::UnsupportedAttestationKey(
            attestation_key_type,
        ));
    }
    let body_start = r.pos;
    let body = parse_body(r.take("TD report", body_type.len())?, body_type);
    let signed = data
        .get(..r.pos)
        .ok_or_else(|| truncated("TD report", body_start, body_type.len(), data.len()))?
        .to_vec();

    let sig_len = u32_len(r.u32("signature data length")?);
    let sig_data = r.block("signature data length", sig_len)?;
    let trailing = data.len().saturating_sub(r.pos);

    let mut s = Reader::new(sig_data);
    let signature = s.array("quote signature")?;
    let endorsement_start = s.pos;
    let attestation_key = s.array("attestation key")?;
    let cert_type = s.u16("certification data type")?;
    if cert_type != CERT_DATA_QE_REPORT {
        return Err(TdxParseError::CertificationDataType {
            what: "quote",
            found: cert_type,
            expected: CERT_DATA_QE_REPORT,
        });
    }
    let cert_len = u32_len(s.u32("certification data size")?);
    let cert = s.block("certification data size", cert_len)?;
    let endorsement = sig_data
        .get(endorsement_start..s.pos)
        .unwrap_or_default()
        .to_vec();

    let mut q = Reader::new(cert);
    let qe_report_raw: [u8; ENCLAVE_REPORT_LEN] = q.array("QE report")?;
    let qe_report_signature = q.array("QE report signature")?;
    let auth_len = usize::from(q.u16("QE auth data size")?);
    let qe_auth_data = q.block("QE auth data size", auth_len)?.to_vec();
    let inner_type = q.u16("PCK certification data type")?;
    if inner_type != CERT_DATA_PCK_CHAIN {
        return Err(TdxParseError::CertificationDataType {
            what: "QE report certification data",
            found: inner_type,
            expected: CERT_DATA_PCK_CHAIN,
        });
    }
    let chain_len = u32_len(q.u32("PCK certification data size")?);
    let chain = q.block("PCK certification data size", chain_len)?;
    // Quote generators NUL-terminate the PEM text; the terminator is not part of it.
    let chain_end = chain
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i.saturating_add(1));
    let pck_chain_pem = chain.get(..chain_end).unwrap_or_default().to_vec();
    // Structure only; the certificates are decoded when verified.
    pem_blocks(&pck_chain_pem).map_err(TdxParseError::Pem)?;

    Ok(TdxQuote {
        header,
        body_type,
        body,
        signed,
        signature,
        attestation_key,
        qe_report: EnclaveReport::parse(&qe_report_raw),
        qe_report_raw,
        qe_report_signature,
        qe_auth_data,
        pck_chain_pem,
        endorsement,
        trailing,
    })
}

/// Parses a body slice of exactly `t.len()` bytes (the caller took it so).
fn parse_body(b: &[u8], t: TdBodyType) -> TdReport {
    let c = Bytes::new(b);
    let a48 = |o| c.array::<48>(o).unwrap_or([0; 48]);
    let td_attributes_raw = c.array::<8>(120).unwrap_or_default();
    TdReport {
        tee_tcb_svn: c.array(0).unwrap_or_default(),
        mr_seam: a48(16),
        mr_signer_seam: a48(64),
        seam_attributes: c.array(112).unwrap_or_default(),
        td_attributes: TdAttributes(u64::from_le_bytes(td_attributes_raw)),
        td_attributes_raw,
        xfam: c.array(128).unwrap_or_default(),
        mr_td: a48(136),
        mr_config_id: a48(184),
        mr_owner: a48(232),
        mr_owner_config: a48(280),
        rtmr: [a48(328), a48(376), a48(424), a48(472)],
        report_data: c.array(520).unwrap_or([0; 64]),
        td15: (t != TdBodyType::Td10).then(|| TdReport15 {
            tee_tcb_svn2: c.array(584).unwrap_or_default(),
            mr_service_td: a48(600),
        }),
        td15_ex: (t == TdBodyType::Td15Ex).then(|| TdReport15Ex {
            raw: c
                .slice(
                    TD_REPORT15_LEN,
                    TD_REPORT15_EX_LEN.saturating_sub(TD_REPORT15_LEN),
                )
                .unwrap_or_default()
                .to_vec(),
        }),
    }
}

/// The base64 bodies of a sequence of PEM `CERTIFICATE` blocks, in order (not
/// decoded; see [`pem_decode`]).
///
/// Hand-written because certificate chains in quotes and PCS headers come with
/// varying line endings, NUL terminators and text between blocks that the strict
/// RFC 7468 decoders refuse.
///
/// Text between blocks may not hold a PEM boundary's dashes (`-----`), and a block may
/// not hold a blank line after its first base64 line: otherwise a damaged or relabelled
/// block would be skipped here as text, or read whole here and as headers plus a shorter
/// body by RFC 1421 readers (the `pem` crate `dcap-qvl` uses), and the chain would mean
/// different certificates to different verifiers (`tests/dcap_qvl_differential.rs`).
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<&str>, PemError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    const DASHES: &str = "-----";
    let text = core::str::from_utf8(text).map_err(|_| PemError::NotText)?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        // A dash right before a BEGIN line hides it from readers that restart a partial
        // match at the next byte (the `pem` crate's).
        let before = rest.get(..start).unwrap_or_default();
        if before.contains(DASHES) || before.ends_with('-') {
            return Err(PemError::StrayBoundary(out.len()));
        }
        let after = rest
            .get(start.saturating_add(BEGIN.len())..)
            .unwrap_or_default();
        let end = after.find(END).ok_or(PemError::Unterminated(out.len()))?;
        let body = after.get(..end).unwrap_or_default();
        // RFC 1421 readers skip these four after the BEGIN line, then split at a blank line.
        let content = body.trim_start_matches([' ', '\t', '\n', '\r']);
        if content.contains("\n\n") || content.contains("\r\n\r\n") {
            return Err(PemError::BlankLine(out.len()));
        }
        out.push(body);
        rest = after
            .get(end.saturating_add(END.len())..)
            .unwrap_or_default();
    }
    if out.is_empty() {
        return Err(PemError::Empty);
    }
    if rest.contains(DASHES) {
        return Err(PemError::StrayBoundary(out.len()));
    }
    Ok(out)
}

/// Decodes one PEM body (base64 split over lines) into DER; `index` names it in errors.
pub(crate) fn pem_decode(body: &str, index: usize) -> Result<Vec<u8>, PemError> {
    let mut b64 = Vec::with_capacity(body.len());
    for line in body.split_ascii_whitespace() {
        b64.extend_from_slice(line.as_bytes());
    }
    let b64 = core::str::from_utf8(&b64).map_err(|_| PemError::Base64(index))?;
    <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64).map_err(|_| PemError::Base64(index))
}

/// Whether a PEM body encodes exactly `der` (compares base64 text, decodes nothing).
pub(crate) fn pem_encodes(body: &str, der_base64: &str) -> bool {
    let mut want = der_base64.bytes();
    body.bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .all(|b| want.next() == Some(b))
        && want.next().is_none()
}

/// Decodes a sequence of PEM `CERTIFICATE` blocks into DER, in order.
pub(crate) fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    pem_blocks(text)?
        .into_iter()
        .enumerate()
        .map(|(i, b)| pem_decode(b, i))
        .collect()
}

#[cfg(test)]
mod tests;
