//! Whole-receipt verification: the signature, the key's binding to the
//! evidence, the evidence itself, and the policy.
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
//!    agent key, the GPU evidence digest and the nonce.
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
//! 7. Appraise ([`evaluate_receipt`]): the CPU evidence kind's policy table,
//!    the `[gpu]` table for every GPU, and simulated evidence only with
//!    `allow_simulated`.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use crate::appraise::GpuClaims as GpuReportClaims;
use crate::appraise::{Outcome, SnpClaims, TdxClaims};
use crate::binding;
use crate::bundle::{BundleError, CpuEvidence, EvidenceBundle, GpuEvidence};
use crate::crypto::Crypto;
use crate::evidence::azure_hcl::{HclJwk, HclParseError, HclVmConfiguration, parse_hcl_report};
use crate::evidence::nvgpu::{
    NvGpuParseError, NvGpuReport, PemError, parse_nvgpu_report, split_pem_chain,
};
use crate::evidence::simulated::{SimulatedParseError, SimulatedReport, parse_simulated_report};
use crate::evidence::snp::{SnpParseError, SnpReport, parse_snp_report};
use crate::evidence::tdx::{TdxParseError, parse_tdx_quote};
use crate::policy::Policy;
use crate::receipt::{EvidenceMode, ReceiptBody, ReceiptError, SignedReceipt, TeeKind};
use crate::time::UnixTime;
use crate::verdict::{Failures, Verdict, Verified, Violation};
use crate::verify::azure_hcl::{HclBindingError, verify_hcl_binding};
use crate::verify::nvgpu::{GpuInput, NvGpuEvidence, NvGpuVerifier, NvGpuVerifyError};
use crate::verify::simulated::{SimulatedVerifyError, verify_simulated};
use crate::verify::snp::{SnpCollateral, SnpEvidence, SnpVerifier, SnpVerifyError};
use crate::verify::tdx::{
    CollateralError, TdxCollateral, TdxEvidence, TdxVerifier, TdxVerifyError,
};
use crate::verify::x509::X509Error;

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

/// Usage as claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageClaims {
    /// Wall time, ms.
    pub wall_ms: u64,
    /// CPU time, ms.
    pub cpu_ms: u64,
    /// Peak memory, bytes.
    pub peak_memory_bytes: u64,
    /// GPU time, ms.
    pub gpu_ms: u64,
    /// GPU energy, mJ.
    pub gpu_energy_mj: u64,
}

/// What a simulated report says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimulatedClaims {
    /// Always true: this is not hardware evidence.
    pub simulated: bool,
    /// The report's REPORT_DATA.
    pub report_data: String,
    /// The (unverifiable) measurement the simulator reported.
    pub measurement: String,
    /// The simulator's key algorithm.
    pub key_algorithm: String,
    /// The simulator's public key.
    pub key: String,
}

impl SimulatedClaims {
    fn new(r: &SimulatedReport) -> Self {
        let key = match &r.body.key {
            crate::evidence::simulated::SimulatedKey::Ed25519(k) => hex::encode(k),
            crate::evidence::simulated::SimulatedKey::EcdsaP384(k) => hex::encode(k),
        };
        Self {
            simulated: true,
            report_data: hex::encode(r.body.report_data),
            measurement: hex::encode(r.body.measurement),
            key_algorithm: r.body.key.algorithm().into(),
            key,
        }
    }
}

/// What Azure vTPM evidence says: the SNP report inside the HCL report, and the
/// paravisor's runtime claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AzureVtpmClaims {
    /// Always `"azure-vtpm"`: SEV-SNP evidence through the Azure paravisor's vTPM.
    pub path: String,
    /// The SNP report.
    #[serde(flatten)]
    pub snp: SnpClaims,
    /// The HCL report header version.
    pub hcl_version: u32,
    /// How REPORT_DATA commits to the runtime claims ("SHA-256", ...).
    pub runtime_claims_hash: String,
    /// The runtime claims' `"user-data"`, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The vTPM attestation key (`HCLAkPub`) the report binds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ak_pub: Option<HclJwk>,
    /// The VM configuration the paravisor reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_configuration: Option<HclVmConfiguration>,
}

