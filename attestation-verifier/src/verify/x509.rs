//! X.509 certificate and CRL checks shared by every evidence kind.
//!
//! Parsing is `x509-cert`/`der` (RustCrypto, `no_std`); signatures go through the
//! [`Crypto`] trait so both backends check the same bytes.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::UintRef;
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::crypto::{Crypto, EcdsaAlg, RsaHash, SignatureError};
use crate::time::{UnixTime, Window};

/// Why a certificate or CRL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// The bytes are not a DER X.509 structure.
    #[error("{what} is not valid DER X.509: {reason}")]
    Malformed {
        /// Which certificate or CRL.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The signature or key algorithm is not one the verifier supports.
    #[error("{what}: unsupported algorithm {oid}")]
    UnsupportedAlgorithm {
        /// Which certificate or CRL.
        what: &'static str,
        /// The algorithm's OID.
        oid: String,
    },
    /// The signature does not verify under the issuer's key.
    #[error("{what} is not signed by {issuer}: {source}")]
    BadSignature {
        /// The signed object.
        what: &'static str,
        /// The expected signer.
        issuer: &'static str,
        /// What the signature check said.
        source: SignatureError,
    },
    /// The certificate is outside its validity window at the verification time.
    #[error("{what} is not valid at {at} (valid {not_before}..{not_after})")]
    Expired {
        /// Which certificate or CRL.
        what: &'static str,
        /// The verification time.
        at: UnixTime,
        /// Start of validity.
        not_before: UnixTime,
        /// End of validity.
        not_after: UnixTime,
    },
    /// The certificate's serial number is on the issuer's revocation list.
    #[error("{what} (serial {serial}) is revoked")]
    Revoked {
        /// Which certificate.
        what: &'static str,
        /// Its serial number, hex.
        serial: String,
    },
    /// The signature algorithm outside the signed body differs from the one inside it
    /// (RFC 5280 4.1.1.2, 5.1.1.2: they must be equal).
    #[error(
        "{what}: the signature algorithm outside the signed body ({outer}) differs from the one inside it"
    )]
    SignatureAlgorithmMismatch {
        /// Which certificate or CRL.
        what: &'static str,
        /// The outer `signatureAlgorithm`'s OID (only it: the error stays small).
        outer: String,
    },
    /// The signature BIT STRING does not hold whole octets.
    #[error("{what}: the signature BIT STRING has {unused_bits} unused bits (must be 0)")]
    SignatureUnusedBits {
        /// Which certificate, CRL or OCSP response.
        what: &'static str,
        /// The BIT STRING's unused-bits count.
        unused_bits: u8,
    },
    /// A required extension is missing or malformed.
    #[error("{what}: extension {oid} is missing or malformed")]
    BadExtension {
        /// Which certificate.
        what: &'static str,
        /// The extension's OID.
        oid: String,
    },
}

/// A parsed certificate with the DER of its signed part kept for signature checks.
#[derive(Clone, Debug)]
pub struct Cert {
    cert: Certificate,
    tbs: Vec<u8>,
    der: Vec<u8>,
}

fn malformed(what: &'static str, e: der::Error) -> X509Error {
    X509Error::Malformed {
        what,
        reason: e.to_string(),
    }
}

/// The first element of a DER SEQUENCE (the to-be-signed part of a certificate,
/// CRL or OCSP response) exactly as received. Re-encoding the decoded structure
/// is not always byte-identical (x509-cert re-encodes a GeneralizedTime before
/// 2050 as UTCTime), and the signature covers the bytes as sent.
pub(crate) fn signed_part(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let outer = der::asn1::AnyRef::from_der(der)?;
    let mut reader = der::SliceReader::new(outer.value())?;
    let tbs = der::asn1::AnyRef::decode(&mut reader)?;
    tbs.to_der()
}

