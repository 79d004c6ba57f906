//! Steps 5 and 6 for the CPU evidence. The five kinds (SEV-SNP, SEV-SNP
//! through the Azure vTPM, TDX, TDX through the Azure vTPM, simulated) share one shape, [`TeeEvidence`]:
//! parse, check the REPORT_DATA binding, verify. What each kind's run saw is a
//! [`CpuSeen`], from which the appraisal side reads the claims.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{ReceiptVerifier, ReceiptVerifyError, VerifiedCpu};
use crate::bundle::{CpuEvidence, EvidenceBundle};
use crate::crypto::Crypto;
use crate::evidence::azure_hcl::{HclReport, parse_hcl_report, parse_hcl_report_tdx};
use crate::evidence::simulated::{SimulatedReport, parse_simulated_report};
use crate::evidence::snp::{SnpReport, parse_snp_report};
use crate::evidence::tdx::{TdxQuote, parse_tdx_quote};
use crate::receipt::TeeKind;
use crate::time::UnixTime;
use crate::verdict::Verified;
use crate::verify::azure_hcl::{verify_hcl_binding, verify_hcl_report_data_binding};
use crate::verify::azure_vtpm::{VtpmQuote, tpm_quote_qualifying_data, verify_vtpm_quote_tpmt};
use crate::verify::simulated::verify_simulated;
use crate::verify::snp::{SnpCollateral, SnpEvidence};
use crate::verify::tdx::{TdxCollateral, TdxEvidence};

/// One kind of CPU evidence as a bundle carries it.
trait TeeEvidence {
    /// What the bytes parse into.
    type Parsed;
    /// What the parsed evidence verifies into.
    type Evidence;

    /// Parses the evidence (no cryptography).
    fn parse(&self) -> Result<Self::Parsed, ReceiptVerifyError>;

