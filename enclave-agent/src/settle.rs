//! Settlement on the market chain.
//!
//! With `[chain] url` set, the agent acts for its provider account on the chain:
//! 1. it registers the account as a provider whose receipts the agent key signs (the key proof
//!    is signed inside the TEE by that key); with a TEE it registers the key's attested-key
//!    evidence under `[chain] policy`, verified by the runtime;
//!    Registration evidence binds a nonce the chain derives from a recent block and the account
//!    (`sigil_chain_client::registration_nonce`): the settler asks the chain for an anchor,
//!    collects evidence for that nonce, checks it against the policy document the chain stores
//!    for `[chain] policy` (refusing to register, and naming each failed rule, when its own
//!    evidence would not satisfy it), and submits it;
//! 2. it keeps the attested key valid: once half of the key's validity has passed (or the
//!    agent's evidence is not the chain's), it collects new anchored evidence and refreshes the
//!    chain's record (`refresh_attestation`); the engine does not refresh evidence on its own
//!    while a chain takes tier-3 work, so every attested-key receipt references evidence the
//!    chain holds;
//! 3. it keeps the account's standing offer (`[chain.offer]`: price, capacity, bond) as
//!    configured, so the chain's dispatch rule binds jobs to it; no account chooses providers;
//! 4. it submits the receipt of every finished job that the chain bound to the account, as
//!    soon as the job ends, and on start for jobs that ended while it was down. A job whose
//!    response window passes without the receipt may be reassigned by anyone, and the account
//!    loses a share of its bond: receipts are submitted as soon as they exist.
//!
//! Which jobs were dealt with is kept in a small durable table (`chain.redb` in the state
//! directory): a job is recorded once the chain included or refused its receipt, so a crash
//! between the two at worst submits a receipt twice, and the chain refuses the second copy
//! (`ReceiptAlreadySubmitted`). RPC failures are retried every `retry_secs`; refusals are final
//! and logged with the chain's decoded reason.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::receipt::{EvidenceMode, SignedReceipt};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use sigil_chain_client::types::{Capabilities, Evidence, JobStatus, TeeKind, Tier};
use sigil_chain_client::{
    AccountId32, ChainClient, ChainError, KeyScheme, Keypair, RegistrationAnchor, Submitted,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::attestor::Attestor;
use crate::config::ChainConfig;
use crate::job::JobRecord;
use crate::store::Store;

/// Why settlement on the chain could not start or proceed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The `[chain]` configuration is unusable.
    #[error("[chain] {key}: {detail}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The chain (or the connection to it) failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The settlement table failed.
    #[error("settlement table: {0}")]
    Store(String),
    /// The job store failed.
    #[error("job store: {0}")]
    Jobs(String),
    /// Collecting evidence failed.
    #[error("evidence: {0}")]
    Evidence(String),
    /// The agent's own evidence does not satisfy the policy it would register under.
    #[error("the agent's evidence does not satisfy policy 0x{policy}: {}", reasons.join("; "))]
    Policy {
        /// The policy id (hex).
        policy: String,
        /// Each failed rule or check.
        reasons: Vec<String>,
    },
}

fn store_err(e: impl std::fmt::Display) -> SettleError {
    SettleError::Store(e.to_string())
}

/// The provider's state on chain, as far as the agent cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderState {
    /// The registered receipt key.
    pub signing_key: [u8; 32],
    /// Digest of the attested-key evidence on chain (tier 3).
    pub evidence_digest: Option<[u8; 32]>,
    /// When the chain verified it and when the key expires (Unix ms; tier 3).
    pub validity_ms: Option<(u64, u64)>,
    /// Bound jobs still open.
    pub active_jobs: u32,
    /// The standing offer, if any.
    pub offer: Option<OfferTerms>,
    /// The key the account rotated away from, while jobs bound under it are open.
    pub retiring_key: Option<[u8; 32]>,
}

/// A standing offer's terms, in the smallest MINT unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferTerms {
    /// Least price per job.
    pub price: u128,
    /// Most jobs bound at once.
    pub capacity: u32,
    /// Bond held.
    pub bond: u128,
}