/// RFC 5280 4.1.1.2 / 5.1.1.2: the signature algorithm outside the signed body must be the
/// one inside it (otherwise the unsigned outer field could claim another algorithm), and the
/// signature BIT STRING holds whole octets. Both are refused, not tolerated: DER accepted here
/// must be exactly what the issuer signed.
fn check_signed_envelope(
    what: &'static str,
    outer: &AlgorithmIdentifierOwned,
    inner: der::Result<Vec<u8>>,
    unused_bits: u8,
) -> Result<(), X509Error> {
    let inner = inner.map_err(|e| malformed(what, e))?;
    let outer_der = outer.to_der().map_err(|e| malformed(what, e))?;
    if outer_der != inner {
        return Err(X509Error::SignatureAlgorithmMismatch {
            what,
            outer: outer.oid.to_string(),
        });
    }
    check_unused_bits(what, unused_bits)
}

/// A signature BIT STRING must hold whole octets (DER of a signature never has unused bits).
pub(crate) fn check_unused_bits(what: &'static str, unused_bits: u8) -> Result<(), X509Error> {
    if unused_bits == 0 {
        Ok(())
    } else {
        Err(X509Error::SignatureUnusedBits { what, unused_bits })
    }
}

fn unix(t: x509_cert::time::Time) -> UnixTime {
    UnixTime(t.to_unix_duration().as_secs())
}

impl Cert {
    /// Parses a DER certificate. `what` names it in errors ("VCEK", "PCK", ...).
    pub fn from_der(what: &'static str, der: &[u8]) -> Result<Self, X509Error> {
        let cert = Certificate::from_der(der).map_err(|e| malformed(what, e))?;
        let tbs = signed_part(der).map_err(|e| malformed(what, e))?;
        check_signed_envelope(
            what,
            cert.signature_algorithm(),
            cert.tbs_certificate().signature().to_der(),
            cert.signature().unused_bits(),
        )?;
        Ok(Self {
            cert,
            tbs,
            der: der.to_vec(),
        })
    }

    /// The certificate as parsed.
    pub fn inner(&self) -> &Certificate {
        &self.cert
    }

    /// The DER bytes the certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The to-be-signed part (`tbsCertificate`) exactly as received: what the issuer's
    /// signature covers. Two certificates with the same `tbs` say the same thing, whatever
    /// their signature bytes.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The validity window.
    pub fn validity(&self) -> Window {
        let v = self.cert.tbs_certificate().validity();
        Window {
            not_before: unix(v.not_before),
            not_after: unix(v.not_after),
        }
    }

    /// Fails unless `at` lies in the validity window.
    pub(crate) fn check_validity(&self, what: &'static str, at: UnixTime) -> Result<(), X509Error> {
        let w = self.validity();
        if w.contains(at) {
            Ok(())
        } else {
            Err(X509Error::Expired {
                what,
                at,
                not_before: w.not_before,
                not_after: w.not_after,
            })
        }
    }

    /// The raw `subjectPublicKey` bits (SEC1 point or PKCS#1 RSA key).
    pub fn public_key(&self) -> &[u8] {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
    }

    /// The key algorithm of the subject public key.
    pub(crate) fn key_kind(&self, what: &'static str) -> Result<KeyKind, X509Error> {
        key_kind(
            what,
            &self
                .cert
                .tbs_certificate()
                .subject_public_key_info()
                .algorithm,
        )
    }

    /// The serial number's bytes.
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate().serial_number().as_bytes()
    }

    /// The subject's common name, if any.
    pub fn subject_cn(&self) -> Option<String> {
        common_name(self.cert.tbs_certificate().subject())
    }

    /// The value (contents of the `extnValue` OCTET STRING) of extension `oid`.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == *oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Whether basicConstraints marks the certificate as a CA.
    pub fn is_ca(&self) -> bool {
        use x509_cert::ext::pkix::BasicConstraints;
        self.extension(&rfc5912::ID_CE_BASIC_CONSTRAINTS)
            .and_then(|v| BasicConstraints::from_der(v).ok())
            .is_some_and(|bc| bc.ca)
    }

    /// Whether extendedKeyUsage lists `purpose`.
    pub(crate) fn has_extended_key_usage(&self, purpose: &ObjectIdentifier) -> bool {
        use x509_cert::ext::pkix::ExtendedKeyUsage;
        self.extension(&rfc5912::ID_CE_EXT_KEY_USAGE)
            .and_then(|v| ExtendedKeyUsage::from_der(v).ok())
            .is_some_and(|eku| eku.0.contains(purpose))
    }

    /// The DER of the subject name.
    pub(crate) fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }

    /// Whether the subject and issuer names of `self` and `issuer` link up.
    pub fn issued_by_name(&self, issuer: &Cert) -> bool {
        self.cert.tbs_certificate().issuer() == issuer.cert.tbs_certificate().subject()
    }

    /// Verifies that `issuer`'s key signed this certificate.
    pub(crate) fn verify_signed_by(
        &self,
        crypto: &dyn Crypto,
        what: &'static str,
        issuer: &Cert,
        issuer_name: &'static str,
    ) -> Result<(), X509Error> {
        let issuer_key = issuer.key_kind(issuer_name)?;
        verify_signature(
            crypto,
            what,
            issuer_name,
            issuer_key,
            issuer.public_key(),
            self.cert.signature_algorithm(),
            &self.tbs,
            self.cert.signature().raw_bytes(),
        )
    }
}

