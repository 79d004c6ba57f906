//! RIM verification and golden-value comparison.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Algorithms: `SignatureMethod` is ECDSA-SHA384; `DigestMethod` is
//!    SHA-256/384/512; the reference is the whole document (`URI=""`) with the
//!    enveloped-signature transform and a supported canonicalisation.
//! 2. Digest: canonicalise the document without its `ds:Signature` and compare
//!    the hash with `DigestValue`.
//! 3. Chain: the `X509Certificate`s in `KeyInfo` (signer first; a copy of the
//!    root at the end is dropped) chain by name and signature to the pinned
//!    NVIDIA RIM root; every issuer is a CA; each is valid at the given time.
//! 4. Signature: the signer's P-384 key verifies `SignatureValue` (`r || s`) over
//!    the canonical `SignedInfo`.
//!
//! [`compare`] then matches the report's measurements with the golden values
//! of the driver and VBIOS RIMs.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::{Crypto, EcdsaAlg, SignatureError};
use crate::evidence::nvgpu::{NVDEC_DISABLED, NvGpuReport};
use crate::evidence::rim::{GoldenMeasurement, Rim};
use crate::evidence::xml::{XmlError, canonicalize_document, canonicalize_subtree};
use crate::time::{UnixTime, Window};
use crate::verify::x509::{Cert, KeyKind, X509Error};

const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
/// Longest RIM signing chain accepted (NVIDIA's has three certificates below the root).
pub const MAX_RIM_CHAIN: usize = 6;

/// Why a RIM failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RimVerifyError {
    /// An algorithm this verifier does not accept.
    #[error("RIM {what} algorithm {uri:?} is not supported")]
    Algorithm {
        /// Which algorithm.
        what: &'static str,
        /// Its URI.
        uri: String,
    },
    /// Canonicalisation failed.
    #[error("RIM canonicalisation failed: {0}")]
    Canonicalization(#[from] XmlError),
    /// The document's digest differs from the signed `DigestValue`.
    #[error("RIM digest does not match: the document was modified after signing")]
    DigestMismatch,
    /// A certificate of the signing chain failed a check.
    #[error("RIM signing chain: {0}")]
    Certificate(#[from] X509Error),
    /// The signing chain does not end at the pinned root.
    #[error("RIM signing chain ({last}) does not chain to the pinned NVIDIA RIM root")]
    UntrustedChain {
        /// Common name of the last certificate.
        last: String,
    },
    /// Certificates follow the pinned root in the chain (the pinned root is the last one
    /// accepted).
    #[error("RIM signing chain has {0} certificates after the pinned NVIDIA RIM root")]
    CertificatesAfterRoot(usize),
    /// A certificate that issued another is not a CA.
    #[error("RIM signing chain: {0} issues certificates but is not a CA")]
    NotCa(String),
    /// The chain is longer than [`MAX_RIM_CHAIN`] or empty.
    #[error("RIM signing chain has {0} certificates")]
    ChainLength(usize),
    /// The signer's key is not ECDSA P-384.
    #[error("RIM signer key is not ECDSA P-384")]
    SignerKey,
    /// `SignatureValue` does not verify over `SignedInfo`.
    #[error("RIM signature does not verify: {0}")]
    Signature(SignatureError),
}

/// What a verified RIM's signature established.
#[derive(Clone, Debug)]
pub struct RimVerified {
    /// The signing chain, signer first, without the root.
    pub chain: Vec<Cert>,
    /// The signer's common name.
    pub signer: String,
    /// When the chain is valid (intersection of the windows, root included).
    pub validity: Window,
}

fn hash(crypto: &dyn Crypto, uri: &str, data: &[u8]) -> Option<Vec<u8>> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Some(crypto.sha256(data).to_vec()),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Some(crypto.sha384(data).to_vec()),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Some(crypto.sha512(data).to_vec()),
        _ => None,
    }
}

/// Verifies `rim`'s signature and signing chain under `root` at `now`.
pub fn verify_rim(
    crypto: &dyn Crypto,
    rim: &Rim,
    root: &Cert,
    now: UnixTime,
) -> Result<RimVerified, RimVerifyError> {
    let sig = &rim.signature;
    // Step 1
    if sig.signature_method != ECDSA_SHA384 {
        return Err(RimVerifyError::Algorithm {
            what: "signature",
            uri: sig.signature_method.clone(),
        });
    }
    // Step 2
    let canonical = canonicalize_document(
        &rim.document,
        Some(&sig.signature_path),
        &sig.reference_c14n,
    )?;
    let digest =
        hash(crypto, &sig.digest_method, &canonical).ok_or_else(|| RimVerifyError::Algorithm {
            what: "digest",
            uri: sig.digest_method.clone(),
        })?;
    if digest != sig.digest_value {
        return Err(RimVerifyError::DigestMismatch);
    }
    // Step 3
    let chain = verify_chain(crypto, &sig.certificates, root, now)?;
    let validity = chain
        .iter()
        .fold(root.validity(), |w, c| w.intersect(&c.validity()));
    // Step 4
    let signer = chain.first().ok_or(RimVerifyError::ChainLength(0))?;
    if signer.key_kind("RIM signer")? != KeyKind::P384 {
        return Err(RimVerifyError::SignerKey);
    }
    let signed_info =
        canonicalize_subtree(&rim.document, &sig.signed_info_path, &sig.signed_info_c14n)?;
    crypto
        .verify_ecdsa(
            EcdsaAlg::P384Sha384,
            signer.public_key(),
            &signed_info,
            &sig.signature_value,
        )
        .map_err(RimVerifyError::Signature)?;
    Ok(RimVerified {
        signer: signer.subject_cn().unwrap_or_default(),
        chain,
        validity,
    })
}

