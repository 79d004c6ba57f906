//! # Sigil runtime
//!
//! The chain of the Sigil compute market: MINT balances (the native currency, 12 decimals),
//! timestamp, transaction payment in MINT and the market pallet, whose tier-3 evidence is
//! verified in the runtime by the `attestation-verifier` crate ([`sigil_verifier_adapter`]).
//!
//! ## Who can do what
//! There is no sudo and no privileged account. No signed or unsigned origin becomes root, so
//! the root-only calls (`System::set_storage`, `kill_storage`, `kill_prefix`, `set_code`,
//! `authorize_upgrade`, `Balances::force_*`) cannot be dispatched by anyone. The market binds
//! providers to jobs by its own rule (the pallet's *Dispatch by the chain*): there is no
//! dispatcher. Escrow, bonds and policy deposits move only by the market pallet's rules.
//!
//! New runtime code has one path (`pallet_sigil_upgrades`): a council fixed at genesis approves
//! a code hash by a threshold of its members, the approval is announced on chain, and anyone
//! may enact it only [`UPGRADE_DELAY`] blocks later (one member can cancel it until then); the
//! code itself is then submitted with `System::apply_authorized_upgrade`. The council can do
//! nothing else.
//!
//! The crate builds natively (`std`) and, through its build script, to WASM
//! ([`WASM_BINARY`]); the node or executor that runs the chain executes the WASM.

#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime!` and `impl_runtime_apis!` expand to deeply nested types.
#![recursion_limit = "256"]
// The FRAME and runtime-API macros expand to code that the workspace lints would flag
// (`expect` on values they construct, arithmetic on weights); the runtime's own logic lives in
// the pallets and the verifier adapter, where the lints apply in full.
#![allow(
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::panic
)]
// Types named by `construct_runtime!`'s public items are public too.
#![allow(unreachable_pub)]

extern crate alloc;

/// The WASM build of this crate (`WASM_BINARY`, `WASM_BINARY_BLOATY`, `WASM_BINARY_PATH`), written
/// by the build script when built natively with `std`: compacted and compressed in release builds.
#[cfg(feature = "std")]
#[allow(missing_docs)]
mod wasm {
    include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));
}
#[cfg(feature = "std")]
pub use wasm::{WASM_BINARY, WASM_BINARY_BLOATY, WASM_BINARY_PATH};

pub mod genesis_config_presets;

use alloc::vec::Vec;
use polkadot_sdk::*;

use frame_support::{
    construct_runtime, derive_impl,
    genesis_builder_helper::{build_state, get_preset},
    parameter_types,
    traits::{ConstU8, ConstU32, ConstU64, ConstU128, VariantCountOf},
    weights::{
        ConstantMultiplier, IdentityFee, Weight,
        constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
    },
};
use frame_system::limits;
use pallet_transaction_payment::{FeeDetails, FungibleAdapter, RuntimeDispatchInfo};
use sp_api::impl_runtime_apis;
use sp_core::OpaqueMetadata;
use sp_runtime::{
    ApplyExtrinsicResult, MultiAddress, MultiSignature, Perbill, generic,
    traits::{BlakeTwo256, Block as BlockT, IdentifyAccount, Verify},
    transaction_validity::{TransactionSource, TransactionValidity},
};
use sp_version::RuntimeVersion;

pub use pallet_sigil_market;
pub use sigil_verifier_adapter;

/// Signatures of extrinsics: sr25519, ed25519 or ECDSA.
pub type Signature = MultiSignature;
/// An account: the 32-byte public key (or its hash, for ECDSA) of its signer. A provider's
/// ed25519 receipt key is directly its account.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// A balance in the smallest MINT unit (10^-12 MINT).
pub type Balance = u128;
/// Block numbers.
pub type BlockNumber = u32;
/// Account nonces.
pub type Nonce = u32;
/// Hashes.
pub type Hash = sp_core::H256;
/// The address format of extrinsics.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// The transaction extensions, in the order clients sign them.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
    frame_system::WeightReclaim<Runtime>,
);
/// Extrinsic as it travels.
pub type UncheckedExtrinsic =
    generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// Executes blocks against the pallets.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
>;

/// One MINT in the smallest unit.
pub const MINT: Balance = 1_000_000_000_000;
/// One thousandth of a MINT.
pub const MILLI_MINT: Balance = MINT / 1_000;
/// One millionth of a MINT.
pub const MICRO_MINT: Balance = MINT / 1_000_000;
/// Decimals of MINT (chain spec property `tokenDecimals`).
pub const TOKEN_DECIMALS: u8 = 12;
/// Symbol of MINT (chain spec property `tokenSymbol`).
pub const TOKEN_SYMBOL: &str = "MINT";
/// SS58 address prefix (the generic Substrate prefix).
pub const SS58_PREFIX: u16 = 42;

