//! `sigil-verify eventlog`: replay a TDX boot event log (CCEL or dstack JSON) and,
//! with a quote, compare the replayed RTMRs with the quote's (see `docs/eventlog.md`);
//! with `--tpm`, replay a TPM's TCG event log (a vTPM's) into its SHA-256 PCRs and,
//! with `--pcrs`, compare them with the PCR values of the same boot, and apply the
//! policy's `[vtpm] events` rules to it.
//!
//! Exit status: 0 replayed (no quote, no PCRs, no rules) or accepted (every register
//! equals the quote's or the given PCRs, the quote verifies when collateral is given,
//! the rules hold); 1 rejected (the log or the quote does not parse, a register
//! differs, the quote fails verification, a rule does not hold; the reasons say which);
//! 2 the command could not run (bad flag, unreadable file, bad collateral or PCR file).

use std::format;
use std::path::PathBuf;
use std::prelude::rust_2024::*;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::vec::Vec;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::{CommonArgs, Format, Input, emit, read};
use crate::bundle::MeasuredBoot;
use crate::crypto::DefaultCrypto;
use crate::eventlog::tpm::{TpmEventLog, parse_tpm_log};
use crate::eventlog::{EventLog, EventLogError, mismatches, parse_event_log};
use crate::evidence::tdx::parse_tdx_quote;
use crate::pipeline::{EventClaim, PcrEventClaim, TdxClaims, check_tdx_measured};
use crate::verdict::Verified;
use crate::verify::measured::MeasuredBootEvidence;
use crate::verify::tdx::TdxVerifier;

/// Arguments of `sigil-verify eventlog`.
#[derive(Debug, Args)]
pub struct EventLogArgs {
    /// The event log: the CCEL data area (binary, TCG crypto-agile format, e.g.
    /// /sys/firmware/acpi/tables/data/CCEL) or a dstack JSON event log (detected by
    /// its leading `[`).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The TDX quote of the same boot: its RTMR0..RTMR3 must equal the replay.
    #[arg(long, value_name = "FILE")]
    pub quote: Option<PathBuf>,
    /// Collateral for the quote (bundle JSON or a directory of PCS files, as for
    /// `sigil-verify tdx`): the quote is then verified and appraised under the policy.
    /// Without it only the quote's body is read and its signature is NOT checked.
    #[arg(long, value_name = "FILE|DIR", requires = "quote")]
    pub collateral: Option<PathBuf>,
    /// The log is a TPM's TCG event log (a vTPM's, e.g.
    /// /sys/kernel/security/tpm0/binary_bios_measurements), replayed into the SHA-256
    /// PCRs 0..23, not a TDX event log.
    #[arg(long, conflicts_with_all = ["quote", "collateral"])]
    pub tpm: bool,
    /// With --tpm: the SHA-256 PCR values of the same boot, a JSON object
    /// `{"pcr00": "hex", ...}` (as `cpu.tpm_quote.pcrs` of a bundle's claims): every PCR
    /// the log extends must be given and equal its replay. The values are taken as
    /// given: no quote vouches for them here (`azure-vtpm --eventlog` checks a quote).
    #[arg(long, value_name = "FILE", requires = "tpm")]
    pub pcrs: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: its fields carry the docs
    pub common: CommonArgs,
}

/// What `sigil-verify eventlog` reports.
#[derive(Debug, Serialize)]
pub struct EventLogClaims {
    /// `ccel` or `json`.
    pub log_format: &'static str,
    /// Replayed RTMR0 (hex).
    pub rtmr0: String,
    /// Replayed RTMR1 (hex).
    pub rtmr1: String,
    /// Replayed RTMR2 (hex).
    pub rtmr2: String,
    /// Replayed RTMR3 (hex).
    pub rtmr3: String,
    /// `verified` (collateral given and the quote verified), `not_checked` (only the
    /// quote's body was read), or absent without `--quote`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_signature: Option<&'static str>,
    /// The quote's claims, when a quote was given and parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<TdxClaims>,
    /// The events, in log order.
    pub events: Vec<EventClaim>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    verdict: &'static str,
    reasons: &'a [String],
    claims: Option<&'a EventLogClaims>,
}

/// What `sigil-verify eventlog --tpm` reports.
#[derive(Debug, Serialize)]
pub struct TpmLogClaims {
    /// Always `tpm`.
    pub log_format: &'static str,
    /// The replayed SHA-256 value of every PCR the log extends, `pcr00`.. (hex).
    pub pcrs: std::collections::BTreeMap<String, String>,
    /// `matched` (every PCR the log extends equals the given value), `mismatched`, or
    /// absent without `--pcrs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcrs_given: Option<&'static str>,
    /// The events, in log order.
    pub events: Vec<PcrEventClaim>,
}

#[derive(Serialize)]
struct TpmEnvelope<'a> {
    verdict: &'static str,
    reasons: &'a [String],
    claims: Option<&'a TpmLogClaims>,
}