/// Checks `certs` (DER, signer first) chain to `root`, each issuer a CA, all
/// valid at `now`. A trailing copy of the root is dropped; anything after it is refused.
fn verify_chain(
    crypto: &dyn Crypto,
    certs: &[Vec<u8>],
    root: &Cert,
    now: UnixTime,
) -> Result<Vec<Cert>, RimVerifyError> {
    let below_root = certs
        .iter()
        .position(|d| d.as_slice() == root.der())
        .unwrap_or(certs.len());
    let after = certs.len().saturating_sub(below_root.saturating_add(1));
    if after > 0 {
        return Err(RimVerifyError::CertificatesAfterRoot(after));
    }
    let certs = certs.get(..below_root).unwrap_or_default();
    if certs.is_empty() || certs.len() > MAX_RIM_CHAIN {
        return Err(RimVerifyError::ChainLength(certs.len()));
    }
    let chain = certs
        .iter()
        .map(|der| Cert::from_der("RIM certificate", der))
        .collect::<Result<Vec<_>, _>>()?;
    root.check_validity("RIM root", now)?;
    let mut issuers = chain.iter().skip(1).chain(core::iter::once(root));
    for cert in &chain {
        let Some(issuer) = issuers.next() else {
            break;
        };
        cert.check_validity("RIM certificate", now)?;
        if !cert.issued_by_name(issuer) {
            return Err(RimVerifyError::UntrustedChain {
                last: cert.subject_cn().unwrap_or_default(),
            });
        }
        if !issuer.is_ca() {
            return Err(RimVerifyError::NotCa(
                issuer.subject_cn().unwrap_or_default(),
            ));
        }
        let by_root = core::ptr::eq(issuer, root);
        cert.verify_signed_by(crypto, "RIM certificate", issuer, "its issuer")
            .map_err(|e| match e {
                X509Error::BadSignature { .. } if by_root => RimVerifyError::UntrustedChain {
                    last: cert.subject_cn().unwrap_or_default(),
                },
                e => e.into(),
            })?;
    }
    Ok(chain)
}

/// Which component a RIM describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RimKind {
    /// The GPU driver.
    Driver,
    /// The VBIOS.
    Vbios,
}

impl RimKind {
    /// `driver` or `vbios`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::Vbios => "vbios",
        }
    }
}

/// The outcome of comparing a report with its RIMs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RimComparison {
    /// Active golden indices (RIM numbering) that were compared.
    pub compared: Vec<u32>,
    /// Active golden indices whose report value matched no alternative, or
    /// which the report does not carry.
    pub mismatched: Vec<u32>,
    /// Indices active in both RIMs (a conflict; counted as mismatches too).
    pub conflicts: Vec<u32>,
    /// Index 35, skipped because NVDEC0 is disabled.
    pub skipped: Vec<u32>,
}

impl RimComparison {
    /// Whether every compared index matched and no RIMs conflicted.
    pub fn matches(&self) -> bool {
        self.mismatched.is_empty() && self.conflicts.is_empty()
    }
}

/// Compares every active golden measurement of `rims` with the report.
///
/// RIM index `i` is SPDM measurement block `i + 1`. A value matches when it
/// equals one of the alternatives and has the declared size. When the report
/// says NVDEC0 is disabled, index 35 (the NVDEC measurement) is not compared,
/// as NVIDIA's own verifier does.
pub fn compare(report: &NvGpuReport, rims: &[(RimKind, &Rim)]) -> RimComparison {
    let mut out = RimComparison::default();
    let mut golden: Vec<(u32, &GoldenMeasurement)> = Vec::new();
    for (_, rim) in rims {
        for m in rim.measurements.iter().filter(|m| m.active) {
            if golden.iter().any(|(i, _)| *i == m.index) {
                if !out.conflicts.contains(&m.index) {
                    out.conflicts.push(m.index);
                }
            } else {
                golden.push((m.index, m));
            }
        }
    }
    golden.sort_by_key(|(i, _)| *i);
    let nvdec_disabled = report.fields.nvdec0_status == Some(NVDEC_DISABLED);
    for (index, m) in golden {
        if index == 35 && nvdec_disabled {
            out.skipped.push(index);
            continue;
        }
        out.compared.push(index);
        let actual = u8::try_from(index.saturating_add(1))
            .ok()
            .and_then(|i| report.measurement(i));
        let ok = actual.is_some_and(|b| b.value.len() == m.size && m.values.contains(&b.value));
        if !ok {
            out.mismatched.push(index);
        }
    }
    out.conflicts.sort_unstable();
    out
}

#[cfg(test)]
mod tests;
