//! SEV-SNP and TDX on Azure confidential VMs, through the vTPM.
//!
//! Azure's SEV-SNP CVMs (DCasv5/ECasv5, NCCadsH100v5, ...) and TDX CVMs
//! (DCesv5/ECesv5) run the guest above a paravisor (HCL) and give it no
//! `/dev/sev-guest` or TDX quoting. The paravisor requests the SNP report (or the
//! TD report) and stores it, wrapped in an "HCL report" with runtime claims, in
//! vTPM NV index 0x01400001 (`attestation_verifier::evidence::azure_hcl`).
//! Writing 64 bytes to NV index 0x01400002 makes it request a fresh report whose
//! claims carry them as `"user-data"`, and whose REPORT_DATA is the digest of
//! the claims. Which TEE the VM has is read from the report when the source is
//! opened ([`AzureVtpmSource::probed`]). One request:
//!
//! 1. `TPM2_NV_ReadPublic(0x01400002)`; when the index is not defined,
//!    `TPM2_NV_DefineSpace` it (64 bytes, owner read/write) as Azure's tools do.
//! 2. `TPM2_NV_Write(0x01400002, REPORT_DATA)` with owner authorization (a
//!    password session, `TPM_RS_PW`, empty owner password).
//! 3. `TPM2_NV_ReadPublic(0x01400001)` for its size, then `TPM2_NV_Read` in
//!    chunks of the TPM's `TPM_PT_NV_BUFFER_MAX` (`TPM2_GetCapability`).
//! 4. Parse the HCL report; until its `"user-data"` is the REPORT_DATA just
//!    written, read again (a few times, briefly apart).
//! 5. SEV-SNP: check the binding (REPORT_DATA of the SNP report = digest of the
//!    claims) so evidence that would fail verification never leaves the agent; then
//!    the VCEK for the report's chip and TCB from a [`VcekSource`] (Azure's IMDS THIM
//!    endpoint, cached per chip and TCB, or a configured file; see
//!    [`crate::collateral::vcek`]).
//!
//!    TDX: the TD report (the first 1024 bytes of the hardware report's place) goes to
//!    a [`TdQuoteSource`] (Azure IMDS `/acc/tdquote`, [`tdquote`]) for its DCAP quote;
//!    the quote must parse and its REPORT_DATA be the digest of the claims (checked
//!    here, as for SEV-SNP); then its DCAP collateral from the configured
//!    [`TdxCollateralSource`], as for a TDX quote through configfs-tsm.
//!
//! 6. With [`AzureVtpmSource::with_tpm_quote`] (on for [`AzureVtpmSource::open`]):
//!    `TPM2_PCR_Read` of the PCRs, then `TPM2_Quote` over them with the AK at
//!    [`AZURE_AK_HANDLE`] and the qualifying data
//!    `SHA-256("sigil.tpm-quote.v1\0" || REPORT_DATA)`; the quote is checked
//!    against the `HCLAkPub` of the report just read (read again when a PCR
//!    changed between the two commands) and goes into the bundle's
//!    `measured.tpm_quote` (`docs/azure-vtpm.md`).
//!
//! 7. With [`AzureVtpmSource::with_event_log`] (the file at
//!    `evidence.tpm_event_log_path` for the configured backend): the TPM's firmware event
//!    log, replayed against the PCR values just quoted, goes into `measured.event_log`
//!    beside the quote. A log whose replay differs from the quote (a PCR the log covers
//!    was extended after boot, outside the log) is left out and the reason logged, so
//!    evidence that would fail verification never leaves the agent.
//!
//! The TPM commands are in [`crate::evidence::tpm`], behind [`TpmTransport`] so
//! tests can stand in for the TPM.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use attestation_verifier::bundle::MAX_EVENT_LOG_LEN;
use attestation_verifier::bundle::{CpuEvidence, MeasuredBoot, TpmQuote};
use attestation_verifier::crypto::DefaultCrypto;
use attestation_verifier::eventlog::tpm::parse_tpm_log;
use attestation_verifier::evidence::azure_hcl::{
    HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, HclReport, REPORT_TYPE_SNP, REPORT_TYPE_TDX,
    USER_DATA_LEN, parse_hcl_report_snp_or_tdx,
};
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::receipt::TeeKind;
use attestation_verifier::verify::azure_hcl::{verify_hcl_binding, verify_hcl_report_data_binding};
use attestation_verifier::verify::azure_vtpm::{
    VtpmQuoteError, tpm_quote_qualifying_data, verify_vtpm_quote_tpmt,
};

