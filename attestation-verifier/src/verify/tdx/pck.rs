//! Intel SGX PCK certificate extensions ("Intel SGX PCK Certificate and
//! Certificate Revocation List Profile Specification", section "SGX Extensions").
//!
//! The extension `1.2.840.113741.1.13.1` is a `SEQUENCE OF SEQUENCE { OID, value }`;
//! `TCB` and `Configuration` nest one more such sequence.

use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Tag, Tagged};

use crate::verify::x509::Cert;

mod oid {
    use const_oid::ObjectIdentifier;
    const fn o(s: &str) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(s)
    }
    pub(super) const SGX_EXTENSIONS: ObjectIdentifier = o("1.2.840.113741.1.13.1");
    pub(super) const PPID: ObjectIdentifier = o("1.2.840.113741.1.13.1.1");
    pub(super) const TCB: ObjectIdentifier = o("1.2.840.113741.1.13.1.2");
    pub(super) const PCESVN: ObjectIdentifier = o("1.2.840.113741.1.13.1.2.17");
    pub(super) const CPUSVN: ObjectIdentifier = o("1.2.840.113741.1.13.1.2.18");
    pub(super) const PCEID: ObjectIdentifier = o("1.2.840.113741.1.13.1.3");
    pub(super) const FMSPC: ObjectIdentifier = o("1.2.840.113741.1.13.1.4");
    pub(super) const SGX_TYPE: ObjectIdentifier = o("1.2.840.113741.1.13.1.5");
    pub(super) const PLATFORM_INSTANCE_ID: ObjectIdentifier = o("1.2.840.113741.1.13.1.6");
    pub(super) const CONFIGURATION: ObjectIdentifier = o("1.2.840.113741.1.13.1.7");
    pub(super) const DYNAMIC_PLATFORM: ObjectIdentifier = o("1.2.840.113741.1.13.1.7.1");
    pub(super) const CACHED_KEYS: ObjectIdentifier = o("1.2.840.113741.1.13.1.7.2");
    pub(super) const SMT_ENABLED: ObjectIdentifier = o("1.2.840.113741.1.13.1.7.3");
}

/// Why the SGX extensions of a PCK certificate could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PckExtensionError {
    /// The certificate has no SGX extensions.
    #[error("PCK certificate has no SGX extensions")]
    Missing,
    /// The extension is not the expected DER structure.
    #[error("PCK certificate SGX extensions are malformed")]
    Malformed,
    /// A required field is absent or has the wrong type or length.
    #[error("PCK certificate SGX extension {0} is missing or malformed")]
    Field(&'static str),
}

/// What a PCK certificate says about its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckExtensions {
    /// Platform provisioning id.
    pub ppid: Vec<u8>,
    /// CPU SVN the certificate was issued for.
    pub cpusvn: [u8; 16],
    /// PCE SVN the certificate was issued for.
    pub pce_svn: u16,
    /// PCE id.
    pub pce_id: [u8; 2],
    /// FMSPC: family, model, stepping, platform type and customisation.
    pub fmspc: [u8; 6],
    /// SGX type (0 standard, 1 scalable, 2 scalable with integrity).
    pub sgx_type: u8,
    /// Platform instance id (platform CA certificates only).
    pub platform_instance_id: Option<Vec<u8>>,
    /// Whether the platform can be extended with packages (platform CA only).
    pub dynamic_platform: Option<bool>,
    /// Whether platform root keys are cached by Intel (platform CA only).
    pub cached_keys: Option<bool>,
    /// Whether SMT is enabled (platform CA only).
    pub smt_enabled: Option<bool>,
}

type Entries<'a> = Vec<(ObjectIdentifier, AnyRef<'a>)>;

