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

/// The real VCEK of an SEV-SNP case with its signature's unused-bits octet set: the report
/// is refused at the VCEK (issue 21: the VCEK was accepted before).
#[test]
fn vcek_signature_unused_bits_rejects() {
    use attestation_verifier::evidence::snp::parse_snp_report;
    use attestation_verifier::time::UnixTime;
    use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier, SnpVerifyError};
    let c = sigil_test_support::Case::load("snp", "milan-v3-oak-oc-release");
    let report = parse_snp_report(&c.file("report.bin")).unwrap();
    let mut vek = c.file("vcek.der");
    let (_, unused) = offsets(&vek);
    vek[unused] = 3;
    let collateral = SnpCollateral {
        vek: &vek,
        intermediate: None,
        ark: None,
        crl: None,
    };
    let mut v = SnpVerifier::new(attestation_verifier::RustCrypto).unwrap();
    let e = v
        .verify(&report, &collateral, UnixTime(c.verification_time()))
        .unwrap_err()
        .0;
    assert_eq!(
        e,
        [SnpVerifyError::Certificate(
            X509Error::SignatureUnusedBits {
                what: "VCEK",
                unused_bits: 3
            }
        )]
    );
}

/// A real TDX quote whose PCK leaf or PCK CA (PEM inside the quote) has its signature's
/// unused-bits octet set: the quote is refused at that certificate (issue 21).
#[test]
fn pck_chain_signature_unused_bits_rejects() {
    use attestation_verifier::evidence::tdx::parse_tdx_quote;
    use attestation_verifier::time::UnixTime;
    use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier, TdxVerifyError};
    use base64ct::{Base64, Encoding};
    let c = sigil_test_support::Case::load("tdx", "tdx-v4-dcap-qvl-sample");
    let collateral = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
    for (block, what) in [(0usize, "PCK certificate"), (1, "PCK CA")] {
        let mut quote = c.file("quote.bin");
        // The block's base64 body, lines joined, located in the quote.
        let begin = b"-----BEGIN CERTIFICATE-----";
        let starts: Vec<usize> = quote
            .windows(begin.len())
            .enumerate()
            .filter(|(_, w)| *w == begin)
            .map(|(i, _)| i + begin.len())
            .collect();
        let start = starts[block];
        let end = start
            + quote[start..]
                .windows(5)
                .position(|w| w == b"-----")
                .unwrap();
        let body: Vec<usize> = (start..end)
            .filter(|&i| !quote[i].is_ascii_whitespace())
            .collect();
        let b64: Vec<u8> = body.iter().map(|&i| quote[i]).collect();
        let mut der = Base64::decode_vec(core::str::from_utf8(&b64).unwrap()).unwrap();
        let (_, unused) = offsets(&der);
        der[unused] = 1;
        let again = Base64::encode_string(&der);
        assert_eq!(again.len(), body.len());
        for (&i, b) in body.iter().zip(again.bytes()) {
            quote[i] = b;
        }
        let q = parse_tdx_quote(&quote).unwrap();
        let mut v = TdxVerifier::new(attestation_verifier::RustCrypto).unwrap();
        let e = v
            .verify(&q, &collateral, UnixTime(c.verification_time()))
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            [TdxVerifyError::Certificate(
                X509Error::SignatureUnusedBits {
                    what,
                    unused_bits: 1
                }
            )],
            "{what}"
        );
    }
}
