//! Synthetic NVIDIA GPU evidence for tests and benches: a test PKI (rcgen),
//! SPDM GET_MEASUREMENTS reports signed with P-384, OCSP responses, and RIMs
//! signed with XML-DSig.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)] // test helpers

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::xml::{self, C14n};
use attestation_verifier::verify::ocsp::{
    BasicResponse, CertStatusDer, ID_PKIX_OCSP_BASIC, OcspResponseDer, ResponderId, ResponseBytes,
    ResponseData, ResponseStatus, SingleResponse, cert_id_sha384,
};
use attestation_verifier::verify::x509::Cert;
use base64ct::Encoding;
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer as _;
use p384::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384,
};

/// 2025-06-01T00:00:00Z.
pub const NOW: u64 = 1_748_736_000;

/// A P-384 key both as rcgen key pair and as p384 signing key.
pub struct Key {
    pub kp: KeyPair,
    pub sk: p384::ecdsa::SigningKey,
}

pub fn key() -> Key {
    let kp = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let sk = p384::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    Key { kp, sk }
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Test GPU Vendor");
    p.not_before = rcgen::date_time_ymd(2021, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    p
}

/// RIoT composite device id carrying `fwid` (the form Hopper GPUs use).
pub fn composite_fwid(fwid: &[u8; 48]) -> Vec<u8> {
    let mut fwid_seq = vec![
        0x30, 0x3D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x04, 0x30,
    ];
    fwid_seq.extend_from_slice(fwid);
    let mut body = vec![0x02, 0x01, 0x01, 0x30, 0x00];
    body.extend_from_slice(&fwid_seq);
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// How to build the device chain (to exercise every rejection path).
#[derive(Clone, Copy)]
pub struct ChainSpec {
    pub fwid: Option<[u8; 48]>,
    pub intermediate_is_ca: bool,
    pub leaf_is_ca: bool,
    pub leaf_p256: bool,
}

impl Default for ChainSpec {
    fn default() -> Self {
        Self {
            fwid: Some(FWID),
            intermediate_is_ca: true,
            leaf_is_ca: false,
            leaf_p256: false,
        }
    }
}

pub const FWID: [u8; 48] = [0xF1; 48];

/// The attestation certificate of a device (its FWID in the TCG DICE extension).
fn leaf_params(spec: &ChainSpec) -> CertificateParams {
    let mut lp = params("GH100 A01 GSP FMC LF", spec.leaf_is_ca);
    if let Some(f) = spec.fwid {
        lp.custom_extensions.push(CustomExtension::from_oid_content(
            &[2, 23, 133, 5, 4, 1],
            composite_fwid(&f),
        ));
    }
    lp
}

/// A test device PKI: root -> intermediate -> leaf (attestation key).
pub struct DevicePki {
    pub root_key: Key,
    pub root: Vec<u8>,
    pub inter_key: Key,
    pub inter: Vec<u8>,
    pub leaf_key: Key,
    pub leaf: Vec<u8>,
}

impl DevicePki {
    pub fn new(spec: ChainSpec) -> Self {
        let root_key = key();
        let inter_key = key();
        let leaf_key = key();
        let root_issuer =
            CertifiedIssuer::self_signed(params("Test Device Identity CA", true), &root_key.kp)
                .unwrap();
        let inter_issuer = CertifiedIssuer::signed_by(
            params("Test GH100 Identity", spec.intermediate_is_ca),
            &inter_key.kp,
            &root_issuer,
        )
        .unwrap();
        let lp = leaf_params(&spec);
        let leaf = if spec.leaf_p256 {
            let k = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            lp.signed_by(&k, &inter_issuer).unwrap().der().to_vec()
        } else {
            lp.signed_by(&leaf_key.kp, &inter_issuer)
                .unwrap()
                .der()
                .to_vec()
        };
        Self {
            root: root_issuer.der().to_vec(),
            inter: inter_issuer.der().to_vec(),
            root_key,
            inter_key,
            leaf,
            leaf_key,
        }
    }

    /// Another device under the same intermediate (another GPU of the board): its
    /// attestation key and its chain as NVML returns it.
    pub fn sibling(&self, spec: ChainSpec) -> (Key, Vec<Vec<u8>>) {
        let inter = rcgen::Issuer::new(
            params("Test GH100 Identity", spec.intermediate_is_ca),
            &self.inter_key.kp,
        );
        let leaf_key = key();
        let leaf = leaf_params(&spec)
            .signed_by(&leaf_key.kp, &inter)
            .unwrap()
            .der()
            .to_vec();
        (leaf_key, vec![leaf, self.inter.clone(), self.root.clone()])
    }

    /// The chain as NVML returns it: leaf, intermediate, root.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.leaf.clone(), self.inter.clone(), self.root.clone()]
    }

    pub fn cert(der: &[u8]) -> Cert {
        Cert::from_der("test", der).unwrap()
    }
}

/// What goes into a synthetic report.
#[derive(Clone)]
pub struct ReportSpec {
    pub nonce: [u8; 32],
    pub driver: &'static str,
    pub vbios: [u8; 8],
    pub fwid: Option<[u8; 48]>,
    pub feature_flag: Option<u16>,
    pub nvdec: u8,
    pub measurements: Vec<[u8; 48]>,
}

pub const NONCE: [u8; 32] = [0x4E; 32];

impl Default for ReportSpec {
    fn default() -> Self {
        Self {
            nonce: NONCE,
            driver: "550.90.07",
            // 96.00.9f.00.01
            vbios: [0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0],
            fwid: Some(FWID),
            feature_flag: Some(0),
            nvdec: 0x55,
            measurements: (0..64u8)
                .map(|i| if i % 3 == 0 { [0; 48] } else { [i; 48] })
                .collect(),
        }
    }
}

fn tlv(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// request || response, signed with `key` (its signature is over everything before it).
pub fn build_report(spec: &ReportSpec, key: &p384::ecdsa::SigningKey) -> Vec<u8> {
    let mut v = vec![0x11, 0xE0, 0x01, 0xFF];
    v.extend_from_slice(&spec.nonce);
    v.push(0);
    let mut record = Vec::new();
    for (i, m) in spec.measurements.iter().enumerate() {
        record.extend_from_slice(&[(i + 1) as u8, 0x01, 51, 0, 0x01, 48, 0]);
        record.extend_from_slice(m);
    }
    v.extend_from_slice(&[0x11, 0x60, 0, 0, spec.measurements.len() as u8]);
    v.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
    v.extend_from_slice(&record);
    v.extend_from_slice(&[0x52; 32]);
    let mut opaque = Vec::new();
    tlv(&mut opaque, 6, &spec.vbios);
    tlv(&mut opaque, 15, b"882\0\0\0\0\0\0");
    tlv(&mut opaque, 17, b"1010\0");
    tlv(&mut opaque, 18, b"0200\0");
    tlv(&mut opaque, 3, format!("{}\0", spec.driver).as_bytes());
    tlv(&mut opaque, 4, &[0x80, 0x01, 0, 0, 0, 0, 0, 0]);
    let counts: Vec<u8> = (0..64u32).flat_map(|i| (i % 2).to_le_bytes()).collect();
    tlv(&mut opaque, 12, &counts);
    tlv(&mut opaque, 11, &[spec.nvdec]);
    if let Some(f) = spec.fwid {
        tlv(&mut opaque, 20, &f);
    }
    if let Some(ff) = spec.feature_flag {
        tlv(&mut opaque, 36, &ff.to_le_bytes());
    }
    v.extend_from_slice(&(opaque.len() as u16).to_le_bytes());
    v.extend_from_slice(&opaque);
    let sig: p384::ecdsa::Signature = key.sign(&v);
    v.extend_from_slice(&sig.to_bytes());
    v
}

fn gtime(secs: u64) -> GeneralizedTime {
    GeneralizedTime::from_unix_duration(core::time::Duration::from_secs(secs)).unwrap()
}

/// An OCSP response about `cert` (issued by `issuer`), signed by `signer`;
/// `delegate` is a responder certificate to carry in the response.
pub fn ocsp_response(
    signer: &p384::ecdsa::SigningKey,
    delegate: Option<&[u8]>,
    cert: &[u8],
    issuer: &[u8],
    status: CertStatusDer,
    this_update: u64,
    next_update: Option<u64>,
) -> Vec<u8> {
    let id = cert_id_sha384(
        &RustCrypto,
        &DevicePki::cert(cert),
        &DevicePki::cert(issuer),
    )
    .unwrap();
    let data = ResponseData {
        version: 0,
        responder_id: ResponderId::ByKey(OctetString::new(vec![0u8; 20]).unwrap()),
        produced_at: gtime(this_update),
        responses: vec![SingleResponse {
            cert_id: id,
            cert_status: status,
            this_update: gtime(this_update),
            next_update: next_update.map(gtime),
            single_extensions: None,
        }],
        response_extensions: None,
    };
    let tbs = data.to_der().unwrap();
    let sig: p384::ecdsa::Signature = signer.sign(&tbs);
    let basic = BasicResponse {
        tbs_response_data: data,
        signature_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
            parameters: None,
        },
        signature: BitString::from_bytes(sig.to_der().as_bytes()).unwrap(),
        certs: delegate.map(|d| vec![der::asn1::Any::from_der(d).unwrap()]),
    };
    OcspResponseDer {
        response_status: ResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der().unwrap()).unwrap(),
        }),
    }
    .to_der()
    .unwrap()
}

