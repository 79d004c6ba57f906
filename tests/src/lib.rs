//! Helpers of the end-to-end tests: the chain's URL, fresh funded accounts, jobs, and receipts
//! and evidence bundles built as the agent builds them (the `attestation-verifier` crate's
//! receipt body, ed25519 signing, and the simulator's evidence bundle).
//!
//! The tests themselves (`tests/*.rs`) run only with the `local-chain` feature, against the
//! chain `tests/e2e.sh` starts (`SIGIL_CHAIN_URL`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use attestation_verifier::binding;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::{Crypto, RustCrypto};
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, TeeKind, Usage,
};
use ed25519_dalek::{Signer as _, SigningKey};
use sigil_chain_client::types::{
    Balance, Capabilities, Evidence, JobId, JobOrder, MINT, ProviderClass, Tier, TierTerms,
};
use sigil_chain_client::{
    AccountId32, ChainClient, ChainError, Ed25519Keypair, KeyScheme, Keypair,
};

/// The local chain's URL (`SIGIL_CHAIN_URL`, default `ws://127.0.0.1:9944`).
pub fn chain_url() -> String {
    std::env::var("SIGIL_CHAIN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9944".into())
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// 32 random bytes from the OS (ids, seeds); `tag` is unused but names the purpose at the call site.
pub fn fresh_bytes(_tag: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS RNG failing is not a condition the tests can work around.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the OS random number generator");
    b
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The dev accounts.
pub struct Dev {
    /// Funds the tests' provider accounts.
    pub alice: Keypair,
    /// A buyer.
    pub bob: Keypair,
}

impl Dev {
    /// `//Alice` and `//Bob` (sr25519).
    pub fn new() -> Result<Self, ChainError> {
        Ok(Self {
            alice: Keypair::from_uri(KeyScheme::Sr25519, "//Alice")?,
            bob: Keypair::from_uri(KeyScheme::Sr25519, "//Bob")?,
        })
    }
}

/// A provider: an ed25519 key that is both its account and its receipt key.
pub struct ProviderKey {
    /// The key pair.
    pub key: Ed25519Keypair,
    /// As an account signer.
    pub signer: Keypair,
}

impl ProviderKey {
    /// A fresh provider key (a hard-derived dev key with a unique junction).
    pub fn fresh(tag: &str) -> Result<Self, ChainError> {
        let uri = format!("//SigilE2e//{}", hex::encode(fresh_bytes(tag)));
        let key = Ed25519Keypair::from_uri(&uri)?;
        Ok(Self {
            signer: Keypair::Ed25519(key.clone()),
            key,
        })
    }

    /// The provider's account.
    pub fn account(&self) -> AccountId32 {
        self.signer.account_id()
    }

    /// Funds the account from Alice and registers it.
    pub async fn fund_and_register(
        &self,
        client: &ChainClient,
        dev: &Dev,
        tiers: Vec<Tier>,
        tee_kinds: Vec<sigil_chain_client::types::TeeKind>,
        attestation: Option<&Evidence>,
    ) -> Result<(), ChainError> {
        client
            .transfer(&dev.alice, &self.account(), 100 * MINT)
            .await?;
        client
            .register_provider(
                &self.signer,
                &self.key,
                &Capabilities {
                    tiers,
                    tee_kinds,
                    gpu_model: String::new(),
                },
                attestation,
            )
            .await?;
        Ok(())
    }

    /// [`Self::fund_and_register`] as a tier-3 provider of simulated evidence under the chain
    /// policy `policy`: the evidence is `make` of the account's registration nonce, anchored at
    /// the chain's head. Returns the evidence.
    pub async fn fund_and_register_simulated(
        &self,
        client: &ChainClient,
        dev: &Dev,
        make: impl FnOnce([u8; 32]) -> Vec<u8>,
        policy: [u8; 32],
    ) -> Result<Vec<u8>, ChainError> {
        // The anchor is any of the chain's last 64 blocks: the funding transfer in between
        // does not age it out.
        let anchor = client.registration_anchor(&self.account()).await?;
        let bundle = make(anchor.nonce);
        self.fund_and_register(
            client,
            dev,
            vec![Tier::Attested],
            vec![sigil_chain_client::types::TeeKind::Simulated],
            Some(&Evidence {
                bundle: bundle.clone(),
                policy,
                anchor: anchor.anchor,
            }),
        )
        .await?;
        Ok(bundle)
    }
}

/// An offer bond: the runtime's minimum, 10 MINT.
pub const BOND: Balance = 10 * MINT;

/// Has the chain bind `providers` to the waiting job `job_id`, as its dispatch rule does: each
/// offers (price 0, capacity 1, [`BOND`]); the chain binds the job in the first block with
/// spare weight (`on_idle`, usually the block of an offer), or when anyone (here Bob) runs the
/// rule; then the offers pause again (capacity 0), so that no later job of another test is
/// bound to them. Returns the providers the chain bound, in its order.
pub async fn bind_via_offers(
    client: &ChainClient,
    dev: &Dev,
    job_id: &[u8; 32],
    providers: &[&ProviderKey],
) -> Result<Vec<AccountId32>, ChainError> {
    for p in providers {
        client.set_offer(&p.signer, 0, 1, BOND).await?;
    }
    let waiting = client
        .job(job_id)
        .await?
        .is_some_and(|j| j.status == sigil_chain_client::types::JobStatus::Funded);
    let dispatched = if waiting {
        client.dispatch_job(&dev.bob, job_id).await.map(drop)
    } else {
        Ok(())
    };
    for p in providers {
        client.set_offer(&p.signer, 0, 0, BOND).await?;
    }
    dispatched?;
    Ok(client
        .job_record(job_id)
        .await?
        .binding
        .map(|b| b.providers)
        .unwrap_or_default())
}

/// A job order: fresh id and spec hash, 5 MINT, deadline `blocks` ahead of `head`.
pub fn order(terms: TierTerms, class: ProviderClass, head: u32, blocks: u32) -> JobOrder {
    let job_id = fresh_bytes("job");
    JobOrder {
        job_id,
        spec_hash: RustCrypto.sha256(format!("job spec 0x{}", hex::encode(job_id)).as_bytes()),
        terms,
        class,
        price: 5 * MINT,
        deadline: head.saturating_add(blocks),
        response_blocks: 0,
    }
}

/// A tier-3 attested-key order under `policy` for the agent's simulator, deadline 100 blocks
/// after `head`.
pub fn simulated_tier3_order(policy: [u8; 32], head: u32) -> JobOrder {
    order(
        TierTerms::Attested {
            policy,
            fresh_quote: false,
        },
        ProviderClass {
            tee_kinds: vec![sigil_chain_client::types::TeeKind::Simulated],
            gpu_model: String::new(),
            gpu_count: 0,
        },
        head,
        100,
    )
}

/// The job's price.
pub const PRICE: Balance = 5 * MINT;

/// What a receipt says beyond the job.
#[derive(Clone, Copy, Debug)]
pub struct ReceiptFacts {
    /// Tier code.
    pub tier: u8,
    /// Result commitment.
    pub result: [u8; 32],
    /// Evidence reference.
    pub evidence: EvidenceRef,
}

impl ReceiptFacts {
    /// A tier-1 or tier-2 receipt committing to `result`.
    pub fn plain(tier: u8, result: [u8; 32]) -> Self {
        Self {
            tier,
            result,
            evidence: EvidenceRef::NONE,
        }
    }
}

/// The receipt body the agent would sign for `order`.
pub fn receipt_body(
    order: &JobOrder,
    provider: &Ed25519Keypair,
    facts: ReceiptFacts,
) -> ReceiptBody {
    let finished = now_ms();
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: order.job_id,
        job_spec_hash: order.spec_hash,
        provider: provider.public_key(),
        tier: facts.tier,
        result_commitment: facts.result,
        output_count: 1,
        started_at_ms: finished.saturating_sub(5_000),
        finished_at_ms: finished,
        exit_code: 0,
        usage: Usage {
            wall_ms: 5_000,
            cpu_ms: 10,
            peak_memory_bytes: 1 << 20,
            gpu_ms: 0,
            gpu_energy_mj: 0,
        },
        evidence: facts.evidence,
    }
}

/// `SCALE(SignedReceipt)` of `body` signed by `provider`, as the agent writes it.
pub fn sign_receipt(body: &ReceiptBody, provider: &Ed25519Keypair) -> Vec<u8> {
    let digest = body.digest(&RustCrypto);
    SignedReceipt::new(body, provider.sign(&digest)).to_bytes()
}

/// A simulated evidence bundle binding `agent_key` and `nonce`, as the agent's simulator
/// writes it (its own fresh signing key, no GPUs).
pub fn simulated_bundle(agent_key: [u8; 32], nonce: [u8; 32]) -> Vec<u8> {
    build_simulated_bundle(agent_key, nonce, SIMULATED_MEASUREMENT, false)
}

/// [`simulated_bundle`] of another agent build: its simulator reports `measurement`.
pub fn simulated_bundle_measured(
    agent_key: [u8; 32],
    nonce: [u8; 32],
    measurement: [u8; 48],
) -> Vec<u8> {
    build_simulated_bundle(agent_key, nonce, measurement, false)
}

/// The measurement of every [`simulated_bundle`].
pub const SIMULATED_MEASUREMENT: [u8; 48] = [0x11; 48];

/// [`simulated_bundle`] with one bit of the simulator's signature flipped.
pub fn tampered_simulated_bundle(agent_key: [u8; 32], nonce: [u8; 32]) -> Vec<u8> {
    build_simulated_bundle(agent_key, nonce, SIMULATED_MEASUREMENT, true)
}

fn build_simulated_bundle(
    agent_key: [u8; 32],
    nonce: [u8; 32],
    measurement: [u8; 48],
    tamper: bool,
) -> Vec<u8> {
    let report_data = binding::report_data(&RustCrypto, &agent_key, &[0; 32], &nonce);
    let simulator = SigningKey::from_bytes(&fresh_bytes("simulator"));
    let body = SimulatedBody::new(
        report_data,
        measurement,
        SimulatedKey::Ed25519(simulator.verifying_key().to_bytes()),
    );
    let mut signature = simulator.sign(&body.signed_message()).to_bytes().to_vec();
    if tamper && let Some(b) = signature.get_mut(10) {
        *b ^= 1;
    }
    let cpu = CpuEvidence::Simulated {
        report: SimulatedReport { body, signature }.to_bytes(),
    };
    EvidenceBundle::new(agent_key, nonce, cpu, Vec::new()).to_bytes()
}

/// `sha256("sigil.evidence.v1\0" || bundle)`.
pub fn evidence_digest(bundle: &[u8]) -> [u8; 32] {
    attestation_verifier::bundle::bundle_digest(&RustCrypto, bundle)
}

/// The evidence reference of an attested-key receipt resting on `bundle`.
pub fn attested_key_ref(bundle: &[u8]) -> EvidenceRef {
    EvidenceRef {
        mode: EvidenceMode::AttestedKey,
        tee: TeeKind::Simulated,
        digest: evidence_digest(bundle),
    }
}

/// A fresh-quote receipt for `order` and the bundle bound to it.
pub fn fresh_quote_receipt(
    order: &JobOrder,
    provider: &Ed25519Keypair,
    result: [u8; 32],
) -> (Vec<u8>, Vec<u8>) {
    let mut body = receipt_body(
        order,
        provider,
        ReceiptFacts {
            tier: 3,
            result,
            evidence: EvidenceRef {
                mode: EvidenceMode::FreshQuote,
                tee: TeeKind::Simulated,
                digest: [0; 32],
            },
        },
    );
    let nonce = binding::fresh_nonce(&RustCrypto, &body);
    let bundle = simulated_bundle(provider.public_key(), nonce);
    body.evidence.digest = evidence_digest(&bundle);
    (sign_receipt(&body, provider), bundle)
}

/// A result commitment standing for a job's outputs.
pub fn result_of(tag: &str) -> [u8; 32] {
    RustCrypto.sha256(format!("outputs {tag}").as_bytes())
}

/// Advances the chain by `n` blocks (each transfer is a block on the local chain).
pub async fn advance_blocks(client: &ChainClient, dev: &Dev, n: u32) -> Result<(), ChainError> {
    let sink = Keypair::from_uri(KeyScheme::Sr25519, "//Eve")?.account_id();
    for _ in 0..n {
        client.transfer(&dev.bob, &sink, MINT / 1000).await?;
    }
    Ok(())
}

/// The job id as `0x` hex.
pub fn hex_id(id: &JobId) -> String {
    format!("0x{}", hex::encode(id))
}

/// The `sigil` binary (`SIGIL_BIN`, default `target/debug/sigil` of this workspace).
pub fn sigil_bin() -> PathBuf {
    std::env::var_os("SIGIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join("sigil"))
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, default `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The chain's build outputs: `chain/dev/` (`SIGIL_CHAIN_DEV` overrides).
pub fn chain_dev_dir() -> PathBuf {
    std::env::var_os("SIGIL_CHAIN_DEV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("chain").join("dev"))
}
