//! Whole-receipt verification: the signature, the key's binding to the
//! evidence, and the evidence itself. No policy: step 7 belongs to the
//! appraisal side (`evaluate_receipt`), and so do the claims a buyer reads,
//! built from what a run here saw (`Run`).
//!
//! Steps (mirrored by `// Step N` below):
//! 1. Decode the signed receipt and its body (structure: version, tier, times,
//!    evidence reference) and verify the ed25519 signature under `provider`.
//! 2. Receipts without evidence (tiers 1 and 2) stop here; a tier-3 receipt
//!    always references evidence.
//! 3. Decode the evidence bundle (canonical SCALE) and bind it to the receipt:
//!    its digest is the receipt's `evidence.digest`, its TEE the receipt's, its
//!    agent key the receipt's `provider`. In fresh-quote mode its nonce is
//!    [`binding::fresh_nonce`] of the body.
//! 4. Bind the GPU evidence: each entry's nonce is [`binding::gpu_nonce`] of
//!    the agent key and bundle nonce (the nonce inside each report is checked
//!    against it in step 6).
//! 5. Bind the CPU evidence: its REPORT_DATA is [`binding::report_data`] of the
//!    agent key, the GPU evidence digest and the nonce. Every kind of CPU
//!    evidence goes through steps 5 and 6 in one shape (`cpu::TeeEvidence`:
//!    parse, report data, verify).
//!    For Azure vTPM evidence the SNP report's REPORT_DATA commits to the HCL
//!    runtime claims instead, and the claims' `"user-data"` must be that value
//!    ([`crate::verify::azure_hcl`]).
//! 6. Verify the CPU evidence (SEV-SNP chain to the pinned AMD roots, also for
//!    the SNP report inside an Azure HCL report; TDX quote
//!    with the bundled DCAP collateral to the pinned Intel root; simulated
//!    self-signature) and the GPU evidence: every GPU report through the NVIDIA
//!    verifier (device chain to the pinned root, FWID, the derived nonce,
//!    signature, no two reports from one device) with the bundle's RIMs and OCSP
//!    responses (version 2; none in version 1).
//!    Measured boot (bundle version 5, TDX): the firmware event log and the
//!    agent's RTMR3 events replay to the quote's registers; on Azure the
//!    vTPM's event log replays to the verified vTPM quote's PCRs
//!    ([`crate::verify::measured`]).
//! 7. Appraise (`policy::evaluate_receipt`): the CPU evidence kind's policy table,
//!    the `[gpu]` table for every GPU, and simulated evidence only with
//!    `allow_simulated`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::binding;
use crate::bundle::{BundleError, EvidenceBundle, GpuEvidence};
use crate::crypto::Crypto;
use crate::evidence::azure_hcl::HclParseError;
use crate::evidence::nvgpu::{
    NvGpuParseError, NvGpuReport, PemError, parse_nvgpu_report, split_pem_chain,
};
use crate::evidence::simulated::{SimulatedParseError, SimulatedReport};
use crate::evidence::snp::SnpParseError;
use crate::evidence::tdx::TdxParseError;
use crate::receipt::{EvidenceMode, ReceiptBody, ReceiptError, SignedReceipt, TeeKind};
use crate::time::UnixTime;
use crate::verdict::{Failures, Verified};
use crate::verify::azure_hcl::HclBindingError;
use crate::verify::azure_vtpm::{VtpmQuote, VtpmQuoteError};
use crate::verify::measured::{
    MeasuredBootError, MeasuredBootEvidence, verify_measured_tdx, verify_measured_vtpm,
};
use crate::verify::nvgpu::{GpuInput, NvGpuEvidence, NvGpuVerifier, NvGpuVerifyError};
use crate::verify::simulated::SimulatedVerifyError;
use crate::verify::snp::{SnpEvidence, SnpVerifier, SnpVerifyError};
use crate::verify::tdx::{CollateralError, TdxEvidence, TdxVerifier, TdxVerifyError};
use crate::verify::x509::X509Error;