/// A delegated OCSP responder certificate issued by `issuer`.
pub fn ocsp_delegate(issuer_cn: &str, issuer_key: &Key, with_eku: bool) -> (Key, Vec<u8>) {
    let issuer = rcgen::Issuer::new(params(issuer_cn, true), &issuer_key.kp);
    let k = key();
    let mut p = params("Test OCSP Responder", false);
    if with_eku {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    }
    let der = p.signed_by(&k.kp, &issuer).unwrap().der().to_vec();
    (k, der)
}

/// A RIM signing PKI: root -> signer.
pub struct RimPki {
    pub root_key: Key,
    pub root: Vec<u8>,
    pub signer_key: Key,
    pub signer: Vec<u8>,
}

impl RimPki {
    pub fn new() -> Self {
        let root_key = key();
        let signer_key = key();
        let root_issuer =
            CertifiedIssuer::self_signed(params("Test CoRIM signing Root CA", true), &root_key.kp)
                .unwrap();
        let signer = params("Test RIM Signer", false)
            .signed_by(&signer_key.kp, &root_issuer)
            .unwrap()
            .der()
            .to_vec();
        Self {
            root: root_issuer.der().to_vec(),
            root_key,
            signer_key,
            signer,
        }
    }

    /// A GH100 VBIOS RIM for `version` whose golden values are those of a report built
    /// from `spec` (RIM indices 0..32), signed by this PKI's signer.
    pub fn vbios_rim(&self, version: &str, spec: &ReportSpec) -> Vec<u8> {
        let certs: [&[u8]; 2] = [&self.signer, &self.root];
        build_rim(
            version,
            "GH100",
            &golden_for(spec, 0..32),
            &self.signer_key.sk,
            &certs,
        )
    }

