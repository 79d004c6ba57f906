//! Intel TDX quote verification (DCAP, ECDSA attestation).
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Collateral, verified once per content hash and cached: the root CA CRL is
//!    signed by the pinned root; the TCB signing certificate ("Intel SGX TCB
//!    Signing") is issued by the root and not revoked, and signed the TCB Info and
//!    the QE Identity; the TCB Info is a TDX TCB Info v3 and the QE Identity a TD_QE
//!    identity v2; the PCK CRL's issuer (a PCK CA) is issued by the root, not
//!    revoked, and signed the PCK CRL. A chain's root, when supplied, must be the
//!    pinned root.
//! 2. Platform endorsement, verified once per hash of the attestation key and
//!    certification data and cached: the PCK chain in the quote (leaf "Intel SGX
//!    PCK Certificate" <- "Intel SGX PCK Platform/Processor CA" <- pinned root), a
//!    P-256 leaf key, the leaf's SGX extensions, the QE report signature by the PCK
//!    key, and QE report data = SHA-256(attestation key || QE auth data) || 0^32.
//! 3. The quote: Intel's QE vendor id, and the attestation key's signature over the
//!    header and TD report.
//! 4. Time: every certificate valid at `now`; the CRLs, TCB Info and QE Identity
//!    issued before `now` and not past `nextUpdate` + the grace period.
//! 5. Revocation: the PCK CRL is issued by the PCK leaf's own CA, which does not
//!    list the leaf; the root CA CRL does not list the PCK CA.
//! 6. QE Identity: MRSIGNER, ISVPRODID, masked MISCSELECT and ATTRIBUTES, no debug,
//!    and the QE's TCB level by ISVSVN.
//! 7. TCB Info: FMSPC and PCE-ID equal the PCK certificate's; the first TCB level
//!    met by the PCK's CPUSVN and PCESVN and the TD's TEE_TCB_SVN; the TDX module
//!    identity of the module version (MRSIGNER_SEAM, SEAM_ATTRIBUTES, module TCB
//!    level); for TDX 1.5 the current TCB (TEE_TCB_SVN2) too.
//! 8. Status: the platform's merged with the QE's (Intel's convergence rules),
//!    relaunch advice for TDX 1.5, advisories united; `Revoked` is refused.
//!
//! A warm verification (both caches hit) costs one P-256 signature (the quote's),
//! a SHA-256 over the endorsement bytes, and table lookups.

mod collateral;
mod pck;
mod tcb;

#[cfg(test)]
use collateral::parse_time;
pub use collateral::{CollateralError, PcsResponses, TdxCollateral, TdxCollateralParts};
pub(crate) use pck::pck_extensions;
pub use pck::{PckExtensionError, PckExtensions};
pub use tcb::{
    ModuleLevel, QeIdentity, QeLevel, StatusWithAdvisories, TcbInfo, TcbLevel, TcbStatus,
    TdxModule, TdxModuleIdentity,
};

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::{Crypto, EcdsaAlg, SignatureError};
use crate::evidence::tdx::{
    INTEL_QE_VENDOR_ID, PemError, QuoteHeader, TdBodyType, TdReport, TdxQuote, pem_blocks,
    pem_decode, pem_encodes,
};
use crate::roots::intel;
use crate::time::{UnixTime, Window};
use crate::verdict::{Failures, Verified};
use crate::verify::x509::{Cert, Crl, KeyKind, X509Error};

