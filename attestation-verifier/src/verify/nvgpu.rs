//! NVIDIA confidential-GPU report verification.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Chain: the supplied certificates (leaf = attestation key first; a trailing
//!    copy of the pinned root is dropped, and nothing may follow it; at most
//!    [`MAX_DEVICE_CHAIN`] below the root) link by name and signature, each
//!    issuer a CA and the leaf not one, the last signed by the pinned NVIDIA
//!    Device Identity CA; the leaf key is ECDSA P-384. Verified chains are
//!    cached by the hash of the supplied certificates.
//! 2. Validity of every certificate, root included, at the given time.
//! 3. FWID: the firmware id in the leaf's TCG DICE extension (`2.23.133.5.4.1`,
//!    composite-device-id or TcbInfo form) equals the report's FWID field.
//! 4. Nonce: the request's nonce equals the caller's expected nonce.
//! 5. Signature: ECDSA P-384/SHA-384 over request || response up to the
//!    signature, with the leaf key.
//! 6. Revocation: supplied OCSP responses give the status of each device
//!    intermediate (the leaf is made on the GPU and the root is pinned, so
//!    neither has one); a revoked certificate fails verification, missing or
//!    unknown statuses are recorded for the policy.
//! 7. RIMs: each supplied RIM is verified (XML-DSig, chain to the pinned RIM
//!    root, validity; cached by content hash), must describe this report's
//!    driver or VBIOS version and chip, and its signing chain's OCSP statuses
//!    are read as in step 6; the report's measurements are then compared with
//!    the golden values of all RIMs.
//!
//! [`NvGpuVerifier::verify_bundle`] verifies several GPUs' reports (an HGX board
//! has eight), each with its own chain and nonce, in one call, and also fails
//! when two reports come from the same device.
//!
//! Work per call is bounded by the distinct inputs, not by how often they are
//! presented: within one call (one report, or one bundle's reports) the OCSP
//! responses are parsed once, each certificate's revocation status is looked up
//! once, and a device chain or RIM that failed is not checked again for the next
//! report (its failure is repeated, at the RIM's own position). So a bundle costs
//! at most one chain check per distinct chain, one XML-signature check per
//! distinct RIM, one OCSP lookup per distinct certificate, and per report one
//! signature and one comparison. The counts are capped by the bundle
//! ([`crate::bundle::MAX_GPUS`] reports, [`crate::bundle::MAX_RIMS`] RIMs,
//! [`crate::bundle::MAX_OCSP`] responses) and each chain by
//! [`MAX_DEVICE_CHAIN`]; [`crate::bundle::cost::cost`] reads those counts from a
//! bundle's bytes, for a caller that must price a verification before running it.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetString};
use der::{Decode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};

use crate::crypto::{Crypto, EcdsaAlg, SignatureError};
use crate::evidence::nvgpu::NvGpuReport;
use crate::evidence::rim::{Rim, RimParseError, parse_rim};
use crate::roots::nvidia;
use crate::time::{UnixTime, Window};
use crate::verdict::{Failures, Verified};
use crate::verify::ocsp::{CertStatus, OcspError, OcspResponse, parse_ocsp};
use crate::verify::rim::{
    RimComparison, RimKind, RimVerified, RimVerifyError, compare, verify_rim,
};
use crate::verify::x509::{Cert, KeyKind, X509Error};

/// TCG DICE `tcg-dice-TcbInfo` (NVIDIA Hopper writes the composite-device-id form here).
pub const TCG_DICE_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// The OID NVIDIA Blackwell uses for its DICE TcbInfo.
pub const TCG_DICE_TCB_INFO_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1.1");
/// Longest device chain accepted below the root (Hopper and Blackwell have four).
pub const MAX_DEVICE_CHAIN: usize = 6;

