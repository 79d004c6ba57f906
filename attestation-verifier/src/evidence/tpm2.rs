//! TPM 2.0 quote structures (TPM 2.0 Library, Part 2), as a vTPM's
//! `TPM2_Quote` returns them, and the attestation key an Azure HCL report
//! publishes.
//!
//! ```text
//! TPMS_ATTEST (all integers big-endian)
//!   magic            u32   0xff544347 (TPM_GENERATED_VALUE)
//!   type             u16   0x8018 (TPM_ST_ATTEST_QUOTE)
//!   qualifiedSigner  TPM2B_NAME     u16 size, bytes (nameAlg || digest of the AK)
//!   extraData        TPM2B_DATA     u16 size, bytes (the caller's qualifying data)
//!   clockInfo        TPMS_CLOCK_INFO
//!                      clock u64, resetCount u32, restartCount u32, safe u8
//!   firmwareVersion  u64
//!   attested         TPMS_QUOTE_INFO
//!                      pcrSelect TPML_PCR_SELECTION
//!                        count u32, then count × TPMS_PCR_SELECTION
//!                          hash u16, sizeofSelect u8, pcrSelect[sizeofSelect]
//!                      pcrDigest TPM2B_DIGEST   u16 size, bytes
//!
//! TPMT_SIGNATURE
//!   sigAlg           u16   0x0014 (TPM_ALG_RSASSA; every other scheme is refused)
//!   hash             u16   0x000B (TPM_ALG_SHA256; every other hash is refused)
//!   sig              TPM2B_PUBLIC_KEY_RSA   u16 size, bytes
//! ```
//!
//! Bit `j` of `pcrSelect[i]` selects PCR `8i + j`; the quote's `pcrDigest` is
//! the hash over the selected PCR values, selections in list order and PCRs in
//! increasing order within each ([`PcrSelection::indices`]).
//!
//! Parsing is total and does no cryptography: [`crate::verify::azure_vtpm`]
//! checks the signature, the qualifying data and the digest.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::azure_hcl::HclJwk;

