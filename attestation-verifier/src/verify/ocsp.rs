//! OCSP responses (RFC 6960) supplied with evidence: parse, verify, and read a
//! certificate's status at a given time.
//!
//! The ASN.1 types are declared here with `der`'s derive macros because the
//! RustCrypto `x509-ocsp` crate is published only for `der` 0.7 / `x509-cert`
//! 0.2, while this crate is on `der` 0.8 / `x509-cert` 0.3.
//!
//! A response speaks for a certificate when:
//! 1. it is `successful` and of type `id-pkix-ocsp-basic`;
//! 2. a `SingleResponse`'s `CertID` names the certificate: its serial, and the
//!    SHA-256/384/512 of its issuer's name and key (SHA-1 `CertID`s are refused);
//! 3. its signature verifies under the issuer's key, or under a delegated
//!    responder certificate carried in the response that the issuer signed,
//!    that has the `id-kp-OCSPSigning` purpose and is valid at the time;
//! 4. `thisUpdate <= time <= nextUpdate` (a response without `nextUpdate` is refused).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::crypto::Crypto;
use crate::time::UnixTime;
use crate::verify::x509::{Cert, X509Error, check_unused_bits, signed_part, verify_signature};

/// `id-pkix-ocsp-basic`.
pub const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-kp-OCSPSigning`.
pub const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");

/// `OCSPResponseStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
#[allow(missing_docs)] // RFC 6960 names
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// `OCSPResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OcspResponseDer {
    /// `responseStatus`.
    pub response_status: ResponseStatus,
    /// `responseBytes`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytes>,
}

/// `ResponseBytes`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseBytes {
    /// `responseType`.
    pub response_type: ObjectIdentifier,
    /// `response` (a DER `BasicOCSPResponse` for the basic type).
    pub response: OctetString,
}

/// `BasicOCSPResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct BasicResponse {
    /// `tbsResponseData`.
    pub tbs_response_data: ResponseData,
    /// `signatureAlgorithm`.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// `signature`.
    pub signature: BitString,
    /// `certs` (DER certificates, kept raw).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<der::asn1::Any>>,
}

/// `ResponseData`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseData {
    /// `version` (v1 = 0).
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub version: u8,
    /// `responderID`.
    pub responder_id: ResponderId,
    /// `producedAt`.
    pub produced_at: GeneralizedTime,
    /// `responses`.
    pub responses: Vec<SingleResponse>,
    /// `responseExtensions`.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Extensions>,
}

/// `ResponderID`.
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum ResponderId {
    /// `byName`.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    /// `byKey` (SHA-1 of the responder's key).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SingleResponse {
    /// `certID`.
    pub cert_id: CertId,
    /// `certStatus`.
    pub cert_status: CertStatusDer,
    /// `thisUpdate`.
    pub this_update: GeneralizedTime,
    /// `nextUpdate`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    /// `singleExtensions`.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Extensions>,
}

/// `CertID`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    /// `hashAlgorithm`.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// `issuerNameHash`.
    pub issuer_name_hash: OctetString,
    /// `issuerKeyHash`.
    pub issuer_key_hash: OctetString,
    /// `serialNumber`.
    pub serial_number: SerialNumber,
}

/// `CertStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum CertStatusDer {
    /// `good`.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// `revoked`.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// `unknown`.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RevokedInfo {
    /// `revocationTime`.
    pub revocation_time: GeneralizedTime,
    /// `revocationReason` (CRLReason, an ENUMERATED).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<der::asn1::Any>,
}

