//! Blocking HTTP(S) for the collateral services, with a timeout.
//!
//! `ureq` (rustls) as the verifier crate's fetchers use it, but with the agent's
//! configured timeout and a POST for OCSP requests.

use std::time::Duration;

use attestation_verifier::pcs::{FetchError, HttpGet, HttpResponse};

/// An HTTP client whose requests give up after a timeout.
#[derive(Clone, Debug)]
pub struct AgentHttp {
    agent: ureq::Agent,
}

/// A ureq agent whose every request ends within `timeout`, answering HTTP error statuses
/// as responses (the callers report them as typed errors).
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

impl AgentHttp {
    /// A client whose every request (connect, send, receive) ends within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            agent: agent(timeout),
        }
    }

    /// `POST url` with `body` as `content_type`.
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, FetchError> {
        let resp = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body);
        read(url, resp)
    }
}

fn read(
    url: &str,
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpResponse, FetchError> {
    let http = |e: ureq::Error| FetchError::Http {
        url: url.into(),
        reason: e.to_string(),
    };
    let mut resp = resp.map_err(http)?;
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().map_err(http)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

impl HttpGet for AgentHttp {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        read(url, self.agent.get(url).call())
    }
}
