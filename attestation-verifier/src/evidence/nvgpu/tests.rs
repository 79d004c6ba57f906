#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use super::*;
use alloc::{vec, vec::Vec};

/// A minimal well-formed report: request, two blocks, two opaque fields, signature.
fn sample(padding: &[u8]) -> Vec<u8> {
    let mut v = vec![0x11, 0xE0, 0x01, 0xFF];
    v.extend_from_slice(&[0xAB; 32]);
    v.push(0);
    let mut record = Vec::new();
    for index in [1u8, 2] {
        record.extend_from_slice(&[index, 0x01, 51, 0, 0x01, 48, 0]);
        record.extend_from_slice(&[index; 48]);
    }
    v.extend_from_slice(&[0x11, 0x60, 0, 0, 2]);
    v.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
    v.extend_from_slice(&record);
    v.extend_from_slice(&[0xCD; 32]);
    let mut opaque = Vec::new();
    opaque.extend_from_slice(&3u16.to_le_bytes());
    opaque.extend_from_slice(&7u16.to_le_bytes());
    opaque.extend_from_slice(b"550.90\0");
    opaque.extend_from_slice(&6u16.to_le_bytes());
    opaque.extend_from_slice(&8u16.to_le_bytes());
    opaque.extend_from_slice(&[0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]);
    v.extend_from_slice(&(opaque.len() as u16).to_le_bytes());
    v.extend_from_slice(&opaque);
    v.extend_from_slice(&[0x5A; SIGNATURE_LEN]);
    v.extend_from_slice(padding);
    v
}

#[test]
fn parse_sample_works() {
    let data = sample(&[]);
    let r = parse_nvgpu_report(&data).unwrap();
    assert_eq!(r.request.nonce, [0xAB; 32]);
    assert_eq!(r.blocks.len(), 2);
    assert_eq!(r.measurement(2).unwrap().value, vec![2u8; 48]);
    assert_eq!(r.fields.driver_version.as_deref(), Some("550.90"));
    assert_eq!(r.fields.vbios_version.as_deref(), Some("96.00.9f.00.01"));
    assert_eq!(r.signature_offset, data.len() - SIGNATURE_LEN);
    assert_eq!(r.signed, data[..data.len() - SIGNATURE_LEN]);
    assert_eq!(r.evidence_len(), data.len());
    assert_eq!(r.padding, 0);
}

#[test]
fn zero_padding_after_signature_works() {
    let r = parse_nvgpu_report(&sample(&[0, 0])).unwrap();
    assert_eq!(r.padding, 2);
}

#[test]
fn garbage_after_signature_rejects() {
    assert_eq!(
        parse_nvgpu_report(&sample(&[0, 1])),
        Err(NvGpuParseError::TrailingBytes { count: 2 })
    );
}

#[test]
fn every_truncation_rejects() {
    let data = sample(&[]);
    for len in 0..data.len() {
        assert!(parse_nvgpu_report(&data[..len]).is_err(), "len {len}");
    }
}

#[test]
fn wrong_codes_reject() {
    let mut d = sample(&[]);
    d[0] = 0x12;
    assert!(matches!(
        parse_nvgpu_report(&d),
        Err(NvGpuParseError::UnsupportedVersion { .. })
    ));
    let mut d = sample(&[]);
    d[2] = 0;
    assert!(matches!(
        parse_nvgpu_report(&d),
        Err(NvGpuParseError::SignatureNotRequested { .. })
    ));
    let mut d = sample(&[]);
    d[REQUEST_LEN + 1] = 0x61;
    assert!(matches!(
        parse_nvgpu_report(&d),
        Err(NvGpuParseError::WrongCode { .. })
    ));
    let mut d = sample(&[]);
    d[REQUEST_LEN + 8 + 55] = 1; // second block's index = first's
    assert_eq!(
        parse_nvgpu_report(&d),
        Err(NvGpuParseError::DuplicateIndex(1))
    );
}

#[test]
fn pem_split_works() {
    let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
               -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
    assert_eq!(
        split_pem_chain(pem).unwrap(),
        vec![vec![0, 1, 2, 3], vec![4, 5]]
    );
    assert_eq!(split_pem_chain("none"), Err(PemError::Empty));
    assert!(split_pem_chain("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err());
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = parse_nvgpu_report(&data);
    }

    #[test]
    fn mutated_sample_never_panics(pos in 0usize..400, byte in proptest::num::u8::ANY) {
        let mut d = sample(&[]);
        let p = pos % d.len();
        d[p] = byte;
        let _ = parse_nvgpu_report(&d);
    }
}