/// What the CPU evidence says, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CpuClaims {
    /// SEV-SNP.
    SevSnp(Box<SnpClaims>),
    /// TDX.
    Tdx(Box<TdxClaims>),
    /// The simulator.
    Simulated(SimulatedClaims),
    /// SEV-SNP through the Azure paravisor's vTPM.
    AzureSnpVtpm(Box<AzureVtpmClaims>),
}

/// What one GPU entry of a bundle says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpuClaims {
    /// The GPU's UUID.
    pub uuid: String,
    /// The nonce its report was requested for.
    pub nonce: String,
    /// Report length, bytes.
    pub report_len: usize,
    /// What the report says (as `sigil-verify gpu` prints it), when it parsed;
    /// chain-derived fields and the RIM result only when it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<GpuReportClaims>>,
}

/// What the evidence bundle says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceClaims {
    /// The bundle's digest.
    pub digest: String,
    /// The bundle format version.
    pub bundle_version: u8,
    /// RIMs the bundle carries for its GPUs.
    pub gpu_rims: usize,
    /// OCSP responses the bundle carries for its GPUs.
    pub gpu_ocsp_responses: usize,
    /// The TEE.
    pub tee: String,
    /// Whether the evidence is from the simulator.
    pub simulated: bool,
    /// The agent key the evidence binds.
    pub agent_key: String,
    /// The bundle nonce.
    pub nonce: String,
    /// Digest of the GPU evidence (zero without GPUs).
    pub gpu_evidence_digest: String,
    /// The REPORT_DATA the CPU evidence must carry.
    pub expected_report_data: String,
    /// The CPU evidence, when it parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuClaims>,
    /// The GPUs.
    pub gpus: Vec<GpuClaims>,
}

/// What a receipt says. Byte fields are lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptClaims {
    /// The digest the signature is over.
    pub receipt_digest: String,
    /// Receipt format version.
    pub version: u8,
    /// The job.
    pub job_id: String,
    /// The job specification's hash.
    pub job_spec_hash: String,
    /// The provider (agent public key).
    pub provider: String,
    /// Market tier.
    pub tier: u8,
    /// The output hash tree's root.
    pub result_commitment: String,
    /// Number of outputs.
    pub output_count: u32,
    /// Start, Unix ms.
    pub started_at_ms: u64,
    /// End, Unix ms.
    pub finished_at_ms: u64,
    /// Exit code.
    pub exit_code: i32,
    /// Usage.
    pub usage: UsageClaims,
    /// "none", "attested-key" or "fresh-quote".
    pub evidence_mode: String,
    /// "none", "sev-snp", "tdx" or "simulated" (Azure vTPM evidence is "sev-snp").
    pub tee: String,
    /// The evidence digest the receipt references.
    pub evidence_digest: String,
    /// The evidence, when a bundle was given and parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceClaims>,
}

impl ReceiptClaims {
    fn new(body: &ReceiptBody, digest: &[u8; 32]) -> Self {
        let u = &body.usage;
        Self {
            receipt_digest: hex::encode(digest),
            version: body.version,
            job_id: hex::encode(body.job_id),
            job_spec_hash: hex::encode(body.job_spec_hash),
            provider: hex::encode(body.provider),
            tier: body.tier,
            result_commitment: hex::encode(body.result_commitment),
            output_count: body.output_count,
            started_at_ms: body.started_at_ms,
            finished_at_ms: body.finished_at_ms,
            exit_code: body.exit_code,
            usage: UsageClaims {
                wall_ms: u.wall_ms,
                cpu_ms: u.cpu_ms,
                peak_memory_bytes: u.peak_memory_bytes,
                gpu_ms: u.gpu_ms,
                gpu_energy_mj: u.gpu_energy_mj,
            },
            evidence_mode: body.evidence.mode.name().into(),
            tee: body.evidence.tee.name().into(),
            evidence_digest: hex::encode(body.evidence.digest),
            evidence: None,
        }
    }
}

