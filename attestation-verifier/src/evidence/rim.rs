//! NVIDIA Reference Integrity Manifests (RIMs): the golden measurements of a
//! driver or VBIOS release, as an ISO/IEC 19770-2 SWID tag signed with an
//! enveloped XML-DSig signature (ECDSA P-384) whose `KeyInfo` carries the
//! signing certificate chain.
//!
//! ```text
//! <SoftwareIdentity xmlns="...19770/-2/2015/schema.xsd" name="GH100" tagId=".." version="..">
//!   <Meta colloquialVersion="550.90.07" product="GH100" .../>
//!   <Payload>
//!     <Resource type="Measurement" index="0..63" active="True|False" alternatives="N"
//!               {...xmlenc#sha384}Hash0=".." .. Hash{N-1}=".." name=".." size="48"/>
//!   </Payload>
//!   <ds:Signature> SignedInfo (c14n, ecdsa-sha384, one Reference URI="" with the
//!     enveloped-signature transform), SignatureValue, KeyInfo/X509Data </ds:Signature>
//! </SoftwareIdentity>
//! ```
//!
//! RIM index `i` describes SPDM measurement block `i + 1`. This module only
//! parses; `verify::rim` checks the signature and chain and compares values.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::nvgpu::decode_base64;
use super::xml::{self, C14n, Document, Element, XmlError};

/// The SWID tag namespace.
pub const SWID_NS: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The namespace of the `HashN` attributes holding SHA-384 golden values.
pub const SHA384_NS: &str = "http://www.w3.org/2001/04/xmlenc#sha384";
/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// Most alternatives accepted for one measurement.
pub const MAX_ALTERNATIVES: usize = 16;

/// Why a RIM could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RimParseError {
    /// The bytes are not UTF-8.
    #[error("RIM is not UTF-8 text")]
    NotUtf8,
    /// The XML is malformed.
    #[error("RIM XML: {0}")]
    Xml(#[from] XmlError),
    /// The root is not a SWID `SoftwareIdentity`.
    #[error("RIM root element is {0}, not a SWID SoftwareIdentity")]
    NotSwid(String),
    /// A required element or attribute is missing.
    #[error("RIM lacks {0}")]
    Missing(&'static str),
    /// An element that must be unique is repeated.
    #[error("RIM has more than one {0}")]
    Repeated(&'static str),
    /// An attribute has a bad value.
    #[error("RIM {what} has a bad value {value:?}")]
    BadValue {
        /// The attribute.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// Two measurements share an index.
    #[error("RIM measurement index {0} appears twice")]
    DuplicateIndex(u32),
    /// The signature uses an algorithm or form this verifier does not support.
    #[error("RIM signature: unsupported {what} {uri:?}")]
    Unsupported {
        /// Which part.
        what: &'static str,
        /// Its algorithm URI or value.
        uri: String,
    },
}

/// One golden measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldenMeasurement {
    /// RIM index (SPDM index - 1).
    pub index: u32,
    /// Name, e.g. `HashedMeasurement_2_FSP`.
    pub name: String,
    /// Whether the measurement is compared.
    pub active: bool,
    /// Size of each value in bytes.
    pub size: usize,
    /// Accepted values (any one matches).
    pub values: Vec<Vec<u8>>,
}

/// The parts of the enveloped signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RimSignature {
    /// Path (child indices from the root) of `ds:Signature`.
    pub signature_path: Vec<usize>,
    /// Path of `ds:SignedInfo`.
    pub signed_info_path: Vec<usize>,
    /// `SignedInfo`'s canonicalisation.
    pub signed_info_c14n: C14n,
    /// `SignatureMethod` algorithm URI.
    pub signature_method: String,
    /// Canonicalisation of the referenced document (after the enveloped transform).
    pub reference_c14n: C14n,
    /// `DigestMethod` algorithm URI.
    pub digest_method: String,
    /// `DigestValue`.
    pub digest_value: Vec<u8>,
    /// `SignatureValue` (`r || s` for ECDSA).
    pub signature_value: Vec<u8>,
    /// `X509Certificate`s in document order (signer first), DER.
    pub certificates: Vec<Vec<u8>>,
}

/// A parsed (not yet verified) RIM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rim {
    /// The document (kept for canonicalisation).
    pub document: Document,
    /// `tagId`.
    pub tag_id: String,
    /// `SoftwareIdentity/@name` (the chip, e.g. `GH100`).
    pub name: String,
    /// `Meta/@colloquialVersion`: the driver or VBIOS version it describes.
    pub colloquial_version: String,
    /// `Meta/@product`.
    pub product: Option<String>,
    /// The golden measurements, by index.
    pub measurements: Vec<GoldenMeasurement>,
    /// The signature.
    pub signature: RimSignature,
}

