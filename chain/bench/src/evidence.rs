//! Genuine hardware evidence for the `verify_evidence` benchmark, built from the shared test
//! vectors at run time (`SIGIL_VECTORS`, or `../shared/vectors` beside the repository root).
//!
//! A recorded report was made for someone else's key, so the bundle's REPORT_DATA and GPU nonce
//! cannot bind the key it names; everything else (the report and quote signatures, the
//! certificate chains to the pinned AMD, Intel and NVIDIA roots, the TDX collateral, the RIMs'
//! XML signatures and chains) verifies. [`check_full_verification`] proves that from the
//! verifier's own list of failures before a bundle is timed, so the figure is the cost of a
//! complete verification.

use anyhow::{Context, Result, bail};
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle, GpuCollateral, GpuEvidence};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::NvGpuVerifyError;
use attestation_verifier::verify::receipt::{ReceiptVerifier, ReceiptVerifyError};
use pallet_sigil_market::AttestationVerifier;
use pallet_sigil_market::attestation::BenchmarkEvidence;
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

/// SEV-SNP, TDX, and each with an H100 report and its RIMs, under the largest policy.
pub(crate) fn cases(vectors: &Path) -> Result<Vec<Case>> {
    // The largest policy the runtime stores (`MaxPolicyLen`, 16 KiB of pinned measurements).
    let policy = sigil_verifier_adapter::benchmarking::largest_policy(16 * 1024);
    let policy = policy.as_slice();
    let (snp_cpu, snp_at) = snp(vectors, "genoa-v3-azure")?;
    let (tdx_cpu, tdx_at) = tdx(vectors, "tdx-v4-dcap-qvl-sample")?;
    Ok(vec![
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
            snp_cpu,
            Some(gpu(vectors)?),
            snp_at,
            policy,
        )?,
        case(
            "TDX + H100 (report, 2 RIMs)",
            tdx_cpu,
            Some(gpu(vectors)?),
            tdx_at,
            policy,
        )?,
    ])
}
