//! The strict rule, checked on both backends with signatures crafted to hit
//! each edge case.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use curve25519_dalek::Scalar;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_dalek::{Signer, SigningKey};
use sha2::Digest;

use crate::crypto::{Crypto, RustCrypto, SignatureError};

fn backends() -> Vec<&'static dyn Crypto> {
    let mut v: Vec<&'static dyn Crypto> = vec![&RustCrypto];
    #[cfg(feature = "native")]
    v.push(&crate::crypto::AwsLc);
    v
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// k = SHA-512(R || A || M) mod L, as in RFC 8032.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = sha2::Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A signature with a chosen R point that satisfies the cofactorless equation
/// [S]B = R + [k]A for `sk`: S = r + k*a where R = [r]B + T, T of small order.
fn forged_with_torsion(sk: &SigningKey, m: &[u8], torsion: EdwardsPoint) -> [u8; 64] {
    let a = sk.to_scalar();
    let pk = sk.verifying_key().to_bytes();
    let r = Scalar::from(12345u64);
    let big_r = (ED25519_BASEPOINT_POINT * r + torsion)
        .compress()
        .to_bytes();
    let k = challenge(&big_r, &pk, m);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

#[test]
fn valid_signature_works() {
    let sk = key();
    let sig = sk.sign(b"receipt");
    for c in backends() {
        c.verify_ed25519(sk.verifying_key().as_bytes(), b"receipt", &sig.to_bytes())
            .unwrap_or_else(|e| core::panic!("{}: {e}", c.name()));
    }
}

#[test]
fn wrong_message_or_key_rejects() {
    let sk = key();
    let sig = sk.sign(b"receipt").to_bytes();
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    for c in backends() {
        assert_eq!(
            c.verify_ed25519(sk.verifying_key().as_bytes(), b"receipT", &sig),
            Err(SignatureError::Invalid),
            "{}",
            c.name()
        );
        assert_eq!(
            c.verify_ed25519(other.as_bytes(), b"receipt", &sig),
            Err(SignatureError::Invalid),
            "{}",
            c.name()
        );
    }
}

#[test]
fn wrong_lengths_reject() {
    let sk = key();
    let sig = sk.sign(b"m").to_bytes();
    for c in backends() {
        assert_eq!(
            c.verify_ed25519(&sk.verifying_key().as_bytes()[..31], b"m", &sig),
            Err(SignatureError::MalformedKey)
        );
        assert_eq!(
            c.verify_ed25519(sk.verifying_key().as_bytes(), b"m", &sig[..63]),
            Err(SignatureError::MalformedSignature)
        );
    }
}

#[test]
fn non_canonical_s_rejects() {
    let sk = key();
    let mut sig = sk.sign(b"m").to_bytes();
    // S + L encodes the same scalar; a lax verifier would accept it.
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    let l =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits for this key");
    for c in backends() {
        assert!(
            c.verify_ed25519(sk.verifying_key().as_bytes(), b"m", &sig)
                .is_err()
        );
    }
}

#[test]
fn torsion_in_r_rejects_on_both_backends() {
    // The crafted signature satisfies the cofactorless equation only when the
    // torsion component is zero; with a torsion component it satisfies the
    // cofactored one. Using the identity as "torsion" gives a plain valid
    // signature, which proves the construction is right.
    let sk = key();
    let plain = forged_with_torsion(&sk, b"m", EdwardsPoint::default());
    for c in backends() {
        c.verify_ed25519(sk.verifying_key().as_bytes(), b"m", &plain)
            .unwrap_or_else(|e| core::panic!("{}: {e}", c.name()));
    }
    // R itself of small order: R = T, S = k*a. Cofactorless: [S]B = [k]A, and
    // R + [k]A = T + [k]A != [S]B unless T = 0, so use T = identity as R.
    let a = sk.to_scalar();
    let pk = sk.verifying_key().to_bytes();
    let big_r = EdwardsPoint::default().compress().to_bytes();
    let k = challenge(&big_r, &pk, b"m");
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice((k * a).as_bytes());
    for c in backends() {
        assert_eq!(
            c.verify_ed25519(&pk, b"m", &sig),
            Err(SignatureError::MalformedSignature),
            "{} must refuse a small-order R",
            c.name()
        );
    }
}

#[test]
fn small_order_key_rejects() {
    // A = identity, R = identity, S = 0 satisfies [S]B = R + [k]A for every message.
    let identity = EdwardsPoint::default().compress().to_bytes();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    for c in backends() {
        assert_eq!(
            c.verify_ed25519(&identity, b"anything", &sig),
            Err(SignatureError::MalformedKey),
            "{}",
            c.name()
        );
    }
}

#[test]
fn non_canonical_key_encoding_rejects() {
    // y = p + d for small d encodes the same point as y = d; find one that is on
    // the curve and not of small order.
    let mut found = 0;
    for d in 2u8..19 {
        // p = 2^255 - 19, little-endian: ed ff .. ff 7f
        let mut enc = [0xffu8; 32];
        enc[31] = 0x7f;
        enc[0] = 0xed + d;
        let c = CompressedEdwardsY(enc);
        let Some(p) = c.decompress() else { continue };
        if p.is_small_order() {
            continue;
        }
        found += 1;
        let sig = [0u8; 64];
        for b in backends() {
            assert_eq!(
                b.verify_ed25519(&enc, b"m", &sig),
                Err(SignatureError::MalformedKey),
                "{}",
                b.name()
            );
        }
    }
    assert!(found > 0, "no non-canonical on-curve encoding found");
}