/// Why a TDX quote failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxVerifyError {
    /// A certificate or CRL failed a check.
    #[error(transparent)]
    Certificate(#[from] X509Error),
    /// The collateral could not be read.
    #[error(transparent)]
    Collateral(#[from] CollateralError),
    /// A PEM certificate chain could not be decoded.
    #[error("{what} is not a PEM certificate chain: {source}")]
    Pem {
        /// Which chain.
        what: &'static str,
        /// The decoder's complaint.
        source: PemError,
    },
    /// A certificate chain has the wrong number of certificates.
    #[error("{what} has {found} certificates, expected {expected}")]
    ChainLength {
        /// Which chain.
        what: &'static str,
        /// How many it has.
        found: usize,
        /// How many it must have.
        expected: &'static str,
    },
    /// A chain ends in a root other than the pinned Intel SGX Root CA.
    #[error("{what} ends in a root that is not the pinned Intel SGX Root CA")]
    UntrustedRoot {
        /// Which chain.
        what: &'static str,
    },
    /// A certificate is not the kind its place in the chain needs.
    #[error("{what} must be {expected:?}, found {found:?}")]
    WrongCertificate {
        /// Its place.
        what: &'static str,
        /// The common name(s) allowed there.
        expected: &'static str,
        /// Its common name.
        found: String,
    },
    /// The PCK certificate's key is not a P-256 key.
    #[error("PCK certificate key is not an ECDSA P-256 key")]
    PckKeyType,
    /// The PCK certificate's SGX extensions could not be read.
    #[error(transparent)]
    PckExtension(#[from] PckExtensionError),
    /// The QE report is not signed by the PCK key.
    #[error("QE report signature does not verify with the PCK key: {0}")]
    QeReportSignature(SignatureError),
    /// The QE report does not bind the attestation key.
    #[error("QE report data is not SHA-256(attestation key || QE auth data) followed by zeros")]
    QeReportDataMismatch,
    /// The quote is not signed by its attestation key.
    #[error("quote signature does not verify with the attestation key: {0}")]
    QuoteSignature(SignatureError),
    /// The quote was produced by a QE of another vendor.
    #[error("QE vendor id {0} is not Intel's")]
    UnknownQeVendor(String),
    /// The TCB Info is not signed by the TCB signing key.
    #[error("TCB Info signature does not verify: {0}")]
    TcbInfoSignature(SignatureError),
    /// The QE Identity is not signed by its signing key.
    #[error("QE Identity signature does not verify: {0}")]
    QeIdentitySignature(SignatureError),
    /// A collateral item's `nextUpdate` (plus the grace period) has passed.
    #[error("{what} expired at {next_update} (grace {grace_seconds} s), verification time {at}")]
    CollateralExpired {
        /// Which item.
        what: &'static str,
        /// Its nextUpdate.
        next_update: UnixTime,
        /// The grace period applied.
        grace_seconds: u64,
        /// The verification time.
        at: UnixTime,
    },
    /// A collateral item was issued after the verification time.
    #[error("{what} was issued at {issued}, after the verification time {at}")]
    CollateralNotYetValid {
        /// Which item.
        what: &'static str,
        /// Its issue date.
        issued: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The PCK CRL was issued by another CA than the one that issued the PCK certificate.
    #[error("PCK CRL is issued by {crl_issuer:?}, but the PCK certificate by {pck_issuer:?}")]
    PckCrlIssuerMismatch {
        /// The CRL issuer's common name.
        crl_issuer: String,
        /// The PCK CA's common name.
        pck_issuer: String,
    },
    /// The TCB Info is for another platform.
    #[error("TCB Info is for FMSPC {tcb_info}, the PCK certificate says {pck}")]
    FmspcMismatch {
        /// FMSPC of the PCK certificate (hex).
        pck: String,
        /// FMSPC of the TCB Info (hex).
        tcb_info: String,
    },
    /// The TCB Info is for another PCE.
    #[error("TCB Info is for PCE-ID {tcb_info}, the PCK certificate says {pck}")]
    PceIdMismatch {
        /// PCE-ID of the PCK certificate (hex).
        pck: String,
        /// PCE-ID of the TCB Info (hex).
        tcb_info: String,
    },
    /// The QE report does not match the QE Identity.
    #[error("QE {field} is {found}, the QE Identity expects {expected}")]
    QeIdentityMismatch {
        /// The field.
        field: &'static str,
        /// What the QE Identity expects.
        expected: String,
        /// What the QE report has.
        found: String,
    },
    /// The QE runs in debug mode.
    #[error("QE report has the DEBUG attribute")]
    QeDebug,
    /// The QE's ISVSVN is below every QE Identity level.
    #[error("QE ISVSVN {isvsvn} is below every QE Identity TCB level (lowest {minimum:?})")]
    QeTcbTooLow {
        /// The QE's ISVSVN.
        isvsvn: u16,
        /// The lowest level's ISVSVN.
        minimum: Option<u16>,
    },
    /// No TCB level of the TCB Info is met by the platform and TD.
    #[error(
        "no TCB level of the TCB Info for FMSPC {fmspc} matches the platform (TCB level not supported)"
    )]
    TcbLevelNotFound {
        /// The FMSPC (hex).
        fmspc: String,
    },
    /// The TCB Info has no identity for the TD's TDX module version.
    #[error("TCB Info has no TDX module identity {id}")]
    TdxModuleIdentityNotFound {
        /// The identity id needed (`TDX_<version>`).
        id: String,
    },
    /// The TDX module's ISVSVN is below every level of its identity.
    #[error("TDX module ISVSVN {isvsvn} is below every TCB level of {id}")]
    TdxModuleTcbTooLow {
        /// The module identity.
        id: String,
        /// The module's ISVSVN.
        isvsvn: u8,
    },
    /// The TD report's module signer or attributes differ from the TCB Info's.
    #[error("TDX module {field} is {found}, the TCB Info expects {expected}")]
    TdxModuleMismatch {
        /// The field.
        field: &'static str,
        /// Expected.
        expected: String,
        /// Found.
        found: String,
    },
    /// The platform's TCB is revoked.
    #[error("TCB status is Revoked")]
    TcbRevoked,
}

/// A quote that verified, with its platform's TCB status.
#[derive(Clone, Debug)]
pub struct TdxEvidence {
    /// The quote header.
    pub header: QuoteHeader,
    /// The body's kind.
    pub body_type: TdBodyType,
    /// The TD report.
    pub body: TdReport,
    /// The final TCB status (platform, TDX module and QE converged).
    pub tcb_status: TcbStatus,
    /// Advisories of the matched levels.
    pub advisory_ids: Vec<String>,
    /// Status of the platform's TCB level (with the TDX module's).
    pub platform_tcb_status: TcbStatus,
    /// Status of the QE's TCB level.
    pub qe_tcb_status: TcbStatus,
    /// The oldest date of the matched levels.
    pub tcb_date: UnixTime,
    /// The PCK certificate's SGX extensions.
    pub pck: PckExtensions,
    /// The TCB Info's TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// The QE Identity's TCB evaluation data number.
    pub qe_tcb_evaluation_data_number: u32,
    /// Earliest issue date and earliest nextUpdate over the collateral.
    pub collateral_window: Window,
    /// Whether some collateral was past its nextUpdate but inside the grace period.
    pub collateral_in_grace: bool,
    /// The oldest issue date over the collateral (TCB Info, QE Identity, CRLs).
    pub oldest_collateral_issued: UnixTime,
    /// The verification time.
    pub verified_at: UnixTime,
    /// SHA-256 of the PCK certificate (DER).
    pub pck_sha256: [u8; 32],
}

/// The trust anchor of DCAP: a root CA certificate.
#[derive(Clone, Debug)]
pub struct TdxTrustAnchor {
    root: Cert,
    /// The root's DER in base64, to recognise it in PEM chains without decoding.
    root_base64: String,
}

impl TdxTrustAnchor {
    /// The pinned Intel SGX Root CA.
    pub fn pinned() -> Result<Self, X509Error> {
        Self::from_der(intel::SGX_ROOT_CA_DER)
    }

    /// Another root (DER), e.g. a test CA.
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        Ok(Self {
            root: Cert::from_der("root CA", der)?,
            root_base64: <base64ct::Base64 as base64ct::Encoding>::encode_string(der),
        })
    }

    /// The root certificate.
    pub fn root(&self) -> &Cert {
        &self.root
    }

    /// Whether a supplied root certificate (a PEM body) is this anchor, byte for byte: the
    /// anchor is the one used, so a copy that differs in any byte (same name and key, other
    /// validity or extensions) would be a root nobody checked.
    fn is_root(
        &self,
        what: &'static str,
        pem_body: &str,
        index: usize,
    ) -> Result<bool, TdxVerifyError> {
        if pem_encodes(pem_body, &self.root_base64) {
            return Ok(true);
        }
        let der =
            pem_decode(pem_body, index).map_err(|source| TdxVerifyError::Pem { what, source })?;
        Cert::from_der(what, &der)?;
        Ok(der.as_slice() == self.root.der())
    }
}

