//! A synthetic AMD-like PKI (ARK -> ASK/ASVK -> VCEK/VLEK with AMD's extensions) and SEV-SNP
//! reports signed by it, for tests that need SNP evidence verifying under a trust store of their
//! own (the pinned AMD roots sign nothing a test makes). A test builds its `SnpTrustStore` from
//! the DER certificates (`ark`, `ask`, `asvk`).

use p384::ecdsa::signature::Signer as _;
use p384::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, date_time_ymd,
};

/// The length of an SEV-SNP attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// The length of the signed part of a report (everything before the signature).
pub const SIGNED_LEN: usize = 0x2A0;

/// The chip id the test VCEK carries (its `hwID` extension) and reports name.
pub const CHIP_ID: [u8; 64] = [0xAB; 64];

/// The reported TCB of the test VCEK: bootloader 3, TEE 0, SNP 8, microcode 115.
pub const REPORTED_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];

/// AMD's OID arc for the VCEK extensions.
const AMD: [u64; 8] = [1, 3, 6, 1, 4, 1, 3704, 1];

fn amd_oid(tail: &[u64]) -> Vec<u64> {
    AMD.iter().chain(tail).copied().collect()
}

fn der_int(v: u8) -> Vec<u8> {
    if v >= 0x80 {
        vec![0x02, 0x02, 0x00, v]
    } else {
        vec![0x02, 0x01, v]
    }
}

/// A CA certificate's parameters: `cn`, CA, valid 2020-2045.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2045, 1, 1);
    p
}

/// A fresh P-384 key pair.
pub fn p384_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()
}

/// A test ARK with its ASK (VCEK issuer) and ASVK (VLEK issuer) for one product.
pub struct AmdPki {
    /// `ARK-<product>`, self-signed.
    pub ark: CertifiedIssuer<'static, KeyPair>,
    /// `SEV-<product>`, signed by the ARK.
    pub ask: CertifiedIssuer<'static, KeyPair>,
    /// `SEV-VLEK-<product>`, signed by the ARK.
    pub asvk: CertifiedIssuer<'static, KeyPair>,
}

impl AmdPki {
    /// A fresh PKI for `product` (e.g. `Milan`).
    pub fn new(product: &str) -> Self {
        let ark =
            CertifiedIssuer::self_signed(ca_params(&format!("ARK-{product}")), p384_key()).unwrap();
        let ask =
            CertifiedIssuer::signed_by(ca_params(&format!("SEV-{product}")), p384_key(), &ark)
                .unwrap();
        let asvk =
            CertifiedIssuer::signed_by(ca_params(&format!("SEV-VLEK-{product}")), p384_key(), &ark)
                .unwrap();
        Self { ark, ask, asvk }
    }
}

/// What goes into a test VCEK/VLEK.
#[derive(Clone)]
pub struct Vek {
    /// `SEV-VCEK` or `SEV-VLEK`.
    pub cn: &'static str,
    /// The product name extension (e.g. `Milan-B0`).
    pub product: Option<&'static str>,
    /// Bootloader, TEE, SNP and microcode SPLs.
    pub tcb: [u8; 4],
    /// The FMC SPL (Turin and later).
    pub fmc: Option<u8>,
    /// The `hwID` extension.
    pub hw_id: Option<Vec<u8>>,
    /// The end of validity (year, month, day).
    pub not_after: (i32, u8, u8),
    /// The serial number.
    pub serial: u64,
    /// A P-256 key instead of P-384.
    pub p256: bool,
}

impl Default for Vek {
    /// The test VCEK: Milan-B0, [`REPORTED_TCB`], [`CHIP_ID`], valid 2021-2040.
    fn default() -> Self {
        Self {
            cn: "SEV-VCEK",
            product: Some("Milan-B0"),
            tcb: [3, 0, 8, 115],
            fmc: None,
            hw_id: Some(CHIP_ID.to_vec()),
            not_after: (2040, 1, 1),
            serial: 42,
            p256: false,
        }
    }
}

/// A VCEK/VLEK described by `v` signed by `issuer`: its DER and its key.
pub fn make_vek(v: &Vek, issuer: &CertifiedIssuer<'static, KeyPair>) -> (Vec<u8>, KeyPair) {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, v.cn);
    p.not_before = date_time_ymd(2021, 1, 1);
    p.not_after = date_time_ymd(v.not_after.0, v.not_after.1, v.not_after.2);
    p.serial_number = Some(SerialNumber::from(v.serial));
    p.key_identifier_method = KeyIdMethod::Sha256;
    if let Some(name) = v.product {
        let mut ia5 = vec![0x16, name.len() as u8];
        ia5.extend(name.as_bytes());
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&amd_oid(&[2]), ia5));
    }
    let [bl, tee, snp, ucode] = v.tcb;
    for (tail, val) in [(1u64, bl), (2, tee), (3, snp), (8, ucode)] {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &amd_oid(&[3, tail]),
            der_int(val),
        ));
    }
    if let Some(f) = v.fmc {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &amd_oid(&[3, 9]),
            der_int(f),
        ));
    }
    if let Some(id) = &v.hw_id {
        let mut os = vec![0x04, id.len() as u8];
        os.extend(id);
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&amd_oid(&[4]), os));
    }
    let key = if v.p256 {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    } else {
        p384_key()
    };
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.der().to_vec(), key)
}