/// Why a GPU report failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvGpuVerifyError {
    /// A certificate failed a check.
    #[error("device certificate chain: {0}")]
    Certificate(#[from] X509Error),
    /// The chain has no certificate below the root, or too many.
    #[error("device certificate chain has {0} certificates below the root (1 to 6 accepted)")]
    ChainLength(usize),
    /// Certificates follow the pinned root in the chain (the pinned root is the last one
    /// accepted).
    #[error("device certificate chain has {0} certificates after the pinned root")]
    CertificatesAfterRoot(usize),
    /// Two adjacent certificates do not link by name.
    #[error("device certificate chain is broken at {subject}: its issuer is not {next}")]
    BrokenChain {
        /// The certificate whose issuer is missing.
        subject: String,
        /// The certificate that follows it.
        next: String,
    },
    /// The chain does not end at the pinned root.
    #[error(
        "device certificate chain ends at {last}, which the pinned NVIDIA Device Identity CA did not issue"
    )]
    UntrustedRoot {
        /// The last certificate's common name.
        last: String,
    },
    /// A certificate that issued another is not a CA.
    #[error("device certificate {0} issues certificates but is not a CA")]
    NotCa(String),
    /// The leaf is a CA certificate, not an attestation key.
    #[error("device chain leaf {0} is a CA certificate, not the attestation key")]
    LeafIsCa(String),
    /// The leaf key is not ECDSA P-384.
    #[error("attestation key is not ECDSA P-384")]
    LeafKeyType,
    /// The leaf has no FWID in a TCG DICE extension.
    #[error("attestation certificate {0} has no FWID in a TCG DICE extension")]
    MissingCertFwid(String),
    /// The report has no FWID field.
    #[error("report has no FWID field")]
    MissingReportFwid,
    /// The report's FWID differs from the certificate's.
    #[error("report FWID {report} differs from the attestation certificate's {certificate}")]
    FwidMismatch {
        /// In the report (hex).
        report: String,
        /// In the certificate (hex).
        certificate: String,
    },
    /// The request nonce is not the expected one.
    #[error("request nonce {found} is not the expected nonce {expected}")]
    NonceMismatch {
        /// Expected (hex).
        expected: String,
        /// In the report (hex).
        found: String,
    },
    /// The report signature does not verify.
    #[error("report signature does not verify with the attestation key: {0}")]
    ReportSignature(SignatureError),
    /// An OCSP response says a certificate is revoked.
    #[error("{subject} is revoked (since {at})")]
    Revoked {
        /// The certificate's common name.
        subject: String,
        /// Revocation time.
        at: UnixTime,
    },
    /// A supplied OCSP response is invalid.
    #[error("OCSP: {0}")]
    Ocsp(#[from] OcspError),
    /// A supplied RIM is malformed.
    #[error("RIM {position}: {source}")]
    RimParse {
        /// Its position among the supplied RIMs.
        position: usize,
        /// Why.
        source: RimParseError,
    },
    /// A supplied RIM failed verification.
    #[error("RIM {position} ({version}): {source}")]
    Rim {
        /// Its position among the supplied RIMs.
        position: usize,
        /// Its colloquial version.
        version: String,
        /// Why.
        source: RimVerifyError,
    },
    /// A RIM describes neither the report's driver nor its VBIOS.
    #[error(
        "RIM for version {rim} matches neither the driver ({driver}) nor the VBIOS ({vbios}) of the report"
    )]
    RimNotApplicable {
        /// The RIM's version.
        rim: String,
        /// The report's driver version.
        driver: String,
        /// The report's VBIOS version.
        vbios: String,
    },
    /// A RIM is for another chip.
    #[error("RIM for {rim} does not describe this {chip} GPU")]
    RimChip {
        /// The RIM's product.
        rim: String,
        /// The chip named by the device certificate.
        chip: String,
    },
    /// Two RIMs of the same kind were supplied.
    #[error("more than one {0} RIM supplied")]
    DuplicateRim(&'static str),
    /// Two reports of a bundle come from one device.
    #[error("GPU {first} and GPU {second} of the bundle have the same attestation certificate")]
    DuplicateDevice {
        /// Position of the first.
        first: usize,
        /// Position of the second.
        second: usize,
    },
}

/// What comes with a report: its device chain, RIMs and OCSP responses.
#[derive(Clone, Copy, Debug, Default)]
pub struct NvGpuCollateral<'a> {
    /// The device certificate chain, DER, leaf first (root optional).
    pub cert_chain: &'a [Vec<u8>],
    /// Driver and/or VBIOS RIMs (SWID XML).
    pub rims: &'a [Vec<u8>],
    /// OCSP responses (DER) for device-chain and RIM-chain certificates.
    pub ocsp: &'a [Vec<u8>],
}

/// One GPU of a bundle: its report, device chain and expected nonce.
#[derive(Clone, Copy, Debug)]
pub struct GpuInput<'a> {
    /// The parsed report.
    pub report: &'a NvGpuReport,
    /// Its device certificate chain, DER, leaf first.
    pub cert_chain: &'a [Vec<u8>],
    /// The nonce its request must carry.
    pub nonce: [u8; 32],
}

/// A GPU generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuArch {
    /// H100/H200 (GH100).
    Hopper,
    /// B100/B200 (GB100/GB10x).
    Blackwell,
}

impl GpuArch {
    /// "Hopper" or "Blackwell".
    pub fn name(self) -> &'static str {
        match self {
            Self::Hopper => "Hopper",
            Self::Blackwell => "Blackwell",
        }
    }

    /// The generation of a chip name such as `GH100`.
    pub(crate) fn from_chip(chip: &str) -> Option<Self> {
        if chip.starts_with("GH") {
            Some(Self::Hopper)
        } else if chip.starts_with("GB") {
            Some(Self::Blackwell)
        } else {
            None
        }
    }
}

