//! A call-sequence harness over the real runtime: the market pallet's extrinsics with fuzzed
//! arguments, tier-3 evidence checked by the runtime's verifier adapter
//! ([`sigil_verifier_adapter::BundleVerifier`]) against the chain's genesis policies.
//!
//! [`run`] reads a sequence of operations from the input and applies them, from the development
//! genesis (Alice..Dave funded, the genesis policies registered; one more actor holds nothing),
//! to the runtime's storage. An operation is one market call by an actor with fuzzed arguments,
//! or a few blocks with time moved on. Arguments are drawn from what the chain would see: raw
//! bytes, or well-formed values (simulated evidence bundles binding the right key and nonce,
//! canonical genesis policies, key proofs, receipts for the actor's bound jobs signed by the
//! key they were bound under) with a fuzzed mutation, so that both the early refusals and the
//! paths to settlement are reached.
//!
//! Checked after every operation, panicking on a violation (the finding):
//! 1. a refused call changes no storage (the state root is unchanged) and fails with an error
//!    of the market pallet or of the balances (holds) pallet, or a token error, never an opaque
//!    one;
//! 2. the pallet's invariants hold ([`pallet_sigil_market::Pallet::do_try_state`]), also after
//!    every block's hooks (`on_idle`'s dispatch and pruning);
//! 3. total issuance never changes and equals the sum of all balances: nothing is minted,
//!    burned or paid twice (no fees are charged: calls are dispatched, not applied as
//!    extrinsics).
//!
//! ## Input layout
//! Each operation is 18 bytes plus a blob: an opcode (modulo [`OPS`]), 15 choice bytes (their
//! meaning per opcode is given at each `op_*` function; choices are taken modulo their number
//! of options), a little-endian `u16` length and that many blob bytes (raw evidence, receipt or
//! policy bytes, mutation data, a SCALE-encoded call). A short input is read as if padded with
//! zeros. At most [`MAX_OPS`] operations are read.
//!
//! Built with the `fuzzing` feature for `chain/fuzz` (cargo-fuzz target `market_calls`), and
//! in the runtime's unit tests over fixed inputs.

// The harness panics on a broken invariant (that is its finding) and computes test amounts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use crate::genesis_config_presets::{DEV_ENDOWMENT, development_config};
use crate::{
    AccountId, Balance, Balances, DAYS, MILLI_MINT, MINT, Market, MinProviderBond, Runtime,
    RuntimeBlockWeights, RuntimeCall, RuntimeOrigin, System, Timestamp,
};
use alloc::{collections::BTreeSet, vec, vec::Vec};
use arbitrary::{Arbitrary, Unstructured};
use attestation_verifier::binding;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::policy::{HexBytes, Policy, genesis};
use codec::{Decode, Encode};
use pallet_sigil_market::{
    AttestationSubmission, Capabilities, JobStatus, PolicyId, ProviderClass, TeeKind, Tier,
    TierTerms,
    receipt::{self as market_receipt, EvidenceMode, EvidenceRef, ReceiptBody, ReceiptTee, Usage},
};
use polkadot_sdk::{
    frame_support::{
        self,
        traits::{OnFinalize, OnIdle, OnInitialize, PalletInfoAccess},
        weights::Weight,
    },
    frame_system, pallet_balances, pallet_timestamp,
    sp_core::{H256, Pair, ed25519},
    sp_io,
    sp_keyring::Sr25519Keyring,
    sp_runtime::{
        BuildStorage, DispatchError, Storage,
        traits::{Dispatchable, Hash as _},
    },
};
use std::sync::OnceLock;

/// Number of operation kinds; an opcode is taken modulo it.
pub const OPS: u8 = 17;
/// Most operations read from one input.
pub const MAX_OPS: usize = 128;
/// Choice bytes per operation.
const FIELDS: usize = 15;
/// The chain's clock at genesis: 2026-01-01T00:00:00Z.
const GENESIS_MS: u64 = 1_767_225_600_000;
/// The simulated TEE's measurement in the harness's bundles.
const MEASUREMENT: [u8; 48] = [0x11; 48];

/// The operation kinds (the opcode of each).
pub mod op {
    /// `register_provider`.
    pub const REGISTER: u8 = 0;
    /// `fund_job`.
    pub const FUND: u8 = 1;
    /// `submit_receipt`.
    pub const RECEIPT: u8 = 2;
    /// `refund_expired`.
    pub const REFUND: u8 = 3;
    /// `deregister`.
    pub const DEREGISTER: u8 = 4;
    /// `refresh_attestation`.
    pub const REFRESH: u8 = 5;
    /// `register_policy`.
    pub const REGISTER_POLICY: u8 = 6;
    /// `retire_policy`.
    pub const RETIRE_POLICY: u8 = 7;
    /// `set_offer`.
    pub const SET_OFFER: u8 = 8;
    /// `withdraw_offer`.
    pub const WITHDRAW_OFFER: u8 = 9;
    /// `cancel_job`.
    pub const CANCEL: u8 = 10;
    /// `dispatch_job`.
    pub const DISPATCH: u8 = 11;
    /// `reassign`.
    pub const REASSIGN: u8 = 12;
    /// `rotate_key`.
    pub const ROTATE_KEY: u8 = 13;
    /// `prune_attestation`.
    pub const PRUNE: u8 = 14;
    /// Ends the block (hooks, checks) and runs blocks with time moved on.
    pub const BLOCKS: u8 = 15;
    /// A market call decoded from the blob (SCALE).
    pub const RAW_CALL: u8 = 16;
}