/// Collateral whose signatures and chains were checked (time is checked per call).
#[derive(Clone, Debug)]
struct VerifiedCollateral {
    tcb_info: TcbInfo,
    qe_identity: QeIdentity,
    root_crl: Crl,
    pck_crl: Crl,
    /// The PCK CA that issued the PCK CRL.
    pck_crl_issuer: Cert,
    /// The TCB Info signing certificate.
    tcb_signer: Cert,
    /// The QE Identity signing certificate, when not the TCB Info's.
    qe_signer: Option<Cert>,
}

/// A platform's verified endorsement of its attestation key.
#[derive(Clone, Debug)]
struct Platform {
    leaf: Cert,
    ca: Cert,
    pck: PckExtensions,
    pck_sha256: [u8; 32],
}

/// Upper bound on entries per cache; a cache is cleared when it fills.
const CACHE_CAPACITY: usize = 1024;

const PCK_LEAF_CN: &str = "Intel SGX PCK Certificate";
const PCK_PLATFORM_CA_CN: &str = "Intel SGX PCK Platform CA";
const PCK_PROCESSOR_CA_CN: &str = "Intel SGX PCK Processor CA";
const TCB_SIGNING_CN: &str = "Intel SGX TCB Signing";

/// Verifies TDX quotes, caching verified collateral and platform endorsements by
/// content hash.
pub struct TdxVerifier<C: Crypto> {
    crypto: C,
    anchor: TdxTrustAnchor,
    collaterals: BTreeMap<[u8; 32], VerifiedCollateral>,
    platforms: BTreeMap<[u8; 32], Platform>,
}