/// Everything one run found: claims for the report, failures, and the verified
/// value when there were none.
struct Run<T, Cl> {
    claims: Option<Cl>,
    failures: Vec<ReceiptVerifyError>,
    verified: Option<T>,
}

/// The fields of a parsed bundle the receipt is checked against.
struct BundleMeta {
    digest: [u8; 32],
    tee: TeeKind,
    agent_key: [u8; 32],
    nonce: [u8; 32],
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
        let run = self.run_receipt(receipt, bundle, now);
        match run.verified {
            Some(v) if run.failures.is_empty() => Ok(Verified::new(v)),
            _ => Err(Failures(nonempty(run.failures))),
        }
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
        let (run, _) = self.run_bundle(bundle, expected_key, expected_nonce, now);
        match run.verified {
            Some(v) if run.failures.is_empty() => Ok(Verified::new(v)),
            _ => Err(Failures(nonempty(run.failures))),
        }
    }

    fn run_receipt(
        &mut self,
        receipt: &[u8],
        bundle: Option<&[u8]>,
        now: UnixTime,
    ) -> Run<VerifiedReceipt, ReceiptClaims> {
        let mut failures = Vec::new();
        // Step 1
        let signed = match SignedReceipt::decode_bytes(receipt) {
            Ok(s) => s,
            Err(e) => return Run::failed(None, e.into()),
        };
        let body = match signed.body() {
            Ok(b) => b,
            Err(e) => return Run::failed(None, e.into()),
        };
        let crypto = self.snp.crypto();
        let digest = body.digest(crypto);
        if let Err(e) = signed.verify(crypto) {
            failures.push(e.into());
        }
        let mut claims = ReceiptClaims::new(&body, &digest);
        let mode = body.evidence.mode;
        // Step 2
        let bundle = match (mode, bundle) {
            (EvidenceMode::None, None) => {
                return Run {
                    claims: Some(claims),
                    verified: failures.is_empty().then_some(VerifiedReceipt {
                        body,
                        digest,
                        evidence: None,
                    }),
                    failures,
                };
            }
            (EvidenceMode::None, Some(_)) => {
                failures.push(ReceiptVerifyError::UnexpectedBundle);
                return Run {
                    claims: Some(claims),
                    failures,
                    verified: None,
                };
            }
            (_, None) => {
                failures.push(ReceiptVerifyError::BundleMissing { mode: mode.name() });
                return Run {
                    claims: Some(claims),
                    failures,
                    verified: None,
                };
            }
            (_, Some(b)) => b,
        };
        // Step 3 (receipt side): the key and, in fresh-quote mode, the nonce.
        let expected_nonce = (mode == EvidenceMode::FreshQuote)
            .then(|| binding::fresh_nonce(self.snp.crypto(), &body));
        let (ev, meta) = self.run_bundle(bundle, None, None, now);
        failures.extend(ev.failures);
        if let Some(m) = meta {
            if m.digest != body.evidence.digest {
                failures.push(ReceiptVerifyError::EvidenceDigestMismatch {
                    receipt: hex::encode(body.evidence.digest),
                    bundle: hex::encode(m.digest),
                });
            }
            if m.agent_key != body.provider {
                failures.push(ReceiptVerifyError::AgentKeyMismatch {
                    receipt: hex::encode(body.provider),
                    bundle: hex::encode(m.agent_key),
                });
            }
            if m.tee != body.evidence.tee {
                failures.push(ReceiptVerifyError::TeeMismatch {
                    receipt: body.evidence.tee,
                    bundle: m.tee,
                });
            }
            if let Some(n) = expected_nonce
                && m.nonce != n
            {
                failures.push(ReceiptVerifyError::FreshNonceMismatch {
                    expected: hex::encode(n),
                    bundle: hex::encode(m.nonce),
                });
            }
        }
        claims.evidence = ev.claims;
        let verified = match ev.verified {
            Some(v) if failures.is_empty() => Some(VerifiedReceipt {
                body,
                digest,
                evidence: Some(v),
            }),
            _ => None,
        };
        Run {
            claims: Some(claims),
            failures,
            verified,
        }
    }

    fn run_bundle(
        &mut self,
        bytes: &[u8],
        expected_key: Option<&[u8; 32]>,
        expected_nonce: Option<&[u8; 32]>,
        now: UnixTime,
    ) -> (Run<VerifiedBundle, EvidenceClaims>, Option<BundleMeta>) {
        // Step 3 (bundle side)
        let bundle = match EvidenceBundle::from_bytes(bytes) {
            Ok(b) => b,
            Err(e) => return (Run::failed(None, e.into()), None),
        };
        let crypto = self.snp.crypto();
        let digest = crate::bundle::bundle_digest(crypto, bytes);
        let gpu_digest = binding::gpu_evidence_digest(crypto, &bundle.gpus);
        let expected_rd =
            binding::report_data(crypto, &bundle.agent_key, &gpu_digest, &bundle.nonce);
        let gpu_nonce = binding::gpu_nonce(crypto, &bundle.agent_key, &bundle.nonce);
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
        let (cpu_claims, cpu) = self.check_cpu(&bundle.cpu, &expected_rd, now, &mut failures);
        let (gpus, verified_gpus) = self.check_gpus(&bundle, &gpu_nonce, now, &mut failures);
        let claims = EvidenceClaims {
            digest: hex::encode(digest),
            bundle_version: bundle.version,
            gpu_rims: bundle.gpu_collateral.rims.len(),
            gpu_ocsp_responses: bundle.gpu_collateral.ocsp.len(),
            tee: bundle.tee.name().into(),
            simulated: bundle.tee == TeeKind::Simulated,
            agent_key: hex::encode(bundle.agent_key),
            nonce: hex::encode(bundle.nonce),
            gpu_evidence_digest: hex::encode(gpu_digest),
            expected_report_data: hex::encode(expected_rd),
            cpu: cpu_claims,
            gpus,
        };
        let meta = BundleMeta {
            digest,
            tee: bundle.tee,
            agent_key: bundle.agent_key,
            nonce: bundle.nonce,
        };
        let verified = match (cpu, verified_gpus) {
            (Some(cpu), Some(gpus)) if failures.is_empty() => Some(VerifiedBundle {
                bundle,
                digest,
                cpu,
                gpus,
            }),
            _ => None,
        };
        let run = Run {
            claims: Some(claims),
            failures,
            verified,
        };
        (run, Some(meta))
    }

    /// Step 6 for the GPUs: every report through the NVIDIA verifier, with the
    /// bundle's RIMs and OCSP responses and the derived nonce. Returns each
    /// entry's claims, and the verified evidence when every report verified.
    fn check_gpus(
        &mut self,
        bundle: &EvidenceBundle,
        gpu_nonce: &[u8; 32],
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> (Vec<GpuClaims>, Option<Vec<Verified<NvGpuEvidence>>>) {
        let mut claims: Vec<GpuClaims> = bundle
            .gpus
            .iter()
            .map(|g| GpuClaims {
                uuid: g.uuid.clone(),
                nonce: hex::encode(g.nonce),
                report_len: g.report.len(),
                report: None,
            })
            .collect();
        let mut prepared = Vec::with_capacity(bundle.gpus.len());
        for (index, g) in bundle.gpus.iter().enumerate() {
            let (report, chain) = prepare_gpu(index, g, failures);
            if let (Some(c), Some(r)) = (claims.get_mut(index), &report) {
                c.report = Some(Box::new(GpuReportClaims::new(r, None)));
            }
            if let (Some(report), Some(chain)) = (report, chain) {
                prepared.push(GpuPrepared {
                    index,
                    report,
                    chain,
                });
            }
        }
        if bundle.gpus.is_empty() {
            return (claims, Some(Vec::new()));
        }
        let inputs: Vec<GpuInput<'_>> = prepared
            .iter()
            .map(|p| GpuInput {
                report: &p.report,
                cert_chain: &p.chain,
                nonce: *gpu_nonce,
            })
            .collect();
        let results = self.gpu.verify_bundle(
            &inputs,
            &bundle.gpu_collateral.rims,
            &bundle.gpu_collateral.ocsp,
            now,
        );
        let complete = prepared.len() == bundle.gpus.len();
        let mut verified = Vec::with_capacity(results.len());
        for (p, result) in prepared.iter().zip(results) {
            let uuid = bundle
                .gpus
                .get(p.index)
                .map(|g| g.uuid.clone())
                .unwrap_or_default();
            match result {
                Ok(ev) => {
                    if let Some(c) = claims.get_mut(p.index) {
                        c.report = Some(Box::new(GpuReportClaims::new(&ev.report, Some(&ev))));
                    }
                    verified.push(ev);
                }
                Err(f) => failures.extend(f.0.into_iter().map(|source| ReceiptVerifyError::Gpu {
                    index: p.index,
                    uuid: uuid.clone(),
                    source,
                })),
            }
        }
        let all = complete && verified.len() == bundle.gpus.len();
        (claims, all.then_some(verified))
    }

    /// Step 6 for an SEV-SNP report: chain and signature through the SNP
    /// verifier. Returns the report's claims, and the verified evidence.
    fn check_snp(
        &mut self,
        parsed: &SnpReport,
        collateral: &SnpCollateral<'_>,
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> (SnpClaims, Option<Box<Verified<SnpEvidence>>>) {
        match self.snp.verify(parsed, collateral, now) {
            Ok(ev) => (
                SnpClaims::new(&ev.report, Some(ev.product)),
                Some(Box::new(ev)),
            ),
            Err(f) => {
                failures.extend(f.0.into_iter().map(ReceiptVerifyError::Snp));
                (SnpClaims::new(parsed, None), None)
            }
        }
    }

    fn check_cpu(
        &mut self,
        cpu: &CpuEvidence,
        expected_rd: &[u8; 64],
        now: UnixTime,
        failures: &mut Vec<ReceiptVerifyError>,
    ) -> (Option<CpuClaims>, Option<VerifiedCpu>) {
        let rd_mismatch = |tee, found: &[u8; 64]| ReceiptVerifyError::ReportDataMismatch {
            tee,
            expected: hex::encode(expected_rd),
            found: hex::encode(found),
        };
        match cpu {
            CpuEvidence::SevSnp {
                report,
                vek,
                intermediate,
                ark,
            } => {
                let parsed = match parse_snp_report(report) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(ReceiptVerifyError::SnpParse(e));
                        return (None, None);
                    }
                };
                // Step 5
                if &parsed.report_data != expected_rd {
                    failures.push(rd_mismatch(TeeKind::SevSnp, &parsed.report_data));
                }
                // Step 6
                let collateral = SnpCollateral {
                    vek,
                    intermediate: intermediate.as_deref(),
                    ark: ark.as_deref(),
                    crl: None,
                };
                let (claims, ev) = self.check_snp(&parsed, &collateral, now, failures);
                (
                    Some(CpuClaims::SevSnp(Box::new(claims))),
                    ev.map(VerifiedCpu::SevSnp),
                )
            }
            CpuEvidence::AzureSnpVtpm {
                hcl_report,
                vek,
                intermediate,
                ark,
            } => {
                let hcl = match parse_hcl_report(hcl_report) {
                    Ok(h) => h,
                    Err(e) => {
                        failures.push(ReceiptVerifyError::AzureHclParse(e));
                        return (None, None);
                    }
                };
                let parsed = match parse_snp_report(&hcl.snp_report) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(ReceiptVerifyError::SnpParse(e));
                        return (None, None);
                    }
                };
                // Step 5
                if let Err(es) = verify_hcl_binding(self.snp.crypto(), &hcl, &parsed, expected_rd) {
                    failures.extend(es.into_iter().map(ReceiptVerifyError::AzureHcl));
                }
                // Step 6
                let collateral = SnpCollateral {
                    vek,
                    intermediate: intermediate.as_deref(),
                    ark: ark.as_deref(),
                    crl: None,
                };
                let (snp, ev) = self.check_snp(&parsed, &collateral, now, failures);
                let claims = AzureVtpmClaims {
                    path: "azure-vtpm".into(),
                    snp,
                    hcl_version: hcl.version,
                    runtime_claims_hash: hcl.hash_type.name().into(),
                    user_data: hcl.claims.user_data.as_ref().map(hex::encode),
                    ak_pub: hcl.claims.ak_pub().cloned(),
                    vm_configuration: hcl.claims.vm_configuration.clone(),
                };
                (
                    Some(CpuClaims::AzureSnpVtpm(Box::new(claims))),
                    ev.map(VerifiedCpu::SevSnp),
                )
            }
            CpuEvidence::Tdx {
                quote,
                collateral_json,
            } => {
                let parsed = match parse_tdx_quote(quote) {
                    Ok(q) => q,
                    Err(e) => {
                        failures.push(ReceiptVerifyError::TdxParse(e));
                        return (None, None);
                    }
                };
                // Step 5
                if &parsed.body.report_data != expected_rd {
                    failures.push(rd_mismatch(TeeKind::Tdx, &parsed.body.report_data));
                }
                // Step 6
                let collateral = match collateral_json.as_deref().map(TdxCollateral::from_json) {
                    None => Err(ReceiptVerifyError::TdxCollateralMissing),
                    Some(Err(e)) => Err(ReceiptVerifyError::TdxCollateral(e)),
                    Some(Ok(c)) => Ok(c),
                };
                let collateral = match collateral {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(e);
                        return (
                            Some(CpuClaims::Tdx(Box::new(TdxClaims::new(&parsed, None)))),
                            None,
                        );
                    }
                };
                match self.tdx.verify(&parsed, &collateral, now) {
                    Ok(ev) => (
                        Some(CpuClaims::Tdx(Box::new(TdxClaims::new(
                            &parsed,
                            Some(ev.get()),
                        )))),
                        Some(VerifiedCpu::Tdx(Box::new(ev))),
                    ),
                    Err(f) => {
                        failures.extend(f.0.into_iter().map(ReceiptVerifyError::Tdx));
                        (
                            Some(CpuClaims::Tdx(Box::new(TdxClaims::new(&parsed, None)))),
                            None,
                        )
                    }
                }
            }
            CpuEvidence::Simulated { report } => {
                let parsed = match parse_simulated_report(report) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(ReceiptVerifyError::SimulatedParse(e));
                        return (None, None);
                    }
                };
                // Step 5
                if &parsed.body.report_data != expected_rd {
                    failures.push(rd_mismatch(TeeKind::Simulated, &parsed.body.report_data));
                }
                let claims = SimulatedClaims::new(&parsed);
                // Step 6
                match verify_simulated(self.snp.crypto(), parsed) {
                    Ok(v) => (
                        Some(CpuClaims::Simulated(claims)),
                        Some(VerifiedCpu::Simulated(Box::new(v))),
                    ),
                    Err(e) => {
                        failures.push(ReceiptVerifyError::Simulated(e));
                        (Some(CpuClaims::Simulated(claims)), None)
                    }
                }
            }
        }
    }
}