/// One operation, as [`run`] reads it: opcode, choice bytes and blob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Op {
    /// The opcode ([`op`]).
    pub code: u8,
    /// The choice bytes; unset ones are 0.
    pub fields: [u8; FIELDS],
    /// The blob (at most `u16::MAX` bytes).
    pub blob: Vec<u8>,
}

impl Op {
    /// An operation with the first choice bytes set to `fields` and no blob.
    pub fn new(code: u8, fields: &[u8]) -> Self {
        let mut f = [0; FIELDS];
        for (d, s) in f.iter_mut().zip(fields) {
            *d = *s;
        }
        Self {
            code,
            fields: f,
            blob: Vec::new(),
        }
    }

    /// The same operation with `blob`.
    pub fn with_blob(mut self, blob: Vec<u8>) -> Self {
        self.blob = blob;
        self
    }

    /// Appends the operation's encoding, as [`run`] reads it, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.extend_from_slice(&self.fields);
        let len = u16::try_from(self.blob.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.blob[..usize::from(len)]);
    }

    fn read(u: &mut Unstructured<'_>) -> Self {
        let code = byte(u);
        let mut fields = [0; FIELDS];
        for f in &mut fields {
            *f = byte(u);
        }
        let len = usize::from(u16::from_le_bytes([byte(u), byte(u)])).min(u.len());
        let blob = u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default();
        Self {
            code: code % OPS,
            fields,
            blob,
        }
    }
}

/// The encoding of a sequence of operations, as [`run`] reads it.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in ops {
        o.write(&mut out);
    }
    out
}

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

/// What one run reached.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Operations applied.
    pub ops: usize,
    /// Calls refused (each checked to change nothing).
    pub refused: usize,
    /// Calls that succeeded.
    pub accepted: usize,
    /// Tiers (1-3) of the jobs that settled by a receipt.
    pub settled_tiers: BTreeSet<u8>,
    /// Blocks run (hooks and checks), skipped ones aside.
    pub blocks: usize,
}

/// Runs the operations read from `data` against the runtime, from the development genesis,
/// checking the harness's invariants after each; panics on a violation.
pub fn run(data: &[u8]) {
    run_report(data);
}

/// [`run`], returning what the run reached.
pub fn run_report(data: &[u8]) -> Report {
    let mut ext = sp_io::TestExternalities::new(genesis_storage().clone());
    ext.execute_with(|| {
        let mut h = Harness::new();
        let mut u = Unstructured::new(data);
        while !u.is_empty() && h.report.ops < MAX_OPS {
            let o = Op::read(&mut u);
            h.apply(&o);
            h.report.ops += 1;
        }
        h.end_block(Weight::MAX);
        h.report
    })
}

fn genesis_storage() -> &'static Storage {
    static STORAGE: OnceLock<Storage> = OnceLock::new();
    STORAGE.get_or_init(|| {
        development_config()
            .expect("development preset")
            .build_storage()
            .expect("genesis storage")
    })
}

/// The actors: four funded development accounts and one that holds nothing.
fn actors() -> [AccountId; 5] {
    [
        Sr25519Keyring::Alice.to_account_id(),
        Sr25519Keyring::Bob.to_account_id(),
        Sr25519Keyring::Charlie.to_account_id(),
        Sr25519Keyring::Dave.to_account_id(),
        AccountId::new([0xee; 32]),
    ]
}

/// Ed25519 receipt keys the actors may register, rotate to or sign with.
const KEYS: usize = 6;

/// A mutation of well-formed bytes: kind (none, flip a byte, truncate, append the blob,
/// overwrite with the blob) and position.
fn mutate(mut bytes: Vec<u8>, kind: u8, at: u8, blob: &[u8]) -> Vec<u8> {
    let len = bytes.len();
    // Positions spread over the whole of a long bundle: `at` is a fraction of the length.
    let pos = if len == 0 {
        0
    } else {
        (usize::from(at) * len / 256).min(len - 1)
    };
    match kind % 5 {
        1 if len > 0 => bytes[pos] ^= blob.first().copied().unwrap_or(1).max(1),
        2 => bytes.truncate(pos),
        3 => bytes.extend_from_slice(blob),
        4 => {
            for (i, b) in blob.iter().enumerate() {
                match bytes.get_mut(pos + i) {
                    Some(d) => *d = *b,
                    None => bytes.push(*b),
                }
            }
        }
        _ => {}
    }
    bytes
}

/// Simulated evidence binding `key` and `nonce`, as the agent's simulator makes it.
fn simulated_bundle(key: [u8; 32], nonce: [u8; 32]) -> Vec<u8> {
    let rd = binding::report_data(&RustCrypto, &key, &[0; 32], &nonce);
    let simulator = ed25519::Pair::from_seed(&[0x5e; 32]);
    let body = SimulatedBody::new(rd, MEASUREMENT, SimulatedKey::Ed25519(simulator.public().0));
    let signature = simulator.sign(&body.signed_message()).0.to_vec();
    let report = SimulatedReport { body, signature }.to_bytes();
    EvidenceBundle::new(key, nonce, CpuEvidence::Simulated { report }, Vec::new()).to_bytes()
}

/// A bounded byte vector, cut to its bound.
fn bounded<S: polkadot_sdk::sp_core::Get<u32>>(
    mut bytes: Vec<u8>,
) -> frame_support::BoundedVec<u8, S> {
    bytes.truncate(S::get() as usize);
    bytes.try_into().expect("cut to the bound")
}