impl<C: Crypto> TdxVerifier<C> {
    /// A verifier over the pinned Intel SGX Root CA.
    pub fn new(crypto: C) -> Result<Self, X509Error> {
        Ok(Self::with_trust_anchor(crypto, TdxTrustAnchor::pinned()?))
    }

    /// A verifier over another root.
    pub fn with_trust_anchor(crypto: C, anchor: TdxTrustAnchor) -> Self {
        Self {
            crypto,
            anchor,
            collaterals: BTreeMap::new(),
            platforms: BTreeMap::new(),
        }
    }

    /// The crypto backend.
    pub fn crypto(&self) -> &C {
        &self.crypto
    }

    /// Number of verified collateral bundles and platform endorsements cached.
    pub fn cached(&self) -> (usize, usize) {
        (self.collaterals.len(), self.platforms.len())
    }

    /// Empties both caches.
    pub fn clear_cache(&mut self) {
        self.collaterals.clear();
        self.platforms.clear();
    }

    /// Verifies `quote` with `collateral` at `now`, with no grace period.
    pub fn verify(
        &mut self,
        quote: &TdxQuote,
        collateral: &TdxCollateral,
        now: UnixTime,
    ) -> Result<Verified<TdxEvidence>, Failures<TdxVerifyError>> {
        self.verify_with_grace(quote, collateral, now, 0)
    }

