//! Confidential job I/O: a buyer's secrets sealed to the agent's attested key, and outputs
//! sealed to a key of the buyer's, each with a commitment that does not reveal what it
//! commits to.
//!
//! Every seal is RFC 9180 HPKE in base mode with one fixed suite ([`SUITE`]):
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305 (the `hpke` crate). What a
//! ciphertext is for is bound twice: the HPKE `info` names the purpose, the AEAD's associated
//! data names the job and the item ([`Purpose`]), so a ciphertext moved to another job, path or
//! variable does not open.
//!
//! ```text
//! secret commitment  = SHA-256("sigil.secret.v1\0" || salt[32] || value)      (in the job spec)
//! sealed secret      = HPKE-Seal(agent sealing key, info, aad, salt || value)  (beside the spec)
//! sealed output file = "SGSO" | 0x01 | enc[32] | commitment[32]
//!                      | HPKE-Seal(buyer output key, info, aad || commitment, salt || data)
//! output commitment  = SHA-256("sigil.output.v1\0" || salt[32] || data)
//! ```
//!
//! The salt makes a commitment to a short or guessable value (a password, a yes/no answer)
//! useless to anyone without the plaintext. Audit checks the receipt's result commitment over the
//! sealed files without any key; the buyer opens them and checks each plaintext commitment.
//! `docs/confidential-jobs.md` describes the protocol around these primitives.

use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256, Sha512};
pub use zeroize;
use zeroize::{Zeroize, Zeroizing};

type Kem = X25519HkdfSha256;

/// The one HPKE suite Sigil seals with.
pub const SUITE: &str =
    "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305 (RFC 9180, base mode)";
/// Length of a sealing public key and of an encapsulated key.
pub const KEY_LEN: usize = 32;
/// Length of the random salt in front of every sealed plaintext.
pub const SALT_LEN: usize = 32;
/// Length of the AEAD tag at the end of every ciphertext.
pub const TAG_LEN: usize = 16;
/// First bytes of a sealed output file.
pub const OUTPUT_MAGIC: [u8; 4] = *b"SGSO";
/// The sealed output file format version.
pub const OUTPUT_VERSION: u8 = 1;
/// Length of a sealed output file's header (magic, version, enc, commitment).
pub const OUTPUT_HEADER_LEN: usize = 4 + 1 + KEY_LEN + 32;

/// Domain of a secret's commitment.
pub const SECRET_COMMITMENT_DOMAIN: &[u8] = b"sigil.secret.v1\0";
/// Domain of a sealed output's plaintext commitment.
pub const OUTPUT_COMMITMENT_DOMAIN: &[u8] = b"sigil.output.v1\0";
/// Domain of a buyer's per-job output key derivation.
pub const OUTPUT_KEY_DOMAIN: &[u8] = b"sigil.output-key.v1\0";

/// Why sealing or opening failed. Opening says only that it failed, never why inside the
/// AEAD (a wrong key, another item, a changed byte all look the same).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The public key is not an X25519 key of 32 bytes.
    #[error("sealing key is {0} bytes, not a 32-byte X25519 public key")]
    KeyLength(usize),
    /// HPKE refused the recipient key (e.g. a low-order point).
    #[error("sealing key is not a usable X25519 public key")]
    BadKey,
    /// The ciphertext does not open under this key for this purpose.
    #[error(
        "{what} does not open under this key for this job and name (wrong key, moved or changed)"
    )]
    Open {
        /// What was being opened.
        what: &'static str,
    },
    /// Too short to hold a salt and a tag.
    #[error("{what} is {len} bytes, shorter than the {min} a sealed value needs")]
    TooShort {
        /// What was being opened.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The least length.
        min: usize,
    },
    /// Opened, but the plaintext does not match the commitment it was sealed with.
    #[error("{what} opened but does not match its commitment")]
    Commitment {
        /// What was opened.
        what: &'static str,
    },
    /// Not a sealed output file (magic or version).
    #[error("not a sealed output file (magic SGSO, version 1)")]
    NotSealedOutput,
    /// The operating system's RNG failed.
    #[error("operating-system RNG failed")]
    Rng,
    /// Key derivation material shorter than 32 bytes.
    #[error("key derivation input is {0} bytes, fewer than 32")]
    ShortIkm(usize),
}

