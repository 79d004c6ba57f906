//! Prometheus metrics (OpenMetrics text at `GET /metrics` on `metrics_listen`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sigil_agent_jobs` | gauge | `state`: jobs in each state |
//! | `sigil_agent_job_duration_seconds` | histogram | `outcome`: wall time of finished jobs |
//! | `sigil_agent_evidence_seconds` | histogram | `kind` (`attested_key`, `fresh_quote`, `challenge`): evidence collection latency |
//! | `sigil_agent_receipt_seconds` | histogram | time to commit outputs, sign and store a receipt |
//! | `sigil_agent_submissions_total` | counter | `result` (`created`, `existing`, `rejected`) |
//! | `sigil_agent_signatures_inline_total` | counter | buyer signatures verified alone, on the request's thread |
//! | `sigil_agent_signatures_batched_total` | counter | buyer signatures verified in batches by the verifier thread |
//! | `sigil_agent_signature_batches_total` | counter | batches run by the verifier thread |
//! | `sigil_agent_signature_batch_fallbacks_total` | counter | batches whose combined check failed (each signature then verified alone) |
//! | `sigil_agent_store_journal_frames_total` | counter | store write batches made durable by a journal frame |
//! | `sigil_agent_store_checkpoints_total` | counter | durable commits of the store (checkpoints retiring the journal) |
//! | `sigil_agent_store_replayed_writes_total` | counter | writes applied again from the store journal at start |
//! | `sigil_agent_state_dir_accepting` | gauge | 1 while the state directory takes new jobs, 0 while it is full, below `jobs.min_free_bytes` or read-only |

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

use crate::auth::batch::BatchStats;
use crate::job::JobState;
use crate::store::StoreStats;

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
    durations: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
    evidence: Family<KindLabel, Histogram, fn() -> Histogram>,
    receipt: Histogram,
    submissions: Family<ResultLabel, Counter>,
    // Handles into the families above for the label values known in advance, so the hot
    // paths (every submission and state change) neither allocate a label nor take the
    // family's lock.
    by_state: [Gauge; 5],
    by_result: [Counter; 3],
    signatures: BatchStats,
    store: StoreStats,
    state_dir_accepting: Gauge,
}

/// Submission results, in the order of `Metrics::by_result`.
const RESULTS: [&str; 3] = ["created", "existing", "rejected"];

fn state_index(s: JobState) -> usize {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Succeeded => 2,
        JobState::Failed => 3,
        JobState::Cancelled => 4,
    }
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
        let signatures = BatchStats::default();
        let store = StoreStats::default();
        for (name, help, counter) in [
            (
                "signatures_inline",
                "Buyer signatures verified alone, on the request's thread",
                &signatures.inline,
            ),
            (
                "signatures_batched",
                "Buyer signatures verified in batches by the verifier thread",
                &signatures.signatures,
            ),
            (
                "signature_batches",
                "Batches of buyer signatures run by the verifier thread",
                &signatures.batches,
            ),
            (
                "signature_batch_fallbacks",
                "Signature batches whose combined check failed (each then verified alone)",
                &signatures.fallbacks,
            ),
            (
                "store_journal_frames",
                "Store write batches made durable by a journal frame",
                &store.journal_frames,
            ),
            (
                "store_checkpoints",
                "Durable commits of the store (checkpoints retiring the journal)",
                &store.checkpoints,
            ),
            (
                "store_replayed_writes",
                "Writes applied again from the store journal at start",
                &store.replayed,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        let state_dir_accepting = Gauge::default();
        registry.register(
            "state_dir_accepting",
            "1 while the state directory takes new jobs, 0 while it is full or read-only",
            state_dir_accepting.clone(),
        );
        let _ = state_dir_accepting.set(1);
        let by_state = JobState::ALL.map(|s| jobs.get_or_create(&state(s)).clone());
        let by_result = RESULTS.map(|r| {
            submissions
                .get_or_create(&ResultLabel { result: r.into() })
                .clone()
        });
        Self {
            registry,
            durations,
            evidence,
            receipt,
            submissions,
            by_state,
            by_result,
            signatures,
            store,
            state_dir_accepting,
        }
    }

    /// Whether the state directory takes new jobs (the last submission's disk check).
    pub fn state_dir_accepting(&self, accepting: bool) {
        let _ = self.state_dir_accepting.set(i64::from(accepting));
    }

    /// The counters the job store counts into (shared with this registry).
    pub fn store_stats(&self) -> StoreStats {
        self.store.clone()
    }

    /// The counters the signature verifier counts into (shared with this registry).
    pub fn signature_stats(&self) -> BatchStats {
        self.signatures.clone()
    }

    /// Sets the gauge of `s` (start-up, from the store).
    pub fn set_jobs(&self, s: JobState, n: u64) {
        if let Some(g) = self.by_state.get(state_index(s)) {
            let _ = g.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A job moved between states (`from` is `None` for a new job).
    pub fn transition(&self, from: Option<JobState>, to: JobState) {
        if from == Some(to) {
            return;
        }
        if let Some(g) = from.and_then(|f| self.by_state.get(state_index(f))) {
            let _ = g.dec();
        }
        if let Some(g) = self.by_state.get(state_index(to)) {
            let _ = g.inc();
        }
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
        match RESULTS.iter().position(|r| *r == result) {
            Some(i) => {
                if let Some(c) = self.by_result.get(i) {
                    let _ = c.inc();
                }
            }
            None => {
                let _ = self
                    .submissions
                    .get_or_create(&ResultLabel {
                        result: result.into(),
                    })
                    .inc();
            }
        }
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
