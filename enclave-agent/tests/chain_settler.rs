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
    MarketChain, Outcome, ProviderState, Registration, Settler, capabilities,
};
use enclave_agent::store::{Completion, Store};
use sha2::{Digest, Sha256};
use sigil_chain_client::types::{JobStatus, TeeKind, Tier};
use sigil_chain_client::{ChainError, Submitted};

const ACCOUNT: [u8; 32] = [0xAC; 32];

/// A submitted receipt: job, receipt bytes, fresh evidence.
type Submission = ([u8; 32], Vec<u8>, Option<Vec<u8>>);

#[derive(Default)]
struct State {
    provider: Option<ProviderState>,
    previous: Option<[u8; 32]>,
    jobs: HashMap<[u8; 32], JobStatus>,
    registrations: Vec<Registration>,
    deregistrations: u32,
    refreshes: Vec<Vec<u8>>,
    receipts: Vec<Submission>,
    rpc_down: bool,
}

#[derive(Clone, Default)]
struct FakeChain(Arc<Mutex<State>>);

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
            s.provider = Some(ProviderState {
                signing_key: r.key,
                evidence_digest: r.attestation.as_ref().map(|a| digest_of(&a.bundle)),
                active_jobs: 0,
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

    async fn refresh_attestation(&self, bundle: &[u8]) -> Result<(), ChainError> {
        self.check_up()?;
        self.with(|s| {
            let p = s
                .provider
                .as_mut()
                .ok_or_else(|| refused("NotRegistered"))?;
            let new = digest_of(bundle);
            if p.evidence_digest != Some(new) {
                s.previous = p.evidence_digest;
                p.evidence_digest = Some(new);
            }
            s.refreshes.push(bundle.to_vec());
            Ok(())
        })
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

    async fn submit_receipt(
        &self,
        job_id: [u8; 32],
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> Result<Submitted, ChainError> {
        self.check_up()?;
        self.with(|s| {
            if s.jobs.get(&job_id) != Some(&JobStatus::Bound) {
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
    Settler::new(
        chain.clone(),
        ACCOUNT,
        f.store.clone(),
        Arc::clone(&f.attestor),
        f.dir.path(),
        &f.cfg,
        None,
    )
    .unwrap()
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
    let evidence = f.attestor.current().unwrap();
    let attestation = r.attestation.unwrap();
    assert_eq!(attestation.bundle, *evidence.bytes);
    assert_eq!(
        attestation.policy,
        sigil_chain_client::policy::policy_id("sigil.simulated.v1")
    );
    // Registered already: nothing more happens.
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.registrations.len()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_registered_with_another_key_is_re_registered_once_idle() {
    let f = fixture().await;
    let chain = FakeChain::default();
    chain.with(|s| {
        s.provider = Some(ProviderState {
            signing_key: [1; 32],
            evidence_digest: None,
            active_jobs: 2,
        })
    });
    let s = settler(&f, &chain);
    // Open jobs of the old key: its receipts must still settle, so nothing changes yet.
    assert!(!s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.deregistrations), 0);
    chain.with(|s| s.provider.as_mut().unwrap().active_jobs = 0);
    assert!(s.ensure_registered().await.unwrap());
    assert_eq!(chain.with(|s| s.deregistrations), 1);
    assert_eq!(
        chain.with(|s| s.provider.clone().unwrap().signing_key),
        f.attestor.public_key()
    );
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
async fn the_receipts_evidence_is_put_on_chain_before_the_receipt() {
    let f = fixture().await;
    let chain = FakeChain::default();
    let s = settler(&f, &chain);
    s.ensure_registered().await.unwrap();
    // The agent refreshed its evidence after registering; the chain still has the old one.
    refresh_evidence(&f).await;
    let job = finished_job(&f, "after-refresh").await;
    chain.with(|s| s.jobs.insert(job.job_id, JobStatus::Bound));
    let body = SignedReceipt::decode_bytes(&f.store.receipt(&job.job_id).unwrap().unwrap())
        .unwrap()
        .body()
        .unwrap();
    assert_ne!(
        chain.with(|s| s.provider.clone().unwrap().evidence_digest),
        Some(body.evidence.digest)
    );
    assert!(matches!(
        s.settle(&job).await.unwrap(),
        Some(Outcome::Submitted { .. })
    ));
    let refreshed = chain.with(|s| s.refreshes.clone());
    assert_eq!(refreshed.len(), 1);
    assert_eq!(digest_of(&refreshed[0]), body.evidence.digest);
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
