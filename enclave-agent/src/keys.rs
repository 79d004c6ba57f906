//! The agent's receipt-signing key and its sealing key.
//!
//! An ed25519 key generated inside the TEE at start from the operating system's
//! RNG (`getrandom`). It is never logged (`Debug` prints only the public keys)
//! and never written anywhere unless the operator configures a key file, in
//! which case it is written once with mode 0600 and read back on later starts.
//! The secret is zeroed when the key is dropped (ed25519-dalek's `zeroize`).
//!
//! The sealing key (X25519, RFC 9180 HPKE) that buyers seal secrets to is derived
//! from the same 32-byte seed under its own domain
//! (`DeriveKeyPair(SHA-512("sigil.sealing-key.v1\0" || seed))`): it lives exactly
//! as long as the signing key, in memory by default, and the evidence binds both.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use attestation_verifier::receipt::{ReceiptBody, SignedReceipt};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha512};
use sigil_sealing::SealingKey;

/// Domain of the sealing key's derivation from the agent's seed.
pub const SEALING_KEY_DOMAIN: &[u8] = b"sigil.sealing-key.v1\0";

/// Why the key could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The OS RNG failed.
    #[error("operating-system RNG failed: {0}")]
    Rng(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The key file does not hold a 32-byte seed.
    #[error("key file {path} holds {len} bytes, not a 32-byte ed25519 seed")]
    FileLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The agent's ed25519 signing key and X25519 sealing key.
pub struct AgentKey {
    key: SigningKey,
    sealing: SealingKey,
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("public", &hex::encode(self.public_key()))
            .field("sealing", &hex::encode(self.sealing.public_key()))
            .finish_non_exhaustive()
    }
}

impl AgentKey {
    /// A new key from the OS RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Rng(e.to_string()))?;
        let key = Self::from_seed(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(key)
    }

    /// A key from a known seed (tests, and keys loaded from a configured file).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut ikm: [u8; 64] = Sha512::new()
            .chain_update(SEALING_KEY_DOMAIN)
            .chain_update(seed)
            .finalize()
            .into();
        let sealing = SealingKey::from_ikm(&ikm);
        zeroize::Zeroize::zeroize(&mut ikm);
        Self {
            key: SigningKey::from_bytes(seed),
            sealing,
        }
    }

    /// The key in `path` if the file exists, otherwise a new key written there
    /// (created exclusively, mode 0600). Only used when the operator configures a
    /// key file; the default is a key that lives and dies with the process.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        let file_err = |source| KeyError::File {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let seed: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyError::FileLength {
                            path: path.to_path_buf(),
                            len: bytes.len(),
                        })?;
                Ok(Self::from_seed(&seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(file_err)?;
                f.write_all(key.key.as_bytes()).map_err(file_err)?;
                f.sync_all().map_err(file_err)?;
                Ok(key)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// The public key: the provider's account and the receipts' `provider`.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The sealing key (what buyers seal secrets to, bound by the evidence).
    pub fn sealing(&self) -> &SealingKey {
        &self.sealing
    }

    /// Signs `message` (a receipt digest).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs a receipt body: ed25519 over its domain-separated digest.
    pub fn sign_receipt(&self, body: &ReceiptBody) -> SignedReceipt {
        let digest = body.digest(&attestation_verifier::crypto::DefaultCrypto::default());
        SignedReceipt::new(body, self.sign(&digest))
    }
}

#[cfg(test)]
mod tests;