mod cpu;
pub(crate) use cpu::CpuSeen;

/// Why a receipt or its evidence failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptVerifyError {
    /// The receipt is malformed or its signature does not verify.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// The receipt references evidence but no bundle was given.
    #[error("receipt is bound to {mode} evidence, but no evidence bundle was given")]
    BundleMissing {
        /// The receipt's evidence mode.
        mode: &'static str,
    },
    /// A bundle was given for a receipt that references none.
    #[error("receipt references no evidence, but an evidence bundle was given")]
    UnexpectedBundle,
    /// The bundle is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle is not the one the receipt references.
    #[error("evidence bundle digest {bundle} is not the receipt's evidence digest {receipt}")]
    EvidenceDigestMismatch {
        /// In the receipt.
        receipt: String,
        /// Of the bundle.
        bundle: String,
    },
    /// The bundle's TEE differs from the receipt's.
    #[error("receipt says {receipt} evidence, the bundle carries {bundle}")]
    TeeMismatch {
        /// In the receipt.
        receipt: TeeKind,
        /// In the bundle.
        bundle: TeeKind,
    },
    /// The evidence binds another key than the receipt's signer.
    #[error("evidence binds agent key {bundle}, but the receipt is signed by {receipt}")]
    AgentKeyMismatch {
        /// The receipt's provider.
        receipt: String,
        /// The bundle's agent key.
        bundle: String,
    },
    /// Fresh-quote evidence whose nonce is not derived from this receipt.
    #[error("fresh-quote evidence nonce {bundle} is not the receipt's derived nonce {expected}")]
    FreshNonceMismatch {
        /// Derived from the body.
        expected: String,
        /// In the bundle.
        bundle: String,
    },
    /// A GPU report's nonce is not the derived one.
    #[error("GPU {uuid}: nonce {found} is not the derived GPU nonce {expected}")]
    GpuNonceMismatch {
        /// The GPU.
        uuid: String,
        /// Derived from the agent key and bundle nonce.
        expected: String,
        /// In the bundle entry or the report.
        found: String,
    },
    /// The CPU evidence's REPORT_DATA is not the derived one.
    #[error("{tee} REPORT_DATA {found} is not the derived binding {expected}")]
    ReportDataMismatch {
        /// The TEE.
        tee: TeeKind,
        /// Derived from key, GPU digest and nonce.
        expected: String,
        /// In the evidence.
        found: String,
    },
    /// Evidence of a kind this build cannot verify; never accepted.
    #[error("{evidence} evidence is not supported by this build of the verifier")]
    NotSupported {
        /// Which evidence.
        evidence: &'static str,
    },
    /// A GPU report does not parse.
    #[error("GPU {index} ({uuid}) report: {source}")]
    GpuParse {
        /// Its position in the bundle.
        index: usize,
        /// Its UUID.
        uuid: String,
        /// Why.
        source: NvGpuParseError,
    },
    /// A GPU's certificate chain is not PEM.
    #[error("GPU {index} ({uuid}) certificate chain: {source}")]
    GpuCertChain {
        /// Its position in the bundle.
        index: usize,
        /// Its UUID.
        uuid: String,
        /// Why.
        source: PemError,
    },
    /// A GPU report failed verification.
    #[error("GPU {index} ({uuid}): {source}")]
    Gpu {
        /// Its position in the bundle.
        index: usize,
        /// Its UUID.
        uuid: String,
        /// Why.
        source: NvGpuVerifyError,
    },
    /// The SNP report does not parse.
    #[error("SEV-SNP report: {0}")]
    SnpParse(SnpParseError),
    /// The SNP report failed verification.
    #[error("SEV-SNP: {0}")]
    Snp(SnpVerifyError),
    /// The Azure HCL report does not parse.
    #[error("Azure HCL report: {0}")]
    AzureHclParse(HclParseError),
    /// The Azure HCL report does not bind the expected data.
    #[error("Azure HCL report: {0}")]
    AzureHcl(HclBindingError),
    /// The bundle's vTPM quote does not verify.
    #[error("vTPM quote: {0}")]
    VtpmQuote(VtpmQuoteError),
    /// A vTPM quote with CPU evidence that has no vTPM (only Azure's does).
    #[error("evidence bundle carries a vTPM quote but {0} evidence without a vTPM")]
    TpmQuoteWithoutVtpm(TeeKind),
    /// The TDX quote does not parse.
    #[error("TDX quote: {0}")]
    TdxParse(TdxParseError),
    /// TDX evidence without DCAP collateral in the bundle.
    #[error("TDX evidence without collateral: the bundle must carry the quote's DCAP collateral")]
    TdxCollateralMissing,
    /// The bundled TDX collateral does not parse.
    #[error("TDX collateral: {0}")]
    TdxCollateral(CollateralError),
    /// The TDX quote failed verification.
    #[error("TDX: {0}")]
    Tdx(TdxVerifyError),
    /// The simulated report does not parse.
    #[error(transparent)]
    SimulatedParse(SimulatedParseError),
    /// The simulated report's signature is bad.
    #[error(transparent)]
    Simulated(SimulatedVerifyError),
    /// The measured-boot evidence (event log, agent events) is refused.
    #[error(transparent)]
    MeasuredBoot(MeasuredBootError),
    /// Verification stopped without a verdict (a defect; never an acceptance).
    #[error("verification did not complete")]
    Incomplete,
}