fn single<'e>(
    parent: &'e Element,
    ns: &'static str,
    local: &'static str,
    what: &'static str,
) -> Result<(usize, &'e Element), RimParseError> {
    let mut it = parent.children_named(ns, local);
    let first = it.next().ok_or(RimParseError::Missing(what))?;
    if it.next().is_some() {
        return Err(RimParseError::Repeated(what));
    }
    Ok(first)
}

fn algorithm<'e>(el: &'e Element, what: &'static str) -> Result<&'e str, RimParseError> {
    el.attr("Algorithm").ok_or(RimParseError::Missing(what))
}

fn count_signatures(el: &Element, depth: usize) -> usize {
    let own = usize::from(el.is(DSIG_NS, "Signature"));
    if depth > xml::MAX_DEPTH {
        return own;
    }
    el.child_elements()
        .map(|(_, c)| count_signatures(c, depth.saturating_add(1)))
        .fold(own, usize::saturating_add)
}

/// Parses a RIM (SWID XML).
pub fn parse_rim(bytes: &[u8]) -> Result<Rim, RimParseError> {
    let text = core::str::from_utf8(bytes).map_err(|_| RimParseError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let document = xml::parse(text)?;
    let root = &document.root;
    if !root.is(SWID_NS, "SoftwareIdentity") {
        return Err(RimParseError::NotSwid(alloc::format!(
            "{{{}}}{}", root.ns, root.local
        )));
    }
    let tag_id = root
        .attr("tagId")
        .ok_or(RimParseError::Missing("tagId"))?
        .to_string();
    let name = root.attr("name").unwrap_or_default().to_string();
    let (_, meta) = single(root, SWID_NS, "Meta", "Meta")?;
    let colloquial_version = meta
        .attr("colloquialVersion")
        .filter(|v| !v.is_empty())
        .ok_or(RimParseError::Missing("Meta/@colloquialVersion"))?
        .to_string();
    let product = meta.attr("product").map(ToString::to_string);
    let (_, payload) = single(root, SWID_NS, "Payload", "Payload")?;
    let measurements = parse_payload(payload)?;
    let signature = parse_signature(root)?;
    if count_signatures(root, 0) != 1 {
        return Err(RimParseError::Repeated("ds:Signature"));
    }
    Ok(Rim {
        tag_id,
        name,
        colloquial_version,
        product,
        measurements,
        signature,
        document,
    })
}

fn parse_payload(payload: &Element) -> Result<Vec<GoldenMeasurement>, RimParseError> {
    let mut out: Vec<GoldenMeasurement> = Vec::new();
    for (_, r) in payload.children_named(SWID_NS, "Resource") {
        if r.attr("type") != Some("Measurement") {
            continue;
        }
        let num = |what: &'static str| -> Result<usize, RimParseError> {
            let v = r
                .attr(what)
                .ok_or(RimParseError::Missing("Resource attribute"))?;
            v.parse::<usize>().map_err(|_| RimParseError::BadValue {
                what,
                value: v.to_string(),
            })
        };
        let index = u32::try_from(num("index")?).map_err(|_| RimParseError::BadValue {
            what: "index",
            value: r.attr("index").unwrap_or_default().to_string(),
        })?;
        let alternatives = num("alternatives")?;
        let size = num("size")?;
        if alternatives == 0 || alternatives > MAX_ALTERNATIVES {
            return Err(RimParseError::BadValue {
                what: "alternatives",
                value: alternatives.to_string(),
            });
        }
        let active = match r.attr("active") {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            other => {
                return Err(RimParseError::BadValue {
                    what: "active",
                    value: other.unwrap_or_default().to_string(),
                });
            }
        };
        let mut values = Vec::with_capacity(alternatives);
        for i in 0..alternatives {
            let attr = alloc::format!("Hash{i}");
            let hex_value = r
                .attr_ns(SHA384_NS, &attr)
                .ok_or(RimParseError::Missing("Resource HashN attribute"))?;
            let v = hex::decode(hex_value).map_err(|_| RimParseError::BadValue {
                what: "HashN",
                value: hex_value.to_string(),
            })?;
            if v.len() != size {
                return Err(RimParseError::BadValue {
                    what: "HashN length",
                    value: hex_value.to_string(),
                });
            }
            values.push(v);
        }
        if out.iter().any(|m| m.index == index) {
            return Err(RimParseError::DuplicateIndex(index));
        }
        out.push(GoldenMeasurement {
            index,
            name: r.attr("name").unwrap_or_default().to_string(),
            active,
            size,
            values,
        });
    }
    if out.is_empty() {
        return Err(RimParseError::Missing("measurements"));
    }
    out.sort_by_key(|m| m.index);
    Ok(out)
}