/// Target block time in milliseconds.
pub const MILLISECS_PER_BLOCK: u64 = 6_000;
/// Blocks per minute at the target block time.
pub const MINUTES: BlockNumber = 10;
/// Blocks per hour.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day.
pub const DAYS: BlockNumber = HOURS * 24;

/// The runtime's version.
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("sigil"),
    impl_name: alloc::borrow::Cow::Borrowed("sigil-runtime"),
    authoring_version: 1,
    spec_version: 1,
    impl_version: 0,
    apis: RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Normal extrinsics may fill 75% of a block; the rest is kept for operational ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
    /// The runtime's version, for `frame_system`.
    pub const Version: RuntimeVersion = VERSION;
    /// Two seconds of compute per block, 5 MiB per block.
    pub RuntimeBlockWeights: limits::BlockWeights = limits::BlockWeights::with_sensible_defaults(
        Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    /// Block length limit.
    pub RuntimeBlockLength: limits::BlockLength = limits::BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(frame_support::dispatch::DispatchClass::Normal, |m| {
            *m = NORMAL_DISPATCH_RATIO * *m
        })
        .build();
    /// Address prefix.
    pub const SS58Prefix: u16 = SS58_PREFIX;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type Version = Version;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type DbWeight = RocksDbWeight;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = ConstU32<2400>;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = ();
    type MinimumPeriod = ConstU64<{ MILLISECS_PER_BLOCK / 2 }>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type Balance = Balance;
    type DustRemoval = ();
    /// One milli-MINT keeps an account alive.
    type ExistentialDeposit = ConstU128<MILLI_MINT>;
    type AccountStore = System;
    type ReserveIdentifier = [u8; 8];
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ConstU32<50>;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type DoneSlashHandler = ();
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    /// Fees are paid in MINT and burned.
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    /// One pico-MINT per unit of ref-time: a second of compute costs one milli-MINT.
    type WeightToFee = IdentityFee<Balance>;
    /// One micro-MINT per byte.
    type LengthToFee = ConstantMultiplier<Balance, ConstU128<MICRO_MINT>>;
    type FeeMultiplierUpdate = ();
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightInfo = ();
}

/// Blocks between a council's approval of new runtime code and its enactment: 7 days.
pub const UPGRADE_DELAY: BlockNumber = 7 * DAYS;

impl pallet_sigil_upgrades::Config for Runtime {
    /// A council of at most 16 members.
    type MaxMembers = ConstU32<16>;
    type EnactmentDelay = ConstU32<UPGRADE_DELAY>;
}

/// Wall-clock time for the market: the block's timestamp.
pub type MarketTime = pallet_timestamp::Pallet<Runtime>;

parameter_types! {
    /// The smallest job price: one milli-MINT.
    pub const MinimumJobPrice: Balance = MILLI_MINT;
    /// The base deposit of a registered attestation policy.
    pub const PolicyDepositBase: Balance = MINT;
    /// The deposit per byte of a policy document.
    pub const PolicyDepositPerByte: Balance = MILLI_MINT;
    /// A provider record's storage deposit: 1 MINT, returned when it deregisters.
    pub const ProviderDeposit: Balance = MINT;
    /// An attestation record's storage deposit: 0.1 MINT plus 10 micro-MINT per byte (a
    /// 64 KiB TDX bundle: ~0.76 MINT; the largest, 256 KiB: ~2.72 MINT), returned when the
    /// expired record is pruned.
    pub const AttestationDepositBase: Balance = 100 * MILLI_MINT;
    /// The deposit per byte of an attestation record's evidence and collateral.
    pub const AttestationDepositPerByte: Balance = 10 * MICRO_MINT;
    /// The smallest bond an offer holds: 10 MINT.
    pub const MinProviderBond: Balance = 10 * MINT;
    /// A provider that misses a job's response window loses a tenth of its bond to the buyer.
    pub const UnresponsivePenalty: Perbill = Perbill::from_percent(10);
    /// A tier-2 provider whose receipt disagrees with the settled result loses a fifth.
    pub const DissentPenalty: Perbill = Perbill::from_percent(20);
}

