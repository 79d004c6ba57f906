//! [`ChainClient`]: the connection, transaction submission and the market's calls and queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::receipt::SignedReceipt;
use parity_scale_codec::Encode;
use serde::Serialize;
use subxt::backend::LegacyBackend;
use subxt::config::polkadot::H256;
use subxt::config::{DefaultExtrinsicParamsBuilder, PolkadotConfig};
use subxt::error::DispatchError;
use subxt::rpcs::LegacyRpcMethods;
use subxt::rpcs::client::reconnecting_rpc_client::FixedInterval;
use subxt::rpcs::client::{ReconnectingRpcClient, RpcClient};
use subxt::tx::{Payload, TransactionStatus};
use subxt::utils::AccountId32;
use subxt::{OnlineClient, OnlineClientAtBlock};

use crate::error::{ChainError, DispatchFailure, lower_camel, rpc};
use crate::keys::{Ed25519Keypair, Keypair};
use crate::runtime;
use crate::runtime::runtime_types::pallet_sigil_market::types as rt;
use crate::types::{
    AttestationRecord, Balance, Binding, BlockNumber, Capabilities, Evidence, Job, JobId, JobOrder,
    MarketEvent, Penalty, PolicyInfo, Provider, Settlement, StoredReceipt, TierTerms, bounded,
    hex_bytes,
};

/// The chain's configuration: Polkadot's (`AccountId32`, `MultiAddress`, `MultiSignature`,
/// BLAKE2-256 hashing); the runtime's transaction extensions are the standard FRAME ones.
pub type SigilConfig = PolkadotConfig;

type AtBlock = OnlineClientAtBlock<SigilConfig>;

/// Held while one of an account's transactions is in flight.
type AccountLock = Arc<tokio::sync::Mutex<()>>;

/// Domain separator of a provider's key proof (`pallet_sigil_market::KEY_PROOF_DOMAIN`).
pub const KEY_PROOF_DOMAIN: &[u8] = b"sigil.provider-key.v1\0";

/// How the client waits for the node.
#[derive(Clone, Copy, Debug)]
pub struct ConnectOptions {
    /// How long to keep retrying when the node cannot be reached, at the first connection and
    /// after the connection drops; past it calls fail with [`ChainError::Unreachable`] or
    /// [`ChainError::Rpc`].
    pub reconnect_window: Duration,
    /// Pause between connection attempts.
    pub retry_interval: Duration,
    /// Longest wait for one RPC answer.
    pub request_timeout: Duration,
    /// Longest wait for a submitted transaction to be finalized.
    pub inclusion_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            reconnect_window: Duration::from_secs(30),
            retry_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            inclusion_timeout: Duration::from_secs(120),
        }
    }
}

/// What the node and the runtime say about themselves.
#[derive(Clone, Debug, Serialize)]
pub struct ChainInfo {
    /// The node's URL.
    pub url: String,
    /// Chain name (`system_chain`).
    pub chain: String,
    /// Runtime spec name and version.
    pub runtime: String,
    /// Genesis hash.
    #[serde(serialize_with = "hex_bytes")]
    pub genesis: [u8; 32],
    /// Latest finalized block.
    pub finalized: u64,
    /// Token symbol and decimals from the chain properties.
    pub token: Option<String>,
    /// Token decimals.
    pub decimals: Option<u64>,
    /// The upgrade council: the only accounts that can approve new runtime code (no account
    /// holds root).
    pub council: Vec<String>,
    /// Approvals an upgrade needs.
    pub council_threshold: u32,
    /// The approved upgrade waiting for its enactment block, if any.
    pub scheduled_upgrade: Option<ScheduledUpgrade>,
}

/// New runtime code the council approved, enactable from `enact_at` on.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduledUpgrade {
    /// The code's hash (BLAKE2-256).
    #[serde(serialize_with = "hex_bytes")]
    pub code_hash: [u8; 32],
    /// The first block in which anyone may enact it.
    pub enact_at: BlockNumber,
}

/// A transaction that was included and dispatched successfully.
#[derive(Clone, Debug, Serialize)]
pub struct Included {
    /// The call, as `pallet.call`.
    pub call: &'static str,
    /// Its block.
    #[serde(serialize_with = "hex_bytes")]
    pub block_hash: [u8; 32],
    /// Its block's number.
    pub block_number: u64,
    /// The extrinsic hash.
    #[serde(serialize_with = "hex_bytes")]
    pub extrinsic_hash: [u8; 32],
    /// The market's events it emitted.
    pub events: Vec<MarketEvent>,
}