/// One certificate's revocation status as learned from the supplied OCSP responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspCheck {
    /// The certificate's common name.
    pub subject: String,
    /// Its status; `None` when no supplied response covers it.
    pub status: Option<CertStatus>,
    /// The covering response's `thisUpdate`.
    pub this_update: Option<UnixTime>,
    /// The verification time the status was checked at.
    pub checked_at: UnixTime,
}

/// A verified RIM, as applied to a report.
#[derive(Clone, Debug)]
pub struct RimSummary {
    /// Driver or VBIOS.
    pub kind: RimKind,
    /// Its colloquial version.
    pub version: String,
    /// Its tag id.
    pub tag_id: String,
    /// Its signer's common name.
    pub signer: String,
    /// Revocation statuses of its signing chain (signer and intermediates).
    pub ocsp: Vec<OcspCheck>,
}

/// A report that verified, with what its chain and collateral established.
#[derive(Clone, Debug)]
pub struct NvGpuEvidence {
    /// The report.
    pub report: NvGpuReport,
    /// The chip named by the attestation certificate (e.g. `GH100`).
    pub chip: String,
    /// Its generation, when known.
    pub arch: Option<GpuArch>,
    /// The attestation certificate's subject common name.
    pub leaf_subject: String,
    /// SHA-256 of the attestation certificate's DER.
    pub leaf_sha256: [u8; 32],
    /// Certificates in the chain, root included.
    pub chain_length: usize,
    /// When the chain is valid.
    pub chain_validity: Window,
    /// Revocation statuses of the device intermediates.
    pub device_ocsp: Vec<OcspCheck>,
    /// The RIMs applied.
    pub rims: Vec<RimSummary>,
    /// The comparison with their golden values (when any RIM was supplied).
    pub rim_comparison: Option<RimComparison>,
}

impl NvGpuEvidence {
    /// Whether a verified RIM of `kind` was applied.
    pub(crate) fn has_rim(&self, kind: RimKind) -> bool {
        self.rims.iter().any(|r| r.kind == kind)
    }
}

/// A verified device chain.
#[derive(Clone, Debug)]
struct ChainInfo {
    /// Leaf first, without the root.
    certs: Vec<Cert>,
    leaf_key: Vec<u8>,
    fwid: Option<Vec<u8>>,
    chip: String,
    validity: Window,
    leaf_sha256: [u8; 32],
}

/// Upper bound on each cache; a cache is cleared when it fills.
const CACHE_CAPACITY: usize = 1024;

/// What one verification (one report, or all reports of a bundle) has already worked out, so
/// that identical inputs are checked once however many GPUs present them: device chains and
/// RIMs that failed (by content hash; verified ones go to the verifier's lasting caches), the
/// parsed OCSP responses, and each certificate's revocation status. It lives for one call
/// only: outcomes that depend on the time are never reused at another time.
#[derive(Default)]
struct Memo {
    /// The bundle's OCSP responses, parsed once, with the parse failures.
    ocsp: Option<(Vec<OcspResponse>, Vec<NvGpuVerifyError>)>,
    /// Device chains that failed, by [`NvGpuVerifier::chain_key`].
    failed_chains: BTreeMap<[u8; 32], NvGpuVerifyError>,
    /// RIMs that failed, by the SHA-256 of their bytes.
    failed_rims: BTreeMap<[u8; 32], NvGpuVerifyError>,
    /// The SHA-256 of each RIM's bytes, by position (the RIMs are the same for every report
    /// of the call, so each is hashed once).
    rim_keys: BTreeMap<usize, [u8; 32]>,
    /// Revocation statuses, by the SHA-256 of the certificate and its issuer, with the
    /// failures their check recorded.
    statuses: BTreeMap<[u8; 32], (OcspCheck, Vec<NvGpuVerifyError>)>,
}

/// A RIM failure as it reads at `position` (the same RIM bytes may appear more than once).
fn at_position(e: NvGpuVerifyError, position: usize) -> NvGpuVerifyError {
    match e {
        NvGpuVerifyError::RimParse { source, .. } => {
            NvGpuVerifyError::RimParse { position, source }
        }
        NvGpuVerifyError::Rim {
            version, source, ..
        } => NvGpuVerifyError::Rim {
            position,
            version,
            source,
        },
        other => other,
    }
}

/// Verifies NVIDIA GPU reports, caching verified device chains and RIMs.
pub struct NvGpuVerifier<C: Crypto> {
    crypto: C,
    device_root: Cert,
    rim_root: Cert,
    chains: BTreeMap<[u8; 32], Arc<ChainInfo>>,
    rims: BTreeMap<[u8; 32], Arc<(Rim, RimVerified)>>,
}

