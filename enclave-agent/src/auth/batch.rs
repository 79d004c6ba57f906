//! Buyer signatures verified in batches.
//!
//! Every submission carries an ed25519 signature, and under load the check is the largest
//! cost of `Submit`. Signatures are therefore verified by one thread that takes every
//! signature queued while it was busy and checks them together (group verification, the
//! counterpart of the store's group commit): with one queued it runs a plain
//! [`VerifyingKey::verify_strict`]; with more it checks one random linear combination of
//! their verification equations, and if that fails it verifies each one alone to say which.
//!
//! Steps for a batch of n > 1 (`k_i = SHA-512(R_i || A_i || M_i) mod l`):
//! 1. Each signature is checked as `verify_strict` checks it before its equation: `s`
//!    canonical, `R` a canonical encoding of a point that is not of small order, the key
//!    decodable and not of small order. A signature that fails here is rejected alone.
//! 2. Random 128-bit `z_i` from the OS RNG.
//! 3. `[-(Σ z_i s_i)] B + Σ z_i R_i + Σ_A [Σ_{i: A_i = A} z_i k_i] A == identity` (one
//!    variable-time multiscalar multiplication, `B` through a precomputed table).
//! 4. Identity: all are valid. Otherwise each is verified alone with `verify_strict`.
//!
//! The decision is that of `verify_strict` for every signature that an honest signer or a
//! forger can produce: valid signatures satisfy the combined equation exactly, and an
//! invalid one passes it with probability 2^-128. The one difference is confined to
//! signatures made by the key's holder with deliberately added small-order components
//! (neither step 1 nor `verify_strict` looks for torsion in mixed-order points): such a
//! signature fails `verify_strict` and passes a batch with probability at most 1/8. Either
//! way it proves possession of the same key, so who may submit is unchanged.
//!
//! Why by hand: `ed25519_dalek::verify_batch` treats each signature's key as a separate
//! point (2n + 1 points where a stream of submissions from few buyers needs n + 1 + keys),
//! does not use the basepoint table, and skips the small-order checks that submissions have
//! always had. The curve arithmetic is curve25519-dalek's; only the combination is here.
//! `cargo bench -p enclave-agent --bench agent -- --only sig` measures the gain.

use std::collections::HashMap;
use std::sync::atomic::Ordering::AcqRel;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimePrecomputedMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use prometheus_client::metrics::counter::Counter;
use sha2::{Digest, Sha512};

use super::AuthError;

/// Most signatures checked in one batch (beyond ~64 the gain per signature is flat).
const MAX_BATCH: usize = 128;

/// Verifications that begin within this of the previous one are batched even when nothing
/// is in flight at that instant (see [`BatchVerifier::verify`]).
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(1);

/// Decoded keys kept (buyers submit many jobs each); the cache is emptied when full.
const KEY_CACHE: usize = 4096;

/// One signature to check and where its answer goes.
struct Item {
    key: [u8; 32],
    sig: [u8; 64],
    msg: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<Result<(), AuthError>>,
}

impl Item {
    fn answer(self, r: Result<(), AuthError>) {
        // A waiter that went away (its request was dropped) needs no answer.
        drop(self.reply.send(r));
    }
}

/// Handle to the verifier thread; cloning shares it. The thread ends with the last handle.
#[derive(Clone)]
pub struct BatchVerifier {
    tx: mpsc::Sender<Item>,
    /// Verifications started and not yet answered, inline or queued.
    in_flight: Arc<AtomicUsize>,
    /// When a verification last began or was answered, microseconds after `epoch`.
    last: Arc<AtomicU64>,
    epoch: Instant,
    stats: BatchStats,
}

impl std::fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchVerifier").finish_non_exhaustive()
    }
}

/// Counters of a verifier: Prometheus counters, so the metrics endpoint exports the same
/// values (clones share them).
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    /// Signatures verified on the caller's thread.
    pub inline: Counter,
    /// Batches run by the verifier thread.
    pub batches: Counter,
    /// Signatures in those batches.
    pub signatures: Counter,
    /// Batches whose combined check failed.
    pub fallbacks: Counter,
}

