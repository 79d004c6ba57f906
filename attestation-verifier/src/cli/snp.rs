//! `sigil-verify snp`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{CommonArgs, Input, read, read_der, report};
use crate::crypto::DefaultCrypto;
use crate::pipeline::check_snp;
use crate::verify::snp::{SnpCollateral, SnpVerifier};

/// Arguments of `sigil-verify snp`.
#[derive(Debug, Args)]
pub struct SnpArgs {
    /// The raw attestation report (1184 bytes).
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// The VCEK or VLEK certificate (DER or PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The ASK (for a VCEK) or ASVK (for a VLEK); the pinned one when omitted.
    #[arg(long, value_name = "PEM")]
    pub ask: Option<PathBuf>,
    /// The ARK; must be the pinned ARK of the report's product.
    #[arg(long, value_name = "PEM")]
    pub ark: Option<PathBuf>,
    /// An AMD certificate revocation list (DER or PEM) signed by the ARK.
    #[arg(long, value_name = "DER")]
    pub crl: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// Runs `sigil-verify snp`.
pub fn run(args: &SnpArgs) -> anyhow::Result<ExitCode> {
    let report_bytes = read(&args.report, Input::SnpReport)?;
    let vek = read_der(&args.cert, Input::Certificate)?;
    let cert = |p: &std::path::Path| read_der(p, Input::Certificate);
    let ask = args.ask.as_deref().map(cert).transpose()?;
    let ark = args.ark.as_deref().map(cert).transpose()?;
    let crl = args
        .crl
        .as_deref()
        .map(|p| read_der(p, Input::Crl))
        .transpose()?;
    let policy = args.common.load_policy()?;
    let now = args.common.time()?;
    let mut verifier =
        SnpVerifier::new(DefaultCrypto::default()).context("loading the pinned AMD roots")?;
    let collateral = SnpCollateral {
        vek: &vek,
        intermediate: ask.as_deref(),
        ark: ark.as_deref(),
        crl: crl.as_deref(),
    };
    let outcome = check_snp(&mut verifier, &report_bytes, &collateral, &policy, now);
    report(&outcome, args.common.format)
}
