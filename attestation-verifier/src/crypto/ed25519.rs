//! The ed25519 acceptance rule both backends share.
//!
//! Ed25519 implementations disagree on edge cases that only a signer can
//! produce: small-order `A` or `R` points, non-canonical point encodings. A
//! provider must not be able to make a receipt that one backend (a buyer's
//! `sigil-verify`) accepts and the other (the chain runtime) rejects, so both
//! backends apply the same strict rule: RFC 8032 cofactorless verification,
//! `S < L`, canonical encodings of `A` and `R`, and neither `A` nor `R` of
//! small order (the rule of ed25519-dalek's `verify_strict`). Every signature
//! this accepts is also accepted by the more permissive ZIP-215 rule Substrate's
//! host functions use.

use curve25519_dalek::edwards::CompressedEdwardsY;

use super::SignatureError;

/// A checked ed25519 public key and signature, ready for the signature equation.
pub(crate) struct StrictInputs {
    pub(crate) key: [u8; 32],
    pub(crate) signature: [u8; 64],
}

/// Decodes `encoded` as a canonically encoded point that is not of small order.
fn strict_point(encoded: [u8; 32]) -> Option<()> {
    let c = CompressedEdwardsY(encoded);
    let p = c.decompress()?;
    // Non-canonical encodings (y >= p, or a set sign bit with x = 0) decompress
    // but do not re-compress to the same bytes.
    if p.compress() != c || p.is_small_order() {
        return None;
    }
    Some(())
}

/// Applies the encoding and small-order parts of the strict rule.
pub(crate) fn precheck(
    public_key: &[u8],
    signature: &[u8],
) -> Result<StrictInputs, SignatureError> {
    let key: [u8; 32] = public_key
        .try_into()
        .map_err(|_| SignatureError::MalformedKey)?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| SignatureError::MalformedSignature)?;
    strict_point(key).ok_or(SignatureError::MalformedKey)?;
    let (r, s) = signature.split_at(32);
    let r: [u8; 32] = r
        .try_into()
        .map_err(|_| SignatureError::MalformedSignature)?;
    let s: [u8; 32] = s
        .try_into()
        .map_err(|_| SignatureError::MalformedSignature)?;
    strict_point(r).ok_or(SignatureError::MalformedSignature)?;
    if !bool::from(curve25519_dalek::Scalar::from_canonical_bytes(s).is_some()) {
        return Err(SignatureError::MalformedSignature);
    }
    Ok(StrictInputs { key, signature })
}

#[cfg(test)]
mod tests;
