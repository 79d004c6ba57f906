//! SEV-SNP report verification.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Parse the endorsement key certificate (VCEK or VLEK) and pick the product:
//!    from the report's CPUID fields (v3+) and the certificate's product name;
//!    when both exist they must agree.
//! 2. Take the pinned ARK of that product. A supplied ARK must be that ARK.
//! 3. Take the intermediate: the pinned ASK (VCEK) or ASVK (VLEK), or a supplied
//!    one that the pinned ARK signed and that is of the kind the key needs.
//! 4. Check ARK -> intermediate -> endorsement key signatures and validity at `now`.
//!    The result is cached by the hash of the supplied certificates.
//! 5. With a CRL: verify its signature by the product's ARK, require
//!    `thisUpdate <= now < nextUpdate`, and check that neither the intermediate
//!    (ASK/ASVK) nor the endorsement key (VCEK/VLEK) is listed.
//! 6. Verify the report's ECDSA P-384 signature over bytes `0..0x2A0`.
//! 7. Bind the report to the certificate: reported TCB equals the certificate's
//!    TCB extensions, and (VCEK, unmasked) chip_id equals its hwID.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::string::String;
use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use der::Decode;

use crate::crypto::{Crypto, EcdsaAlg, SignatureError};
use crate::evidence::snp::{Product, SigningKey, SnpReport, TcbVersion};
use crate::roots::amd;
use crate::time::{UnixTime, Window};
use crate::verdict::{Failures, Verified};
use crate::verify::x509::{Cert, Crl, X509Error};

/// AMD's VCEK/VLEK certificate extensions (AMD "Versioned Chip Endorsement Key
/// (VCEK) Certificate and KDS Interface Specification").
mod oid {
    use const_oid::ObjectIdentifier;
    pub(super) const PRODUCT_NAME: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    pub(super) const BL_SPL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub(super) const TEE_SPL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub(super) const SNP_SPL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub(super) const UCODE_SPL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub(super) const FMC_SPL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    pub(super) const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
}

/// Why an SNP report failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpVerifyError {
    /// A certificate or CRL failed a check.
    #[error(transparent)]
    Certificate(#[from] X509Error),
    /// Neither the report nor the certificate names a known product.
    #[error("cannot tell the product: report CPUID and certificate name no known AMD product")]
    UnknownProduct,
    /// The report's CPUID and the certificate name different products.
    #[error("report is from a {report} CPU but the certificate is for {certificate}")]
    ProductMismatch {
        /// Product named by the report.
        report: Product,
        /// Product named by the certificate.
        certificate: Product,
    },
    /// The supplied ARK is not byte for byte the pinned ARK of the report's product.
    #[error("supplied ARK ({supplied}) is not the pinned ARK-{product}")]
    UntrustedArk {
        /// The product the evidence is for.
        product: Product,
        /// Common name of the supplied certificate.
        supplied: String,
    },
    /// The intermediate is not the kind the signing key needs (ASK for VCEK, ASVK for VLEK).
    #[error("{signing_key} must be issued by {expected}, but the intermediate is {found}")]
    WrongIntermediate {
        /// The report's signing key.
        signing_key: &'static str,
        /// The intermediate's expected common name.
        expected: String,
        /// The intermediate's common name.
        found: String,
    },
    /// The endorsement certificate is not the kind the report says signed it.
    #[error("report is signed by a {signing_key}, but the certificate is {found}")]
    WrongEndorsementKind {
        /// The report's signing key.
        signing_key: &'static str,
        /// The certificate's common name.
        found: String,
    },
    /// The endorsement key is not a P-384 key.
    #[error("endorsement key is not an ECDSA P-384 key")]
    EndorsementKeyType,
    /// The report signature does not verify under the endorsement key.
    #[error("report signature does not verify with the {signing_key}: {source}")]
    ReportSignature {
        /// VCEK or VLEK.
        signing_key: &'static str,
        /// What the signature check said.
        source: SignatureError,
    },
    /// A reported TCB component differs from the one certified.
    #[error("reported TCB {component} is {reported}, the certificate says {certified}")]
    TcbMismatch {
        /// Which component.
        component: &'static str,
        /// In the report.
        reported: u8,
        /// In the certificate.
        certified: u8,
    },
    /// A TCB extension is missing from the certificate.
    #[error("certificate lacks the TCB extension {0}")]
    MissingTcbExtension(&'static str),
    /// The report's chip id differs from the VCEK's hwID.
    #[error("report chip_id does not match the VCEK hwID")]
    ChipIdMismatch,
    /// An unmasked VCEK-signed report, but the certificate has no hwID.
    #[error("VCEK has no hwID extension to bind the report's chip_id")]
    MissingHwId,
    /// The AMD CRL lists a certificate of the chain.
    #[error("the {certificate} (serial {serial}) is revoked by AMD's CRL")]
    Revoked {
        /// Which certificate.
        certificate: SnpCertificate,
        /// Its serial number, hex.
        serial: String,
    },
    /// The AMD CRL was issued after the verification time.
    #[error("AMD CRL is issued at {this_update}, after the verification time {at}")]
    CrlNotYetValid {
        /// Its `thisUpdate`.
        this_update: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The AMD CRL's `nextUpdate` is not after the verification time.
    #[error("AMD CRL expired at {next_update} (nextUpdate), verification time {at}")]
    CrlExpired {
        /// Its `nextUpdate`.
        next_update: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The AMD CRL has no `nextUpdate`, so its freshness cannot be judged.
    #[error("AMD CRL has no nextUpdate")]
    CrlWithoutNextUpdate,
}

/// A certificate of an SEV-SNP chain, as revocation reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnpCertificate {
    /// The chip's Versioned Chip Endorsement Key certificate.
    Vcek,
    /// The cloud provider's Versioned Loaded Endorsement Key certificate.
    Vlek,
    /// The AMD SEV Key (issues VCEKs).
    Ask,
    /// The AMD SEV VLEK Key (issues VLEKs).
    Asvk,
}

impl SnpCertificate {
    /// `VCEK`, `VLEK`, `ASK` or `ASVK`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
            Self::Ask => "ASK",
            Self::Asvk => "ASVK",
        }
    }
}

