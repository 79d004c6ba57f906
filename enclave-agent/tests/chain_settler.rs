//! The agent's provider side on the chain ([`enclave_agent::settle::Settler`]) against an
//! in-memory market that keeps the pallet's rules that matter here (registration key,
//! honoured evidence digests, job status, one receipt per job), given what the agent gives it:
//! a job store with finished jobs, an attestor over the simulated evidence source, and a
//! state directory (no engine). The same code against the real local chain is exercised by the
//! end-to-end tests (`tests/e2e.sh`).
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, Usage,
};
use common::*;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use enclave_agent::attestor::Attestor;
use enclave_agent::config::ChainConfig;
use enclave_agent::job::{JobRecord, JobState};
use enclave_agent::settle::{
    MarketChain, OfferTerms, Outcome, ProviderState, Registration, Settler, capabilities,
};
use enclave_agent::store::{Completion, Store};
use sha2::{Digest, Sha256};
use sigil_chain_client::types::{JobStatus, TeeKind, Tier};
use sigil_chain_client::{ChainError, RegistrationAnchor, Submitted};

const ACCOUNT: [u8; 32] = [0xAC; 32];

/// A submitted receipt: job, receipt bytes, fresh evidence.
type Submission = ([u8; 32], Vec<u8>, Option<Vec<u8>>);

#[derive(Default)]
struct State {
    /// Registered policy documents (the genesis ones, unless a test changes them).
    policies: HashMap<[u8; 32], Vec<u8>>,
    /// Registration nonces handed out, by anchor block.
    anchors: HashMap<u32, [u8; 32]>,
    provider: Option<ProviderState>,
    previous: Option<[u8; 32]>,
    jobs: HashMap<[u8; 32], JobStatus>,
    /// Funded jobs the account is bound to (a tier-2 job reassigned around it).
    bound_funded: Vec<[u8; 32]>,
    registrations: Vec<Registration>,
    deregistrations: u32,
    rotations: Vec<Registration>,
    refreshes: Vec<Vec<u8>>,
    /// Every offer set, in order (`None`: withdrawn).
    offers: Vec<Option<OfferTerms>>,
    receipts: Vec<Submission>,
    rpc_down: bool,
}

#[derive(Clone)]
struct FakeChain(Arc<Mutex<State>>);

impl Default for FakeChain {
    fn default() -> Self {
        let mut state = State::default();
        for name in sigil_chain_client::policy::NAMES {
            let p = attestation_verifier::policy::genesis::named(name).unwrap();
            state.policies.insert(p.id(), p.canonical_bytes());
        }
        Self(Arc::new(Mutex::new(state)))
    }
}

/// Validity the fake chain gives an attested key: one hour from now.
fn validity() -> Option<(u64, u64)> {
    Some((now_ms(), now_ms() + 3_600_000))
}

/// The nonce a bundle binds.
fn nonce_of(bundle: &[u8]) -> [u8; 32] {
    attestation_verifier::bundle::EvidenceBundle::from_bytes(bundle)
        .unwrap()
        .nonce
}

impl FakeChain {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    fn check_up(&self) -> Result<(), ChainError> {
        if self.with(|s| s.rpc_down) {
            return Err(ChainError::Unreachable {
                url: "ws://fake".into(),
                detail: "connection refused".into(),
            });
        }
        Ok(())
    }
}

fn digest_of(bundle: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sigil.evidence.v1\0");
    h.update(bundle);
    h.finalize().into()
}

fn refused(detail: &str) -> ChainError {
    ChainError::Rejected {
        call: "market.submit_receipt",
        detail: detail.into(),
    }
}

