//! `sigil-verify gpu`.

use std::format;
use std::path::PathBuf;
use std::process::ExitCode;
use std::string::String;
use std::vec::Vec;

use anyhow::{Context, bail};
use clap::Args;

use super::{CommonArgs, Input, InputError, read, read_der, report};
use crate::crypto::DefaultCrypto;
use crate::evidence::nvgpu::{parse_nvgpu_report, split_pem_chain};
use crate::pcs::UreqHttp;
use crate::pipeline::check_gpu;
use crate::rim_service::{NVIDIA_RIM_SERVICE_URL, RimFetcher};
use crate::verify::nvgpu::{NvGpuCollateral, NvGpuVerifier};

/// Arguments of `sigil-verify gpu`.
#[derive(Debug, Args)]
pub struct GpuArgs {
    /// The attestation report: SPDM GET_MEASUREMENTS request (37 bytes) and the
    /// signed response, raw or as hex text.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// The device certificate chain (PEM, leaf first) returned with the report.
    #[arg(long, value_name = "PEM")]
    pub cert_chain: PathBuf,
    /// The 32-byte nonce the report must answer, hex.
    #[arg(long, value_name = "HEX")]
    pub nonce: String,
    /// A driver or VBIOS RIM (SWID XML); repeat for both.
    #[arg(long, value_name = "XML")]
    pub rim: Vec<PathBuf>,
    /// An OCSP response (DER) for a device or RIM certificate; repeatable.
    #[arg(long, value_name = "DER")]
    pub ocsp: Vec<PathBuf>,
    /// Fetch the report's driver and VBIOS RIMs from NVIDIA's RIM service
    /// (those not given with --rim), caching them in --rim-cache.
    #[arg(long)]
    pub fetch_rims: bool,
    /// Directory caching fetched RIMs.
    #[arg(long, value_name = "DIR")]
    pub rim_cache: Option<PathBuf>,
    /// RIM service base URL.
    #[arg(long, value_name = "URL", default_value = NVIDIA_RIM_SERVICE_URL)]
    pub rim_service: String,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// Reads a report given raw or as hex text.
fn read_report(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path, Input::GpuReport)?;
    let is_hex = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if is_hex {
        let text: String = bytes
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| char::from(*b))
            .collect();
        return hex::decode(text).map_err(|e| {
            InputError::malformed(Input::GpuReport, path, format_args!("not hex ({e})")).into()
        });
    }
    Ok(bytes)
}

/// Runs `sigil-verify gpu`.
pub fn run(args: &GpuArgs) -> anyhow::Result<ExitCode> {
    let report_bytes = read_report(&args.report)?;
    let chain_bytes = read(&args.cert_chain, Input::Certificate)?;
    let not_pem = |e: &dyn core::fmt::Display| {
        InputError::malformed(
            Input::Certificate,
            &args.cert_chain,
            format_args!("not a PEM certificate chain ({e})"),
        )
    };
    let chain_text = std::str::from_utf8(&chain_bytes).map_err(|e| not_pem(&e))?;
    let chain = split_pem_chain(chain_text).map_err(|e| not_pem(&e))?;
    let nonce_bytes =
        hex::decode(args.nonce.trim().trim_start_matches("0x")).context("--nonce is not hex")?;
    let Ok(nonce) = <[u8; 32]>::try_from(nonce_bytes.as_slice()) else {
        bail!("--nonce must be 32 bytes, got {}", nonce_bytes.len());
    };
    let mut rims = args
        .rim
        .iter()
        .map(|p| read(p, Input::Rim))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ocsp = args
        .ocsp
        .iter()
        .map(|p| read_der(p, Input::Ocsp))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = args.common.load_policy()?;
    let now = args.common.time()?;
    let mut verifier =
        NvGpuVerifier::new(DefaultCrypto::default()).context("loading the pinned NVIDIA roots")?;
    if args.fetch_rims {
        // The chip for the driver RIM id comes from the attestation certificate;
        // both are verified later, so a wrong guess only fetches a RIM that fails.
        let parsed = parse_nvgpu_report(&report_bytes)
            .map_err(|e| InputError::malformed(Input::GpuReport, &args.report, e))?;
        let leaf = chain
            .first()
            .map(|d| crate::verify::x509::Cert::from_der("attestation certificate", d))
            .transpose()
            .map_err(|e| InputError::malformed(Input::Certificate, &args.cert_chain, e))?;
        let chip = leaf
            .and_then(|c| c.subject_cn())
            .and_then(|cn| cn.split_whitespace().next().map(String::from))
            .unwrap_or_else(|| "GH100".into());
        let fetcher = RimFetcher::new(
            UreqHttp::default(),
            &args.rim_service,
            args.rim_cache.as_deref(),
        );
        let given: Vec<String> = rims
            .iter()
            .filter_map(|x| crate::evidence::rim::parse_rim(x).ok())
            .map(|r| r.colloquial_version.to_ascii_lowercase())
            .collect();
        let have = |v: &Option<String>| {
            v.as_ref()
                .is_some_and(|v| given.contains(&v.to_ascii_lowercase()))
        };
        let mut ids = Vec::new();
        if !have(&parsed.fields.driver_version) {
            ids.extend(parsed.driver_rim_id(&chip));
        }
        if !have(&parsed.fields.vbios_version) {
            ids.extend(parsed.vbios_rim_id());
        }
        for id in &ids {
            let xml = fetcher
                .fetch(id)
                .with_context(|| format!("fetching RIM {id}"))?;
            if !rims.contains(&xml) {
                rims.push(xml);
            }
        }
    }
    let collateral = NvGpuCollateral {
        cert_chain: &chain,
        rims: &rims,
        ocsp: &ocsp,
    };
    let outcome = check_gpu(
        &mut verifier,
        &report_bytes,
        &collateral,
        &nonce,
        &policy,
        now,
    );
    report(&outcome, args.common.format)
}