/// Report fields a test can vary.
#[derive(Clone)]
pub struct Report {
    /// The report version (2, 3, 5).
    pub version: u32,
    /// CPUID family and model (v3 and later; zero in v2).
    pub cpuid: (u8, u8),
    /// Signed by a VLEK (`SIGNING_KEY` = 1).
    pub vlek: bool,
    /// `MASK_CHIP_KEY`.
    pub mask_chip: bool,
    /// REPORTED_TCB.
    pub reported_tcb: u64,
    /// CHIP_ID.
    pub chip_id: [u8; 64],
    /// The guest policy.
    pub policy: u64,
    /// REPORT_DATA.
    pub report_data: [u8; 64],
}

impl Default for Report {
    /// A Milan v3 report matching the default [`Vek`], policy `0x30000`, REPORT_DATA `0x5A..`.
    fn default() -> Self {
        Self {
            version: 3,
            cpuid: (0x19, 0x01),
            vlek: false,
            mask_chip: false,
            reported_tcb: u64::from_le_bytes(REPORTED_TCB),
            chip_id: CHIP_ID,
            policy: 0x30000,
            report_data: [0x5A; 64],
        }
    }
}

/// A report described by `r` (VMPL 0, measurement `0x11..`), signed by `key`.
pub fn make_report(r: &Report, key: &KeyPair) -> Vec<u8> {
    let mut b = vec![0u8; REPORT_LEN];
    b[0..4].copy_from_slice(&r.version.to_le_bytes());
    b[0x08..0x10].copy_from_slice(&r.policy.to_le_bytes());
    b[0x34] = 1;
    let flags: u32 = (u32::from(r.vlek) << 2) | (u32::from(r.mask_chip) << 1);
    b[0x48..0x4C].copy_from_slice(&flags.to_le_bytes());
    b[0x50..0x90].copy_from_slice(&r.report_data);
    b[0x90..0xC0].copy_from_slice(&[0x11; 48]);
    b[0x180..0x188].copy_from_slice(&r.reported_tcb.to_le_bytes());
    b[0x188] = r.cpuid.0;
    b[0x189] = r.cpuid.1;
    b[0x1A0..0x1E0].copy_from_slice(&r.chip_id);
    sign_report(key, &mut b);
    b
}

/// (Re)signs `report` in place with `key` (ECDSA P-384 over the signed bytes, r and s
/// little-endian as the firmware writes them).
pub fn sign_report(key: &KeyPair, report: &mut [u8]) {
    let sk = p384::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
    let sig: p384::ecdsa::Signature = sk.sign(&report[..SIGNED_LEN]);
    let bytes = sig.to_bytes();
    let (r, s) = bytes.split_at(48);
    for (i, v) in r.iter().rev().enumerate() {
        report[SIGNED_LEN + i] = *v;
    }
    for (i, v) in s.iter().rev().enumerate() {
        report[SIGNED_LEN + 72 + i] = *v;
    }
}

/// A Milan platform under a test ARK: its certificates (DER) and VCEK key.
pub struct TestPlatform {
    /// The ARK (self-signed).
    pub ark: Vec<u8>,
    /// The ASK (VCEK issuer).
    pub ask: Vec<u8>,
    /// The ASVK (VLEK issuer).
    pub asvk: Vec<u8>,
    /// The VCEK: the default [`Vek`].
    pub vcek: Vec<u8>,
    /// The VCEK's key.
    pub vcek_key: KeyPair,
}

/// A fresh Milan platform: ARK -> ASK (and ASVK) -> VCEK with AMD's product, TCB
/// ([`REPORTED_TCB`]) and hwID ([`CHIP_ID`]) extensions, valid 2021-2040.
pub fn test_platform() -> TestPlatform {
    let pki = AmdPki::new("Milan");
    let (vcek, vcek_key) = make_vek(&Vek::default(), &pki.ask);
    TestPlatform {
        ark: pki.ark.der().to_vec(),
        ask: pki.ask.der().to_vec(),
        asvk: pki.asvk.der().to_vec(),
        vcek,
        vcek_key,
    }
}

/// A Milan report of `version` (2 or 3; v3 also names the CPU family and model) with guest
/// `policy`, VMPL 0, the test VCEK's TCB and chip id, measurement `0x11..`, REPORT_DATA `rd`,
/// signed by `key`.
pub fn snp_report(key: &KeyPair, version: u32, policy: u64, rd: &[u8; 64]) -> Vec<u8> {
    let cpuid = if version >= 3 {
        Report::default().cpuid
    } else {
        (0, 0)
    };
    let r = Report {
        version,
        cpuid,
        policy,
        report_data: *rd,
        ..Report::default()
    };
    make_report(&r, key)
}