impl Included {
    /// The first settlement event, if the transaction settled a job.
    pub fn settlement(&self) -> Option<&MarketEvent> {
        self.events
            .iter()
            .find(|e| matches!(e, MarketEvent::JobSettled { .. }))
    }
}

/// Where the client last saw an account's transaction included: the next nonce is read at that
/// block when the node's finalized head lags behind it (a node may answer from the previous
/// head right after announcing a block).
#[derive(Clone, Copy, Debug)]
struct LastInclusion {
    number: u64,
    hash: H256,
}

/// A client of the Sigil market chain.
///
/// The WebSocket connection reconnects by itself when the node goes away (within
/// [`ConnectOptions::reconnect_window`]); calls made meanwhile wait for it. Transactions are
/// signed with the account's next nonce and awaited until finalized.
#[derive(Clone)]
pub struct ChainClient {
    api: OnlineClient<SigilConfig>,
    rpc: LegacyRpcMethods<subxt::config::RpcConfigFor<SigilConfig>>,
    url: String,
    options: ConnectOptions,
    last_inclusion: Arc<Mutex<HashMap<[u8; 32], LastInclusion>>>,
    account_locks: Arc<Mutex<HashMap<[u8; 32], AccountLock>>>,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("url", &self.url)
            .finish()
    }
}

impl ChainClient {
    /// Connects to the node at `url` (`ws://` or `wss://`) with the default options.
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects to the node at `url`.
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self, ChainError> {
        let attempts = usize::try_from(
            options
                .reconnect_window
                .as_millis()
                .checked_div(options.retry_interval.as_millis().max(1))
                .unwrap_or(1),
        )
        .unwrap_or(usize::MAX)
        .max(1);
        let interval = u64::try_from(options.retry_interval.as_millis()).unwrap_or(u64::MAX);
        let unreachable = |detail: String| ChainError::Unreachable {
            url: url.to_string(),
            detail,
        };
        let client = ReconnectingRpcClient::builder()
            .retry_policy(FixedInterval::from_millis(interval).take(attempts))
            .request_timeout(options.request_timeout)
            // A host that drops packets must not eat the whole reconnect window in one attempt.
            .connection_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .build(url)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let rpc_client = RpcClient::new(client);
        let backend = LegacyBackend::<SigilConfig>::builder().build(rpc_client.clone());
        let config = PolkadotConfig::builder().use_historic_types(false).build();
        let api = OnlineClient::from_backend_with_config(config, Arc::new(backend))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            api,
            rpc: LegacyRpcMethods::new(rpc_client),
            url: url.to_string(),
            options,
            last_inclusion: Arc::new(Mutex::new(HashMap::new())),
            account_locks: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying subxt client, for queries this API does not cover.
    pub fn api(&self) -> &OnlineClient<SigilConfig> {
        &self.api
    }

    /// The options it was connected with.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    async fn at_latest(&self) -> Result<AtBlock, ChainError> {
        self.api
            .at_current_block()
            .await
            .map_err(rpc("reading the finalized head"))
    }

