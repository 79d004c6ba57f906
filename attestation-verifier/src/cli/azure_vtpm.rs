//! `sigil-verify azure-vtpm`: an Azure confidential VM's vTPM quote with the
//! paravisor's HCL report and the hardware report that vouches for it
//! (see `docs/azure-vtpm.md`).
//!
//! Checked, in order: the TPM quote's signature under the attestation key
//! (`HCLAkPub`) of the HCL report's runtime claims, its qualifying data
//! against `--nonce`, the PCR values against its `pcrDigest`, the runtime
//! claims' digest in the hardware report's REPORT_DATA, and the hardware
//! report itself: an SEV-SNP report with its VCEK chain to the pinned AMD
//! roots under the policy, or a TD quote with its collateral
//! (`--collateral`). With `--eventlog`, the vTPM's event log replays to the
//! verified quote's PCRs (every PCR it extends). Without TDX collateral the TD quote's signature, QE and
//! PCK chain and its TCB status are NOT evaluated: the result then says so and
//! the verdict is `incomplete` (exit 1), never `accepted`.

use std::collections::BTreeMap;
use std::format;
use std::path::PathBuf;
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::String;
use std::vec::Vec;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use super::{CommonArgs, Format, Input, InputError, emit, read, read_der};
use crate::bundle::{MeasuredBoot, TpmQuote};
use crate::crypto::DefaultCrypto;
use crate::eventlog::tpm::parse_tpm_log;
use crate::evidence::azure_hcl::{HclReport, REPORT_TYPE_TDX, parse_hcl_report_snp_or_tdx};
use crate::evidence::azure_vtpm::{
    VtpmHardware, VtpmQuoteParts, parse_vtpm_evidence_json, parse_vtpm_quote_json,
};
use crate::evidence::snp::parse_snp_report;
use crate::evidence::tdx::parse_tdx_quote;
use crate::pipeline::{MeasuredBootClaims, SnpClaims, TdxClaims, check_snp, check_tdx};
use crate::receipt::TeeKind;
use crate::verify::azure_hcl::verify_claims_digest;
use crate::verify::azure_vtpm::{VtpmQuote, verify_vtpm_quote};
use crate::verify::measured::verify_measured_vtpm;
use crate::verify::snp::{SnpCollateral, SnpVerifier};
use crate::verify::tdx::TdxVerifier;

/// Arguments of `sigil-verify azure-vtpm`.
#[derive(Debug, Args)]
pub struct AzureVtpmArgs {
    /// Trustee's az-snp-vtpm / az-tdx-vtpm evidence JSON (format 0 or 1): the
    /// TPM quote, the HCL report and the VCEK or TD quote.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["hcl_report", "tpm_quote"])]
    pub evidence: Option<PathBuf>,
    /// The HCL report (vTPM NV index 0x01400001), when not in `--evidence`.
    #[arg(long, value_name = "FILE", requires = "tpm_quote")]
    pub hcl_report: Option<PathBuf>,
    /// The TPM quote JSON (`{"signature", "message", "pcrs"}`, hex), when not in `--evidence`.
    #[arg(long, value_name = "JSON", requires = "hcl_report")]
    pub tpm_quote: Option<PathBuf>,
    /// The expected qualifying data (nonce) of the TPM quote, hex.
    #[arg(long, value_name = "HEX")]
    pub nonce: String,
    /// SEV-SNP: the VCEK (DER or PEM), when not in `--evidence`.
    #[arg(long, value_name = "FILE", conflicts_with = "td_quote")]
    pub cert: Option<PathBuf>,
    /// SEV-SNP: the ASK; the pinned one when omitted.
    #[arg(long, value_name = "PEM")]
    pub ask: Option<PathBuf>,
    /// SEV-SNP: the ARK; must be the pinned one.
    #[arg(long, value_name = "PEM")]
    pub ark: Option<PathBuf>,
    /// TDX: the TD quote, when not in `--evidence`.
    #[arg(long, value_name = "FILE")]
    pub td_quote: Option<PathBuf>,
    /// TDX: collateral for the TD quote (bundle JSON or a directory of PCS
    /// files, as for `sigil-verify tdx`). Without it the TD quote is not verified.
    #[arg(long, value_name = "FILE|DIR")]
    pub collateral: Option<PathBuf>,
    /// The vTPM's TCG event log (the guest's
    /// /sys/kernel/security/tpm0/binary_bios_measurements): replayed, every PCR it
    /// extends must equal the quoted value; its events are listed in the claims.
    #[arg(long, value_name = "FILE")]
    pub eventlog: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// The TPM quote as printed.
#[derive(Debug, Serialize)]
pub struct TpmQuoteClaims {
    /// `verified` or `rejected`.
    pub status: &'static str,
    /// `extraData` (the nonce), hex.
    pub nonce: String,
    /// SHA-256 of the attestation key's modulus, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ak_modulus_sha256: Option<String>,
    /// `pcrDigest`, hex.
    pub pcr_digest: String,
    /// `clockInfo.clock`.
    pub clock: u64,
    /// `firmwareVersion`, hex.
    pub firmware_version: String,
    /// `qualifiedSigner`, hex.
    pub qualified_signer: String,
    /// The SHA-256 PCRs (`pcr00`..), only when the quote verified.
    pub pcrs: BTreeMap<String, String>,
}

/// The HCL report as printed.
#[derive(Debug, Serialize)]
pub struct HclClaims {
    /// Header version.
    pub version: u32,
    /// `sev-snp` or `tdx`.
    pub report_type: &'static str,
    /// The runtime claims' hash algorithm.
    pub runtime_claims_hash: &'static str,
    /// The runtime claims' `"user-data"`, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// `verified` when the hardware report's REPORT_DATA is the claims' digest.
    pub binding: &'static str,
}

/// The hardware report as printed.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HardwareClaims {
    /// The SEV-SNP report inside the HCL report, verified and appraised.
    SevSnp {
        /// `verified` or `rejected`.
        status: &'static str,
        /// What it says.
        #[serde(skip_serializing_if = "Option::is_none")]
        report: Option<Box<SnpClaims>>,
    },
    /// The TD quote.
    Tdx {
        /// `verified`, `rejected`, or `not_evaluated` (no collateral).
        status: &'static str,
        /// The TD quote's TCB status: `not_evaluated` without collateral.
        tcb_status: String,
        /// What it says (its body only, when not verified).
        #[serde(skip_serializing_if = "Option::is_none")]
        quote: Option<Box<TdxClaims>>,
    },
}

