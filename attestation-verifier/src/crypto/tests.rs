#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;
use alloc::vec::Vec;

fn backends() -> Vec<&'static dyn Crypto> {
    #[allow(unused_mut)] // the native backend is feature-gated
    let mut v: Vec<&'static dyn Crypto> = alloc::vec![&RustCrypto];
    #[cfg(feature = "native")]
    v.push(&AwsLc);
    v
}

#[test]
fn hashes_match_known_answers_works() {
    for c in backends() {
        assert_eq!(
            hex::encode(c.sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(c.sha384(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        assert!(hex::encode(c.sha512(b"abc")).starts_with("ddaf35a193617aba"));
    }
}

#[test]
fn ecdsa_p384_roundtrip_and_tamper_rejects() {
    use p384::ecdsa::signature::Signer;
    let sk = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
    let pk = sk.verifying_key().to_sec1_point(false);
    let msg = b"sigil";
    let sig: p384::ecdsa::Signature = sk.sign(msg);
    let rs = sig.to_bytes();
    for c in backends() {
        assert_eq!(
            c.verify_ecdsa(EcdsaAlg::P384Sha384, pk.as_bytes(), msg, &rs),
            Ok(())
        );
        assert!(
            c.verify_ecdsa(EcdsaAlg::P384Sha384, pk.as_bytes(), b"sigiL", &rs)
                .is_err()
        );
        assert!(
            c.verify_ecdsa(EcdsaAlg::P384Sha384, pk.as_bytes(), msg, &rs[..95])
                .is_err()
        );
        assert!(
            c.verify_ecdsa(EcdsaAlg::P384Sha384, &[4u8; 97], msg, &rs)
                .is_err()
        );
        // A P-384 key is not a P-256 key.
        assert!(
            c.verify_ecdsa(EcdsaAlg::P256Sha256, pk.as_bytes(), msg, &rs[..64])
                .is_err()
        );
    }
}

#[test]
fn ecdsa_p256_roundtrip_works() {
    use p256::ecdsa::signature::Signer;
    let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let pk = sk.verifying_key().to_sec1_point(true);
    let sig: p256::ecdsa::Signature = sk.sign(b"quote");
    for c in backends() {
        assert_eq!(
            c.verify_ecdsa(
                EcdsaAlg::P256Sha256,
                pk.as_bytes(),
                b"quote",
                &sig.to_bytes()
            ),
            Ok(())
        );
        assert_eq!(
            c.verify_ecdsa(
                EcdsaAlg::P256Sha256,
                pk.as_bytes(),
                b"quotE",
                &sig.to_bytes()
            ),
            Err(SignatureError::Invalid)
        );
    }
}

#[test]
fn rsa_rejects_garbage_key_and_signature_rejects() {
    for c in backends() {
        assert!(
            c.verify_rsa_pss(RsaHash::Sha384, b"\x30\x00", b"m", &[0u8; 512])
                .is_err()
        );
        assert!(c.verify_rsa_pkcs1(RsaHash::Sha256, b"", b"m", b"").is_err());
    }
}

/// Regression (issue 21, found by the `crypto_differential` fuzz target): a signature whose
/// `r` or `s` is 0 or not below the group order was "malformed signature" for the pure-Rust
/// backend and "signature does not verify" for aws-lc, so the same report got different
/// rejection reasons from the two backends.
#[test]
fn ecdsa_scalar_out_of_range_same_error_rejects() {
    let sk = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
    let pk = sk.verifying_key().to_sec1_point(false);
    let p256_sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let p256_pk = p256_sk.verifying_key().to_sec1_point(false);
    for (alg, key, n) in [
        (EcdsaAlg::P384Sha384, pk.as_bytes(), 48),
        (EcdsaAlg::P256Sha256, p256_pk.as_bytes(), 32),
    ] {
        let mut zero_r = alloc::vec![0u8; 2 * n];
        zero_r[2 * n - 1] = 1;
        let all_ff = alloc::vec![0xffu8; 2 * n];
        for sig in [alloc::vec![0u8; 2 * n], zero_r, all_ff] {
            for c in backends() {
                assert_eq!(
                    c.verify_ecdsa(alg, key, b"sigil", &sig),
                    Err(SignatureError::MalformedSignature),
                    "{} {alg:?}",
                    c.name()
                );
            }
        }
    }
}

/// Regression (issue 21): a malformed public key was "malformed public key" for the pure-Rust
/// backend and "signature does not verify" for aws-lc (ECDSA and RSA), so the same evidence
/// got different rejection reasons from the two backends. Differential: every backend gives
/// `MalformedKey` for each key below, with a signature that is well formed (valid under the
/// real key), through every entry point.
#[test]
fn malformed_public_key_same_reason_across_backends_rejects() {
    use p256::ecdsa::signature::Signer;
    let msg = b"sigil";
    let p384_sk = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
    let p384_sig: p384::ecdsa::Signature = p384_sk.sign(msg);
    let p384_pk = p384_sk.verifying_key().to_sec1_point(false);
    let p256_sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let p256_sig: p256::ecdsa::Signature = p256_sk.sign(msg);
    let p256_pk = p256_sk.verifying_key().to_sec1_point(false);
    let cases = [
        (
            EcdsaAlg::P384Sha384,
            p384_pk.as_bytes().to_vec(),
            p384_sig.to_bytes().to_vec(),
            p384_sig.to_der().as_bytes().to_vec(),
        ),
        (
            EcdsaAlg::P256Sha256,
            p256_pk.as_bytes().to_vec(),
            p256_sig.to_bytes().to_vec(),
            p256_sig.to_der().as_bytes().to_vec(),
        ),
    ];
    for (alg, good, fixed, der) in &cases {
        let n = (good.len() - 1) / 2;
        // Sanity: the real key verifies on every backend.
        for c in backends() {
            assert_eq!(
                c.verify_ecdsa(*alg, good, msg, fixed),
                Ok(()),
                "{}",
                c.name()
            );
        }
        let mut off_curve = good.clone();
        off_curve[good.len() - 1] ^= 1;
        let mut bad_prefix = good.clone();
        bad_prefix[0] = 0x05;
        let mut x_too_big = alloc::vec![0x04u8];
        x_too_big.extend(alloc::vec![0xffu8; 2 * n]);
        let mut compressed_bad = alloc::vec![0x02u8];
        compressed_bad.extend(alloc::vec![0xffu8; n]);
        let keys: [(&str, Vec<u8>); 7] = [
            ("empty", Vec::new()),
            ("identity", alloc::vec![0x00]),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("off the curve", off_curve),
            ("bad SEC1 prefix", bad_prefix),
            ("coordinates above the field prime", x_too_big),
            ("compressed, no point", compressed_bad),
        ];
        for (what, key) in &keys {
            let got: Vec<_> = backends()
                .iter()
                .map(|c| {
                    (
                        c.name(),
                        c.verify_ecdsa(*alg, key, msg, fixed),
                        c.verify_ecdsa_der(*alg, key, msg, der),
                    )
                })
                .collect();
            for (name, a, b) in &got {
                assert_eq!(
                    *a,
                    Err(SignatureError::MalformedKey),
                    "{name} {alg:?} {what}"
                );
                assert_eq!(
                    *b,
                    Err(SignatureError::MalformedKey),
                    "{name} {alg:?} {what} (DER)"
                );
            }
        }
    }
    // RSA: keys that are not a PKCS#1 RSAPublicKey.
    let rsa_keys: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("empty sequence", b"\x30\x00"),
        ("not DER", b"\x01\x02\x03\x04"),
        ("truncated", b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00"),
        ("modulus only", b"\x30\x03\x02\x01\x05"),
    ];
    for (what, key) in rsa_keys {
        for c in backends() {
            for hash in [RsaHash::Sha256, RsaHash::Sha384] {
                assert_eq!(
                    c.verify_rsa_pss(hash, key, msg, &[1u8; 256]),
                    Err(SignatureError::MalformedKey),
                    "{} PSS {what}",
                    c.name()
                );
                assert_eq!(
                    c.verify_rsa_pkcs1(hash, key, msg, &[1u8; 256]),
                    Err(SignatureError::MalformedKey),
                    "{} PKCS#1 {what}",
                    c.name()
                );
            }
        }
    }
}
