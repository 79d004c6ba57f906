//! An Azure confidential VM's vTPM quote ([`crate::evidence::tpm2`]), checked
//! against the attestation key the paravisor's HCL report publishes.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. The attestation key is the RSA JWK `HCLAkPub` of the HCL runtime claims.
//! 2. The quote's RSASSA-PKCS1-v1_5 / SHA-256 signature over the marshaled
//!    `TPMS_ATTEST` verifies under it.
//! 3. `TPMS_ATTEST` parses as a quote and its `extraData` is the expected
//!    qualifying data (the nonce).
//! 4. The PCR values given with the quote are one SHA-256 value per selected
//!    SHA-256 PCR, and SHA-256 over them, in selection order, is the quote's
//!    `pcrDigest`.
//!
//! What makes the key trustworthy is the HCL report: its runtime claims are
//! bound into the hardware report's REPORT_DATA
//! ([`crate::verify::azure_hcl::verify_claims_digest`]) and the hardware
//! report is verified on its own. This module assumes the caller checks both;
//! it only proves that the PCR values are the ones the key signed.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::{Crypto, RsaHash, SignatureError};
use crate::evidence::azure_hcl::HclRuntimeClaims;
use crate::evidence::tpm2::{
    TPM_ALG_SHA256, Tpm2ParseError, TpmsAttest, alg_name, parse_ak_jwk, parse_tpms_attest,
    parse_tpmt_signature,
};
use crate::verdict::{Failures, Verified};

/// Domain separator of [`tpm_quote_qualifying_data`].
pub const TPM_QUOTE_DOMAIN: &[u8] = b"sigil.tpm-quote.v1\0";

/// The qualifying data (`extraData`) an agent passes to `TPM2_Quote` for an
/// evidence bundle: `SHA-256("sigil.tpm-quote.v1\0" || report_data)`, where
/// `report_data` is the 64-byte binding the bundle's CPU evidence must carry
/// ([`crate::binding`]). The quote is thereby as fresh, and bound to the same
/// keys, as the hardware report.
pub fn tpm_quote_qualifying_data<C: Crypto + ?Sized>(
    crypto: &C,
    report_data: &[u8; 64],
) -> [u8; 32] {
    let mut m = Vec::with_capacity(TPM_QUOTE_DOMAIN.len().saturating_add(64));
    m.extend_from_slice(TPM_QUOTE_DOMAIN);
    m.extend_from_slice(report_data);
    crypto.sha256(&m)
}

/// Why a vTPM quote does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VtpmQuoteError {
    /// The HCL runtime claims carry no `HCLAkPub` key.
    #[error("HCL runtime claims carry no attestation key (HCLAkPub)")]
    AkMissing,
    /// `HCLAkPub` is not a usable RSA key.
    #[error("HCL attestation key: {0}")]
    Ak(Tpm2ParseError),
    /// The `TPMT_SIGNATURE` does not parse (or is not RSASSA/SHA-256).
    #[error("TPM quote signature: {0}")]
    SignatureParse(Tpm2ParseError),
    /// The signature does not verify under the attestation key.
    #[error("TPM quote signature does not verify under the HCL attestation key: {0}")]
    Signature(SignatureError),
    /// `TPMS_ATTEST` does not parse as a quote.
    #[error("TPM quote: {0}")]
    AttestParse(Tpm2ParseError),
    /// `extraData` is not the expected qualifying data.
    #[error("TPM quote extraData (nonce) {found} is not the expected {expected}")]
    NonceMismatch {
        /// Expected, hex.
        expected: String,
        /// In the quote, hex.
        found: String,
    },
    /// A selected bank other than SHA-256.
    #[error("TPM quote selects PCRs of the {name} bank ({alg:#06x}); only SHA-256 is verified")]
    PcrBank {
        /// The bank's algorithm.
        alg: u16,
        /// Its name.
        name: &'static str,
    },
    /// Not one PCR value per selected PCR.
    #[error("TPM quote selects {selected} PCRs but {given} values were given")]
    PcrCount {
        /// PCRs the quote selects.
        selected: usize,
        /// Values given.
        given: usize,
    },
    /// A PCR value that is not 32 bytes.
    #[error("PCR {index} value is {len} bytes, not a SHA-256 value")]
    PcrLength {
        /// The PCR.
        index: u8,
        /// Its length.
        len: usize,
    },
    /// The PCR values do not hash to the quote's `pcrDigest`.
    #[error("SHA-256 over the given PCR values is {computed}, not the quote's pcrDigest {quoted}")]
    PcrDigest {
        /// The quote's `pcrDigest`, hex.
        quoted: String,
        /// SHA-256 over the given values, hex.
        computed: String,
    },
}

/// One quoted PCR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcr {
    /// Its index (0..=23 on a PC-client TPM).
    pub index: u8,
    /// Its SHA-256 bank value.
    pub sha256: [u8; 32],
}

/// A vTPM quote that verified: the PCR values are the ones the attestation key
/// signed, for the expected qualifying data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VtpmQuote {
    /// The quote's `TPMS_ATTEST`.
    pub attest: TpmsAttest,
    /// The quoted SHA-256 PCRs, in selection order.
    pub pcrs: Vec<Pcr>,
    /// SHA-256 of the attestation key's modulus (big-endian, no leading zeros).
    pub ak_modulus_sha256: [u8; 32],
}

impl VtpmQuote {
    /// The value of PCR `index`, when quoted.
    pub fn pcr(&self, index: u8) -> Option<&[u8; 32]> {
        self.pcrs
            .iter()
            .find(|p| p.index == index)
            .map(|p| &p.sha256)
    }

