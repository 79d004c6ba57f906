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

/// Regression (issue "Proof under abuse", differential targets): a chain whose text holds
/// a relabelled or damaged block, or a blank line inside a block, read as other
/// certificates here than in `dcap-qvl` (whose `pem` reader refuses the first and reads
/// the second as RFC 1421 headers); found by `tests/dcap_qvl_differential.rs`.
#[test]
fn pem_stray_boundaries_and_blank_lines_rejects() {
    let one = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
    // A relabelled last block used to be skipped as text between blocks.
    let relabelled = alloc::format!("{one}{}", one.replace("BEGIN CERT", "BEGIN XERT"));
    assert_eq!(
        pem_certificates(relabelled.as_bytes()),
        Err(PemError::StrayBoundary(1))
    );
    // A damaged BEGIN line, a stray END line, an empty block of another label.
    for extra in [
        one.replace("BEGIN CERTIFICATE", "BEGIN CERTIFHCATE"),
        "-----END CERTIFICATE-----\n".into(),
        "-----BEGIN X-----\n-----END X-----\n".into(),
    ] {
        assert_eq!(
            pem_certificates(alloc::format!("{one}{extra}").as_bytes()),
            Err(PemError::StrayBoundary(1)),
            "{extra}"
        );
        assert_eq!(
            pem_certificates(alloc::format!("{extra}{one}").as_bytes()),
            Err(PemError::StrayBoundary(0)),
            "{extra}"
        );
    }
    // A dash right before a BEGIN line: `pem` does not find that block.
    assert_eq!(
        pem_certificates(alloc::format!("-{one}").as_bytes()),
        Err(PemError::StrayBoundary(0))
    );
    for blank in ["AAEC\n\nAw==", "AAEC\r\n\r\nAw==", "AAEC\nAw==\n\n"] {
        let text = alloc::format!("-----BEGIN CERTIFICATE-----\n{blank}-----END CERTIFICATE-----");
        assert_eq!(
            pem_certificates(text.as_bytes()),
            Err(PemError::BlankLine(0)),
            "{blank:?}"
        );
    }
    // Blank lines before the base64, text and blank lines between blocks stay accepted.
    let spaced = alloc::format!(
        "\n\n{one}\njunk between\n\n\r\n{}",
        one.replace("\nAAEC", "\n\r\n\nAAEC")
    );
    assert_eq!(pem_certificates(spaced.as_bytes()).unwrap().len(), 2);
}

/// Base64 whose last symbol carries bits past the data is refused, as the `base64` crate
/// (which `dcap-qvl`'s PEM reader uses) refuses it: otherwise two texts would be one
/// certificate here and only one of them a certificate there.
#[test]
fn pem_non_canonical_base64_rejects() {
    let good = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----";
    assert_eq!(
        pem_certificates(good.as_bytes()).unwrap(),
        vec![vec![0, 1, 2, 3]]
    );
    for bad in ["AAECAx==", "AAECAw=", "AAECAw"] {
        let text = good.replace("AAECAw==", bad);
        assert_eq!(
            pem_certificates(text.as_bytes()),
            Err(PemError::Base64(0)),
            "{bad}"
        );
    }
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