    /// Step 5: every way the evidence fails to bind `expected`, the REPORT_DATA
    /// derived from the bundle.
    fn report_data<C: Crypto>(
        &self,
        crypto: &C,
        parsed: &Self::Parsed,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError>;

    /// Step 6: verifies the parsed evidence with the receipt verifier's
    /// per-TEE verifiers.
    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &Self::Parsed,
        now: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>>;
}

/// Evidence that parsed, and what it verified into when it did.
pub(crate) struct Checked<P, E> {
    /// The parsed evidence.
    pub(crate) parsed: P,
    /// The verified evidence.
    pub(crate) evidence: Option<E>,
}

/// An Azure HCL report and the SNP report inside it.
pub(crate) struct HclWithSnp {
    /// The HCL report.
    pub(crate) hcl: HclReport,
    /// The SNP report it wraps.
    pub(crate) snp: SnpReport,
    /// The bundle's vTPM quote, when it carries one and it verified.
    pub(crate) tpm_quote: Option<Verified<VtpmQuote>>,
}

/// An Azure HCL report with a TD report inside, and the TD quote made of it.
pub(crate) struct HclWithTdx {
    /// The HCL report.
    pub(crate) hcl: HclReport,
    /// The TD quote (boxed: with the HCL report it would make every [`CpuSeen`] large).
    pub(crate) quote: Box<TdxQuote>,
    /// The bundle's vTPM quote, when it carries one and it verified.
    pub(crate) tpm_quote: Option<Verified<VtpmQuote>>,
}

/// What a run saw of the CPU evidence, by kind.
pub(crate) enum CpuSeen {
    /// SEV-SNP.
    SevSnp(Checked<SnpReport, Box<Verified<SnpEvidence>>>),
    /// SEV-SNP through the Azure paravisor's vTPM.
    AzureSnpVtpm(Checked<HclWithSnp, Box<Verified<SnpEvidence>>>),
    /// TDX.
    Tdx(Checked<TdxQuote, Box<Verified<TdxEvidence>>>),
    /// TDX through the Azure paravisor's vTPM.
    AzureTdxVtpm(Checked<HclWithTdx, Box<Verified<TdxEvidence>>>),
    /// The simulator.
    Simulated(Checked<SimulatedReport, Box<Verified<SimulatedReport>>>),
}

impl CpuSeen {
    /// The verified evidence, when it verified, and the vTPM quote that
    /// verified with it.
    pub(super) fn into_verified(self) -> Option<(VerifiedCpu, Option<Verified<VtpmQuote>>)> {
        Some(match self {
            Self::SevSnp(c) => (VerifiedCpu::SevSnp(c.evidence?), None),
            Self::AzureSnpVtpm(c) => (VerifiedCpu::SevSnp(c.evidence?), c.parsed.tpm_quote),
            Self::Tdx(c) => (VerifiedCpu::Tdx(c.evidence?), None),
            Self::AzureTdxVtpm(c) => (VerifiedCpu::Tdx(c.evidence?), c.parsed.tpm_quote),
            Self::Simulated(c) => (VerifiedCpu::Simulated(c.evidence?), None),
        })
    }
}

impl<C: Crypto> ReceiptVerifier<C> {
    /// Steps 5 and 6 for the bundle's CPU evidence (with the bundle's AMD CRL
    /// for SEV-SNP); failures are recorded. `None` when the evidence does not
    /// parse.
    pub(super) fn verify_cpu(
        &mut self,
        bundle: &EvidenceBundle,
        expected: &[u8; 64],
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> Option<CpuSeen> {
        let crl = bundle.snp_crl();
        if bundle.measured.tpm_quote.is_some()
            && !matches!(
                bundle.cpu,
                CpuEvidence::AzureSnpVtpm { .. } | CpuEvidence::AzureTdxVtpm { .. }
            )
        {
            failures.push(ReceiptVerifyError::TpmQuoteWithoutVtpm(bundle.cpu.tee()));
        }
        match &bundle.cpu {
            CpuEvidence::SevSnp {
                report,
                vek,
                intermediate,
                ark,
            } => {
                let tee = SevSnp {
                    report,
                    collateral: snp_collateral(vek, intermediate, ark, crl),
                };
                self.check(&tee, expected, now, failures)
                    .map(CpuSeen::SevSnp)
            }
            CpuEvidence::AzureSnpVtpm {
                hcl_report,
                vek,
                intermediate,
                ark,
            } => {
                let tee = AzureSnpVtpm {
                    hcl_report,
                    collateral: snp_collateral(vek, intermediate, ark, crl),
                };
                let mut checked = self.check(&tee, expected, now, failures)?;
                checked.parsed.tpm_quote =
                    self.vtpm_quote(bundle, &checked.parsed.hcl, expected, failures);
                Some(CpuSeen::AzureSnpVtpm(checked))
            }
            CpuEvidence::AzureTdxVtpm {
                hcl_report,
                td_quote,
                collateral_json,
            } => {
                let tee = AzureTdxVtpm {
                    hcl_report,
                    quote: Tdx {
                        quote: td_quote,
                        collateral_json: collateral_json.as_deref(),
                    },
                };
                let mut checked = self.check(&tee, expected, now, failures)?;
                checked.parsed.tpm_quote =
                    self.vtpm_quote(bundle, &checked.parsed.hcl, expected, failures);
                Some(CpuSeen::AzureTdxVtpm(checked))
            }
            CpuEvidence::Tdx {
                quote,
                collateral_json,
            } => {
                let tee = Tdx {
                    quote,
                    collateral_json: collateral_json.as_deref(),
                };
                self.check(&tee, expected, now, failures).map(CpuSeen::Tdx)
            }
            CpuEvidence::Simulated { report } => {
                let tee = Simulated { report };
                self.check(&tee, expected, now, failures)
                    .map(CpuSeen::Simulated)
            }
        }
    }

    /// The bundle's vTPM quote, verified against the attestation key in `hcl`'s
    /// runtime claims with the qualifying data derived from `expected`; `None`
    /// when it carries none or the quote failed (recorded).
    fn vtpm_quote(
        &self,
        bundle: &EvidenceBundle,
        hcl: &HclReport,
        expected: &[u8; 64],
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> Option<Verified<VtpmQuote>> {
        let q = bundle.measured.tpm_quote.as_ref()?;
        let crypto = self.snp.crypto();
        let qualifying = tpm_quote_qualifying_data(crypto, expected);
        verify_vtpm_quote_tpmt(
            crypto,
            &hcl.claims,
            &q.attest,
            &q.signature,
            &q.pcrs,
            &qualifying,
        )
        .map_err(|f| failures.extend(f.0.into_iter().map(ReceiptVerifyError::VtpmQuote)))
        .ok()
    }

    /// The shared shape: parse (stop when it fails), step 5, step 6.
    fn check<T: TeeEvidence>(
        &mut self,
        tee: &T,
        expected: &[u8; 64],
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> Option<Checked<T::Parsed, T::Evidence>> {
        let parsed = match tee.parse() {
            Ok(p) => p,
            Err(e) => {
                failures.push(e);
                return None;
            }
        };
        // Step 5
        failures.extend(tee.report_data(self.snp.crypto(), &parsed, expected));
        // Step 6
        let evidence = match tee.verify(self, &parsed, now) {
            Ok(ev) => Some(ev),
            Err(es) => {
                failures.extend(es);
                None
            }
        };
        Some(Checked { parsed, evidence })
    }
}

fn snp_collateral<'a>(
    vek: &'a [u8],
    intermediate: &'a Option<Vec<u8>>,
    ark: &'a Option<Vec<u8>>,
    crl: Option<&'a [u8]>,
) -> SnpCollateral<'a> {
    SnpCollateral {
        vek,
        intermediate: intermediate.as_deref(),
        ark: ark.as_deref(),
        crl,
    }
}

/// The REPORT_DATA `found` in the evidence against the `expected` binding.
fn compare(tee: TeeKind, found: &[u8; 64], expected: &[u8; 64]) -> Vec<ReceiptVerifyError> {
    if found == expected {
        return Vec::new();
    }
    alloc::vec![ReceiptVerifyError::ReportDataMismatch {
        tee,
        expected: hex::encode(expected),
        found: hex::encode(found),
    }]
}

/// An SEV-SNP report through the SNP verifier (also the one inside an Azure
/// HCL report).
fn verify_snp<C: Crypto>(
    verifier: &mut ReceiptVerifier<C>,
    report: &SnpReport,
    collateral: &SnpCollateral<'_>,
    now: UnixTime,
) -> Result<Box<Verified<SnpEvidence>>, Vec<ReceiptVerifyError>> {
    verifier
        .snp
        .verify(report, collateral, now)
        .map(Box::new)
        .map_err(|f| f.0.into_iter().map(ReceiptVerifyError::Snp).collect())
}

/// An SEV-SNP report with its certificates.
struct SevSnp<'a> {
    report: &'a [u8],
    collateral: SnpCollateral<'a>,
}

impl TeeEvidence for SevSnp<'_> {
    type Parsed = SnpReport;
    type Evidence = Box<Verified<SnpEvidence>>;

