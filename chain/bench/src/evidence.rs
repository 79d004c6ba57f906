//! Genuine hardware evidence for the `verify_evidence` benchmark, built from the shared test
//! vectors at run time (`SIGIL_VECTORS`, or `../shared/vectors` beside the repository root).
//!
//! A recorded report was made for someone else's key, so the bundle's REPORT_DATA and GPU nonce
//! cannot bind the key it names; everything else (the report and quote signatures, the
//! certificate chains to the pinned AMD, Intel and NVIDIA roots, the TDX collateral, the RIMs'
//! XML signatures and chains) verifies. [`check_full_verification`] proves that from the
//! verifier's own list of failures before a bundle is timed, so the figure is the cost of a
//! complete verification.

use crate::forge;
use anyhow::{Context, Result, bail};
use attestation_verifier::bundle::{
    CpuCollateral, CpuEvidence, EvidenceBundle, GpuCollateral, GpuEvidence,
};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::NvGpuVerifyError;
use attestation_verifier::verify::receipt::{ReceiptVerifier, ReceiptVerifyError};
use pallet_sigil_market::attestation::BenchmarkEvidence;
use pallet_sigil_market::{AttestationVerifier, EvidenceCost};
use sigil_verifier_adapter::BundleVerifier;
use std::path::{Path, PathBuf};

/// The agent key and nonce the bundles claim.
const KEY: [u8; 32] = [0xa7; 32];
const NONCE: [u8; 32] = [0x42; 32];

/// One evidence bundle to time.
pub(crate) struct Case {
    /// What it holds.
    pub name: String,
    /// The evidence, its policy, time and the adapter's outcome.
    pub evidence: BenchmarkEvidence,
}

/// The vectors directory.
pub(crate) fn vectors_dir(manifest_dir: &Path) -> PathBuf {
    std::env::var_os("SIGIL_VECTORS").map_or_else(
        || manifest_dir.join("../../../shared/vectors"),
        PathBuf::from,
    )
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {} (set SIGIL_VECTORS)", path.display()))
}

fn verification_time(dir: &Path) -> Result<u64> {
    let toml = String::from_utf8(read(&dir.join("case.toml"))?)?;
    toml.lines()
        .find_map(|l| l.strip_prefix("verification_time_unix = "))
        .context("case.toml has no verification_time_unix")?
        .trim()
        .parse()
        .context("verification_time_unix")
}

fn snp(v: &Path, case: &str) -> Result<(CpuEvidence, u64)> {
    let dir = v.join("snp").join(case);
    let cpu = CpuEvidence::SevSnp {
        report: read(&dir.join("report.bin"))?,
        vek: read(&dir.join("vcek.der"))?,
        intermediate: None,
        ark: None,
    };
    Ok((cpu, verification_time(&dir)?))
}

fn tdx(v: &Path, case: &str) -> Result<(CpuEvidence, u64)> {
    let dir = v.join("tdx").join(case);
    let cpu = CpuEvidence::Tdx {
        quote: read(&dir.join("quote.bin"))?,
        collateral_json: Some(read(&dir.join("collateral.json"))?),
    };
    Ok((cpu, verification_time(&dir)?))
}