    /// Chain name, runtime version, head, token, and who can upgrade the runtime.
    pub async fn info(&self) -> Result<ChainInfo, ChainError> {
        let chain = self
            .rpc
            .system_chain()
            .await
            .map_err(rpc("reading system_chain"))?;
        let props = self
            .rpc
            .system_properties()
            .await
            .map_err(rpc("reading system_properties"))?;
        let at = self.at_latest().await?;
        let version = self
            .rpc
            .state_get_runtime_version(Some(at.block_hash()))
            .await
            .map_err(rpc("reading the runtime version"))?;
        let spec_name = version
            .other
            .get("specName")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let council = at
            .storage()
            .try_fetch(runtime::storage().upgrades().members(), ())
            .await
            .map_err(rpc("reading the upgrade council"))?
            .map(|v| v.decode())
            .transpose()
            .map_err(rpc("decoding the upgrade council"))?
            .map(|m| m.0.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let council_threshold = at
            .storage()
            .try_fetch(runtime::storage().upgrades().threshold(), ())
            .await
            .map_err(rpc("reading the upgrade threshold"))?
            .map(|v| v.decode())
            .transpose()
            .map_err(rpc("decoding the upgrade threshold"))?
            .unwrap_or_default();
        let scheduled_upgrade = at
            .storage()
            .try_fetch(runtime::storage().upgrades().approved(), ())
            .await
            .map_err(rpc("reading the scheduled upgrade"))?
            .map(|v| v.decode())
            .transpose()
            .map_err(rpc("decoding the scheduled upgrade"))?
            .map(|s| ScheduledUpgrade {
                code_hash: s.code_hash.0,
                enact_at: s.enact_at,
            });
        Ok(ChainInfo {
            url: self.url.clone(),
            chain,
            runtime: format!("{spec_name}/{}", version.spec_version),
            genesis: self.api.genesis_hash().0,
            finalized: at.block_number(),
            token: props
                .get("tokenSymbol")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            decimals: props.get("tokenDecimals").and_then(|v| v.as_u64()),
            council,
            council_threshold,
            scheduled_upgrade,
        })
    }

    /// The latest finalized block number.
    pub async fn block_number(&self) -> Result<BlockNumber, ChainError> {
        let n = self.at_latest().await?.block_number();
        BlockNumber::try_from(n).map_err(|_| ChainError::BadInput {
            what: "block number",
            detail: format!("{n} exceeds u32"),
        })
    }

    /// An account's free balance.
    pub async fn free_balance(&self, who: &AccountId32) -> Result<Balance, ChainError> {
        let at = self.at_latest().await?;
        let info = at
            .storage()
            .try_fetch(runtime::storage().system().account(), (*who,))
            .await
            .map_err(rpc("reading an account"))?;
        match info {
            Some(v) => Ok(v.decode().map_err(rpc("decoding an account"))?.data.free),
            None => Ok(0),
        }
    }

    /// An account's balance held in escrow (and any other holds).
    pub async fn reserved_balance(&self, who: &AccountId32) -> Result<Balance, ChainError> {
        let at = self.at_latest().await?;
        let info = at
            .storage()
            .try_fetch(runtime::storage().system().account(), (*who,))
            .await
            .map_err(rpc("reading an account"))?;
        match info {
            Some(v) => Ok(v
                .decode()
                .map_err(rpc("decoding an account"))?
                .data
                .reserved),
            None => Ok(0),
        }
    }

    /// Transfers MINT (keeping the sender alive).
    pub async fn transfer(
        &self,
        signer: &Keypair,
        to: &AccountId32,
        amount: Balance,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions()
            .balances()
            .transfer_keep_alive((*to).into(), amount);
        self.submit("balances.transfer_keep_alive", signer, &call)
            .await
    }

    // ---- provider ----

    /// Registers `signer`'s account as a provider whose receipts `receipt_key` signs, with a
    /// proof of possession of the key; tier-3 providers pass `attestation` (an evidence bundle
    /// binding `receipt_key`, verified on chain under its policy).
    pub async fn register_provider(
        &self,
        signer: &Keypair,
        receipt_key: &Ed25519Keypair,
        capabilities: &Capabilities,
        attestation: Option<&Evidence>,
    ) -> Result<Included, ChainError> {
        let proof = receipt_key.sign(&key_proof_message(&signer.account_id()));
        self.register_provider_with_proof(
            signer,
            receipt_key.public_key(),
            proof,
            capabilities,
            attestation,
        )
        .await
    }

    /// [`Self::register_provider`] for a receipt key held elsewhere (an agent's key, which
    /// never leaves its TEE): `key_proof` is that key's signature over
    /// [`key_proof_message`] of `signer`'s account.
    pub async fn register_provider_with_proof(
        &self,
        signer: &Keypair,
        receipt_key: [u8; 32],
        key_proof: [u8; 64],
        capabilities: &Capabilities,
        attestation: Option<&Evidence>,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().register_provider(
            receipt_key,
            key_proof,
            capabilities.to_gen(),
            attestation.map(submission),
        );
        self.submit("market.register_provider", signer, &call).await
    }

    /// The latest finalized block as a registration anchor for `who`: evidence collected now
    /// for a registration or refresh must bind the returned nonce, and be submitted within the
    /// chain's anchor window (`RegistrationAnchorWindow` blocks).
    pub async fn registration_anchor(
        &self,
        who: &AccountId32,
    ) -> Result<RegistrationAnchor, ChainError> {
        let at = self.at_latest().await?;
        let anchor =
            BlockNumber::try_from(at.block_number()).map_err(|_| ChainError::BadInput {
                what: "block number",
                detail: "does not fit the chain's block number".into(),
            })?;
        let anchor_hash = at.block_hash().0;
        Ok(RegistrationAnchor {
            anchor,
            anchor_hash,
            nonce: registration_nonce(&self.api.genesis_hash().0, &anchor_hash, who),
        })
    }

    /// Replaces `signer`'s attested-key evidence with new evidence binding the same key and
    /// the registration nonce of `anchor` (see [`Self::registration_anchor`]), verified on
    /// chain under the policy the key was registered with (the key's expiry moves to the new
    /// evidence's).
    pub async fn refresh_attestation(
        &self,
        signer: &Keypair,
        evidence: &[u8],
        anchor: BlockNumber,
    ) -> Result<Included, ChainError> {
        let policy = self
            .provider(&signer.account_id())
            .await?
            .and_then(|p| p.attested.map(|a| a.policy))
            .unwrap_or_default();
        let call = runtime::transactions()
            .market()
            .refresh_attestation(submission(&Evidence {
                bundle: evidence.to_vec(),
                policy,
                anchor,
            }));
        self.submit("market.refresh_attestation", signer, &call)
            .await
    }

    /// Replaces `signer`'s receipt key with `new_key` (a restarted or upgraded agent's), proven
    /// by `key_proof` (the new key's signature over [`key_proof_message`] of the account);
    /// tier-3 providers pass evidence binding the new key and the registration nonce of its
    /// anchor. Jobs bound under the old key still settle with receipts signed by it until the
    /// last of them closes.
    pub async fn rotate_key(
        &self,
        signer: &Keypair,
        new_key: [u8; 32],
        key_proof: [u8; 64],
        attestation: Option<&Evidence>,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().rotate_key(
            new_key,
            key_proof,
            attestation.map(submission),
        );
        self.submit("market.rotate_key", signer, &call).await
    }

    /// Removes an expired attestation record that no provider's key rests on, returning its
    /// deposit to whoever submitted it (anyone may call it).
    pub async fn prune_attestation(
        &self,
        signer: &Keypair,
        evidence_digest: [u8; 32],
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions()
            .market()
            .prune_attestation(evidence_digest);
        self.submit("market.prune_attestation", signer, &call).await
    }

    /// Sets `signer`'s standing offer: the least it takes per job, how many jobs at once (0
    /// pauses it) and its bond (held; at least the chain's minimum).
    pub async fn set_offer(
        &self,
        signer: &Keypair,
        price: Balance,
        capacity: u32,
        bond: Balance,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions()
            .market()
            .set_offer(price, capacity, bond);
        self.submit("market.set_offer", signer, &call).await
    }

    /// Withdraws `signer`'s offer and releases its bond (refused while it has open jobs).
    pub async fn withdraw_offer(&self, signer: &Keypair) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().withdraw_offer();
        self.submit("market.withdraw_offer", signer, &call).await
    }