    /// Verifies `quote` with `collateral` at `now`, accepting collateral up to
    /// `grace_seconds` past its nextUpdate (certificates get no grace).
    pub fn verify_with_grace(
        &mut self,
        quote: &TdxQuote,
        collateral: &TdxCollateral,
        now: UnixTime,
        grace_seconds: u64,
    ) -> Result<Verified<TdxEvidence>, Failures<TdxVerifyError>> {
        let mut errors = Vec::new();
        // Step 1
        let ckey = *collateral.digest();
        if !self.collaterals.contains_key(&ckey) {
            match self.verify_collateral(collateral) {
                Ok(v) => {
                    if self.collaterals.len() >= CACHE_CAPACITY {
                        self.collaterals.clear();
                    }
                    self.collaterals.insert(ckey, v);
                }
                Err(e) => errors.push(e),
            }
        }
        // Step 2
        let pkey = self.endorsement_key(quote);
        if !self.platforms.contains_key(&pkey) {
            let known_ca = self.collaterals.get(&ckey).map(|c| &c.pck_crl_issuer);
            match self.verify_platform(quote, known_ca) {
                Ok(p) => {
                    if self.platforms.len() >= CACHE_CAPACITY {
                        self.platforms.clear();
                    }
                    self.platforms.insert(pkey, p);
                }
                Err(e) => errors.extend(e),
            }
        }
        // Step 3
        if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
            errors.push(TdxVerifyError::UnknownQeVendor(hex::encode(
                quote.header.qe_vendor_id,
            )));
        }
        if let Err(e) = self.crypto.verify_ecdsa(
            EcdsaAlg::P256Sha256,
            &quote.attestation_key_sec1(),
            &quote.signed,
            &quote.signature,
        ) {
            errors.push(TdxVerifyError::QuoteSignature(e));
        }
        let coll = self.collaterals.get(&ckey);
        let plat = self.platforms.get(&pkey);
        // Step 4
        let mut in_grace = false;
        let mut oldest_issued = UnixTime(u64::MAX);
        let mut window = Window {
            not_before: UnixTime(0),
            not_after: UnixTime(u64::MAX),
        };
        if let Some(c) = coll {
            let signers = [
                Some(("TCB Info signing certificate", &c.tcb_signer)),
                c.qe_signer
                    .as_ref()
                    .map(|q| ("QE Identity signing certificate", q)),
                Some(("PCK CRL issuer", &c.pck_crl_issuer)),
            ];
            for (what, cert) in signers.into_iter().flatten() {
                if let Err(e) = cert.check_validity(what, now) {
                    errors.push(e.into());
                }
            }
            let items = [
                ("TCB Info", c.tcb_info.issue_date, c.tcb_info.next_update),
                (
                    "QE Identity",
                    c.qe_identity.issue_date,
                    c.qe_identity.next_update,
                ),
                (
                    "root CA CRL",
                    c.root_crl.window().not_before,
                    c.root_crl.window().not_after,
                ),
                (
                    "PCK CRL",
                    c.pck_crl.window().not_before,
                    c.pck_crl.window().not_after,
                ),
            ];
            for (what, issued, next_update) in items {
                oldest_issued = oldest_issued.min(issued);
                window.not_before = window.not_before.max(issued);
                window.not_after = window.not_after.min(next_update);
                if now < issued {
                    errors.push(TdxVerifyError::CollateralNotYetValid {
                        what,
                        issued,
                        at: now,
                    });
                } else if now > next_update.plus(grace_seconds) {
                    errors.push(TdxVerifyError::CollateralExpired {
                        what,
                        next_update,
                        grace_seconds,
                        at: now,
                    });
                } else if now > next_update {
                    in_grace = true;
                }
            }
        }
        if let Err(e) = self.anchor.root.check_validity("root CA", now) {
            errors.push(e.into());
        }
        if let Some(p) = plat {
            for (what, cert) in [("PCK certificate", &p.leaf), ("PCK CA", &p.ca)] {
                if let Err(e) = cert.check_validity(what, now) {
                    errors.push(e.into());
                }
            }
        }
        let (Some(c), Some(p)) = (coll, plat) else {
            return Err(Failures(errors));
        };
        // Step 5
        if p.ca.public_key() != c.pck_crl_issuer.public_key()
            || !p.leaf.issued_by_name(&c.pck_crl_issuer)
        {
            errors.push(TdxVerifyError::PckCrlIssuerMismatch {
                crl_issuer: c.pck_crl_issuer.subject_cn().unwrap_or_default(),
                pck_issuer: p.ca.subject_cn().unwrap_or_default(),
            });
        } else if let Err(e) = c.pck_crl.check_not_revoked("PCK certificate", &p.leaf) {
            errors.push(e.into());
        }
        if let Err(e) = c.root_crl.check_not_revoked("PCK CA", &p.ca) {
            errors.push(e.into());
        }
        // Step 6
        let qe = match tcb::qe_level(&c.qe_identity, &quote.qe_report) {
            Ok(q) => Some(q),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        // Step 7
        if p.pck.fmspc != c.tcb_info.fmspc {
            errors.push(TdxVerifyError::FmspcMismatch {
                pck: hex::encode(p.pck.fmspc),
                tcb_info: hex::encode(c.tcb_info.fmspc),
            });
        }
        if p.pck.pce_id != c.tcb_info.pce_id {
            errors.push(TdxVerifyError::PceIdMismatch {
                pck: hex::encode(p.pck.pce_id),
                tcb_info: hex::encode(c.tcb_info.pce_id),
            });
        }
        let Some(qe) = qe else {
            return Err(Failures(errors));
        };
        if !errors.is_empty() {
            return Err(Failures(errors));
        }
        // Step 8
        let status = tcb::td_status(&c.tcb_info, &p.pck.cpusvn, p.pck.pce_svn, &quote.body, &qe)
            .map_err(Failures::one)?;
        Ok(Verified::new(TdxEvidence {
            header: quote.header,
            body_type: quote.body_type,
            body: quote.body.clone(),
            tcb_status: status.status.status,
            advisory_ids: status.status.advisory_ids,
            platform_tcb_status: status.platform,
            qe_tcb_status: qe.status,
            tcb_date: status.status.date,
            pck: p.pck.clone(),
            tcb_evaluation_data_number: c.tcb_info.tcb_evaluation_data_number,
            qe_tcb_evaluation_data_number: c.qe_identity.tcb_evaluation_data_number,
            collateral_window: window,
            collateral_in_grace: in_grace,
            oldest_collateral_issued: oldest_issued,
            verified_at: now,
            pck_sha256: p.pck_sha256,
        }))
    }