impl pallet_sigil_market::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type UnixTime = MarketTime;
    type AttestationVerifier = sigil_verifier_adapter::BundleVerifier;
    /// Tier-2 jobs bind at most 16 providers.
    type MaxQuorum = ConstU32<16>;
    /// An evidence bundle: an SEV-SNP report with its VCEK, ASK and ARK is ~6 KiB, a TDX quote
    /// with its DCAP collateral ~30-60 KiB.
    type MaxEvidenceLen = ConstU32<{ 256 * 1024 }>;
    /// The bundle carries its own collateral (it is part of the bundle's digest), so the
    /// separate collateral argument stays empty; the verifier refuses any.
    type MaxCollateralLen = ConstU32<0>;
    type MaxReceiptLen = ConstU32<512>;
    type MinimumPrice = MinimumJobPrice;
    /// A job's deadline is at most 30 days ahead.
    type MaxJobDuration = ConstU32<{ 30 * DAYS }>;
    /// An attested key stays valid at most 7 days; providers re-register with fresh evidence.
    type MaxAttestationValidityMs = ConstU64<{ 7 * 24 * 3_600_000 }>;
    /// A receipt may be finished at most one minute ahead of the chain's clock.
    type MaxClockDriftMs = ConstU64<60_000>;
    /// A policy document: the largest genesis policy is ~100 bytes; 16 KiB holds e.g. a few
    /// hundred pinned launch measurements.
    type MaxPolicyLen = ConstU32<{ 16 * 1024 }>;
    /// A policy's storage deposit: 1 MINT plus 0.001 MINT per byte, returned when it is retired.
    type ProviderDeposit = ProviderDeposit;
    type AttestationDepositBase = AttestationDepositBase;
    type AttestationDepositPerByte = AttestationDepositPerByte;
    type PolicyDepositBase = PolicyDepositBase;
    type PolicyDepositPerByte = PolicyDepositPerByte;
    /// Registration evidence is anchored at one of the last 64 blocks (~6 minutes at 6 s
    /// blocks): evidence older than that cannot register or refresh a key.
    type RegistrationAnchorWindow = ConstU32<64>;
    /// The dispatch rule reads at most 256 offers (see `docs/chain.md`, Weights).
    type MaxOffers = ConstU32<256>;
    type MinProviderBond = MinProviderBond;
    type UnresponsivePenalty = UnresponsivePenalty;
    type DissentPenalty = DissentPenalty;
    /// Sixteen penalised providers and a job is not bound again: it waits for its deadline.
    type MaxPenalties = ConstU32<16>;
    /// `on_idle` tries at most 16 waiting jobs a block.
    type MaxDispatchPerBlock = ConstU32<16>;
    /// `on_idle` looks at most at 8 attestation records a block for pruning (each weighed as a
    /// `prune_attestation` of the largest record).
    type MaxPrunePerBlock = ConstU32<8>;
    type WeightInfo = pallet_sigil_market::weights::SubstrateWeight<Runtime>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = sigil_verifier_adapter::benchmarking::SimulatedEvidence;
}

// The pallets whose benchmarks the runtime's `Benchmark` API runs, by the name a bencher passes
// (`--pallet pallet_sigil_market`). `define_benchmarks!` defines the `list_benchmarks!` and
// `add_benchmarks!` macros that API uses.
#[cfg(feature = "runtime-benchmarks")]
mod benches {
    polkadot_sdk::frame_benchmarking::define_benchmarks!([pallet_sigil_market, Market]);
}

// The runtime's aggregate types (`Runtime`, `RuntimeCall`, `RuntimeEvent`, the pallets' aliases,
// ...) and the runtime API implementations (`RUNTIME_API_VERSIONS`, the `api` module) are
// generated, and documented by FRAME.
#[allow(missing_docs)]
mod runtime {
    use super::*;

    construct_runtime!(
    pub enum Runtime {
        System: frame_system = 0,
        Timestamp: pallet_timestamp = 1,
        Balances: pallet_balances = 2,
        TransactionPayment: pallet_transaction_payment = 3,
        Upgrades: pallet_sigil_upgrades = 6,
        Market: pallet_sigil_market = 10,
    }
    );

    impl_runtime_apis! {
        impl sp_api::Core<Block> for Runtime {
            fn version() -> RuntimeVersion {
                VERSION
            }

            fn execute_block(block: <Block as BlockT>::LazyBlock) {
                Executive::execute_block(block);
            }

            fn initialize_block(header: &<Block as BlockT>::Header) -> sp_runtime::ExtrinsicInclusionMode {
                Executive::initialize_block(header)
            }
        }

        impl sp_api::Metadata<Block> for Runtime {
            fn metadata() -> OpaqueMetadata {
                OpaqueMetadata::new(Runtime::metadata().into())
            }

            fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
                Runtime::metadata_at_version(version)
            }

            fn metadata_versions() -> Vec<u32> {
                Runtime::metadata_versions()
            }
        }

        impl sp_block_builder::BlockBuilder<Block> for Runtime {
            fn apply_extrinsic(extrinsic: <Block as BlockT>::Extrinsic) -> ApplyExtrinsicResult {
                Executive::apply_extrinsic(extrinsic)
            }

