//! A test AMD-like PKI and SEV-SNP reports signed by it, for tests that need SNP evidence that
//! verifies under a trust store of their own (the pinned AMD roots sign nothing a test makes).
//! Shared by the verifier's receipt and Azure vTPM tests and the agent's Azure vTPM backend
//! tests (which include this file by path).
// Test support may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use attestation_verifier::evidence::snp::{Product, REPORT_LEN, SIGNED_LEN};
use attestation_verifier::verify::snp::SnpTrustStore;
use p384::ecdsa::signature::Signer as _;
use p384::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

/// AMD's OID arc for the VCEK extensions.
const AMD: [u64; 8] = [1, 3, 6, 1, 4, 1, 3704, 1];

/// The chip id the test VCEK carries (its `hwID` extension) and reports must name.
pub const CHIP_ID: [u8; 64] = [0xAB; 64];

/// The reported TCB of the test VCEK: bootloader 3, TEE 0, SNP 8, microcode 115.
pub const REPORTED_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];

fn amd_oid(tail: &[u64]) -> Vec<u64> {
    AMD.iter().chain(tail).copied().collect()
}

fn ca(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2045, 1, 1);
    p
}

fn p384_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()
}

/// A Milan platform under a test ARK: its trust store, certificates (DER) and VCEK key.
pub struct TestPlatform {
    /// Trusts the test ARK (with its ASK and ASVK) for Milan.
    pub trust: SnpTrustStore,
    pub ark: Vec<u8>,
    pub ask: Vec<u8>,
    pub vcek: Vec<u8>,
    pub vcek_key: KeyPair,
}

/// A fresh test platform: ARK -> ASK (and ASVK) -> VCEK with AMD's product, TCB and hwID
/// extensions, valid 2021-2040.
pub fn test_platform() -> TestPlatform {
    let ark = CertifiedIssuer::self_signed(ca("ARK-Milan"), p384_key()).unwrap();
    let ask = CertifiedIssuer::signed_by(ca("SEV-Milan"), p384_key(), &ark).unwrap();
    let asvk = CertifiedIssuer::signed_by(ca("SEV-VLEK-Milan"), p384_key(), &ark).unwrap();
    let mut trust = SnpTrustStore::empty();
    trust
        .add(Product::Milan, ark.der(), ask.der(), asvk.der())
        .unwrap();
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "SEV-VCEK");
    p.not_before = date_time_ymd(2021, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    let name = b"Milan-B0";
    let mut ia5 = vec![0x16, name.len() as u8];
    ia5.extend(name);
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&amd_oid(&[2]), ia5));
    for (tail, val) in [(1u64, 3u8), (2, 0), (3, 8), (8, 115)] {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &amd_oid(&[3, tail]),
            vec![0x02, 0x01, val],
        ));
    }
    let mut hw = vec![0x04, 64];
    hw.extend(CHIP_ID);
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&amd_oid(&[4]), hw));
    let key = p384_key();
    let vcek = p.signed_by(&key, &ask).unwrap().der().to_vec();
    TestPlatform {
        trust,
        ark: ark.der().to_vec(),
        ask: ask.der().to_vec(),
        vcek,
        vcek_key: key,
    }
}

/// A Milan report of `version` (2 or 3; v3 also names the CPU family and model) with guest
/// `policy`, VMPL 0, the test VCEK's TCB and chip id, measurement `0x11..`, REPORT_DATA `rd`,
/// signed by `key`.
pub fn snp_report(key: &KeyPair, version: u32, policy: u64, rd: &[u8; 64]) -> Vec<u8> {
    let mut b = vec![0u8; REPORT_LEN];
    b[0..4].copy_from_slice(&version.to_le_bytes());
    b[0x08..0x10].copy_from_slice(&policy.to_le_bytes());
    b[0x34] = 1;
    b[0x50..0x90].copy_from_slice(rd);
    b[0x90..0xC0].copy_from_slice(&[0x11; 48]);
    b[0x180..0x188].copy_from_slice(&REPORTED_TCB);
    if version >= 3 {
        b[0x188] = 0x19;
        b[0x189] = 0x01;
    }
    b[0x1A0..0x1E0].copy_from_slice(&CHIP_ID);
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
        report[0x2A0 + i] = *v;
    }
    for (i, v) in s.iter().rev().enumerate() {
        report[0x2A0 + 72 + i] = *v;
    }
}