    fn parse(&self) -> Result<SnpReport, ReceiptVerifyError> {
        parse_snp_report(self.report).map_err(ReceiptVerifyError::SnpParse)
    }

    fn report_data<C: Crypto>(
        &self,
        _: &C,
        parsed: &SnpReport,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError> {
        compare(TeeKind::SevSnp, &parsed.report_data, expected)
    }

    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &SnpReport,
        now: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>> {
        verify_snp(verifier, parsed, &self.collateral, now)
    }
}

/// An Azure HCL report with the VCEK chain of the SNP report inside it. The
/// binding is in the HCL runtime claims ([`crate::verify::azure_hcl`]).
struct AzureSnpVtpm<'a> {
    hcl_report: &'a [u8],
    collateral: SnpCollateral<'a>,
}

impl TeeEvidence for AzureSnpVtpm<'_> {
    type Parsed = HclWithSnp;
    type Evidence = Box<Verified<SnpEvidence>>;

    fn parse(&self) -> Result<HclWithSnp, ReceiptVerifyError> {
        let hcl = parse_hcl_report(self.hcl_report).map_err(ReceiptVerifyError::AzureHclParse)?;
        let snp = parse_snp_report(&hcl.snp_report).map_err(ReceiptVerifyError::SnpParse)?;
        Ok(HclWithSnp {
            hcl,
            snp,
            tpm_quote: None,
        })
    }

    fn report_data<C: Crypto>(
        &self,
        crypto: &C,
        parsed: &HclWithSnp,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError> {
        match verify_hcl_binding(crypto, &parsed.hcl, &parsed.snp, expected) {
            Ok(()) => Vec::new(),
            Err(es) => es.into_iter().map(ReceiptVerifyError::AzureHcl).collect(),
        }
    }

    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &HclWithSnp,
        now: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>> {
        verify_snp(verifier, &parsed.snp, &self.collateral, now)
    }
}

