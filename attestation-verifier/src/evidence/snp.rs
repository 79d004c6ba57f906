//! AMD SEV-SNP `ATTESTATION_REPORT` (SEV-SNP ABI specification, table
//! "ATTESTATION_REPORT Structure"), versions 2, 3 and 5.
//!
//! Hand-written because the `sev` crate (the reference parser, used in this
//! crate's differential tests) is std-only and this parser must run in `no_std`.

use super::Bytes;

/// Size of an attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes `0..SIGNED_LEN`.
pub const SIGNED_LEN: usize = 0x2A0;
/// Oldest report version understood.
pub const MIN_VERSION: u32 = 2;
/// Newest report version understood.
pub const MAX_VERSION: u32 = 5;

/// Why report bytes could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpParseError {
    /// The input is not exactly one report long.
    #[error("SNP report must be {expected} bytes, got {actual}")]
    Length {
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// The report version is not one this parser knows.
    #[error("unsupported SNP report version {0} (supported: 2..=5)")]
    UnsupportedVersion(u32),
    /// The signature algorithm is not ECDSA P-384 with SHA-384.
    #[error("unsupported SNP signature algorithm {0} (expected 1, ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm(u32),
    /// The signing-key field names no known key.
    #[error("report names signing key {0}, which is neither VCEK (0) nor VLEK (1)")]
    UnknownSigningKey(u8),
    /// The signature's scalars do not fit P-384 (non-zero padding).
    #[error("report signature has non-zero padding")]
    SignaturePadding,
}

/// An AMD EPYC product generation, each with its own root of trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Product {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4).
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Product {
    /// All products with pinned roots.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The product's name as AMD spells it ("Milan", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// Parses a product name, ignoring a stepping suffix ("Milan-B0").
    pub fn from_name(name: &str) -> Option<Self> {
        let base = name.split('-').next().unwrap_or(name);
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(base))
    }

    /// The product identified by CPUID family and model (report v3+).
    pub const fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }

    /// Whether TCB_VERSION uses the Turin layout (with an FMC field).
    pub const fn has_fmc(self) -> bool {
        matches!(self, Self::Turin)
    }
}

impl core::fmt::Display for Product {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The key that signed the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key (per chip and TCB).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider).
    Vlek,
}

impl SigningKey {
    /// "VCEK" or "VLEK".
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        }
    }
}

/// A TCB_VERSION, decoded for a product's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbVersion {
    /// The raw 64-bit value.
    pub raw: u64,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
    /// FMC SPL (Turin and later; 0 otherwise).
    pub fmc: u8,
}

impl TcbVersion {
    /// Decodes `raw` in the layout of `product`.
    pub const fn decode(raw: u64, product: Product) -> Self {
        let b = raw.to_le_bytes();
        if product.has_fmc() {
            Self {
                raw,
                fmc: b[0],
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            }
        } else {
            Self {
                raw,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
                fmc: 0,
            }
        }
    }

    /// Whether every component is at least the one in `min`.
    pub fn meets(&self, min: &TcbVersion) -> bool {
        self.bootloader >= min.bootloader
            && self.tee >= min.tee
            && self.snp >= min.snp
            && self.microcode >= min.microcode
            && self.fmc >= min.fmc
    }
}

/// Guest policy bits (SEV-SNP ABI, "GUEST_POLICY").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Minimum ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
    /// Minimum ABI major version.
    pub const fn abi_major(self) -> u8 {
        ((self.0 >> 8) & 0xFF) as u8
    }
    /// SMT allowed.
    pub const fn smt(self) -> bool {
        self.0 & (1 << 16) != 0
    }
    /// Association with a migration agent allowed.
    pub const fn migrate_ma(self) -> bool {
        self.0 & (1 << 18) != 0
    }
    /// Debugging allowed (the hypervisor can read guest memory).
    pub const fn debug(self) -> bool {
        self.0 & (1 << 19) != 0
    }
    /// Guest restricted to a single socket.
    pub const fn single_socket(self) -> bool {
        self.0 & (1 << 20) != 0
    }
}

/// A parsed attestation report. Field names follow the SEV-SNP ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReport {
    /// Report format version.
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy.
    pub policy: GuestPolicy,
    /// Family ID supplied at launch.
    pub family_id: [u8; 16],
    /// Image ID supplied at launch.
    pub image_id: [u8; 16],
    /// VMPL of the report request.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// Current TCB (raw).
    pub current_tcb: u64,
    /// Platform info bits.
    pub platform_info: u64,
    /// Raw flags word (author key enabled, mask chip key, signing key).
    pub flags: u32,
    /// Whether the chip id is masked (MASK_CHIP_KEY).
    pub mask_chip_key: bool,
    /// The key that signed the report.
    pub signing_key: SigningKey,
    /// Guest-supplied data (64 bytes).
    pub report_data: [u8; 64],
    /// Launch measurement (48 bytes).
    pub measurement: [u8; 48],
    /// Host-supplied data (32 bytes).
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key.
    pub author_key_digest: [u8; 48],
    /// Report ID of the guest.
    pub report_id: [u8; 32],
    /// Report ID of the migration agent.
    pub report_id_ma: [u8; 32],
    /// Reported TCB (raw): the TCB the VCEK was derived from.
    pub reported_tcb: u64,
    /// CPUID family (v3+; 0 before).
    pub cpuid_fam_id: u8,
    /// CPUID model (v3+; 0 before).
    pub cpuid_mod_id: u8,
    /// CPUID stepping (v3+; 0 before).
    pub cpuid_step: u8,
    /// Chip identifier (zero when masked or VLEK-signed).
    pub chip_id: [u8; 64],
    /// Committed TCB (raw).
    pub committed_tcb: u64,
    /// Current firmware version (build, minor, major).
    pub current_version: (u8, u8, u8),
    /// Committed firmware version (build, minor, major).
    pub committed_version: (u8, u8, u8),
    /// TCB at launch (raw).
    pub launch_tcb: u64,
    /// Mitigation vector at launch (v5+; 0 before).
    pub launch_mit_vector: u64,
    /// Current mitigation vector (v5+; 0 before).
    pub current_mit_vector: u64,
    /// Signature `r`, big-endian.
    pub signature_r: [u8; 48],
    /// Signature `s`, big-endian.
    pub signature_s: [u8; 48],
    /// The signed bytes, `0..SIGNED_LEN` of the report.
    pub signed: [u8; SIGNED_LEN],
}

