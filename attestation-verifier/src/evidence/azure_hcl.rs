//! Azure confidential VMs' "HCL report": SEV-SNP evidence produced by the
//! paravisor (HCL / OpenHCL) and exposed through the vTPM.
//!
//! On Azure SEV-SNP CVMs the guest has no `/dev/sev-guest`: the paravisor
//! requests the SNP report and stores it, wrapped, in vTPM NV index
//! [`HCL_REPORT_NV_INDEX`]. Writing 64 bytes to [`HCL_USER_DATA_NV_INDEX`] makes
//! it request a new report whose runtime claims carry those bytes as
//! `"user-data"`.
//!
//! ```text
//! offset  size  field
//!      0     4  signature "HCLA"
//!      4     4  version (1 or 2)
//!      8     4  report_size
//!     12     4  request_type
//!     16     4  status
//!     20    12  reserved
//!     32  1184  hardware report (SEV-SNP ATTESTATION_REPORT)
//!   1216     4  data_size      (runtime data: this 20-byte header + extension + claims)
//!   1220     4  version        (1; 2 inserts an extension before the claims)
//!   1224     4  report_type    (2 = SEV-SNP; 1 VBS, 3 TVM, 4 TDX are refused)
//!   1228     4  hash_type      (1 SHA-256, 2 SHA-384, 3 SHA-512)
//!   1232     4  variable_data_size
//!   1236     …  extension (version 2), then var_data: the runtime claims, UTF-8 JSON
//! ```
//!
//! All integers little-endian. The SNP report's REPORT_DATA is the `hash_type`
//! digest of `var_data`, zero-padded to 64 bytes. `var_data` is a JSON object
//! with the vTPM's attestation key (`keys[kid = "HCLAkPub"]`, a JWK), its
//! encryption key, `vm-configuration` and `"user-data"` (hex of the 64 bytes
//! last written to [`HCL_USER_DATA_NV_INDEX`]).
//!
//! Parsing is total and does no cryptography: the binding is checked by
//! [`crate::verify::azure_hcl`]. Bytes after the runtime data (the NV index is
//! larger than the report) must be zero.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::Bytes;
use super::snp::REPORT_LEN;

/// vTPM NV index holding the HCL report.
pub const HCL_REPORT_NV_INDEX: u32 = 0x0140_0001;
/// vTPM NV index taking the 64 bytes of user data a new report binds.
pub const HCL_USER_DATA_NV_INDEX: u32 = 0x0140_0002;
/// Length of the user data.
pub const USER_DATA_LEN: usize = 64;
/// The header's signature, `"HCLA"` (0x414C4348 little-endian).
pub const HCL_SIGNATURE: [u8; 4] = *b"HCLA";
/// Length of the header.
pub const HEADER_LEN: usize = 32;
/// Where the hardware report starts.
pub const HW_REPORT_OFFSET: usize = HEADER_LEN;
/// Where the runtime data starts (after the 1184-byte report field).
pub const RUNTIME_DATA_OFFSET: usize = HW_REPORT_OFFSET + REPORT_LEN;
/// Length of the runtime data header.
pub const RUNTIME_HEADER_LEN: usize = 20;
/// Largest HCL report accepted (the NV index is about 2.5 KiB).
pub const MAX_HCL_REPORT_LEN: usize = 64 << 10;
/// Runtime-data report type of an SEV-SNP report.
pub const REPORT_TYPE_SNP: u32 = 2;
/// Runtime-data report type of a TDX TDREPORT (Azure TDX confidential VMs,
/// read only through [`parse_hcl_report_snp_or_tdx`]).
pub const REPORT_TYPE_TDX: u32 = 4;
/// Key id of the vTPM attestation key in the runtime claims.
pub const AK_PUB_KID: &str = "HCLAkPub";