/// What `sigil-verify azure-vtpm` reports.
#[derive(Debug, Serialize)]
pub struct AzureVtpmCliClaims {
    /// `trustee-v0`, `trustee-v1` or `split-files`.
    pub evidence_format: String,
    /// The TPM quote.
    pub tpm_quote: TpmQuoteClaims,
    /// The HCL report.
    pub hcl: HclClaims,
    /// The hardware report.
    pub hardware: HardwareClaims,
    /// The vTPM event log (`--eventlog`): its events and the PCRs its replay covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_boot: Option<MeasuredBootClaims>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    verdict: &'static str,
    reasons: &'a [String],
    claims: Option<&'a AzureVtpmCliClaims>,
}

struct Loaded {
    format: String,
    quote: VtpmQuoteParts,
    hcl: Vec<u8>,
    hardware: VtpmHardware,
}

fn load(args: &AzureVtpmArgs) -> anyhow::Result<Loaded> {
    if let Some(path) = &args.evidence {
        let json = read(path, Input::AzureVtpmEvidence)?;
        let ev = parse_vtpm_evidence_json(&json)
            .map_err(|e| InputError::malformed(Input::AzureVtpmEvidence, path, e))?;
        if args.cert.is_some() || args.td_quote.is_some() {
            bail!("--cert and --td-quote go with --hcl-report, not --evidence");
        }
        return Ok(Loaded {
            format: format!("trustee-v{}", ev.format),
            quote: ev.tpm_quote,
            hcl: ev.hcl_report,
            hardware: ev.hardware,
        });
    }
    let (Some(hcl), Some(quote)) = (&args.hcl_report, &args.tpm_quote) else {
        bail!("give --evidence, or --hcl-report with --tpm-quote");
    };
    let quote_json = read(quote, Input::AzureVtpmEvidence)?;
    let quote_parts = parse_vtpm_quote_json(&quote_json)
        .map_err(|e| InputError::malformed(Input::AzureVtpmEvidence, quote, e))?;
    let hardware = match (&args.cert, &args.td_quote) {
        (Some(cert), None) => VtpmHardware::Snp {
            vcek: read_der(cert, Input::Certificate)?,
        },
        (None, Some(q)) => VtpmHardware::Tdx {
            td_quote: read(q, Input::TdxQuote)?,
        },
        _ => bail!("give --cert (SEV-SNP) or --td-quote (TDX) with --hcl-report"),
    };
    Ok(Loaded {
        format: "split-files".into(),
        quote: quote_parts,
        hcl: read(hcl, Input::AzureVtpmEvidence)?,
        hardware,
    })
}