impl core::fmt::Display for SnpCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Certificates that come with a report.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnpCollateral<'a> {
    /// The VCEK or VLEK, DER.
    pub vek: &'a [u8],
    /// The ASK or ASVK, DER; the pinned one when absent.
    pub intermediate: Option<&'a [u8]>,
    /// The ARK, DER; must equal the pinned one when present.
    pub ark: Option<&'a [u8]>,
    /// An AMD CRL (DER) signed by the product's ARK: the one KDS serves for the
    /// product and key kind (`/vcek/v1/{product}/crl` or `/vlek/v1/{product}/crl`).
    pub crl: Option<&'a [u8]>,
}

/// A report that verified, with what was learned from its certificate.
#[derive(Clone, Debug)]
pub struct SnpEvidence {
    /// The report.
    pub report: SnpReport,
    /// Its product.
    pub product: Product,
    /// The reported TCB, decoded for the product.
    pub reported_tcb: TcbVersion,
    /// SHA-256 of the endorsement certificate's DER.
    pub vek_sha256: [u8; 32],
    /// When the chain is valid (intersection of the certificates' windows).
    pub chain_validity: Window,
    /// `[thisUpdate, nextUpdate]` of the AMD CRL that was checked, when one was
    /// supplied (it verified, and lists neither certificate).
    pub crl: Option<Window>,
    /// The verification time.
    pub verified_at: UnixTime,
}

/// Trust anchors for every product: ARK, ASK and ASVK.
#[derive(Clone, Debug)]
pub struct SnpTrustStore {
    products: Vec<(Product, ProductRoots)>,
}

#[derive(Clone, Debug)]
struct ProductRoots {
    ark: Cert,
    ask: Cert,
    asvk: Cert,
}

impl SnpTrustStore {
    /// AMD's pinned roots for Milan, Genoa and Turin.
    pub fn pinned() -> Result<Self, X509Error> {
        let mut store = Self {
            products: Vec::new(),
        };
        for p in Product::ALL {
            let r = amd::roots(p);
            store.add(p, r.ark, r.ask, r.asvk)?;
        }
        Ok(store)
    }

    /// An empty store, to be filled with [`SnpTrustStore::add`].
    pub fn empty() -> Self {
        Self {
            products: Vec::new(),
        }
    }

    /// Pins `ark`, `ask` and `asvk` (DER) for `product`, replacing earlier ones.
    pub fn add(
        &mut self,
        product: Product,
        ark: &[u8],
        ask: &[u8],
        asvk: &[u8],
    ) -> Result<(), X509Error> {
        let roots = ProductRoots {
            ark: Cert::from_der("ARK", ark)?,
            ask: Cert::from_der("ASK", ask)?,
            asvk: Cert::from_der("ASVK", asvk)?,
        };
        self.products.retain(|(p, _)| *p != product);
        self.products.push((product, roots));
        Ok(())
    }

