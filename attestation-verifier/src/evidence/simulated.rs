//! The simulator's report: evidence from a machine without a TEE.
//!
//! It exists so the whole loop (agent -> receipt -> verifier) runs anywhere,
//! and it must never pass for hardware evidence. So it says what it is in every
//! encoding: the report starts with the 16-byte magic `SIGIL-SIMULATED\0`, the
//! bundle variant and [`TeeKind`](crate::receipt::TeeKind) are `Simulated`, and
//! every verdict names it. Its signature is by a key the simulator made on the
//! spot and carries inside the report: it proves the bytes were not altered
//! after signing, nothing about where they were made.
//!
//! ```text
//! SimulatedReport = body SimulatedBody | signature Vec<u8>     (SCALE)
//! SimulatedBody   = magic "SIGIL-SIMULATED\0" | version u8 | report_data [64]
//!                 | measurement [48] | key SimulatedKey
//! signed message  = "sigil.simulated-report.v1\0" || SCALE(body)
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeAll, Encode};
#[cfg(feature = "scale")]
use scale_info::TypeInfo;

/// First 16 bytes of every simulated report.
pub const SIMULATED_MAGIC: [u8; 16] = *b"SIGIL-SIMULATED\0";
/// The simulated report format version.
pub const SIMULATED_VERSION: u8 = 1;
/// Domain separator of the signed message.
pub const SIMULATED_DOMAIN: &[u8] = b"sigil.simulated-report.v1\0";
/// Largest simulated report accepted.
pub const MAX_SIMULATED_LEN: usize = 1024;

/// The simulator's signing key, carried in the report.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub enum SimulatedKey {
    /// An ed25519 public key; the signature is 64 bytes.
    #[codec(index = 1)]
    Ed25519([u8; 32]),
    /// An ECDSA P-384 public key (uncompressed SEC1); the signature is `r || s`
    /// (96 bytes) over SHA-384 of the message.
    #[codec(index = 2)]
    EcdsaP384([u8; 97]),
}

impl SimulatedKey {
    /// The algorithm's name in claims.
    pub const fn algorithm(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP384(_) => "ecdsa-p384",
        }
    }
}

/// The signed part of a simulated report.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct SimulatedBody {
    /// [`SIMULATED_MAGIC`].
    pub magic: [u8; 16],
    /// [`SIMULATED_VERSION`].
    pub version: u8,
    /// The 64 bytes the caller asked to bind (as SNP REPORT_DATA / TDX REPORTDATA).
    pub report_data: [u8; 64],
    /// What the simulator says it runs (e.g. SHA-384 of the agent binary); unverifiable.
    pub measurement: [u8; 48],
    /// The key that signed the report.
    pub key: SimulatedKey,
}

/// A simulated report.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct SimulatedReport {
    /// The signed part.
    pub body: SimulatedBody,
    /// The signature over `SIMULATED_DOMAIN || SCALE(body)`.
    pub signature: Vec<u8>,
}

/// Why bytes are not a simulated report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatedParseError {
    /// Longer than [`MAX_SIMULATED_LEN`].
    #[error("simulated report is {0} bytes, more than {MAX_SIMULATED_LEN}")]
    TooLong(usize),
    /// Does not start with the simulated magic.
    #[error("not a simulated report (magic is not SIGIL-SIMULATED)")]
    Magic,
    /// A version this crate does not read.
    #[error("simulated report version {0} is not supported")]
    Version(u8),
    /// Not a SCALE encoding of a report.
    #[error("simulated report is not valid SCALE: {0}")]
    Decode(String),
}

impl SimulatedBody {
    /// A body of the current version.
    pub fn new(report_data: [u8; 64], measurement: [u8; 48], key: SimulatedKey) -> Self {
        Self {
            magic: SIMULATED_MAGIC,
            version: SIMULATED_VERSION,
            report_data,
            measurement,
            key,
        }
    }

    /// The message the simulator signs.
    pub fn signed_message(&self) -> Vec<u8> {
        let body = self.encode();
        let mut m = Vec::with_capacity(SIMULATED_DOMAIN.len().saturating_add(body.len()));
        m.extend_from_slice(SIMULATED_DOMAIN);
        m.extend_from_slice(&body);
        m
    }
}

impl SimulatedReport {
    /// The encoding carried in a bundle.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

/// Parses a simulated report (no cryptography).
pub fn parse_simulated_report(bytes: &[u8]) -> Result<SimulatedReport, SimulatedParseError> {
    if bytes.len() > MAX_SIMULATED_LEN {
        return Err(SimulatedParseError::TooLong(bytes.len()));
    }
    if bytes.get(..16) != Some(SIMULATED_MAGIC.as_slice()) {
        return Err(SimulatedParseError::Magic);
    }
    let r = SimulatedReport::decode_all(&mut &*bytes)
        .map_err(|e| SimulatedParseError::Decode(e.to_string()))?;
    if r.body.version != SIMULATED_VERSION {
        return Err(SimulatedParseError::Version(r.body.version));
    }
    Ok(r)
}

/// The measurement the agent's simulator reports: the SHA-384 of the agent executable's bytes,
/// read from `r`. Anyone holding the same build computes the same value
/// (`sigil-verify measure simulated --agent FILE`), so a development policy can pin it as a
/// hardware policy pins a launch measurement (`[simulated] measurements`).
#[cfg(feature = "std")]
pub fn executable_measurement(mut r: impl std::io::Read) -> std::io::Result<[u8; 48]> {
    use sha2::Digest;
    let mut h = sha2::Sha384::new();
    let mut buf = alloc::vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}
