//! A synthetic NVIDIA device PKI (rcgen, P-384), SPDM GET_MEASUREMENTS reports signed by its
//! attestation key, delegated OCSP responder certificates and a RIM signing PKI. The OCSP
//! responses and signed RIMs are built with the verifier's own DER and XML types, so they stay
//! with the verifier's tests (see the crate documentation).

use p384::ecdsa::signature::Signer as _;
use p384::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384,
};

/// 2025-06-01T00:00:00Z: inside every synthetic certificate's validity.
pub const NOW: u64 = 1_748_736_000;

/// The FWID of the synthetic device (its certificate's DICE extension and its report).
pub const FWID: [u8; 48] = [0xF1; 48];

/// The nonce of a default [`ReportSpec`].
pub const NONCE: [u8; 32] = [0x4E; 32];

/// A P-384 key both as rcgen key pair and as p384 signing key.
pub struct Key {
    /// For rcgen (certificates).
    pub kp: KeyPair,
    /// For signing reports and responses.
    pub sk: p384::ecdsa::SigningKey,
}

/// A fresh P-384 [`Key`].
pub fn key() -> Key {
    let kp = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let sk = p384::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    Key { kp, sk }
}

/// A certificate's parameters: `cn` of "Test GPU Vendor", a CA or a signing leaf, valid
/// 2021-2040.
pub fn params(cn: &str, ca: bool) -> CertificateParams {
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
    /// The leaf's FWID extension.
    pub fwid: Option<[u8; 48]>,
    /// Whether the intermediate is a CA.
    pub intermediate_is_ca: bool,
    /// Whether the leaf is a CA.
    pub leaf_is_ca: bool,
    /// A P-256 leaf key instead of P-384.
    pub leaf_p256: bool,
}

impl Default for ChainSpec {
    /// A well-formed chain whose leaf carries [`FWID`].
    fn default() -> Self {
        Self {
            fwid: Some(FWID),
            intermediate_is_ca: true,
            leaf_is_ca: false,
            leaf_p256: false,
        }
    }
}

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
    /// The root's key.
    pub root_key: Key,
    /// `Test Device Identity CA` (DER).
    pub root: Vec<u8>,
    /// The intermediate's key.
    pub inter_key: Key,
    /// `Test GH100 Identity` (DER).
    pub inter: Vec<u8>,
    /// The attestation key.
    pub leaf_key: Key,
    /// `GH100 A01 GSP FMC LF` (DER).
    pub leaf: Vec<u8>,
}

impl DevicePki {
    /// A fresh device PKI as `spec` describes it.
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

    /// [`chain`](Self::chain) as concatenated PEM.
    pub fn chain_pem(&self) -> String {
        let pems: Vec<pem::Pem> = self
            .chain()
            .into_iter()
            .map(|d| pem::Pem::new("CERTIFICATE", d))
            .collect();
        pem::encode_many(&pems)
    }
}

/// What goes into a synthetic report.
#[derive(Clone)]
pub struct ReportSpec {
    /// The requester's nonce.
    pub nonce: [u8; 32],
    /// The driver version (opaque data).
    pub driver: &'static str,
    /// The VBIOS version (opaque data).
    pub vbios: [u8; 8],
    /// The FWID (opaque data).
    pub fwid: Option<[u8; 48]>,
    /// The feature flag (opaque data).
    pub feature_flag: Option<u16>,
    /// The NVDEC state (opaque data).
    pub nvdec: u8,
    /// The measurement blocks (SPDM indices 1..).
    pub measurements: Vec<[u8; 48]>,
}

impl Default for ReportSpec {
    /// [`NONCE`], driver 550.90.07, VBIOS 96.00.9f.00.01, [`FWID`], 64 measurements.
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

/// A delegated OCSP responder certificate issued by `issuer_cn` (whose key is `issuer_key`),
/// with the OCSP signing EKU when `with_eku`; and its key.
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
    /// The root's key.
    pub root_key: Key,
    /// `Test CoRIM signing Root CA` (DER).
    pub root: Vec<u8>,
    /// The signer's key.
    pub signer_key: Key,
    /// `Test RIM Signer` (DER).
    pub signer: Vec<u8>,
}

impl RimPki {
    /// A fresh RIM signing PKI.
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
}

impl Default for RimPki {
    fn default() -> Self {
        Self::new()
    }
}