/// Why an OCSP response was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// Not a DER OCSP response.
    #[error("OCSP response is malformed: {0}")]
    Malformed(String),
    /// The responder reported an error instead of a status.
    #[error("OCSP response status is {0:?}, not successful")]
    NotSuccessful(ResponseStatus),
    /// Not a basic OCSP response.
    #[error("OCSP response type {0} is not id-pkix-ocsp-basic")]
    NotBasic(String),
    /// Neither the issuer nor a delegated responder signed the response.
    #[error(
        "OCSP response for {what} is not signed by its issuer or a responder the issuer authorised"
    )]
    Unauthorised {
        /// The certificate the response is about.
        what: String,
    },
    /// The response is outside `[thisUpdate, nextUpdate]` at the verification time.
    #[error("OCSP response for {what} is not current at {at} (valid {this_update}..{next_update})")]
    Stale {
        /// The certificate the response is about.
        what: String,
        /// Verification time.
        at: UnixTime,
        /// `thisUpdate`.
        this_update: UnixTime,
        /// `nextUpdate`.
        next_update: UnixTime,
    },
    /// The response has no `nextUpdate`, so its freshness cannot be judged.
    #[error("OCSP response for {what} has no nextUpdate")]
    NoNextUpdate {
        /// The certificate the response is about.
        what: String,
    },
    /// A certificate in the response failed a check.
    #[error("OCSP responder certificate: {0}")]
    Certificate(#[from] X509Error),
    /// The response carries more certificates than [`MAX_OCSP_CERTS`].
    #[error("OCSP response carries {count} certificates, more than {max}")]
    TooManyCerts {
        /// How many it carries.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Most certificates one OCSP response may carry (a delegated responder's certificate, and
/// its issuers at most). Each one that names the right issuer costs a signature check, so
/// without a cap a response's bytes would buy signature checks at a few hundred bytes each.
pub const MAX_OCSP_CERTS: usize = 4;

/// A certificate's revocation status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked at the given time.
    Revoked {
        /// `revocationTime`.
        at: UnixTime,
    },
    /// The responder does not know the certificate.
    Unknown,
}

impl CertStatus {
    /// `good`, `revoked` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked { .. } => "revoked",
            Self::Unknown => "unknown",
        }
    }
}

/// A parsed OCSP response.
#[derive(Clone, Debug)]
pub struct OcspResponse {
    basic: BasicResponse,
    tbs: Vec<u8>,
    certs: Vec<Cert>,
}

fn malformed(e: der::Error) -> OcspError {
    OcspError::Malformed(e.to_string())
}

fn gt(t: &GeneralizedTime) -> UnixTime {
    UnixTime(t.to_unix_duration().as_secs())
}

/// Parses a DER OCSP response (no verification).
pub fn parse_ocsp(der: &[u8]) -> Result<OcspResponse, OcspError> {
    let outer = OcspResponseDer::from_der(der).map_err(malformed)?;
    if outer.response_status != ResponseStatus::Successful {
        return Err(OcspError::NotSuccessful(outer.response_status));
    }
    let bytes = outer
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("successful response without responseBytes".into()))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::NotBasic(bytes.response_type.to_string()));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicResponse::from_der(basic_der).map_err(malformed)?;
    let tbs = signed_part(basic_der).map_err(malformed)?;
    check_unused_bits("OCSP response", basic.signature.unused_bits())?;
    let count = basic.certs.as_ref().map_or(0, Vec::len);
    if count > MAX_OCSP_CERTS {
        return Err(OcspError::TooManyCerts {
            count,
            max: MAX_OCSP_CERTS,
        });
    }
    let mut certs = Vec::new();
    for c in basic.certs.iter().flatten() {
        let der = c.to_der().map_err(malformed)?;
        certs.push(Cert::from_der("OCSP responder", &der)?);
    }
    Ok(OcspResponse { basic, tbs, certs })
}

fn cert_id_hash(crypto: &dyn Crypto, alg: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    if *alg == rfc5912::ID_SHA_256 {
        Some(crypto.sha256(data).to_vec())
    } else if *alg == rfc5912::ID_SHA_384 {
        Some(crypto.sha384(data).to_vec())
    } else if *alg == rfc5912::ID_SHA_512 {
        Some(crypto.sha512(data).to_vec())
    } else {
        None
    }
}

impl OcspResponse {
    /// The decoded response.
    pub fn basic(&self) -> &BasicResponse {
        &self.basic
    }

    /// Whether a `SingleResponse` names `cert` issued by `issuer`.
    pub fn covers(&self, crypto: &dyn Crypto, cert: &Cert, issuer: &Cert) -> bool {
        self.single_for(crypto, cert, issuer).is_some()
    }