fn quote_claims(parts: &VtpmQuoteParts, verified: Option<&VtpmQuote>) -> Option<TpmQuoteClaims> {
    let attest = match verified {
        Some(q) => q.attest.clone(),
        None => crate::evidence::tpm2::parse_tpms_attest(&parts.attest).ok()?,
    };
    Some(TpmQuoteClaims {
        status: if verified.is_some() {
            "verified"
        } else {
            "rejected"
        },
        nonce: hex::encode(&attest.extra_data),
        ak_modulus_sha256: verified.map(|q| hex::encode(q.ak_modulus_sha256)),
        pcr_digest: hex::encode(&attest.quote.pcr_digest),
        clock: attest.clock_info.clock,
        firmware_version: format!("{:#018x}", attest.firmware_version),
        qualified_signer: hex::encode(&attest.qualified_signer),
        pcrs: verified
            .map(|q| {
                q.pcrs
                    .iter()
                    .map(|p| (format!("pcr{:02}", p.index), hex::encode(p.sha256)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn hcl_claims(hcl: &HclReport, bound: bool) -> HclClaims {
    HclClaims {
        version: hcl.version,
        report_type: if hcl.report_type == REPORT_TYPE_TDX {
            "tdx"
        } else {
            "sev-snp"
        },
        runtime_claims_hash: hcl.hash_type.name(),
        user_data: hcl.claims.user_data.as_ref().map(hex::encode),
        binding: if bound { "verified" } else { "rejected" },
    }
}

/// Runs `sigil-verify azure-vtpm`.
pub fn run(args: &AzureVtpmArgs) -> anyhow::Result<ExitCode> {
    let nonce = hex::decode(args.nonce.trim()).context("--nonce is not hex")?;
    let loaded = load(args)?;
    let policy = args.common.load_policy()?;
    let now = args.common.time()?;
    let cert = |p: &std::path::Path| read_der(p, Input::Certificate);
    let ask = args.ask.as_deref().map(cert).transpose()?;
    let ark = args.ark.as_deref().map(cert).transpose()?;
    let tdx_collateral = args
        .collateral
        .as_deref()
        .map(super::tdx::load_collateral)
        .transpose()?;
    let crypto = DefaultCrypto::default();
    let mut reasons = Vec::new();

    let hcl = match parse_hcl_report_snp_or_tdx(&loaded.hcl) {
        Ok(h) => h,
        Err(e) => {
            reasons.push(format!("HCL report: {e}"));
            return finish("rejected", &reasons, None, args.common.format);
        }
    };
    // Steps 1 to 4 of the quote.
    let verified = match verify_vtpm_quote(
        &crypto,
        &hcl.claims,
        &loaded.quote.attest,
        &loaded.quote.signature,
        &loaded.quote.pcrs,
        &nonce,
    ) {
        Ok(v) => Some(v),
        Err(f) => {
            reasons.extend(f.0.iter().map(|e| format!("TPM quote: {e}")));
            None
        }
    };
    if let Some(q) = &verified {
        let mut violations = Vec::new();
        policy.vtpm.evaluate(Some(q), &mut violations);
        reasons.extend(violations.iter().map(|v| format!("{v}")));
    }
    let Some(tpm_quote) = quote_claims(&loaded.quote, verified.as_deref()) else {
        return finish("rejected", &reasons, None, args.common.format);
    };
    let mut replayed = None;
    let measured_boot = match &args.eventlog {
        None => None,
        Some(path) => {
            let m = MeasuredBoot {
                event_log: Some(read(path, Input::EventLog)?),
                agent_events: Vec::new(),
                tpm_quote: Some(TpmQuote {
                    attest: loaded.quote.attest.clone(),
                    signature: loaded.quote.signature.clone(),
                    pcrs: loaded.quote.pcrs.clone(),
                }),
            };
            let tee = if hcl.report_type == REPORT_TYPE_TDX {
                TeeKind::Tdx
            } else {
                TeeKind::SevSnp
            };
            replayed = match verified
                .as_ref()
                .and_then(|q| verify_measured_vtpm(&m, q.get(), tee))
            {
                Some(Ok(v)) => Some(v),
                Some(Err(es)) => {
                    reasons.extend(es.iter().map(|e| format!("{e}")));
                    None
                }
                // The quote did not verify (its reasons are given): the log is parsed
                // for its claims, never replayed against unverified PCRs.
                None => {
                    if let Some(Err(e)) = m.event_log.as_deref().map(parse_tpm_log) {
                        reasons.push(format!("event log: {e}"));
                    }
                    None
                }
            };
            MeasuredBootClaims::of(&m, replayed.as_ref())
        }
    };
    if verified.is_some() {
        let mut violations = Vec::new();
        policy
            .vtpm
            .evaluate_events(replayed.as_ref(), &mut violations);
        reasons.extend(violations.iter().map(|v| format!("{v}")));
    }

    // The hardware report: the claims' binding, then the report itself.
    let mut incomplete = false;
    let (report_data, hardware) = match &loaded.hardware {
        VtpmHardware::Snp { vcek } => {
            if hcl.report_type == REPORT_TYPE_TDX {
                reasons.push("HCL report carries a TDX report but a VCEK was given".into());
                return finish("rejected", &reasons, None, args.common.format);
            }
            let mut v = SnpVerifier::new(crypto).context("loading the pinned AMD roots")?;
            let collateral = SnpCollateral {
                vek: vcek,
                intermediate: ask.as_deref(),
                ark: ark.as_deref(),
                crl: None,
            };
            let out = check_snp(&mut v, &hcl.snp_report, &collateral, &policy, now);
            let status = if out.accepted() {
                "verified"
            } else {
                "rejected"
            };
            reasons.extend(out.reasons.iter().map(|r| format!("SEV-SNP report: {r}")));
            let rd = parse_snp_report(&hcl.snp_report)
                .ok()
                .map(|r| r.report_data);
            (
                rd,
                HardwareClaims::SevSnp {
                    status,
                    report: out.claims.map(Box::new),
                },
            )
        }
        VtpmHardware::Tdx { td_quote } => {
            if hcl.report_type != REPORT_TYPE_TDX {
                reasons
                    .push("HCL report carries an SEV-SNP report but a TD quote was given".into());
                return finish("rejected", &reasons, None, args.common.format);
            }
            let parsed = parse_tdx_quote(td_quote);
            let rd = parsed.as_ref().ok().map(|q| q.body.report_data);
            let hw = match (&tdx_collateral, &parsed) {
                (_, Err(e)) => {
                    reasons.push(format!("TD quote: {e}"));
                    HardwareClaims::Tdx {
                        status: "rejected",
                        tcb_status: "not_evaluated".into(),
                        quote: None,
                    }
                }
                (Some(collateral), Ok(_)) => {
                    let mut v =
                        TdxVerifier::new(crypto).context("loading the pinned Intel root")?;
                    let out = check_tdx(&mut v, td_quote, collateral, &policy, now);
                    reasons.extend(out.reasons.iter().map(|r| format!("TD quote: {r}")));
                    let tcb = out
                        .claims
                        .as_ref()
                        .and_then(|c| c.tcb_status.clone())
                        .unwrap_or_else(|| "not_evaluated".into());
                    HardwareClaims::Tdx {
                        status: if out.accepted() {
                            "verified"
                        } else {
                            "rejected"
                        },
                        tcb_status: tcb,
                        quote: out.claims.map(Box::new),
                    }
                }
                (None, Ok(q)) => {
                    incomplete = true;
                    reasons.push(
                        "TD quote not verified: no TDX collateral given (--collateral); its \
                         signature, QE report, PCK chain and TCB status were not evaluated"
                            .into(),
                    );
                    HardwareClaims::Tdx {
                        status: "not_evaluated",
                        tcb_status: "not_evaluated".into(),
                        quote: Some(Box::new(TdxClaims::new(q, None))),
                    }
                }
            };
            (rd, hw)
        }
    };
    let bound = match report_data.map(|rd| verify_claims_digest(&crypto, &hcl, &rd)) {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            reasons.push(format!("HCL report: {e}"));
            false
        }
        None => false,
    };
    let claims = AzureVtpmCliClaims {
        evidence_format: loaded.format,
        tpm_quote,
        hcl: hcl_claims(&hcl, bound),
        hardware,
        measured_boot,
    };
    let only_incomplete = incomplete && reasons.len() == 1;
    let verdict = if reasons.is_empty() {
        "accepted"
    } else if only_incomplete {
        "incomplete"
    } else {
        "rejected"
    };
    finish(verdict, &reasons, Some(&claims), args.common.format)
}

fn finish(
    verdict: &'static str,
    reasons: &[String],
    claims: Option<&AzureVtpmCliClaims>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let env = Envelope {
        verdict,
        reasons,
        claims,
    };
    let out = match format {
        Format::Json => serde_json::to_string(&env)?,
        Format::Text => super::text(&serde_json::to_value(&env)?),
    };
    emit(&out)?;
    Ok(if verdict == "accepted" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