use crate::collateral::tdx::TdxCollateralSource;
use crate::collateral::vcek::VcekSource;
use crate::evidence::tpm::{PCR_COUNT, Tpm, TpmDevice, TpmError, TpmTransport};
use crate::evidence::{EvidenceError, EvidenceSource};

/// Azure IMDS's endpoint for the VCEK and its chain (reachable only inside the VM).
pub use crate::config::IMDS_THIM_URL;

pub mod tdquote;
pub use tdquote::{IMDS_TDQUOTE_URL, ImdsTdQuote, TD_REPORT_LEN, TdQuoteError, TdQuoteSource};

/// The persistent handle of the vTPM's attestation key on Azure (its public
/// part is the HCL report's `HCLAkPub`).
pub const AZURE_AK_HANDLE: u32 = 0x8100_0003;
/// How often PCRs are read and quoted again when one changed in between.
const QUOTE_ATTEMPTS: usize = 3;

/// How long to wait for the paravisor to replace the report after a write.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    /// Reads of the report before giving up.
    pub attempts: u32,
    /// Pause between two reads.
    pub delay: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Self {
            attempts: 10,
            delay: Duration::from_millis(300),
        }
    }
}

/// SEV-SNP or TDX evidence from the Azure paravisor through the vTPM.
pub struct AzureVtpmSource {
    tpm: Tpm,
    /// The VM's TEE, as its HCL report says ([`Self::probed`]).
    tee: TeeKind,
    vcek: Box<dyn VcekSource>,
    /// TDX: turns the TD report into a quote.
    td_quotes: Option<Box<dyn TdQuoteSource>>,
    /// TDX: the quote's DCAP collateral (none: bundles without it).
    tdx_collateral: Option<Box<dyn TdxCollateralSource>>,
    poll: Poll,
    /// The PCRs to quote (`None`: no quote).
    quote_pcrs: Option<Vec<u8>>,
    /// The TPM's firmware event log, carried beside the quote.
    event_log: Option<Vec<u8>>,
    /// One request at a time: the user-data index is shared.
    lock: Mutex<()>,
}

fn unusable(tee: TeeKind, detail: impl Into<String>) -> EvidenceError {
    EvidenceError::Unusable {
        tee,
        detail: detail.into(),
    }
}

/// The TEE of an HCL report's hardware report type.
fn report_tee(report_type: u32) -> TeeKind {
    match report_type {
        REPORT_TYPE_SNP => TeeKind::SevSnp,
        REPORT_TYPE_TDX => TeeKind::Tdx,
        _ => TeeKind::None,
    }
}

impl AzureVtpmSource {
    /// A source over `transport`, taking certificates from `vcek`; SEV-SNP until
    /// [`Self::probed`] reads the VM's report.
    pub fn new(transport: Box<dyn TpmTransport>, vcek: Box<dyn VcekSource>) -> Self {
        Self {
            tpm: Tpm::new(transport),
            tee: TeeKind::SevSnp,
            vcek,
            td_quotes: None,
            tdx_collateral: None,
            poll: Poll::default(),
            quote_pcrs: None,
            event_log: None,
            lock: Mutex::new(()),
        }
    }

    /// The same source adding a vTPM quote over the SHA-256 PCRs `pcrs` (each
    /// below 24) to its evidence.
    #[must_use]
    pub fn with_tpm_quote(mut self, pcrs: &[u8]) -> Self {
        let mut pcrs: Vec<u8> = pcrs.iter().copied().filter(|&p| p < PCR_COUNT).collect();
        pcrs.sort_unstable();
        pcrs.dedup();
        self.quote_pcrs = Some(pcrs);
        self
    }

