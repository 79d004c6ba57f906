//! `sigil-verify tdx`.

use std::format;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::string::String;

use anyhow::{Context, bail};
use clap::Args;

use super::{CommonArgs, Input, InputError, read, report};
use crate::crypto::DefaultCrypto;
use crate::evidence::tdx::parse_tdx_quote;
use crate::pcs::{CollateralFetcher, UreqHttp};
use crate::pipeline::check_tdx;
use crate::time::UnixTime;
use crate::verify::tdx::{PcsResponses, TdxCollateral, TdxVerifier, pck_fmspc_unverified};

/// Arguments of `sigil-verify tdx`.
#[derive(Debug, Args)]
pub struct TdxArgs {
    /// The raw DCAP quote (v4 or v5).
    #[arg(long, value_name = "FILE")]
    pub quote: PathBuf,
    /// Collateral: a bundle JSON (dcap-qvl `QuoteCollateralV3` layout), or a
    /// directory of raw PCS files (pck_crl.der, pck_crl_issuer_chain.pem,
    /// root_ca_crl.der, tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json,
    /// qe_identity_issuer_chain.pem).
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "pccs_url")]
    pub collateral: Option<PathBuf>,
    /// Fetch the collateral from this Intel PCS or PCCS (default: env PCCS_URL),
    /// e.g. `https://api.trustedservices.intel.com`.
    #[arg(long, value_name = "URL")]
    pub pccs_url: Option<String>,
    /// Where fetched collateral is cached (default: $XDG_CACHE_HOME/sigil/pcs or
    /// ~/.cache/sigil/pcs).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// Runs `sigil-verify tdx`.
pub fn run(args: &TdxArgs) -> anyhow::Result<ExitCode> {
    let quote = read(&args.quote, Input::TdxQuote)?;
    let policy = args.common.load_policy()?;
    let now = args.common.time()?;
    let collateral = match &args.collateral {
        Some(path) => load_collateral(path)?,
        // Nothing to fetch for: the appraisal reports why the quote is refused.
        None if parse_tdx_quote(&quote).is_err() => TdxCollateral::new(Default::default()),
        None => {
            let Some(url) = args.pccs_url.clone().or_else(|| {
                std::env::var("PCCS_URL")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            }) else {
                bail!("give --collateral, or --pccs-url (or PCCS_URL) to fetch it");
            };
            fetch_collateral(
                &args.quote,
                &quote,
                &url,
                args.cache_dir.clone().or_else(default_cache_dir),
                now,
            )?
        }
    };
    let mut verifier =
        TdxVerifier::new(DefaultCrypto::default()).context("loading the pinned Intel root")?;
    let outcome = check_tdx(&mut verifier, &quote, &collateral, &policy, now);
    report(&outcome, args.common.format)
}

/// Reads a collateral bundle JSON, or a directory of raw PCS responses.
pub fn load_collateral(path: &Path) -> anyhow::Result<TdxCollateral> {
    if !path.is_dir() {
        let bytes = read(path, Input::Collateral)?;
        return TdxCollateral::from_json(&bytes)
            .map_err(|e| InputError::malformed(Input::Collateral, path, e).into());
    }
    let f = |name: &str| read(&path.join(name), Input::Collateral);
    let (pck_crl, pck_chain, root_crl) = (
        f("pck_crl.der")?,
        f("pck_crl_issuer_chain.pem")?,
        f("root_ca_crl.der")?,
    );
    let (tcb, tcb_chain, qe, qe_chain) = (
        f("tcb_info.json")?,
        f("tcb_info_issuer_chain.pem")?,
        f("qe_identity.json")?,
        f("qe_identity_issuer_chain.pem")?,
    );
    TdxCollateral::from_pcs(&PcsResponses {
        pck_crl: &pck_crl,
        pck_crl_issuer_chain: &pck_chain,
        root_ca_crl: &root_crl,
        tcb_info: &tcb,
        tcb_info_issuer_chain: &tcb_chain,
        qe_identity: &qe,
        qe_identity_issuer_chain: &qe_chain,
    })
    .map_err(|e| InputError::malformed(Input::Collateral, path, e).into())
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sigil").join("pcs"))
}

fn fetch_collateral(
    path: &Path,
    quote: &[u8],
    url: &str,
    cache_dir: Option<PathBuf>,
    now: UnixTime,
) -> anyhow::Result<TdxCollateral> {
    let parsed =
        parse_tdx_quote(quote).map_err(|e| InputError::malformed(Input::TdxQuote, path, e))?;
    let (fmspc, ca) = pck_fmspc_unverified(&parsed).ok_or_else(|| {
        InputError::malformed(
            Input::TdxQuote,
            path,
            "its PCK certificate has no readable FMSPC",
        )
    })?;
    let fetcher = CollateralFetcher::new(UreqHttp::default(), url, cache_dir);
    fetcher
        .fetch(&fmspc, ca, now)
        .with_context(|| format!("fetching collateral from {}", fetcher.base()))
}
