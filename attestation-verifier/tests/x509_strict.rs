//! Certificates and CRLs are accepted only as their issuer signed them: a signature BIT STRING
//! with unused bits, or an outer `signatureAlgorithm` that differs from the one inside the
//! signed body (RFC 5280 4.1.1.2, 5.1.1.2), is malformed. Regression tests for findings of the
//! outside mutation campaign (issue 21: both were accepted before), on real certificates.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::verify::x509::{Cert, X509Error};
use der::{Decode, Encode, Reader};

/// The first certificate of a real NVIDIA device chain (ECDSA P-384 / SHA-384).
fn leaf() -> Vec<u8> {
    let pem = sigil_test_support::vector("nvgpu/hopper-nvtrust-sample/cert_chain.pem");
    pem::parse_many(&pem).unwrap().remove(0).into_contents()
}

/// Offsets in a certificate's DER: (start of the outer signatureAlgorithm, start of the
/// signature BIT STRING's contents, i.e. its unused-bits octet).
fn offsets(der: &[u8]) -> (usize, usize) {
    let outer = der::asn1::AnyRef::from_der(der).unwrap();
    let body = der.len() - outer.value().len();
    let mut r = der::SliceReader::new(outer.value()).unwrap();
    let tbs = der::asn1::AnyRef::decode(&mut r).unwrap();
    let alg = body + tbs.to_der().unwrap().len();
    let _alg = der::asn1::AnyRef::decode(&mut r).unwrap();
    let bits = der::asn1::AnyRef::decode(&mut r).unwrap();
    assert!(r.is_finished());
    (alg, der.len() - bits.value().len())
}

#[test]
fn real_leaf_parses_works() {
    Cert::from_der("leaf", &leaf()).unwrap();
}

#[test]
fn signature_unused_bits_rejects() {
    let mut der = leaf();
    let (_, unused) = offsets(&der);
    assert_eq!(der[unused], 0);
    for bits in [1u8, 7] {
        der[unused] = bits;
        assert_eq!(
            Cert::from_der("test certificate", &der).unwrap_err(),
            X509Error::SignatureUnusedBits {
                what: "test certificate",
                unused_bits: bits
            }
        );
    }
}

#[test]
fn outer_algorithm_differs_rejects() {
    let mut der = leaf();
    let (alg, _) = offsets(&der);
    // SEQUENCE { OID ecdsa-with-SHA384 (1.2.840.10045.4.3.3) }: make the outer one SHA-256.
    let oid_last = alg + 11;
    assert_eq!(
        &der[alg..=oid_last],
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03
        ]
    );
    der[oid_last] = 0x02;
    assert_eq!(
        Cert::from_der("test certificate", &der).unwrap_err(),
        X509Error::SignatureAlgorithmMismatch {
            what: "test certificate",
            outer: "1.2.840.10045.4.3.2".into(),
        }
    );
}