    fn endorsement_key(&self, quote: &TdxQuote) -> [u8; 32] {
        // The endorsement bytes (attestation key + certification data) are the same in
        // every quote of one platform; domain-separate them from other cached items.
        let mut buf = Vec::with_capacity(quote.endorsement.len().saturating_add(24));
        buf.extend_from_slice(b"sigil.tdx.endorsement.v1");
        buf.extend_from_slice(&quote.endorsement);
        self.crypto.sha256(&buf)
    }

    /// Parses a PEM chain of `[signer, root?]`, checks the root (when present) is the
    /// pinned one and the signer is issued by it and named `cn`.
    fn collateral_signer(
        &self,
        what: &'static str,
        pem: &[u8],
        cns: &'static [&'static str],
        expected: &'static str,
    ) -> Result<Cert, TdxVerifyError> {
        let pem_err = |source| TdxVerifyError::Pem { what, source };
        let blocks = pem_blocks(pem).map_err(pem_err)?;
        let (signer, rest) = match blocks.as_slice() {
            [signer, rest @ ..] if rest.len() <= 1 => (signer, rest),
            _ => {
                return Err(TdxVerifyError::ChainLength {
                    what,
                    found: blocks.len(),
                    expected: "1 or 2 (signer, root)",
                });
            }
        };
        if let Some(root) = rest.first()
            && !self.anchor.is_root(what, root, 1)?
        {
            return Err(TdxVerifyError::UntrustedRoot { what });
        }
        let signer = Cert::from_der(what, &pem_decode(signer, 0).map_err(pem_err)?)?;
        let cn = signer.subject_cn().unwrap_or_default();
        if !cns.contains(&cn.as_str()) {
            return Err(TdxVerifyError::WrongCertificate {
                what,
                expected,
                found: cn,
            });
        }
        signer.verify_signed_by(&self.crypto, what, &self.anchor.root, "root CA")?;
        Ok(signer)
    }

    fn verify_collateral(
        &self,
        collateral: &TdxCollateral,
    ) -> Result<VerifiedCollateral, TdxVerifyError> {
        let p = collateral.parts();
        let root_crl = Crl::from_der("root CA CRL", &p.root_ca_crl)?;
        root_crl.verify_signature(&self.crypto, "root CA CRL", &self.anchor.root, "root CA")?;
        root_crl.check_not_revoked("root CA", &self.anchor.root)?;

        let tcb_signer = self.collateral_signer(
            "TCB Info signing certificate",
            &p.tcb_info_issuer_chain,
            &[TCB_SIGNING_CN],
            TCB_SIGNING_CN,
        )?;
        root_crl.check_not_revoked("TCB Info signing certificate", &tcb_signer)?;
        self.verify_json_signature(&tcb_signer, &p.tcb_info, &p.tcb_info_signature)
            .map_err(TdxVerifyError::TcbInfoSignature)?;
        let tcb_info = TcbInfo::parse(&p.tcb_info)?;

        let qe_signer = if p.qe_identity_issuer_chain == p.tcb_info_issuer_chain {
            None
        } else {
            let s = self.collateral_signer(
                "QE Identity signing certificate",
                &p.qe_identity_issuer_chain,
                &[TCB_SIGNING_CN],
                TCB_SIGNING_CN,
            )?;
            root_crl.check_not_revoked("QE Identity signing certificate", &s)?;
            Some(s)
        };
        self.verify_json_signature(
            qe_signer.as_ref().unwrap_or(&tcb_signer),
            &p.qe_identity,
            &p.qe_identity_signature,
        )
        .map_err(TdxVerifyError::QeIdentitySignature)?;
        let qe_identity = QeIdentity::parse(&p.qe_identity)?;

        let pck_crl_issuer = self.collateral_signer(
            "PCK CRL issuer",
            &p.pck_crl_issuer_chain,
            &[PCK_PLATFORM_CA_CN, PCK_PROCESSOR_CA_CN],
            "Intel SGX PCK Platform CA or Intel SGX PCK Processor CA",
        )?;
        root_crl.check_not_revoked("PCK CRL issuer", &pck_crl_issuer)?;
        let pck_crl = Crl::from_der("PCK CRL", &p.pck_crl)?;
        pck_crl.verify_signature(&self.crypto, "PCK CRL", &pck_crl_issuer, "PCK CA")?;

        Ok(VerifiedCollateral {
            tcb_info,
            qe_identity,
            root_crl,
            pck_crl,
            pck_crl_issuer,
            tcb_signer,
            qe_signer,
        })
    }

    fn verify_json_signature(
        &self,
        signer: &Cert,
        json: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        if sig.len() != 64 {
            return Err(SignatureError::MalformedSignature);
        }
        self.crypto
            .verify_ecdsa(EcdsaAlg::P256Sha256, signer.public_key(), json, sig)
    }

    fn verify_platform(
        &self,
        quote: &TdxQuote,
        known_ca: Option<&Cert>,
    ) -> Result<Platform, Vec<TdxVerifyError>> {
        const WHAT: &str = "PCK certificate chain";
        let one = |e: TdxVerifyError| alloc::vec![e];
        let pem_err = |source| one(TdxVerifyError::Pem { what: WHAT, source });
        let blocks = pem_blocks(&quote.pck_chain_pem).map_err(pem_err)?;
        let (leaf, ca, root) = match blocks.as_slice() {
            [leaf, ca] => (leaf, ca, None),
            [leaf, ca, root] => (leaf, ca, Some(root)),
            _ => {
                return Err(one(TdxVerifyError::ChainLength {
                    what: WHAT,
                    found: blocks.len(),
                    expected: "2 or 3 (PCK, PCK CA, root)",
                }));
            }
        };
        if let Some(root) = root
            && !self.anchor.is_root(WHAT, root, 2).map_err(one)?
        {
            return Err(one(TdxVerifyError::UntrustedRoot { what: WHAT }));
        }
        let ca_der = pem_decode(ca, 1).map_err(pem_err)?;
        // The PCK CRL's issuer (from verified collateral) is usually this very CA:
        // its signature by the root was checked then.
        let known = known_ca.filter(|k| k.der() == ca_der.as_slice());
        let ca = match known {
            Some(k) => k.clone(),
            None => Cert::from_der("PCK CA", &ca_der).map_err(|e| one(e.into()))?,
        };
        let leaf_der = pem_decode(leaf, 0).map_err(pem_err)?;
        let leaf_cert = Cert::from_der("PCK certificate", &leaf_der).map_err(|e| one(e.into()))?;
        let ca_cn = ca.subject_cn().unwrap_or_default();
        if ca_cn != PCK_PLATFORM_CA_CN && ca_cn != PCK_PROCESSOR_CA_CN {
            return Err(one(TdxVerifyError::WrongCertificate {
                what: "PCK CA",
                expected: "Intel SGX PCK Platform CA or Intel SGX PCK Processor CA",
                found: ca_cn,
            }));
        }
        let leaf_cn = leaf_cert.subject_cn().unwrap_or_default();
        if leaf_cn != PCK_LEAF_CN {
            return Err(one(TdxVerifyError::WrongCertificate {
                what: "PCK certificate",
                expected: PCK_LEAF_CN,
                found: leaf_cn,
            }));
        }
        if known.is_none() {
            ca.verify_signed_by(&self.crypto, "PCK CA", &self.anchor.root, "root CA")
                .map_err(|e| one(e.into()))?;
        }
        leaf_cert
            .verify_signed_by(&self.crypto, "PCK certificate", &ca, "PCK CA")
            .map_err(|e| one(e.into()))?;
        if leaf_cert
            .key_kind("PCK certificate")
            .map_err(|e| one(e.into()))?
            != KeyKind::P256
        {
            return Err(one(TdxVerifyError::PckKeyType));
        }
        let pck = pck_extensions(&leaf_cert).map_err(|e| one(e.into()))?;

        let mut errors = Vec::new();
        if let Err(e) = self.crypto.verify_ecdsa(
            EcdsaAlg::P256Sha256,
            leaf_cert.public_key(),
            &quote.qe_report_raw,
            &quote.qe_report_signature,
        ) {
            errors.push(TdxVerifyError::QeReportSignature(e));
        }
        let mut bound = Vec::with_capacity(quote.qe_auth_data.len().saturating_add(64));
        bound.extend_from_slice(&quote.attestation_key);
        bound.extend_from_slice(&quote.qe_auth_data);
        let digest = self.crypto.sha256(&bound);
        let (head, tail) = quote.qe_report.report_data.split_at(32);
        if head != digest || tail.iter().any(|b| *b != 0) {
            errors.push(TdxVerifyError::QeReportDataMismatch);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Platform {
            pck_sha256: self.crypto.sha256(&leaf_der),
            leaf: leaf_cert,
            ca,
            pck,
        })
    }
}

