//! A synthetic Intel PKI (root, PCK Platform/Processor CAs, PCK certificates with the SGX
//! extension, TCB signing certificate, CRLs), TCB Info and QE Identity JSON, and TDX quotes
//! (v4, v5) signed by a test attestation key over a QE report signed by the PCK key. A test
//! turns them into the verifier's `TdxTrustAnchor` and `TdxCollateral` itself.

use const_oid::ObjectIdentifier;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, SerialNumber, date_time_ymd,
};
use sha2::Digest;

/// The FMSPC of the test platform.
pub const FMSPC: [u8; 6] = [0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00];
/// The QE's MRSIGNER.
pub const QE_MRSIGNER: [u8; 32] = [0xab; 32];
/// The PCK certificate's serial number.
pub const PCK_SERIAL: u64 = 0x5151;
/// Intel's QE vendor id, in every quote header.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// The OID arc of the SGX extension.
const SGX: &str = "1.2.840.113741.1.13.1";

// ---- DER helpers

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend(content);
    out
}

fn oid(s: &str) -> Vec<u8> {
    tlv(0x06, ObjectIdentifier::new_unwrap(s).as_bytes())
}

fn int(v: u16) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut c: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
    if c.first().is_none_or(|x| x & 0x80 != 0) {
        c.insert(0, 0);
    }
    tlv(0x02, &c)
}

fn pair(id: &str, value: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &[oid(id), value].concat())
}

/// The SGX extension of a PCK certificate: PPID, TCB (CPUSVN components, PCE SVN, CPUSVN),
/// PCE-ID, `fmspc`, SGX type.
pub fn sgx_extension(cpusvn: [u8; 16], pce_svn: u16, fmspc: [u8; 6]) -> Vec<u8> {
    let mut tcb = Vec::new();
    for (i, svn) in cpusvn.iter().enumerate() {
        tcb.extend(pair(&format!("{SGX}.2.{}", i + 1), int(u16::from(*svn))));
    }
    tcb.extend(pair(&format!("{SGX}.2.17"), int(pce_svn)));
    tcb.extend(pair(&format!("{SGX}.2.18"), tlv(0x04, &cpusvn)));
    let items = [
        pair(&format!("{SGX}.1"), tlv(0x04, &[0x11; 16])),
        pair(&format!("{SGX}.2"), tlv(0x30, &tcb)),
        pair(&format!("{SGX}.3"), tlv(0x04, &[0, 0])),
        pair(&format!("{SGX}.4"), tlv(0x04, &fmspc)),
        pair(&format!("{SGX}.5"), tlv(0x0a, &[0])),
    ];
    tlv(0x30, &items.concat())
}

// ---- PKI

/// A fresh P-256 key pair.
pub fn p256_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// `k` as a p256 signing key.
pub fn signer_of(k: &KeyPair) -> SigningKey {
    SigningKey::from_pkcs8_der(&k.serialize_der()).unwrap()
}

/// An ECDSA P-256 signature of `msg` (r || s).
pub fn sign(k: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let s: p256::ecdsa::Signature = k.sign(msg);
    s.to_bytes().to_vec()
}

/// An Intel CA certificate's parameters: `cn`, `serial`, valid 2020-2049.
pub fn ca_params(cn: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.serial_number = Some(SerialNumber::from(serial));
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Intel Corporation");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2049, 12, 31);
    p
}

/// An Intel leaf certificate's parameters: `cn`, `serial`, valid 2025-2032.
pub fn leaf_params(cn: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Intel Corporation");
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2032, 1, 1);
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

/// `der` as a PEM certificate.
pub fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// A CRL of `issuer` (2029-06-01..2029-07-01) revoking the serials `revoked`.
pub fn crl(issuer: &CertifiedIssuer<'static, KeyPair>, revoked: &[u64]) -> Vec<u8> {
    crate::pki::crl(issuer, revoked, (2029, 7, 1))
}

/// A test Intel PKI: root, PCK Platform and Processor CAs, TCB signing certificate.
pub struct IntelPki {
    /// `Intel SGX Root CA` (serial 1).
    pub root: CertifiedIssuer<'static, KeyPair>,
    /// `Intel SGX PCK Platform CA` (serial 2).
    pub platform_ca: CertifiedIssuer<'static, KeyPair>,
    /// `Intel SGX PCK Processor CA` (serial 3).
    pub processor_ca: CertifiedIssuer<'static, KeyPair>,
    /// `Intel SGX TCB Signing` (DER).
    pub tcb_der: Vec<u8>,
    /// Its key.
    pub tcb_key: SigningKey,
}