    fn get(&self, product: Product) -> Option<&ProductRoots> {
        self.products
            .iter()
            .find(|(p, _)| *p == product)
            .map(|(_, r)| r)
    }
}

/// What a verified chain says about its endorsement key.
#[derive(Clone, Debug)]
struct VekInfo {
    product: Product,
    kind: SigningKey,
    tcb: CertTcb,
    hw_id: Option<Vec<u8>>,
    validity: Window,
    vek: Cert,
    intermediate: Cert,
    vek_sha256: [u8; 32],
}

#[derive(Clone, Copy, Debug, Default)]
struct CertTcb {
    bootloader: Option<u8>,
    tee: Option<u8>,
    snp: Option<u8>,
    microcode: Option<u8>,
    fmc: Option<u8>,
}

/// Upper bound on cached verified chains; the cache is cleared when it fills.
const CACHE_CAPACITY: usize = 1024;

/// Verifies SEV-SNP reports, caching verified certificate chains.
pub struct SnpVerifier<C: Crypto> {
    crypto: C,
    trust: SnpTrustStore,
    cache: BTreeMap<[u8; 32], VekInfo>,
}

impl<C: Crypto> SnpVerifier<C> {
    /// A verifier over AMD's pinned roots.
    pub fn new(crypto: C) -> Result<Self, X509Error> {
        Ok(Self::with_trust_store(crypto, SnpTrustStore::pinned()?))
    }

    /// A verifier over the given roots.
    pub fn with_trust_store(crypto: C, trust: SnpTrustStore) -> Self {
        Self {
            crypto,
            trust,
            cache: BTreeMap::new(),
        }
    }

    /// The crypto backend.
    pub fn crypto(&self) -> &C {
        &self.crypto
    }

    /// Number of verified chains in the cache.
    pub fn cached_chains(&self) -> usize {
        self.cache.len()
    }

    /// Verifies `report` with its certificates at time `now`.
    pub fn verify(
        &mut self,
        report: &SnpReport,
        collateral: &SnpCollateral<'_>,
        now: UnixTime,
    ) -> Result<Verified<SnpEvidence>, Failures<SnpVerifyError>> {
        let key = self.cache_key(collateral);
        if self.cache.len() >= CACHE_CAPACITY && !self.cache.contains_key(&key) {
            self.cache.clear();
        }
        let info: &VekInfo = match self.cache.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                verify_chain(&self.crypto, &self.trust, report, collateral)
                    .map_err(Failures::one)?,
            ),
        };
        let mut errors = Vec::new();
        // Step 1 (again, cheap): the report's own product claim against the chain's.
        if let Some(p) = report.product_from_cpuid()
            && p != info.product
        {
            errors.push(SnpVerifyError::ProductMismatch {
                report: p,
                certificate: info.product,
            });
        }
        if report.signing_key != info.kind {
            errors.push(SnpVerifyError::WrongEndorsementKind {
                signing_key: report.signing_key.name(),
                found: info.vek.subject_cn().unwrap_or_default(),
            });
        }
        // Step 4: validity at `now` (signatures were checked once, when cached).
        if !info.validity.contains(now) {
            for (what, cert) in [
                (report.signing_key.name(), &info.vek),
                ("intermediate", &info.intermediate),
            ] {
                if let Err(e) = cert.check_validity(what, now) {
                    errors.push(e.into());
                }
            }
            if errors.is_empty() {
                // Only the ARK can be left: report it with the chain's window.
                errors.push(
                    X509Error::Expired {
                        what: "ARK",
                        at: now,
                        not_before: info.validity.not_before,
                        not_after: info.validity.not_after,
                    }
                    .into(),
                );
            }
        }
        // Step 5
        let mut crl_window = None;
        if let Some(crl) = collateral.crl {
            match check_crl(&self.crypto, &self.trust, crl, info, now) {
                Ok(w) => crl_window = Some(w),
                Err(es) => errors.extend(es),
            }
        }
        // Step 6
        if let Err(source) = self.crypto.verify_ecdsa(
            EcdsaAlg::P384Sha384,
            info.vek.public_key(),
            &report.signed,
            &report.signature_rs(),
        ) {
            errors.push(SnpVerifyError::ReportSignature {
                signing_key: report.signing_key.name(),
                source,
            });
        }
        // Step 7
        let reported_tcb = TcbVersion::decode(report.reported_tcb, info.product);
        bind_tcb(&reported_tcb, &info.tcb, info.product, &mut errors);
        if report.signing_key == SigningKey::Vcek && !report.mask_chip_key {
            match &info.hw_id {
                None => errors.push(SnpVerifyError::MissingHwId),
                Some(id) if report.chip_id.get(..id.len()) != Some(id.as_slice()) => {
                    errors.push(SnpVerifyError::ChipIdMismatch);
                }
                Some(_) => {}
            }
        }
        if !errors.is_empty() {
            return Err(Failures(errors));
        }
        Ok(Verified::new(SnpEvidence {
            report: report.clone(),
            product: info.product,
            reported_tcb,
            vek_sha256: info.vek_sha256,
            chain_validity: info.validity,
            crl: crl_window,
            verified_at: now,
        }))
    }

    fn cache_key(&self, c: &SnpCollateral<'_>) -> [u8; 32] {
        // Domain-separated, length-prefixed concatenation of every supplied certificate.
        let mut buf = Vec::new();
        buf.extend_from_slice(b"sigil.snp.chain.v1");
        for part in [Some(c.vek), c.intermediate, c.ark] {
            match part {
                Some(der) => {
                    buf.push(1);
                    buf.extend_from_slice(&(der.len() as u64).to_le_bytes());
                    buf.extend_from_slice(der);
                }
                None => buf.push(0),
            }
        }
        self.crypto.sha256(&buf)
    }
}

