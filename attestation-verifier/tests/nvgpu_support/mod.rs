//! Synthetic NVIDIA GPU evidence for tests and benches: the test PKI and SPDM
//! GET_MEASUREMENTS reports of `sigil-test-support`, plus what needs the verifier's own types:
//! OCSP responses and RIMs signed with XML-DSig.

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

pub use sigil_test_support::nvgpu::*;

/// What the verifier's tests add to the device PKI of `sigil-test-support`.
pub trait DevicePkiExt {
    /// `der` as the verifier's certificate.
    fn cert(der: &[u8]) -> Cert;
}

impl DevicePkiExt for DevicePki {
    fn cert(der: &[u8]) -> Cert {
        Cert::from_der("test", der).unwrap()
    }
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

/// RIMs signed by the RIM signing PKI of `sigil-test-support` (with the verifier's XML
/// canonicalization).
pub trait RimPkiExt {
    /// A GH100 VBIOS RIM for `version` whose golden values are those of a report built
    /// from `spec` (RIM indices 0..32), signed by this PKI's signer.
    fn vbios_rim(&self, version: &str, spec: &ReportSpec) -> Vec<u8>;
    /// The VBIOS and driver RIMs (GH100) whose golden values are those of a report built from
    /// `spec`, signed by this PKI's signer.
    fn matching_rims(&self, spec: &ReportSpec) -> Vec<Vec<u8>>;
}

impl RimPkiExt for RimPki {
    fn vbios_rim(&self, version: &str, spec: &ReportSpec) -> Vec<u8> {
        let certs: [&[u8]; 2] = [&self.signer, &self.root];
        build_rim(
            version,
            "GH100",
            &golden_for(spec, 0..32),
            &self.signer_key.sk,
            &certs,
        )
    }

    fn matching_rims(&self, spec: &ReportSpec) -> Vec<Vec<u8>> {
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
