//! Account keys: sr25519 (buyers, dev accounts) and ed25519 (providers, whose
//! account is their receipt-signing key, `MultiSigner::Ed25519`).
//!
//! Keys come from Substrate secret URIs: a dev path (`//Alice`), a BIP-39 phrase with optional
//! `//hard` junctions and `///password`, or a hex seed (`0x` + 64 hex digits). A secret-URI file
//! holds one such URI.
//!
//! sr25519 derivation is `subxt-signer`'s. `subxt-signer` 0.51 has no ed25519, so the Substrate
//! ed25519 derivation (`sp_core::ed25519::Pair::from_string`) is written out here, over the same
//! crates `subxt-signer` uses for its own schemes:
//!
//! ```text
//! mini seed = PBKDF2-HMAC-SHA512(entropy of the phrase, "mnemonic" || password, 2048)[..32]
//! hard junction: seed = BLAKE2-256(SCALE(("Ed25519HDKD", seed, junction)))
//! ```
//! (soft junctions do not exist for ed25519). Known dev keys are checked in the unit tests.

use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey};
use parity_scale_codec::Encode;
use subxt::config::polkadot::{AccountId32, MultiSignature};
use subxt::tx::Signer;
use subxt_signer::{DeriveJunction, ExposeSecret, SecretUri, bip39};
use zeroize::Zeroizing;

use crate::SigilConfig;
use crate::error::ChainError;

/// Which signature scheme an account key uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// Schnorrkel sr25519: buyers and the dev accounts.
    Sr25519,
    /// Ed25519: providers (the account is the receipt-signing key).
    Ed25519,
}

impl FromStr for KeyScheme {
    type Err = ChainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sr25519" => Ok(Self::Sr25519),
            "ed25519" => Ok(Self::Ed25519),
            other => Err(ChainError::BadInput {
                what: "key scheme",
                detail: format!("{other:?} is neither sr25519 nor ed25519"),
            }),
        }
    }
}

/// An ed25519 key pair: a provider's account and receipt-signing key.
#[derive(Clone)]
pub struct Ed25519Keypair(SigningKey);

impl std::fmt::Debug for Ed25519Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Keypair(0x{})", hex::encode(self.public_key()))
    }
}

impl Ed25519Keypair {
    /// The key pair of a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The key pair of a secret URI, derived as Substrate derives ed25519 keys.
    pub fn from_uri(uri: &str) -> Result<Self, ChainError> {
        let parsed = SecretUri::from_str(uri).map_err(|e| ChainError::BadInput {
            what: "secret URI",
            detail: e.to_string(),
        })?;
        let phrase = parsed.phrase.expose_secret();
        let mut seed = Zeroizing::new([0u8; 32]);
        if let Some(hex_seed) = phrase.strip_prefix("0x") {
            let bytes =
                Zeroizing::new(hex::decode(hex_seed).map_err(|e| ChainError::BadInput {
                    what: "secret URI",
                    detail: format!("hex seed: {e}"),
                })?);
            if bytes.len() != 32 {
                return Err(ChainError::BadInput {
                    what: "secret URI",
                    detail: format!("a hex seed is 32 bytes, this one {}", bytes.len()),
                });
            }
            seed.copy_from_slice(&bytes);
        } else {
            let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase)
                .map_err(|e| ChainError::BadInput {
                what: "secret URI",
                detail: format!("phrase: {e}"),
            })?;
            let (entropy, len) = mnemonic.to_entropy_array();
            let password = parsed.password.as_ref().map(|p| p.expose_secret());
            let entropy = entropy.get(..len).ok_or(ChainError::BadInput {
                what: "secret URI",
                detail: "phrase entropy".into(),
            })?;
            let big = seed_from_entropy(entropy, password.unwrap_or(""))?;
            seed.copy_from_slice(big.get(..32).ok_or(ChainError::BadInput {
                what: "secret URI",
                detail: "seed length".into(),
            })?);
        }
        for junction in &parsed.junctions {
            match junction {
                DeriveJunction::Hard(chain_code) => {
                    *seed = ("Ed25519HDKD", *seed, *chain_code)
                        .using_encoded(sp_crypto_hashing::blake2_256);
                }
                DeriveJunction::Soft(_) => {
                    return Err(ChainError::BadInput {
                        what: "secret URI",
                        detail: "ed25519 keys have no soft derivation (use //hard junctions)"
                            .into(),
                    });
                }
            }
        }
        Ok(Self::from_seed(&seed))
    }

    /// The 32-byte public key (the provider's account id and receipt key).
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The underlying `ed25519-dalek` key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