impl<C: Crypto> NvGpuVerifier<C> {
    /// A verifier over NVIDIA's pinned roots.
    pub fn new(crypto: C) -> Result<Self, X509Error> {
        Self::with_roots(crypto, nvidia::DEVICE_IDENTITY_CA, nvidia::RIM_ROOT_CA)
    }

    /// A verifier over the given device and RIM roots (DER).
    pub fn with_roots(crypto: C, device_root: &[u8], rim_root: &[u8]) -> Result<Self, X509Error> {
        Ok(Self {
            crypto,
            device_root: Cert::from_der("device root", device_root)?,
            rim_root: Cert::from_der("RIM root", rim_root)?,
            chains: BTreeMap::new(),
            rims: BTreeMap::new(),
        })
    }

    /// The crypto backend.
    pub fn crypto(&self) -> &C {
        &self.crypto
    }

    /// Number of verified device chains in the cache.
    pub fn cached_chains(&self) -> usize {
        self.chains.len()
    }

    /// Number of verified RIMs in the cache.
    pub fn cached_rims(&self) -> usize {
        self.rims.len()
    }

    /// Verifies `report` with its collateral at `now`; the request must carry
    /// `expected_nonce`.
    pub fn verify(
        &mut self,
        report: &NvGpuReport,
        collateral: &NvGpuCollateral<'_>,
        expected_nonce: &[u8; 32],
        now: UnixTime,
    ) -> Result<Verified<NvGpuEvidence>, Failures<NvGpuVerifyError>> {
        let mut memo = Memo::default();
        self.verify_inner(report, collateral, expected_nonce, now, None, &mut memo)
    }

    /// [`Self::verify`]; with `selection`, RIMs for another GPU (another version or chip)
    /// are set aside there instead of failing the report (see [`Self::verify_bundle`]).
    fn verify_inner(
        &mut self,
        report: &NvGpuReport,
        collateral: &NvGpuCollateral<'_>,
        expected_nonce: &[u8; 32],
        now: UnixTime,
        selection: Option<&mut RimSelection>,
        memo: &mut Memo,
    ) -> Result<Verified<NvGpuEvidence>, Failures<NvGpuVerifyError>> {
        let (ocsp, ocsp_errors) = match memo.ocsp.take() {
            Some(parsed) => parsed,
            None => self.parse_ocsp_all(collateral.ocsp),
        };
        let mut errors = ocsp_errors.clone();
        let chain_key = self.chain_key(collateral.cert_chain);
        // Step 1
        if !self.chains.contains_key(&chain_key) {
            if let Some(e) = memo.failed_chains.get(&chain_key) {
                errors.push(e.clone());
            } else {
                match self.verify_chain(collateral.cert_chain) {
                    Ok(info) => {
                        if self.chains.len() >= CACHE_CAPACITY {
                            self.chains.clear();
                        }
                        self.chains.insert(chain_key, Arc::new(info));
                    }
                    Err(e) => {
                        memo.failed_chains.insert(chain_key, e.clone());
                        errors.push(e);
                    }
                }
            }
        }
        let chain = self.chains.get(&chain_key).cloned();
        // Step 4 (independent of the chain)
        if report.request.nonce != *expected_nonce {
            errors.push(NvGpuVerifyError::NonceMismatch {
                expected: hex::encode(expected_nonce),
                found: hex::encode(report.request.nonce),
            });
        }
        let mut device_ocsp = Vec::new();
        if let Some(info) = &chain {
            self.check_chain_use(report, info, now, &mut errors);
            // Step 6: intermediates only (index 1..).
            let issuers = info
                .certs
                .iter()
                .skip(2)
                .chain(core::iter::once(&self.device_root));
            for (cert, issuer) in info.certs.iter().skip(1).zip(issuers) {
                device_ocsp.push(self.ocsp_status(&ocsp, cert, issuer, now, &mut errors, memo));
            }
        }
        // Step 7
        let (rims, rim_comparison) = self.apply_rims(
            report,
            collateral.rims,
            chain.as_deref(),
            &ocsp,
            now,
            &mut errors,
            selection,
            memo,
        );
        memo.ocsp = Some((ocsp, ocsp_errors));
        match chain {
            Some(info) if errors.is_empty() => Ok(Verified::new(NvGpuEvidence {
                report: report.clone(),
                arch: GpuArch::from_chip(&info.chip),
                leaf_subject: info
                    .certs
                    .first()
                    .and_then(Cert::subject_cn)
                    .unwrap_or_default(),
                chip: info.chip.clone(),
                leaf_sha256: info.leaf_sha256,
                chain_length: info.certs.len().saturating_add(1),
                chain_validity: info.validity,
                device_ocsp,
                rims,
                rim_comparison,
            })),
            _ => Err(Failures(errors)),
        }
    }