/// CPU evidence that verified.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum VerifiedCpu {
    /// An SEV-SNP report, chain and binding verified (directly, or inside an
    /// Azure HCL report whose runtime claims carry the binding; the bundle's
    /// CPU evidence tells which).
    SevSnp(Box<Verified<SnpEvidence>>),
    /// A TDX quote, collateral and binding verified.
    Tdx(Box<Verified<TdxEvidence>>),
    /// A simulated report whose self-signature verified.
    Simulated(Box<Verified<SimulatedReport>>),
}

/// A bundle whose bindings and evidence verified.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    /// The bundle.
    pub bundle: EvidenceBundle,
    /// Its digest.
    pub digest: [u8; 32],
    /// The verified CPU evidence.
    pub cpu: VerifiedCpu,
    /// The verified GPU evidence, in bundle order.
    pub gpus: Vec<Verified<NvGpuEvidence>>,
    /// The bundle's vTPM quote, verified against the HCL report's attestation
    /// key (Azure evidence that carries one).
    pub tpm_quote: Option<Verified<VtpmQuote>>,
    /// The measured-boot evidence whose replay equals the quote's registers,
    /// when the bundle carries an event log or agent events.
    pub measured: Option<Verified<MeasuredBootEvidence>>,
}

/// A receipt whose signature, bindings and evidence verified.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt {
    /// The body.
    pub body: ReceiptBody,
    /// Its digest (what was signed).
    pub digest: [u8; 32],
    /// The evidence, for receipts that reference some.
    pub evidence: Option<VerifiedBundle>,
}

/// What one run saw (`seen`; `None` when its input did not decode) and every
/// failure, in the order found. The appraisal side reads the claims from what
/// was seen; [`Run::into_result`] is the verification result.
pub(crate) struct Run<S> {
    /// Every failure.
    pub(crate) failures: Vec<ReceiptVerifyError>,
    /// What the run saw.
    pub(crate) seen: Option<S>,
}

/// A run over a receipt (and its bundle).
pub(crate) type ReceiptRun = Run<ReceiptSeen>;
/// A run over an evidence bundle.
pub(crate) type BundleRun = Run<BundleSeen>;

/// What a run saw, and what it is once verified.
pub(crate) trait Seen {
    /// The verified value.
    type Verified;
    /// The verified value, when everything it needs verified.
    fn into_verified(self) -> Option<Self::Verified>;
}

/// A decoded receipt and what its evidence run saw.
pub(crate) struct ReceiptSeen {
    /// The body.
    pub(crate) body: ReceiptBody,
    /// Its digest.
    pub(crate) digest: [u8; 32],
    /// The bundle, when the receipt references evidence and a bundle that
    /// decodes was given.
    pub(crate) evidence: Option<BundleSeen>,
}

