//! `sigil-verify gce-endorsement`: Google's signed launch endorsement of GCE
//! confidential-VM firmware, verified offline against the root the caller pins
//! (`crate::verify::gce_endorsement`, `docs/measure.md`).
//!
//! With `--snp-measurement` (and `--vcpus`) or `--mrtd`, the report's value must be among
//! the endorsed ones; with `--firmware`, the file must be the endorsed firmware.
//! `--format policy` prints the `[snp] measurements` / `[tdx] mrtds` a policy pins for
//! the endorsed firmware (the one vCPU count asked for, or every one endorsed).

use std::collections::BTreeMap;
use std::format;
use std::path::PathBuf;
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::String;
use std::vec::Vec;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{Format, Input, emit, hex_array, parse_rfc3339, read, read_der, report};
use crate::crypto::{Crypto, DefaultCrypto};
use crate::pipeline::Outcome;
use crate::time::UnixTime;
use crate::verify::gce_endorsement::{GceEndorsement, GceTdxMeasurement, verify_gce_endorsement};

/// Arguments of `sigil-verify gce-endorsement`.
#[derive(Debug, Args)]
pub struct GceEndorsementArgs {
    /// The endorsement (`VMLaunchEndorsement`, binary protobuf: Google's
    /// `gs://gce_tcb_integrity/ovmf_x64_csm/{sevsnp,tdx}/<hex>.binarypb`).
    #[arg(long, value_name = "FILE")]
    pub endorsement: PathBuf,
    /// Google's confidential-computing TCB root, PEM or DER (`GCE-cc-tcb-root_1.crt` from
    /// https://pki.goog/cloud_integrity/): the one root the endorsement may rest on. Its
    /// SHA-256 is printed; compare it with the one you pinned.
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// An SEV-SNP report's MEASUREMENT (96 hex digits) that must be endorsed.
    #[arg(long, value_name = "HEX", conflicts_with = "mrtd")]
    pub snp_measurement: Option<String>,
    /// The VM's vCPU count (launch VMSAs): the MEASUREMENT must be the one endorsed for it;
    /// with `--format policy`, only its measurement is printed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub vcpus: Option<u32>,
    /// A TD quote's MRTD (96 hex digits) that must be endorsed.
    #[arg(long, value_name = "HEX")]
    pub mrtd: Option<String>,
    /// A firmware image whose SHA-384 must be the endorsed firmware's.
    #[arg(long, value_name = "FILE")]
    pub firmware: Option<PathBuf>,
    /// Verification time, RFC 3339; defaults to now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GceFormat::Text)]
    pub format: GceFormat,
}

/// How `gce-endorsement` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GceFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object (`verdict`, `reasons`, `claims`).
    Json,
    /// The policy fragment pinning the endorsed values (accepted only; a rejection prints
    /// its reasons on stderr).
    Policy,
}

impl GceFormat {
    /// The envelope format of a rejection.
    pub fn envelope(self) -> Format {
        match self {
            Self::Json => Format::Json,
            Self::Text | Self::Policy => Format::Text,
        }
    }
}

/// What `gce-endorsement` reports.
#[derive(Debug, Serialize)]
pub struct GceClaims {
    /// SHA-256 of the root that vouched (hex): compare with the pinned one.
    pub root_sha256: String,
    /// The signing certificate's common name.
    pub signer: Option<String>,
    /// When the endorsement was made (Unix seconds).
    pub made: Option<u64>,
    /// The firmware's changelist.
    pub cl_spec: u64,
    /// The firmware's commit (hex).
    pub commit: String,
    /// SHA-384 of the endorsed firmware (hex).
    pub firmware_sha384: Option<String>,
    /// SEV-SNP reference values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sev_snp: Option<SnpClaims>,
    /// TDX reference values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdx: Option<TdxClaims>,
    /// The vCPU count whose endorsed MEASUREMENT `--snp-measurement` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_vcpus: Option<u32>,
    /// The endorsed TDX configuration `--mrtd` is (`ram_gib`, `early_accept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_tdx: Option<TdxMeasurementClaims>,
}

/// SEV-SNP reference values.
#[derive(Debug, Serialize)]
pub struct SnpClaims {
    /// Google's security version number.
    pub svn: u32,
    /// The guest policy to expect (hex, `0x`).
    pub policy: String,
    /// The family id (hex).
    pub family_id: Option<String>,
    /// The image id (hex).
    pub image_id: Option<String>,
    /// MEASUREMENT per vCPU count (hex).
    pub measurements: BTreeMap<u32, String>,
}

/// TDX reference values.
#[derive(Debug, Serialize)]
pub struct TdxClaims {
    /// Google's security version number.
    pub svn: u32,
    /// The endorsed configurations.
    pub measurements: Vec<TdxMeasurementClaims>,
}

/// One endorsed TDX configuration.
#[derive(Debug, Serialize)]
pub struct TdxMeasurementClaims {
    /// Memory, GiB.
    pub ram_gib: u32,
    /// Whether the firmware accepts all memory at boot.
    pub early_accept: bool,
    /// MRTD (hex).
    pub mrtd: String,
}

impl From<&GceTdxMeasurement> for TdxMeasurementClaims {
    fn from(m: &GceTdxMeasurement) -> Self {
        Self {
            ram_gib: m.ram_gib,
            early_accept: m.early_accept,
            mrtd: hex::encode(m.mrtd),
        }
    }
}

