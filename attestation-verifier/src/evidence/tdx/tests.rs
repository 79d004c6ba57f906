#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;
use alloc::vec;

#[test]
fn td_attribute_bits_work() {
    let a = TdAttributes(1 | (1 << 28));
    assert!(a.debug() && a.sept_ve_disable());
    assert!(!a.migratable() && !a.servtd_ext() && !a.profiling());
    assert_eq!(a.reserved(), 0);
    assert!(TdAttributes(1 << 29).migratable());
    assert!(TdAttributes(1 << 17).servtd_ext());
    assert!(TdAttributes(1 << 5).profiling());
    // Reserved: 1..=3, 7..=15, 23..=26, 32..=61; defined bits are not reserved.
    for bit in 0..64u32 {
        let reserved = matches!(bit, 1..=3 | 7..=15 | 23..=26 | 32..=61);
        assert_eq!(
            TdAttributes(1u64 << bit).reserved() != 0,
            reserved,
            "bit {bit}"
        );
    }
}

#[test]
fn pem_sequences_decode_works() {
    let one = "-----BEGIN CERTIFICATE-----\nAAEC\r\nAw==\n-----END CERTIFICATE-----\n";
    let two = alloc::format!("{one}junk between\n{one}\0");
    assert_eq!(
        pem_certificates(one.as_bytes()).unwrap(),
        vec![vec![0, 1, 2, 3]]
    );
    assert_eq!(pem_certificates(two.as_bytes()).unwrap().len(), 2);
    assert_eq!(pem_certificates(b"nothing"), Err(PemError::Empty));
    assert_eq!(
        pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAEC"),
        Err(PemError::Unterminated(0))
    );
    assert_eq!(
        pem_certificates(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
        Err(PemError::Base64(0))
    );
    assert_eq!(pem_certificates(&[0xff, 0xfe]), Err(PemError::NotText));
}

#[test]
fn short_inputs_are_typed_errors_rejects() {
    assert!(matches!(
        parse_tdx_quote(&[]),
        Err(TdxParseError::Truncated {
            what: "version",
            ..
        })
    ));
    let mut h = vec![0u8; 48];
    h[0] = 4;
    h[2] = 2;
    h[4] = 0x81;
    assert!(matches!(
        parse_tdx_quote(&h),
        Err(TdxParseError::Truncated {
            what: "TD report",
            ..
        })
    ));
    // v5 with a body size that does not fit its type.
    let mut v5 = h.clone();
    v5[0] = 5;
    v5.extend(3u16.to_le_bytes());
    v5.extend(584u32.to_le_bytes());
    assert!(matches!(
        parse_tdx_quote(&v5),
        Err(TdxParseError::BodySize {
            body_type: 3,
            expected: 648,
            declared: 584
        })
    ));
    let mut v5 = h.clone();
    v5[0] = 5;
    v5.extend(9u16.to_le_bytes());
    v5.extend(0u32.to_le_bytes());
    assert_eq!(
        parse_tdx_quote(&v5),
        Err(TdxParseError::UnsupportedBodyType(9))
    );
    let mut sgx5 = h;
    sgx5[0] = 5;
    sgx5.extend(1u16.to_le_bytes());
    sgx5.extend(384u32.to_le_bytes());
    assert!(matches!(
        parse_tdx_quote(&sgx5),
        Err(TdxParseError::NotTdx { tee: "SGX", .. })
    ));
}

#[test]
fn body_types_work() {
    for (t, n, len) in [
        (TdBodyType::Td10, 2, 584),
        (TdBodyType::Td15, 3, 648),
        (TdBodyType::Td15Ex, 4, 885),
    ] {
        assert_eq!((t.number(), t.len()), (n, len));
        let body = parse_body(&vec![0xaa; len], t);
        assert_eq!(body.td15.is_some(), t != TdBodyType::Td10);
        assert_eq!(
            body.td15_ex.as_ref().map(|e| e.raw.len()),
            (t == TdBodyType::Td15Ex).then_some(237)
        );
    }
}