/// A decoded bundle, the values derived from it, and what its evidence parsed
/// and verified into.
pub(crate) struct BundleSeen {
    /// The bundle.
    pub(crate) bundle: EvidenceBundle,
    /// Its digest.
    pub(crate) digest: [u8; 32],
    /// Digest of its GPU evidence.
    pub(crate) gpu_digest: [u8; 32],
    /// The REPORT_DATA its CPU evidence must carry.
    pub(crate) expected_report_data: [u8; 64],
    /// The CPU evidence, when it parsed.
    pub(crate) cpu: Option<CpuSeen>,
    /// Every GPU entry, in bundle order.
    pub(crate) gpus: Vec<GpuSeen>,
    /// The measured-boot evidence, when it verified.
    pub(crate) measured: Option<Verified<MeasuredBootEvidence>>,
    /// The verification time.
    pub(crate) now: UnixTime,
}

/// One GPU entry: its report when it parsed, its evidence when it verified.
pub(crate) struct GpuSeen {
    /// The parsed report.
    pub(crate) report: Option<NvGpuReport>,
    /// The verified evidence.
    pub(crate) verified: Option<Verified<NvGpuEvidence>>,
}

impl Seen for ReceiptSeen {
    type Verified = VerifiedReceipt;

    fn into_verified(self) -> Option<VerifiedReceipt> {
        let evidence = match self.evidence {
            // A run without failures and without a bundle is a receipt that
            // references no evidence (every other case records a failure).
            None => None,
            Some(b) => Some(b.into_verified()?),
        };
        Some(VerifiedReceipt {
            body: self.body,
            digest: self.digest,
            evidence,
        })
    }
}

impl Seen for BundleSeen {
    type Verified = VerifiedBundle;

    fn into_verified(self) -> Option<VerifiedBundle> {
        let m = &self.bundle.measured;
        if (m.event_log.is_some() || !m.agent_events.is_empty()) && self.measured.is_none() {
            return None;
        }
        let (cpu, tpm_quote) = self.cpu?.into_verified()?;
        Some(VerifiedBundle {
            measured: self.measured,
            cpu,
            tpm_quote,
            gpus: self
                .gpus
                .into_iter()
                .map(|g| g.verified)
                .collect::<Option<_>>()?,
            bundle: self.bundle,
            digest: self.digest,
        })
    }
}

impl<S: Seen> Run<S> {
    fn failed(e: ReceiptVerifyError) -> Self {
        Self {
            failures: alloc::vec![e],
            seen: None,
        }
    }

    /// The verified value when nothing failed, otherwise every failure.
    pub(crate) fn into_result(self) -> Result<Verified<S::Verified>, Failures<ReceiptVerifyError>> {
        match self.seen.and_then(S::into_verified) {
            Some(v) if self.failures.is_empty() => Ok(Verified::new(v)),
            _ => Err(Failures(nonempty(self.failures))),
        }
    }
}

/// Verifies receipts and evidence bundles, caching verified certificate chains
/// (and RIMs).
pub struct ReceiptVerifier<C: Crypto> {
    snp: SnpVerifier<C>,
    tdx: TdxVerifier<C>,
    gpu: NvGpuVerifier<C>,
}

impl<C: Crypto> ReceiptVerifier<C> {
    /// A verifier over the pinned vendor roots.
    pub fn new(crypto: C) -> Result<Self, X509Error>
    where
        C: Clone,
    {
        Ok(Self {
            snp: SnpVerifier::new(crypto.clone())?,
            tdx: TdxVerifier::new(crypto.clone())?,
            gpu: NvGpuVerifier::new(crypto)?,
        })
    }

    /// A verifier using existing SEV-SNP, TDX and NVIDIA GPU verifiers (their
    /// roots and caches).
    pub fn with_verifiers(snp: SnpVerifier<C>, tdx: TdxVerifier<C>, gpu: NvGpuVerifier<C>) -> Self {
        Self { snp, tdx, gpu }
    }