    /// Removes `signer`'s provider registration (refused while it has open jobs).
    pub async fn deregister(&self, signer: &Keypair) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().deregister();
        self.submit("market.deregister", signer, &call).await
    }

    /// Submits a receipt: `signed_receipt` is `SCALE(SignedReceipt)` as the agent writes it;
    /// `fresh_evidence` is the evidence bundle of a fresh-quote receipt (verified on chain under
    /// the job's policy). Settles the job when this receipt completes it (see
    /// [`Included::settlement`]).
    pub async fn submit_receipt(
        &self,
        signer: &Keypair,
        job_id: &JobId,
        signed_receipt: &[u8],
        fresh_evidence: Option<&[u8]>,
    ) -> Result<Included, ChainError> {
        let receipt =
            SignedReceipt::decode_bytes(signed_receipt).map_err(|e| ChainError::BadInput {
                what: "signed receipt",
                detail: e.to_string(),
            })?;
        let fresh = match fresh_evidence {
            None => None,
            Some(bundle) => {
                // The chain verifies receipts' evidence under the job's policy; the field is
                // filled with it so the submission reads true.
                let policy = self
                    .job(job_id)
                    .await?
                    .and_then(|j| j.terms.policy())
                    .unwrap_or_default();
                Some(submission(&Evidence {
                    bundle: bundle.to_vec(),
                    policy,
                    anchor: 0,
                }))
            }
        };
        let call = runtime::transactions().market().submit_receipt(
            *job_id,
            bounded(receipt.body),
            receipt.signature,
            fresh,
        );
        self.submit("market.submit_receipt", signer, &call).await
    }

    // ---- buyer ----

    /// Funds a job: the price is held on `signer`'s balance until settlement or refund.
    pub async fn fund_job(
        &self,
        signer: &Keypair,
        order: &JobOrder,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().fund_job(
            order.job_id,
            order.spec_hash,
            order.terms.to_gen(),
            order.class.to_gen(),
            order.price,
            order.deadline,
            order.response_blocks,
        );
        self.submit("market.fund_job", signer, &call).await
    }

    /// Cancels `signer`'s job while no provider is bound to it; the escrow returns at once.
    pub async fn cancel_job(
        &self,
        signer: &Keypair,
        job_id: &JobId,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().cancel_job(*job_id);
        self.submit("market.cancel_job", signer, &call).await
    }

    /// Runs the chain's dispatch rule for a waiting job now (anyone may; the rule picks).
    pub async fn dispatch_job(
        &self,
        signer: &Keypair,
        job_id: &JobId,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().dispatch_job(*job_id);
        self.submit("market.dispatch_job", signer, &call).await
    }

    /// Takes a job from bound providers that missed its response window (anyone may, once it
    /// has passed): each loses a share of its bond to the buyer, and the chain binds others.
    pub async fn reassign(&self, signer: &Keypair, job_id: &JobId) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().reassign(*job_id);
        self.submit("market.reassign", signer, &call).await
    }

    /// Returns an expired job's escrow to its buyer (anyone may call it after the deadline).
    pub async fn refund_expired(
        &self,
        signer: &Keypair,
        job_id: &JobId,
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().refund_expired(*job_id);
        self.submit("market.refund_expired", signer, &call).await
    }

    // ---- queries ----

    /// A job, if funded.
    pub async fn job(&self, job_id: &JobId) -> Result<Option<Job>, ChainError> {
        let at = self.at_latest().await?;
        job_at(&at, job_id).await
    }

    /// A job's binding: the providers the chain bound to it, if any.
    pub async fn binding(&self, job_id: &JobId) -> Result<Option<Binding>, ChainError> {
        let at = self.at_latest().await?;
        binding_at(&at, job_id).await
    }

    /// A registered provider.
    pub async fn provider(&self, who: &AccountId32) -> Result<Option<Provider>, ChainError> {
        provider_at(&self.at_latest().await?, who).await
    }

    /// The attestation record stored under `digest`, if it is still in state (pruned records
    /// stay in the state of earlier blocks).
    pub async fn attestation(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<AttestationRecord>, ChainError> {
        attestation_at(&self.at_latest().await?, digest).await
    }

    /// A registered attestation policy.
    pub async fn policy(&self, id: &[u8; 32]) -> Result<Option<PolicyInfo>, ChainError> {
        let at = self.at_latest().await?;
        policy_at(&at, id).await
    }

    /// Every registered attestation policy, by id.
    pub async fn policies(&self) -> Result<Vec<PolicyInfo>, ChainError> {
        let at = self.at_latest().await?;
        let mut entries = at
            .storage()
            .iter(runtime::storage().market().policies(), ())
            .await
            .map_err(rpc("listing the policies"))?;
        let mut out = Vec::new();
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(rpc("listing the policies"))?;
            let id: [u8; 32] = entry
                .key()
                .map_err(rpc("decoding a policy id"))?
                .part(0)
                .and_then(|k| k.decode_as::<[u8; 32]>().transpose())
                .transpose()
                .map_err(rpc("decoding a policy id"))?
                .ok_or_else(|| ChainError::BadInput {
                    what: "policy id",
                    detail: "missing from the storage key".into(),
                })?;
            let record = entry.value().decode().map_err(rpc("decoding a policy"))?;
            out.push(PolicyInfo::from_gen(id, &record));
        }
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    /// Registers an attestation policy from its canonical document (a deposit is held on
    /// `signer` until it is retired).
    pub async fn register_policy(
        &self,
        signer: &Keypair,
        document: &[u8],
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions()
            .market()
            .register_policy(bounded(document.to_vec()));
        self.submit("market.register_policy", signer, &call).await
    }

    /// Retires a policy `signer` registered (refused while open jobs or attested keys use it).
    pub async fn retire_policy(
        &self,
        signer: &Keypair,
        id: &[u8; 32],
    ) -> Result<Included, ChainError> {
        let call = runtime::transactions().market().retire_policy(*id);
        self.submit("market.retire_policy", signer, &call).await
    }

    /// A job's settlement, once closed.
    pub async fn settlement(&self, job_id: &JobId) -> Result<Option<Settlement>, ChainError> {
        let at = self.at_latest().await?;
        settlement_at(&at, job_id).await
    }

    /// The record of a job: job, binding, receipts, settlement and the evidence its receipts
    /// rest on, read at one block.
    pub async fn job_record(&self, job_id: &JobId) -> Result<crate::audit::JobRecord, ChainError> {
        let at = self.at_latest().await?;
        let job = job_at(&at, job_id)
            .await?
            .ok_or_else(|| ChainError::NotFound {
                what: "job",
                id: format!("0x{}", hex::encode(job_id)),
            })?;
        let binding = binding_at(&at, job_id).await?;
        let mut receipts = Vec::new();
        if let Some(b) = &binding {
            // Receipts are keyed by (job, provider): read the bound providers' entries, in the
            // binding's order.
            for provider in &b.providers {
                let v = at
                    .storage()
                    .try_fetch(runtime::storage().market().receipts(), (*job_id, *provider))
                    .await
                    .map_err(rpc("reading a receipt"))?;
                if let Some(v) = v {
                    let r: rt::StoredReceipt = v.decode().map_err(rpc("decoding a receipt"))?;
                    receipts.push(StoredReceipt::from_gen(*provider, &r));
                }
            }
        }
        let settlement = settlement_at(&at, job_id).await?;
        let mut digests: Vec<[u8; 32]> =
            receipts.iter().filter_map(|r| r.evidence_digest).collect();
        let mut providers = Vec::new();
        if let Some(b) = &binding {
            for p in &b.providers {
                let mut info = provider_at(&at, p).await?;
                if info.is_none()
                    && let Some(r) = receipts.iter().find(|r| r.provider == *p)
                {
                    // Deregistered since: its record as it stood when its receipt was accepted.
                    info = provider_at(&self.at_number(r.submitted_at).await?, p).await?;
                }
                if let Some(info) = info {
                    if let Some(a) = &info.attested {
                        digests.push(a.evidence_digest);
                    }
                    providers.push(info);
                }
            }
        }
        digests.sort_unstable();
        digests.dedup();
        let mut attestations = Vec::new();
        for d in digests {
            if let Some(a) = attestation_at(&at, &d).await? {
                attestations.push(a);
                continue;
            }
            // Pruned since (expired, its deposit returned): the state at the block that
            // accepted the receipt naming it still holds it (an archive node keeps it).
            if let Some(r) = receipts.iter().find(|r| r.evidence_digest == Some(d)) {
                let then = self.at_number(r.submitted_at).await?;
                if let Some(mut a) = attestation_at(&then, &d).await? {
                    a.archived_at = Some(then.block_number());
                    attestations.push(a);
                }
            }
        }
        let policy = match job.terms {
            TierTerms::Attested { policy, .. } => match policy_at(&at, &policy).await? {
                Some(p) => Some(p),
                // Retired since: read it where the job's last receipt was accepted.
                None => match receipts.iter().map(|r| r.submitted_at).max() {
                    Some(n) => policy_at(&self.at_number(n).await?, &policy).await?,
                    None => None,
                },
            },
            _ => None,
        };
        let penalties = at
            .storage()
            .try_fetch(runtime::storage().market().penalties(), (*job_id,))
            .await
            .map_err(rpc("reading a job's penalties"))?
            .map(|v| v.decode())
            .transpose()
            .map_err(rpc("decoding a job's penalties"))?
            .map(|list| list.0.iter().map(Penalty::from_gen).collect())
            .unwrap_or_default();
        Ok(crate::audit::JobRecord {
            job_id: *job_id,
            at_block: at.block_number(),
            policy,
            job,
            binding,
            receipts,
            settlement,
            providers,
            penalties,
            attestations,
        })
    }

    /// The state at block `number` (older blocks need an archive node).
    async fn at_number(&self, number: BlockNumber) -> Result<AtBlock, ChainError> {
        self.api
            .at_block(u64::from(number))
            .await
            .map_err(rpc("reading an earlier block's state"))
    }

    // ---- submission ----

    /// The block to build the next transaction of `account` on: the finalized head, or the
    /// block that included its last transaction if the head has not caught up with it.
    async fn base_block(&self, account: &AccountId32) -> Result<AtBlock, ChainError> {
        let latest = self.at_latest().await?;
        let last = self
            .last_inclusion
            .lock()
            .ok()
            .and_then(|m| m.get(&account.0).copied());
        if let Some(last) = last
            && last.number > latest.block_number()
        {
            // A chain that restarted no longer has the block: fall back to the head. (Some
            // nodes answer an unknown hash with another header, so the number is checked.)
            if let Ok(at) = self.api.at_block(last.hash).await
                && at.block_number() == last.number
            {
                return Ok(at);
            }
        }
        Ok(latest)
    }

    /// Signs `call` with `signer`'s next nonce, submits it, waits until it is finalized, and
    /// returns its market events, or the decoded dispatch error.
    ///
    /// Transactions of one account through one client are submitted one after the other (each
    /// waits for the previous one's block), so concurrent callers never draw the same nonce.
    pub(crate) async fn submit<C: Payload>(
        &self,
        name: &'static str,
        signer: &Keypair,
        call: &C,
    ) -> Result<Included, ChainError> {
        let account = signer.account_id();
        let lock = self
            .account_locks
            .lock()
            .map(|mut m| m.entry(account.0).or_default().clone())
            .unwrap_or_default();
        let _turn = lock.lock().await;
        let at = self.base_block(&account).await?;
        let nonce = at
            .tx()
            .account_nonce(&account)
            .await
            .map_err(rpc("reading the account nonce"))?;
        let params = DefaultExtrinsicParamsBuilder::<SigilConfig>::new()
            .nonce(nonce)
            .mortal_from_unchecked(64, at.block_number(), at.block_hash())
            .build();
        let tx = at
            .tx()
            .create_signable_offline(call, params)
            .map_err(rpc("encoding the transaction"))?
            .sign(signer)
            .map_err(rpc("signing the transaction"))?;
        let secs = self.options.inclusion_timeout.as_secs();
        let wait = async {
            let mut progress = tx
                .submit_and_watch()
                .await
                .map_err(rpc("submitting the transaction"))?;
            while let Some(status) = progress.next().await {
                match status.map_err(rpc("watching the transaction"))? {
                    TransactionStatus::InFinalizedBlock(in_block) => return Ok(in_block),
                    TransactionStatus::Invalid { message }
                    | TransactionStatus::Dropped { message }
                    | TransactionStatus::Error { message } => {
                        return Err(ChainError::Rejected {
                            call: name,
                            detail: message,
                        });
                    }
                    _ => {}
                }
            }
            Err(ChainError::Rejected {
                call: name,
                detail: "the node stopped reporting the transaction's status".into(),
            })
        };
        let in_block = tokio::time::timeout(self.options.inclusion_timeout, wait)
            .await
            .map_err(|_| ChainError::Timeout {
                what: "the transaction to be finalized",
                secs,
            })??;
        let block_hash = in_block.block_hash();
        let block_number = self
            .api
            .at_block(block_hash)
            .await
            .map_err(rpc("reading the inclusion block"))?
            .block_number();
        if let Ok(mut m) = self.last_inclusion.lock() {
            m.insert(
                account.0,
                LastInclusion {
                    number: block_number,
                    hash: block_hash,
                },
            );
        }
        let events = match in_block.wait_for_success().await {
            Ok(events) => events,
            Err(subxt::error::TransactionEventsError::ExtrinsicFailed(e)) => {
                return Err(ChainError::Dispatch {
                    call: name,
                    error: decode_dispatch_error(&e),
                });
            }
            Err(e) => return Err(rpc("reading the transaction's events")(e)),
        };
        let mut market = Vec::new();
        for ev in events.iter() {
            let ev = ev.map_err(rpc("decoding an event"))?;
            if let Some(e) = decode_market_event(&ev)? {
                market.push(e);
            }
        }
        Ok(Included {
            call: name,
            block_hash: block_hash.0,
            block_number,
            extrinsic_hash: in_block.extrinsic_hash().0,
            events: market,
        })
    }
}