impl MarketChain for FakeChain {
    async fn provider(&self) -> Result<Option<ProviderState>, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| s.provider.clone()))
    }

    async fn register(&self, r: &Registration) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            if s.provider.is_some() {
                return Err(refused("AlreadyRegistered"));
            }
            if let Some(a) = &r.attestation {
                if s.anchors.get(&a.anchor) != Some(&nonce_of(&a.bundle)) {
                    return Err(refused("StaleNonce"));
                }
                if !s.policies.contains_key(&a.policy) {
                    return Err(refused("UnknownPolicy"));
                }
            }
            s.provider = Some(ProviderState {
                signing_key: r.key,
                evidence_digest: r.attestation.as_ref().map(|a| digest_of(&a.bundle)),
                validity_ms: r.attestation.as_ref().and_then(|_| validity()),
                active_jobs: 0,
                offer: None,
                retiring_key: None,
            });
            s.previous = None;
            s.registrations.push(r.clone());
            Ok(())
        })
    }

    async fn deregister(&self) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| match &s.provider {
            Some(p) if p.active_jobs > 0 => Err(refused("HasActiveJobs")),
            Some(_) => {
                s.provider = None;
                s.deregistrations += 1;
                Ok(())
            }
            None => Err(refused("NotRegistered")),
        })
    }

    async fn rotate_key(&self, r: &Registration) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            let p = s
                .provider
                .as_mut()
                .ok_or_else(|| refused("NotRegistered"))?;
            if p.signing_key == r.key {
                return Err(refused("SameKey"));
            }
            if p.retiring_key.is_some() {
                return Err(refused("RotationPending"));
            }
            p.retiring_key = (p.active_jobs > 0).then_some(p.signing_key);
            p.signing_key = r.key;
            p.evidence_digest = r.attestation.as_ref().map(|a| digest_of(&a.bundle));
            s.rotations.push(r.clone());
            Ok(())
        })
    }

    async fn set_offer(&self, offer: &OfferTerms) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            let p = s
                .provider
                .as_mut()
                .ok_or_else(|| refused("NotRegistered"))?;
            if p.active_jobs > 0 && p.offer.is_some_and(|o| o.bond > offer.bond) {
                return Err(refused("BondLocked"));
            }
            p.offer = Some(*offer);
            s.offers.push(Some(*offer));
            Ok(())
        })
    }

    async fn withdraw_offer(&self) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            let p = s
                .provider
                .as_mut()
                .ok_or_else(|| refused("NotRegistered"))?;
            if p.active_jobs > 0 {
                return Err(refused("HasActiveJobs"));
            }
            p.offer.take().ok_or_else(|| refused("NoOffer"))?;
            s.offers.push(None);
            Ok(())
        })
    }

    async fn refresh_attestation(&self, bundle: &[u8], anchor: u32) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            if s.anchors.get(&anchor) != Some(&nonce_of(bundle)) {
                return Err(refused("StaleNonce"));
            }
            let p = s
                .provider
                .as_mut()
                .ok_or_else(|| refused("NotRegistered"))?;
            let new = digest_of(bundle);
            if p.evidence_digest == Some(new) {
                return Err(refused("EvidenceNotNew"));
            }
            s.previous = p.evidence_digest;
            p.evidence_digest = Some(new);
            p.validity_ms = validity();
            s.refreshes.push(bundle.to_vec());
            Ok(())
        })
    }

    async fn registration_anchor(&self) -> Result<RegistrationAnchor, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| {
            let anchor = u32::try_from(s.anchors.len()).unwrap() + 1;
            let nonce: [u8; 32] =
                Sha256::digest([b"fake-anchor".as_slice(), &anchor.to_le_bytes()].concat()).into();
            s.anchors.insert(anchor, nonce);
            RegistrationAnchor {
                anchor,
                anchor_hash: [anchor as u8; 32],
                nonce,
            }
        }))
    }

    async fn policy_document(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| s.policies.get(id).cloned()))
    }

    async fn honours(&self, digest: &[u8; 32]) -> Result<bool, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| {
            s.provider
                .as_ref()
                .is_some_and(|p| p.evidence_digest == Some(*digest))
                || s.previous == Some(*digest)
        }))
    }

    async fn job_status(&self, job_id: &[u8; 32]) -> Result<Option<JobStatus>, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| s.jobs.get(job_id).copied()))
    }

    async fn bound_here(&self, job_id: &[u8; 32], key: &[u8; 32]) -> Result<bool, ChainError> {
        self.check_up()?;
        Ok(self.with(|s| {
            // Jobs are bound under the account's current key, or (opened before a rotation)
            // its retiring one.
            let ours = s
                .provider
                .as_ref()
                .is_none_or(|p| p.signing_key == *key || p.retiring_key == Some(*key));
            ours && (s.jobs.get(job_id) == Some(&JobStatus::Bound)
                || s.bound_funded.contains(job_id))
        }))
    }

    async fn submit_receipt(
        &self,
        job_id: [u8; 32],
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> Result<Submitted, ChainError> {
        self.check_up()?;
        self.with(|s| {
            let bound_funded = s.bound_funded.contains(&job_id);
            if s.jobs.get(&job_id) != Some(&JobStatus::Bound) && !bound_funded {
                return Err(refused("JobClosed"));
            }
            let body = SignedReceipt::decode_bytes(&signed_receipt)
                .unwrap()
                .body()
                .unwrap();
            let p = s
                .provider
                .as_ref()
                .ok_or_else(|| refused("NotRegistered"))?;
            if body.provider != p.signing_key {
                return Err(refused("WrongSigner"));
            }
            if body.evidence.mode == EvidenceMode::AttestedKey
                && p.evidence_digest != Some(body.evidence.digest)
                && s.previous != Some(body.evidence.digest)
            {
                return Err(refused("EvidenceMismatch"));
            }
            s.jobs.insert(job_id, JobStatus::Settled);
            s.receipts.push((job_id, signed_receipt, fresh_evidence));
            Ok(Submitted {
                block_number: s.receipts.len() as u64,
                settled: true,
            })
        })
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    attestor: Arc<Attestor>,
    cfg: ChainConfig,
}

/// What the settler is given by the agent: its job store, its attestor (simulated evidence,
/// collected once as at the agent's start) and its state directory. No engine.
async fn fixture() -> Fixture {
    let dir = state_dir();
    let store = Store::open(&dir.path().join("agent.redb")).unwrap();
    let attestor = Arc::new(Attestor::simulated().unwrap());
    let f = Fixture {
        dir,
        store,
        attestor,
        cfg: ChainConfig {
            url: "ws://fake".into(),
            policy: "sigil.simulated.v1".into(),
            ..ChainConfig::default()
        },
    };
    refresh_evidence(&f).await;
    f
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// New attested-key evidence, stored as the engine stores it.
async fn refresh_evidence(f: &Fixture) {
    let ev = f.attestor.refresh(now_ms()).unwrap();
    f.store
        .put_bundle(ev.digest, ev.bytes.to_vec())
        .await
        .unwrap();
}

/// A tier-3 job ended with an attested-key receipt, as the engine stores one.
async fn finished_job(f: &Fixture, name: &str) -> JobRecord {
    let id = job_id(name);
    let spec = format!("spec of {name}").into_bytes();
    let now = now_ms();
    let queued = JobRecord::queued(id, Sha256::digest(&spec).into(), None, now);
    f.store.insert(queued.clone(), spec).await.unwrap();
    let body = ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: id,
        job_spec_hash: queued.spec_hash,
        provider: f.attestor.public_key(),
        tier: 3,
        result_commitment: [0; 32],
        output_count: 0,
        started_at_ms: now,
        finished_at_ms: now,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef::NONE,
    };
    let signed = f.attestor.sign_attested(body).unwrap();
    let r = JobRecord {
        state: JobState::Succeeded,
        exit_code: Some(0),
        started_at_ms: now,
        finished_at_ms: now,
        attempts: 1,
        version: 3,
        has_receipt: true,
        evidence_digest: Some(signed.body().unwrap().evidence.digest),
        ..queued
    };
    let done = Completion {
        receipt: Some(signed.to_bytes()),
        ..Completion::default()
    };
    f.store.complete(r.clone(), done).await.unwrap();
    r
}

fn settler(f: &Fixture, chain: &FakeChain) -> Settler<FakeChain> {
    settler_with(f, chain, &f.cfg).unwrap()
}

/// A settler under `cfg` instead of the fixture's configuration.
fn settler_with(
    f: &Fixture,
    chain: &FakeChain,
    cfg: &ChainConfig,
) -> Result<Settler<FakeChain>, enclave_agent::settle::SettleError> {
    Settler::new(
        chain.clone(),
        ACCOUNT,
        f.store.clone(),
        Arc::clone(&f.attestor),
        f.dir.path(),
        cfg,
        None,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_the_agent_key_with_a_proof_and_its_evidence() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    assert!(s.ensure_registered().await.unwrap());
    let r = chain.with(|s| s.registrations[0].clone());
    let key = f.attestor.public_key();
    assert_eq!(r.key, key);
    // The proof is the agent key's signature over the chain's key-proof message.
    let mut m = b"sigil.provider-key.v1\0".to_vec();
    m.extend_from_slice(&ACCOUNT);
    let message: [u8; 32] = Sha256::digest(&m).into();
    VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify(&message, &Signature::from_bytes(&r.proof))
        .unwrap();
    assert_eq!(
        r.capabilities.tiers,
        vec![Tier::Signed, Tier::Quorum, Tier::Attested]
    );
    assert_eq!(r.capabilities.tee_kinds, vec![TeeKind::Simulated]);
    // The evidence was collected for the chain's registration nonce, is now the one receipts
    // reference, and is in the job store for later.
    let evidence = f.attestor.current().unwrap();
    let attestation = r.attestation.unwrap();
    assert_eq!(attestation.bundle, *evidence.bytes);
    assert_eq!(
        Some(nonce_of(&attestation.bundle)),
        chain.with(|s| s.anchors.get(&attestation.anchor).copied())
    );
    assert!(f.store.bundle(&evidence.digest).unwrap().is_some());
    assert_eq!(
        Some(attestation.policy),
        sigil_chain_client::policy::policy_id("sigil.simulated.v1")
    );
    // Registered already: nothing more happens.
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.registrations.len()), 1);
}

