//! Receipts and evidence bundles: bytes to an outcome with the claims a buyer
//! reads, from what a verification run saw ([`crate::verify::receipt`]) and the
//! policy's verdict ([`crate::policy::evaluate_receipt`]).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use super::{MeasuredBootClaims, NvGpuClaims, Outcome, SnpClaims, TdxClaims, verdict_reasons};
use crate::crypto::Crypto;
use crate::evidence::azure_hcl::{HclJwk, HclReport, HclVmConfiguration};
use crate::evidence::simulated::{SimulatedKey, SimulatedReport};
use crate::policy::{Policy, evaluate_bundle, evaluate_receipt};
use crate::receipt::{ReceiptBody, TeeKind};
use crate::time::UnixTime;
use crate::verdict::{Verdict, Verified};
use crate::verify::azure_vtpm::VtpmQuote;
use crate::verify::receipt::{
    BundleSeen, CpuSeen, GpuSeen, ReceiptSeen, ReceiptVerifier, Run, Seen,
};

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
            SimulatedKey::Ed25519(k) => hex::encode(k),
            SimulatedKey::EcdsaP384(k) => hex::encode(k),
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
    /// The HCL report and the vTPM quote.
    #[serde(flatten)]
    pub hcl: AzureHclClaims,
}

/// What Azure TDX vTPM evidence says: the TD quote made of the TD report inside
/// the HCL report, and the paravisor's runtime claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AzureTdxVtpmClaims {
    /// Always `"azure-vtpm"`: TDX evidence through the Azure paravisor's vTPM.
    pub path: String,
    /// The TD quote (its TD is the paravisor's: the guest's boot is in the vTPM's PCRs).
    #[serde(flatten)]
    pub tdx: TdxClaims,
    /// The HCL report and the vTPM quote.
    #[serde(flatten)]
    pub hcl: AzureHclClaims,
}

/// What an Azure HCL report's runtime claims and the vTPM quote they vouch for say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AzureHclClaims {
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
    /// The bundle's vTPM quote, when it carries one that verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_quote: Option<VtpmQuoteClaims>,
}

impl AzureHclClaims {
    fn new(hcl: &HclReport, tpm_quote: Option<&Verified<VtpmQuote>>) -> Self {
        Self {
            hcl_version: hcl.version,
            runtime_claims_hash: hcl.hash_type.name().into(),
            user_data: hcl.claims.user_data.as_ref().map(hex::encode),
            ak_pub: hcl.claims.ak_pub().cloned(),
            vm_configuration: hcl.claims.vm_configuration.clone(),
            tpm_quote: tpm_quote.map(|q| VtpmQuoteClaims::new(q)),
        }
    }
}

/// What a verified vTPM quote says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VtpmQuoteClaims {
    /// The qualifying data (`extraData`), hex.
    pub nonce: String,
    /// SHA-256 of the attestation key's modulus, hex.
    pub ak_modulus_sha256: String,
    /// `pcrDigest`, hex.
    pub pcr_digest: String,
    /// The quoted SHA-256 PCRs, `pcr00`.., hex.
    pub pcrs: alloc::collections::BTreeMap<String, String>,
}

impl VtpmQuoteClaims {
    /// The claims of a verified quote.
    pub fn new(q: &VtpmQuote) -> Self {
        Self {
            nonce: hex::encode(q.nonce()),
            ak_modulus_sha256: hex::encode(q.ak_modulus_sha256),
            pcr_digest: hex::encode(&q.attest.quote.pcr_digest),
            pcrs: q
                .pcrs
                .iter()
                .map(|p| (alloc::format!("pcr{:02}", p.index), hex::encode(p.sha256)))
                .collect(),
        }
    }
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
    /// TDX through the Azure paravisor's vTPM.
    AzureTdxVtpm(Box<AzureTdxVtpmClaims>),
}

/// What one GPU entry of a bundle says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpuEntryClaims {
    /// The GPU's UUID.
    pub uuid: String,
    /// The nonce its report was requested for.
    pub nonce: String,
    /// Report length, bytes.
    pub report_len: usize,
    /// What the report says (as `sigil-verify gpu` prints it), when it parsed;
    /// chain-derived fields and the RIM result only when it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<NvGpuClaims>>,
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
    /// The AMD CRL the bundle carries for its SEV-SNP evidence (version 3), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp_crl: Option<SnpCrlClaims>,
    /// The TEE.
    pub tee: String,
    /// Whether the evidence is from the simulator.
    pub simulated: bool,
    /// The agent key the evidence binds.
    pub agent_key: String,
    /// The binding version of the evidence (1: signing key; 2: signing and sealing keys).
    pub binding: u8,
    /// The agent's X25519 sealing (HPKE) key the evidence binds (bundle version 4), if any:
    /// the key a buyer seals inputs to once this evidence verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealing_key: Option<String>,
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
    pub gpus: Vec<GpuEntryClaims>,
    /// Measured boot (bundle version 5): the firmware event log's events and the
    /// agent's own measurements, when the bundle carries them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_boot: Option<MeasuredBootClaims>,
}

/// The AMD CRL an evidence bundle carries, as read from it (whether it verified
/// is in the outcome's reasons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnpCrlClaims {
    /// Its length in bytes.
    pub bytes: usize,
    /// `thisUpdate`, RFC 3339 (absent when the CRL does not parse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this_update: Option<String>,
    /// `nextUpdate`, RFC 3339 (absent when the CRL has none or does not parse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// Seconds from `thisUpdate` to the verification time (0 when issued later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<u64>,
    /// How many serial numbers it lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<usize>,
}

