#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use proptest::prelude::*;

use super::*;

const CLAIMS: &str = r#"{"keys":[{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"AQAB","n":"tegZ"},{"kid":"HCLEkPub","key_ops":["encrypt"],"kty":"RSA","e":"AQAB","n":"p9jN"}],"vm-configuration":{"console-enabled":true,"secure-boot":true,"tpm-enabled":true,"vmUniqueId":"3404EF27-32A2-4A07-A4C7-1A1171624C5D"},"user-data":"0A0B"}"#;

/// An HCL report around `snp` (any 0x4A0 bytes) and `claims`, with `pad` zero
/// bytes after it.
fn hcl(snp: &[u8], claims: &[u8], hash: u32, pad: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"HCLA");
    b.extend_from_slice(&2u32.to_le_bytes());
    let data_size = (RUNTIME_HEADER_LEN + claims.len()) as u32;
    b.extend_from_slice(&(RUNTIME_DATA_OFFSET as u32 + data_size).to_le_bytes());
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(snp);
    b.extend_from_slice(&data_size.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&REPORT_TYPE_SNP.to_le_bytes());
    b.extend_from_slice(&hash.to_le_bytes());
    b.extend_from_slice(&(claims.len() as u32).to_le_bytes());
    b.extend_from_slice(claims);
    b.extend(std::iter::repeat_n(0, pad));
    b
}

fn put(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn parse_works() {
    let snp = [0x5Au8; REPORT_LEN];
    let bytes = hcl(&snp, CLAIMS.as_bytes(), 1, 1000);
    let r = parse_hcl_report(&bytes).unwrap();
    assert_eq!(r.snp_report, snp.to_vec());
    assert_eq!(r.var_data, CLAIMS.as_bytes());
    assert_eq!(r.hash_type, HclHashType::Sha256);
    assert_eq!(r.used_len, bytes.len() - 1000);
    assert_eq!(r.claims.user_data, Some(vec![0x0A, 0x0B]));
    assert_eq!(r.claims.ak_pub().unwrap().n, "tegZ");
    let vm = r.claims.vm_configuration.unwrap();
    assert_eq!(vm.secure_boot, Some(true));
    assert_eq!(vm.tpm_persisted, None);
    assert_eq!(
        vm.vm_unique_id.as_deref(),
        Some("3404EF27-32A2-4A07-A4C7-1A1171624C5D")
    );
    for (v, h) in [
        (2, HclHashType::Sha384),
        (3, HclHashType::Sha512),
        (1, HclHashType::Sha256),
    ] {
        let r = parse_hcl_report(&hcl(&snp, CLAIMS.as_bytes(), v, 0)).unwrap();
        assert_eq!(r.hash_type, h);
        assert_eq!(h.value(), v);
    }
}

#[test]
fn runtime_version_2_extension_works() {
    let snp = [1u8; REPORT_LEN];
    let mut bytes = hcl(&snp, b"", 1, 0);
    // data_size = header + 8-byte extension + claims
    let claims = br#"{"user-data":""}"#;
    bytes.extend_from_slice(&[0xEE; 8]);
    bytes.extend_from_slice(claims);
    let rt = RUNTIME_DATA_OFFSET;
    put(
        &mut bytes,
        rt,
        (RUNTIME_HEADER_LEN + 8 + claims.len()) as u32,
    );
    put(&mut bytes, rt + 4, 2);
    put(&mut bytes, rt + 16, claims.len() as u32);
    let r = parse_hcl_report(&bytes).unwrap();
    assert_eq!(r.var_data, claims);
    assert_eq!(r.claims.user_data, None);
    // Version 1 has no room for an extension.
    put(&mut bytes, rt + 4, 1);
    assert!(matches!(
        parse_hcl_report(&bytes),
        Err(HclParseError::RuntimeDataSize { .. })
    ));
}

#[test]
fn parse_rejects() {
    let snp = [0u8; REPORT_LEN];
    let good = hcl(&snp, CLAIMS.as_bytes(), 1, 16);
    let rt = RUNTIME_DATA_OFFSET;
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, HclParseError)> = vec![
        (
            Box::new(|b| b[0] = b'X'),
            HclParseError::Signature(*b"XCLA"),
        ),
        (
            Box::new(|b| put(b, 4, 3)),
            HclParseError::UnsupportedVersion(3),
        ),
        (
            Box::new(move |b| put(b, rt + 8, 4)),
            HclParseError::UnsupportedReportType {
                value: 4,
                name: "TDX",
            },
        ),
        (
            Box::new(move |b| put(b, rt + 12, 0)),
            HclParseError::UnsupportedHashType(0),
        ),
        (
            Box::new(move |b| put(b, rt + 12, 4)),
            HclParseError::UnsupportedHashType(4),
        ),
        (
            Box::new(move |b| put(b, rt + 4, 7)),
            HclParseError::UnsupportedRuntimeDataVersion(7),
        ),
        (
            Box::new(move |b| put(b, rt + 16, u32::MAX)),
            HclParseError::RuntimeDataSize {
                data_size: (RUNTIME_HEADER_LEN + CLAIMS.len()) as u32,
                var_size: u32::MAX,
            },
        ),
        (
            Box::new(|b| *b.last_mut().unwrap() = 1),
            HclParseError::TrailingData(good.len() - 1),
        ),
        (
            Box::new(move |b| b[rt + RUNTIME_HEADER_LEN] = b'['),
            HclParseError::Claims(String::new()),
        ),
        (
            Box::new(|b| {
                let at = b.windows(4).position(|w| w == b"0A0B").unwrap();
                b[at] = b'Z';
            }),
            HclParseError::UserDataHex,
        ),
    ];
    for (i, (mutate, expected)) in cases.into_iter().enumerate() {
        let mut b = good.clone();
        mutate(&mut b);
        let got = parse_hcl_report(&b).unwrap_err();
        match (&got, &expected) {
            (HclParseError::Claims(_), HclParseError::Claims(_)) => {}
            _ => assert_eq!(got, expected, "case {i}"),
        }
    }
    // Data size pointing past the end.
    let mut b = good.clone();
    put(&mut b, rt, 10_000);
    put(&mut b, rt + 4, 2);
    assert!(matches!(
        parse_hcl_report(&b),
        Err(HclParseError::Truncated {
            field: "runtime data",
            ..
        })
    ));
    assert!(matches!(
        parse_hcl_report(&good[..100]),
        Err(HclParseError::Truncated { .. })
    ));
    assert!(matches!(
        parse_hcl_report(&vec![0; MAX_HCL_REPORT_LEN + 1]),
        Err(HclParseError::TooLong { .. })
    ));
}