/// One GPU entry prepared for the NVIDIA verifier.
struct GpuPrepared {
    index: usize,
    report: NvGpuReport,
    chain: Vec<Vec<u8>>,
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

impl<T, Cl> Run<T, Cl> {
    fn failed(claims: Option<Cl>, e: ReceiptVerifyError) -> Self {
        Self {
            claims,
            failures: alloc::vec![e],
            verified: None,
        }
    }
}

/// Step 7: appraises a verified receipt against `policy`; lists every violation.
pub fn evaluate_receipt(policy: &Policy, receipt: &Verified<VerifiedReceipt>) -> Verdict {
    match &receipt.evidence {
        None => Verdict::Accept,
        Some(b) => evaluate_bundle(policy, b),
    }
}

/// Appraises verified evidence against `policy`.
pub fn evaluate_bundle(policy: &Policy, bundle: &VerifiedBundle) -> Verdict {
    let mut v = Vec::new();
    match &bundle.cpu {
        VerifiedCpu::SevSnp(ev) => {
            if let Verdict::Reject(vs) = policy.snp.evaluate(ev) {
                v.extend(vs);
            }
        }
        VerifiedCpu::Tdx(ev) => {
            if let Verdict::Reject(vs) = policy.tdx.evaluate(ev) {
                v.extend(vs);
            }
        }
        VerifiedCpu::Simulated(_) => {
            if !policy.allow_simulated {
                v.push(Violation {
                    rule: "allow_simulated",
                    detail: "evidence is from the simulator, not a TEE (allow it only for testing)"
                        .to_string(),
                });
            }
        }
    }
    for (i, (ev, g)) in bundle.gpus.iter().zip(&bundle.bundle.gpus).enumerate() {
        if let Verdict::Reject(vs) = policy.gpu.evaluate(ev) {
            v.extend(vs.into_iter().map(|x| Violation {
                rule: x.rule,
                detail: alloc::format!("GPU {i} ({}): {}", g.uuid, x.detail),
            }));
        }
    }
    Verdict::from_violations(v)
}

/// Parses, verifies and appraises a receipt and its evidence bundle.
pub fn appraise_receipt<C: Crypto>(
    verifier: &mut ReceiptVerifier<C>,
    receipt: &[u8],
    bundle: Option<&[u8]>,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<ReceiptClaims> {
    let run = verifier.run_receipt(receipt, bundle, now);
    let mut reasons: Vec<String> = run.failures.iter().map(ToString::to_string).collect();
    match run.verified {
        Some(v) if reasons.is_empty() => {
            if let Verdict::Reject(vs) = evaluate_receipt(policy, &Verified::new(v)) {
                reasons.extend(vs.iter().map(ToString::to_string));
            }
        }
        Some(_) | None => {
            if reasons.is_empty() {
                reasons.push(ReceiptVerifyError::Incomplete.to_string());
            }
        }
    }
    Outcome {
        claims: run.claims,
        reasons,
    }
}

/// Parses, verifies and appraises an evidence bundle on its own.
pub fn appraise_bundle<C: Crypto>(
    verifier: &mut ReceiptVerifier<C>,
    bundle: &[u8],
    expected_key: Option<&[u8; 32]>,
    expected_nonce: Option<&[u8; 32]>,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<EvidenceClaims> {
    let (run, _) = verifier.run_bundle(bundle, expected_key, expected_nonce, now);
    let mut reasons: Vec<String> = run.failures.iter().map(ToString::to_string).collect();
    if let Some(v) = run.verified.filter(|_| reasons.is_empty()) {
        if let Verdict::Reject(vs) = evaluate_bundle(policy, &v) {
            reasons.extend(vs.iter().map(ToString::to_string));
        }
    } else if reasons.is_empty() {
        reasons.push(ReceiptVerifyError::Incomplete.to_string());
    }
    Outcome {
        claims: run.claims,
        reasons,
    }
}

#[cfg(test)]
mod tests;
