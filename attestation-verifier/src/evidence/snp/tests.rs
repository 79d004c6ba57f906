#![allow(clippy::indexing_slicing, clippy::unwrap_used)] // tests

use super::*;
use alloc::vec;

fn report(version: u32) -> alloc::vec::Vec<u8> {
    let mut r = vec![0u8; REPORT_LEN];
    r[0..4].copy_from_slice(&version.to_le_bytes());
    r[0x34] = 1; // ECDSA P-384
    r
}

#[test]
fn parse_minimal_report_works() {
    let mut r = report(3);
    r[0x188] = 0x19;
    r[0x189] = 0x11;
    r[0x48] = 0b110; // mask chip key + VLEK
    let p = parse_snp_report(&r).unwrap();
    assert_eq!(p.product_from_cpuid(), Some(Product::Genoa));
    assert_eq!(p.signing_key, SigningKey::Vlek);
    assert!(p.mask_chip_key);
}

#[test]
fn parse_rejects_bad_inputs_rejects() {
    assert!(matches!(
        parse_snp_report(&[]),
        Err(SnpParseError::Length { .. })
    ));
    assert_eq!(
        parse_snp_report(&report(1)),
        Err(SnpParseError::UnsupportedVersion(1))
    );
    assert_eq!(
        parse_snp_report(&report(6)),
        Err(SnpParseError::UnsupportedVersion(6))
    );
    let mut r = report(2);
    r[0x34] = 2;
    assert_eq!(
        parse_snp_report(&r),
        Err(SnpParseError::UnsupportedSignatureAlgorithm(2))
    );
    let mut r = report(2);
    r[0x48] = 7 << 2;
    assert_eq!(
        parse_snp_report(&r),
        Err(SnpParseError::UnknownSigningKey(7))
    );
}

#[test]
fn v2_report_has_no_cpuid_product_works() {
    let mut r = report(2);
    r[0x188] = 0x19;
    assert_eq!(parse_snp_report(&r).unwrap().product_from_cpuid(), None);
}

#[test]
fn tcb_layouts_decode_works() {
    let milan = TcbVersion::decode(0xd918_0000_0000_0004, Product::Milan);
    assert_eq!(
        (milan.bootloader, milan.tee, milan.snp, milan.microcode),
        (4, 0, 24, 217)
    );
    let turin = TcbVersion::decode(0x4700_0000_0200_0100, Product::Turin);
    assert_eq!(
        (
            turin.fmc,
            turin.bootloader,
            turin.tee,
            turin.snp,
            turin.microcode
        ),
        (0, 1, 0, 2, 71)
    );
}

#[test]
fn product_names_parse_works() {
    assert_eq!(Product::from_name("Milan-B0"), Some(Product::Milan));
    assert_eq!(Product::from_name("genoa"), Some(Product::Genoa));
    assert_eq!(Product::from_name("Siena"), None);
    assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
    assert_eq!(Product::from_cpuid(0x17, 0x31), None);
}