/// The name's common name (first CN attribute), if any.
pub(crate) fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    name.iter()
        .find(|atv| atv.oid == CN)
        .and_then(|atv| directory_string(&atv.value))
}

fn directory_string(value: &der::asn1::Any) -> Option<String> {
    if let Ok(s) = value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
        return Some(s.as_str().into());
    }
    if let Ok(s) = value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
        return Some(s.as_str().into());
    }
    if let Ok(s) = value.decode_as::<der::asn1::Ia5StringRef<'_>>() {
        return Some(s.as_str().into());
    }
    None
}

/// A subject public key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// RSA.
    Rsa,
}

const EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
const RSA_ENCRYPTION: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
const RSASSA_PSS: ObjectIdentifier = rfc5912::ID_RSASSA_PSS;

fn key_kind(what: &'static str, alg: &AlgorithmIdentifierOwned) -> Result<KeyKind, X509Error> {
    let unsupported = || X509Error::UnsupportedAlgorithm {
        what,
        oid: alg.oid.to_string(),
    };
    if alg.oid == RSA_ENCRYPTION || alg.oid == RSASSA_PSS {
        return Ok(KeyKind::Rsa);
    }
    if alg.oid != EC_PUBLIC_KEY {
        return Err(unsupported());
    }
    let curve = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(unsupported)?;
    if curve == rfc5912::SECP_256_R_1 {
        Ok(KeyKind::P256)
    } else if curve == rfc5912::SECP_384_R_1 {
        Ok(KeyKind::P384)
    } else {
        Err(X509Error::UnsupportedAlgorithm {
            what,
            oid: curve.to_string(),
        })
    }
}

#[derive(der::Sequence)]
struct EcdsaSigDer<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts a DER `ECDSA-Sig-Value` into fixed-size big-endian `r || s`.
pub(crate) fn ecdsa_der_to_fixed(alg: EcdsaAlg, der_sig: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let sig = EcdsaSigDer::from_der(der_sig).map_err(|_| SignatureError::MalformedSignature)?;
    let n = alg.scalar_len();
    let mut out = Vec::with_capacity(n.saturating_mul(2));
    for part in [sig.r.as_bytes(), sig.s.as_bytes()] {
        let pad = n
            .checked_sub(part.len())
            .ok_or(SignatureError::MalformedSignature)?;
        out.extend(core::iter::repeat_n(0u8, pad));
        out.extend_from_slice(part);
    }
    Ok(out)
}