impl SnpReport {
    /// The product named by the report's CPUID fields (v3+ only).
    pub fn product_from_cpuid(&self) -> Option<Product> {
        if self.version < 3 {
            return None;
        }
        Product::from_cpuid(self.cpuid_fam_id, self.cpuid_mod_id)
    }

    /// The signature as big-endian `r || s`.
    pub fn signature_rs(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        let (r, s) = out.split_at_mut(48);
        r.copy_from_slice(&self.signature_r);
        s.copy_from_slice(&self.signature_s);
        out
    }
}

/// Converts a 72-byte little-endian scalar into 48 bytes big-endian; the top 24 bytes must be zero.
fn le_scalar(raw: &[u8]) -> Result<[u8; 48], SnpParseError> {
    let (low, high) = raw.split_at(raw.len().min(48));
    if low.len() != 48 || high.iter().any(|b| *b != 0) {
        return Err(SnpParseError::SignaturePadding);
    }
    let mut out = [0u8; 48];
    for (o, b) in out.iter_mut().zip(low.iter().rev()) {
        *o = *b;
    }
    Ok(out)
}

/// Parses an attestation report.
pub fn parse_snp_report(bytes: &[u8]) -> Result<SnpReport, SnpParseError> {
    if bytes.len() != REPORT_LEN {
        return Err(SnpParseError::Length {
            expected: REPORT_LEN,
            actual: bytes.len(),
        });
    }
    let b = Bytes::new(bytes);
    // The length check above makes every fixed-offset read below in range; the
    // `ok_or` keeps that a proof, not an assumption.
    let short = SnpParseError::Length {
        expected: REPORT_LEN,
        actual: bytes.len(),
    };
    let u32_at = |o| b.u32_le(o).ok_or(short.clone());
    let u64_at = |o| b.u64_le(o).ok_or(short.clone());
    let u8_at = |o| b.u8(o).ok_or(short.clone());

    let version = u32_at(0x00)?;
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(SnpParseError::UnsupportedVersion(version));
    }
    let signature_algo = u32_at(0x34)?;
    if signature_algo != 1 {
        return Err(SnpParseError::UnsupportedSignatureAlgorithm(signature_algo));
    }
    let flags = u32_at(0x48)?;
    let signing_key = match (flags >> 2) & 0x7 {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        other => return Err(SnpParseError::UnknownSigningKey(other as u8)),
    };
    let (cpuid_fam_id, cpuid_mod_id, cpuid_step) = if version >= 3 {
        (u8_at(0x188)?, u8_at(0x189)?, u8_at(0x18A)?)
    } else {
        (0, 0, 0)
    };
    let (launch_mit_vector, current_mit_vector) = if version >= 5 {
        (u64_at(0x1F8)?, u64_at(0x200)?)
    } else {
        (0, 0)
    };
    let sig = b.slice(0x2A0, 144).ok_or(short.clone())?;
    let (r_raw, s_raw) = sig.split_at(72);
    Ok(SnpReport {
        version,
        guest_svn: u32_at(0x04)?,
        policy: GuestPolicy(u64_at(0x08)?),
        family_id: b.array(0x10).ok_or(short.clone())?,
        image_id: b.array(0x20).ok_or(short.clone())?,
        vmpl: u32_at(0x30)?,
        signature_algo,
        current_tcb: u64_at(0x38)?,
        platform_info: u64_at(0x40)?,
        flags,
        mask_chip_key: flags & 0b10 != 0,
        signing_key,
        report_data: b.array(0x50).ok_or(short.clone())?,
        measurement: b.array(0x90).ok_or(short.clone())?,
        host_data: b.array(0xC0).ok_or(short.clone())?,
        id_key_digest: b.array(0xE0).ok_or(short.clone())?,
        author_key_digest: b.array(0x110).ok_or(short.clone())?,
        report_id: b.array(0x140).ok_or(short.clone())?,
        report_id_ma: b.array(0x160).ok_or(short.clone())?,
        reported_tcb: u64_at(0x180)?,
        cpuid_fam_id,
        cpuid_mod_id,
        cpuid_step,
        chip_id: b.array(0x1A0).ok_or(short.clone())?,
        committed_tcb: u64_at(0x1E0)?,
        current_version: (u8_at(0x1E8)?, u8_at(0x1E9)?, u8_at(0x1EA)?),
        committed_version: (u8_at(0x1EC)?, u8_at(0x1ED)?, u8_at(0x1EE)?),
        launch_tcb: u64_at(0x1F0)?,
        launch_mit_vector,
        current_mit_vector,
        signature_r: le_scalar(r_raw)?,
        signature_s: le_scalar(s_raw)?,
        signed: b.array(0).ok_or(short)?,
    })
}

#[cfg(test)]
mod tests;