fn claims_of(e: &GceEndorsement) -> GceClaims {
    GceClaims {
        root_sha256: hex::encode(e.root_sha256),
        signer: e.signer.clone(),
        made: e.made.map(|t| t.0),
        cl_spec: e.cl_spec,
        commit: hex::encode(&e.commit),
        firmware_sha384: e.firmware_sha384.map(hex::encode),
        sev_snp: e.sev_snp.as_ref().map(|s| SnpClaims {
            svn: s.svn,
            policy: format!("{:#x}", s.policy),
            family_id: s.family_id.map(hex::encode),
            image_id: s.image_id.map(hex::encode),
            measurements: s
                .measurements
                .iter()
                .map(|(n, m)| (*n, hex::encode(m)))
                .collect(),
        }),
        tdx: e.tdx.as_ref().map(|t| TdxClaims {
            svn: t.svn,
            measurements: t
                .measurements
                .iter()
                .map(TdxMeasurementClaims::from)
                .collect(),
        }),
        matched_vcpus: None,
        matched_tdx: None,
    }
}

/// Runs `sigil-verify gce-endorsement`.
pub fn run(args: &GceEndorsementArgs) -> anyhow::Result<ExitCode> {
    // Usage first: values that cannot be read stop the command (exit 2).
    if args.vcpus.is_some() && args.snp_measurement.is_none() && args.format != GceFormat::Policy {
        anyhow::bail!("--vcpus needs --snp-measurement (or --format policy)");
    }
    let measurement = args
        .snp_measurement
        .as_deref()
        .map(|s| hex_array::<48>("snp-measurement", s))
        .transpose()?;
    let mrtd = args
        .mrtd
        .as_deref()
        .map(|s| hex_array::<48>("mrtd", s))
        .transpose()?;
    let at = match &args.at {
        None => UnixTime::now(),
        Some(s) => parse_rfc3339(s)?,
    };
    let endorsement = read(&args.endorsement, Input::GceEndorsement)?;
    let root = read_der(&args.root, Input::Certificate)?;
    let firmware = args
        .firmware
        .as_deref()
        .map(|p| read(p, Input::Firmware))
        .transpose()?;

    let crypto = DefaultCrypto::default();
    let verified = match verify_gce_endorsement(&crypto, &endorsement, &root, at) {
        Ok(v) => v,
        Err(e) => {
            let outcome = Outcome::<GceClaims> {
                claims: None,
                reasons: std::vec![format!("endorsement {}: {e}", args.endorsement.display())],
            };
            return finish(&outcome, None, args);
        }
    };
    let mut claims = claims_of(&verified);
    let mut reasons = Vec::new();
    if let Some(m) = &measurement {
        match verified.snp(m, args.vcpus) {
            Ok(n) => claims.matched_vcpus = Some(n),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if let Some(m) = &mrtd {
        match verified.tdx(m) {
            Ok(t) => claims.matched_tdx = Some(t.into()),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if let Some(fw) = &firmware
        && let Err(e) = verified.firmware(&crypto.sha384(fw))
    {
        reasons.push(e.to_string());
    }
    if args.format == GceFormat::Policy
        && reasons.is_empty()
        && let Some(n) = args.vcpus
        && verified
            .sev_snp
            .as_ref()
            .is_some_and(|s| !s.measurements.contains_key(&n))
    {
        reasons.push(format!(
            "the endorsement has no SEV-SNP measurement for {n} vCPUs"
        ));
    }
    let outcome = Outcome {
        claims: Some(claims),
        reasons,
    };
    finish(&outcome, Some(&verified), args)
}

fn finish(
    outcome: &Outcome<GceClaims>,
    verified: Option<&GceEndorsement>,
    args: &GceEndorsementArgs,
) -> anyhow::Result<ExitCode> {
    match (args.format, verified) {
        (GceFormat::Policy, Some(v)) if outcome.accepted() => {
            emit(&policy_fragment(v, args.vcpus).join("\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        (GceFormat::Policy, _) => {
            for r in &outcome.reasons {
                std::eprintln!("rejected: {r}");
            }
            Ok(ExitCode::from(1))
        }
        (format, _) => report(outcome, format.envelope()),
    }
}

/// The `[snp]` / `[tdx]` policy lines for the endorsed values.
fn policy_fragment(e: &GceEndorsement, vcpus: Option<u32>) -> Vec<String> {
    let mut out = std::vec![format!(
        "# Google's launch endorsement of GCE firmware{}, verified under the root with SHA-256 {}",
        e.firmware_sha384
            .map(|d| format!(" (SHA-384 {})", hex::encode(d)))
            .unwrap_or_default(),
        hex::encode(e.root_sha256)
    )];
    if let Some(s) = &e.sev_snp {
        let list: Vec<String> = s
            .measurements
            .iter()
            .filter(|(n, _)| vcpus.is_none_or(|want| want == **n))
            .map(|(n, m)| format!("  \"{}\", # {n} vCPUs", hex::encode(m)))
            .collect();
        out.push("[snp]".into());
        out.push(format!("measurements = [\n{}\n]", list.join("\n")));
    }
    if let Some(t) = &e.tdx {
        let list: Vec<String> = t
            .measurements
            .iter()
            .map(|m| {
                format!(
                    "  \"{}\", # {} GiB{}",
                    hex::encode(m.mrtd),
                    m.ram_gib,
                    if m.early_accept { ", early accept" } else { "" }
                )
            })
            .collect();
        out.push("[tdx]".into());
        out.push(format!("mrtds = [\n{}\n]", list.join("\n")));
    }
    out
}