/// Steps 1-4, without time: signatures and kinds only (validity is checked per call).
fn verify_chain<C: Crypto>(
    crypto_impl: &C,
    trust: &SnpTrustStore,
    report: &SnpReport,
    c: &SnpCollateral<'_>,
) -> Result<VekInfo, SnpVerifyError> {
    let crypto: &dyn Crypto = crypto_impl;
    let kind = report.signing_key;
    // Step 1
    let vek = Cert::from_der(kind.name(), c.vek)?;
    let cert_product = vek
        .extension(&oid::PRODUCT_NAME)
        .and_then(|v| der::asn1::Ia5StringRef::from_der(v).ok())
        .and_then(|s| Product::from_name(s.as_str()));
    let product = match (report.product_from_cpuid(), cert_product) {
        (Some(r), Some(c)) if r != c => {
            return Err(SnpVerifyError::ProductMismatch {
                report: r,
                certificate: c,
            });
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => return Err(SnpVerifyError::UnknownProduct),
    };
    let roots = trust.get(product).ok_or(SnpVerifyError::UnknownProduct)?;
    // Step 2
    if let Some(ark_der) = c.ark {
        // Byte-equal: the pinned ARK is the one used, so a supplied one that differs in any
        // byte (same key, other validity or extensions) would be a root nobody checked.
        if ark_der != roots.ark.der() {
            let ark = Cert::from_der("ARK", ark_der)?;
            return Err(SnpVerifyError::UntrustedArk {
                product,
                supplied: ark.subject_cn().unwrap_or_default(),
            });
        }
    }
    // Step 3
    let (pinned, expected_cn) = match kind {
        SigningKey::Vcek => (&roots.ask, alloc::format!("SEV-{}", product.name())),
        SigningKey::Vlek => (&roots.asvk, alloc::format!("SEV-VLEK-{}", product.name())),
    };
    let intermediate = match c.intermediate {
        Some(der) => Cert::from_der("intermediate", der)?,
        None => pinned.clone(),
    };
    intermediate.verify_signed_by(crypto, "intermediate", &roots.ark, "ARK")?;
    let found = intermediate.subject_cn().unwrap_or_default();
    if found != expected_cn {
        return Err(SnpVerifyError::WrongIntermediate {
            signing_key: kind.name(),
            expected: expected_cn,
            found,
        });
    }
    // Step 4
    vek.verify_signed_by(crypto, kind.name(), &intermediate, "intermediate")?;
    let vek_cn = vek.subject_cn().unwrap_or_default();
    let expected_vek_cn = match kind {
        SigningKey::Vcek => "SEV-VCEK",
        SigningKey::Vlek => "SEV-VLEK",
    };
    if vek_cn != expected_vek_cn {
        return Err(SnpVerifyError::WrongEndorsementKind {
            signing_key: kind.name(),
            found: vek_cn,
        });
    }
    if vek.key_kind(kind.name())? != crate::verify::x509::KeyKind::P384 {
        return Err(SnpVerifyError::EndorsementKeyType);
    }
    let validity = roots
        .ark
        .validity()
        .intersect(&intermediate.validity())
        .intersect(&vek.validity());
    let ext_u8 = |o: &ObjectIdentifier| {
        vek.extension(o)
            .and_then(|v| der::asn1::Uint::from_der(v).ok())
            .and_then(|u| match u.as_bytes() {
                [b] => Some(*b),
                _ => None,
            })
    };
    let tcb = CertTcb {
        bootloader: ext_u8(&oid::BL_SPL),
        tee: ext_u8(&oid::TEE_SPL),
        snp: ext_u8(&oid::SNP_SPL),
        microcode: ext_u8(&oid::UCODE_SPL),
        fmc: ext_u8(&oid::FMC_SPL),
    };
    let hw_id = vek.extension(&oid::HW_ID).map(|v| {
        // KDS encodes hwID as an OCTET STRING; accept the raw bytes too.
        <&der::asn1::OctetStringRef>::from_der(v)
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or_else(|_| v.to_vec())
    });
    Ok(VekInfo {
        product,
        kind,
        tcb,
        hw_id,
        validity,
        vek_sha256: crypto.sha256(c.vek),
        vek,
        intermediate,
    })
}

/// Step 5: the CRL's signature by the product's ARK, its time window at `now`
/// (`thisUpdate <= now < nextUpdate`), and neither certificate listed. Returns
/// the CRL's `[thisUpdate, nextUpdate]`.
fn check_crl<C: Crypto>(
    crypto: &C,
    trust: &SnpTrustStore,
    crl_der: &[u8],
    info: &VekInfo,
    now: UnixTime,
) -> Result<Window, Vec<SnpVerifyError>> {
    let one = |e: SnpVerifyError| alloc::vec![e];
    let roots = trust.get(info.product).ok_or_else(|| {
        one(SnpVerifyError::Certificate(X509Error::Malformed {
            what: "CRL",
            reason: "no roots for product".into(),
        }))
    })?;
    let crl = Crl::from_der("CRL", crl_der).map_err(|e| one(e.into()))?;
    let dyn_crypto: &dyn Crypto = crypto;
    crl.verify_signature(dyn_crypto, "CRL", &roots.ark, "ARK")
        .map_err(|e| one(e.into()))?;
    let mut errors = Vec::new();
    let window = crl.window();
    if now < window.not_before {
        errors.push(SnpVerifyError::CrlNotYetValid {
            this_update: window.not_before,
            at: now,
        });
    }
    match crl.next_update() {
        None => errors.push(SnpVerifyError::CrlWithoutNextUpdate),
        Some(next_update) if next_update <= now => {
            errors.push(SnpVerifyError::CrlExpired {
                next_update,
                at: now,
            });
        }
        Some(_) => {}
    }
    let (vek_kind, intermediate_kind) = match info.kind {
        SigningKey::Vcek => (SnpCertificate::Vcek, SnpCertificate::Ask),
        SigningKey::Vlek => (SnpCertificate::Vlek, SnpCertificate::Asvk),
    };
    for (certificate, cert) in [
        (intermediate_kind, &info.intermediate),
        (vek_kind, &info.vek),
    ] {
        if crl.lists(cert) {
            errors.push(SnpVerifyError::Revoked {
                certificate,
                serial: hex::encode(cert.serial()),
            });
        }
    }
    if errors.is_empty() {
        Ok(window)
    } else {
        Err(errors)
    }
}

fn bind_tcb(
    reported: &TcbVersion,
    cert: &CertTcb,
    product: Product,
    errors: &mut Vec<SnpVerifyError>,
) {
    let mut parts = alloc::vec![
        ("bootloader", reported.bootloader, cert.bootloader, "blSPL"),
        ("tee", reported.tee, cert.tee, "teeSPL"),
        ("snp", reported.snp, cert.snp, "snpSPL"),
        ("microcode", reported.microcode, cert.microcode, "ucodeSPL"),
    ];
    if product.has_fmc() {
        parts.push(("fmc", reported.fmc, cert.fmc, "fmcSPL"));
    }
    for (component, reported, certified, ext) in parts {
        match certified {
            None => errors.push(SnpVerifyError::MissingTcbExtension(ext)),
            Some(c) if c != reported => errors.push(SnpVerifyError::TcbMismatch {
                component,
                reported,
                certified: c,
            }),
            Some(_) => {}
        }
    }
}