proptest! {
    /// Any bytes: a report or a typed error, never a panic.
    #[test]
    fn parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = parse_hcl_report(&bytes);
    }

    /// Any single-byte change of a valid report: a report or a typed error, and
    /// a report that still parses keeps the structure consistent.
    #[test]
    fn mutations_are_total(at in 0usize..1700, v in any::<u8>(), cut in 0usize..1800) {
        let mut b = hcl(&[7u8; REPORT_LEN], CLAIMS.as_bytes(), 1, 64);
        let at = at % b.len();
        b[at] = v;
        if let Ok(r) = parse_hcl_report(&b) {
            prop_assert_eq!(r.snp_report.len(), REPORT_LEN);
            prop_assert!(r.used_len <= b.len());
        }
        b.truncate(cut.min(b.len()));
        let _ = parse_hcl_report(&b);
    }

    /// Round trip: what goes in comes out.
    #[test]
    fn round_trip_works(
        snp in proptest::collection::vec(any::<u8>(), REPORT_LEN..=REPORT_LEN),
        user in proptest::collection::vec(any::<u8>(), 64..=64),
        hash in 1u32..=3,
        pad in 0usize..600,
    ) {
        let claims = format!(r#"{{"keys":[],"user-data":"{}"}}"#, hex::encode_upper(&user));
        let bytes = hcl(&snp, claims.as_bytes(), hash, pad);
        let encoded =
            encode_hcl_report(&snp, HclHashType::from_value(hash).unwrap(), claims.as_bytes())
                .unwrap();
        prop_assert_eq!(&encoded[..], &bytes[..bytes.len() - pad]);
        let r = parse_hcl_report(&bytes).unwrap();
        prop_assert_eq!(r.used_len, encoded.len());
        prop_assert_eq!(r.snp_report, snp);
        prop_assert_eq!(r.var_data, claims.into_bytes());
        prop_assert_eq!(r.claims.user_data, Some(user));
        prop_assert_eq!(r.hash_type.value(), hash);
    }
}