fn entries(seq: Vec<AnyRef<'_>>) -> Result<Entries<'_>, PckExtensionError> {
    let mut out = Vec::with_capacity(seq.len());
    for item in seq {
        let pair: (ObjectIdentifier, AnyRef<'_>) = item
            .sequence(|r| {
                let id = ObjectIdentifier::decode(r)?;
                let value = AnyRef::decode(r)?;
                Ok::<_, der::Error>((id, value))
            })
            .map_err(|_| PckExtensionError::Malformed)?;
        out.push(pair);
    }
    Ok(out)
}

fn find<'a>(e: &Entries<'a>, id: &ObjectIdentifier) -> Option<AnyRef<'a>> {
    e.iter().find(|(o, _)| o == id).map(|(_, v)| *v)
}

fn octets<'a>(
    e: &Entries<'a>,
    id: &ObjectIdentifier,
    name: &'static str,
) -> Result<&'a [u8], PckExtensionError> {
    let v = find(e, id).ok_or(PckExtensionError::Field(name))?;
    if v.tag() != Tag::OctetString {
        return Err(PckExtensionError::Field(name));
    }
    Ok(v.value())
}

fn fixed<const N: usize>(
    e: &Entries<'_>,
    id: &ObjectIdentifier,
    name: &'static str,
) -> Result<[u8; N], PckExtensionError> {
    octets(e, id, name)?
        .try_into()
        .map_err(|_| PckExtensionError::Field(name))
}

fn boolean(
    e: &Entries<'_>,
    id: &ObjectIdentifier,
    name: &'static str,
) -> Result<Option<bool>, PckExtensionError> {
    find(e, id)
        .map(|v| {
            v.decode_as::<bool>()
                .map_err(|_| PckExtensionError::Field(name))
        })
        .transpose()
}

/// Reads the SGX extensions of a PCK certificate.
pub(crate) fn pck_extensions(cert: &Cert) -> Result<PckExtensions, PckExtensionError> {
    let ext = cert
        .extension(&oid::SGX_EXTENSIONS)
        .ok_or(PckExtensionError::Missing)?;
    let top = entries(Vec::from_der(ext).map_err(|_| PckExtensionError::Malformed)?)?;
    let tcb_any = find(&top, &oid::TCB).ok_or(PckExtensionError::Field("TCB"))?;
    let tcb = entries(
        tcb_any
            .decode_as::<Vec<AnyRef<'_>>>()
            .map_err(|_| PckExtensionError::Field("TCB"))?,
    )?;
    let pce_svn = find(&tcb, &oid::PCESVN)
        .and_then(|v| v.decode_as::<u16>().ok())
        .ok_or(PckExtensionError::Field("PCESVN"))?;
    let cpusvn = fixed::<16>(&tcb, &oid::CPUSVN, "CPUSVN")?;
    let sgx_type = find(&top, &oid::SGX_TYPE)
        .filter(|v| v.tag() == Tag::Enumerated)
        .and_then(|v| match v.value() {
            [b] => Some(*b),
            [0, b] => Some(*b),
            _ => None,
        })
        .ok_or(PckExtensionError::Field("SGX Type"))?;
    let (dynamic_platform, cached_keys, smt_enabled) = match find(&top, &oid::CONFIGURATION) {
        None => (None, None, None),
        Some(c) => {
            let conf = entries(
                c.decode_as::<Vec<AnyRef<'_>>>()
                    .map_err(|_| PckExtensionError::Field("Configuration"))?,
            )?;
            (
                boolean(&conf, &oid::DYNAMIC_PLATFORM, "Dynamic Platform")?,
                boolean(&conf, &oid::CACHED_KEYS, "Cached Keys")?,
                boolean(&conf, &oid::SMT_ENABLED, "SMT Enabled")?,
            )
        }
    };
    Ok(PckExtensions {
        ppid: octets(&top, &oid::PPID, "PPID")?.to_vec(),
        cpusvn,
        pce_svn,
        pce_id: fixed(&top, &oid::PCEID, "PCE-ID")?,
        fmspc: fixed(&top, &oid::FMSPC, "FMSPC")?,
        sgx_type,
        platform_instance_id: find(&top, &oid::PLATFORM_INSTANCE_ID)
            .filter(|v| v.tag() == Tag::OctetString)
            .map(|v| v.value().to_vec()),
        dynamic_platform,
        cached_keys,
        smt_enabled,
    })
}