    /// The qualifying data (nonce) the quote carries.
    pub fn nonce(&self) -> &[u8] {
        &self.attest.extra_data
    }
}

/// Verifies a vTPM quote given as the marshaled `TPMS_ATTEST`, the raw RSA
/// signature (as Trustee's evidence carries it) and the PCR values, against
/// the attestation key in `claims` and `expected_nonce`. Lists every failure.
pub fn verify_vtpm_quote<C: Crypto + ?Sized>(
    crypto: &C,
    claims: &HclRuntimeClaims,
    attest: &[u8],
    rsa_signature: &[u8],
    pcrs: &[Vec<u8>],
    expected_nonce: &[u8],
) -> Result<Verified<VtpmQuote>, Failures<VtpmQuoteError>> {
    verify(
        crypto,
        claims,
        attest,
        Ok(rsa_signature),
        pcrs,
        expected_nonce,
    )
}

/// [`verify_vtpm_quote`] with the signature as the TPM returns it, a marshaled
/// `TPMT_SIGNATURE` (RSASSA with SHA-256; anything else is refused).
pub fn verify_vtpm_quote_tpmt<C: Crypto + ?Sized>(
    crypto: &C,
    claims: &HclRuntimeClaims,
    attest: &[u8],
    tpmt_signature: &[u8],
    pcrs: &[Vec<u8>],
    expected_nonce: &[u8],
) -> Result<Verified<VtpmQuote>, Failures<VtpmQuoteError>> {
    let sig = parse_tpmt_signature(tpmt_signature).map(|s| s.rsa);
    verify(
        crypto,
        claims,
        attest,
        sig.as_deref().map_err(Clone::clone),
        pcrs,
        expected_nonce,
    )
}

fn verify<C: Crypto + ?Sized>(
    crypto: &C,
    claims: &HclRuntimeClaims,
    attest: &[u8],
    signature: Result<&[u8], Tpm2ParseError>,
    pcrs: &[Vec<u8>],
    expected_nonce: &[u8],
) -> Result<Verified<VtpmQuote>, Failures<VtpmQuoteError>> {
    let mut failures = Vec::new();
    // Step 1
    let ak = match claims.ak_pub().map(parse_ak_jwk) {
        None => {
            failures.push(VtpmQuoteError::AkMissing);
            None
        }
        Some(Err(e)) => {
            failures.push(VtpmQuoteError::Ak(e));
            None
        }
        Some(Ok(ak)) => Some(ak),
    };
    // Step 2
    match signature {
        Err(e) => failures.push(VtpmQuoteError::SignatureParse(e)),
        Ok(sig) => {
            if let Some(ak) = &ak {
                let checked = ak
                    .pkcs1_der()
                    .ok_or(SignatureError::MalformedKey)
                    .and_then(|der| crypto.verify_rsa_pkcs1(RsaHash::Sha256, &der, attest, sig));
                if let Err(e) = checked {
                    failures.push(VtpmQuoteError::Signature(e));
                }
            }
        }
    }
    // Step 3
    let parsed = match parse_tpms_attest(attest) {
        Ok(a) => a,
        Err(e) => {
            failures.push(VtpmQuoteError::AttestParse(e));
            return Err(Failures(failures));
        }
    };
    if parsed.extra_data.as_slice() != expected_nonce {
        failures.push(VtpmQuoteError::NonceMismatch {
            expected: hex::encode(expected_nonce),
            found: hex::encode(&parsed.extra_data),
        });
    }
    // Step 4
    let quoted = check_pcrs(crypto, &parsed, pcrs, &mut failures);
    match (failures.is_empty(), ak, quoted) {
        (true, Some(ak), Some(pcrs)) => Ok(Verified::new(VtpmQuote {
            attest: parsed,
            pcrs,
            ak_modulus_sha256: crypto.sha256(&ak.n),
        })),
        _ => Err(Failures(failures)),
    }
}

/// Step 4: the values against the selection and the digest.
fn check_pcrs<C: Crypto + ?Sized>(
    crypto: &C,
    attest: &TpmsAttest,
    values: &[Vec<u8>],
    failures: &mut Vec<VtpmQuoteError>,
) -> Option<Vec<Pcr>> {
    let selected = attest.quote.selected();
    let mut ok = true;
    for s in &attest.quote.pcr_select {
        if s.hash != TPM_ALG_SHA256 && !s.indices().is_empty() {
            failures.push(VtpmQuoteError::PcrBank {
                alg: s.hash,
                name: alg_name(s.hash),
            });
            ok = false;
        }
    }
    if selected.len() != values.len() {
        failures.push(VtpmQuoteError::PcrCount {
            selected: selected.len(),
            given: values.len(),
        });
        ok = false;
    }
    let mut pcrs = Vec::with_capacity(values.len());
    let mut concat = Vec::with_capacity(values.len().saturating_mul(32));
    for ((_, index), v) in selected.iter().zip(values) {
        match <[u8; 32]>::try_from(v.as_slice()) {
            Ok(sha256) => {
                pcrs.push(Pcr {
                    index: *index,
                    sha256,
                });
                concat.extend_from_slice(&sha256);
            }
            Err(_) => {
                failures.push(VtpmQuoteError::PcrLength {
                    index: *index,
                    len: v.len(),
                });
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let computed = crypto.sha256(&concat);
    if attest.quote.pcr_digest.as_slice() != computed.as_slice() {
        failures.push(VtpmQuoteError::PcrDigest {
            quoted: hex::encode(&attest.quote.pcr_digest),
            computed: hex::encode(computed),
        });
        return None;
    }
    Some(pcrs)
}

#[cfg(test)]
mod tests;