/// Decodes an event of the market pallet; other pallets' events give `None`.
pub(crate) fn decode_market_event(
    ev: &subxt::events::Event<'_, SigilConfig>,
) -> Result<Option<MarketEvent>, ChainError> {
    if ev.pallet_name() != "Market" {
        return Ok(None);
    }
    match ev
        .decode_as::<runtime::Event>()
        .map_err(rpc("decoding a market event"))?
    {
        runtime::Event::Market(e) => Ok(Some(MarketEvent::from_gen(&e))),
        _ => Ok(None),
    }
}

/// `sha256(KEY_PROOF_DOMAIN ++ SCALE(account))`: what a provider's receipt key signs at
/// registration to prove it is held by the registering account's owner.
pub fn key_proof_message(account: &AccountId32) -> [u8; 32] {
    use attestation_verifier::crypto::Crypto;
    let mut preimage = KEY_PROOF_DOMAIN.to_vec();
    account.0.encode_to(&mut preimage);
    RustCrypto.sha256(&preimage)
}

/// Domain separator of registration nonces (the market pallet's `REGISTRATION_NONCE_DOMAIN`).
pub const REGISTRATION_NONCE_DOMAIN: &[u8] = b"sigil.registration-nonce.v1\0";

/// The nonce registration and refresh evidence must bind: `sha256(REGISTRATION_NONCE_DOMAIN ++
/// genesis hash ++ anchor block hash ++ SCALE(account))`.
pub fn registration_nonce(
    genesis: &[u8; 32],
    anchor: &[u8; 32],
    account: &AccountId32,
) -> [u8; 32] {
    use attestation_verifier::crypto::Crypto;
    let mut preimage = REGISTRATION_NONCE_DOMAIN.to_vec();
    preimage.extend_from_slice(genesis);
    preimage.extend_from_slice(anchor);
    account.0.encode_to(&mut preimage);
    RustCrypto.sha256(&preimage)
}

