#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests
#![cfg(feature = "native")]

use alloc::string::ToString;
use alloc::vec;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64ct::Encoding;

use super::*;
use crate::crypto::{AwsLc, RustCrypto};
use crate::evidence::azure_hcl::HclJwk;
use crate::evidence::tpm2::{
    ClockInfo, PcrSelection, QuoteInfo, TPM_ALG_SHA1, encode_tpms_attest, encode_tpmt_signature,
};

struct Tpm {
    key: RsaKeyPair,
    claims: HclRuntimeClaims,
}

fn tpm() -> Tpm {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = key.public_key().as_ref();
    let pk: pkcs1::RsaPublicKey<der::asn1::UintRef<'_>> = der::Decode::from_der(der).unwrap();
    let b64 = |b: &[u8]| base64ct::Base64UrlUnpadded::encode_string(b);
    let claims = HclRuntimeClaims {
        keys: vec![HclJwk {
            kid: "HCLAkPub".into(),
            kty: "RSA".into(),
            n: b64(pk.modulus.as_bytes()),
            e: b64(pk.public_exponent.as_bytes()),
        }],
        ..HclRuntimeClaims::default()
    };
    Tpm { key, claims }
}

fn pcr_values() -> Vec<Vec<u8>> {
    (0u8..24).map(|i| vec![i; 32]).collect()
}

fn attest(nonce: &[u8], pcrs: &[Vec<u8>]) -> Vec<u8> {
    encode_tpms_attest(&TpmsAttest {
        qualified_signer: vec![0, 0x0b, 1, 2, 3],
        extra_data: nonce.to_vec(),
        clock_info: ClockInfo::default(),
        firmware_version: 1,
        quote: QuoteInfo {
            pcr_select: vec![PcrSelection::sha256(&(0..24).collect::<Vec<_>>())],
            pcr_digest: RustCrypto.sha256(&pcrs.concat()).to_vec(),
        },
    })
    .unwrap()
}

impl Tpm {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .unwrap();
        sig
    }
}

fn both(f: impl Fn(&dyn Crypto)) {
    f(&AwsLc);
    f(&RustCrypto);
}

#[test]
fn vtpm_quote_works() {
    let t = tpm();
    let a = attest(b"nonce", &pcr_values());
    let sig = t.sign(&a);
    both(|c| {
        let q = verify_vtpm_quote(c, &t.claims, &a, &sig, &pcr_values(), b"nonce").unwrap();
        assert_eq!(q.pcrs.len(), 24);
        assert_eq!(q.pcr(7), Some(&[7; 32]));
        assert_eq!(q.nonce(), b"nonce");
        let tpmt = encode_tpmt_signature(&sig).unwrap();
        let q2 = verify_vtpm_quote_tpmt(c, &t.claims, &a, &tpmt, &pcr_values(), b"nonce").unwrap();
        assert_eq!(q.get(), q2.get());
    });
}

#[test]
fn vtpm_quote_every_failure_rejects() {
    let t = tpm();
    let a = attest(b"nonce", &pcr_values());
    let mut sig = t.sign(&a);
    sig[0] ^= 1;
    let mut pcrs = pcr_values();
    pcrs[3][0] ^= 1;
    both(|c| {
        let f = verify_vtpm_quote(c, &t.claims, &a, &sig, &pcrs, b"other").unwrap_err();
        assert_eq!(f.0.len(), 3, "{f:?}");
        assert!(matches!(f.0[0], VtpmQuoteError::Signature(_)));
        assert_eq!(
            f.0[1],
            VtpmQuoteError::NonceMismatch {
                expected: hex::encode(b"other"),
                found: hex::encode(b"nonce"),
            }
        );
        assert!(matches!(f.0[2], VtpmQuoteError::PcrDigest { .. }));
    });
}

#[test]
fn vtpm_quote_pcr_shape_rejects() {
    let t = tpm();
    let a = attest(b"n", &pcr_values());
    let sig = t.sign(&a);
    both(|c| {
        let short = &pcr_values()[..23];
        let f = verify_vtpm_quote(c, &t.claims, &a, &sig, short, b"n").unwrap_err();
        assert_eq!(
            f.0,
            [VtpmQuoteError::PcrCount {
                selected: 24,
                given: 23
            }]
        );
        let mut long = pcr_values();
        long[5].push(0);
        let f = verify_vtpm_quote(c, &t.claims, &a, &sig, &long, b"n").unwrap_err();
        assert_eq!(f.0, [VtpmQuoteError::PcrLength { index: 5, len: 33 }]);
    });
    // A SHA-1 bank is refused.
    let mut parsed = parse_tpms_attest(&a).unwrap();
    parsed.quote.pcr_select[0].hash = TPM_ALG_SHA1;
    let a = encode_tpms_attest(&parsed).unwrap();
    let sig = t.sign(&a);
    let f = verify_vtpm_quote(&RustCrypto, &t.claims, &a, &sig, &pcr_values(), b"n").unwrap_err();
    assert_eq!(
        f.0,
        [VtpmQuoteError::PcrBank {
            alg: TPM_ALG_SHA1,
            name: "SHA-1"
        }]
    );
}

#[test]
fn vtpm_quote_key_rejects() {
    let t = tpm();
    let other = tpm();
    let a = attest(b"n", &pcr_values());
    let sig = t.sign(&a);
    both(|c| {
        let f = verify_vtpm_quote(c, &other.claims, &a, &sig, &pcr_values(), b"n").unwrap_err();
        assert_eq!(f.0, [VtpmQuoteError::Signature(SignatureError::Invalid)]);
        let none = HclRuntimeClaims::default();
        let f = verify_vtpm_quote(c, &none, &a, &sig, &pcr_values(), b"n").unwrap_err();
        assert_eq!(f.0, [VtpmQuoteError::AkMissing]);
        let mut bad = t.claims.clone();
        bad.keys[0].kty = "EC".into();
        let f = verify_vtpm_quote(c, &bad, &a, &sig, &pcr_values(), b"n").unwrap_err();
        assert_eq!(
            f.0,
            [VtpmQuoteError::Ak(Tpm2ParseError::AkKeyType(
                "EC".to_string()
            ))]
        );
    });
}

#[test]
fn vtpm_quote_bad_structures_rejects() {
    let t = tpm();
    let a = attest(b"n", &pcr_values());
    let sig = t.sign(&a);
    let mut tpmt = encode_tpmt_signature(&sig).unwrap();
    tpmt[1] = 0x16; // RSAPSS
    let f =
        verify_vtpm_quote_tpmt(&RustCrypto, &t.claims, &a, &tpmt, &pcr_values(), b"n").unwrap_err();
    assert_eq!(
        f.0,
        [VtpmQuoteError::SignatureParse(
            Tpm2ParseError::UnsupportedSignatureScheme {
                alg: 0x0016,
                name: "RSAPSS"
            }
        )]
    );
    // A signed structure that is not a quote.
    let mut b = a.clone();
    b[5] = 0x17;
    let sig = t.sign(&b);
    let f = verify_vtpm_quote(&RustCrypto, &t.claims, &b, &sig, &pcr_values(), b"n").unwrap_err();
    assert_eq!(
        f.0,
        [VtpmQuoteError::AttestParse(Tpm2ParseError::NotAQuote(
            0x8017
        ))]
    );
}