/// What [`BatchStats::snapshot`] reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Signatures verified on the caller's thread (nothing else in flight).
    pub inline: u64,
    /// Batches run by the verifier thread.
    pub batches: u64,
    /// Signatures in those batches.
    pub signatures: u64,
    /// Batches whose combined check failed (each signature then verified alone).
    pub fallbacks: u64,
}

impl BatchStats {
    /// The counters now.
    pub fn snapshot(&self) -> BatchCounts {
        BatchCounts {
            inline: self.inline.get(),
            batches: self.batches.get(),
            signatures: self.signatures.get(),
            fallbacks: self.fallbacks.get(),
        }
    }
}

/// Decrements the in-flight count when a verification is answered (or abandoned).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

impl BatchVerifier {
    /// Starts the verifier thread, counting into `stats` (the agent's metrics).
    pub fn start(stats: BatchStats) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Item>();
        let s = stats.clone();
        std::thread::Builder::new()
            .name("sigil-sigverify".into())
            .spawn(move || Worker::new(s).run(&rx))?;
        Ok(Self {
            tx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            last: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            stats,
        })
    }

    /// Verifies `sig` by `key` over `msg` (raw bytes, as carried in the request).
    ///
    /// A lone request (nothing else in flight, none begun or answered within [`QUIET`]) is verified
    /// here, on the caller's thread, before this returns: no hand-off latency. Otherwise
    /// the signature is queued for the verifier thread at once and the future waits for
    /// its batch's verdict. (In flight alone would not do: under load the count touches
    /// zero between batches, and the request that finds it there would pay a lone
    /// verification on the runtime's thread.)
    pub fn verify(
        &self,
        key: [u8; 32],
        sig: [u8; 64],
        msg: Vec<u8>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send + 'static {
        self.verify_at(micros_since(self.epoch), key, sig, msg)
    }

    /// [`Self::verify`] of a request begun `now` (microseconds after `epoch`): the clock
    /// read is the caller's, so tests can say how close together requests begin.
    fn verify_at(
        &self,
        now: u64,
        key: [u8; 32],
        sig: [u8; 64],
        msg: Vec<u8>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send + 'static {
        let previous = self.last.swap(now, AcqRel);
        let quiet = u64::try_from(QUIET.as_micros()).unwrap_or(u64::MAX);
        let recent = previous != 0 && now.saturating_sub(previous) < quiet;
        let busy = self.in_flight.fetch_add(1, AcqRel) > 0 || recent;
        let mut guard = Some(InFlight(Arc::clone(&self.in_flight)));
        let pending = if busy {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let item = Item {
                key,
                sig,
                msg,
                reply,
            };
            match self.tx.send(item) {
                Ok(()) => Pending::Queued(rx),
                Err(_) => Pending::Done(Err(AuthError::Unavailable)),
            }
        } else {
            self.stats.inline.inc();
            let r = strict(&key, &sig, &msg);
            // Its end counts as activity: a request right behind it is batched.
            touch(&self.last, self.epoch);
            guard = None;
            Pending::Done(r)
        };
        let (last, epoch) = (Arc::clone(&self.last), self.epoch);
        async move {
            let _guard = guard;
            match pending {
                Pending::Queued(rx) => {
                    let r = rx.await.map_err(|_| AuthError::Unavailable)?;
                    touch(&last, epoch);
                    r
                }
                Pending::Done(r) => r,
            }
        }
    }
}

fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Records activity now in `last` (microseconds after `epoch`).
fn touch(last: &AtomicU64, epoch: Instant) {
    last.fetch_max(micros_since(epoch), AcqRel);
}

/// A verification answered at once or waiting for the verifier thread.
enum Pending {
    Done(Result<(), AuthError>),
    Queued(tokio::sync::oneshot::Receiver<Result<(), AuthError>>),
}