    /// Verifies several GPUs' reports in one call. Each entry is a report, its
    /// device chain and its expected nonce; the RIMs and OCSP responses are
    /// shared. Beyond each report's own checks, no two reports may share an
    /// attestation certificate (N reports must come from N devices).
    ///
    /// GPUs of a bundle may differ (models, VBIOS versions, chips): each report is
    /// compared with the RIMs that describe it (its driver or VBIOS version, its chip),
    /// and a RIM for another GPU of the bundle is no fault of this one. A RIM that
    /// describes none of the bundle's GPUs fails every report, with the reason it does
    /// not apply to each (for one GPU, exactly as [`Self::verify`] would). Reports may
    /// share a nonce (NVIDIA's multi-GPU tools challenge all GPUs with one).
    pub fn verify_bundle(
        &mut self,
        gpus: &[GpuInput<'_>],
        rims: &[Vec<u8>],
        ocsp: &[Vec<u8>],
        now: UnixTime,
    ) -> Vec<Result<Verified<NvGpuEvidence>, Failures<NvGpuVerifyError>>> {
        let mut selections: Vec<RimSelection> = Vec::with_capacity(gpus.len());
        // Identical chains, RIMs and OCSP checks are worked out once for all the reports.
        let mut memo = Memo::default();
        let mut out: Vec<Result<Verified<NvGpuEvidence>, Failures<NvGpuVerifyError>>> = gpus
            .iter()
            .map(|g| {
                let collateral = NvGpuCollateral {
                    cert_chain: g.cert_chain,
                    rims,
                    ocsp,
                };
                let mut selection = RimSelection::default();
                let r = self.verify_inner(
                    g.report,
                    &collateral,
                    &g.nonce,
                    now,
                    Some(&mut selection),
                    &mut memo,
                );
                selections.push(selection);
                r
            })
            .collect();
        // A RIM that no GPU took: each GPU says why it is not for it.
        let mut unused: Vec<(usize, NvGpuVerifyError)> = Vec::new();
        for position in 0..rims.len() {
            if selections.iter().any(|s| s.applied.contains(&position)) {
                continue;
            }
            for (i, s) in selections.iter_mut().enumerate() {
                if let Some(k) = s.set_aside.iter().position(|(p, _)| *p == position) {
                    unused.push((i, s.set_aside.swap_remove(k).1));
                }
            }
        }
        fail_into(&mut out, unused);
        // One device is one attestation key. Keys, not certificate bytes, are
        // compared: an ECDSA signature has two valid encodings (s and n - s), so
        // one certificate can be presented as two different byte strings.
        let keys: Vec<Option<Vec<u8>>> = gpus
            .iter()
            .map(|g| {
                g.cert_chain
                    .first()
                    .and_then(|d| Cert::from_der("attestation certificate", d).ok())
                    .map(|c| c.public_key().to_vec())
            })
            .collect();
        // A report is refused once, naming the first earlier report of its device: the
        // failures grow with the reports, not with their pairs.
        let mut dup: Vec<(usize, NvGpuVerifyError)> = Vec::new();
        for (j, kj) in keys.iter().enumerate() {
            if kj.is_none() {
                continue;
            }
            if let Some(i) = keys.iter().take(j).position(|ki| ki == kj) {
                dup.push((
                    j,
                    NvGpuVerifyError::DuplicateDevice {
                        first: i,
                        second: j,
                    },
                ));
            }
        }
        fail_into(&mut out, dup);
        out
    }

    fn chain_key(&self, chain: &[Vec<u8>]) -> [u8; 32] {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"sigil.nvgpu.chain.v1");
        for der in chain {
            buf.extend_from_slice(&(der.len() as u64).to_le_bytes());
            buf.extend_from_slice(der);
        }
        self.crypto.sha256(&buf)
    }