/// A TDX quote with its bundled DCAP collateral (JSON).
struct Tdx<'a> {
    quote: &'a [u8],
    collateral_json: Option<&'a [u8]>,
}

impl TeeEvidence for Tdx<'_> {
    type Parsed = TdxQuote;
    type Evidence = Box<Verified<TdxEvidence>>;

    fn parse(&self) -> Result<TdxQuote, ReceiptVerifyError> {
        parse_tdx_quote(self.quote).map_err(ReceiptVerifyError::TdxParse)
    }

    fn report_data<C: Crypto>(
        &self,
        _: &C,
        parsed: &TdxQuote,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError> {
        compare(TeeKind::Tdx, &parsed.body.report_data, expected)
    }

    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &TdxQuote,
        now: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>> {
        self.verify_quote(verifier, parsed, now)
    }
}

impl Tdx<'_> {
    /// The quote with its bundled collateral through the TDX verifier.
    fn verify_quote<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &TdxQuote,
        now: UnixTime,
    ) -> Result<Box<Verified<TdxEvidence>>, Vec<ReceiptVerifyError>> {
        let collateral = match self.collateral_json.map(TdxCollateral::from_json) {
            None => return Err(alloc::vec![ReceiptVerifyError::TdxCollateralMissing]),
            Some(Err(e)) => return Err(alloc::vec![ReceiptVerifyError::TdxCollateral(e)]),
            Some(Ok(c)) => c,
        };
        verifier
            .tdx
            .verify(parsed, &collateral, now)
            .map(Box::new)
            .map_err(|f| f.0.into_iter().map(ReceiptVerifyError::Tdx).collect())
    }
}

/// An Azure HCL report with a TD report inside, and the TD quote Azure made of
/// that TD report with its collateral. The binding is in the HCL runtime claims,
/// which the quote's REPORT_DATA commits to ([`crate::verify::azure_hcl`]).
struct AzureTdxVtpm<'a> {
    hcl_report: &'a [u8],
    quote: Tdx<'a>,
}

impl TeeEvidence for AzureTdxVtpm<'_> {
    type Parsed = HclWithTdx;
    type Evidence = Box<Verified<TdxEvidence>>;

    fn parse(&self) -> Result<HclWithTdx, ReceiptVerifyError> {
        let hcl =
            parse_hcl_report_tdx(self.hcl_report).map_err(ReceiptVerifyError::AzureHclParse)?;
        let quote = Box::new(self.quote.parse()?);
        Ok(HclWithTdx {
            hcl,
            quote,
            tpm_quote: None,
        })
    }

    fn report_data<C: Crypto>(
        &self,
        crypto: &C,
        parsed: &HclWithTdx,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError> {
        match verify_hcl_report_data_binding(
            crypto,
            &parsed.hcl,
            &parsed.quote.body.report_data,
            expected,
        ) {
            Ok(()) => Vec::new(),
            Err(es) => es.into_iter().map(ReceiptVerifyError::AzureHcl).collect(),
        }
    }

    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &HclWithTdx,
        now: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>> {
        self.quote.verify_quote(verifier, &parsed.quote, now)
    }
}

/// The simulator's self-signed report.
struct Simulated<'a> {
    report: &'a [u8],
}

impl TeeEvidence for Simulated<'_> {
    type Parsed = SimulatedReport;
    type Evidence = Box<Verified<SimulatedReport>>;

    fn parse(&self) -> Result<SimulatedReport, ReceiptVerifyError> {
        parse_simulated_report(self.report).map_err(ReceiptVerifyError::SimulatedParse)
    }

    fn report_data<C: Crypto>(
        &self,
        _: &C,
        parsed: &SimulatedReport,
        expected: &[u8; 64],
    ) -> Vec<ReceiptVerifyError> {
        compare(TeeKind::Simulated, &parsed.body.report_data, expected)
    }

    fn verify<C: Crypto>(
        &self,
        verifier: &mut ReceiptVerifier<C>,
        parsed: &SimulatedReport,
        _: UnixTime,
    ) -> Result<Self::Evidence, Vec<ReceiptVerifyError>> {
        verify_simulated(verifier.snp.crypto(), parsed.clone())
            .map(Box::new)
            .map_err(|e| alloc::vec![ReceiptVerifyError::Simulated(e)])
    }
}