/// A tier-1/2 registration under `signing_key` with `active_jobs` open and a retiring key.
fn unattested(
    signing_key: [u8; 32],
    active_jobs: u32,
    retiring_key: Option<[u8; 32]>,
) -> ProviderState {
    ProviderState {
        signing_key,
        evidence_digest: None,
        validity_ms: None,
        active_jobs,
        offer: None,
        retiring_key,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_registered_with_another_key_is_re_registered_when_idle() {
    let f = fixture().await;
    let chain = FakeChain::default();
    chain.with(|s| s.provider = Some(unattested([1; 32], 0, None)));
    let s = settler(&f, &chain);
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.deregistrations), 1);
    assert!(chain.with(|s| s.rotations.is_empty()));
    assert_eq!(
        chain.with(|s| s.provider.clone().unwrap().signing_key),
        f.attestor.public_key()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_with_open_jobs_under_another_key_is_rotated_to_this_key() {
    let f = fixture().await;
    let chain = FakeChain::default();
    chain.with(|s| s.provider = Some(unattested([1; 32], 2, None)));
    let s = settler(&f, &chain);
    // The old key's open jobs stay its own; new jobs come to this agent's key at once.
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.deregistrations), 0);
    let rotations = chain.with(|s| s.rotations.clone());
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].key, f.attestor.public_key());
    let p = chain.with(|s| s.provider.clone().unwrap());
    assert_eq!(
        (p.signing_key, p.retiring_key),
        (f.attestor.public_key(), Some([1; 32]))
    );
    // Registered now: nothing more happens.
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.rotations.len()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_whose_key_was_rotated_away_takes_no_new_jobs() {
    let f = fixture().await;
    let chain = FakeChain::default();
    chain.with(|s| s.provider = Some(unattested([2; 32], 1, Some(f.attestor.public_key()))));
    let s = settler(&f, &chain);
    // It neither rotates back nor re-registers: the newer agent holds the account.
    assert!(!s.ensure_registered().await.unwrap());
    assert!(chain.with(|s| s.rotations.is_empty() && s.deregistrations == 0));
    // Another rotation is pending for a third agent: it waits for the old key's jobs.
    chain.with(|s| s.provider.as_mut().unwrap().retiring_key = Some([3; 32]));
    assert!(!s.ensure_registered().await.unwrap());
    assert!(chain.with(|s| s.rotations.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_of_bound_jobs_are_submitted_once_and_others_skipped() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();

    let bound = finished_job(&f, "bound").await;
    let off_chain = finished_job(&f, "off-chain").await;
    let unbound = finished_job(&f, "not-yet-bound").await;
    let closed = finished_job(&f, "closed").await;
    chain.with(|s| {
        s.jobs.insert(bound.job_id, JobStatus::Bound);
        s.jobs.insert(unbound.job_id, JobStatus::Funded);
        s.jobs.insert(closed.job_id, JobStatus::Refunded);
    });

    let outcome = s.settle(&bound).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Submitted {
            block: 1,
            settled: true
        }
    );
    let (job, receipt, fresh) = chain.with(|s| s.receipts[0].clone());
    assert_eq!(job, bound.job_id);
    assert_eq!(receipt, f.store.receipt(&bound.job_id).unwrap().unwrap());
    assert_eq!(fresh, None, "attested-key receipts carry no evidence");
    // Recorded: settling again does not submit again.
    assert_eq!(s.settle(&bound).await.unwrap(), Some(outcome));
    assert_eq!(chain.with(|s| s.receipts.len()), 1);

    assert!(matches!(
        s.settle(&off_chain).await.unwrap(),
        Some(Outcome::Skipped { .. })
    ));
    // Funded but not bound: retried later, not recorded.
    assert_eq!(s.settle(&unbound).await.unwrap(), None);
    assert!(matches!(
        s.settle(&closed).await.unwrap(),
        Some(Outcome::Skipped { reason }) if reason.contains("refunded")
    ));
    // Once bound, the sweep picks it up.
    chain.with(|s| s.jobs.insert(unbound.job_id, JobStatus::Bound));
    assert_eq!(s.sweep().await.unwrap(), 0);
    assert_eq!(chain.with(|s| s.receipts.len()), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_failures_are_retried_refusals_recorded_and_outcomes_survive_a_restart() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();
    let job = finished_job(&f, "flaky").await;
    chain.with(|s| {
        s.jobs.insert(job.job_id, JobStatus::Bound);
        s.rpc_down = true;
    });
    assert!(matches!(
        s.settle(&job).await,
        Err(enclave_agent::settle::SettleError::Chain(
            ChainError::Unreachable { .. }
        ))
    ));
    assert_eq!(s.sweep().await.unwrap(), 1, "still pending");
    chain.with(|s| s.rpc_down = false);
    assert_eq!(s.sweep().await.unwrap(), 0);
    assert_eq!(chain.with(|s| s.receipts.len()), 1);

    // A receipt the chain refuses (here: a key the chain does not have) is recorded as such.
    let refused_job = finished_job(&f, "refused").await;
    chain.with(|s| {
        s.jobs.insert(refused_job.job_id, JobStatus::Bound);
        s.provider.as_mut().unwrap().signing_key = [9; 32];
    });
    assert!(matches!(
        s.settle(&refused_job).await.unwrap(),
        Some(Outcome::Refused { reason }) if reason.contains("WrongSigner")
    ));

    // A new settler on the same state directory knows both outcomes.
    drop(s);
    let again = settler(&f, &chain);
    assert!(matches!(
        again.settle(&job).await.unwrap(),
        Some(Outcome::Submitted { .. })
    ));
    assert!(matches!(
        again.settle(&refused_job).await.unwrap(),
        Some(Outcome::Refused { .. })
    ));
    assert_eq!(chain.with(|s| s.receipts.len()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_attested_key_is_refreshed_with_anchored_evidence_and_old_receipts_still_settle() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();
    let registered = chain.with(|s| s.provider.clone().unwrap().evidence_digest);
    let before = finished_job(&f, "before-refresh").await;
    // Fresh: nothing to do.
    s.ensure_registered().await.unwrap();
    assert!(chain.with(|s| s.refreshes.is_empty()));
    // Half of the key's validity has passed: new evidence, for a new anchor.
    chain.with(|s| s.provider.as_mut().unwrap().validity_ms = Some((0, 2 * now_ms())));
    s.ensure_registered().await.unwrap();
    let refreshed = chain.with(|s| s.refreshes.clone());
    assert_eq!(refreshed.len(), 1);
    assert_ne!(Some(digest_of(&refreshed[0])), registered);
    assert_eq!(
        f.attestor.current().unwrap().digest,
        digest_of(&refreshed[0]),
        "receipts now reference the refreshed evidence"
    );
    // A receipt signed before the refresh references the replaced evidence, which the chain
    // still honours; one signed after references the new evidence.
    let after = finished_job(&f, "after-refresh").await;
    for job in [&before, &after] {
        chain.with(|s| s.jobs.insert(job.job_id, JobStatus::Bound));
        assert!(matches!(
            s.settle(job).await.unwrap(),
            Some(Outcome::Submitted { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_on_evidence_the_chain_never_took_is_refused_with_the_reason() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();
    // Evidence collected outside the settler (not bound to a registration nonce).
    refresh_evidence(&f).await;
    let job = finished_job(&f, "unanchored").await;
    chain.with(|s| s.jobs.insert(job.job_id, JobStatus::Bound));
    assert!(matches!(
        s.settle(&job).await.unwrap(),
        Some(Outcome::Refused { reason }) if reason.contains("does not hold")
    ));
    assert!(chain.with(|s| s.receipts.is_empty()));
}

/// The measurement the simulator reports in this process (the test executable's).
fn own_measurement() -> Vec<u8> {
    let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    attestation_verifier::evidence::simulated::executable_measurement(exe)
        .unwrap()
        .to_vec()
}

/// Registers `p` on the fake chain and points the fixture's `[chain] policy` at it.
fn use_policy(f: &mut Fixture, chain: &FakeChain, p: &attestation_verifier::policy::Policy) {
    chain.with(|s| s.policies.insert(p.id(), p.canonical_bytes()));
    f.cfg.policy = format!("0x{}", hex::encode(p.id()));
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_under_a_policy_pinning_this_agent_works() {
    use attestation_verifier::policy::HexBytes;
    let mut f = fixture().await;
    let chain = FakeChain::default();
    let mut p = attestation_verifier::policy::genesis::named("sigil.simulated.v1").unwrap();
    p.simulated.measurements = vec![HexBytes(own_measurement())];
    use_policy(&mut f, &chain, &p);
    let s = settler(&f, &chain);
    assert!(s.ensure_registered().await.unwrap());
    let r = chain.with(|s| s.registrations[0].clone());
    assert_eq!(r.attestation.unwrap().policy, p.id());
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_under_a_policy_its_evidence_fails_is_refused_naming_the_rule() {
    use attestation_verifier::policy::HexBytes;
    let mut f = fixture().await;
    let chain = FakeChain::default();
    let mut p = attestation_verifier::policy::genesis::named("sigil.simulated.v1").unwrap();
    p.simulated.measurements = vec![HexBytes(vec![0x22; 48])];
    use_policy(&mut f, &chain, &p);
    let err = settler(&f, &chain).ensure_registered().await.unwrap_err();
    assert!(
        matches!(&err, enclave_agent::settle::SettleError::Policy { reasons, .. }
            if reasons.iter().any(|r| r.contains("simulated.measurements"))),
        "{err}"
    );
    // A hardware policy refuses simulated evidence; a policy the chain does not have is named.
    use_policy(
        &mut f,
        &chain,
        &attestation_verifier::policy::genesis::named("sigil.sev-snp.v1").unwrap(),
    );
    let err = settler(&f, &chain).ensure_registered().await.unwrap_err();
    assert!(
        err.to_string().contains("snp.measurements is not pinned"),
        "{err}"
    );
    let mut pinned = attestation_verifier::policy::genesis::named("sigil.sev-snp.v1").unwrap();
    pinned.snp.measurements = vec![HexBytes(vec![0x33; 48])];
    use_policy(&mut f, &chain, &pinned);
    let err = settler(&f, &chain).ensure_registered().await.unwrap_err();
    assert!(err.to_string().contains("allow_simulated"), "{err}");
    f.cfg.policy = format!("0x{}", "ab".repeat(32));
    let err = settler(&f, &chain).ensure_registered().await.unwrap_err();
    assert!(err.to_string().contains("no policy with this id"), "{err}");
    assert!(chain.with(|s| s.registrations.is_empty()));
}

#[test]
fn capabilities_follow_the_config_and_the_tee() {
    use attestation_verifier::receipt::TeeKind as R;
    let cfg = ChainConfig::default();
    let c = capabilities(&cfg, R::None, Some("NVIDIA H100")).unwrap();
    assert_eq!(c.tiers, vec![Tier::Signed, Tier::Quorum]);
    assert!(c.tee_kinds.is_empty());
    assert_eq!(c.gpu_model, "NVIDIA H100");
    let cfg = ChainConfig {
        tiers: vec![3, 1, 3],
        gpu_model: "override".into(),
        ..ChainConfig::default()
    };
    let c = capabilities(&cfg, R::SevSnp, Some("NVIDIA H100")).unwrap();
    assert_eq!(c.tiers, vec![Tier::Attested, Tier::Signed]);
    assert_eq!(c.tee_kinds, vec![TeeKind::SevSnp]);
    assert_eq!(c.gpu_model, "override");
    assert!(
        capabilities(&cfg, R::None, None).is_err(),
        "tier 3 without a TEE"
    );
    let cfg = ChainConfig {
        tiers: vec![4],
        ..ChainConfig::default()
    };
    assert!(capabilities(&cfg, R::Tdx, None).is_err());
}

#[tokio::test]
async fn offer_follows_config_works() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    // Not registered yet: nothing to offer.
    assert!(!s.ensure_offer().await.unwrap());
    assert!(s.ensure_registered().await.unwrap());
    assert!(s.ensure_offer().await.unwrap());
    let mint = 1_000_000_000_000u128;
    let wanted = OfferTerms {
        price: mint / 1_000,
        capacity: 4,
        bond: 10 * mint,
    };
    assert_eq!(chain.with(|s| s.offers.clone()), vec![Some(wanted)]);
    // Already as configured: no transaction.
    assert!(s.ensure_offer().await.unwrap());
    assert_eq!(chain.with(|s| s.offers.len()), 1);

    // A smaller bond is configured while a bound job is open: the larger bond stays until it
    // closes.
    chain.with(|s| {
        let p = s.provider.as_mut().unwrap();
        p.active_jobs = 1;
        p.offer = Some(OfferTerms {
            bond: 20 * mint,
            ..wanted
        });
    });
    assert!(!s.ensure_offer().await.unwrap());
    assert_eq!(chain.with(|s| s.offers.len()), 1);
    chain.with(|s| s.provider.as_mut().unwrap().active_jobs = 0);
    assert!(s.ensure_offer().await.unwrap());
    assert_eq!(chain.with(|s| s.offers.last().copied()), Some(Some(wanted)));

    // Capacity 0: the offer is withdrawn.
    drop(s);
    let mut cfg = f.cfg.clone();
    cfg.offer.capacity = 0;
    let paused = settler_with(&f, &chain, &cfg).unwrap();
    assert!(paused.ensure_offer().await.unwrap());
    assert_eq!(chain.with(|s| s.offers.last().copied()), Some(None));
}

#[tokio::test]
async fn offer_config_rejects() {
    let f = fixture().await;
    let mut cfg = f.cfg.clone();
    cfg.offer.bond = "ten".into();
    let err = settler_with(&f, &FakeChain::default(), &cfg).unwrap_err();
    assert!(err.to_string().contains("offer.bond"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reassigned_job_still_bound_here_settles_works() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();
    let job = finished_job(&f, "reassigned").await;
    // Funded again after other providers missed the response window, with this account still
    // bound: its receipt counts, so it is submitted now.
    chain.with(|s| {
        s.jobs.insert(job.job_id, JobStatus::Funded);
        s.bound_funded.push(job.job_id);
    });
    assert!(matches!(
        s.settle(&job).await.unwrap(),
        Some(Outcome::Submitted { .. })
    ));
    assert_eq!(chain.with(|s| s.receipts.len()), 1);
}