/// `TPM_GENERATED_VALUE`, the first four bytes of every `TPMS_ATTEST`.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// `TPM_ALG_SHA1`.
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// `TPM_ALG_SHA256`.
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA384`.
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// `TPM_ALG_SHA512`.
pub const TPM_ALG_SHA512: u16 = 0x000D;
/// `TPM_ALG_RSASSA` (PKCS#1 v1.5).
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// `TPM_ALG_NULL`.
pub const TPM_ALG_NULL: u16 = 0x0010;
/// Largest `TPMS_ATTEST` or `TPMT_SIGNATURE` accepted (a TPM answers in at most 4 KiB).
pub const MAX_TPM_STRUCTURE_LEN: usize = 4096;
/// Largest `TPM2B_NAME` (a name algorithm and a SHA-512 digest).
pub const MAX_NAME_LEN: usize = 2 + 64;
/// Largest `TPM2B_DATA` / `TPM2B_DIGEST` (a SHA-512 digest).
pub const MAX_DIGEST_LEN: usize = 64;
/// Most PCR selections in a `TPML_PCR_SELECTION` (`HASH_COUNT`, generously).
pub const MAX_PCR_SELECTIONS: usize = 16;
/// Largest `sizeofSelect` (`PCR_SELECT_MAX` of a 32-PCR TPM).
pub const MAX_PCR_SELECT_LEN: usize = 4;
/// Largest RSA signature or modulus accepted, bytes (RSA-4096).
pub const MAX_RSA_LEN: usize = 512;

/// Why TPM structure bytes, or the attestation key's JWK, could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tpm2ParseError {
    /// Longer than [`MAX_TPM_STRUCTURE_LEN`].
    #[error("{structure} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// `TPMS_ATTEST` or `TPMT_SIGNATURE`.
        structure: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end inside a field.
    #[error("{structure} truncated: {field} at offset {offset} needs {needed} bytes, {len} given")]
    Truncated {
        /// `TPMS_ATTEST` or `TPMT_SIGNATURE`.
        structure: &'static str,
        /// The field that does not fit.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes given in all.
        len: usize,
    },
    /// Bytes after the structure's last field.
    #[error("{structure} has {extra} bytes after its last field")]
    TrailingBytes {
        /// `TPMS_ATTEST` or `TPMT_SIGNATURE`.
        structure: &'static str,
        /// How many.
        extra: usize,
    },
    /// `magic` is not `TPM_GENERATED_VALUE`.
    #[error("TPMS_ATTEST magic is {0:#010x}, not TPM_GENERATED_VALUE 0xff544347")]
    Magic(u32),
    /// `type` is not `TPM_ST_ATTEST_QUOTE`.
    #[error("TPMS_ATTEST type is {0:#06x}, not TPM_ST_ATTEST_QUOTE 0x8018")]
    NotAQuote(u16),
    /// A sized field larger than its type allows.
    #[error("{field} is {size} bytes, more than the {max} its type allows")]
    SizeTooLarge {
        /// The field.
        field: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// `clockInfo.safe` is neither 0 nor 1.
    #[error("TPMS_CLOCK_INFO.safe is {0}, not a TPMI_YES_NO (0 or 1)")]
    YesNo(u8),
    /// More PCR selections than [`MAX_PCR_SELECTIONS`].
    #[error("TPML_PCR_SELECTION has {count} selections, more than the {max} allowed")]
    PcrSelectionCount {
        /// `count`.
        count: u32,
        /// The limit.
        max: usize,
    },
    /// A signature scheme other than RSASSA.
    #[error("TPMT_SIGNATURE scheme {alg:#06x} ({name}) is not supported (only RSASSA 0x0014 is)")]
    UnsupportedSignatureScheme {
        /// `sigAlg`.
        alg: u16,
        /// Its name.
        name: &'static str,
    },
    /// An RSASSA signature over a hash other than SHA-256.
    #[error("TPMT_SIGNATURE hash {alg:#06x} ({name}) is not supported (only SHA-256 0x000B is)")]
    UnsupportedSignatureHash {
        /// `hash`.
        alg: u16,
        /// Its name.
        name: &'static str,
    },
    /// The attestation key's JWK is not an RSA key.
    #[error("attestation key JWK has kty {0:?}, not \"RSA\"")]
    AkKeyType(String),
    /// The attestation key's JWK member is not base64url.
    #[error("attestation key JWK member {0:?} is not base64url")]
    AkBase64(&'static str),
    /// The attestation key's modulus or exponent is empty, too long or zero.
    #[error("attestation key JWK member {member:?} is {len} bytes, not a usable RSA {member}")]
    AkSize {
        /// `n` or `e`.
        member: &'static str,
        /// Its decoded length.
        len: usize,
    },
}

/// The name of a TPM algorithm identifier, for messages.
pub const fn alg_name(alg: u16) -> &'static str {
    match alg {
        0x0001 => "RSA",
        TPM_ALG_SHA1 => "SHA-1",
        0x0005 => "HMAC",
        TPM_ALG_SHA256 => "SHA-256",
        TPM_ALG_SHA384 => "SHA-384",
        TPM_ALG_SHA512 => "SHA-512",
        TPM_ALG_NULL => "NULL",
        0x0012 => "SM3-256",
        TPM_ALG_RSASSA => "RSASSA",
        0x0015 => "RSAES",
        0x0016 => "RSAPSS",
        0x0018 => "ECDSA",
        0x001A => "ECDAA",
        0x001B => "SM2",
        0x001C => "ECSCHNORR",
        _ => "unknown",
    }
}

/// `TPMS_CLOCK_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since its clock was last set.
    pub clock: u64,
    /// TPM resets since the clock was set.
    pub reset_count: u32,
    /// Restarts (hibernations) since the last reset.
    pub restart_count: u32,
    /// Whether `clock` has not gone backwards.
    pub safe: bool,
}