    /// Step 1, without time.
    fn verify_chain(&self, ders: &[Vec<u8>]) -> Result<ChainInfo, NvGpuVerifyError> {
        let crypto: &dyn Crypto = &self.crypto;
        // A trailing copy of the pinned root is allowed; nothing may follow it.
        let below_root = ders
            .iter()
            .position(|d| d.as_slice() == self.device_root.der())
            .unwrap_or(ders.len());
        let after = ders.len().saturating_sub(below_root.saturating_add(1));
        if after > 0 {
            return Err(NvGpuVerifyError::CertificatesAfterRoot(after));
        }
        let ders = ders.get(..below_root).unwrap_or_default();
        if ders.is_empty() || ders.len() > MAX_DEVICE_CHAIN {
            return Err(NvGpuVerifyError::ChainLength(ders.len()));
        }
        let certs = ders
            .iter()
            .map(|der| Cert::from_der("device certificate", der))
            .collect::<Result<Vec<_>, _>>()?;
        let cn = |c: &Cert| c.subject_cn().unwrap_or_default();
        let issuers = certs
            .iter()
            .skip(1)
            .chain(core::iter::once(&self.device_root));
        for (cert, issuer) in certs.iter().zip(issuers) {
            let is_root = core::ptr::eq(issuer, &self.device_root);
            if !cert.issued_by_name(issuer) {
                return Err(if is_root {
                    NvGpuVerifyError::UntrustedRoot { last: cn(cert) }
                } else {
                    NvGpuVerifyError::BrokenChain {
                        subject: cn(cert),
                        next: cn(issuer),
                    }
                });
            }
            if !issuer.is_ca() {
                return Err(NvGpuVerifyError::NotCa(cn(issuer)));
            }
            cert.verify_signed_by(crypto, "device certificate", issuer, "its issuer")
                .map_err(|e| match (is_root, e) {
                    (true, X509Error::BadSignature { .. }) => {
                        NvGpuVerifyError::UntrustedRoot { last: cn(cert) }
                    }
                    (_, e) => e.into(),
                })?;
        }
        let leaf = certs.first().ok_or(NvGpuVerifyError::ChainLength(0))?;
        if leaf.is_ca() {
            return Err(NvGpuVerifyError::LeafIsCa(cn(leaf)));
        }
        if leaf.key_kind("attestation key")? != KeyKind::P384 {
            return Err(NvGpuVerifyError::LeafKeyType);
        }
        let leaf_cn = cn(leaf);
        let chip = leaf_cn
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let validity = certs.iter().fold(self.device_root.validity(), |w, c| {
            w.intersect(&c.validity())
        });
        Ok(ChainInfo {
            leaf_key: leaf.public_key().to_vec(),
            fwid: dice_fwid(leaf),
            leaf_sha256: self.crypto.sha256(leaf.der()),
            chip,
            validity,
            certs,
        })
    }

    /// Steps 2, 3 and 5 against a verified chain.
    fn check_chain_use(
        &self,
        report: &NvGpuReport,
        info: &ChainInfo,
        now: UnixTime,
        errors: &mut Vec<NvGpuVerifyError>,
    ) {
        // Step 2
        if !info.validity.contains(now) {
            let mut found = false;
            for c in info.certs.iter().chain(core::iter::once(&self.device_root)) {
                if let Err(e) = c.check_validity("device certificate", now) {
                    errors.push(e.into());
                    found = true;
                }
            }
            if !found {
                errors.push(
                    X509Error::Expired {
                        what: "device certificate chain",
                        at: now,
                        not_before: info.validity.not_before,
                        not_after: info.validity.not_after,
                    }
                    .into(),
                );
            }
        }
        // Step 3
        let leaf_cn = || {
            info.certs
                .first()
                .and_then(Cert::subject_cn)
                .unwrap_or_default()
        };
        match (&report.fields.fwid, &info.fwid) {
            (_, None) => errors.push(NvGpuVerifyError::MissingCertFwid(leaf_cn())),
            (None, Some(_)) => errors.push(NvGpuVerifyError::MissingReportFwid),
            (Some(r), Some(c)) if r != c => errors.push(NvGpuVerifyError::FwidMismatch {
                report: hex::encode(r),
                certificate: hex::encode(c),
            }),
            _ => {}
        }
        // Step 5
        if let Err(e) = self.crypto.verify_ecdsa(
            EcdsaAlg::P384Sha384,
            &info.leaf_key,
            &report.signed,
            &report.signature,
        ) {
            errors.push(NvGpuVerifyError::ReportSignature(e));
        }
    }

    fn parse_ocsp_all(&self, ders: &[Vec<u8>]) -> (Vec<OcspResponse>, Vec<NvGpuVerifyError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for der in ders {
            match parse_ocsp(der) {
                Ok(r) => out.push(r),
                Err(e) => errors.push(e.into()),
            }
        }
        (out, errors)
    }

    /// [`Self::ocsp_status_of`], once per certificate and issuer in one verification.
    fn ocsp_status(
        &self,
        responses: &[OcspResponse],
        cert: &Cert,
        issuer: &Cert,
        now: UnixTime,
        errors: &mut Vec<NvGpuVerifyError>,
        memo: &mut Memo,
    ) -> OcspCheck {
        let mut pair = Vec::with_capacity(cert.der().len().saturating_add(issuer.der().len()));
        pair.extend_from_slice(&(cert.der().len() as u64).to_le_bytes());
        pair.extend_from_slice(cert.der());
        pair.extend_from_slice(issuer.der());
        let key = self.crypto.sha256(&pair);
        if let Some((check, found)) = memo.statuses.get(&key) {
            errors.extend(found.iter().cloned());
            return check.clone();
        }
        let mut found = Vec::new();
        let check = self.ocsp_status_of(responses, cert, issuer, now, &mut found);
        errors.extend(found.iter().cloned());
        memo.statuses.insert(key, (check.clone(), found));
        check
    }