/// Why HCL report bytes could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HclParseError {
    /// Longer than [`MAX_HCL_REPORT_LEN`].
    #[error("HCL report is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end before a field.
    #[error("HCL report truncated: {field} needs {needed} bytes, {len} given")]
    Truncated {
        /// The field that does not fit.
        field: &'static str,
        /// Bytes needed up to the field's end.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The header does not start with `HCLA`.
    #[error("not an HCL report (signature {0:02x?}, expected \"HCLA\")")]
    Signature([u8; 4]),
    /// A header version this parser does not know.
    #[error("HCL report version {0} is not supported (1 and 2 are)")]
    UnsupportedVersion(u32),
    /// A runtime-data version this parser does not know.
    #[error("HCL runtime data version {0} is not supported (1 and 2 are)")]
    UnsupportedRuntimeDataVersion(u32),
    /// The hardware report is not an SEV-SNP report (VBS, TVM or TDX).
    #[error("HCL report carries a {name} report (type {value}); only SEV-SNP (2) is supported")]
    UnsupportedReportType {
        /// The type's value.
        value: u32,
        /// Its name.
        name: &'static str,
    },
    /// Evidence that must be TDX (an Azure TDX VM's) carries another hardware report.
    #[error("HCL report carries a {name} report (type {value}) where a TDX report (4) is expected")]
    ExpectedTdx {
        /// The type's value.
        value: u32,
        /// Its name.
        name: &'static str,
    },
    /// The runtime claims' hash algorithm is unknown.
    #[error("HCL runtime claims hash type {0} is unknown (1 SHA-256, 2 SHA-384, 3 SHA-512)")]
    UnsupportedHashType(u32),
    /// The runtime data's sizes contradict each other.
    #[error(
        "HCL runtime data is {data_size} bytes but must hold its header and {var_size} bytes of claims"
    )]
    RuntimeDataSize {
        /// `data_size`.
        data_size: u32,
        /// `variable_data_size`.
        var_size: u32,
    },
    /// Non-zero bytes after the runtime data.
    #[error("HCL report has non-zero bytes after its runtime data (offset {0})")]
    TrailingData(usize),
    /// The runtime claims are not UTF-8 JSON of the expected shape.
    #[error("HCL runtime claims are not valid JSON: {0}")]
    Claims(String),
    /// `"user-data"` is not hex.
    #[error("HCL runtime claims \"user-data\" is not hex")]
    UserDataHex,
}

/// The runtime claims' hash algorithm (`report_data_hash_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HclHashType {
    /// SHA-256: REPORT_DATA is the digest and 32 zero bytes.
    Sha256,
    /// SHA-384: REPORT_DATA is the digest and 16 zero bytes.
    Sha384,
    /// SHA-512: REPORT_DATA is the digest.
    Sha512,
}

impl HclHashType {
    /// The value in the runtime data header.
    pub const fn value(self) -> u32 {
        match self {
            Self::Sha256 => 1,
            Self::Sha384 => 2,
            Self::Sha512 => 3,
        }
    }

    /// The algorithm of a header value.
    pub const fn from_value(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha384),
            3 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// "SHA-256", "SHA-384" or "SHA-512".
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
}

impl core::fmt::Display for HclHashType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A JSON web key from the runtime claims (RSA members as base64url text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct HclJwk {
    /// Key id (`HCLAkPub`, `HCLEkPub`).
    #[serde(default)]
    pub kid: String,
    /// Key type (`RSA`).
    #[serde(default)]
    pub kty: String,
    /// RSA modulus, base64url.
    #[serde(default)]
    pub n: String,
    /// RSA public exponent, base64url.
    #[serde(default)]
    pub e: String,
}

/// The VM configuration the paravisor reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct HclVmConfiguration {
    /// Whether the serial console is enabled.
    #[serde(
        rename = "console-enabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub console_enabled: Option<bool>,
    /// Whether secure boot is enabled.
    #[serde(
        rename = "secure-boot",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secure_boot: Option<bool>,
    /// Whether the vTPM is enabled.
    #[serde(
        rename = "tpm-enabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tpm_enabled: Option<bool>,
    /// Whether the vTPM state is persisted.
    #[serde(
        rename = "tpm-persisted",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tpm_persisted: Option<bool>,
    /// The VM's unique id.
    #[serde(
        rename = "vmUniqueId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vm_unique_id: Option<String>,
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    keys: Vec<HclJwk>,
    #[serde(rename = "vm-configuration", default)]
    vm_configuration: Option<HclVmConfiguration>,
    #[serde(rename = "user-data", default)]
    user_data: Option<String>,
}

/// The runtime claims (`var_data`), as far as a verifier reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HclRuntimeClaims {
    /// The keys (`HCLAkPub`, `HCLEkPub`, ...).
    pub keys: Vec<HclJwk>,
    /// The VM configuration, when present.
    pub vm_configuration: Option<HclVmConfiguration>,
    /// `"user-data"`, hex-decoded, when present (an empty string is absent).
    pub user_data: Option<Vec<u8>>,
}

impl HclRuntimeClaims {
    /// The vTPM attestation key, when present.
    pub fn ak_pub(&self) -> Option<&HclJwk> {
        self.keys.iter().find(|k| k.kid == AK_PUB_KID)
    }
}