/// A recent block to anchor registration evidence at, and the nonce that evidence must bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RegistrationAnchor {
    /// The block's number (passed with the evidence).
    pub anchor: BlockNumber,
    /// Its hash.
    #[serde(serialize_with = "hex_bytes")]
    pub anchor_hash: [u8; 32],
    /// The nonce for the account.
    #[serde(serialize_with = "hex_bytes")]
    pub nonce: [u8; 32],
}

fn submission(e: &Evidence) -> rt::AttestationSubmission {
    rt::AttestationSubmission {
        evidence: bounded(e.bundle.clone()),
        collateral: bounded(Vec::new()),
        policy: e.policy,
        anchor: e.anchor,
    }
}

async fn provider_at(at: &AtBlock, who: &AccountId32) -> Result<Option<Provider>, ChainError> {
    let v = at
        .storage()
        .try_fetch(runtime::storage().market().providers(), (*who,))
        .await
        .map_err(rpc("reading a provider"))?;
    match v {
        Some(v) => {
            let info = v.decode().map_err(rpc("decoding a provider"))?;
            Ok(Some(Provider::from_gen(*who, &info)))
        }
        None => Ok(None),
    }
}

async fn attestation_at(
    at: &AtBlock,
    digest: &[u8; 32],
) -> Result<Option<AttestationRecord>, ChainError> {
    let v = at
        .storage()
        .try_fetch(runtime::storage().market().attestations(), (*digest,))
        .await
        .map_err(rpc("reading an attestation record"))?;
    match v {
        Some(v) => {
            let a = v.decode().map_err(rpc("decoding an attestation record"))?;
            Ok(Some(AttestationRecord::from_gen(*digest, &a)))
        }
        None => Ok(None),
    }
}

