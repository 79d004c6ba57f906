//! A vTPM quote's parts and Azure vTPM evidence: `parse_tpms_attest`,
//! `parse_tpmt_signature`, the HCL report with an SEV-SNP or TDX report, and
//! Trustee's evidence JSON.
#![no_main]

use attestation_verifier::evidence::azure_hcl::parse_hcl_report_snp_or_tdx;
use attestation_verifier::evidence::azure_vtpm::parse_vtpm_evidence_json;
use attestation_verifier::evidence::tpm2::{parse_tpms_attest, parse_tpmt_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_tpms_attest(data);
    let _ = parse_tpmt_signature(data);
    let _ = parse_hcl_report_snp_or_tdx(data);
    let _ = parse_vtpm_evidence_json(data);
});
