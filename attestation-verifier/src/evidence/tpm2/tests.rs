#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;

fn sample() -> TpmsAttest {
    TpmsAttest {
        qualified_signer: [&[0x00, 0x0b][..], &[7; 32]].concat(),
        extra_data: b"challenge".to_vec(),
        clock_info: ClockInfo {
            clock: 2_167_057,
            reset_count: 3,
            restart_count: 0,
            safe: true,
        },
        firmware_version: 0x2020_0312_0012_0003,
        quote: QuoteInfo {
            pcr_select: alloc::vec![PcrSelection::sha256(&(0..24).collect::<Vec<_>>())],
            pcr_digest: alloc::vec![0xab; 32],
        },
    }
}

#[test]
fn tpms_attest_round_trip_works() {
    let a = sample();
    let bytes = encode_tpms_attest(&a).unwrap();
    assert_eq!(&bytes[..6], &[0xff, 0x54, 0x43, 0x47, 0x80, 0x18]);
    assert_eq!(parse_tpms_attest(&bytes).unwrap(), a);
    assert_eq!(a.quote.pcr_select[0].select, [0xff, 0xff, 0xff]);
    assert_eq!(
        a.quote.selected(),
        (0..24).map(|i| (TPM_ALG_SHA256, i)).collect::<Vec<_>>()
    );
}

#[test]
fn pcr_selection_indices_works() {
    let s = PcrSelection {
        hash: TPM_ALG_SHA256,
        select: alloc::vec![0b1000_0001, 0, 0b0000_0100],
    };
    assert_eq!(s.indices(), [0, 7, 18]);
    assert_eq!(PcrSelection::sha256(&[0, 7, 18]), s);
    assert_eq!(PcrSelection::sha256(&[25]).select, [0, 0, 0, 2]);
}

#[test]
fn tpms_attest_every_truncation_rejects() {
    let bytes = encode_tpms_attest(&sample()).unwrap();
    for len in 0..bytes.len() {
        let err = parse_tpms_attest(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, Tpm2ParseError::Truncated { .. }),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn tpms_attest_bad_fields_rejects() {
    let good = encode_tpms_attest(&sample()).unwrap();
    let mut b = good.clone();
    b[0] ^= 1;
    assert_eq!(
        parse_tpms_attest(&b).unwrap_err(),
        Tpm2ParseError::Magic(0xfe54_4347)
    );
    let mut b = good.clone();
    b[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
    assert_eq!(
        parse_tpms_attest(&b).unwrap_err(),
        Tpm2ParseError::NotAQuote(0x8017)
    );
    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        parse_tpms_attest(&b).unwrap_err(),
        Tpm2ParseError::TrailingBytes {
            structure: "TPMS_ATTEST",
            extra: 1
        }
    );
    // extraData longer than a TPM2B_DATA holds.
    let mut a = sample();
    a.extra_data = alloc::vec![1; 65];
    assert_eq!(
        parse_tpms_attest(&encode_tpms_attest(&a).unwrap()).unwrap_err(),
        Tpm2ParseError::SizeTooLarge {
            field: "extraData",
            size: 65,
            max: 64
        }
    );
    // safe = 2.
    let mut b = good.clone();
    let safe_at = 6 + 2 + 34 + 2 + 9 + 16;
    assert_eq!(b[safe_at], 1);
    b[safe_at] = 2;
    assert_eq!(parse_tpms_attest(&b).unwrap_err(), Tpm2ParseError::YesNo(2));
    // count = 17 selections.
    let mut b = good.clone();
    let count_at = safe_at + 1 + 8;
    b[count_at + 3] = 17;
    assert_eq!(
        parse_tpms_attest(&b).unwrap_err(),
        Tpm2ParseError::PcrSelectionCount { count: 17, max: 16 }
    );
    // sizeofSelect = 5.
    let mut b = good;
    b[count_at + 6] = 5;
    assert!(matches!(
        parse_tpms_attest(&b).unwrap_err(),
        Tpm2ParseError::SizeTooLarge {
            field: "pcrSelections.sizeofSelect",
            size: 5,
            ..
        }
    ));
    assert!(matches!(
        parse_tpms_attest(&alloc::vec![0; MAX_TPM_STRUCTURE_LEN + 1]).unwrap_err(),
        Tpm2ParseError::TooLong { .. }
    ));
}

#[test]
fn tpmt_signature_works() {
    let sig = encode_tpmt_signature(&[9; 256]).unwrap();
    assert_eq!(&sig[..6], &[0x00, 0x14, 0x00, 0x0b, 0x01, 0x00]);
    assert_eq!(parse_tpmt_signature(&sig).unwrap().rsa, [9; 256]);
}

#[test]
fn tpmt_signature_other_schemes_rejects() {
    let sig = encode_tpmt_signature(&[9; 256]).unwrap();
    for (alg, name) in [(0x0016, "RSAPSS"), (0x0018, "ECDSA"), (0x0010, "NULL")] {
        let mut b = sig.clone();
        b[..2].copy_from_slice(&u16::to_be_bytes(alg));
        assert_eq!(
            parse_tpmt_signature(&b).unwrap_err(),
            Tpm2ParseError::UnsupportedSignatureScheme { alg, name }
        );
    }
    let mut b = sig.clone();
    b[3] = 0x04;
    assert_eq!(
        parse_tpmt_signature(&b).unwrap_err(),
        Tpm2ParseError::UnsupportedSignatureHash {
            alg: TPM_ALG_SHA1,
            name: "SHA-1"
        }
    );
    for len in 0..sig.len() {
        assert!(matches!(
            parse_tpmt_signature(&sig[..len]).unwrap_err(),
            Tpm2ParseError::Truncated { .. }
        ));
    }
    let mut b = sig;
    b.push(0);
    assert!(matches!(
        parse_tpmt_signature(&b).unwrap_err(),
        Tpm2ParseError::TrailingBytes { extra: 1, .. }
    ));
}

fn jwk(kty: &str, n: &str, e: &str) -> HclJwk {
    HclJwk {
        kid: "HCLAkPub".into(),
        kty: kty.into(),
        n: n.into(),
        e: e.into(),
    }
}

#[test]
fn ak_jwk_works() {
    use base64ct::Encoding;
    let mut n = alloc::vec![0x80u8; 256];
    n[255] = 1;
    let b64 = base64ct::Base64UrlUnpadded::encode_string(&n);
    let ak = parse_ak_jwk(&jwk("RSA", &b64, "AQAB")).unwrap();
    assert_eq!(ak.n, n);
    assert_eq!(ak.e, [1, 0, 1]);
    let der = ak.pkcs1_der().unwrap();
    // SEQUENCE { INTEGER 00 80.. (257 bytes), INTEGER 010001 }
    assert_eq!(&der[..8], &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01]);
    assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 1, 0, 1]);
    // padded base64url is accepted too
    assert_eq!(parse_ak_jwk(&jwk("RSA", &b64, "AQAB==")).unwrap(), ak);
}

#[test]
fn ak_jwk_rejects() {
    assert_eq!(
        parse_ak_jwk(&jwk("EC", "AAAA", "AQAB")).unwrap_err(),
        Tpm2ParseError::AkKeyType("EC".into())
    );
    assert_eq!(
        parse_ak_jwk(&jwk("RSA", "not base64!", "AQAB")).unwrap_err(),
        Tpm2ParseError::AkBase64("n")
    );
    assert_eq!(
        parse_ak_jwk(&jwk("RSA", "tegZ0wAB", "AQAB")).unwrap_err(),
        Tpm2ParseError::AkSize {
            member: "n",
            len: 6
        }
    );
}
