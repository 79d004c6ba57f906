//! `sigil-verify eventlog`: replay a TDX boot event log (CCEL or dstack JSON) and,
//! with a quote, compare the replayed RTMRs with the quote's (see `docs/eventlog.md`).
//!
//! Exit status: 0 replayed (no quote) or accepted (every RTMR equals the quote's, and
//! the quote verifies when collateral is given); 1 rejected (the log or the quote does
//! not parse, a register differs, or the quote fails verification; the reasons say
//! which); 2 the command could not run (bad flag, unreadable file, bad collateral).

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
use crate::eventlog::{EventLog, mismatches, parse_event_log};
use crate::evidence::tdx::parse_tdx_quote;
use crate::pipeline::{EventClaim, TdxClaims, check_tdx_measured};
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

/// Runs `sigil-verify eventlog`.
pub fn run(args: &EventLogArgs) -> anyhow::Result<ExitCode> {
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