impl OfferTerms {
    /// The offer `[chain.offer]` asks for; `None` when its capacity is 0 (no offer).
    pub fn from_config(cfg: &crate::config::OfferConfig) -> Result<Option<Self>, SettleError> {
        let amount = |key: &'static str, v: &str| {
            sigil_chain_client::parse_mint(key, v).map_err(|e| SettleError::Config {
                key,
                detail: e.to_string(),
            })
        };
        let price = amount("offer.price", &cfg.price)?;
        let bond = amount("offer.bond", &cfg.bond)?;
        Ok((cfg.capacity > 0).then_some(Self {
            price,
            capacity: cfg.capacity,
            bond,
        }))
    }
}

/// A provider registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The agent key.
    pub key: [u8; 32],
    /// The agent key's signature over the chain's key-proof message for the account.
    pub proof: [u8; 64],
    /// What the provider offers.
    pub capabilities: Capabilities,
    /// The attested-key evidence and its policy (tier 3).
    pub attestation: Option<Evidence>,
}

/// What the agent needs of the market chain, for its own provider account.
/// [`ClientChain`] implements it over the chain client.
pub trait MarketChain: Send + Sync {
    /// The account's provider record.
    fn provider(&self) -> impl Future<Output = Result<Option<ProviderState>, ChainError>> + Send;
    /// Registers the account.
    fn register(&self, r: &Registration) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Removes the account's registration.
    fn deregister(&self) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Replaces the account's receipt key with `r.key` (and, tier 3, its attestation); jobs
    /// bound under the old key keep it.
    fn rotate_key(&self, r: &Registration) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Sets the account's standing offer.
    fn set_offer(&self, offer: &OfferTerms) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Withdraws the account's offer.
    fn withdraw_offer(&self) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Replaces the account's attested-key evidence with `bundle`, anchored at block `anchor`.
    fn refresh_attestation(
        &self,
        bundle: &[u8],
        anchor: u32,
    ) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// A recent block to anchor registration evidence at, and the nonce it must bind.
    fn registration_anchor(
        &self,
    ) -> impl Future<Output = Result<RegistrationAnchor, ChainError>> + Send;
    /// The document of the policy registered under `id`, if any.
    fn policy_document(
        &self,
        id: &[u8; 32],
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ChainError>> + Send;
    /// Whether the chain honours attested-key receipts that reference `digest`.
    fn honours(&self, digest: &[u8; 32]) -> impl Future<Output = Result<bool, ChainError>> + Send;
    /// A job's status, if the chain knows the job.
    fn job_status(
        &self,
        job_id: &[u8; 32],
    ) -> impl Future<Output = Result<Option<JobStatus>, ChainError>> + Send;
    /// Whether the chain lists the account among the job's bound providers, bound under
    /// `key` (the receipt key the job must be signed with).
    fn bound_here(
        &self,
        job_id: &[u8; 32],
        key: &[u8; 32],
    ) -> impl Future<Output = Result<bool, ChainError>> + Send;
    /// Submits a receipt (with the evidence of a fresh-quote receipt).
    fn submit_receipt(
        &self,
        job_id: [u8; 32],
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> impl Future<Output = Result<Submitted, ChainError>> + Send;
}

/// [`MarketChain`] over a [`ChainClient`] and the provider account's key.
#[derive(Clone, Debug)]
pub struct ClientChain {
    client: ChainClient,
    account: Keypair,
}

impl ClientChain {
    /// Acts for `account` through `client`.
    pub fn new(client: ChainClient, account: Keypair) -> Self {
        Self { client, account }
    }

    /// The account.
    pub fn account_id(&self) -> AccountId32 {
        self.account.account_id()
    }
}

impl MarketChain for ClientChain {
    async fn provider(&self) -> Result<Option<ProviderState>, ChainError> {
        Ok(self
            .client
            .provider(&self.account.account_id())
            .await?
            .map(|p| ProviderState {
                signing_key: p.signing_key,
                evidence_digest: p.attested.as_ref().map(|a| a.evidence_digest),
                validity_ms: p.attested.map(|a| (a.verified_at_ms, a.expires_at_ms)),
                active_jobs: p.active_jobs,
                offer: p.offer.map(|o| OfferTerms {
                    price: o.price,
                    capacity: o.capacity,
                    bond: o.bond,
                }),
                retiring_key: p.retiring.map(|r| r.signing_key),
            }))
    }

    async fn register(&self, r: &Registration) -> Result<(), ChainError> {
        self.client
            .register_provider_with_proof(
                &self.account,
                r.key,
                r.proof,
                &r.capabilities,
                r.attestation.as_ref(),
            )
            .await
            .map(drop)
    }

    async fn deregister(&self) -> Result<(), ChainError> {
        self.client.deregister(&self.account).await.map(drop)
    }

    async fn rotate_key(&self, r: &Registration) -> Result<(), ChainError> {
        self.client
            .rotate_key(&self.account, r.key, r.proof, r.attestation.as_ref())
            .await
            .map(drop)
    }

    async fn set_offer(&self, offer: &OfferTerms) -> Result<(), ChainError> {
        self.client
            .set_offer(&self.account, offer.price, offer.capacity, offer.bond)
            .await
            .map(drop)
    }

    async fn withdraw_offer(&self) -> Result<(), ChainError> {
        self.client.withdraw_offer(&self.account).await.map(drop)
    }

    async fn refresh_attestation(&self, bundle: &[u8], anchor: u32) -> Result<(), ChainError> {
        self.client
            .refresh_attestation(&self.account, bundle, anchor)
            .await
            .map(drop)
    }

    async fn registration_anchor(&self) -> Result<RegistrationAnchor, ChainError> {
        self.client
            .registration_anchor(&self.account.account_id())
            .await
    }

    async fn policy_document(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, ChainError> {
        Ok(self.client.policy(id).await?.map(|p| p.document))
    }

    async fn honours(&self, digest: &[u8; 32]) -> Result<bool, ChainError> {
        Ok(self
            .client
            .provider(&self.account.account_id())
            .await?
            .is_some_and(|p| {
                // The current key's evidence, or the rotated-away key's while its jobs are open.
                p.attested.as_ref().is_some_and(|a| a.honours(digest))
                    || p.retiring
                        .as_ref()
                        .and_then(|r| r.attested.as_ref())
                        .is_some_and(|a| a.honours(digest))
            }))
    }

    async fn job_status(&self, job_id: &[u8; 32]) -> Result<Option<JobStatus>, ChainError> {
        Ok(self.client.job(job_id).await?.map(|j| j.status))
    }

    async fn bound_here(&self, job_id: &[u8; 32], key: &[u8; 32]) -> Result<bool, ChainError> {
        let me = self.account.account_id();
        Ok(self
            .client
            .binding(job_id)
            .await?
            .is_some_and(|b| b.key_of(&me) == Some(*key)))
    }

    async fn submit_receipt(
        &self,
        job_id: [u8; 32],
        signed_receipt: Vec<u8>,
        fresh_evidence: Option<Vec<u8>>,
    ) -> Result<Submitted, ChainError> {
        self.client
            .submit_receipt(
                &self.account,
                &job_id,
                &signed_receipt,
                fresh_evidence.as_deref(),
            )
            .await
            .map(|i| Submitted::from(&i))
    }
}

/// The chain's answer to admission ([`crate::funding::FundingOracle`]) over a [`ClientChain`]:
/// the job's escrow and whether `account` is among its bound providers, bound under this
/// agent's receipt key `key` (a job bound under another agent's key is that agent's to run).
#[derive(Clone, Debug)]
pub struct ChainFunding {
    chain: ClientChain,
    account: [u8; 32],
    key: [u8; 32],
}

impl ChainFunding {
    /// Over `chain`, for the provider `account` and the agent key `key`.
    pub fn new(chain: ClientChain, account: [u8; 32], key: [u8; 32]) -> Self {
        Self {
            chain,
            account,
            key,
        }
    }
}

impl crate::funding::FundingOracle for ChainFunding {
    fn funding<'a>(&'a self, job_id: &'a [u8; 32]) -> crate::funding::FundingFuture<'a> {
        Box::pin(async move {
            let unavailable =
                |e: ChainError| crate::funding::FundingError::Unavailable(e.to_string());
            let Some(job) = self.chain.client.job(job_id).await.map_err(unavailable)? else {
                return Ok(None);
            };
            let bound_here = self
                .chain
                .client
                .binding(job_id)
                .await
                .map_err(unavailable)?
                .is_some_and(|b| b.key_of(&AccountId32(self.account)) == Some(self.key));
            Ok(Some(crate::funding::Funding {
                buyer: job.buyer.0,
                spec_hash: job.spec_hash,
                open: job.status.is_open(),
                bound_here,
            }))
        })
    }
}

/// Verifies the agent's own evidence `bundle` under `policy` at `now_ms`, as the chain will;
/// returns every failed check or rule (empty: it would be accepted).
fn check_own_evidence(
    policy: &attestation_verifier::policy::Policy,
    bundle: &[u8],
    now_ms: u64,
) -> Vec<String> {
    let mut verifier = match attestation_verifier::ReceiptVerifier::new(
        attestation_verifier::crypto::DefaultCrypto::default(),
    ) {
        Ok(v) => v,
        Err(e) => return vec![format!("the verifier's pinned roots: {e}")],
    };
    let now = attestation_verifier::time::UnixTime(now_ms / 1_000);
    attestation_verifier::check_bundle(&mut verifier, bundle, None, None, policy, now).reasons
}

/// Connects to the configured chain with the configured account.
pub async fn connect(cfg: &ChainConfig) -> Result<ClientChain, SettleError> {
    let scheme = match cfg.account_scheme.as_str() {
        "sr25519" => KeyScheme::Sr25519,
        "ed25519" => KeyScheme::Ed25519,
        other => {
            return Err(SettleError::Config {
                key: "account_scheme",
                detail: format!("{other:?} is not sr25519 or ed25519"),
            });
        }
    };
    if cfg.account_key_file.as_os_str().is_empty() {
        return Err(SettleError::Config {
            key: "account_key_file",
            detail: "required when [chain] url is set".into(),
        });
    }
    let account = Keypair::from_file(scheme, &cfg.account_key_file)?;
    let client = ChainClient::connect(&cfg.url).await?;
    Ok(ClientChain::new(client, account))
}

/// What happened to a job's receipt on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Included in `block`; `settled` when it closed the job.
    Submitted {
        /// Inclusion block.
        block: u64,
        /// Whether it settled the job.
        settled: bool,
    },
    /// The chain refused it.
    Refused {
        /// The chain's reason.
        reason: String,
    },
    /// Not submitted: the job is not a chain job, or was already closed.
    Skipped {
        /// Why.
        reason: String,
    },
}

const OUTCOMES: TableDefinition<'static, [u8; 32], &'static [u8]> =
    TableDefinition::new("chain_outcomes");

/// The durable record of which jobs' receipts were dealt with.
#[derive(Debug)]
pub struct Outbox {
    db: Database,
}

impl Outbox {
    /// Opens (or creates) the table at `path`.
    pub fn open(path: &Path) -> Result<Self, SettleError> {
        let db = Database::create(path).map_err(store_err)?;
        let txn = db.begin_write().map_err(store_err)?;
        txn.open_table(OUTCOMES).map_err(store_err)?;
        txn.commit().map_err(store_err)?;
        Ok(Self { db })
    }

    /// The recorded outcome of `job_id`.
    pub fn get(&self, job_id: &[u8; 32]) -> Result<Option<Outcome>, SettleError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(OUTCOMES).map_err(store_err)?;
        let Some(v) = table.get(job_id).map_err(store_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(store_err)
    }

    /// Records `outcome` for `job_id` durably.
    pub fn put(&self, job_id: &[u8; 32], outcome: &Outcome) -> Result<(), SettleError> {
        let bytes = serde_json::to_vec(outcome).map_err(store_err)?;
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = txn.open_table(OUTCOMES).map_err(store_err)?;
            table.insert(job_id, bytes.as_slice()).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }
}

/// The chain's TEE kind of the agent's evidence.
fn chain_tee(tee: attestation_verifier::receipt::TeeKind) -> Option<TeeKind> {
    use attestation_verifier::receipt::TeeKind as R;
    match tee {
        R::SevSnp => Some(TeeKind::SevSnp),
        R::Tdx => Some(TeeKind::Tdx),
        R::Simulated => Some(TeeKind::Simulated),
        _ => None,
    }
}

/// What the agent offers on chain, from `[chain]` and what it has.
pub fn capabilities(
    cfg: &ChainConfig,
    tee: attestation_verifier::receipt::TeeKind,
    gpu_model: Option<&str>,
) -> Result<Capabilities, SettleError> {
    let tee = chain_tee(tee);
    let mut tiers = Vec::new();
    let codes: Vec<u8> = if cfg.tiers.is_empty() {
        if tee.is_some() {
            vec![1, 2, 3]
        } else {
            vec![1, 2]
        }
    } else {
        cfg.tiers.clone()
    };
    for code in codes {
        let tier = match code {
            1 => Tier::Signed,
            2 => Tier::Quorum,
            3 if tee.is_some() => Tier::Attested,
            3 => {
                return Err(SettleError::Config {
                    key: "tiers",
                    detail: "tier 3 needs an evidence source".into(),
                });
            }
            other => {
                return Err(SettleError::Config {
                    key: "tiers",
                    detail: format!("{other} is not a tier (1, 2 or 3)"),
                });
            }
        };
        if !tiers.contains(&tier) {
            tiers.push(tier);
        }
    }
    let gpu_model = if cfg.gpu_model.is_empty() {
        gpu_model.unwrap_or_default().to_owned()
    } else {
        cfg.gpu_model.clone()
    };
    Ok(Capabilities {
        tiers,
        tee_kinds: tee.into_iter().collect(),
        gpu_model,
    })
}

/// The agent's provider side on the chain. See the module documentation.
pub struct Settler<C> {
    chain: C,
    store: Store,
    attestor: Arc<Attestor>,
    outbox: Outbox,
    account: [u8; 32],
    capabilities: Capabilities,
    policy: [u8; 32],
    offer: Option<OfferTerms>,
    retry: Duration,
}

impl<C> std::fmt::Debug for Settler<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settler")
            .field("account", &hex::encode(self.account))
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// The settlement table's path in the state directory.
pub fn outbox_path(state_dir: &Path) -> PathBuf {
    state_dir.join("chain.redb")
}

impl<C: MarketChain> Settler<C> {
    /// A settler acting for `account` (its 32-byte id) through `chain`, settling the jobs
    /// of `store` with the agent key and evidence of `attestor`; its table lives in
    /// `state_dir`.
    pub fn new(
        chain: C,
        account: [u8; 32],
        store: Store,
        attestor: Arc<Attestor>,
        state_dir: &Path,
        cfg: &ChainConfig,
        gpu_model: Option<&str>,
    ) -> Result<Self, SettleError> {
        let policy =
            sigil_chain_client::policy::parse_policy_ref(&cfg.policy).ok_or_else(|| {
                SettleError::Config {
                    key: "policy",
                    detail: format!(
                        "{:?} is neither a 0x policy id nor a genesis policy name",
                        cfg.policy
                    ),
                }
            })?;
        let capabilities = capabilities(cfg, attestor.tee(), gpu_model)?;
        let offer = OfferTerms::from_config(&cfg.offer)?;
        let outbox = Outbox::open(&outbox_path(state_dir))?;
        Ok(Self {
            chain,
            store,
            attestor,
            outbox,
            account,
            capabilities,
            policy,
            offer,
            retry: Duration::from_secs(cfg.retry_secs.max(1)),
        })
    }

    /// What the settler registers.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn wants_attestation(&self) -> bool {
        self.capabilities.tiers.contains(&Tier::Attested)
    }

    /// Collects attested-key evidence bound to a fresh registration nonce, checks it against the
    /// policy the chain stores for the configured id, stores its bundle and makes receipts
    /// reference it. Returns the evidence and its anchor block.
    async fn anchored_evidence(&self) -> Result<(Evidence, [u8; 32]), SettleError> {
        let document = self
            .chain
            .policy_document(&self.policy)
            .await?
            .ok_or_else(|| SettleError::Policy {
                policy: hex::encode(self.policy),
                reasons: vec!["no policy with this id is registered on chain".into()],
            })?;
        let policy = attestation_verifier::policy::Policy::from_canonical_bytes(&document)
            .map_err(|e| SettleError::Policy {
                policy: hex::encode(self.policy),
                reasons: vec![format!("the chain's document does not decode: {e}")],
            })?;
        if let Err(rule) = policy.check_pinned() {
            return Err(SettleError::Policy {
                policy: hex::encode(self.policy),
                reasons: vec![format!(
                    "{rule} is not pinned: the chain refuses this policy for attested keys (name a policy that pins what runs)"
                )],
            });
        }
        let anchor = self.chain.registration_anchor().await?;
        let attestor = Arc::clone(&self.attestor);
        let now_ms = crate::metering::unix_ms();
        let ev = tokio::task::spawn_blocking(move || attestor.refresh_with(anchor.nonce, now_ms))
            .await
            .map_err(|e| SettleError::Evidence(e.to_string()))?
            .map_err(|e| SettleError::Evidence(e.to_string()))?;
        let reasons = check_own_evidence(&policy, &ev.bytes, now_ms);
        if !reasons.is_empty() {
            return Err(SettleError::Policy {
                policy: hex::encode(self.policy),
                reasons,
            });
        }
        self.store
            .put_bundle(ev.digest, ev.bytes.to_vec())
            .await
            .map_err(|e| SettleError::Jobs(e.to_string()))?;
        Ok((
            Evidence {
                bundle: ev.bytes.to_vec(),
                policy: self.policy,
                anchor: anchor.anchor,
            },
            ev.digest,
        ))
    }

    /// The registration of the agent key (and, for tier 3, newly collected anchored evidence).
    async fn registration(&self) -> Result<Registration, SettleError> {
        let attestation = if self.wants_attestation() {
            Some(self.anchored_evidence().await?.0)
        } else {
            None
        };
        Ok(Registration {
            key: self.attestor.public_key(),
            proof: self.attestor.sign_provider_key_proof(&self.account),
            capabilities: self.capabilities.clone(),
            attestation,
        })
    }

    /// Makes the chain's registration of the account match the agent key; returns whether it
    /// does. An account registered with another key (an earlier agent) and no open jobs is
    /// registered again (capabilities as configured now); with open jobs its key is rotated
    /// to this agent's, and the jobs bound under the old key stay that key's (an agent still
    /// holding it settles them; otherwise they are reassigned when their response window
    /// passes). An agent whose key was rotated away finishes its jobs and takes no new ones.
    pub async fn ensure_registered(&self) -> Result<bool, SettleError> {
        let key = self.attestor.public_key();
        match self.chain.provider().await? {
            None => {
                self.chain.register(&self.registration().await?).await?;
                tracing::info!(account = %hex::encode(self.account), tiers = ?self.capabilities.tiers, "registered as a provider on chain");
                Ok(true)
            }
            Some(p) if p.signing_key == key => {
                if self.wants_attestation() && self.needs_refresh(&p) {
                    let (ev, digest) = self.anchored_evidence().await?;
                    self.chain
                        .refresh_attestation(&ev.bundle, ev.anchor)
                        .await?;
                    tracing::info!(digest = %hex::encode(digest), "attested-key evidence refreshed on chain");
                }
                Ok(true)
            }
            Some(p) if p.retiring_key == Some(key) => {
                tracing::warn!(
                    "another agent took over the account's key: finishing the jobs bound under this agent's key, taking no new ones"
                );
                Ok(false)
            }
            Some(p) if p.active_jobs == 0 => {
                let registration = self.registration().await?;
                self.chain.deregister().await?;
                self.chain.register(&registration).await?;
                tracing::info!(account = %hex::encode(self.account), "re-registered on chain with this agent's key");
                Ok(true)
            }
            Some(p) if p.retiring_key.is_some() => {
                tracing::warn!(
                    open_jobs = p.active_jobs,
                    "the account's key was rotated already and the replaced key still has open jobs; rotating to this agent's key once they close"
                );
                Ok(false)
            }
            Some(p) => {
                let registration = self.registration().await?;
                self.chain.rotate_key(&registration).await?;
                tracing::info!(
                    account = %hex::encode(self.account),
                    open_jobs = p.active_jobs,
                    "rotated the account's receipt key to this agent's; jobs bound under the old key stay that key's"
                );
                Ok(true)
            }
        }
    }

    /// Makes the account's offer on chain the configured one (`[chain.offer]`; capacity 0
    /// withdraws it once no bound job is open). Returns whether it is.
    pub async fn ensure_offer(&self) -> Result<bool, SettleError> {
        let Some(p) = self.chain.provider().await? else {
            return Ok(false);
        };
        match (&self.offer, &p.offer) {
            (Some(want), _) => {
                // A smaller bond is refused while bound jobs are open: keep the larger one
                // until they close.
                let mut terms = *want;
                if let Some(have) = &p.offer
                    && p.active_jobs > 0
                    && have.bond > want.bond
                {
                    terms.bond = have.bond;
                }
                if p.offer.as_ref() == Some(&terms) {
                    return Ok(terms == *want);
                }
                self.chain.set_offer(&terms).await?;
                tracing::info!(
                    price = terms.price,
                    capacity = terms.capacity,
                    bond = terms.bond,
                    "offer set on chain"
                );
                Ok(terms == *want)
            }
            (None, None) => Ok(true),
            (None, Some(_)) if p.active_jobs > 0 => Ok(false),
            (None, Some(_)) => {
                self.chain.withdraw_offer().await?;
                tracing::info!("offer withdrawn on chain ([chain.offer] capacity is 0)");
                Ok(true)
            }
        }
    }

    /// Whether the chain's attested key needs new evidence: the agent's current evidence is not
    /// the chain's, or half of the key's validity has passed.
    fn needs_refresh(&self, p: &ProviderState) -> bool {
        let current = self.attestor.current().map(|ev| ev.digest);
        if current.is_none() || p.evidence_digest != current {
            return true;
        }
        match p.validity_ms {
            None => true,
            Some((verified, expires)) => {
                let half = verified.saturating_add(expires.saturating_sub(verified) / 2);
                crate::metering::unix_ms() >= half
            }
        }
    }

    /// Submits the receipt of `job` if it is a chain job bound to the account; records the
    /// outcome unless the failure is worth retrying. Returns the outcome, if final.
    pub async fn settle(&self, job: &JobRecord) -> Result<Option<Outcome>, SettleError> {
        if !job.state.is_final() || !job.has_receipt {
            return Ok(None);
        }
        if let Some(done) = self.outbox.get(&job.job_id)? {
            return Ok(Some(done));
        }
        let outcome = match self.chain.job_status(&job.job_id).await? {
            None => Outcome::Skipped {
                reason: "not a chain job".into(),
            },
            // Funded: not bound yet, or a tier-2 job reassigned after others missed its
            // response window, whose remaining providers stay bound and may deliver.
            Some(JobStatus::Funded) => {
                // Bound under the key that signed its receipt (an earlier agent's, if the account
                // rotated to this one since).
                let store = &self.store;
                let receipt = store
                    .receipt(&job.job_id)
                    .map_err(|e| SettleError::Jobs(e.to_string()))?
                    .ok_or_else(|| SettleError::Jobs("receipt missing from the store".into()))?;
                let key = SignedReceipt::decode_bytes(&receipt)
                    .and_then(|r| r.body())
                    .map_err(|e| SettleError::Jobs(format!("stored receipt: {e}")))?
                    .provider;
                if !self.chain.bound_here(&job.job_id, &key).await? {
                    return Ok(None);
                }
                self.submit(job).await?
            }
            Some(s) if !s.is_open() => Outcome::Skipped {
                reason: format!("the job is already {s:?} on chain").to_lowercase(),
            },
            Some(_) => self.submit(job).await?,
        };
        self.outbox.put(&job.job_id, &outcome)?;
        match &outcome {
            Outcome::Submitted { block, settled } => {
                tracing::info!(job = %hex::encode(job.job_id), block, settled, "receipt accepted on chain");
            }
            Outcome::Refused { reason } => {
                tracing::warn!(job = %hex::encode(job.job_id), %reason, "receipt refused by the chain");
            }
            Outcome::Skipped { reason } => {
                tracing::debug!(job = %hex::encode(job.job_id), %reason, "receipt not submitted");
            }
        }
        Ok(Some(outcome))
    }

    async fn submit(&self, job: &JobRecord) -> Result<Outcome, SettleError> {
        let store = &self.store;
        let receipt = store
            .receipt(&job.job_id)
            .map_err(|e| SettleError::Jobs(e.to_string()))?
            .ok_or_else(|| SettleError::Jobs("receipt missing from the store".into()))?;
        let body = SignedReceipt::decode_bytes(&receipt)
            .and_then(|r| r.body())
            .map_err(|e| SettleError::Jobs(format!("stored receipt: {e}")))?;
        let bundle = |digest: &[u8; 32]| -> Result<Vec<u8>, SettleError> {
            store
                .bundle(digest)
                .map_err(|e| SettleError::Jobs(e.to_string()))?
                .ok_or_else(|| SettleError::Jobs("evidence bundle missing from the store".into()))
        };
        let fresh = match body.evidence.mode {
            EvidenceMode::FreshQuote => Some(bundle(&body.evidence.digest)?),
            EvidenceMode::AttestedKey => {
                // The chain holds every evidence the settler registered (the current one, and
                // the one the last refresh replaced until its own expiry); evidence it never
                // took cannot be put there any more (its nonce is not anchored on chain).
                if !self.chain.honours(&body.evidence.digest).await? {
                    return Ok(Outcome::Refused {
                        reason: format!(
                            "the receipt references evidence 0x{} that the chain does not hold for this key",
                            hex::encode(body.evidence.digest)
                        ),
                    });
                }
                None
            }
            _ => None,
        };
        match self.chain.submit_receipt(job.job_id, receipt, fresh).await {
            Ok(s) => Ok(Outcome::Submitted {
                block: s.block_number,
                settled: s.settled,
            }),
            Err(e) if e.is_refusal() => Ok(Outcome::Refused {
                reason: e.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Settles every finished job the table has no outcome for. Returns how many are left to
    /// retry.
    pub async fn sweep(&self) -> Result<usize, SettleError> {
        let jobs = self
            .store
            .all()
            .map_err(|e| SettleError::Jobs(e.to_string()))?;
        let mut pending = 0_usize;
        for job in jobs.iter().filter(|j| j.state.is_final() && j.has_receipt) {
            match self.settle(job).await {
                Ok(Some(_)) => {}
                Ok(None) => pending = pending.saturating_add(1),
                Err(e) => {
                    tracing::warn!(job = %hex::encode(job.job_id), error = %e, "receipt not settled yet; will retry");
                    pending = pending.saturating_add(1);
                }
            }
        }
        Ok(pending)
    }

    /// Runs until `shutdown`: registers, then settles each job as it ends (as `events`, the
    /// engine's job events, tell), retrying failures.
    pub async fn run(
        self,
        mut events: broadcast::Receiver<Arc<JobRecord>>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.retry);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether a finished job may still need settling: true at start (jobs that ended while
        // the agent was down), after missed events, and while a settlement is left for later.
        // The sweep reads every job record, so it runs only then, not on every tick.
        let mut unsettled = true;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    match self.ensure_registered().await {
                        Ok(true) => {
                            if let Err(e) = self.ensure_offer().await {
                                tracing::warn!(error = %e, "offer on chain not set; will retry");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "provider registration on chain failed; will retry"),
                    }
                    if unsettled {
                        match self.sweep().await {
                            Ok(left) => unsettled = left > 0,
                            Err(e) => tracing::warn!(error = %e, "settlement sweep failed; will retry"),
                        }
                    }
                }
                ev = events.recv() => match ev {
                    Ok(job) => match self.settle(&job).await {
                        Ok(Some(_)) => {}
                        Ok(None) => unsettled |= job.state.is_final() && job.has_receipt,
                        Err(e) => {
                            tracing::warn!(job = %hex::encode(job.job_id), error = %e, "receipt not settled yet; will retry");
                            unsettled = true;
                        }
                    },
                    Err(RecvError::Lagged(_)) => unsettled = true,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
