//! The few cryptographic primitives verification needs, behind one small trait.
//!
//! Two backends implement it: [`RustCrypto`] (pure Rust, `no_std`, builds for
//! `wasm32` and runs inside the chain runtime) and, with the `native` feature,
//! [`AwsLc`] (aws-lc-rs, the fastest backend measured on x86_64; see
//! `docs/crypto-backends.md`). Every vector is verified through both and the
//! verdicts must agree.

mod ed25519;
mod rustcrypto;
pub use rustcrypto::RustCrypto;

#[cfg(feature = "native")]
mod awslc;
#[cfg(feature = "native")]
pub use awslc::AwsLc;

/// The backend `sigil-verify` and other native callers use by default.
#[cfg(feature = "native")]
pub type DefaultCrypto = AwsLc;
/// The backend `sigil-verify` and other native callers use by default.
#[cfg(not(feature = "native"))]
pub type DefaultCrypto = RustCrypto;

/// An ECDSA curve paired with the hash it is used with in attestation formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcdsaAlg {
    /// NIST P-256 with SHA-256 (Intel DCAP quotes, PCK chains).
    P256Sha256,
    /// NIST P-384 with SHA-384 (AMD SEV-SNP reports, NVIDIA SPDM reports and chains).
    P384Sha384,
}

impl EcdsaAlg {
    /// Length in bytes of one scalar (r or s) of a signature.
    pub const fn scalar_len(self) -> usize {
        match self {
            Self::P256Sha256 => 32,
            Self::P384Sha384 => 48,
        }
    }
}

/// A hash function used by an RSA signature scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

/// Why a signature check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The public key is not a valid key for the algorithm.
    #[error("malformed public key")]
    MalformedKey,
    /// The signature is not well formed for the algorithm.
    #[error("malformed signature")]
    MalformedSignature,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    Invalid,
}

/// Refuses a fixed-size ECDSA `r || s` whose scalars are not both in `[1, n-1]`, as
/// [`SignatureError::MalformedSignature`]. The pure-Rust backend does this while parsing; a
/// backend whose verifier reports one opaque error calls it first, so both backends give the
/// same error for the same signature.
#[cfg(feature = "native")]
pub(crate) fn ecdsa_scalars_in_range(
    alg: EcdsaAlg,
    signature: &[u8],
) -> Result<(), SignatureError> {
    let ok = match alg {
        EcdsaAlg::P256Sha256 => p256::ecdsa::Signature::from_slice(signature).is_ok(),
        EcdsaAlg::P384Sha384 => p384::ecdsa::Signature::from_slice(signature).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(SignatureError::MalformedSignature)
    }
}

/// Refuses an ECDSA public key that is not a SEC1 point on the curve (the identity, a wrong
/// length or prefix, coordinates off the curve or not below the field prime), as
/// [`SignatureError::MalformedKey`]: the pure-Rust backend does this while parsing; a backend
/// whose verifier reports one opaque error calls it first, so both give the same error.
#[cfg(feature = "native")]
pub(crate) fn ecdsa_key_well_formed(
    alg: EcdsaAlg,
    public_key: &[u8],
) -> Result<(), SignatureError> {
    let ok = match alg {
        EcdsaAlg::P256Sha256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).is_ok(),
        EcdsaAlg::P384Sha384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(SignatureError::MalformedKey)
    }
}

/// Refuses an RSA public key that is not a PKCS#1 `RSAPublicKey` the pure-Rust backend
/// takes, as [`SignatureError::MalformedKey`] (as [`ecdsa_key_well_formed`] does for ECDSA).
#[cfg(feature = "native")]
pub(crate) fn rsa_key_well_formed(public_key: &[u8]) -> Result<(), SignatureError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    rsa::PublicKey::from_pkcs1_der(public_key)
        .map(|_| ())
        .map_err(|_| SignatureError::MalformedKey)
}

/// Hashing and signature verification, the only cryptography the verifier does.
///
/// Keys are passed as they appear in X.509 `subjectPublicKey` bit strings: SEC1
/// points for ECDSA, PKCS#1 `RSAPublicKey` DER for RSA. ECDSA signatures are
/// fixed-size big-endian `r || s`.
pub trait Crypto: Send + Sync {
    /// A short name for reports and benches.
    fn name(&self) -> &'static str;
    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// SHA-384 of `data`.
    fn sha384(&self, data: &[u8]) -> [u8; 48];
    /// SHA-512 of `data`.
    fn sha512(&self, data: &[u8]) -> [u8; 64];
    /// Verifies an ECDSA signature (`r || s`, big-endian) over `message`.
    fn verify_ecdsa(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
    /// Verifies an ECDSA signature in its X.509 form, a DER `ECDSA-Sig-Value`.
    ///
    /// The default decodes it (strict DER) to `r || s` for [`Crypto::verify_ecdsa`];
    /// a backend that takes DER natively may override it, after the same decoding
    /// check so that both backends accept exactly the same encodings.
    fn verify_ecdsa_der(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let fixed = crate::verify::x509::ecdsa_der_to_fixed(alg, signature)?;
        self.verify_ecdsa(alg, public_key, message, &fixed)
    }
    /// Verifies an RSASSA-PSS signature with MGF1 over the same hash and a salt as long as the hash.
    fn verify_rsa_pss(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
    /// Verifies an RSASSA-PKCS1-v1_5 signature.
    fn verify_rsa_pkcs1(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
    /// Verifies an ed25519 signature (RFC 8032, 64 bytes) under a 32-byte public key.
    ///
    /// Both backends apply the same strict rule: canonical encodings, `S < L`, and
    /// neither the key nor `R` of small order (see `crypto/ed25519.rs`).
    fn verify_ed25519(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
}

impl<T: Crypto + ?Sized> Crypto for &T {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        (**self).sha256(data)
    }
    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        (**self).sha384(data)
    }
    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        (**self).sha512(data)
    }
    fn verify_ecdsa(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_ecdsa(alg, public_key, message, signature)
    }
    fn verify_ecdsa_der(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_ecdsa_der(alg, public_key, message, signature)
    }
    fn verify_rsa_pss(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_rsa_pss(hash, public_key, message, signature)
    }
    fn verify_rsa_pkcs1(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_rsa_pkcs1(hash, public_key, message, signature)
    }
    fn verify_ed25519(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_ed25519(public_key, message, signature)
    }
}

#[cfg(test)]
mod tests;