/// Which evidence an operation submits: 7 choice bytes from `at`.
#[derive(Clone, Copy)]
struct EvidenceChoice {
    /// 0: a simulated bundle; 1: the bundle mutated; 2: the blob.
    kind: u8,
    /// 0: the key the call is about; else a key of the pool.
    key: u8,
    /// 0: the nonce the call needs; 1: another actor's registration nonce; else `[n; 32]`.
    nonce: u8,
    /// 255: the current block; else that many blocks (mod 70) before the last one.
    anchor: u8,
    /// 0-2: a genesis policy (simulated first); 3-6: a registered policy by position;
    /// 7: an unknown id; 8: the actor's attested policy.
    policy: u8,
    /// The mutation's kind and position ([`mutate`]).
    mutation: u8,
    at: u8,
}

impl EvidenceChoice {
    fn from(fields: &[u8; FIELDS], at: usize) -> Self {
        Self {
            kind: fields[at],
            key: fields[at + 1],
            nonce: fields[at + 2],
            anchor: fields[at + 3],
            policy: fields[at + 4],
            mutation: fields[at + 5],
            at: fields[at + 6],
        }
    }
}

struct Harness {
    actors: [AccountId; 5],
    keys: Vec<ed25519::Pair>,
    market_index: u8,
    balances_index: u8,
    issuance: Balance,
    report: Report,
}

impl Harness {
    fn new() -> Self {
        let issuance = Balances::total_issuance();
        assert_eq!(issuance, DEV_ENDOWMENT * 6, "the development genesis");
        let h = Self {
            actors: actors(),
            keys: (1..=KEYS as u8)
                .map(|s| ed25519::Pair::from_seed(&[s; 32]))
                .collect(),
            market_index: u8::try_from(<Market as PalletInfoAccess>::index()).unwrap_or(0),
            balances_index: u8::try_from(<Balances as PalletInfoAccess>::index()).unwrap_or(0),
            issuance,
            report: Report::default(),
        };
        let parent = System::block_hash(0);
        h.start_block(1, parent, GENESIS_MS);
        h
    }

    fn actor(&self, c: u8) -> AccountId {
        self.actors[usize::from(c) % self.actors.len()].clone()
    }

    fn key(&self, c: u8) -> ed25519::Pair {
        self.keys[usize::from(c) % KEYS]
    }

    fn pair_of(&self, public: &[u8; 32]) -> Option<ed25519::Pair> {
        self.keys.iter().find(|p| p.public().0 == *public).copied()
    }

    fn job_id(c: u8) -> [u8; 32] {
        // Six ids most of the time, so that calls meet the jobs others funded.
        if c >= 0xf0 { [c; 32] } else { [c % 6 + 1; 32] }
    }

    fn now() -> u32 {
        System::block_number()
    }

    fn now_ms() -> u64 {
        pallet_timestamp::Now::<Runtime>::get()
    }

    // Blocks.

    fn start_block(&self, number: u32, parent: H256, now_ms: u64) {
        System::reset_events();
        // `initialize` takes the block after the current one; skipped blocks are jumped over.
        System::set_block_number(number - 1);
        System::initialize(&number, &parent, &Default::default());
        <crate::AllPalletsWithSystem as OnInitialize<u32>>::on_initialize(number);
        assert!(
            Timestamp::set(RuntimeOrigin::none(), now_ms).is_ok(),
            "the timestamp inherent"
        );
    }

    /// Ends the block: `on_idle` with `spare` weight, `on_finalize`, and the checks.
    fn end_block(&mut self, spare: Weight) {
        let n = Self::now();
        let before = self.storage_root();
        <crate::AllPalletsWithSystem as OnIdle<u32>>::on_idle(n, spare);
        if spare == Weight::zero() {
            assert_eq!(self.storage_root(), before, "on_idle without weight wrote");
        }
        <crate::AllPalletsWithSystem as OnFinalize<u32>>::on_finalize(n);
        self.check();
        self.report.blocks += 1;
    }

    /// Fields: count of blocks (1-4), milliseconds per block, `on_idle`'s weight (all that
    /// is left, none, a tenth), full blocks skipped before the next (their `on_idle` finds no
    /// weight, so only the block number moves).
    fn op_blocks(&mut self, f: &[u8; FIELDS]) {
        const MS: [u64; 7] = [
            3_000,
            6_000,
            60_000,
            3_600_000,
            86_400_000,
            7 * 86_400_000 + 1,
            30 * 86_400_000,
        ];
        const SKIP: [u32; 6] = [0, 0, 10, 64, 1_000, 30 * DAYS + 2];
        let count = 1 + f[0] % 4;
        let ms = MS[usize::from(f[1]) % MS.len()];
        let max = RuntimeBlockWeights::get().max_block;
        let spare = match f[2] % 3 {
            0 => max,
            1 => Weight::zero(),
            _ => max / 10,
        };
        let skip = SKIP[usize::from(f[3]) % SKIP.len()];
        for i in 0..count {
            self.end_block(spare);
            let n = Self::now();
            let next = if i == 0 { n + 1 + skip } else { n + 1 };
            // The skipped blocks have hashes, as on the chain: registration anchors may name
            // them.
            for b in next.saturating_sub(65).max(n)..next {
                frame_system::BlockHash::<Runtime>::insert(b, Self::fake_hash(b));
            }
            self.start_block(next, Self::fake_hash(next - 1), Self::now_ms() + ms);
        }
    }

    fn fake_hash(n: u32) -> H256 {
        polkadot_sdk::sp_runtime::traits::BlakeTwo256::hash_of(&(b"block", n))
    }

    // Checks.

