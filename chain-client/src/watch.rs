//! Following the chain: market events of finalized blocks, jobs bound to a provider, one job
//! until it closes.
//!
//! The streams follow finalized blocks from the moment they are opened; the block subscription
//! resubscribes by itself after the connection is re-established.

use std::time::Duration;

use futures::Stream;
use futures::StreamExt;
use serde::Serialize;
use subxt::utils::AccountId32;
use tokio::sync::mpsc;

use crate::client::{ChainClient, decode_market_event};
use crate::error::{ChainError, rpc};
use crate::types::{Job, JobId, MarketEvent, Settlement, hex_bytes};

/// A market event and the block it happened in.
#[derive(Clone, Debug, Serialize)]
pub struct BlockEvent {
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    #[serde(serialize_with = "hex_bytes")]
    pub block_hash: [u8; 32],
    /// The event.
    #[serde(flatten)]
    pub event: MarketEvent,
}

/// A job bound to the watching provider.
#[derive(Clone, Debug, Serialize)]
pub struct Assignment {
    /// The job.
    #[serde(serialize_with = "hex_bytes")]
    pub job_id: JobId,
    /// Block of the binding.
    pub block_number: u64,
    /// The job as stored when it was bound (spec hash, terms, price, deadline).
    pub job: Option<Job>,
}

type Events = mpsc::Receiver<Result<BlockEvent, ChainError>>;

fn receiver_stream<T>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

impl ChainClient {
    /// The market's events in finalized blocks, from the current finalized block on.
    pub async fn market_events(
        &self,
    ) -> Result<impl Stream<Item = Result<BlockEvent, ChainError>> + Send + 'static, ChainError>
    {
        Ok(receiver_stream(self.event_channel().await?))
    }

    async fn event_channel(&self) -> Result<Events, ChainError> {
        let mut blocks = self
            .api()
            .stream_blocks()
            .await
            .map_err(rpc("subscribing to finalized blocks"))?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(block) = blocks.next().await {
                let events = async {
                    let block = block.map_err(rpc("following finalized blocks"))?;
                    let at = block.at().await.map_err(rpc("opening a block"))?;
                    let events = at
                        .events()
                        .fetch()
                        .await
                        .map_err(rpc("reading a block's events"))?;
                    let mut out = Vec::new();
                    for ev in events.iter() {
                        let ev = ev.map_err(rpc("decoding an event"))?;
                        if let Some(event) = decode_market_event(&ev)? {
                            out.push(BlockEvent {
                                block_number: block.number(),
                                block_hash: block.hash().0,
                                event,
                            });
                        }
                    }
                    Ok::<_, ChainError>(out)
                }
                .await;
                let batch = match events {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                for item in batch {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Jobs bound to `provider` from now on, with the job's terms.
    pub async fn jobs_bound_to(
        &self,
        provider: &AccountId32,
    ) -> Result<impl Stream<Item = Result<Assignment, ChainError>> + Send + 'static, ChainError>
    {
        let mut events = self.event_channel().await?;
        let (tx, rx) = mpsc::channel(16);
        let client = self.clone();
        let provider = *provider;
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let item = match ev {
                    Ok(BlockEvent {
                        block_number,
                        event: MarketEvent::JobBound { job_id, providers },
                        ..
                    }) if providers.contains(&provider) => {
                        client.job(&job_id).await.map(|job| Assignment {
                            job_id,
                            block_number,
                            job,
                        })
                    }
                    Ok(_) => continue,
                    Err(e) => Err(e),
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(receiver_stream(rx))
    }

    /// The events of one job from now on, ending with its settlement or refund. A job that is
    /// already closed yields its closing event at once (rebuilt from the settlement record).
    pub async fn watch_job(
        &self,
        job_id: &JobId,
    ) -> Result<impl Stream<Item = Result<BlockEvent, ChainError>> + Send + 'static, ChainError>
    {
        // Subscribe first, then read the state, so a closing event cannot fall in between.
        let mut events = self.event_channel().await?;
        let job_id = *job_id;
        let job = self
            .job(&job_id)
            .await?
            .ok_or_else(|| ChainError::NotFound {
                what: "job",
                id: format!("0x{}", hex::encode(job_id)),
            })?;
        let (tx, rx) = mpsc::channel(16);
        if !job.status.is_open() {
            if let Some(s) = self.settlement(&job_id).await? {
                let _ = tx.send(Ok(closing_event(&job_id, &job, &s))).await;
            }
            return Ok(receiver_stream(rx));
        }
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let (item, done) = match ev {
                    Ok(e) if e.event.job_id() == Some(job_id) => {
                        let done = matches!(
                            e.event,
                            MarketEvent::JobSettled { .. } | MarketEvent::JobRefunded { .. }
                        );
                        (Ok(e), done)
                    }
                    Ok(_) => continue,
                    Err(e) => (Err(e), false),
                };
                if tx.send(item).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(receiver_stream(rx))
    }

    /// Waits until a job closes and returns its settlement record.
    pub async fn wait_for_settlement(
        &self,
        job_id: &JobId,
        timeout: Duration,
    ) -> Result<Settlement, ChainError> {
        let wait = async {
            let mut updates = Box::pin(self.watch_job(job_id).await?);
            while let Some(u) = updates.next().await {
                if let MarketEvent::JobSettled { .. } | MarketEvent::JobRefunded { .. } = u?.event {
                    break;
                }
            }
            self.settlement(job_id)
                .await?
                .ok_or_else(|| ChainError::NotFound {
                    what: "settlement of job",
                    id: format!("0x{}", hex::encode(job_id)),
                })
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ChainError::Timeout {
                what: "the job to settle",
                secs: timeout.as_secs(),
            })?
    }
}

fn closing_event(job_id: &JobId, job: &Job, s: &Settlement) -> BlockEvent {
    use crate::types::Outcome;
    let event = match &s.outcome {
        Outcome::Paid {
            result_commitment,
            payees,
        } => MarketEvent::JobSettled {
            job_id: *job_id,
            result_commitment: *result_commitment,
            payees: payees.clone(),
        },
        Outcome::Refunded { amount } => MarketEvent::JobRefunded {
            job_id: *job_id,
            buyer: job.buyer,
            amount: *amount,
        },
    };
    BlockEvent {
        block_number: u64::from(s.at),
        block_hash: [0; 32],
        event,
    }
}