            fn finalize_block() -> <Block as BlockT>::Header {
                Executive::finalize_block()
            }

            fn inherent_extrinsics(data: sp_inherents::InherentData) -> Vec<<Block as BlockT>::Extrinsic> {
                data.create_extrinsics()
            }

            fn check_inherents(
                block: <Block as BlockT>::LazyBlock,
                data: sp_inherents::InherentData,
            ) -> sp_inherents::CheckInherentsResult {
                data.check_extrinsics(&block)
            }
        }

        impl sp_transaction_pool::runtime_api::TaggedTransactionQueue<Block> for Runtime {
            fn validate_transaction(
                source: TransactionSource,
                tx: <Block as BlockT>::Extrinsic,
                block_hash: <Block as BlockT>::Hash,
            ) -> TransactionValidity {
                Executive::validate_transaction(source, tx, block_hash)
            }
        }

        impl sp_offchain::OffchainWorkerApi<Block> for Runtime {
            fn offchain_worker(header: &<Block as BlockT>::Header) {
                Executive::offchain_worker(header)
            }
        }

        impl frame_system_rpc_runtime_api::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
            fn account_nonce(account: AccountId) -> Nonce {
                System::account_nonce(account)
            }
        }

        impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance> for Runtime {
            fn query_info(uxt: <Block as BlockT>::Extrinsic, len: u32) -> RuntimeDispatchInfo<Balance> {
                TransactionPayment::query_info(uxt, len)
            }
            fn query_fee_details(uxt: <Block as BlockT>::Extrinsic, len: u32) -> FeeDetails<Balance> {
                TransactionPayment::query_fee_details(uxt, len)
            }
            fn query_weight_to_fee(weight: Weight) -> Balance {
                TransactionPayment::weight_to_fee(weight)
            }
            fn query_length_to_fee(length: u32) -> Balance {
                TransactionPayment::length_to_fee(length)
            }
        }

        impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentCallApi<Block, Balance, RuntimeCall>
            for Runtime
        {
            fn query_call_info(call: RuntimeCall, len: u32) -> RuntimeDispatchInfo<Balance> {
                TransactionPayment::query_call_info(call, len)
            }
            fn query_call_fee_details(call: RuntimeCall, len: u32) -> FeeDetails<Balance> {
                TransactionPayment::query_call_fee_details(call, len)
            }
            fn query_weight_to_fee(weight: Weight) -> Balance {
                TransactionPayment::weight_to_fee(weight)
            }
            fn query_length_to_fee(length: u32) -> Balance {
                TransactionPayment::length_to_fee(length)
            }
        }

        #[cfg(feature = "runtime-benchmarks")]
        impl frame_benchmarking::Benchmark<Block> for Runtime {
            fn benchmark_metadata(extra: bool) -> (
                Vec<frame_benchmarking::BenchmarkList>,
                Vec<frame_support::traits::StorageInfo>,
            ) {
                use frame_benchmarking::BenchmarkList;
                use frame_support::traits::StorageInfoTrait;

                let mut list = Vec::<BenchmarkList>::new();
                list_benchmarks!(list, extra);
                let storage_info = AllPalletsWithSystem::storage_info();
                (list, storage_info)
            }

            fn dispatch_benchmark(
                config: frame_benchmarking::BenchmarkConfig,
            ) -> Result<Vec<frame_benchmarking::BenchmarkBatch>, alloc::string::String> {
                use frame_benchmarking::BenchmarkBatch;
                use frame_support::traits::WhitelistedStorageKeys;
                use sp_storage::TrackedStorageKey;

                // Keys every block reads and writes anyway (block number, weight, events, ...)
                // are not charged to the benchmarked call.
                let whitelist: Vec<TrackedStorageKey> = AllPalletsWithSystem::whitelisted_storage_keys();
                let params = (&config, &whitelist);
                let mut batches = Vec::<BenchmarkBatch>::new();
                add_benchmarks!(params, batches);
                Ok(batches)
            }
        }

        impl sp_genesis_builder::GenesisBuilder<Block> for Runtime {
            fn build_state(config: Vec<u8>) -> sp_genesis_builder::Result {
                build_state::<RuntimeGenesisConfig>(config)
            }

            fn get_preset(id: &Option<sp_genesis_builder::PresetId>) -> Option<Vec<u8>> {
                get_preset::<RuntimeGenesisConfig>(id, genesis_config_presets::get_preset)
            }

            fn preset_names() -> Vec<sp_genesis_builder::PresetId> {
                genesis_config_presets::preset_names()
            }
        }
    }
}
pub use runtime::*;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(test)]
mod tests;