/// Verifies `signature` over `tbs` made with `sig_alg` by a key of kind `key`.
#[allow(clippy::too_many_arguments)] // each argument is a distinct piece of the signed object
pub(crate) fn verify_signature(
    crypto: &dyn Crypto,
    what: &'static str,
    issuer: &'static str,
    key: KeyKind,
    public_key: &[u8],
    sig_alg: &AlgorithmIdentifierOwned,
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let unsupported = || X509Error::UnsupportedAlgorithm {
        what,
        oid: sig_alg.oid.to_string(),
    };
    let bad = |source| X509Error::BadSignature {
        what,
        issuer,
        source,
    };
    let oid = sig_alg.oid;
    if oid == rfc5912::ECDSA_WITH_SHA_256 || oid == rfc5912::ECDSA_WITH_SHA_384 {
        let alg = match (key, oid == rfc5912::ECDSA_WITH_SHA_384) {
            (KeyKind::P256, false) => EcdsaAlg::P256Sha256,
            (KeyKind::P384, true) => EcdsaAlg::P384Sha384,
            _ => return Err(unsupported()),
        };
        return crypto
            .verify_ecdsa_der(alg, public_key, tbs, signature)
            .map_err(bad);
    }
    if key != KeyKind::Rsa {
        return Err(unsupported());
    }
    if oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
        return crypto
            .verify_rsa_pkcs1(RsaHash::Sha256, public_key, tbs, signature)
            .map_err(bad);
    }
    if oid == rfc5912::SHA_384_WITH_RSA_ENCRYPTION {
        return crypto
            .verify_rsa_pkcs1(RsaHash::Sha384, public_key, tbs, signature)
            .map_err(bad);
    }
    if oid == RSASSA_PSS {
        let hash = pss_hash(sig_alg).ok_or_else(unsupported)?;
        return crypto
            .verify_rsa_pss(hash, public_key, tbs, signature)
            .map_err(bad);
    }
    Err(unsupported())
}

/// The hash of RSASSA-PSS parameters, when they use MGF1 with the same hash and a
/// salt as long as the hash (the only form AMD and other vendors use).
fn pss_hash(sig_alg: &AlgorithmIdentifierOwned) -> Option<RsaHash> {
    let params_der = sig_alg.parameters.as_ref()?.to_der().ok()?;
    let params = pkcs1::RsaPssParams::<der::asn1::Any>::try_from(params_der.as_slice()).ok()?;
    let (hash, salt) = if params.hash.oid == rfc5912::ID_SHA_384 {
        (RsaHash::Sha384, 48)
    } else if params.hash.oid == rfc5912::ID_SHA_256 {
        (RsaHash::Sha256, 32)
    } else {
        return None;
    };
    let mgf_hash = params.mask_gen.parameters.as_ref()?.oid;
    let ok = params.mask_gen.oid == rfc5912::ID_MGF_1
        && mgf_hash == params.hash.oid
        && params.salt_len == salt;
    ok.then_some(hash)
}

/// A parsed, not yet verified, certificate revocation list.
///
/// The revoked entries are only split into TLVs and their serial numbers kept:
/// lookups need nothing else, and decoding every entry whole (dates, extensions)
/// dominated the cost of reading large CRLs.
#[derive(Clone, Debug)]
pub struct Crl {
    tbs: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: Vec<u8>,
    issuer: x509_cert::name::Name,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    /// The revoked serial numbers (INTEGER contents), concatenated.
    serials: Vec<u8>,
    /// Where each serial in `serials` ends.
    serial_ends: Vec<usize>,
}

/// `TBSCertList` (RFC 5280 section 5.1) with the revoked entries left undecoded.
#[derive(der::Sequence)]
struct TbsCertListLazy<'a> {
    version: x509_cert::Version,
    signature: spki::AlgorithmIdentifierRef<'a>,
    issuer: x509_cert::name::Name,
    this_update: x509_cert::time::Time,
    next_update: Option<x509_cert::time::Time>,
    revoked_certificates: Option<Vec<der::asn1::AnyRef<'a>>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_extensions: Option<der::asn1::AnyRef<'a>>,
}

/// `CertificateList` over [`TbsCertListLazy`].
#[derive(der::Sequence)]
struct CertificateListLazy<'a> {
    tbs_cert_list: TbsCertListLazy<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: der::asn1::BitStringRef<'a>,
}