/// The FMSPC and PCK CA kind of a quote's PCK certificate, read without verifying
/// anything (to know which collateral to fetch, or to describe rejected evidence).
pub fn pck_fmspc_unverified(quote: &TdxQuote) -> Option<([u8; 6], PckCaKind)> {
    let ders = quote.pck_chain_der().ok()?;
    let leaf = Cert::from_der("PCK certificate", ders.first()?).ok()?;
    let fmspc = pck_extensions(&leaf).ok()?.fmspc;
    let ca = ders
        .get(1)
        .and_then(|d| Cert::from_der("PCK CA", d).ok())
        .and_then(|c| c.subject_cn())
        .map_or(PckCaKind::Processor, |cn| {
            if cn == PCK_PLATFORM_CA_CN {
                PckCaKind::Platform
            } else {
                PckCaKind::Processor
            }
        });
    Some((fmspc, ca))
}

/// Which Intel CA issued a PCK certificate (and so which PCK CRL applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PckCaKind {
    /// Intel SGX PCK Platform CA (multi-package platforms).
    Platform,
    /// Intel SGX PCK Processor CA.
    Processor,
}

impl PckCaKind {
    /// The `ca=` value of Intel's PCS API.
    pub const fn pcs_name(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Processor => "processor",
        }
    }
}

#[cfg(test)]
mod tests;