    fn ocsp_status_of(
        &self,
        responses: &[OcspResponse],
        cert: &Cert,
        issuer: &Cert,
        now: UnixTime,
        errors: &mut Vec<NvGpuVerifyError>,
    ) -> OcspCheck {
        let subject = cert.subject_cn().unwrap_or_default();
        let mut status = None;
        let mut this_update = None;
        for r in responses {
            match r.status_dated(&self.crypto, cert, issuer, now) {
                Ok(Some((s, t))) => {
                    status = Some(s);
                    this_update = Some(t);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    errors.push(e.into());
                    return OcspCheck {
                        subject,
                        status,
                        this_update,
                        checked_at: now,
                    };
                }
            }
        }
        if let Some(CertStatus::Revoked { at }) = status {
            errors.push(NvGpuVerifyError::Revoked {
                subject: subject.clone(),
                at,
            });
        }
        OcspCheck {
            subject,
            status,
            this_update,
            checked_at: now,
        }
    }

    fn verified_rim(
        &mut self,
        position: usize,
        bytes: &[u8],
        now: UnixTime,
        memo: &mut Memo,
    ) -> Result<Arc<(Rim, RimVerified)>, NvGpuVerifyError> {
        let key = match memo.rim_keys.get(&position) {
            Some(key) => *key,
            None => {
                let key = self.crypto.sha256(bytes);
                memo.rim_keys.insert(position, key);
                key
            }
        };
        if let Some(e) = memo.failed_rims.get(&key) {
            return Err(at_position(e.clone(), position));
        }
        let entry = self.verified_rim_uncached(position, bytes, key, now);
        if let Err(e) = &entry {
            memo.failed_rims.insert(key, e.clone());
        }
        entry
    }

    /// [`Self::verified_rim`] without the memo of failures.
    fn verified_rim_uncached(
        &mut self,
        position: usize,
        bytes: &[u8],
        key: [u8; 32],
        now: UnixTime,
    ) -> Result<Arc<(Rim, RimVerified)>, NvGpuVerifyError> {
        if let Some(entry) = self.rims.get(&key) {
            let (rim, v) = &**entry;
            // Signatures were checked when cached; only time moves.
            if !v.validity.contains(now) {
                for c in v.chain.iter().chain(core::iter::once(&self.rim_root)) {
                    c.check_validity("RIM certificate", now).map_err(|e| {
                        NvGpuVerifyError::Rim {
                            position,
                            version: rim.colloquial_version.clone(),
                            source: e.into(),
                        }
                    })?;
                }
            }
            return Ok(Arc::clone(entry));
        }
        let rim =
            parse_rim(bytes).map_err(|source| NvGpuVerifyError::RimParse { position, source })?;
        let v = verify_rim(&self.crypto, &rim, &self.rim_root, now).map_err(|source| {
            NvGpuVerifyError::Rim {
                position,
                version: rim.colloquial_version.clone(),
                source,
            }
        })?;
        if self.rims.len() >= CACHE_CAPACITY {
            self.rims.clear();
        }
        let entry = Arc::new((rim, v));
        self.rims.insert(key, Arc::clone(&entry));
        Ok(entry)
    }

