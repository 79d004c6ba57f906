//! Pure-Rust backend (RustCrypto): `no_std`, used inside the chain runtime.

use super::{Crypto, EcdsaAlg, RsaHash, SignatureError};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::Verifier;
use sha2::Digest;

/// The pure-Rust backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

fn rsa_key(der: &[u8]) -> Result<rsa::PublicKey, SignatureError> {
    rsa::PublicKey::from_pkcs1_der(der).map_err(|_| SignatureError::MalformedKey)
}

impl Crypto for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        sha2::Sha384::digest(data).into()
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        sha2::Sha512::digest(data).into()
    }

    fn verify_ecdsa(
        &self,
        alg: EcdsaAlg,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        match alg {
            EcdsaAlg::P256Sha256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| SignatureError::MalformedKey)?;
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::MalformedSignature)?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            EcdsaAlg::P384Sha384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| SignatureError::MalformedKey)?;
                let sig = p384::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::MalformedSignature)?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
        }
    }

    fn verify_rsa_pss(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let key = rsa_key(public_key)?;
        let sig = rsa::pss::Signature::try_from(signature)
            .map_err(|_| SignatureError::MalformedSignature)?;
        let ok = match hash {
            RsaHash::Sha256 => {
                rsa::pss::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig)
            }
            RsaHash::Sha384 => {
                rsa::pss::VerifyingKey::<sha2::Sha384>::new(key).verify(message, &sig)
            }
        };
        ok.map_err(|_| SignatureError::Invalid)
    }

    fn verify_rsa_pkcs1(
        &self,
        hash: RsaHash,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let key = rsa_key(public_key)?;
        let sig = rsa::pkcs1v15::Signature::try_from(signature)
            .map_err(|_| SignatureError::MalformedSignature)?;
        let ok = match hash {
            RsaHash::Sha256 => {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig)
            }
            RsaHash::Sha384 => {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(message, &sig)
            }
        };
        ok.map_err(|_| SignatureError::Invalid)
    }

    fn verify_ed25519(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let inputs = super::ed25519::precheck(public_key, signature)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&inputs.key)
            .map_err(|_| SignatureError::MalformedKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&inputs.signature);
        key.verify_strict(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}