    fn single_for(
        &self,
        crypto: &dyn Crypto,
        cert: &Cert,
        issuer: &Cert,
    ) -> Option<&SingleResponse> {
        let name = issuer.subject_der();
        self.basic.tbs_response_data.responses.iter().find(|s| {
            let id = &s.cert_id;
            id.serial_number.as_bytes() == cert.serial()
                && cert_id_hash(crypto, &id.hash_algorithm.oid, &name).as_deref()
                    == Some(id.issuer_name_hash.as_bytes())
                && cert_id_hash(crypto, &id.hash_algorithm.oid, issuer.public_key()).as_deref()
                    == Some(id.issuer_key_hash.as_bytes())
        })
    }

    /// The status of `cert` (issued by `issuer`) at `at`, after checking the
    /// response's signature and currency; `None` when the response is not about
    /// `cert`.
    pub fn status(
        &self,
        crypto: &dyn Crypto,
        cert: &Cert,
        issuer: &Cert,
        at: UnixTime,
    ) -> Result<Option<CertStatus>, OcspError> {
        Ok(self.status_dated(crypto, cert, issuer, at)?.map(|(s, _)| s))
    }

    /// [`Self::status`] with the response's `thisUpdate` (when the responder vouched for the
    /// status), for rules on a response's age.
    pub fn status_dated(
        &self,
        crypto: &dyn Crypto,
        cert: &Cert,
        issuer: &Cert,
        at: UnixTime,
    ) -> Result<Option<(CertStatus, UnixTime)>, OcspError> {
        let Some(single) = self.single_for(crypto, cert, issuer) else {
            return Ok(None);
        };
        let what = cert.subject_cn().unwrap_or_default();
        // Step 3: the issuer, or a delegated responder it signed.
        let by = |key: &Cert| -> bool {
            key.key_kind("OCSP signer").is_ok_and(|kind| {
                verify_signature(
                    crypto,
                    "OCSP response",
                    "responder",
                    kind,
                    key.public_key(),
                    &self.basic.signature_algorithm,
                    &self.tbs,
                    self.basic.signature.raw_bytes(),
                )
                .is_ok()
            })
        };
        let authorised = by(issuer)
            || self.certs.iter().any(|r| {
                r.has_extended_key_usage(&ID_KP_OCSP_SIGNING)
                    && r.issued_by_name(issuer)
                    && r.verify_signed_by(crypto, "OCSP responder", issuer, "issuer")
                        .is_ok()
                    && r.check_validity("OCSP responder", at).is_ok()
                    && by(r)
            });
        if !authorised {
            return Err(OcspError::Unauthorised { what });
        }
        // Step 4
        let this_update = gt(&single.this_update);
        let next_update = single
            .next_update
            .as_ref()
            .map(gt)
            .ok_or_else(|| OcspError::NoNextUpdate { what: what.clone() })?;
        if at < this_update || at > next_update {
            return Err(OcspError::Stale {
                what,
                at,
                this_update,
                next_update,
            });
        }
        let status = match &single.cert_status {
            CertStatusDer::Good(_) => CertStatus::Good,
            CertStatusDer::Revoked(info) => CertStatus::Revoked {
                at: gt(&info.revocation_time),
            },
            CertStatusDer::Unknown(_) => CertStatus::Unknown,
        };
        Ok(Some((status, this_update)))
    }
}

/// Builds the `CertID` of `cert` issued by `issuer` with SHA-384 (as NVIDIA's
/// verifier requests it); for building requests and test responses.
pub fn cert_id_sha384(
    crypto: &dyn Crypto,
    cert: &Cert,
    issuer: &Cert,
) -> Result<CertId, der::Error> {
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_SHA_384,
            parameters: Some(der::asn1::Any::from(Null)),
        },
        issuer_name_hash: OctetString::new(crypto.sha384(&issuer.subject_der()).to_vec())?,
        issuer_key_hash: OctetString::new(crypto.sha384(issuer.public_key()).to_vec())?,
        serial_number: SerialNumber::new(cert.serial())?,
    })
}