/// One `TPMS_PCR_SELECTION`: a bank and a bitmap of its PCRs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm (`TPM_ALG_SHA256`, ...).
    pub hash: u16,
    /// `pcrSelect`: bit `j` of byte `i` selects PCR `8i + j`.
    pub select: Vec<u8>,
}

impl PcrSelection {
    /// SHA-256 PCRs `pcrs` (each below 32; others are ignored), as a 3-byte
    /// bitmap (4 bytes when a PCR above 23 is selected).
    pub fn sha256(pcrs: &[u8]) -> Self {
        let len = if pcrs.iter().any(|&p| p >= 24) { 4 } else { 3 };
        let mut select = alloc::vec![0u8; len];
        for &p in pcrs {
            if let Some(b) = select.get_mut(usize::from(p / 8)) {
                *b |= 1u8 << (p % 8);
            }
        }
        Self {
            hash: TPM_ALG_SHA256,
            select,
        }
    }

    /// The selected PCR indices, in increasing order.
    pub fn indices(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, byte) in (0u8..).zip(&self.select) {
            for bit in 0u8..8 {
                if byte & (1u8 << bit) != 0 {
                    // i < MAX_PCR_SELECT_LEN, so 8i + bit < 32.
                    out.push(i.saturating_mul(8).saturating_add(bit));
                }
            }
        }
        out
    }
}

/// `TPMS_QUOTE_INFO`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuoteInfo {
    /// `pcrSelect`, in order.
    pub pcr_select: Vec<PcrSelection>,
    /// `pcrDigest`: the hash over the selected PCR values.
    pub pcr_digest: Vec<u8>,
}

impl QuoteInfo {
    /// Every selected (bank, PCR index), in the order the digest covers them.
    pub fn selected(&self) -> Vec<(u16, u8)> {
        self.pcr_select
            .iter()
            .flat_map(|s| s.indices().into_iter().map(move |i| (s.hash, i)))
            .collect()
    }
}

/// A quote's `TPMS_ATTEST`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TpmsAttest {
    /// `qualifiedSigner`: the signing key's qualified name.
    pub qualified_signer: Vec<u8>,
    /// `extraData`: the qualifying data the caller passed (the nonce).
    pub extra_data: Vec<u8>,
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// `attested.quote`.
    pub quote: QuoteInfo,
}

/// A `TPMT_SIGNATURE` this crate verifies: RSASSA (PKCS#1 v1.5) with SHA-256.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TpmtSignature {
    /// The RSA signature, big-endian, as long as the key's modulus.
    pub rsa: Vec<u8>,
}

/// An RSA attestation key from a JWK (`HCLAkPub`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AkPublic {
    /// The modulus, big-endian without leading zeros.
    pub n: Vec<u8>,
    /// The public exponent, big-endian without leading zeros.
    pub e: Vec<u8>,
}

impl AkPublic {
    /// The key as a PKCS#1 `RSAPublicKey` (DER), the form
    /// [`crate::crypto::Crypto::verify_rsa_pkcs1`] takes. `None` only when DER
    /// encoding fails (it does not for a key [`parse_ak_jwk`] made).
    pub fn pkcs1_der(&self) -> Option<Vec<u8>> {
        use der::Encode;
        let key = pkcs1::RsaPublicKey {
            modulus: der::asn1::UintRef::new(&self.n).ok()?,
            public_exponent: der::asn1::UintRef::new(&self.e).ok()?,
        };
        key.to_der().ok()
    }
}