/// Runs `sigil-verify eventlog`.
pub fn run(args: &EventLogArgs) -> anyhow::Result<ExitCode> {
    if args.tpm {
        return run_tpm(args);
    }
    let bytes = read(&args.log, Input::EventLog)?;
    let quote = args
        .quote
        .as_deref()
        .map(|p| read(p, Input::TdxQuote))
        .transpose()?;
    let log = match parse_event_log(&bytes) {
        Ok(log) => log,
        Err(e) => {
            let reasons = [format!("event log {}: {e}", args.log.display())];
            return finish("rejected", &reasons, None, args.common.format);
        }
    };
    let replayed = log.replay();
    let mut claims = claims_of(&log, &replayed);
    let Some(quote) = quote else {
        return finish("replayed", &[], Some(&claims), args.common.format);
    };

    let mut reasons = Vec::new();
    let rtmrs = match &args.collateral {
        Some(path) => {
            let collateral = super::tdx::load_collateral(path)?;
            let policy = args.common.load_policy()?;
            let now = args.common.time()?;
            let mut verifier = TdxVerifier::new(DefaultCrypto::default())
                .context("loading the pinned Intel root")?;
            // The log goes with the quote: its replay is checked against the verified
            // registers and the policy's [tdx] event rules are appraised against it.
            let measured = MeasuredBoot {
                event_log: Some(bytes.clone()),
                ..MeasuredBoot::default()
            };
            let outcome =
                check_tdx_measured(&mut verifier, &quote, &collateral, &measured, &policy, now);
            // Replay mismatches are reported once, below, for verified and unverified
            // quotes alike.
            reasons.extend(
                outcome
                    .reasons
                    .iter()
                    .filter(|r| !r.starts_with("measured boot:"))
                    .map(|r| format!("quote: {r}")),
            );
            claims.quote_signature = Some("verified");
            claims.quote = outcome.claims;
            parse_tdx_quote(&quote).ok().map(|q| q.body.rtmr)
        }
        None => match parse_tdx_quote(&quote) {
            Ok(q) => {
                std::eprintln!(
                    "sigil-verify: warning: no --collateral: the quote's signature was not checked"
                );
                claims.quote_signature = Some("not_checked");
                claims.quote = Some(TdxClaims::new(&q, None));
                Some(q.body.rtmr)
            }
            Err(e) => {
                reasons.push(format!("quote: {e}"));
                None
            }
        },
    };
    if let Some(rtmrs) = rtmrs {
        reasons.extend(
            mismatches(&replayed, &rtmrs)
                .iter()
                .map(|e| format!("event log: {e}")),
        );
    }
    if reasons.is_empty() {
        if claims.quote_signature == Some("not_checked") {
            // Accepted as far as the replay goes; the note travels with the verdict.
            let note = [
                "the quote's signature and collateral were not checked (no --collateral): \
                         the RTMRs match a quote that is itself unverified"
                    .to_string(),
            ];
            return finish("accepted", &note, Some(&claims), args.common.format);
        }
        finish("accepted", &[], Some(&claims), args.common.format)
    } else {
        finish("rejected", &reasons, Some(&claims), args.common.format)
    }
}

fn claims_of(log: &EventLog, replayed: &[[u8; 48]; 4]) -> EventLogClaims {
    let [r0, r1, r2, r3] = replayed;
    EventLogClaims {
        log_format: log.format.name(),
        rtmr0: hex::encode(r0),
        rtmr1: hex::encode(r1),
        rtmr2: hex::encode(r2),
        rtmr3: hex::encode(r3),
        quote_signature: None,
        quote: None,
        events: EventClaim::all(log),
    }
}