/// One signature alone: `verify_strict`, errors as the agent reports them.
fn strict(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> Result<(), AuthError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| AuthError::MalformedKey)?;
    alone(&vk, sig, msg)
}

/// `verify_strict` with a decoded key.
fn alone(vk: &VerifyingKey, sig: &[u8; 64], msg: &[u8]) -> Result<(), AuthError> {
    vk.verify_strict(msg, &Signature::from_bytes(sig))
        .map_err(|_| AuthError::BadSignature)
}

/// A decoded key and whether `verify_strict` would refuse it (small order).
#[derive(Clone, Copy)]
struct Key {
    vk: VerifyingKey,
    weak: bool,
}

/// One signature of a batch: key, signature and message bytes as the request carries them.
pub type Signed<'a> = (&'a [u8; 32], &'a [u8; 64], &'a [u8]);

/// Verifies batches of signatures (steps 1 to 4), keeping decoded keys between batches.
pub struct BatchChecker {
    keys: HashMap<[u8; 32], Key>,
    base: VartimeEdwardsPrecomputation,
}

impl std::fmt::Debug for BatchChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchChecker")
            .field("cached_keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Default for BatchChecker {
    fn default() -> Self {
        Self::new()
    }
}

/// A signature that passed step 1, ready for the combined equation.
struct Prepared {
    index: usize,
    key_bytes: [u8; 32],
    key: Key,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl BatchChecker {
    /// An empty key cache and the basepoint table.
    pub fn new() -> Self {
        Self {
            keys: HashMap::new(),
            base: VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT]),
        }
    }

    /// The verdict on each of `batch`, in order, and whether the combined check failed (each
    /// signature then verified alone).
    pub fn check(&mut self, batch: &[Signed<'_>]) -> (Vec<Result<(), AuthError>>, bool) {
        if let [(key, sig, msg)] = batch {
            let r = self.key(key).and_then(|k| alone(&k.vk, sig, msg));
            return (vec![r], false);
        }
        let mut verdicts = vec![Ok(()); batch.len()];
        // Step 1.
        let mut ready = Vec::with_capacity(batch.len());
        for (index, (key, sig, msg)) in batch.iter().enumerate() {
            match self.prepare(index, key, sig, msg) {
                Ok(p) => ready.push(p),
                Err(e) => set(&mut verdicts, index, Err(e)),
            }
        }
        if ready.len() > 1 && combined(&self.base, &ready) == Some(true) {
            return (verdicts, false);
        }
        // One signature, or a failed combination: each alone (step 4).
        for p in &ready {
            if let Some((_, sig, msg)) = batch.get(p.index) {
                set(&mut verdicts, p.index, alone(&p.key.vk, sig, msg));
            }
        }
        (verdicts, ready.len() > 1)
    }

    /// Decodes `bytes` (cached).
    fn key(&mut self, bytes: &[u8; 32]) -> Result<Key, AuthError> {
        if let Some(k) = self.keys.get(bytes) {
            return Ok(*k);
        }
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| AuthError::MalformedKey)?;
        let key = Key {
            vk,
            weak: vk.is_weak(),
        };
        if self.keys.len() >= KEY_CACHE {
            self.keys.clear();
        }
        self.keys.insert(*bytes, key);
        Ok(key)
    }

    /// Step 1 for the signature at `index`: the key, R, s and k = H(R || A || M).
    fn prepare(
        &mut self,
        index: usize,
        key_bytes: &[u8; 32],
        sig: &[u8; 64],
        msg: &[u8],
    ) -> Result<Prepared, AuthError> {
        let key = self.key(key_bytes)?;
        let sig = Signature::from_bytes(sig);
        let (r_bytes, s_bytes) = (sig.r_bytes(), sig.s_bytes());
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*s_bytes))
            .ok_or(AuthError::BadSignature)?;
        if key.weak || !canonical_y(r_bytes) {
            return Err(AuthError::BadSignature);
        }
        let r = CompressedEdwardsY(*r_bytes)
            .decompress()
            .ok_or(AuthError::BadSignature)?;
        if r.is_small_order() {
            return Err(AuthError::BadSignature);
        }
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(key_bytes);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        Ok(Prepared {
            index,
            key_bytes: *key_bytes,
            key,
            r,
            s,
            k,
        })
    }
}

