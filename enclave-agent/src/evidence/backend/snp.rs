//! SEV-SNP through `/dev/sev-guest`: the `sev` crate's extended report, which
//! returns the report and the certificate table the host provisioned.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::receipt::TeeKind;

use crate::collateral::vcek::{SnpCertificates, VcekSource};
use crate::evidence::{EvidenceError, EvidenceSource};

/// The SEV guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// The one hardware call: an extended report for `report_data` at `vmpl`.
pub trait SevGuestDevice: Send + Sync {
    /// The raw report and the host's certificates.
    fn extended_report(
        &self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, SnpCertificates), EvidenceError>;
}

/// `/dev/sev-guest` through the `sev` crate.
pub struct SevGuestFirmware {
    fw: Mutex<sev::firmware::guest::Firmware>,
}

impl SevGuestFirmware {
    /// Opens the device.
    pub fn open() -> Result<Self, EvidenceError> {
        let fw =
            sev::firmware::guest::Firmware::open().map_err(|source| EvidenceError::Device {
                path: PathBuf::from(SEV_GUEST_DEVICE),
                source,
            })?;
        Ok(Self { fw: Mutex::new(fw) })
    }
}

impl SevGuestDevice for SevGuestFirmware {
    fn extended_report(
        &self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, SnpCertificates), EvidenceError> {
        use sev::firmware::host::CertType;
        let mut fw = self
            .fw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (report, table) = fw
            .get_ext_report(None, Some(*report_data), Some(vmpl))
            .map_err(|e| EvidenceError::Firmware(e.to_string()))?;
        let mut certs = SnpCertificates::default();
        for entry in table.unwrap_or_default() {
            let slot = match entry.cert_type {
                CertType::VCEK => &mut certs.vcek,
                CertType::VLEK => &mut certs.vlek,
                CertType::ASK => &mut certs.ask,
                CertType::ARK => &mut certs.ark,
                _ => continue,
            };
            *slot = Some(entry.data);
        }
        Ok((report, certs))
    }
}

/// SEV-SNP evidence from a [`SevGuestDevice`].
pub struct SevGuestSource {
    device: Box<dyn SevGuestDevice>,
    vmpl: u32,
    vcek: Option<Arc<dyn VcekSource>>,
}

impl SevGuestSource {
    /// A source over `device`, requesting reports at `vmpl` (0 for a guest without an SVSM).
    pub fn new(device: Box<dyn SevGuestDevice>, vmpl: u32) -> Self {
        Self {
            device,
            vmpl,
            vcek: None,
        }
    }

    /// Where the VCEK comes from when the host supplies no certificates (AMD KDS or a
    /// file).
    pub fn with_vcek_source(mut self, source: Option<Arc<dyn VcekSource>>) -> Self {
        self.vcek = source;
        self
    }

    /// Opens `/dev/sev-guest`.
    pub fn open(vmpl: u32) -> Result<Self, EvidenceError> {
        Ok(Self::new(Box::new(SevGuestFirmware::open()?), vmpl))
    }
}

impl EvidenceSource for SevGuestSource {
    fn tee(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, EvidenceError> {
        let (report, certs) = self.device.extended_report(report_data, self.vmpl)?;
        super::snp_evidence(report, certs, report_data, self.vcek.as_deref())
    }
}