impl SnpCrlClaims {
    fn new(der: &[u8], now: UnixTime) -> Self {
        let crl = crate::verify::x509::Crl::from_der("CRL", der).ok();
        Self {
            bytes: der.len(),
            this_update: crl.as_ref().map(|c| c.this_update().to_string()),
            next_update: crl
                .as_ref()
                .and_then(|c| c.next_update())
                .map(|t| t.to_string()),
            age_secs: crl
                .as_ref()
                .map(|c| now.as_secs().saturating_sub(c.this_update().as_secs())),
            revoked: crl.as_ref().map(crate::verify::x509::Crl::revoked_count),
        }
    }
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

impl ReceiptSeen {
    fn claims(&self) -> ReceiptClaims {
        let mut c = ReceiptClaims::new(&self.body, &self.digest);
        c.evidence = self.evidence.as_ref().map(BundleSeen::claims);
        c
    }
}

impl BundleSeen {
    fn claims(&self) -> EvidenceClaims {
        let b = &self.bundle;
        EvidenceClaims {
            digest: hex::encode(self.digest),
            bundle_version: b.version,
            gpu_rims: b.gpu_collateral.rims.len(),
            gpu_ocsp_responses: b.gpu_collateral.ocsp.len(),
            snp_crl: b.snp_crl().map(|der| SnpCrlClaims::new(der, self.now)),
            tee: b.tee.name().into(),
            simulated: b.tee == TeeKind::Simulated,
            agent_key: hex::encode(b.agent_key),
            binding: crate::binding::Binding::of(b).version(),
            sealing_key: b.sealing_key.map(hex::encode),
            nonce: hex::encode(b.nonce),
            gpu_evidence_digest: hex::encode(self.gpu_digest),
            expected_report_data: hex::encode(self.expected_report_data),
            cpu: self.cpu.as_ref().map(CpuSeen::claims),
            gpus: b
                .gpus
                .iter()
                .zip(&self.gpus)
                .map(|(g, seen)| GpuEntryClaims {
                    uuid: g.uuid.clone(),
                    nonce: hex::encode(g.nonce),
                    report_len: g.report.len(),
                    report: seen.claims().map(Box::new),
                })
                .collect(),
            measured_boot: MeasuredBootClaims::of(&b.measured, self.measured.as_ref()),
        }
    }
}

impl GpuSeen {
    fn claims(&self) -> Option<NvGpuClaims> {
        match (&self.verified, &self.report) {
            (Some(ev), _) => Some(NvGpuClaims::new(&ev.report, Some(ev))),
            (None, Some(r)) => Some(NvGpuClaims::new(r, None)),
            (None, None) => None,
        }
    }
}

impl CpuSeen {
    fn claims(&self) -> CpuClaims {
        match self {
            Self::SevSnp(c) => CpuClaims::SevSnp(Box::new(SnpClaims::of(
                &c.parsed,
                c.evidence.as_deref().map(Verified::get),
            ))),
            Self::AzureSnpVtpm(c) => CpuClaims::AzureSnpVtpm(Box::new(AzureVtpmClaims {
                path: "azure-vtpm".into(),
                snp: SnpClaims::of(&c.parsed.snp, c.evidence.as_deref().map(Verified::get)),
                hcl: AzureHclClaims::new(&c.parsed.hcl, c.parsed.tpm_quote.as_ref()),
            })),
            Self::AzureTdxVtpm(c) => CpuClaims::AzureTdxVtpm(Box::new(AzureTdxVtpmClaims {
                path: "azure-vtpm".into(),
                tdx: TdxClaims::new(&c.parsed.quote, c.evidence.as_deref().map(Verified::get)),
                hcl: AzureHclClaims::new(&c.parsed.hcl, c.parsed.tpm_quote.as_ref()),
            })),
            Self::Tdx(c) => CpuClaims::Tdx(Box::new(TdxClaims::new(
                &c.parsed,
                c.evidence.as_deref().map(Verified::get),
            ))),
            Self::Simulated(c) => CpuClaims::Simulated(SimulatedClaims::new(&c.parsed)),
        }
    }
}

/// Parses, verifies and appraises a receipt and its evidence bundle.
pub fn check_receipt<C: Crypto>(
    verifier: &mut ReceiptVerifier<C>,
    receipt: &[u8],
    bundle: Option<&[u8]>,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<ReceiptClaims> {
    let run = verifier.run_receipt(receipt, bundle, now);
    outcome(run, ReceiptSeen::claims, |v| evaluate_receipt(policy, v))
}

/// Parses, verifies and appraises an evidence bundle on its own.
pub fn check_bundle<C: Crypto>(
    verifier: &mut ReceiptVerifier<C>,
    bundle: &[u8],
    expected_key: Option<&[u8; 32]>,
    expected_nonce: Option<&[u8; 32]>,
    policy: &Policy,
    now: UnixTime,
) -> Outcome<EvidenceClaims> {
    let run = verifier.run_bundle(bundle, expected_key, expected_nonce, now);
    outcome(run, BundleSeen::claims, |v| evaluate_bundle(policy, v))
}

/// A run's outcome: the claims of what it saw, and every failure or, when
/// everything verified, every policy violation.
fn outcome<S: Seen, Cl>(
    run: Run<S>,
    claims: impl Fn(&S) -> Cl,
    evaluate: impl FnOnce(&Verified<S::Verified>) -> Verdict,
) -> Outcome<Cl> {
    let claims = run.seen.as_ref().map(claims);
    let reasons = match run.into_result() {
        Ok(v) => verdict_reasons(evaluate(&v)),
        Err(f) => f.0.iter().map(ToString::to_string).collect(),
    };
    Outcome { claims, reasons }
}

#[cfg(test)]
mod tests;