    /// The same source carrying `log`, the TPM's firmware event log (TCG crypto-agile),
    /// beside its quote. A log that does not parse, or is larger than a bundle holds, is
    /// not carried (said in the logs).
    #[must_use]
    pub fn with_event_log(mut self, log: Vec<u8>) -> Self {
        if log.len() > MAX_EVENT_LOG_LEN {
            tracing::warn!(
                len = log.len(),
                max = MAX_EVENT_LOG_LEN,
                "the TPM event log is larger than a bundle holds: bundles carry the vTPM quote without it"
            );
            return self;
        }
        match parse_tpm_log(&log) {
            Ok(parsed) => {
                tracing::info!(
                    events = parsed.events.len(),
                    bytes = log.len(),
                    "TPM event log carried beside the vTPM quote"
                );
                self.event_log = Some(log);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "the TPM event log does not parse: bundles carry the vTPM quote without it"
            ),
        }
        self
    }

    /// [`Self::with_event_log`] with the log at `path`; a missing or unreadable file is no
    /// log (said in the logs), never an invented one.
    #[must_use]
    pub fn with_event_log_file(self, path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(log) => self.with_event_log(log),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(
                    path = %path.display(),
                    "no TPM event log: bundles carry the vTPM quote without it"
                );
                self
            }
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "the TPM event log is unreadable: bundles carry the vTPM quote without it"
                );
                self
            }
        }
    }

    /// The same source waiting `poll` for fresh reports.
    #[must_use]
    pub fn with_poll(mut self, poll: Poll) -> Self {
        self.poll = poll;
        self
    }

    /// The same source turning TD reports into quotes with `source` (TDX VMs).
    #[must_use]
    pub fn with_td_quotes(mut self, source: Box<dyn TdQuoteSource>) -> Self {
        self.td_quotes = Some(source);
        self
    }

    /// The same source adding DCAP collateral from `source` to its TD quotes (TDX VMs).
    #[must_use]
    pub fn with_tdx_collateral(mut self, source: Box<dyn TdxCollateralSource>) -> Self {
        self.tdx_collateral = Some(source);
        self
    }

    /// Opens the TPM device and checks it holds an Azure SEV-SNP or TDX HCL report;
    /// its evidence carries a vTPM quote over PCR 0..23.
    pub fn open(device: &Path, vcek: Box<dyn VcekSource>) -> Result<Self, EvidenceError> {
        let all: Vec<u8> = (0..PCR_COUNT).collect();
        Self::new(Box::new(TpmDevice::open(device)?), vcek)
            .with_tpm_quote(&all)
            .probed()
    }

    /// The same source for the TEE its HCL report names ([`Self::probe`]).
    pub fn probed(mut self) -> Result<Self, EvidenceError> {
        self.tee = self.probe()?;
        Ok(self)
    }

    /// Checks that NV index 0x01400001 is defined and holds an SEV-SNP or TDX HCL
    /// report; returns the TEE it names.
    pub fn probe(&self) -> Result<TeeKind, EvidenceError> {
        let bytes = self.tpm.nv_read(HCL_REPORT_NV_INDEX)?;
        let hcl = parse_hcl_report_snp_or_tdx(&bytes).map_err(|e| EvidenceError::Unavailable {
            backend: "azure-vtpm".into(),
            reason: format!("NV index {HCL_REPORT_NV_INDEX:#010x}: {e}"),
        })?;
        Ok(report_tee(hcl.report_type))
    }

    /// The current HCL report, as stored (with the index's zero padding).
    pub fn read_hcl_report(&self) -> Result<Vec<u8>, EvidenceError> {
        Ok(self.tpm.nv_read(HCL_REPORT_NV_INDEX)?)
    }

    /// Writes `data` to the user-data index, defining it first when needed.
    fn write_user_data(&self, data: &[u8; USER_DATA_LEN]) -> Result<(), EvidenceError> {
        const SIZE: u16 = USER_DATA_LEN as u16;
        match self.tpm.nv_read_public(HCL_USER_DATA_NV_INDEX)? {
            None => self.tpm.nv_define(HCL_USER_DATA_NV_INDEX, SIZE)?,
            Some(p) if p.data_size < SIZE => {
                return Err(TpmError::NvIndexSize {
                    index: HCL_USER_DATA_NV_INDEX,
                    size: p.data_size,
                    needed: USER_DATA_LEN,
                }
                .into());
            }
            Some(_) => {}
        }
        Ok(self.tpm.nv_write(HCL_USER_DATA_NV_INDEX, data)?)
    }

    /// Reads the report until its claims carry `user_data`.
    fn fresh_report(
        &self,
        user_data: &[u8; USER_DATA_LEN],
    ) -> Result<(Vec<u8>, HclReport), EvidenceError> {
        let mut last = None;
        for attempt in 0..self.poll.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(self.poll.delay);
            }
            let bytes = self.read_hcl_report()?;
            let hcl = parse_hcl_report_snp_or_tdx(&bytes)
                .map_err(|e| unusable(self.tee, e.to_string()))?;
            if report_tee(hcl.report_type) != self.tee {
                return Err(unusable(
                    self.tee,
                    format!(
                        "the paravisor's report is now of type {}, not {}",
                        hcl.report_type, self.tee
                    ),
                ));
            }
            if hcl.claims.user_data.as_deref() == Some(user_data.as_slice()) {
                return Ok((bytes, hcl));
            }
            last = hcl.claims.user_data.map(hex::encode);
        }
        Err(unusable(
            self.tee,
            format!(
                "the paravisor did not refresh the HCL report: its user-data is {} after {} reads",
                last.as_deref().unwrap_or("absent"),
                self.poll.attempts.max(1)
            ),
        ))
    }
}

