//! Native backend (aws-lc-rs): the fastest measured on x86_64 for P-384 and RSA-4096.

use super::{Crypto, EcdsaAlg, RsaHash, SignatureError};
use aws_lc_rs::{digest, signature};

/// The aws-lc-rs backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsLc;

fn fixed<const N: usize>(d: digest::Digest) -> [u8; N] {
    let mut out = [0u8; N];
    // Both sides are N bytes for the algorithms used below.
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

fn check(
    alg: &'static dyn signature::VerificationAlgorithm,
    public_key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    // aws-lc reports one opaque error for malformed keys, malformed signatures and
    // bad signatures alike.
    signature::UnparsedPublicKey::new(alg, public_key)
        .verify(message, sig)
        .map_err(|_| SignatureError::Invalid)
}

impl Crypto for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        fixed(digest::digest(&digest::SHA256, data))
    }

    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        fixed(digest::digest(&digest::SHA384, data))
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        fixed(digest::digest(&digest::SHA512, data))
    }

    fn verify_ecdsa(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        // The key, then the signature's length and scalar range, checked as the pure-Rust
        // backend does and in its order (aws-lc reports one opaque error), so both give the
        // same error for the same inputs.
        super::ecdsa_key_well_formed(alg, public_key)?;
        super::ecdsa_scalars_in_range(alg, sig)?;
        let a: &'static dyn signature::VerificationAlgorithm = match alg {
            EcdsaAlg::P256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
            EcdsaAlg::P384Sha384 => &signature::ECDSA_P384_SHA384_FIXED,
        };
        check(a, public_key, message, sig)
    }

    fn verify_ecdsa_der(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        // The same strict decoding as the default, then aws-lc verifies the DER as
        // is (its fixed-size form would re-encode it to DER internally). The default decodes
        // the signature before `verify_ecdsa` looks at the key: the same order here.
        let fixed = crate::verify::x509::ecdsa_der_to_fixed(alg, sig)?;
        super::ecdsa_key_well_formed(alg, public_key)?;
        super::ecdsa_scalars_in_range(alg, &fixed)?;
        let a: &'static dyn signature::VerificationAlgorithm = match alg {
            EcdsaAlg::P256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            EcdsaAlg::P384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        };
        check(a, public_key, message, sig)
    }

    fn verify_rsa_pss(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        // A malformed key is reported as the pure-Rust backend reports it.
        super::rsa_key_well_formed(public_key)?;
        let a: &'static dyn signature::VerificationAlgorithm = match hash {
            RsaHash::Sha256 => &signature::RSA_PSS_2048_8192_SHA256,
            RsaHash::Sha384 => &signature::RSA_PSS_2048_8192_SHA384,
        };
        check(a, public_key, message, sig)
    }

    fn verify_rsa_pkcs1(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        // A malformed key is reported as the pure-Rust backend reports it.
        super::rsa_key_well_formed(public_key)?;
        let a: &'static dyn signature::VerificationAlgorithm = match hash {
            RsaHash::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            RsaHash::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        };
        check(a, public_key, message, sig)
    }

    fn verify_ed25519(
        &self,
        public_key: &[u8],
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        // aws-lc checks `S < L` and the cofactorless equation; the encoding and
        // small-order checks it lacks come first, so both backends agree.
        let inputs = super::ed25519::precheck(public_key, sig)?;
        check(&signature::ED25519, &inputs.key, message, &inputs.signature)
    }
}
