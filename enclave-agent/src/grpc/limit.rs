//! Limits on what clients may hold of the agent (`[api]`): request rates per peer (client IPv4
//! address, or IPv6 /64) and in all, `Challenge` rates per peer, and the open server streams. A refusal
//! is `RESOURCE_EXHAUSTED` with a retry hint (`retry-after-ms` metadata).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::status::exhausted;
use crate::config::ApiConfig;

/// A token bucket: `rate` tokens a second up to `burst`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token, or says in how many milliseconds one is there. `rate` 0: no limit.
    fn take(&mut self, rate: u32, burst: u32, now: Instant) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / f64::from(rate) * 1_000.0;
        // A finite, non-negative value below 2^53: the cast is exact enough for a hint.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = wait.ceil().clamp(1.0, 3_600_000.0) as u64;
        Err(ms)
    }
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    calls: Bucket,
    challenges: Bucket,
}

/// Which rates a call counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    /// Any call.
    Any,
    /// `AttestationService.Challenge` (also counts as any call).
    Challenge,
}

/// The `[api]` limits, shared by the services.
#[derive(Debug)]
pub struct Limiter {
    cfg: ApiConfig,
    peers: Mutex<HashMap<IpAddr, Peer>>,
    global: Mutex<Bucket>,
    streams: Arc<Semaphore>,
}

/// The key a peer's rates are kept under: its IPv4 address, or its IPv6 /64 (one host
/// commonly holds a whole /64).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Limiter {
    /// From `[api]`.
    pub fn new(cfg: &ApiConfig) -> Self {
        let now = Instant::now();
        Self {
            global: Mutex::new(Bucket::full(cfg.global_burst, now)),
            peers: Mutex::new(HashMap::new()),
            streams: Arc::new(Semaphore::new(cfg.max_open_streams)),
            cfg: cfg.clone(),
        }
    }

    /// Counts a call from `peer` (unknown: only the global rate applies).
    pub fn admit(&self, peer: Option<IpAddr>, rpc: Rpc) -> Result<(), tonic::Status> {
        let now = Instant::now();
        let c = &self.cfg;
        if let Some(ip) = peer.map(peer_key) {
            let mut peers = lock(&self.peers);
            if peers.len() >= c.max_tracked_peers && !peers.contains_key(&ip) {
                // Forget peers whose buckets have refilled (idle for a while); if none have,
                // start over rather than grow without bound.
                let idle = Duration::from_secs(60);
                peers.retain(|_, p| now.saturating_duration_since(p.calls.last) < idle);
                if peers.len() >= c.max_tracked_peers {
                    peers.clear();
                }
            }
            let p = peers.entry(ip).or_insert_with(|| Peer {
                calls: Bucket::full(c.peer_burst, now),
                challenges: Bucket::full(c.challenge_burst, now),
            });
            p.calls
                .take(c.peer_rate, c.peer_burst, now)
                .map_err(|ms| exhausted("too many requests from this peer".into(), ms))?;
            if rpc == Rpc::Challenge {
                p.challenges
                    .take(c.challenge_rate, c.challenge_burst, now)
                    .map_err(|ms| exhausted("too many challenges from this peer".into(), ms))?;
            }
        }
        lock(&self.global)
            .take(c.global_rate, c.global_burst, now)
            .map_err(|ms| exhausted("the agent is at its request rate".into(), ms))
    }

    /// A place for one more open server stream, held until the stream ends.
    pub fn open_stream(&self) -> Result<OwnedSemaphorePermit, tonic::Status> {
        Arc::clone(&self.streams)
            .try_acquire_owned()
            .map_err(|_| exhausted("too many open streams".into(), self.cfg.retry_after_ms))
    }

    /// How long a stream waits for its client to take a message.
    pub fn stream_idle(&self) -> Duration {
        Duration::from_secs(self.cfg.stream_idle_secs)
    }
}

#[cfg(test)]
mod tests;