impl IntelPki {
    /// A fresh PKI.
    pub fn new() -> Self {
        let root =
            CertifiedIssuer::self_signed(ca_params("Intel SGX Root CA", 1), p256_key()).unwrap();
        let platform_ca = CertifiedIssuer::signed_by(
            ca_params("Intel SGX PCK Platform CA", 2),
            p256_key(),
            &root,
        )
        .unwrap();
        let processor_ca = CertifiedIssuer::signed_by(
            ca_params("Intel SGX PCK Processor CA", 3),
            p256_key(),
            &root,
        )
        .unwrap();
        let (tcb_der, tcb_key) = Self::tcb_signer(&root, "Intel SGX TCB Signing");
        Self {
            root,
            platform_ca,
            processor_ca,
            tcb_der,
            tcb_key,
        }
    }

    /// A TCB signing certificate `cn` under `root`, and its key.
    pub fn tcb_signer(root: &CertifiedIssuer<'static, KeyPair>, cn: &str) -> (Vec<u8>, SigningKey) {
        let k = p256_key();
        let c = leaf_params(cn, 0x7cb).signed_by(&k, root).unwrap();
        (c.der().to_vec(), signer_of(&k))
    }
}

// ---- evidence

/// A TCB level: (SGX component SVN, PCE SVN, TDX components, status, advisories).
pub type Level = (u8, u16, [u8; 16], &'static str, Vec<&'static str>);

/// Everything a test can vary.
#[derive(Clone)]
pub struct Spec {
    /// The quote version (4 or 5).
    pub version: u16,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// TEE_TCB_SVN2 (v5).
    pub tee_tcb_svn2: [u8; 16],
    /// TD_ATTRIBUTES.
    pub td_attributes: u64,
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// The PCK's CPUSVN.
    pub cpusvn: [u8; 16],
    /// The PCK's PCE SVN.
    pub pce_svn: u16,
    /// The PCK's FMSPC.
    pub pck_fmspc: [u8; 6],
    /// The TCB Info's FMSPC.
    pub tcb_fmspc: [u8; 6],
    /// The QE report's ISV SVN.
    pub qe_isvsvn: u16,
    /// The QE report's MRSIGNER.
    pub qe_mrsigner: [u8; 32],
    /// The QE Identity's MRSIGNER.
    pub qe_identity_mrsigner: [u8; 32],
    /// The QE report's ISV product id.
    pub qe_isvprodid: u16,
    /// The TCB Info levels.
    pub levels: Vec<Level>,
    /// Module identity TDX_01 levels (isvsvn, status).
    pub module_levels: Vec<(u8, &'static str)>,
    /// QE Identity levels (isvsvn, status).
    pub qe_levels: Vec<(u16, &'static str)>,
    /// The PCK CRL revokes the PCK.
    pub pck_revoked: bool,
    /// The root CRL revokes the Platform CA.
    pub pck_ca_revoked: bool,
    /// The PCK CRL is the Processor CA's.
    pub crl_from_processor_ca: bool,
    /// The TCB signing certificate's CN.
    pub tcb_signer_cn: &'static str,
    /// RTMR0..RTMR3 of the TD report.
    pub rtmr: [[u8; 48]; 4],
    /// REPORT_DATA of the TD report.
    pub report_data: [u8; 64],
}

/// A TEE_TCB_SVN: the module's ISV SVN and version, then `rest` in the third byte.
pub fn tdx_svn(module_isvsvn: u8, module_version: u8, rest: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0] = module_isvsvn;
    s[1] = module_version;
    s[2] = rest;
    s
}

impl Default for Spec {
    /// An up-to-date v4 quote whose PCK and collateral match.
    fn default() -> Self {
        Self {
            version: 4,
            tee_tcb_svn: tdx_svn(5, 1, 2),
            tee_tcb_svn2: tdx_svn(5, 1, 2),
            td_attributes: 1 << 28, // SEPT_VE_DISABLE
            mr_signer_seam: [0; 48],
            cpusvn: [3; 16],
            pce_svn: 11,
            pck_fmspc: FMSPC,
            tcb_fmspc: FMSPC,
            qe_isvsvn: 4,
            qe_mrsigner: QE_MRSIGNER,
            qe_identity_mrsigner: QE_MRSIGNER,
            qe_isvprodid: 2,
            levels: vec![
                (3, 11, tdx_svn(0, 0, 2), "UpToDate", vec![]),
                (2, 10, tdx_svn(0, 0, 1), "OutOfDate", vec!["INTEL-SA-00837"]),
            ],
            module_levels: vec![(5, "UpToDate"), (3, "OutOfDate")],
            qe_levels: vec![(4, "UpToDate"), (2, "OutOfDate")],
            pck_revoked: false,
            pck_ca_revoked: false,
            crl_from_processor_ca: false,
            tcb_signer_cn: "Intel SGX TCB Signing",
            rtmr: [[0; 48]; 4],
            report_data: [0x42; 64],
        }
    }
}

fn json_list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(",")
}