/// A parsed HCL report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HclReport {
    /// Header version.
    pub version: u32,
    /// Header `report_size`.
    pub report_size: u32,
    /// Header `request_type`.
    pub request_type: u32,
    /// Header `status`.
    pub status: u32,
    /// The raw SEV-SNP report (0x4A0 bytes); for a TDX HCL report
    /// ([`REPORT_TYPE_TDX`]) the TDREPORT, zero-padded to the same length.
    pub snp_report: Vec<u8>,
    /// The runtime data's report type: [`REPORT_TYPE_SNP`], or
    /// [`REPORT_TYPE_TDX`] from [`parse_hcl_report_snp_or_tdx`].
    pub report_type: u32,
    /// Runtime data version.
    pub runtime_version: u32,
    /// How REPORT_DATA commits to `var_data`.
    pub hash_type: HclHashType,
    /// The runtime claims, raw (what REPORT_DATA hashes).
    pub var_data: Vec<u8>,
    /// The runtime claims, decoded.
    pub claims: HclRuntimeClaims,
    /// Bytes used: header, report and runtime data (the rest was zero padding).
    pub used_len: usize,
}

fn report_type_name(v: u32) -> &'static str {
    match v {
        0 => "invalid",
        1 => "VBS",
        3 => "TVM",
        4 => "TDX",
        _ => "unknown",
    }
}

/// Parses an HCL report (the contents of NV index [`HCL_REPORT_NV_INDEX`]).
/// Only an SEV-SNP hardware report is accepted.
pub fn parse_hcl_report(bytes: &[u8]) -> Result<HclReport, HclParseError> {
    parse(bytes, false)
}

/// Parses an HCL report whose hardware report is SEV-SNP or TDX (an Azure TDX
/// confidential VM's: the TDREPORT the TD quote was made from). The TDX
/// report itself is not parsed: the TD quote vouches for the runtime claims.
pub fn parse_hcl_report_snp_or_tdx(bytes: &[u8]) -> Result<HclReport, HclParseError> {
    parse(bytes, true)
}

/// Parses the HCL report of an Azure TDX confidential VM: its hardware report must be a
/// TDREPORT ([`REPORT_TYPE_TDX`]).
pub fn parse_hcl_report_tdx(bytes: &[u8]) -> Result<HclReport, HclParseError> {
    let hcl = parse(bytes, true)?;
    if hcl.report_type != REPORT_TYPE_TDX {
        return Err(HclParseError::ExpectedTdx {
            value: hcl.report_type,
            name: report_type_name(hcl.report_type),
        });
    }
    Ok(hcl)
}

fn parse(bytes: &[u8], tdx_ok: bool) -> Result<HclReport, HclParseError> {
    let len = bytes.len();
    if len > MAX_HCL_REPORT_LEN {
        return Err(HclParseError::TooLong {
            len,
            max: MAX_HCL_REPORT_LEN,
        });
    }
    let b = Bytes::new(bytes);
    let truncated = |field, needed| HclParseError::Truncated { field, needed, len };
    let u32_at = |off: usize, field| {
        b.u32_le(off)
            .ok_or_else(|| truncated(field, off.saturating_add(4)))
    };
    let signature: [u8; 4] = b
        .array(0)
        .ok_or_else(|| truncated("signature", HEADER_LEN))?;
    if signature != HCL_SIGNATURE {
        return Err(HclParseError::Signature(signature));
    }
    let version = u32_at(4, "version")?;
    if !matches!(version, 1 | 2) {
        return Err(HclParseError::UnsupportedVersion(version));
    }
    let report_size = u32_at(8, "report_size")?;
    let request_type = u32_at(12, "request_type")?;
    let status = u32_at(16, "status")?;
    let header_end = RUNTIME_DATA_OFFSET.saturating_add(RUNTIME_HEADER_LEN);
    if len < header_end {
        return Err(truncated("runtime data header", header_end));
    }
    let rt = RUNTIME_DATA_OFFSET;
    let data_size = u32_at(rt, "data_size")?;
    let runtime_version = u32_at(rt.saturating_add(4), "runtime version")?;
    let report_type = u32_at(rt.saturating_add(8), "report_type")?;
    let hash_value = u32_at(rt.saturating_add(12), "hash_type")?;
    let var_size = u32_at(rt.saturating_add(16), "variable_data_size")?;
    if report_type != REPORT_TYPE_SNP && !(tdx_ok && report_type == REPORT_TYPE_TDX) {
        return Err(HclParseError::UnsupportedReportType {
            value: report_type,
            name: report_type_name(report_type),
        });
    }
    if !matches!(runtime_version, 1 | 2) {
        return Err(HclParseError::UnsupportedRuntimeDataVersion(
            runtime_version,
        ));
    }
    let hash_type = HclHashType::from_value(hash_value)
        .ok_or(HclParseError::UnsupportedHashType(hash_value))?;
    let size_err = HclParseError::RuntimeDataSize {
        data_size,
        var_size,
    };
    let data_len = usize::try_from(data_size).map_err(|_| size_err.clone())?;
    let var_len = usize::try_from(var_size).map_err(|_| size_err.clone())?;
    // Version 1: exactly the header and the claims; version 2 may put an
    // extension between them.
    let min = RUNTIME_HEADER_LEN
        .checked_add(var_len)
        .ok_or_else(|| size_err.clone())?;
    if data_len < min || (runtime_version == 1 && data_len != min) {
        return Err(size_err);
    }
    let used_len = rt.checked_add(data_len).ok_or_else(|| size_err.clone())?;
    let runtime = b
        .slice(rt, data_len)
        .ok_or_else(|| truncated("runtime data", used_len))?;
    let var_start = data_len.checked_sub(var_len).ok_or(size_err)?;
    let var_data = runtime.get(var_start..).unwrap_or_default();
    if let Some(pos) = bytes
        .get(used_len..)
        .and_then(|rest| rest.iter().position(|&x| x != 0))
    {
        return Err(HclParseError::TrailingData(used_len.saturating_add(pos)));
    }
    let snp_report = b
        .slice(HW_REPORT_OFFSET, REPORT_LEN)
        .ok_or_else(|| truncated("SNP report", RUNTIME_DATA_OFFSET))?;
    let claims = parse_runtime_claims(var_data)?;
    Ok(HclReport {
        version,
        report_size,
        request_type,
        status,
        snp_report: snp_report.to_vec(),
        report_type,
        runtime_version,
        hash_type,
        var_data: var_data.to_vec(),
        claims,
        used_len,
    })
}