/// Substrate's `seed_from_entropy`: PBKDF2-HMAC-SHA512 over the phrase's entropy, 2048 rounds,
/// salted with `"mnemonic" || password`.
fn seed_from_entropy(entropy: &[u8], password: &str) -> Result<Zeroizing<[u8; 64]>, ChainError> {
    if entropy.len() < 16 || entropy.len() > 32 || !entropy.len().is_multiple_of(4) {
        return Err(ChainError::BadInput {
            what: "secret URI",
            detail: format!("phrase entropy of {} bytes", entropy.len()),
        });
    }
    let salt = Zeroizing::new(format!("mnemonic{password}"));
    let mut seed = Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<sha2_010::Sha512>(entropy, salt.as_bytes(), 2048, &mut *seed);
    Ok(seed)
}

/// An account key of either scheme, usable to sign extrinsics.
#[derive(Clone)]
#[non_exhaustive]
pub enum Keypair {
    /// sr25519.
    Sr25519(subxt_signer::sr25519::Keypair),
    /// ed25519.
    Ed25519(Ed25519Keypair),
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({:?}, {})", self.scheme(), self.account_id())
    }
}

impl Keypair {
    /// The key of a secret URI in the given scheme.
    pub fn from_uri(scheme: KeyScheme, uri: &str) -> Result<Self, ChainError> {
        match scheme {
            KeyScheme::Sr25519 => {
                let parsed = SecretUri::from_str(uri).map_err(|e| ChainError::BadInput {
                    what: "secret URI",
                    detail: e.to_string(),
                })?;
                subxt_signer::sr25519::Keypair::from_uri(&parsed)
                    .map(Self::Sr25519)
                    .map_err(|e| ChainError::BadInput {
                        what: "secret URI",
                        detail: e.to_string(),
                    })
            }
            KeyScheme::Ed25519 => Ed25519Keypair::from_uri(uri).map(Self::Ed25519),
        }
    }

    /// The key of the secret URI held in `path` (surrounding whitespace ignored).
    pub fn from_file(scheme: KeyScheme, path: &Path) -> Result<Self, ChainError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| ChainError::BadInput {
                    what: "secret URI file",
                    detail: format!("{}: {e}", path.display()),
                })?,
            );
        Self::from_uri(scheme, text.trim())
    }

    /// The scheme.
    pub fn scheme(&self) -> KeyScheme {
        match self {
            Self::Sr25519(_) => KeyScheme::Sr25519,
            Self::Ed25519(_) => KeyScheme::Ed25519,
        }
    }

    /// The account this key controls.
    pub fn account_id(&self) -> AccountId32 {
        match self {
            Self::Sr25519(k) => AccountId32(k.public_key().0),
            Self::Ed25519(k) => AccountId32(k.public_key()),
        }
    }

    /// The ed25519 key, for keys that are one (providers).
    pub fn as_ed25519(&self) -> Option<&Ed25519Keypair> {
        match self {
            Self::Ed25519(k) => Some(k),
            Self::Sr25519(_) => None,
        }
    }
}

impl Signer<SigilConfig> for Keypair {
    fn account_id(&self) -> AccountId32 {
        Keypair::account_id(self)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        match self {
            Self::Sr25519(k) => MultiSignature::Sr25519(k.sign(signer_payload).0),
            Self::Ed25519(k) => MultiSignature::Ed25519(k.sign(signer_payload)),
        }
    }
}

#[cfg(test)]
mod tests;
