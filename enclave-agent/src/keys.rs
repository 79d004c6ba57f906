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
    /// The in-memory TLS certificate could not be made.
    #[error("attested TLS certificate: {0}")]
    Tls(String),
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

    /// A self-signed TLS certificate for this key, and the key as PKCS#8, both PEM, made in
    /// memory (`tls.attested`): the TLS server key is then the key the evidence binds, so a
    /// client that verified the evidence can check the channel ends inside the attested VM.
    ///
    /// Using one ed25519 key for receipts and TLS is safe because the messages cannot meet:
    /// a receipt signature covers a 32-byte digest, a TLS 1.3 `CertificateVerify` covers 64
    /// spaces, a context string and the transcript hash (130 bytes), a TLS 1.2 key exchange
    /// at least the two 32-byte randoms and the parameters.
    pub fn tls_identity(&self) -> Result<(String, zeroize::Zeroizing<String>), KeyError> {
        // RFC 8410 PKCS#8 v1 of an Ed25519 private key is this fixed prefix and the 32-byte
        // seed; written here since ed25519-dalek's encoder would be one more feature for 16
        // constant bytes.
        const PKCS8_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = zeroize::Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(self.key.as_bytes());
        let tls = |e: rcgen::Error| KeyError::Tls(e.to_string());
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_slice());
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .map_err(tls)?;
        let mut params =
            rcgen::CertificateParams::new(vec!["sigil-agent".to_owned()]).map_err(tls)?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("sigil-agent {}", hex::encode(self.public_key())),
        );
        let cert = params.self_signed(&pair).map_err(tls)?;
        Ok((cert.pem(), zeroize::Zeroizing::new(pair.serialize_pem())))
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