fn set(verdicts: &mut [Result<(), AuthError>], i: usize, r: Result<(), AuthError>) {
    if let Some(v) = verdicts.get_mut(i) {
        *v = r;
    }
}

/// The verifier thread's state.
struct Worker {
    checker: BatchChecker,
    stats: BatchStats,
}

impl Worker {
    fn new(stats: BatchStats) -> Self {
        Self {
            checker: BatchChecker::new(),
            stats,
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Item>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(i) => batch.push(i),
                    Err(_) => break,
                }
            }
            self.check(batch);
        }
    }

    fn check(&mut self, batch: Vec<Item>) {
        let signed: Vec<Signed<'_>> = batch
            .iter()
            .map(|i| (&i.key, &i.sig, i.msg.as_slice()))
            .collect();
        let (verdicts, fell_back) = self.checker.check(&signed);
        self.stats.batches.inc();
        self.stats
            .signatures
            .inc_by(u64::try_from(batch.len()).unwrap_or(u64::MAX));
        if fell_back {
            self.stats.fallbacks.inc();
        }
        for (item, v) in batch.into_iter().zip(verdicts) {
            item.answer(v);
        }
    }
}

/// Whether the 255-bit y coordinate of a compressed point is below p = 2^255 - 19, i.e. the
/// encoding is canonical (`verify_strict` compares R's bytes with a canonical encoding, so a
/// non-canonical R never verifies). The sign bit is not part of y. Read off the bytes: the
/// verifier crate's rule (`crypto::ed25519`) re-compresses the point instead, which would
/// cost each signature of a batch another field inversion.
fn canonical_y(b: &[u8; 32]) -> bool {
    // y >= p exactly when the top 250 bits are all ones and the low byte is >= 0xed.
    let top = b.get(31).is_some_and(|x| x & 0x7f == 0x7f);
    let middle = b.get(1..31).is_some_and(|m| m.iter().all(|&x| x == 0xff));
    let low = b.first().is_some_and(|&x| x >= 0xed);
    !(top && middle && low)
}

/// Steps 2 and 3. `None` if no randomness could be had (the caller then verifies each).
// Scalar and point arithmetic is modular: it cannot overflow or panic.
#[allow(clippy::arithmetic_side_effects)]
fn combined(base: &VartimeEdwardsPrecomputation, ready: &[Prepared]) -> Option<bool> {
    let mut random = vec![0u8; ready.len().checked_mul(16)?];
    getrandom::fill(&mut random).ok()?;
    let mut b_coef = Scalar::ZERO;
    // Coefficient of each distinct key (few: buyers submit many jobs each).
    let mut a_coefs: Vec<([u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    let mut scalars = Vec::with_capacity(ready.len());
    let mut points = Vec::with_capacity(ready.len());
    for (p, z) in ready.iter().zip(random.chunks_exact(16)) {
        let mut wide = [0u8; 32];
        wide.get_mut(..16)?.copy_from_slice(z);
        let z = Scalar::from_bytes_mod_order(wide);
        b_coef += z * p.s;
        let zk = z * p.k;
        match a_coefs.iter_mut().find(|(k, _, _)| *k == p.key_bytes) {
            Some((_, _, c)) => *c += zk,
            None => a_coefs.push((p.key_bytes, EdwardsPoint::from(p.key.vk), zk)),
        }
        scalars.push(z);
        points.push(p.r);
    }
    for (_, a, c) in a_coefs {
        scalars.push(c);
        points.push(a);
    }
    let sum = base.vartime_mixed_multiscalar_mul([-b_coef], scalars, points);
    Some(sum.is_identity())
}

#[cfg(test)]
mod tests;