    /// The crypto backend.
    pub fn crypto(&self) -> &C {
        self.snp.crypto()
    }

    /// Verifies a signed receipt (`SCALE(SignedReceipt)`) and, when it references
    /// evidence, the bundle (`SCALE(EvidenceBundle)`) at time `now`. No policy.
    pub fn verify(
        &mut self,
        receipt: &[u8],
        bundle: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Verified<VerifiedReceipt>, Failures<ReceiptVerifyError>> {
        self.run_receipt(receipt, bundle, now).into_result()
    }

    /// Verifies an evidence bundle on its own (attested-key registration, or the
    /// answer to a challenge): its internal bindings and its evidence. With
    /// `expected_key` / `expected_nonce`, the bundle must bind that key / nonce.
    pub fn verify_bundle(
        &mut self,
        bundle: &[u8],
        expected_key: Option<&[u8; 32]>,
        expected_nonce: Option<&[u8; 32]>,
        now: UnixTime,
    ) -> Result<Verified<VerifiedBundle>, Failures<ReceiptVerifyError>> {
        self.run_bundle(bundle, expected_key, expected_nonce, now)
            .into_result()
    }

    /// Steps 1 to 6 over a receipt and its bundle, keeping what was seen.
    pub(crate) fn run_receipt(
        &mut self,
        receipt: &[u8],
        bundle: Option<&[u8]>,
        now: UnixTime,
    ) -> ReceiptRun {
        let mut failures = Vec::new();
        // Step 1
        let signed = match SignedReceipt::decode_bytes(receipt) {
            Ok(s) => s,
            Err(e) => return ReceiptRun::failed(e.into()),
        };
        let body = match signed.body() {
            Ok(b) => b,
            Err(e) => return ReceiptRun::failed(e.into()),
        };
        let crypto = self.snp.crypto();
        let digest = body.digest(crypto);
        if let Err(e) = signed.verify(crypto) {
            failures.push(e.into());
        }
        let mode = body.evidence.mode;
        // Step 2
        let bundle = match (mode, bundle) {
            (EvidenceMode::None, None) => None,
            (EvidenceMode::None, Some(_)) => {
                failures.push(ReceiptVerifyError::UnexpectedBundle);
                None
            }
            (_, None) => {
                failures.push(ReceiptVerifyError::BundleMissing { mode: mode.name() });
                None
            }
            (_, Some(b)) => Some(b),
        };
        let Some(bundle) = bundle else {
            return ReceiptRun {
                failures,
                seen: Some(ReceiptSeen {
                    body,
                    digest,
                    evidence: None,
                }),
            };
        };
        // Step 3 (receipt side): the key and, in fresh-quote mode, the nonce.
        let expected_nonce = (mode == EvidenceMode::FreshQuote)
            .then(|| binding::fresh_nonce(self.snp.crypto(), &body));
        let ev = self.run_bundle(bundle, None, None, now);
        failures.extend(ev.failures);
        if let Some(seen) = &ev.seen {
            let b = &seen.bundle;
            if seen.digest != body.evidence.digest {
                failures.push(ReceiptVerifyError::EvidenceDigestMismatch {
                    receipt: hex::encode(body.evidence.digest),
                    bundle: hex::encode(seen.digest),
                });
            }
            if b.agent_key != body.provider {
                failures.push(ReceiptVerifyError::AgentKeyMismatch {
                    receipt: hex::encode(body.provider),
                    bundle: hex::encode(b.agent_key),
                });
            }
            if b.tee != body.evidence.tee {
                failures.push(ReceiptVerifyError::TeeMismatch {
                    receipt: body.evidence.tee,
                    bundle: b.tee,
                });
            }
            if let Some(n) = expected_nonce
                && b.nonce != n
            {
                failures.push(ReceiptVerifyError::FreshNonceMismatch {
                    expected: hex::encode(n),
                    bundle: hex::encode(b.nonce),
                });
            }
        }
        ReceiptRun {
            failures,
            seen: Some(ReceiptSeen {
                body,
                digest,
                evidence: ev.seen,
            }),
        }
    }

    /// Steps 3 (bundle side) to 6 over a bundle, keeping what was seen.
    pub(crate) fn run_bundle(
        &mut self,
        bytes: &[u8],
        expected_key: Option<&[u8; 32]>,
        expected_nonce: Option<&[u8; 32]>,
        now: UnixTime,
    ) -> BundleRun {
        // Step 3 (bundle side)
        let bundle = match EvidenceBundle::from_bytes(bytes) {
            Ok(b) => b,
            Err(e) => return BundleRun::failed(e.into()),
        };
        let crypto = self.snp.crypto();
        let digest = crate::bundle::bundle_digest(crypto, bytes);
        let gpu_digest = binding::gpu_evidence_digest(crypto, &bundle.gpus);
        let keys = binding::Binding::of(&bundle);
        let expected_rd = keys.report_data(crypto, &gpu_digest, &bundle.nonce);
        let gpu_nonce = keys.gpu_nonce(crypto, &bundle.nonce);
        let mut failures = Vec::new();
        if let Some(k) = expected_key
            && k != &bundle.agent_key
        {
            failures.push(ReceiptVerifyError::AgentKeyMismatch {
                receipt: hex::encode(k),
                bundle: hex::encode(bundle.agent_key),
            });
        }
        if let Some(n) = expected_nonce
            && n != &bundle.nonce
        {
            failures.push(ReceiptVerifyError::FreshNonceMismatch {
                expected: hex::encode(n),
                bundle: hex::encode(bundle.nonce),
            });
        }
        // Step 4
        for g in &bundle.gpus {
            if g.nonce != gpu_nonce {
                failures.push(ReceiptVerifyError::GpuNonceMismatch {
                    uuid: g.uuid.clone(),
                    expected: hex::encode(gpu_nonce),
                    found: hex::encode(g.nonce),
                });
            }
        }
        // Steps 5 and 6
        let cpu = self.verify_cpu(&bundle, &expected_rd, now, &mut failures);
        let gpus = self.verify_gpus(&bundle, &gpu_nonce, now, &mut failures);
        let measured = verify_measured(&bundle, cpu.as_ref(), &mut failures);
        BundleRun {
            failures,
            seen: Some(BundleSeen {
                bundle,
                digest,
                gpu_digest,
                expected_report_data: expected_rd,
                cpu,
                gpus,
                measured,
                now,
            }),
        }
    }

    /// Step 6 for the GPUs: every report through the NVIDIA verifier, with the
    /// bundle's RIMs and OCSP responses and the derived nonce. Returns each
    /// entry's parsed report and, where it verified, its evidence.
    fn verify_gpus(
        &mut self,
        bundle: &EvidenceBundle,
        gpu_nonce: &[u8; 32],
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> Vec<GpuSeen> {
        let mut seen = Vec::with_capacity(bundle.gpus.len());
        let mut chains = Vec::with_capacity(bundle.gpus.len());
        for (index, g) in bundle.gpus.iter().enumerate() {
            let (report, chain) = prepare_gpu(index, g, failures);
            seen.push(GpuSeen {
                report,
                verified: None,
            });
            chains.push(chain);
        }
        if bundle.gpus.is_empty() {
            return seen;
        }
        // The entries whose report and chain both parsed, by position.
        let (indices, inputs): (Vec<usize>, Vec<GpuInput<'_>>) = seen
            .iter()
            .zip(&chains)
            .enumerate()
            .filter_map(|(index, (s, chain))| {
                let input = GpuInput {
                    report: s.report.as_ref()?,
                    cert_chain: chain.as_deref()?,
                    nonce: *gpu_nonce,
                };
                Some((index, input))
            })
            .unzip();
        let results = self.gpu.verify_bundle(
            &inputs,
            &bundle.gpu_collateral.rims,
            &bundle.gpu_collateral.ocsp,
            now,
        );
        for (index, result) in indices.into_iter().zip(results) {
            match result {
                Ok(ev) => {
                    if let Some(s) = seen.get_mut(index) {
                        s.verified = Some(ev);
                    }
                }
                Err(f) => {
                    let uuid = bundle
                        .gpus
                        .get(index)
                        .map(|g| g.uuid.clone())
                        .unwrap_or_default();
                    failures.extend(f.0.into_iter().map(|source| ReceiptVerifyError::Gpu {
                        index,
                        uuid: uuid.clone(),
                        source,
                    }));
                }
            }
        }
        seen
    }
}

/// Step 6 for measured boot: the bundle's event log and agent events against
/// the registers of its CPU evidence; failures are recorded. `None` when the
/// bundle carries neither, or they were refused.
fn verify_measured(
    bundle: &EvidenceBundle,
    cpu: Option<&CpuSeen>,
    failures: &mut Vec<ReceiptVerifyError>,
) -> Option<Verified<MeasuredBootEvidence>> {
    let m = &bundle.measured;
    let what = if m.event_log.is_some() {
        "an event log"
    } else if !m.agent_events.is_empty() {
        "agent events"
    } else {
        return None;
    };
    let cpu = cpu?;
    let vtpm_quote = match cpu {
        CpuSeen::AzureSnpVtpm(c) => Some(c.parsed.tpm_quote.as_ref()),
        CpuSeen::AzureTdxVtpm(c) => Some(c.parsed.tpm_quote.as_ref()),
        _ => None,
    };
    let rtmrs = match (cpu, vtpm_quote) {
        (CpuSeen::Tdx(c), _) => &c.parsed.body.rtmr,
        // Azure: the log is the vTPM's, replayed against the quote's PCRs. Without a
        // quote there is nothing to replay it against; a quote that did not verify
        // has its failures recorded already. (The TD of an Azure TDX VM is the
        // paravisor's: its RTMRs are not the guest's to extend or log.)
        (_, Some(quote)) if m.event_log.is_some() => {
            if m.tpm_quote.is_none() {
                failures.push(ReceiptVerifyError::MeasuredBoot(
                    MeasuredBootError::NoTpmQuote,
                ));
                return None;
            }
            return match verify_measured_vtpm(m, quote?.get(), bundle.tee)? {
                Ok(v) => Some(v),
                Err(errors) => {
                    failures.extend(errors.into_iter().map(ReceiptVerifyError::MeasuredBoot));
                    None
                }
            };
        }
        _ => {
            failures.push(ReceiptVerifyError::MeasuredBoot(
                MeasuredBootError::NoRegisters {
                    what,
                    tee: bundle.tee,
                },
            ));
            return None;
        }
    };
    match verify_measured_tdx(m, rtmrs)? {
        Ok(v) => Some(v),
        Err(errors) => {
            failures.extend(errors.into_iter().map(ReceiptVerifyError::MeasuredBoot));
            None
        }
    }
}

/// Parses a GPU entry's report and chain; failures are recorded.
fn prepare_gpu(
    index: usize,
    g: &GpuEvidence,
    failures: &mut Vec<ReceiptVerifyError>,
) -> (Option<NvGpuReport>, Option<Vec<Vec<u8>>>) {
    let report = parse_nvgpu_report(&g.report)
        .map_err(|source| {
            failures.push(ReceiptVerifyError::GpuParse {
                index,
                uuid: g.uuid.clone(),
                source,
            });
        })
        .ok();
    let chain = split_pem_chain(&g.cert_chain_pem)
        .map_err(|source| {
            failures.push(ReceiptVerifyError::GpuCertChain {
                index,
                uuid: g.uuid.clone(),
                source,
            });
        })
        .ok();
    (report, chain)
}

fn nonempty(mut v: Vec<ReceiptVerifyError>) -> Vec<ReceiptVerifyError> {
    if v.is_empty() {
        // Unreachable by construction (a run without failures has a value);
        // refuse rather than accept.
        v.push(ReceiptVerifyError::Incomplete);
    }
    v
}