impl AzureVtpmSource {
    /// Reads `pcrs` and quotes them for `report_data`; checks the quote
    /// against `hcl`'s attestation key as the verifier will.
    fn tpm_quote(
        &self,
        hcl: &HclReport,
        report_data: &[u8; 64],
        pcrs: &[u8],
    ) -> Result<TpmQuote, EvidenceError> {
        let crypto = DefaultCrypto::default();
        let qualifying = tpm_quote_qualifying_data(&crypto, report_data);
        let mut attempt: usize = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let values: Vec<Vec<u8>> = self
                .tpm
                .pcr_read(pcrs)?
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let q = self.tpm.quote(AZURE_AK_HANDLE, &qualifying, pcrs)?;
            match verify_vtpm_quote_tpmt(
                &crypto,
                &hcl.claims,
                &q.attest,
                &q.signature,
                &values,
                &qualifying,
            ) {
                Ok(_) => {
                    return Ok(TpmQuote {
                        attest: q.attest,
                        signature: q.signature,
                        pcrs: values,
                    });
                }
                // A PCR was extended between the read and the quote.
                Err(f)
                    if attempt < QUOTE_ATTEMPTS
                        && f.0
                            .iter()
                            .all(|e| matches!(e, VtpmQuoteError::PcrDigest { .. })) => {}
                Err(f) => return Err(unusable(self.tee, format!("vTPM quote: {f}"))),
            }
        }
    }
}

impl EvidenceSource for AzureVtpmSource {
    fn tee(&self) -> TeeKind {
        self.tee
    }

    fn name(&self) -> &'static str {
        "azure-vtpm"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, EvidenceError> {
        self.collect_hcl(report_data).map(|(cpu, _)| cpu)
    }

    fn collect_measured(
        &self,
        report_data: &[u8; 64],
    ) -> Result<(CpuEvidence, MeasuredBoot), EvidenceError> {
        let (cpu, hcl) = self.collect_hcl(report_data)?;
        let tpm_quote = match &self.quote_pcrs {
            None => None,
            Some(pcrs) => Some(self.tpm_quote(&hcl, report_data, pcrs)?),
        };
        let event_log = match (&tpm_quote, &self.quote_pcrs) {
            (Some(q), Some(pcrs)) => self.event_log_for(pcrs, q),
            _ => None,
        };
        Ok((
            cpu,
            MeasuredBoot {
                event_log,
                tpm_quote,
                ..MeasuredBoot::default()
            },
        ))
    }
}