fn parse_signature(root: &Element) -> Result<RimSignature, RimParseError> {
    let (sig_idx, sig) = single(root, DSIG_NS, "Signature", "ds:Signature")?;
    let (si_idx, signed_info) = single(sig, DSIG_NS, "SignedInfo", "ds:SignedInfo")?;
    let (_, c14n_el) = single(
        signed_info,
        DSIG_NS,
        "CanonicalizationMethod",
        "ds:CanonicalizationMethod",
    )?;
    let signed_info_c14n = c14n_method(c14n_el, "CanonicalizationMethod")?;
    let (_, sm) = single(
        signed_info,
        DSIG_NS,
        "SignatureMethod",
        "ds:SignatureMethod",
    )?;
    let signature_method = algorithm(sm, "SignatureMethod/@Algorithm")?.to_string();
    let (_, reference) = single(signed_info, DSIG_NS, "Reference", "ds:Reference")?;
    let uri = reference
        .attr("URI")
        .ok_or(RimParseError::Missing("Reference/@URI"))?;
    if !uri.is_empty() {
        return Err(RimParseError::Unsupported {
            what: "Reference URI",
            uri: uri.to_string(),
        });
    }
    let mut reference_c14n = C14n::Inclusive10;
    let mut enveloped = false;
    if let Ok((_, transforms)) = single(reference, DSIG_NS, "Transforms", "ds:Transforms") {
        for (n, (_, t)) in transforms.children_named(DSIG_NS, "Transform").enumerate() {
            let alg = algorithm(t, "Transform/@Algorithm")?;
            match (n, alg) {
                (0, ENVELOPED) => enveloped = true,
                (1, _) => reference_c14n = c14n_method(t, "Transform")?,
                _ => {
                    return Err(RimParseError::Unsupported {
                        what: "transform sequence",
                        uri: alg.to_string(),
                    });
                }
            }
        }
    }
    if !enveloped {
        return Err(RimParseError::Missing("enveloped-signature transform"));
    }
    let (_, dm) = single(reference, DSIG_NS, "DigestMethod", "ds:DigestMethod")?;
    let digest_method = algorithm(dm, "DigestMethod/@Algorithm")?.to_string();
    let (_, dv) = single(reference, DSIG_NS, "DigestValue", "ds:DigestValue")?;
    let digest_value = decode_base64(&dv.text()).map_err(|()| RimParseError::BadValue {
        what: "DigestValue",
        value: dv.text(),
    })?;
    let (_, sv) = single(sig, DSIG_NS, "SignatureValue", "ds:SignatureValue")?;
    let signature_value = decode_base64(&sv.text()).map_err(|()| RimParseError::BadValue {
        what: "SignatureValue",
        value: sv.text(),
    })?;
    let (_, key_info) = single(sig, DSIG_NS, "KeyInfo", "ds:KeyInfo")?;
    let (_, x509_data) = single(key_info, DSIG_NS, "X509Data", "ds:X509Data")?;
    let mut certificates = Vec::new();
    for (_, c) in x509_data.children_named(DSIG_NS, "X509Certificate") {
        certificates.push(
            decode_base64(&c.text()).map_err(|()| RimParseError::BadValue {
                what: "X509Certificate",
                value: c.text().chars().take(40).collect(),
            })?,
        );
    }
    if certificates.is_empty() {
        return Err(RimParseError::Missing("ds:X509Certificate"));
    }
    Ok(RimSignature {
        signature_path: alloc::vec![sig_idx],
        signed_info_path: alloc::vec![sig_idx, si_idx],
        signed_info_c14n,
        signature_method,
        reference_c14n,
        digest_method,
        digest_value,
        signature_value,
        certificates,
    })
}

/// The canonicalisation an element's `Algorithm` names, with an exclusive
/// canonicalisation's `InclusiveNamespaces/@PrefixList`.
fn c14n_method(el: &Element, what: &'static str) -> Result<C14n, RimParseError> {
    let uri = algorithm(el, what)?;
    let mut method = C14n::from_uri(uri).ok_or_else(|| RimParseError::Unsupported {
        what,
        uri: uri.to_string(),
    })?;
    if let C14n::Exclusive(prefixes) = &mut method {
        const EC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
        if let Some((_, inc)) = el.children_named(EC, "InclusiveNamespaces").next() {
            prefixes.extend(
                inc.attr("PrefixList")
                    .unwrap_or_default()
                    .split_ascii_whitespace()
                    .map(ToString::to_string),
            );
        }
    }
    Ok(method)
}