    /// The VBIOS and driver RIMs (GH100) whose golden values are those of a report built from
    /// `spec`, signed by this PKI's signer.
    pub fn matching_rims(&self, spec: &ReportSpec) -> Vec<Vec<u8>> {
        let certs: [&[u8]; 2] = [&self.signer, &self.root];
        vec![
            self.vbios_rim("96.00.9F.00.01", spec),
            build_rim(
                spec.driver,
                "GH100",
                &golden_for(spec, 32..64),
                &self.signer_key.sk,
                &certs,
            ),
        ]
    }
}

/// One golden measurement: RIM index, active, alternatives.
pub type Golden = (u32, bool, Vec<[u8; 48]>);

const SWID: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const HASH_NS: &str = "http://www.w3.org/2001/04/xmlenc#sha384";

/// A SWID RIM for `version`/`product` with `golden`, signed (exclusive c14n,
/// ECDSA-SHA384) by `signer` whose chain (`certs`, signer first) is embedded.
pub fn build_rim(
    version: &str,
    product: &str,
    golden: &[Golden],
    signer: &p384::ecdsa::SigningKey,
    certs: &[&[u8]],
) -> Vec<u8> {
    let mut body = format!(
        "<SoftwareIdentity xmlns=\"{SWID}\" xmlns:ns2=\"{HASH_NS}\" corpus=\"false\" name=\"{product}\" \
         tagId=\"test-{version}\" version=\"1.0\">\n    <Meta colloquialVersion=\"{version}\" product=\"{product}\" \
         edition=\"GPU\"/>\n    <Payload>\n"
    );
    for (index, active, alts) in golden {
        body.push_str(&format!(
            "        <Resource type=\"Measurement\" index=\"{index}\" active=\"{}\" alternatives=\"{}\"",
            if *active { "True" } else { "False" },
            alts.len()
        ));
        for (i, a) in alts.iter().enumerate() {
            body.push_str(&format!(" ns2:Hash{i}=\"{}\"", hex::encode(a)));
        }
        body.push_str(&format!(" name=\"Measurement_{index}\" size=\"48\"/>\n"));
    }
    body.push_str("    </Payload>\n");
    let unsigned = format!("{body}</SoftwareIdentity>");
    let doc = xml::parse(&unsigned).unwrap();
    let method = C14n::Exclusive(Vec::new());
    let canonical = xml::canonicalize_document(&doc, None, &method).unwrap();
    let digest = <sha2::Sha384 as sha2::Digest>::digest(&canonical);
    let digest: &[u8] = digest.as_ref();
    let ds = "http://www.w3.org/2000/09/xmldsig#";
    let exc = "http://www.w3.org/2001/10/xml-exc-c14n#";
    let signed_info = format!(
        "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{exc}\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384\"/>\
         <ds:Reference URI=\"\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
         <ds:Transform Algorithm=\"{exc}\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#sha384\"/>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
        base64ct::Base64::encode_string(digest)
    );
    let key_info: String = certs
        .iter()
        .map(|c| {
            format!(
                "<ds:X509Certificate>{}</ds:X509Certificate>",
                base64ct::Base64::encode_string(c)
            )
        })
        .collect();
    let with_placeholder = format!(
        "{body}<ds:Signature xmlns:ds=\"{ds}\">{signed_info}<ds:SignatureValue>SIG</ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data>{key_info}</ds:X509Data></ds:KeyInfo></ds:Signature></SoftwareIdentity>"
    );
    let doc = xml::parse(&with_placeholder).unwrap();
    let sig_index = doc
        .root
        .child_elements()
        .find(|(_, e)| e.local == "Signature")
        .unwrap()
        .0;
    let si = xml::canonicalize_subtree(&doc, &[sig_index, 0], &method).unwrap();
    let sig: p384::ecdsa::Signature = signer.sign(&si);
    with_placeholder
        .replacen(
            "<ds:SignatureValue>SIG</ds:SignatureValue>",
            &format!(
                "<ds:SignatureValue>{}</ds:SignatureValue>",
                base64ct::Base64::encode_string(&sig.to_bytes())
            ),
            1,
        )
        .into_bytes()
}

/// Golden values equal to a report spec's measurements (RIM index = SPDM index - 1),
/// split: the VBIOS RIM holds indices 0..32, the driver RIM 32..64.
pub fn golden_for(spec: &ReportSpec, range: core::ops::Range<u32>) -> Vec<Golden> {
    (0..64u32)
        .map(|i| {
            let active = range.contains(&i);
            (i, active, vec![spec.measurements[i as usize]])
        })
        .collect()
}