impl Crl {
    /// The to-be-signed part (`tbsCertList`) exactly as received: what the issuer's
    /// signature covers.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// Parses a DER CRL.
    pub fn from_der(what: &'static str, der: &[u8]) -> Result<Self, X509Error> {
        let crl = CertificateListLazy::from_der(der).map_err(|e| malformed(what, e))?;
        let tbs = signed_part(der).map_err(|e| malformed(what, e))?;
        check_signed_envelope(
            what,
            &crl.signature_algorithm,
            crl.tbs_cert_list.signature.to_der(),
            crl.signature.unused_bits(),
        )?;
        let t = crl.tbs_cert_list;
        let mut serials = Vec::new();
        let mut serial_ends = Vec::new();
        for entry in t.revoked_certificates.iter().flatten() {
            // revokedCertificate ::= SEQUENCE { userCertificate CertificateSerialNumber, ... }
            let serial = entry
                .sequence(|r| {
                    let serial = der::asn1::AnyRef::decode(r)?;
                    let _rest = der::Reader::read_slice(r, der::Reader::remaining_len(r))?;
                    Ok::<_, der::Error>(serial)
                })
                .map_err(|e| malformed(what, e))?;
            if der::Tagged::tag(&serial) != der::Tag::Integer {
                return Err(X509Error::Malformed {
                    what,
                    reason: "revoked entry without a serial number".into(),
                });
            }
            serials.extend_from_slice(serial.value());
            serial_ends.push(serials.len());
        }
        Ok(Self {
            tbs,
            signature_algorithm: crl.signature_algorithm,
            signature: crl.signature.raw_bytes().to_vec(),
            issuer: t.issuer,
            this_update: unix(t.this_update),
            next_update: t.next_update.map(unix),
            serials,
            serial_ends,
        })
    }

    /// Verifies the CRL's signature by `issuer` and that `at` lies in
    /// `[thisUpdate, nextUpdate]`.
    pub fn verify(
        &self,
        crypto: &dyn Crypto,
        what: &'static str,
        issuer: &Cert,
        issuer_name: &'static str,
        at: UnixTime,
    ) -> Result<(), X509Error> {
        self.verify_signature(crypto, what, issuer, issuer_name)?;
        let window = self.window();
        if !window.contains(at) {
            return Err(X509Error::Expired {
                what,
                at,
                not_before: window.not_before,
                not_after: window.not_after,
            });
        }
        Ok(())
    }

    /// Verifies only the CRL's issuer name and signature by `issuer` (no time check;
    /// see [`Crl::window`]).
    pub fn verify_signature(
        &self,
        crypto: &dyn Crypto,
        what: &'static str,
        issuer: &Cert,
        issuer_name: &'static str,
    ) -> Result<(), X509Error> {
        if self.issuer != *issuer.inner().tbs_certificate().subject() {
            return Err(X509Error::BadSignature {
                what,
                issuer: issuer_name,
                source: SignatureError::Invalid,
            });
        }
        verify_signature(
            crypto,
            what,
            issuer_name,
            issuer.key_kind(issuer_name)?,
            issuer.public_key(),
            &self.signature_algorithm,
            &self.tbs,
            &self.signature,
        )
    }

    /// `[thisUpdate, nextUpdate]` (open-ended when nextUpdate is absent).
    pub fn window(&self) -> Window {
        Window {
            not_before: self.this_update,
            not_after: self.next_update.unwrap_or(UnixTime(u64::MAX)),
        }
    }

    /// The issuer's distinguished name.
    pub fn issuer(&self) -> &x509_cert::name::Name {
        &self.issuer
    }

    /// `thisUpdate`.
    pub fn this_update(&self) -> UnixTime {
        self.this_update
    }

    /// `nextUpdate`, when the CRL has one.
    pub fn next_update(&self) -> Option<UnixTime> {
        self.next_update
    }

    /// How many serial numbers the CRL lists.
    pub fn revoked_count(&self) -> usize {
        self.serial_ends.len()
    }

    /// Whether `cert`'s serial number is listed (meaningful only after the
    /// signature was verified with `cert`'s issuer).
    pub(crate) fn lists(&self, cert: &Cert) -> bool {
        let serial = cert.serial();
        let mut start = 0;
        self.serial_ends.iter().any(|&end| {
            let found = self.serials.get(start..end) == Some(serial);
            start = end;
            found
        })
    }

    /// Fails if `cert` is listed (call only after [`Crl::verify`] with its issuer).
    pub(crate) fn check_not_revoked(
        &self,
        what: &'static str,
        cert: &Cert,
    ) -> Result<(), X509Error> {
        let listed = self.lists(cert);
        if listed {
            Err(X509Error::Revoked {
                what,
                serial: hex::encode(cert.serial()),
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