fn finish(
    verdict: &'static str,
    reasons: &[String],
    claims: Option<&EventLogClaims>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let out = match format {
        Format::Json => serde_json::to_string(&Envelope {
            verdict,
            reasons,
            claims,
        })?,
        Format::Text => text(verdict, reasons, claims),
    };
    emit(&out)?;
    Ok(if verdict == "rejected" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn text(verdict: &str, reasons: &[String], claims: Option<&EventLogClaims>) -> String {
    let mut out = format!("verdict: {verdict}\n");
    for r in reasons {
        out.push_str(&format!("reason: {r}\n"));
    }
    if let Some(c) = claims {
        out.push_str(&format!("log format: {}\n", c.log_format));
        for (i, v) in [&c.rtmr0, &c.rtmr1, &c.rtmr2, &c.rtmr3].iter().enumerate() {
            out.push_str(&format!("rtmr{i}: {v}\n"));
        }
        if let Some(s) = c.quote_signature {
            out.push_str(&format!("quote signature: {s}\n"));
        }
        out.push_str(&format!("events: {}\n", c.events.len()));
        for e in &c.events {
            let reg = e
                .rtmr
                .map_or_else(|| "-    ".to_string(), |r| format!("RTMR{r}"));
            out.push_str(&format!(
                "  {:>3} {reg} {}… {}\n",
                e.index,
                e.sha384.get(..16).unwrap_or_default(),
                e.description
            ));
        }
    }
    out.trim_end().into()
}

/// `sigil-verify eventlog --tpm`.
fn run_tpm(args: &EventLogArgs) -> anyhow::Result<ExitCode> {
    let bytes = read(&args.log, Input::EventLog)?;
    let given = args.pcrs.as_deref().map(read_pcrs).transpose()?;
    let policy = args.common.load_policy()?;
    let log = match parse_tpm_log(&bytes) {
        Ok(log) => log,
        Err(e) => {
            let reasons = [format!("event log {}: {e}", args.log.display())];
            return finish_tpm("rejected", &reasons, None, args.common.format);
        }
    };
    let replayed = log.replay();
    let touched = log.touched();
    let mut claims = TpmLogClaims {
        log_format: "tpm",
        pcrs: touched
            .iter()
            .filter_map(|&p| {
                let v = replayed.get(usize::from(p))?;
                Some((format!("pcr{p:02}"), hex::encode(v)))
            })
            .collect(),
        pcrs_given: None,
        events: PcrEventClaim::all(&log),
    };
    let mut reasons = Vec::new();
    if let Some(given) = &given {
        match log.check_against(given) {
            Ok(_) => claims.pcrs_given = Some("matched"),
            Err(es) => {
                claims.pcrs_given = Some("mismatched");
                reasons.extend(es.iter().map(|e| match e {
                    EventLogError::PcrMismatch {
                        pcr,
                        replayed,
                        expected,
                    } => format!(
                        "event log: PCR {pcr} replays to {} but --pcrs gives {}",
                        hex::encode(replayed),
                        hex::encode(expected)
                    ),
                    EventLogError::PcrNotQuoted { pcr } => {
                        format!("event log: PCR {pcr} is extended by the log but not in --pcrs")
                    }
                    other => format!("event log: {other}"),
                }));
            }
        }
    }
    let rules = !policy.vtpm.events.is_empty();
    if rules {
        let mut violations = Vec::new();
        policy
            .vtpm
            .evaluate_events(Some(&as_evidence(log, touched)), &mut violations);
        reasons.extend(violations.iter().map(|v| format!("{v}")));
    }
    if !reasons.is_empty() {
        return finish_tpm("rejected", &reasons, Some(&claims), args.common.format);
    }
    if given.is_none() && !rules {
        return finish_tpm("replayed", &[], Some(&claims), args.common.format);
    }
    // Accepted as far as the log goes; the note travels with the verdict.
    let note = [
        "the log and the PCR values were not checked against a signed quote (azure-vtpm \
         --eventlog checks a vTPM quote)"
            .to_string(),
    ];
    finish_tpm("accepted", &note, Some(&claims), args.common.format)
}

/// The log as the policy's `[vtpm] events` rules read it: every PCR it extends counted
/// as covered (whatever vouches for the PCRs is the caller's).
fn as_evidence(log: TpmEventLog, touched: Vec<u8>) -> Verified<MeasuredBootEvidence> {
    Verified::new(MeasuredBootEvidence {
        log: None,
        agent_events: Vec::new(),
        covered: [false; 4],
        rtmrs: [[0; 48]; 4],
        tpm_log: Some(log),
        pcrs_covered: touched,
    })
}

/// `--pcrs`: `{"pcr00": "hex", ...}`, SHA-256 values. A file that is not that JSON is a
/// usage error (exit 2).
fn read_pcrs(path: &std::path::Path) -> anyhow::Result<Vec<(u8, [u8; 32])>> {
    let bytes = read(path, Input::EventLog)?;
    let map: std::collections::BTreeMap<String, String> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a JSON object of PCR values", path.display()))?;
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in &map {
        let index: u8 = name
            .strip_prefix("pcr")
            .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .filter(|&i| i < 24)
            .with_context(|| {
                format!(
                    "{}: {name:?} is not a PCR name (pcr00..pcr23)",
                    path.display()
                )
            })?;
        let v: [u8; 32] = hex::decode(value.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .with_context(|| {
                format!(
                    "{}: {name} is not 32 bytes of hex (SHA-256)",
                    path.display()
                )
            })?;
        out.push((index, v));
    }
    Ok(out)
}

fn finish_tpm(
    verdict: &'static str,
    reasons: &[String],
    claims: Option<&TpmLogClaims>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let out = match format {
        Format::Json => serde_json::to_string(&TpmEnvelope {
            verdict,
            reasons,
            claims,
        })?,
        Format::Text => {
            let mut out = format!("verdict: {verdict}\n");
            for r in reasons {
                out.push_str(&format!("reason: {r}\n"));
            }
            if let Some(c) = claims {
                out.push_str("log format: tpm\n");
                for (name, v) in &c.pcrs {
                    out.push_str(&format!("{name}: {v}\n"));
                }
                if let Some(g) = c.pcrs_given {
                    out.push_str(&format!("given PCRs: {g}\n"));
                }
                out.push_str(&format!("events: {}\n", c.events.len()));
                for e in &c.events {
                    out.push_str(&format!(
                        "  {:>3} PCR{:<2} {}… {}\n",
                        e.index,
                        e.pcr,
                        e.sha256.get(..16).unwrap_or_default(),
                        e.description
                    ));
                }
            }
            out.trim_end().into()
        }
    };
    emit(&out)?;
    Ok(if verdict == "rejected" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
