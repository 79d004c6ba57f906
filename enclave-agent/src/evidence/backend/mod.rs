//! The evidence backends.

pub mod azure_vtpm;
pub mod nvidia_gpu;
#[cfg(feature = "simulator")]
pub mod simulated;
pub mod snp;
pub mod tsm;

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::receipt::TeeKind;

use super::EvidenceError;
use crate::collateral::vcek::{SnpCertificates, VcekSource};

/// SEV-SNP evidence from a raw report and the host's certificates, after
/// checking the report parses and carries the requested REPORT_DATA (so a stale
/// or mismatched report never leaves the agent).
pub(crate) fn snp_evidence(
    report: Vec<u8>,
    mut certs: SnpCertificates,
    report_data: &[u8; 64],
    fallback: Option<&dyn VcekSource>,
) -> Result<CpuEvidence, EvidenceError> {
    let parsed = parse_snp_report(&report).map_err(|e| EvidenceError::Unusable {
        tee: TeeKind::SevSnp,
        detail: e.to_string(),
    })?;
    if &parsed.report_data != report_data {
        return Err(EvidenceError::Unusable {
            tee: TeeKind::SevSnp,
            detail: "the report does not carry the requested REPORT_DATA".into(),
        });
    }
    // The host supplied no endorsement key: the configured source (AMD KDS or a file).
    if certs.vcek.is_none()
        && certs.vlek.is_none()
        && let Some(source) = fallback
    {
        let fetched = source.certificates(&parsed)?;
        certs.vcek = fetched.vcek;
        certs.vlek = fetched.vlek;
        certs.ask = certs.ask.or(fetched.ask);
        certs.ark = certs.ark.or(fetched.ark);
    }
    let vek = certs
        .vlek
        .filter(|_| parsed.signing_key == attestation_verifier::evidence::snp::SigningKey::Vlek)
        .or(certs.vcek)
        .ok_or(EvidenceError::MissingEndorsementKey)?;
    Ok(CpuEvidence::SevSnp {
        report,
        vek,
        intermediate: certs.ask,
        ark: certs.ark,
    })
}
