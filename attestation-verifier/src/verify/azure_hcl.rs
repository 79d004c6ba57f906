//! The binding of an Azure HCL report ([`crate::evidence::azure_hcl`]): its
//! hardware report commits to the runtime claims, and the claims carry the
//! expected user data.
//!
//! Steps (mirrored by `// Step N` below):
//! 1. REPORT_DATA of the SNP report (on an Azure TDX VM: of the TD quote made
//!    from the TD report inside the HCL report) is the `hash_type` digest of
//!    `var_data`, zero-padded to 64 bytes.
//! 2. The claims' `"user-data"` is the expected 64 bytes (the agent wrote them
//!    to NV index 0x01400002 before reading the report).
//!
//! The SNP report's own signature and chain are the SEV-SNP verifier's job
//! ([`crate::verify::snp`]), the TD quote's the TDX verifier's
//! ([`crate::verify::tdx`]); this only checks what makes the report say what
//! the claims say.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::Crypto;
use crate::evidence::azure_hcl::{HclHashType, HclReport, USER_DATA_LEN};
use crate::evidence::snp::SnpReport;

/// Why an HCL report does not bind what it should.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HclBindingError {
    /// REPORT_DATA is not the digest of the runtime claims.
    #[error(
        "hardware report REPORT_DATA {found} (SEV-SNP report or TD quote) is not the {hash} digest of the HCL runtime claims ({expected})"
    )]
    ClaimsDigest {
        /// The claims' hash algorithm.
        hash: HclHashType,
        /// The digest, zero-padded to 64 bytes, hex.
        expected: String,
        /// REPORT_DATA, hex.
        found: String,
    },
    /// The claims carry no `"user-data"`.
    #[error("HCL runtime claims carry no \"user-data\"")]
    UserDataMissing,
    /// The claims' `"user-data"` is not the expected data.
    #[error("HCL runtime claims \"user-data\" {found} is not the expected {expected}")]
    UserDataMismatch {
        /// Expected, hex.
        expected: String,
        /// In the claims, hex.
        found: String,
    },
}

/// The 64-byte REPORT_DATA an SNP report must carry for `var_data` hashed with `hash`.
pub fn claims_report_data<C: Crypto + ?Sized>(
    crypto: &C,
    hash: HclHashType,
    var_data: &[u8],
) -> [u8; 64] {
    let mut rd = [0u8; 64];
    let digest: Vec<u8> = match hash {
        HclHashType::Sha256 => crypto.sha256(var_data).to_vec(),
        HclHashType::Sha384 => crypto.sha384(var_data).to_vec(),
        HclHashType::Sha512 => crypto.sha512(var_data).to_vec(),
    };
    for (d, s) in rd.iter_mut().zip(&digest) {
        *d = *s;
    }
    rd
}

/// Checks that `snp` (the report inside `hcl`) commits to `hcl`'s runtime
/// claims and that they carry `expected_user_data`. Lists every failure.
pub fn verify_hcl_binding<C: Crypto + ?Sized>(
    crypto: &C,
    hcl: &HclReport,
    snp: &SnpReport,
    expected_user_data: &[u8; USER_DATA_LEN],
) -> Result<(), Vec<HclBindingError>> {
    verify_hcl_report_data_binding(crypto, hcl, &snp.report_data, expected_user_data)
}

/// [`verify_hcl_binding`] for any hardware report: `report_data` (an SNP report's
/// REPORT_DATA, or the REPORT_DATA of the TD quote of an Azure TDX VM) commits to
/// `hcl`'s runtime claims, and they carry `expected_user_data`. Lists every failure.
pub fn verify_hcl_report_data_binding<C: Crypto + ?Sized>(
    crypto: &C,
    hcl: &HclReport,
    report_data: &[u8; 64],
    expected_user_data: &[u8; USER_DATA_LEN],
) -> Result<(), Vec<HclBindingError>> {
    let mut failures = Vec::new();
    // Step 1
    if let Err(e) = verify_claims_digest(crypto, hcl, report_data) {
        failures.push(e);
    }
    // Step 2
    match &hcl.claims.user_data {
        None => failures.push(HclBindingError::UserDataMissing),
        Some(u) if u.as_slice() != expected_user_data.as_slice() => {
            failures.push(HclBindingError::UserDataMismatch {
                expected: hex::encode(expected_user_data),
                found: hex::encode(u),
            });
        }
        Some(_) => {}
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// Step 1 alone, for any hardware report: `report_data` (an SNP report's
/// REPORT_DATA, or the REPORT_DATA of the TD quote an Azure TDX VM's paravisor
/// made) is the `hash_type` digest of `hcl`'s runtime claims, zero-padded.
pub fn verify_claims_digest<C: Crypto + ?Sized>(
    crypto: &C,
    hcl: &HclReport,
    report_data: &[u8; 64],
) -> Result<(), HclBindingError> {
    let expected = claims_report_data(crypto, hcl.hash_type, &hcl.var_data);
    if *report_data == expected {
        Ok(())
    } else {
        Err(HclBindingError::ClaimsDigest {
            hash: hcl.hash_type,
            expected: hex::encode(expected),
            found: hex::encode(report_data),
        })
    }
}