/// What a sealed value is: names the HPKE `info` and the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// A secret input file of a job, at `path` in its input directory.
    InputFile {
        /// The job.
        job_id: &'a [u8; 32],
        /// The path inside the input directory.
        path: &'a str,
    },
    /// A secret environment variable of a job's workload.
    Env {
        /// The job.
        job_id: &'a [u8; 32],
        /// The variable's name.
        name: &'a str,
    },
    /// An output of a job: a file at `path` in its output directory, or a log (`path` is
    /// `stdout` / `stderr`); `kind` is the agent API's `OutputKind` (1 file, 2 standard
    /// output, 3 standard error).
    Output {
        /// The job.
        job_id: &'a [u8; 32],
        /// The agent API's `OutputKind`.
        kind: u8,
        /// The file's path, or the log's name.
        path: &'a str,
    },
}

impl Purpose<'_> {
    fn info(&self) -> &'static [u8] {
        match self {
            Self::InputFile { .. } => b"sigil.seal.input-file.v1",
            Self::Env { .. } => b"sigil.seal.env.v1",
            Self::Output { .. } => b"sigil.seal.output.v1",
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Self::InputFile { .. } => "sealed input file",
            Self::Env { .. } => "sealed environment value",
            Self::Output { .. } => "sealed output",
        }
    }

    /// `info || job_id || kind || u32-le length of name || name`.
    fn aad(&self) -> Vec<u8> {
        let (job_id, kind, name) = match self {
            Self::InputFile { job_id, path } => (job_id, 0, path),
            Self::Env { job_id, name } => (job_id, 0, name),
            Self::Output { job_id, kind, path } => (job_id, *kind, path),
        };
        let info = self.info();
        let mut aad = Vec::with_capacity(info.len().saturating_add(37).saturating_add(name.len()));
        aad.extend_from_slice(info);
        aad.extend_from_slice(*job_id);
        aad.push(kind);
        aad.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        aad.extend_from_slice(name.as_bytes());
        aad
    }
}

/// An HPKE ciphertext with its encapsulated key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The encapsulated (ephemeral X25519) key.
    pub enc: [u8; KEY_LEN],
    /// The AEAD ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// An X25519 HPKE key pair: the agent's (generated in the TEE, lives only in its memory) or