    #[allow(clippy::too_many_arguments)] // one private step of `verify_inner`
    fn apply_rims(
        &mut self,
        report: &NvGpuReport,
        rims: &[Vec<u8>],
        chain: Option<&ChainInfo>,
        ocsp: &[OcspResponse],
        now: UnixTime,
        errors: &mut Vec<NvGpuVerifyError>,
        mut selection: Option<&mut RimSelection>,
        memo: &mut Memo,
    ) -> (Vec<RimSummary>, Option<RimComparison>) {
        let mut applied: Vec<(RimKind, Arc<(Rim, RimVerified)>)> = Vec::new();
        let mut summaries = Vec::new();
        let driver = report.fields.driver_version.clone().unwrap_or_default();
        let vbios = report.fields.vbios_version.clone().unwrap_or_default();
        for (position, bytes) in rims.iter().enumerate() {
            let entry = match self.verified_rim(position, bytes, now, memo) {
                Ok(x) => x,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let (rim, v) = &*entry;
            let version = rim.colloquial_version.clone();
            // Not for this GPU: an error, or set aside when a bundle selects.
            let mut not_for_this = |e: NvGpuVerifyError| match selection.as_deref_mut() {
                Some(s) => s.set_aside.push((position, e)),
                None => errors.push(e),
            };
            let kind = if !driver.is_empty() && version.eq_ignore_ascii_case(&driver) {
                RimKind::Driver
            } else if !vbios.is_empty() && version.eq_ignore_ascii_case(&vbios) {
                RimKind::Vbios
            } else {
                not_for_this(NvGpuVerifyError::RimNotApplicable {
                    rim: version,
                    driver: driver.clone(),
                    vbios: vbios.clone(),
                });
                continue;
            };
            if let Some(info) = chain {
                let product = rim.product.clone().unwrap_or_else(|| rim.name.clone());
                if !product.eq_ignore_ascii_case(&info.chip) {
                    not_for_this(NvGpuVerifyError::RimChip {
                        rim: product,
                        chip: info.chip.clone(),
                    });
                    continue;
                }
            }
            if let Some(s) = selection.as_deref_mut() {
                s.applied.push(position);
            }
            if applied.iter().any(|(k, _)| *k == kind) {
                errors.push(NvGpuVerifyError::DuplicateRim(kind.name()));
                continue;
            }
            let issuers = v
                .chain
                .iter()
                .skip(1)
                .chain(core::iter::once(&self.rim_root));
            let mut rim_ocsp = Vec::new();
            for (cert, issuer) in v.chain.iter().zip(issuers) {
                rim_ocsp.push(self.ocsp_status(ocsp, cert, issuer, now, errors, memo));
            }
            summaries.push(RimSummary {
                kind,
                version,
                tag_id: rim.tag_id.clone(),
                signer: v.signer.clone(),
                ocsp: rim_ocsp,
            });
            applied.push((kind, Arc::clone(&entry)));
        }
        if applied.is_empty() {
            return (summaries, None);
        }
        let refs: Vec<(RimKind, &Rim)> = applied.iter().map(|(k, e)| (*k, &e.0)).collect();
        (summaries, Some(compare(report, &refs)))
    }
}

/// Which of a bundle's RIMs one report took, and why it set the others aside.
#[derive(Default)]
struct RimSelection {
    /// Positions of the RIMs that describe the report.
    applied: Vec<usize>,
    /// Positions of the RIMs for another GPU, with the error they would be alone.
    set_aside: Vec<(usize, NvGpuVerifyError)>,
}

/// Adds `failures` (report position, error) to the results, failing those that passed.
fn fail_into(
    out: &mut [Result<Verified<NvGpuEvidence>, Failures<NvGpuVerifyError>>],
    failures: Vec<(usize, NvGpuVerifyError)>,
) {
    for (j, e) in failures {
        if let Some(slot) = out.get_mut(j) {
            match slot {
                Ok(_) => *slot = Err(Failures::one(e)),
                Err(f) => f.0.push(e),
            }
        }
    }
}

#[derive(Sequence)]
struct Fwid {
    hash_alg: ObjectIdentifier,
    digest: OctetString,
}

/// RIoT/DICE composite device id: version, device key, FWID.
#[derive(Sequence)]
struct CompositeDeviceId<'a> {
    version: u8,
    device_id: AnyRef<'a>,
    fwid: Fwid,
}

/// The FWID in a certificate's TCG DICE extension: the composite-device-id
/// form (Hopper) or the first FWID of a TcbInfo's `[6] fwids` (Blackwell).
pub(crate) fn dice_fwid(cert: &Cert) -> Option<Vec<u8>> {
    if let Some(v) = cert.extension(&TCG_DICE_TCB_INFO) {
        if let Ok(c) = CompositeDeviceId::from_der(v) {
            return Some(c.fwid.digest.as_bytes().to_vec());
        }
        if let Some(f) = tcb_info_fwid(v) {
            return Some(f);
        }
    }
    cert.extension(&TCG_DICE_TCB_INFO_1).and_then(tcb_info_fwid)
}

/// `DiceTcbInfo ::= SEQUENCE { ..., fwids [6] IMPLICIT SEQUENCE OF FWID, ... }`.
fn tcb_info_fwid(der: &[u8]) -> Option<Vec<u8>> {
    let outer = AnyRef::from_der(der).ok()?;
    if outer.tag() != Tag::Sequence {
        return None;
    }
    let mut fields = SliceReader::new(outer.value()).ok()?;
    while !fields.is_finished() {
        let field = AnyRef::decode(&mut fields).ok()?;
        if field.tag()
            == (Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(6),
            })
        {
            let mut fwids = SliceReader::new(field.value()).ok()?;
            let first = Fwid::decode(&mut fwids).ok()?;
            return Some(first.digest.as_bytes().to_vec());
        }
    }
    None
}