/// NVIDIA's recorded H100 report and chain, with a driver RIM and a VBIOS RIM for its chip.
fn gpu(v: &Path) -> Result<(Vec<GpuEvidence>, GpuCollateral)> {
    let dir = v.join("nvgpu/hopper-nvtrust-sample");
    let gpu_nonce = attestation_verifier::binding::gpu_nonce(&RustCrypto, &KEY, &NONCE);
    let gpus = vec![GpuEvidence {
        report: read(&dir.join("report.bin"))?,
        cert_chain_pem: String::from_utf8(read(&dir.join("cert_chain.pem"))?)?,
        nonce: gpu_nonce,
        uuid: "GPU-bench".into(),
    }];
    let rims = vec![
        read(&v.join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml"))?,
        read(&v.join("nvgpu-extra/rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag"))?,
    ];
    Ok((gpus, GpuCollateral { rims, ocsp: vec![] }))
}

/// The failures a recorded report is allowed to have: the binding to this bundle's key and
/// nonce, and RIMs for other driver/VBIOS versions than the report's (they still verify).
fn is_binding_only(f: &ReceiptVerifyError) -> bool {
    matches!(
        f,
        ReceiptVerifyError::ReportDataMismatch { .. }
            | ReceiptVerifyError::GpuNonceMismatch { .. }
            | ReceiptVerifyError::Gpu {
                source: NvGpuVerifyError::NonceMismatch { .. }
                    | NvGpuVerifyError::RimNotApplicable { .. },
                ..
            }
    )
}

/// Fails unless the verifier checked every signature, chain and collateral of `bundle`.
pub(crate) fn check_full_verification(name: &str, bundle: &[u8], at_s: u64) -> Result<Vec<String>> {
    let mut verifier = ReceiptVerifier::new(RustCrypto).context("verifier roots")?;
    match verifier.verify_bundle(bundle, None, None, UnixTime(at_s)) {
        Ok(_) => Ok(Vec::new()),
        Err(f) => {
            let all: Vec<String> = f.0.iter().map(ToString::to_string).collect();
            if f.0.iter().all(is_binding_only) {
                Ok(all)
            } else {
                bail!("{name}: the verifier did not get past: {all:#?}")
            }
        }
    }
}

fn case(
    name: &str,
    cpu: CpuEvidence,
    gpu: Option<(Vec<GpuEvidence>, GpuCollateral)>,
    at_s: u64,
    policy: &[u8],
) -> Result<Case> {
    let (gpus, collateral) = gpu.unwrap_or_default();
    let bundle = EvidenceBundle::new(KEY, NONCE, cpu, gpus)
        .with_gpu_collateral(collateral)
        .to_bytes();
    let failures = check_full_verification(name, &bundle, at_s)?;
    eprintln!(
        "{name}: {} bytes, fully verified; refused only for: {}",
        bundle.len(),
        failures.join("; ")
    );
    let now_ms = at_s.saturating_mul(1_000);
    let outcome = BundleVerifier::verify(&bundle, &[], policy, now_ms);
    Ok(Case {
        name: name.into(),
        evidence: BenchmarkEvidence {
            evidence: bundle,
            collateral: Vec::new(),
            policy: policy.to_vec(),
            now_ms,
            expected: outcome.err(),
        },
    })
}

/// The largest policy the runtime stores (`MaxPolicyLen`, 16 KiB of pinned measurements).
pub(crate) fn policy() -> Vec<u8> {
    sigil_verifier_adapter::benchmarking::largest_policy(16 * 1024)
}

/// SEV-SNP, TDX, and each with an H100 report and its RIMs, under the largest policy; then the
/// adversarial bundles: one GPU report sixteen times, sixteen reports whose device chains fail
/// at their last signature, 32 RIMs with a changed signature byte, 128 OCSP responses, and an
/// SEV-SNP bundle with a CRL of the largest size a bundle may carry.
pub(crate) fn cases(vectors: &Path, parts: &Parts) -> Result<Vec<Case>> {
    let policy = policy();
    let policy = policy.as_slice();
    let (snp_cpu, snp_at) = snp(vectors, "genoa-v3-azure")?;
    let (tdx_cpu, tdx_at) = tdx(vectors, "tdx-v4-dcap-qvl-sample")?;
    let mut out = vec![
        case(
            "SEV-SNP (Genoa, VCEK)",
            snp_cpu.clone(),
            None,
            snp_at,
            policy,
        )?,
        case(
            "TDX (v4 quote, DCAP collateral)",
            tdx_cpu.clone(),
            None,
            tdx_at,
            policy,
        )?,
        case(
            "SEV-SNP + H100 (report, 2 RIMs)",
            snp_cpu.clone(),
            Some(gpu(vectors)?),
            snp_at,
            policy,
        )?,
        case(
            "TDX + H100 (report, 2 RIMs)",
            tdx_cpu.clone(),
            Some(gpu(vectors)?),
            tdx_at,
            policy,
        )?,
    ];
    // Adversarial bundles: verified as far as they go, refused for what was changed.
    let (gpus, collateral) = gpu(vectors)?;
    let one = gpus.first().context("no GPU evidence")?;
    let copies: Vec<GpuEvidence> = (0..16).map(|_| one.clone()).collect();
    out.push(adversarial(
        "TDX + one H100 report 16 times (2 RIMs)",
        EvidenceBundle::new(KEY, NONCE, tdx_cpu.clone(), copies).with_gpu_collateral(collateral),
        tdx_at,
        policy,
    ));
    let cost = |gpus, rims, ocsp, bytes| EvidenceCost {
        gpus,
        rims,
        ocsp,
        bytes,
    };
    out.push(adversarial(
        BASE_CASE,
        parts.bundle_value(cost(1, 1, 0, 0)),
        tdx_at,
        policy,
    ));
    out.push(adversarial(
        GPUS_CASE,
        parts.bundle_value(cost(16, 1, 0, 0)),
        tdx_at,
        policy,
    ));
    out.push(adversarial(
        RIMS_CASE,
        parts.bundle_value(cost(1, 32, 0, 0)),
        tdx_at,
        policy,
    ));
    out.push(adversarial(
        OCSP_CASE,
        parts.bundle_value(cost(1, 1, 128, 0)),
        tdx_at,
        policy,
    ));
    out.push(adversarial(
        PADDED_CASE,
        parts.bundle_value(cost(1, 1, 0, 256 << 10)),
        tdx_at,
        policy,
    ));
    out.push(adversarial(
        "SEV-SNP + a 256 KiB CRL (its signature fails)",
        EvidenceBundle::new(KEY, NONCE, snp_cpu, Vec::new()).with_cpu_collateral(CpuCollateral {
            snp_crl: Some(parts.crl.clone()),
        }),
        snp_at,
        policy,
    ));
    out.push(adversarial(
        "TDX + everything at its cap (16 failing chains, 32 RIMs, 128 OCSP, 256 KiB padding)",
        parts.bundle_value(cost(16, 32, 128, 256 << 10)),
        tdx_at,
        policy,
    ));
    Ok(out)
}

/// The generated bundle with one of each item (the marginal costs are measured against it).
pub(crate) const BASE_CASE: &str = "TDX + H100 (1 RIM)";
/// The generated bundle with 16 GPU reports.
pub(crate) const GPUS_CASE: &str =
    "TDX + 16 H100 reports, device chains failing at their last signature (1 RIM)";
/// The generated bundle with 32 RIMs.
pub(crate) const RIMS_CASE: &str = "TDX + H100 + 32 RIMs, 31 with a changed signature byte";
/// The generated bundle with 128 OCSP responses.
pub(crate) const OCSP_CASE: &str = "TDX + H100 (1 RIM) + 128 OCSP responses";
/// The generated bundle with 256 KiB of padding.
pub(crate) const PADDED_CASE: &str = "TDX + H100 + 1 RIM padded with 256 KiB of measurements";

/// A bundle timed as it is, whatever the verifier concludes.
fn adversarial(name: &str, bundle: EvidenceBundle, at_s: u64, policy: &[u8]) -> Case {
    let bundle = bundle.to_bytes();
    let now_ms = at_s.saturating_mul(1_000);
    let outcome = BundleVerifier::verify(&bundle, &[], policy, now_ms);
    eprintln!(
        "{name}: {} bytes, refused: {:?}",
        bundle.len(),
        outcome.as_ref().err()
    );
    Case {
        name: name.into(),
        evidence: BenchmarkEvidence {
            evidence: bundle,
            collateral: Vec::new(),
            policy: policy.to_vec(),
            now_ms,
            expected: outcome.err(),
        },
    }
}

/// What the `verify_evidence` benchmark's bundles are made of: genuine TDX and H100 evidence,
/// NVIDIA's RIMs, and the adversarial pieces derived from them.
pub(crate) struct Parts {
    tdx: CpuEvidence,
    tdx_at: u64,
    report: Vec<u8>,
    chain_pem: String,
    driver_rim: Vec<u8>,
    vbios_rim: Vec<u8>,
    ocsp: Vec<Vec<u8>>,
    crl: Vec<u8>,
    policy: Vec<u8>,
}

impl Parts {
    pub(crate) fn load(v: &Path) -> Result<Self> {
        let (tdx, tdx_at) = tdx(v, "tdx-v4-dcap-qvl-sample")?;
        let dir = v.join("nvgpu/hopper-nvtrust-sample");
        let chain_pem = String::from_utf8(read(&dir.join("cert_chain.pem"))?)?;
        let chain = attestation_verifier::evidence::nvgpu::split_pem_chain(&chain_pem)
            .map_err(|e| anyhow::anyhow!("sample chain: {e}"))?;
        let snp_dir = v.join("snp/genoa-v3-azure");
        let ark = attestation_verifier::evidence::nvgpu::split_pem_chain(&String::from_utf8(
            read(&snp_dir.join("ark.pem"))?,
        )?)
        .map_err(|e| anyhow::anyhow!("ARK: {e}"))?;
        let ark = ark.first().context("ark.pem is empty")?;
        Ok(Self {
            tdx,
            tdx_at,
            report: read(&dir.join("report.bin"))?,
            chain_pem,
            driver_rim: read(&v.join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml"))?,
            vbios_rim: read(
                &v.join("nvgpu-extra/rims-nvtrust/1010_0200_882_96005E0001_PROD.swidtag"),
            )?,
            ocsp: forge::ocsp_responses(&chain, attestation_verifier::bundle::MAX_OCSP)?,
            crl: forge::crl(ark, attestation_verifier::bundle::MAX_CRL_LEN)?,
            policy: policy(),
        })
    }

    /// A TDX bundle with `c.gpus` H100 reports (the first genuine, the others with device
    /// chains that fail at their last signature, each a different byte), `c.rims` RIMs (the
    /// first NVIDIA's driver RIM padded with `c.bytes` bytes of measurement elements, the
    /// others that RIM with a different changed byte of its signature each), and `c.ocsp`
    /// OCSP responses about none of the chains' certificates (each read against every
    /// certificate checked).
    pub(crate) fn bundle_value(&self, c: EvidenceCost) -> EvidenceBundle {
        let nonce = attestation_verifier::binding::gpu_nonce(&RustCrypto, &KEY, &NONCE);
        let gpus = (0..c.gpus)
            .map(|i| GpuEvidence {
                report: self.report.clone(),
                cert_chain_pem: if i == 0 {
                    self.chain_pem.clone()
                } else {
                    forge::broken_chain(&self.chain_pem, i as usize)
                },
                nonce,
                uuid: format!("GPU-bench-{i}"),
            })
            .collect();
        let mut rims: Vec<Vec<u8>> = Vec::new();
        for i in 0..c.rims {
            rims.push(match i {
                0 => forge::padded_rim(&self.driver_rim, c.bytes as usize),
                1 => self.vbios_rim.clone(),
                _ => forge::flipped_rim(&self.driver_rim, i as usize),
            });
        }
        let ocsp = self.ocsp.iter().take(c.ocsp as usize).cloned().collect();
        EvidenceBundle::new(KEY, NONCE, self.tdx.clone(), gpus)
            .with_gpu_collateral(GpuCollateral { rims, ocsp })
    }

    /// [`Self::bundle_value`] as benchmark evidence, with the verifier's outcome.
    pub(crate) fn evidence(&self, c: EvidenceCost) -> BenchmarkEvidence {
        let bundle = self.bundle_value(c).to_bytes();
        let now_ms = self.tdx_at.saturating_mul(1_000);
        let outcome = BundleVerifier::verify(&bundle, &[], &self.policy, now_ms);
        BenchmarkEvidence {
            evidence: bundle,
            collateral: Vec::new(),
            policy: self.policy.clone(),
            now_ms,
            expected: outcome.err(),
        }
    }
}
