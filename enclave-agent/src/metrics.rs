//! Prometheus metrics (OpenMetrics text at `GET /metrics` on `metrics_listen`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sigil_agent_jobs` | gauge | `state`: jobs in each state |
//! | `sigil_agent_job_duration_seconds` | histogram | `outcome`: wall time of finished jobs |
//! | `sigil_agent_evidence_seconds` | histogram | `kind` (`attested_key`, `fresh_quote`, `challenge`): evidence collection latency |
//! | `sigil_agent_receipt_seconds` | histogram | time to commit outputs, sign and store a receipt |
//! | `sigil_agent_submissions_total` | counter | `result` (`created`, `existing`, `rejected`) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::store::JobState;

/// A label set with one label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// Job state.
    pub state: String,
}

/// Outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// Final state.
    pub outcome: String,
}

/// Evidence kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What was collected.
    pub kind: String,
}

/// Submission result label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `created`, `existing` or `rejected`.
    pub result: String,
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs: Family<StateLabel, Gauge>,
    durations: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
    evidence: Family<KindLabel, Histogram, fn() -> Histogram>,
    receipt: Histogram,
    submissions: Family<ResultLabel, Counter>,
}

fn duration_histogram() -> Histogram {
    // 10 ms .. ~3 days.
    Histogram::new(exponential_buckets(0.01, 4.0, 14))
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sigil_agent");
        let jobs = Family::<StateLabel, Gauge>::default();
        let durations: Family<OutcomeLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let evidence: Family<KindLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let receipt = latency_histogram();
        let submissions = Family::<ResultLabel, Counter>::default();
        registry.register("jobs", "Jobs in each state", jobs.clone());
        registry.register(
            "job_duration_seconds",
            "Wall time of finished jobs",
            durations.clone(),
        );
        registry.register(
            "evidence_seconds",
            "Evidence collection latency",
            evidence.clone(),
        );
        registry.register(
            "receipt_seconds",
            "Time to commit outputs, sign and store a receipt",
            receipt.clone(),
        );
        registry.register(
            "submissions",
            "Job submissions by result",
            submissions.clone(),
        );
        for s in JobState::ALL {
            let _ = jobs.get_or_create(&state(s)).set(0);
        }
        Self {
            registry,
            jobs,
            durations,
            evidence,
            receipt,
            submissions,
        }
    }

    /// Sets the gauge of `s` (start-up, from the store).
    pub fn set_jobs(&self, s: JobState, n: u64) {
        let _ = self
            .jobs
            .get_or_create(&state(s))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A job moved between states (`from` is `None` for a new job).
    pub fn transition(&self, from: Option<JobState>, to: JobState) {
        if from == Some(to) {
            return;
        }
        if let Some(f) = from {
            let _ = self.jobs.get_or_create(&state(f)).dec();
        }
        let _ = self.jobs.get_or_create(&state(to)).inc();
    }

    /// A job ended after `wall`.
    pub fn job_finished(&self, outcome: JobState, wall: Duration) {
        self.durations
            .get_or_create(&OutcomeLabel {
                outcome: outcome.name().into(),
            })
            .observe(wall.as_secs_f64());
    }

    /// Evidence of `kind` took `d`.
    pub fn evidence(&self, kind: &str, d: Duration) {
        self.evidence
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(d.as_secs_f64());
    }

    /// A receipt took `d`.
    pub fn receipt(&self, d: Duration) {
        self.receipt.observe(d.as_secs_f64());
    }

    /// A submission ended with `result`.
    pub fn submission(&self, result: &str) {
        let _ = self
            .submissions
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

fn state(s: JobState) -> StateLabel {
    StateLabel {
        state: s.name().into(),
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, metrics, shutdown).await
}

/// Serves `GET /metrics` on a bound listener until `shutdown`.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = Arc::clone(&metrics);
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