impl AzureVtpmSource {
    /// The event log to carry beside `quote` (over `pcrs`): the configured log when its
    /// replay equals the quoted values of every PCR it extends, else none (logged).
    fn event_log_for(&self, pcrs: &[u8], quote: &TpmQuote) -> Option<Vec<u8>> {
        let log = self.event_log.as_ref()?;
        let quoted: Vec<(u8, [u8; 32])> = pcrs
            .iter()
            .zip(&quote.pcrs)
            .filter_map(|(i, v)| Some((*i, <[u8; 32]>::try_from(v.as_slice()).ok()?)))
            .collect();
        let checked: Result<_, Vec<String>> = parse_tpm_log(log)
            .map_err(|e| vec![e.to_string()])
            .and_then(|l| {
                l.check_against(&quoted)
                    .map_err(|es| es.iter().map(ToString::to_string).collect())
            });
        match checked {
            Ok(_) => Some(log.clone()),
            Err(reasons) => {
                tracing::warn!(
                    reasons = %reasons.join("; "),
                    "the TPM event log does not replay to the quoted PCRs: this bundle carries the vTPM quote without it"
                );
                None
            }
        }
    }

    /// The HCL evidence for `report_data`, and the HCL report it parsed.
    fn collect_hcl(
        &self,
        report_data: &[u8; 64],
    ) -> Result<(CpuEvidence, HclReport), EvidenceError> {
        let (bytes, hcl) = {
            let _one = self
                .lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.write_user_data(report_data)?;
            self.fresh_report(report_data)?
        };
        // Without the index's zero padding.
        let hcl_report = bytes.get(..hcl.used_len).unwrap_or(&bytes).to_vec();
        let cpu = match self.tee {
            TeeKind::Tdx => self.tdx_evidence(hcl_report, &hcl, report_data)?,
            _ => self.snp_evidence(hcl_report, &hcl, report_data)?,
        };
        Ok((cpu, hcl))
    }

    /// SEV-SNP: the report inside `hcl` binds its claims; the VCEK of its chip.
    fn snp_evidence(
        &self,
        hcl_report: Vec<u8>,
        hcl: &HclReport,
        report_data: &[u8; 64],
    ) -> Result<CpuEvidence, EvidenceError> {
        let snp =
            parse_snp_report(&hcl.snp_report).map_err(|e| unusable(self.tee, e.to_string()))?;
        verify_hcl_binding(&DefaultCrypto::default(), hcl, &snp, report_data)
            .map_err(|es| unusable(self.tee, joined(&es)))?;
        let certs = self.vcek.certificates(&snp)?;
        let vek = certs.vcek.ok_or(EvidenceError::MissingEndorsementKey)?;
        Ok(CpuEvidence::AzureSnpVtpm {
            hcl_report,
            vek,
            intermediate: certs.ask,
            ark: certs.ark,
        })
    }

    /// TDX: the quote of the TD report inside `hcl`, binding its claims; the quote's
    /// collateral.
    fn tdx_evidence(
        &self,
        hcl_report: Vec<u8>,
        hcl: &HclReport,
        report_data: &[u8; 64],
    ) -> Result<CpuEvidence, EvidenceError> {
        let source = self
            .td_quotes
            .as_ref()
            .ok_or_else(|| EvidenceError::Unavailable {
                backend: "azure-vtpm".into(),
                reason:
                    "a TDX VM, but no TD quote source is configured (evidence.azure_tdquote_url)"
                        .into(),
            })?;
        let td_report = hcl
            .snp_report
            .get(..TD_REPORT_LEN)
            .ok_or_else(|| unusable(self.tee, "the HCL report holds no TD report"))?;
        let td_quote = source.td_quote(td_report)?;
        let quote =
            parse_tdx_quote(&td_quote).map_err(|e| unusable(self.tee, format!("TD quote: {e}")))?;
        verify_hcl_report_data_binding(
            &DefaultCrypto::default(),
            hcl,
            &quote.body.report_data,
            report_data,
        )
        .map_err(|es| unusable(self.tee, format!("TD quote: {}", joined(&es))))?;
        let collateral_json = match &self.tdx_collateral {
            Some(c) => Some(c.collateral(&td_quote)?),
            None => None,
        };
        Ok(CpuEvidence::AzureTdxVtpm {
            hcl_report,
            td_quote,
            collateral_json,
        })
    }
}

fn joined<E: std::fmt::Display>(es: &[E]) -> String {
    es.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