async fn policy_at(at: &AtBlock, id: &[u8; 32]) -> Result<Option<PolicyInfo>, ChainError> {
    let v = at
        .storage()
        .try_fetch(runtime::storage().market().policies(), (*id,))
        .await
        .map_err(rpc("reading a policy"))?;
    v.map(|v| {
        v.decode()
            .map(|p| PolicyInfo::from_gen(*id, &p))
            .map_err(rpc("decoding a policy"))
    })
    .transpose()
}

async fn job_at(at: &AtBlock, job_id: &JobId) -> Result<Option<Job>, ChainError> {
    let v = at
        .storage()
        .try_fetch(runtime::storage().market().jobs(), (*job_id,))
        .await
        .map_err(rpc("reading a job"))?;
    v.map(|v| {
        v.decode()
            .map(|j| Job::from_gen(&j))
            .map_err(rpc("decoding a job"))
    })
    .transpose()
}

async fn settlement_at(at: &AtBlock, job_id: &JobId) -> Result<Option<Settlement>, ChainError> {
    let v = at
        .storage()
        .try_fetch(runtime::storage().market().settlements(), (*job_id,))
        .await
        .map_err(rpc("reading a settlement"))?;
    v.map(|v| {
        v.decode()
            .map(|s| Settlement::from_gen(&s))
            .map_err(rpc("decoding a settlement"))
    })
    .transpose()
}