/// A bounds-checked big-endian reader over one structure.
struct Reader<'a> {
    structure: &'static str,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    const fn new(structure: &'static str, data: &'a [u8]) -> Self {
        Self {
            structure,
            data,
            pos: 0,
        }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], Tpm2ParseError> {
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or(Tpm2ParseError::Truncated {
                structure: self.structure,
                field,
                offset: self.pos,
                needed: n,
                len: self.data.len(),
            })?;
        self.pos = self.pos.saturating_add(n);
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Tpm2ParseError> {
        let s = self.take(field, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, Tpm2ParseError> {
        self.array::<1>(field).map(|[b]| b)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, Tpm2ParseError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, Tpm2ParseError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, Tpm2ParseError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A `TPM2B_*`: a u16 size, at most `max`, then that many bytes.
    fn tpm2b(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, Tpm2ParseError> {
        let size = usize::from(self.u16(field)?);
        if size > max {
            return Err(Tpm2ParseError::SizeTooLarge { field, size, max });
        }
        Ok(self.take(field, size)?.to_vec())
    }

    fn finish(self) -> Result<(), Tpm2ParseError> {
        match self.data.len().checked_sub(self.pos) {
            Some(0) | None => Ok(()),
            Some(extra) => Err(Tpm2ParseError::TrailingBytes {
                structure: self.structure,
                extra,
            }),
        }
    }
}

fn check_len(structure: &'static str, bytes: &[u8]) -> Result<(), Tpm2ParseError> {
    if bytes.len() > MAX_TPM_STRUCTURE_LEN {
        return Err(Tpm2ParseError::TooLong {
            structure,
            len: bytes.len(),
            max: MAX_TPM_STRUCTURE_LEN,
        });
    }
    Ok(())
}

/// Parses a quote's `TPMS_ATTEST` (the contents of `TPM2B_ATTEST`): the whole
/// of `bytes`, nothing after it.
pub fn parse_tpms_attest(bytes: &[u8]) -> Result<TpmsAttest, Tpm2ParseError> {
    const S: &str = "TPMS_ATTEST";
    check_len(S, bytes)?;
    let mut r = Reader::new(S, bytes);
    let magic = r.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(Tpm2ParseError::Magic(magic));
    }
    let ty = r.u16("type")?;
    if ty != TPM_ST_ATTEST_QUOTE {
        return Err(Tpm2ParseError::NotAQuote(ty));
    }
    let qualified_signer = r.tpm2b("qualifiedSigner", MAX_NAME_LEN)?;
    let extra_data = r.tpm2b("extraData", MAX_DIGEST_LEN)?;
    let clock = r.u64("clockInfo.clock")?;
    let reset_count = r.u32("clockInfo.resetCount")?;
    let restart_count = r.u32("clockInfo.restartCount")?;
    let safe = match r.u8("clockInfo.safe")? {
        0 => false,
        1 => true,
        v => return Err(Tpm2ParseError::YesNo(v)),
    };
    let firmware_version = r.u64("firmwareVersion")?;
    let count = r.u32("pcrSelect.count")?;
    let n = usize::try_from(count)
        .ok()
        .filter(|&n| n <= MAX_PCR_SELECTIONS)
        .ok_or(Tpm2ParseError::PcrSelectionCount {
            count,
            max: MAX_PCR_SELECTIONS,
        })?;
    let mut pcr_select = Vec::with_capacity(n);
    for _ in 0..n {
        let hash = r.u16("pcrSelections.hash")?;
        let size = usize::from(r.u8("pcrSelections.sizeofSelect")?);
        if size > MAX_PCR_SELECT_LEN {
            return Err(Tpm2ParseError::SizeTooLarge {
                field: "pcrSelections.sizeofSelect",
                size,
                max: MAX_PCR_SELECT_LEN,
            });
        }
        let select = r.take("pcrSelections.pcrSelect", size)?.to_vec();
        pcr_select.push(PcrSelection { hash, select });
    }
    let pcr_digest = r.tpm2b("pcrDigest", MAX_DIGEST_LEN)?;
    r.finish()?;
    Ok(TpmsAttest {
        qualified_signer,
        extra_data,
        clock_info: ClockInfo {
            clock,
            reset_count,
            restart_count,
            safe,
        },
        firmware_version,
        quote: QuoteInfo {
            pcr_select,
            pcr_digest,
        },
    })
}

/// Parses a `TPMT_SIGNATURE`; only RSASSA over SHA-256 is accepted, every
/// other scheme and hash is a typed error.
pub fn parse_tpmt_signature(bytes: &[u8]) -> Result<TpmtSignature, Tpm2ParseError> {
    const S: &str = "TPMT_SIGNATURE";
    check_len(S, bytes)?;
    let mut r = Reader::new(S, bytes);
    let alg = r.u16("sigAlg")?;
    if alg != TPM_ALG_RSASSA {
        return Err(Tpm2ParseError::UnsupportedSignatureScheme {
            alg,
            name: alg_name(alg),
        });
    }
    let hash = r.u16("signature.rsassa.hash")?;
    if hash != TPM_ALG_SHA256 {
        return Err(Tpm2ParseError::UnsupportedSignatureHash {
            alg: hash,
            name: alg_name(hash),
        });
    }
    let rsa = r.tpm2b("signature.rsassa.sig", MAX_RSA_LEN)?;
    r.finish()?;
    Ok(TpmtSignature { rsa })
}

fn push_tpm2b(out: &mut Vec<u8>, data: &[u8]) -> Option<()> {
    out.extend_from_slice(&u16::try_from(data.len()).ok()?.to_be_bytes());
    out.extend_from_slice(data);
    Some(())
}

/// Marshals a quote's `TPMS_ATTEST`: the inverse of [`parse_tpms_attest`],
/// for tools and tests that stand in for a TPM. `None` when a field is too long
/// to marshal.
pub fn encode_tpms_attest(a: &TpmsAttest) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
    out.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
    push_tpm2b(&mut out, &a.qualified_signer)?;
    push_tpm2b(&mut out, &a.extra_data)?;
    out.extend_from_slice(&a.clock_info.clock.to_be_bytes());
    out.extend_from_slice(&a.clock_info.reset_count.to_be_bytes());
    out.extend_from_slice(&a.clock_info.restart_count.to_be_bytes());
    out.push(u8::from(a.clock_info.safe));
    out.extend_from_slice(&a.firmware_version.to_be_bytes());
    let count = u32::try_from(a.quote.pcr_select.len()).ok()?;
    out.extend_from_slice(&count.to_be_bytes());
    for s in &a.quote.pcr_select {
        out.extend_from_slice(&s.hash.to_be_bytes());
        out.push(u8::try_from(s.select.len()).ok()?);
        out.extend_from_slice(&s.select);
    }
    push_tpm2b(&mut out, &a.quote.pcr_digest)?;
    Some(out)
}

/// Marshals an RSASSA/SHA-256 `TPMT_SIGNATURE` around `rsa`. `None` when it
/// is longer than a `TPM2B` holds.
pub fn encode_tpmt_signature(rsa: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(rsa.len().saturating_add(6));
    out.extend_from_slice(&TPM_ALG_RSASSA.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    push_tpm2b(&mut out, rsa)?;
    Some(out)
}

fn base64url(member: &'static str, s: &str) -> Result<Vec<u8>, Tpm2ParseError> {
    use base64ct::Encoding;
    let s = s.trim_end_matches('=');
    base64ct::Base64UrlUnpadded::decode_vec(s).map_err(|_| Tpm2ParseError::AkBase64(member))
}

fn strip_leading_zeros(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    v.get(start..).unwrap_or_default().to_vec()
}

/// The RSA attestation key of a JWK (`kty` `RSA`, `n` and `e` base64url).
pub fn parse_ak_jwk(jwk: &HclJwk) -> Result<AkPublic, Tpm2ParseError> {
    if jwk.kty != "RSA" {
        return Err(Tpm2ParseError::AkKeyType(jwk.kty.to_string()));
    }
    let n = strip_leading_zeros(&base64url("n", &jwk.n)?);
    let e = strip_leading_zeros(&base64url("e", &jwk.e)?);
    if n.len() < 128 || n.len() > MAX_RSA_LEN {
        return Err(Tpm2ParseError::AkSize {
            member: "n",
            len: n.len(),
        });
    }
    if e.is_empty() || e.len() > 8 {
        return Err(Tpm2ParseError::AkSize {
            member: "e",
            len: e.len(),
        });
    }
    Ok(AkPublic { n, e })
}

#[cfg(test)]
mod tests;