/// Lays out an HCL report the way the paravisor does (header version 2,
/// runtime data version 1, request type 2): the inverse of
/// [`parse_hcl_report`], for tools and tests that stand in for the paravisor.
/// `None` when `snp_report` is not 0x4A0 bytes or `var_data` is too long.
pub fn encode_hcl_report(
    snp_report: &[u8],
    hash_type: HclHashType,
    var_data: &[u8],
) -> Option<Vec<u8>> {
    if snp_report.len() != REPORT_LEN {
        return None;
    }
    encode(snp_report, REPORT_TYPE_SNP, hash_type, var_data)
}

/// [`encode_hcl_report`] for an Azure TDX VM: `td_report` (the TDREPORT, at most
/// 0x4A0 bytes) zero-padded in the hardware report's place, report type
/// [`REPORT_TYPE_TDX`]; the inverse of [`parse_hcl_report_tdx`].
pub fn encode_hcl_report_tdx(
    td_report: &[u8],
    hash_type: HclHashType,
    var_data: &[u8],
) -> Option<Vec<u8>> {
    if td_report.len() > REPORT_LEN {
        return None;
    }
    let mut hw = td_report.to_vec();
    hw.resize(REPORT_LEN, 0);
    encode(&hw, REPORT_TYPE_TDX, hash_type, var_data)
}

fn encode(
    hw_report: &[u8],
    report_type: u32,
    hash_type: HclHashType,
    var_data: &[u8],
) -> Option<Vec<u8>> {
    let data_size = RUNTIME_HEADER_LEN.checked_add(var_data.len())?;
    let total = RUNTIME_DATA_OFFSET.checked_add(data_size)?;
    if total > MAX_HCL_REPORT_LEN {
        return None;
    }
    let u = |v: usize| u32::try_from(v).ok().map(u32::to_le_bytes);
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&HCL_SIGNATURE);
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&u(total)?);
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(hw_report);
    b.extend_from_slice(&u(data_size)?);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&report_type.to_le_bytes());
    b.extend_from_slice(&hash_type.value().to_le_bytes());
    b.extend_from_slice(&u(var_data.len())?);
    b.extend_from_slice(var_data);
    Some(b)
}

/// Parses the runtime claims JSON (`var_data`).
pub(crate) fn parse_runtime_claims(var_data: &[u8]) -> Result<HclRuntimeClaims, HclParseError> {
    let raw: RawClaims =
        serde_json::from_slice(var_data).map_err(|e| HclParseError::Claims(e.to_string()))?;
    let user_data = match raw.user_data.as_deref() {
        None | Some("") => None,
        Some(h) => Some(hex::decode(h).map_err(|_| HclParseError::UserDataHex)?),
    };
    Ok(HclRuntimeClaims {
        keys: raw.keys,
        vm_configuration: raw.vm_configuration,
        user_data,
    })
}

#[cfg(test)]
mod tests;