async fn binding_at(at: &AtBlock, job_id: &JobId) -> Result<Option<Binding>, ChainError> {
    at.storage()
        .try_fetch(runtime::storage().market().bindings(), (*job_id,))
        .await
        .map_err(rpc("reading a binding"))?
        .map(|v| v.decode().map(|b| Binding::from_gen(&b)))
        .transpose()
        .map_err(rpc("decoding a binding"))
}

/// Names a dispatch error from the runtime's metadata.
pub(crate) fn decode_dispatch_error(e: &DispatchError) -> DispatchFailure {
    match e {
        DispatchError::Module(m) => {
            let (pallet, error) = match m.details() {
                Ok(d) => (lower_camel(d.pallet.name()), d.variant.name.clone()),
                Err(_) => (
                    format!("pallet#{}", m.pallet_index()),
                    format!("error#{}", m.error_index()),
                ),
            };
            let detail = match m.as_root_error::<runtime::Error>() {
                Ok(runtime::Error::Market(
                    runtime::runtime_types::pallet_sigil_market::pallet::Error::AttestationRejected {
                        reason,
                    },
                )) => Some(crate::types::attestation_failure_name(&reason)),
                Ok(runtime::Error::Market(
                    runtime::runtime_types::pallet_sigil_market::pallet::Error::PolicyRejected {
                        reason,
                    },
                )) => Some(format!("{reason:?}")),
                _ => None,
            };
            DispatchFailure {
                pallet: Some(pallet),
                error,
                detail,
            }
        }
        other => DispatchFailure {
            pallet: None,
            error: format!("{other:?}"),
            detail: None,
        },
    }
}