fn components(c: &[u8; 16]) -> String {
    json_list(c, |s| format!(r#"{{"svn":{s}}}"#))
}

/// TCB levels of an ISV SVN each (a TDX module identity's, the QE Identity's).
fn isv_levels<T: core::fmt::Display>(levels: &[(T, &str)]) -> String {
    json_list(levels, |(isv, status)| {
        format!(
            r#"{{"tcb":{{"isvsvn":{isv}}},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"{status}"}}"#
        )
    })
}

/// The TDX TCB Info (v3) JSON of `s`.
pub fn tcb_info_json(s: &Spec) -> String {
    let levels = json_list(&s.levels, |(sgx, pce, tdx, status, adv)| {
        format!(
            r#"{{"tcb":{{"sgxtcbcomponents":[{}],"pcesvn":{pce},"tdxtcbcomponents":[{}]}},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"{status}","advisoryIDs":[{}]}}"#,
            components(&[*sgx; 16]),
            components(tdx),
            json_list(adv, |a| format!("\"{a}\""))
        )
    });
    let module_levels = isv_levels(&s.module_levels);
    let zeros = "0".repeat(96);
    format!(
        r#"{{"id":"TDX","version":3,"issueDate":"2029-06-01T00:00:00Z","nextUpdate":"2029-07-01T00:00:00Z","fmspc":"{}","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tdxModule":{{"mrsigner":"{zeros}","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"}},"tdxModuleIdentities":[{{"id":"TDX_01","mrsigner":"{zeros}","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF","tcbLevels":[{module_levels}]}}],"tcbLevels":[{levels}]}}"#,
        hex::encode_upper(s.tcb_fmspc)
    )
}

/// The TD QE Identity (v2) JSON of `s`.
pub fn qe_identity_json(s: &Spec) -> String {
    let levels = isv_levels(&s.qe_levels);
    format!(
        r#"{{"id":"TD_QE","version":2,"issueDate":"2029-06-01T00:00:00Z","nextUpdate":"2029-07-01T00:00:00Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"{}","isvprodid":2,"tcbLevels":[{levels}]}}"#,
        hex::encode_upper(s.qe_identity_mrsigner)
    )
}

/// The TD report body (v4, or v5 with TEE_TCB_SVN2) of `s`.
fn body(s: &Spec) -> Vec<u8> {
    let mut b = vec![0u8; if s.version == 5 { 648 } else { 584 }];
    b[0..16].copy_from_slice(&s.tee_tcb_svn);
    b[16..64].copy_from_slice(&[0x5e; 48]); // MRSEAM
    b[64..112].copy_from_slice(&s.mr_signer_seam);
    b[120..128].copy_from_slice(&s.td_attributes.to_le_bytes());
    b[136..184].copy_from_slice(&[0x7d; 48]); // MRTD
    for (i, r) in s.rtmr.iter().enumerate() {
        b[328 + 48 * i..376 + 48 * i].copy_from_slice(r);
    }
    b[520..584].copy_from_slice(&s.report_data);
    if s.version == 5 {
        b[584..600].copy_from_slice(&s.tee_tcb_svn2);
    }
    b
}

/// The QE report of `s`, its REPORT_DATA binding `att_pub` and `auth`.
pub fn qe_report(s: &Spec, att_pub: &[u8; 64], auth: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 384];
    r[48] = 0x11; // ATTRIBUTES: INIT | MODE64BIT, not DEBUG
    r[128..160].copy_from_slice(&s.qe_mrsigner);
    r[256..258].copy_from_slice(&s.qe_isvprodid.to_le_bytes());
    r[258..260].copy_from_slice(&s.qe_isvsvn.to_le_bytes());
    let digest = sha2::Sha256::digest([att_pub.as_slice(), auth].concat());
    r[320..352].copy_from_slice(&digest);
    r
}

/// Assembles a quote: the QE report signed by `pck_key`, the body by `att_key`; the PCK
/// chain `chain_pem` is certification data type 5 inside type 6.
pub fn assemble(
    s: &Spec,
    chain_pem: &str,
    att_key: &SigningKey,
    pck_key: &SigningKey,
    qe_report_override: Option<Vec<u8>>,
) -> Vec<u8> {
    let att_point = att_key.verifying_key().to_sec1_point(false);
    let att_pub: [u8; 64] = att_point.as_bytes()[1..].try_into().unwrap();
    let auth: Vec<u8> = (0u8..32).collect();
    let qe = qe_report_override.unwrap_or_else(|| qe_report(s, &att_pub, &auth));
    let qe_sig = sign(pck_key, &qe);

    let mut header = Vec::new();
    header.extend(s.version.to_le_bytes());
    header.extend(2u16.to_le_bytes());
    header.extend(0x81u32.to_le_bytes());
    header.extend([0u8; 4]);
    header.extend(INTEL_QE_VENDOR_ID);
    header.extend([0x55u8; 20]);
    let b = body(s);
    let mut signed = header;
    if s.version == 5 {
        signed.extend(3u16.to_le_bytes());
        signed.extend((b.len() as u32).to_le_bytes());
    }
    signed.extend(&b);
    let quote_sig = sign(att_key, &signed);

    let mut chain = chain_pem.as_bytes().to_vec();
    chain.push(0); // NUL terminator, as quote generators write it
    let mut cert6 = Vec::new();
    cert6.extend(&qe);
    cert6.extend(&qe_sig);
    cert6.extend((auth.len() as u16).to_le_bytes());
    cert6.extend(&auth);
    cert6.extend(5u16.to_le_bytes());
    cert6.extend((chain.len() as u32).to_le_bytes());
    cert6.extend(&chain);
    let mut sig_data = Vec::new();
    sig_data.extend(&quote_sig);
    sig_data.extend(att_pub);
    sig_data.extend(6u16.to_le_bytes());
    sig_data.extend((cert6.len() as u32).to_le_bytes());
    sig_data.extend(&cert6);
    let mut quote = signed;
    quote.extend((sig_data.len() as u32).to_le_bytes());
    quote.extend(sig_data);
    quote
}

/// The DCAP collateral files of `s` signed by `pki` (TCB Info and QE Identity by
/// `tcb_key`, whose certificate is `tcb_der`), as PCS serves them; the verifier's
/// `TdxCollateralParts` field for field.
pub struct CollateralFiles {
    /// The PCK CRL's issuer chain, PEM.
    pub pck_crl_issuer_chain: Vec<u8>,
    /// The root CA's CRL, DER.
    pub root_ca_crl: Vec<u8>,
    /// The PCK CRL, DER.
    pub pck_crl: Vec<u8>,
    /// The TCB Info's issuer chain, PEM.
    pub tcb_info_issuer_chain: Vec<u8>,
    /// The TCB Info's signature.
    pub tcb_info_signature: Vec<u8>,
    /// The TCB Info, JSON.
    pub tcb_info: Vec<u8>,
    /// The QE Identity's issuer chain, PEM.
    pub qe_identity_issuer_chain: Vec<u8>,
    /// The QE Identity's signature.
    pub qe_identity_signature: Vec<u8>,
    /// The QE Identity, JSON.
    pub qe_identity: Vec<u8>,
}

/// [`CollateralFiles`] of `s` under `pki`.
pub fn collateral_files(
    pki: &IntelPki,
    s: &Spec,
    tcb_der: &[u8],
    tcb_key: &SigningKey,
) -> CollateralFiles {
    let tcb_info = tcb_info_json(s);
    let qe_identity = qe_identity_json(s);
    let crl_ca = if s.crl_from_processor_ca {
        &pki.processor_ca
    } else {
        &pki.platform_ca
    };
    let tcb_chain = format!("{}{}", pem(tcb_der), pem(pki.root.der()));
    // Serial 2 is the platform CA.
    let root_revoked: &[u64] = if s.pck_ca_revoked { &[2] } else { &[9] };
    CollateralFiles {
        pck_crl_issuer_chain: format!("{}{}", pem(crl_ca.der()), pem(pki.root.der())).into_bytes(),
        root_ca_crl: crl(&pki.root, root_revoked),
        pck_crl: crl(
            crl_ca,
            if s.pck_revoked {
                &[7, PCK_SERIAL]
            } else {
                &[7]
            },
        ),
        tcb_info_issuer_chain: tcb_chain.clone().into_bytes(),
        tcb_info_signature: sign(tcb_key, tcb_info.as_bytes()),
        tcb_info: tcb_info.into_bytes(),
        qe_identity_issuer_chain: tcb_chain.into_bytes(),
        qe_identity_signature: sign(tcb_key, qe_identity.as_bytes()),
        qe_identity: qe_identity.into_bytes(),
    }
}

/// A PCK certificate for `s` (its SGX extension) issued by `issuer`, and its key.
pub fn pck_cert(s: &Spec, issuer: &CertifiedIssuer<'static, KeyPair>) -> (Vec<u8>, SigningKey) {
    let k = p256_key();
    let mut p = leaf_params("Intel SGX PCK Certificate", PCK_SERIAL);
    p.custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[1, 2, 840, 113741, 1, 13, 1],
            sgx_extension(s.cpusvn, s.pce_svn, s.pck_fmspc),
        ));
    let c = p.signed_by(&k, issuer).unwrap();
    (c.der().to_vec(), signer_of(&k))
}

impl Default for IntelPki {
    fn default() -> Self {
        Self::new()
    }
}