    fn storage_root(&self) -> Vec<u8> {
        sp_io::storage::root(polkadot_sdk::sp_runtime::StateVersion::V1)
    }

    fn check(&self) {
        if let Err(e) = Market::do_try_state() {
            panic!("market invariant broken: {e:?}");
        }
        let issuance = pallet_balances::TotalIssuance::<Runtime>::get();
        assert_eq!(issuance, self.issuance, "total issuance changed");
        let held: Balance = frame_system::Account::<Runtime>::iter_values()
            .map(|a| a.data.free + a.data.reserved)
            .sum();
        assert_eq!(held, issuance, "balances do not sum to the total issuance");
    }

    /// Dispatches `call` from `who`; a refusal must change nothing and be a market, balances
    /// or token error.
    fn dispatch(&mut self, who: &AccountId, call: pallet_sigil_market::Call<Runtime>) -> bool {
        let before = self.storage_root();
        let call = RuntimeCall::Market(call);
        let result = call.clone().dispatch(RuntimeOrigin::signed(who.clone()));
        match result {
            Ok(_) => {
                self.report.accepted += 1;
                self.check();
                true
            }
            Err(e) => {
                self.report.refused += 1;
                let known = match e.error {
                    DispatchError::Module(m) => {
                        m.index == self.market_index || m.index == self.balances_index
                    }
                    DispatchError::Token(_) => true,
                    _ => false,
                };
                assert!(known, "opaque refusal {:?} of {call:?}", e.error);
                assert!(
                    self.storage_root() == before,
                    "refused call changed storage: {:?} of {call:?}",
                    e.error
                );
                false
            }
        }
    }