/// a buyer's per-job output key ([`SealingKey::for_outputs`]). The private key is zeroed on
/// drop and never printed.
pub struct SealingKey {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; KEY_LEN],
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("public", &hex_lower(&self.public))
            .finish_non_exhaustive()
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SealingKey {
    /// A new key pair from the operating system's RNG.
    pub fn generate() -> Result<Self, SealError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut()).map_err(|_| SealError::Rng)?;
        Self::derive(ikm.as_ref())
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` (at least 32 bytes of secret input).
    pub fn derive(ikm: &[u8]) -> Result<Self, SealError> {
        if ikm.len() < 32 {
            return Err(SealError::ShortIkm(ikm.len()));
        }
        let (secret, public) = Kem::derive_keypair(ikm);
        let mut pk = [0u8; KEY_LEN];
        pk.copy_from_slice(&public.to_bytes());
        Ok(Self { secret, public: pk })
    }

    /// RFC 9180 `DeriveKeyPair` of 64 bytes of secret input (cannot fail).
    pub fn from_ikm(ikm: &[u8; 64]) -> Self {
        let (secret, public) = Kem::derive_keypair(ikm);
        let mut pk = [0u8; KEY_LEN];
        pk.copy_from_slice(&public.to_bytes());
        Self { secret, public: pk }
    }

    /// A buyer's output key for one job, derived from the buyer's 32-byte secret seed: the
    /// buyer needs nothing beyond the key it already holds to open the job's outputs later,
    /// and every job gets its own key.
    pub fn for_outputs(buyer_seed: &[u8; 32], job_id: &[u8; 32]) -> Self {
        let mut h = Sha512::new();
        h.update(OUTPUT_KEY_DOMAIN);
        h.update(buyer_seed);
        h.update(job_id);
        let mut ikm: [u8; 64] = h.finalize().into();
        let key = Self::from_ikm(&ikm);
        ikm.zeroize();
        key
    }

    /// The public key (what evidence binds, and what senders seal to).
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public
    }

    /// Opens `sealed` for `purpose`.
    pub fn open(
        &self,
        sealed: &Sealed,
        purpose: &Purpose<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_with(sealed, purpose, &purpose.aad())
    }

    fn open_with(
        &self,
        sealed: &Sealed,
        purpose: &Purpose<'_>,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let what = purpose.what();
        self.open_raw(&sealed.enc, purpose.info(), aad, &sealed.ciphertext)
            .ok_or(SealError::Open { what })
    }

    /// RFC 9180 single-shot `Open` in base mode with this suite.
    fn open_raw(
        &self,
        enc: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .ok()
        .map(Zeroizing::new)
    }

    /// Opens a sealed secret and checks it against the commitment the job spec carries;
    /// returns the value (without its salt).
    pub fn open_secret(
        &self,
        sealed: &Sealed,
        purpose: &Purpose<'_>,
        commitment: &[u8; 32],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let what = purpose.what();
        let min = SALT_LEN + TAG_LEN;
        if sealed.ciphertext.len() < min {
            return Err(SealError::TooShort {
                what,
                len: sealed.ciphertext.len(),
                min,
            });
        }
        let plain = self.open(sealed, purpose)?;
        let (salt, value) = plain.split_at(SALT_LEN);
        if &commit(SECRET_COMMITMENT_DOMAIN, salt, value) != commitment {
            return Err(SealError::Commitment { what });
        }
        Ok(Zeroizing::new(value.to_vec()))
    }

    /// Opens a sealed output file written by [`seal_output`] and checks its plaintext
    /// commitment; returns the data.
    pub fn open_output(
        &self,
        file: &[u8],
        job_id: &[u8; 32],
        kind: u8,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let purpose = Purpose::Output { job_id, kind, path };
        let what = purpose.what();
        let header = parse_output_header(file)?;
        let ciphertext = file.get(OUTPUT_HEADER_LEN..).unwrap_or_default();
        let min = SALT_LEN + TAG_LEN;
        if ciphertext.len() < min {
            return Err(SealError::TooShort {
                what,
                len: ciphertext.len(),
                min,
            });
        }
        let mut aad = purpose.aad();
        aad.extend_from_slice(&header.commitment);
        let sealed = Sealed {
            enc: header.enc,
            ciphertext: ciphertext.to_vec(),
        };
        let plain = self.open_with(&sealed, &purpose, &aad)?;
        let (salt, data) = plain.split_at(SALT_LEN);
        if commit(OUTPUT_COMMITMENT_DOMAIN, salt, data) != header.commitment {
            return Err(SealError::Commitment { what });
        }
        Ok(Zeroizing::new(data.to_vec()))
    }
}

fn commit(domain: &[u8], salt: &[u8], value: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(salt);
    h.update(value);
    h.finalize().into()
}

fn public_key(recipient: &[u8]) -> Result<<Kem as hpke::Kem>::PublicKey, SealError> {
    if recipient.len() != KEY_LEN {
        return Err(SealError::KeyLength(recipient.len()));
    }
    <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).map_err(|_| SealError::BadKey)
}

fn seal_with(
    recipient: &[u8],
    purpose: &Purpose<'_>,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, SealError> {
    let pk = public_key(recipient)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        purpose.info(),
        plaintext,
        aad,
    )
    .map_err(|_| SealError::BadKey)?;
    let mut e = [0u8; KEY_LEN];
    e.copy_from_slice(&enc.to_bytes());
    Ok(Sealed { enc: e, ciphertext })
}

/// Seals `plaintext` to `recipient` (a 32-byte X25519 public key) for `purpose`.
pub fn seal(
    recipient: &[u8],
    purpose: &Purpose<'_>,
    plaintext: &[u8],
) -> Result<Sealed, SealError> {
    seal_with(recipient, purpose, &purpose.aad(), plaintext)
}

fn random_salt() -> Result<[u8; SALT_LEN], SealError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| SealError::Rng)?;
    Ok(salt)
}

/// A secret ready to go: its commitment (for the job spec) and its ciphertext sealed to the
/// agent (sent beside the spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret {
    /// `SHA-256("sigil.secret.v1\0" || salt || value)`.
    pub commitment: [u8; 32],
    /// `salt || value` sealed to the agent.
    pub sealed: Sealed,
}

/// A fresh salt and the commitment to `value` under it. The buyer keeps the salt with the
/// value until it seals both ([`seal_secret`]) to the agent the chain bound.
pub fn commit_secret(value: &[u8]) -> Result<([u8; SALT_LEN], [u8; 32]), SealError> {
    let salt = random_salt()?;
    Ok((salt, commit(SECRET_COMMITMENT_DOMAIN, &salt, value)))
}

/// The commitment to `value` under `salt`.
pub fn secret_commitment(salt: &[u8; SALT_LEN], value: &[u8]) -> [u8; 32] {
    commit(SECRET_COMMITMENT_DOMAIN, salt, value)
}

/// Seals `salt || value` to the agent's key for `purpose`.
pub fn seal_secret(
    agent_key: &[u8],
    purpose: &Purpose<'_>,
    salt: &[u8; SALT_LEN],
    value: &[u8],
) -> Result<SealedSecret, SealError> {
    let mut plain = Zeroizing::new(Vec::with_capacity(SALT_LEN.saturating_add(value.len())));
    plain.extend_from_slice(salt);
    plain.extend_from_slice(value);
    Ok(SealedSecret {
        commitment: commit(SECRET_COMMITMENT_DOMAIN, salt, value),
        sealed: seal(agent_key, purpose, &plain)?,
    })
}

/// The header of a sealed output file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputHeader {
    /// The encapsulated key.
    pub enc: [u8; KEY_LEN],
    /// The plaintext commitment.
    pub commitment: [u8; 32],
}

/// Reads a sealed output file's header (no key needed: audit shows the commitment).
pub fn parse_output_header(file: &[u8]) -> Result<OutputHeader, SealError> {
    let header = file
        .get(..OUTPUT_HEADER_LEN)
        .ok_or(SealError::NotSealedOutput)?;
    let (magic, rest) = header.split_at(4);
    let (version, rest) = rest.split_at(1);
    if magic != OUTPUT_MAGIC || version != [OUTPUT_VERSION] {
        return Err(SealError::NotSealedOutput);
    }
    let (enc, commitment) = rest.split_at(KEY_LEN);
    let mut h = OutputHeader {
        enc: [0; KEY_LEN],
        commitment: [0; 32],
    };
    h.enc.copy_from_slice(enc);
    h.commitment.copy_from_slice(commitment);
    Ok(h)
}

/// Seals an output to the buyer's `recipient` key: the sealed output file format above.
pub fn seal_output(
    recipient: &[u8],
    job_id: &[u8; 32],
    kind: u8,
    path: &str,
    data: &[u8],
) -> Result<Vec<u8>, SealError> {
    let purpose = Purpose::Output { job_id, kind, path };
    let salt = random_salt()?;
    let commitment = commit(OUTPUT_COMMITMENT_DOMAIN, &salt, data);
    let mut plain = Zeroizing::new(Vec::with_capacity(SALT_LEN.saturating_add(data.len())));
    plain.extend_from_slice(&salt);
    plain.extend_from_slice(data);
    let mut aad = purpose.aad();
    aad.extend_from_slice(&commitment);
    let sealed = seal_with(recipient, &purpose, &aad, &plain)?;
    let mut out = Vec::with_capacity(OUTPUT_HEADER_LEN.saturating_add(sealed.ciphertext.len()));
    out.extend_from_slice(&OUTPUT_MAGIC);
    out.push(OUTPUT_VERSION);
    out.extend_from_slice(&sealed.enc);
    out.extend_from_slice(&commitment);
    out.extend_from_slice(&sealed.ciphertext);
    Ok(out)
}

#[cfg(test)]
mod tests;
