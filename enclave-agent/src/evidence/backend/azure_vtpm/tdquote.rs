//! The TD quote of an Azure TDX confidential VM.
//!
//! The guest of an Azure TDX VM runs above a paravisor and cannot reach the TDX
//! module's quoting path itself: the paravisor puts the TD report (TDREPORT_STRUCT,
//! 1024 bytes) into the HCL report, and Azure's instance metadata service turns a TD
//! report into a DCAP quote:
//!
//! ```text
//! POST http://169.254.169.254/acc/tdquote
//! {"report": "<base64url of the TD report>"}        ->  200 {"quote": "<base64url>"}
//! ```
//!
//! (as Azure's own guest tools call it). Nothing in the answer is trusted: the agent
//! parses the quote and checks that its REPORT_DATA commits to the HCL report's runtime
//! claims before it leaves the agent, and the verifier checks the quote's signature
//! chain to Intel's pinned root.

use std::time::Duration;

use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};

/// Azure IMDS's TD quote endpoint (reachable only inside the VM).
pub use crate::config::IMDS_TDQUOTE_URL;
/// Bytes of a TD report (TDREPORT_STRUCT).
pub const TD_REPORT_LEN: usize = 1024;
/// The largest answer read from the quoting service: a TD quote with its PCK chain is
/// a few KiB; the base64 and JSON around it add a third.
pub const MAX_TDQUOTE_RESPONSE: u64 = 256 << 10;

/// Why no TD quote came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TdQuoteError {
    /// The request did not complete (connection, timeout, an answer over the size cap).
    #[error("TD quote request to {url}: {reason}")]
    Http {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The service answered with an error status.
    #[error("TD quote request to {url}: HTTP status {status}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status.
        status: u16,
    },
    /// The answer is not `{"quote": "<base64url>"}`.
    #[error("TD quote answer from {url} is not valid: {reason}")]
    Answer {
        /// The endpoint.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The TD report handed in is not one.
    #[error("a TD report is {TD_REPORT_LEN} bytes, {0} given")]
    ReportLength(usize),
}

/// Turns a TD report into a TD quote. Azure IMDS in production ([`ImdsTdQuote`]); tests
/// stand in for it.
pub trait TdQuoteSource: Send + Sync {
    /// The DCAP quote of `td_report` (exactly [`TD_REPORT_LEN`] bytes).
    fn td_quote(&self, td_report: &[u8]) -> Result<Vec<u8>, TdQuoteError>;
}

impl<T: TdQuoteSource + ?Sized> TdQuoteSource for std::sync::Arc<T> {
    fn td_quote(&self, td_report: &[u8]) -> Result<Vec<u8>, TdQuoteError> {
        (**self).td_quote(td_report)
    }
}

/// Azure IMDS's quoting endpoint.
#[derive(Debug)]
pub struct ImdsTdQuote {
    agent: ureq::Agent,
    url: String,
}

#[derive(serde::Deserialize)]
struct Answer {
    quote: String,
}

impl ImdsTdQuote {
    /// A client of `url` (normally [`IMDS_TDQUOTE_URL`]) whose requests end within
    /// `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            url: url.into(),
        }
    }
}

impl TdQuoteSource for ImdsTdQuote {
    fn td_quote(&self, td_report: &[u8]) -> Result<Vec<u8>, TdQuoteError> {
        if td_report.len() != TD_REPORT_LEN {
            return Err(TdQuoteError::ReportLength(td_report.len()));
        }
        let http = |e: ureq::Error| TdQuoteError::Http {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let body = serde_json::json!({ "report": Base64UrlUnpadded::encode_string(td_report) });
        let mut resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(http)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(TdQuoteError::Status {
                url: self.url.clone(),
                status,
            });
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_TDQUOTE_RESPONSE)
            .read_to_vec()
            .map_err(http)?;
        decode_answer(&bytes).map_err(|reason| TdQuoteError::Answer {
            url: self.url.clone(),
            reason,
        })
    }
}

/// The quote in the service's answer; base64url with or without padding, as encoders
/// differ.
fn decode_answer(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let a: Answer = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let quote = if a.quote.ends_with('=') {
        Base64Url::decode_vec(&a.quote)
    } else {
        Base64UrlUnpadded::decode_vec(&a.quote)
    }
    .map_err(|e| format!("\"quote\" is not base64url: {e}"))?;
    if quote.is_empty() {
        return Err("\"quote\" is empty".into());
    }
    Ok(quote)
}

#[cfg(test)]
mod tests;