    fn apply(&mut self, o: &Op) {
        let f = &o.fields;
        match o.code {
            op::REGISTER => self.op_register(f, &o.blob),
            op::FUND => self.op_fund(f),
            op::RECEIPT => self.op_receipt(f, &o.blob),
            op::REFUND => {
                let job_id = Self::job_id(f[1]);
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::refund_expired { job_id },
                );
            }
            op::DEREGISTER => {
                self.dispatch(&self.actor(f[0]), pallet_sigil_market::Call::deregister {});
            }
            op::REFRESH => {
                let who = self.actor(f[0]);
                let key = pallet_sigil_market::Providers::<Runtime>::get(&who)
                    .map_or([0; 32], |i| i.signing_key);
                let attestation = self.attestation(&who, key, EvidenceChoice::from(f, 1), &o.blob);
                self.dispatch(
                    &who,
                    pallet_sigil_market::Call::refresh_attestation { attestation },
                );
            }
            op::REGISTER_POLICY => self.op_register_policy(f, &o.blob),
            op::RETIRE_POLICY => {
                let who = self.actor(f[0]);
                let policy = self.policy(&who, f[1]);
                self.dispatch(&who, pallet_sigil_market::Call::retire_policy { policy });
            }
            op::SET_OFFER => self.op_set_offer(f),
            op::WITHDRAW_OFFER => {
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::withdraw_offer {},
                );
            }
            op::CANCEL => {
                let job_id = Self::job_id(f[1]);
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::cancel_job { job_id },
                );
            }
            op::DISPATCH => {
                let job_id = Self::job_id(f[1]);
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::dispatch_job { job_id },
                );
            }
            op::REASSIGN => {
                let job_id = Self::job_id(f[1]);
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::reassign { job_id },
                );
            }
            op::ROTATE_KEY => self.op_rotate(f, &o.blob),
            op::PRUNE => {
                let evidence_digest = if f[1] == 0xff {
                    [0xff; 32]
                } else {
                    pallet_sigil_market::Attestations::<Runtime>::iter_keys()
                        .nth(usize::from(f[1] % 8))
                        .unwrap_or([f[1]; 32])
                };
                self.dispatch(
                    &self.actor(f[0]),
                    pallet_sigil_market::Call::prune_attestation { evidence_digest },
                );
            }
            op::BLOCKS => self.op_blocks(f),
            _ => {
                // op::RAW_CALL
                if let Ok(call) = pallet_sigil_market::Call::<Runtime>::decode(&mut &o.blob[..]) {
                    self.dispatch(&self.actor(f[0]), call);
                }
            }
        }
    }

    // Arguments.

    /// A policy id: see [`EvidenceChoice::policy`].
    fn policy(&self, who: &AccountId, c: u8) -> PolicyId {
        match c % 9 {
            0 => genesis_id(genesis::SIMULATED_V1),
            1 => genesis_id(genesis::CONFIDENTIAL_VM_V1),
            2 => genesis_id(genesis::SEV_SNP_V1),
            7 => [0x77; 32],
            8 => pallet_sigil_market::Providers::<Runtime>::get(who)
                .and_then(|i| i.attested)
                .map_or([0x78; 32], |a| a.policy),
            n => {
                // Registered policies by position, user policies first (genesis ones otherwise).
                let mut ids: Vec<(bool, PolicyId)> =
                    pallet_sigil_market::Policies::<Runtime>::iter()
                        .map(|(id, r)| (r.owner.is_none(), id))
                        .collect();
                ids.sort();
                ids.get(usize::from(n - 3))
                    .map_or([0x79; 32], |(_, id)| *id)
            }
        }
    }

    /// The registration nonce of `who` anchored at `anchor`.
    fn registration_nonce(who: &AccountId, anchor: u32) -> [u8; 32] {
        pallet_sigil_market::registration_nonce(
            System::block_hash(0).as_ref(),
            System::block_hash(anchor).as_ref(),
            who,
        )
    }

    /// Evidence bytes for `choice`: a simulated bundle binding `key` (or a pool key) and
    /// `nonce` (or a wrong one), possibly mutated, or the blob.
    fn evidence(
        &self,
        who: &AccountId,
        key: [u8; 32],
        nonce: [u8; 32],
        anchor: u32,
        c: EvidenceChoice,
        blob: &[u8],
    ) -> Vec<u8> {
        if c.kind % 3 == 2 {
            return blob.to_vec();
        }
        let key = if c.key == 0 {
            key
        } else {
            self.key(c.key - 1).public().0
        };
        let nonce = match c.nonce % 3 {
            0 => nonce,
            1 => {
                let other = self.actor(c.nonce / 3);
                if &other == who {
                    [c.nonce; 32]
                } else {
                    Self::registration_nonce(&other, anchor)
                }
            }
            _ => [c.nonce; 32],
        };
        let bundle = simulated_bundle(key, nonce);
        if c.kind % 3 == 1 {
            mutate(bundle, c.mutation, c.at, blob)
        } else {
            bundle
        }
    }

    /// A registration or rotation submission for `who` and `key`.
    fn attestation(
        &self,
        who: &AccountId,
        key: [u8; 32],
        c: EvidenceChoice,
        blob: &[u8],
    ) -> AttestationSubmission<Runtime> {
        let now = Self::now();
        let anchor = if c.anchor == 0xff {
            now
        } else {
            now.saturating_sub(1 + u32::from(c.anchor % 70))
        };
        let nonce = Self::registration_nonce(who, anchor);
        let evidence = self.evidence(who, key, nonce, anchor, c, blob);
        AttestationSubmission {
            evidence: bounded(evidence),
            collateral: Default::default(),
            policy: self.policy(who, c.policy),
            anchor,
        }
    }

    /// A key proof of `key` for `who`: valid, for another account, by another key, or random.
    fn key_proof(&self, who: &AccountId, key: &ed25519::Pair, c: u8) -> [u8; 64] {
        match c % 4 {
            0 => key.sign(&pallet_sigil_market::key_proof_message(who)).0,
            1 => {
                let other = self.actor(c / 4 + 1);
                key.sign(&pallet_sigil_market::key_proof_message(&other)).0
            }
            2 => {
                self.key(c / 4)
                    .sign(&pallet_sigil_market::key_proof_message(who))
                    .0
            }
            _ => [c; 64],
        }
    }

    // Operations.

    /// Fields: actor, key, key proof, tiers (bits: 1, 2, 3; bit 3 repeats one), TEE kinds
    /// (bits: SEV-SNP, TDX, simulated; bit 3 repeats one), GPU model, evidence (odd), then
    /// the evidence's 7 choices ([`EvidenceChoice`]).
    fn op_register(&mut self, f: &[u8; FIELDS], blob: &[u8]) {
        let who = self.actor(f[0]);
        let pair = self.key(f[1]);
        let key_proof = self.key_proof(&who, &pair, f[2]);
        let capabilities = Capabilities {
            tiers: bounded_set(f[3], &[Tier::Signed, Tier::Quorum, Tier::Attested]),
            tee_kinds: bounded_set(f[4], &[TeeKind::SevSnp, TeeKind::Tdx, TeeKind::Simulated]),
            gpu_model: gpu_model(f[5]),
        };
        let attestation = (f[6] % 2 == 1)
            .then(|| self.attestation(&who, pair.public().0, EvidenceChoice::from(f, 7), blob));
        self.dispatch(
            &who,
            pallet_sigil_market::Call::register_provider {
                signing_key: pair.public().0,
                key_proof,
                capabilities,
                attestation,
            },
        );
    }

    /// Fields: actor, key, key proof, evidence (odd), then the evidence's 7 choices.
    fn op_rotate(&mut self, f: &[u8; FIELDS], blob: &[u8]) {
        let who = self.actor(f[0]);
        let pair = self.key(f[1]);
        let key_proof = self.key_proof(&who, &pair, f[2]);
        let attestation = (f[3] % 2 == 1)
            .then(|| self.attestation(&who, pair.public().0, EvidenceChoice::from(f, 4), blob));
        self.dispatch(
            &who,
            pallet_sigil_market::Call::rotate_key {
                signing_key: pair.public().0,
                key_proof,
                attestation,
            },
        );
    }

    /// Fields: actor, job, spec, terms (signed, quorum, attested), `k`, `n` (255: above the
    /// chain's most), policy, fresh quote (odd), class TEE kinds (bits), class GPU model,
    /// class GPU count, price, deadline, response window.
    fn op_fund(&mut self, f: &[u8; FIELDS]) {
        let who = self.actor(f[0]);
        let terms = match f[3] % 3 {
            0 => TierTerms::Signed,
            1 => TierTerms::Quorum {
                k: u32::from(f[4] % 5),
                n: if f[5] == 0xff {
                    17
                } else {
                    u32::from(f[5] % 6)
                },
            },
            _ => TierTerms::Attested {
                policy: self.policy(&who, f[6]),
                fresh_quote: f[7] % 2 == 1,
            },
        };
        const PRICE: [Balance; 8] = [
            0,
            MILLI_MINT - 1,
            MILLI_MINT,
            MINT,
            7 * MINT,
            10_000 * MINT,
            2 * DEV_ENDOWMENT,
            Balance::MAX,
        ];
        const DEADLINE: [u32; 8] = [0, 1, 2, 5, 20, 100, 30 * DAYS, 30 * DAYS + 1];
        const RESPONSE: [u32; 5] = [0, 1, 2, 5, 30 * DAYS + 1];
        let class = ProviderClass {
            tee_kinds: bounded_set(f[8], &[TeeKind::SevSnp, TeeKind::Tdx, TeeKind::Simulated]),
            gpu_model: gpu_model(f[9]),
            gpu_count: u32::from(f[10] % 3),
        };
        self.dispatch(
            &who,
            pallet_sigil_market::Call::fund_job {
                job_id: Self::job_id(f[1]),
                spec_hash: [f[2] % 3; 32],
                terms,
                class,
                price: PRICE[usize::from(f[11]) % PRICE.len()],
                deadline: Self::now() + DEADLINE[usize::from(f[12]) % DEADLINE.len()],
                response_blocks: RESPONSE[usize::from(f[13]) % RESPONSE.len()],
            },
        );
    }

    /// Fields: actor, job, body (0: well-formed, 1: mutated, 2: the blob), signer (0: the
    /// key the actor was bound under; else a pool key), result (3 values), timing (valid,
    /// finished in the future, finished before started, at the drift limit), tier (0: the
    /// job's; else that code), evidence mode (0: the job's; none, attested key, fresh quote),
    /// evidence digest (0: the natural one; previous, random, zero; bit 7: another TEE),
    /// signature (valid, by another key, flipped, random), fresh evidence (none, bound to
    /// the body, mutated, with a registration nonce, the blob), fresh evidence key (0: the
    /// signer's), mutation kind and position, spec (0: the job's).
    fn op_receipt(&mut self, f: &[u8; FIELDS], blob: &[u8]) {
        let who = self.actor(f[0]);
        let job_id = Self::job_id(f[1]);
        let job = pallet_sigil_market::Jobs::<Runtime>::get(job_id);
        let info = pallet_sigil_market::Providers::<Runtime>::get(&who);
        let bound_key = pallet_sigil_market::Bindings::<Runtime>::get(job_id)
            .and_then(|b| b.key_of(&who))
            .or_else(|| info.as_ref().map(|i| i.signing_key));
        let signer = match (f[3], bound_key.and_then(|k| self.pair_of(&k))) {
            (0, Some(pair)) => pair,
            (c, _) => self.key(c.saturating_sub(1)),
        };
        // The attestation the bound key rests on (the current or the retiring key's).
        let attested = info.as_ref().and_then(|i| {
            if Some(i.signing_key) == bound_key {
                i.attested.clone()
            } else {
                i.retiring.as_ref().and_then(|r| r.attested.clone())
            }
        });
        let (spec, tier, natural_mode) = match &job {
            Some(j) => (
                j.spec_hash,
                j.terms.tier().code(),
                match j.terms {
                    TierTerms::Attested { fresh_quote, .. } if fresh_quote => {
                        EvidenceMode::FreshQuote
                    }
                    TierTerms::Attested { .. } => EvidenceMode::AttestedKey,
                    _ => EvidenceMode::None,
                },
            ),
            None => ([0; 32], 1, EvidenceMode::None),
        };
        let mode = match f[7] % 4 {
            0 => natural_mode,
            1 => EvidenceMode::None,
            2 => EvidenceMode::AttestedKey,
            _ => EvidenceMode::FreshQuote,
        };
        let tee = match (mode, f[8] & 0x80 != 0) {
            (EvidenceMode::None, false) => ReceiptTee::None,
            (_, false) => ReceiptTee::Simulated,
            (_, true) => ReceiptTee::SevSnp,
        };
        let natural_digest = match mode {
            EvidenceMode::AttestedKey => attested.as_ref().map_or([0; 32], |a| a.evidence_digest),
            _ => [0; 32],
        };
        let digest = match f[8] % 4 {
            0 => natural_digest,
            1 => attested
                .as_ref()
                .and_then(|a| a.previous)
                .map_or([1; 32], |p| p.evidence_digest),
            2 => [f[8]; 32],
            _ => [0; 32],
        };
        let now_ms = Self::now_ms();
        let (started_at_ms, finished_at_ms) = match f[5] % 4 {
            0 => (now_ms - 5_000, now_ms),
            1 => (now_ms, now_ms + 60_001),
            2 => (now_ms, now_ms - 1),
            _ => (now_ms, now_ms + 60_000),
        };
        let mut body = ReceiptBody {
            version: 1,
            job_id,
            job_spec_hash: if f[14] == 0 { spec } else { [f[14]; 32] },
            provider: signer.public().0,
            tier: if f[6] == 0 { tier } else { f[6] },
            result_commitment: [0xc0 + f[4] % 3; 32],
            output_count: 1,
            started_at_ms,
            finished_at_ms,
            exit_code: 0,
            usage: Usage::default(),
            evidence: EvidenceRef { mode, tee, digest },
        };
        // Fresh evidence binds the body (with its digest zeroed); the body then names it.
        let fresh_evidence = match f[10] % 5 {
            0 => None,
            kind => {
                let key = if f[11] == 0 {
                    signer.public().0
                } else {
                    self.key(f[11]).public().0
                };
                let evidence = match kind {
                    1 | 2 => {
                        body.evidence.digest = [0; 32];
                        let bundle =
                            simulated_bundle(key, market_receipt::fresh_quote_nonce(&body));
                        if kind == 2 {
                            mutate(bundle, f[12], f[13], blob)
                        } else {
                            bundle
                        }
                    }
                    3 => simulated_bundle(key, Self::registration_nonce(&who, 0)),
                    _ => blob.to_vec(),
                };
                if f[8].is_multiple_of(4) {
                    body.evidence.digest = market_receipt::evidence_digest(&evidence);
                }
                Some(AttestationSubmission {
                    evidence: bounded(evidence),
                    collateral: Default::default(),
                    policy: self.policy(&who, f[11]),
                    anchor: 0,
                })
            }
        };
        let bytes = match f[2] % 3 {
            0 => body.encode(),
            1 => mutate(body.encode(), f[12], f[13], blob),
            _ => blob.to_vec(),
        };
        let digest = market_receipt::digest_of_encoded(&bytes);
        let signature = match f[9] % 4 {
            0 => signer.sign(&digest).0,
            1 => self.key(f[9] / 4).sign(&digest).0,
            2 => {
                let mut s = signer.sign(&digest).0;
                s[usize::from(f[9]) % 64] ^= 1;
                s
            }
            _ => [f[9]; 64],
        };
        let accepted = self.dispatch(
            &who,
            pallet_sigil_market::Call::submit_receipt {
                job_id,
                body: bounded(bytes),
                signature,
                fresh_evidence,
            },
        );
        let settled = pallet_sigil_market::Jobs::<Runtime>::get(job_id)
            .filter(|j| accepted && j.status == JobStatus::Settled);
        if let Some(j) = settled {
            self.report.settled_tiers.insert(j.terms.tier().code());
        }
    }

    /// Fields: actor, price, capacity, bond.
    fn op_set_offer(&mut self, f: &[u8; FIELDS]) {
        const PRICE: [Balance; 6] = [0, MILLI_MINT, MINT, 2 * MINT, 100 * MINT, Balance::MAX];
        const CAPACITY: [u32; 6] = [0, 1, 2, 4, 16, u32::MAX];
        let min = MinProviderBond::get();
        let bond = [0, min - 1, min, 2 * min, DEV_ENDOWMENT, Balance::MAX];
        self.dispatch(
            &self.actor(f[0]),
            pallet_sigil_market::Call::set_offer {
                price: PRICE[usize::from(f[1]) % PRICE.len()],
                capacity: CAPACITY[usize::from(f[2]) % CAPACITY.len()],
                bond: bond[usize::from(f[3]) % bond.len()],
            },
        );
    }

    /// Fields: actor, document (0: a genesis policy; 1: one mutated; 2: a variant; 3: the
    /// blob), which (genesis policy, or variant: a simulated policy with a key lifetime, one
    /// pinning the harness's measurement, one pinning another, a pinned SEV-SNP policy), a
    /// parameter (lifetime in 10 minutes, measurement byte), mutation kind and position.
    fn op_register_policy(&mut self, f: &[u8; FIELDS], blob: &[u8]) {
        let named = |i: u8| {
            genesis::named(genesis::NAMES[usize::from(i) % genesis::NAMES.len()])
                .expect("a genesis policy")
        };
        let document = match f[1] % 4 {
            0 => named(f[2]).canonical_bytes(),
            1 => mutate(named(f[2]).canonical_bytes(), f[4], f[5], blob),
            2 => {
                let mut p: Policy = named(2);
                match f[2] % 4 {
                    0 => p.key_lifetime_secs = Some(u64::from(f[3]) * 600),
                    1 => p.simulated.measurements = vec![HexBytes(MEASUREMENT.to_vec())],
                    2 => p.simulated.measurements = vec![HexBytes(vec![f[3]; 48])],
                    _ => {
                        p = named(1);
                        p.snp.measurements = vec![HexBytes(MEASUREMENT.to_vec())];
                    }
                }
                p.canonical_bytes()
            }
            _ => blob.to_vec(),
        };
        self.dispatch(
            &self.actor(f[0]),
            pallet_sigil_market::Call::register_policy {
                document: bounded(document),
            },
        );
    }
}

