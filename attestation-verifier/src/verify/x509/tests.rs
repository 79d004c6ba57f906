#![allow(clippy::unwrap_used)] // tests

use super::*;

#[test]
fn ecdsa_der_to_fixed_pads_and_rejects() {
    // SEQUENCE { INTEGER 1, INTEGER 0x80 (needs a leading zero in DER) }
    let der_sig = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
    let fixed = ecdsa_der_to_fixed(EcdsaAlg::P256Sha256, &der_sig).unwrap();
    assert_eq!(fixed.len(), 64);
    assert_eq!(fixed.get(31), Some(&1));
    assert_eq!(fixed.get(63), Some(&0x80));
    assert!(ecdsa_der_to_fixed(EcdsaAlg::P256Sha256, &[0x30, 0x00]).is_err());
    let mut long = alloc::vec![0x30, 0x25, 0x02, 0x21, 0x01];
    long.extend([0xAA; 32]);
    long.extend([0x02, 0x00]);
    assert!(ecdsa_der_to_fixed(EcdsaAlg::P256Sha256, &long).is_err());
}

#[test]
fn pinned_amd_roots_parse_and_self_verify_works() {
    use crate::evidence::snp::Product;
    let crypto = crate::crypto::RustCrypto;
    for p in Product::ALL {
        let r = crate::roots::amd::roots(p);
        let ark = Cert::from_der("ARK", r.ark).unwrap();
        let ask = Cert::from_der("ASK", r.ask).unwrap();
        ark.verify_signed_by(&crypto, "ARK", &ark, "ARK").unwrap();
        ask.verify_signed_by(&crypto, "ASK", &ark, "ARK").unwrap();
        assert!(ask.issued_by_name(&ark));
        assert_eq!(ark.key_kind("ARK").unwrap(), KeyKind::Rsa);
        assert_eq!(
            ark.subject_cn().unwrap(),
            alloc::format!("ARK-{}", p.name())
        );
    }
}

#[test]
fn garbage_is_malformed_rejects() {
    assert!(matches!(
        Cert::from_der("VCEK", b"\x30\x03\x02\x01\x00"),
        Err(X509Error::Malformed { what: "VCEK", .. })
    ));
    assert!(matches!(
        Crl::from_der("CRL", b""),
        Err(X509Error::Malformed { .. })
    ));
}