fn genesis_id(name: &str) -> PolicyId {
    genesis::named(name).map_or([0; 32], |p| p.id())
}

/// A set of up to three items from bits 0-2 of `c`; bit 3 repeats the first (a duplicate).
fn bounded_set<X: Copy, S: polkadot_sdk::sp_core::Get<u32>>(
    c: u8,
    items: &[X; 3],
) -> frame_support::BoundedVec<X, S> {
    let mut v: Vec<X> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| c & (1 << i) != 0)
        .map(|(_, x)| *x)
        .collect();
    if let Some(first) = v.first().copied().filter(|_| c & 8 != 0) {
        v.push(first);
    }
    v.truncate(S::get() as usize);
    v.try_into().ok().unwrap_or_default()
}

fn gpu_model(c: u8) -> pallet_sigil_market::GpuModel {
    let model: &[u8] = match c % 4 {
        0 => b"",
        1 => b"NVIDIA H100 80GB HBM3",
        2 => b"GH100",
        _ => b"H20",
    };
    bounded(model.to_vec())
}

/// Hand-built sequences that reach a settled job of each kind: seeds for the fuzzer's corpus
/// and the unit test's fixed inputs.
pub mod seeds {
    use super::{Op, op};
    use alloc::{vec, vec::Vec};

    /// Charlie registers key 0 for tier 1 and offers; Bob funds job 1 (1 MINT, deadline in
    /// 100 blocks); Charlie's receipt settles it; a block.
    pub fn tier1() -> Vec<Op> {
        vec![
            Op::new(op::REGISTER, &[2, 0, 0, 0b001]),
            Op::new(op::SET_OFFER, &[2, 1, 3, 2]),
            Op::new(op::FUND, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5]),
            Op::new(op::RECEIPT, &[2, 0]),
            Op::new(op::BLOCKS, &[0]),
        ]
    }

    /// Dave registers key 1 for tier 3 with simulated evidence under the genesis simulated
    /// policy (anchored at the genesis block) and offers; Bob funds an attested-key job 2
    /// and a fresh-quote job 3; Dave's receipts settle both; blocks pass and time moves past
    /// the key's expiry; `on_idle` prunes nothing still in use.
    pub fn tier3() -> Vec<Op> {
        vec![
            Op::new(
                op::REGISTER,
                &[3, 1, 0, 0b100, 0b100, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            ),
            Op::new(op::SET_OFFER, &[3, 1, 3, 2]),
            Op::new(op::FUND, &[1, 1, 1, 2, 0, 0, 0, 0, 0b100, 0, 0, 4, 5]),
            Op::new(op::RECEIPT, &[3, 1]),
            Op::new(op::FUND, &[1, 2, 2, 2, 0, 0, 0, 1, 0, 0, 0, 4, 5]),
            Op::new(op::RECEIPT, &[3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Op::new(op::BLOCKS, &[1, 5, 0, 2]),
            Op::new(op::PRUNE, &[0, 0]),
        ]
    }

    /// Alice, Charlie and Dave register for tier 2 and offer; Bob funds a 2-of-3 job and a
    /// tier-1 job nobody serves (it waits); two agreeing receipts settle the first and the
    /// third, late, is refused; after its deadline its refund is refused too (Bob's hold has
    /// the waiting job's escrow: a refund of a settled job would pay it twice).
    pub fn tier2() -> Vec<Op> {
        vec![
            Op::new(op::REGISTER, &[0, 2, 0, 0b010]),
            Op::new(op::REGISTER, &[2, 3, 0, 0b010]),
            Op::new(op::REGISTER, &[3, 4, 0, 0b010]),
            Op::new(op::SET_OFFER, &[0, 1, 3, 2]),
            Op::new(op::SET_OFFER, &[2, 1, 3, 2]),
            Op::new(op::SET_OFFER, &[3, 1, 3, 2]),
            Op::new(op::FUND, &[1, 3, 0, 1, 2, 3, 0, 0, 0, 0, 0, 3, 3, 2]),
            Op::new(op::FUND, &[1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5]),
            Op::new(op::RECEIPT, &[0, 3]),
            Op::new(op::RECEIPT, &[2, 3]),
            Op::new(op::RECEIPT, &[3, 3, 0, 0, 1]),
            Op::new(op::BLOCKS, &[3, 0, 0, 2]),
            Op::new(op::REFUND, &[1, 3]),
        ]
    }

    /// Every seed.
    pub fn all() -> Vec<Vec<Op>> {
        vec![tier1(), tier2(), tier3()]
    }

    /// Every seed, encoded as [`super::run`] reads it (the fuzzer's seed corpus).
    pub fn encoded() -> Vec<Vec<u8>> {
        all().iter().map(|s| super::encode(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.byte()).collect()
        }
    }

    /// Operations of random kinds with random choices, biased to small choice values (so
    /// that "the natural argument", choice 0, is common) and short blobs.
    fn random_ops(rng: &mut Rng, count: usize) -> Vec<Op> {
        (0..count)
            .map(|_| {
                let code = rng.byte() % OPS;
                let mut fields = [0u8; FIELDS];
                for f in &mut fields {
                    *f = match rng.byte() % 4 {
                        0 => 0,
                        1 | 2 => rng.byte() % 8,
                        _ => rng.byte(),
                    };
                }
                let len = usize::from(rng.byte() % 48);
                Op {
                    code,
                    fields,
                    blob: rng.bytes(len),
                }
            })
            .collect()
    }

    #[test]
    fn seeds_reach_settlement_works() {
        let reached: BTreeSet<u8> = seeds::all()
            .iter()
            .flat_map(|s| {
                let report = run_report(&encode(s));
                assert_eq!(report.ops, s.len());
                report.settled_tiers
            })
            .collect();
        assert_eq!(reached, BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn op_encoding_round_trips_works() {
        let mut rng = Rng(7);
        let ops = random_ops(&mut rng, 20);
        let bytes = encode(&ops);
        let mut u = Unstructured::new(&bytes);
        let read: Vec<Op> = (0..ops.len()).map(|_| Op::read(&mut u)).collect();
        assert_eq!(read, ops);
        assert!(u.is_empty());
    }

    /// The harness over fixed pseudo-random inputs: random operations, the seeds with random
    /// operations spliced in, and raw random bytes. A broken invariant panics.
    #[test]
    fn fixed_inputs_keep_invariants_works() {
        let mut rng = Rng(0x5161_1c0d_e5ee_d001);
        let mut refused = 0;
        let mut accepted = 0;
        for i in 0..96 {
            let ops = match i % 3 {
                0 => random_ops(&mut rng, 40),
                1 => {
                    let seeds = seeds::all();
                    let mut ops = seeds[i % seeds.len()].clone();
                    for _ in 0..12 {
                        let at = (rng.next() as usize) % (ops.len() + 1);
                        let extra = random_ops(&mut rng, 1);
                        ops.splice(at..at, extra);
                    }
                    ops
                }
                _ => {
                    let raw = rng.bytes(600);
                    let report = run_report(&raw);
                    refused += report.refused;
                    accepted += report.accepted;
                    continue;
                }
            };
            let report = run_report(&encode(&ops));
            refused += report.refused;
            accepted += report.accepted;
        }
        assert!(refused > 100 && accepted > 50, "{refused} {accepted}");
    }
}
