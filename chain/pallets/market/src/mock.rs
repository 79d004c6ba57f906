//! Mock runtime: System, Balances (MINT) and the market, with an attestation verifier over a
//! test signing scheme.
//!
//! The test verifier is a real verifier of a small scheme, not a stand-in that says yes:
//! collateral is a platform key endorsed by a pinned root key with a validity bound; evidence is
//! a statement (TEE kind, bound key, measurement, nonce, debug flag, issue time) signed by the
//! platform key; policies accept given measurements and TEE kinds. Every check can fail, and the
//! tests exercise each failure.

// Test support code may panic on broken expectations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// `construct_runtime!` makes `Test` public, so the types in its configuration must be public too.
#![allow(unreachable_pub)]

use crate::{
    self as pallet_sigil_market, AttestationFailure, AttestationVerifier, Measurement, PolicyId,
    PolicyRejection, PolicySummary, TeeKind, VerifiedAttestation,
};
use codec::{Decode, Encode};
use polkadot_sdk::{
    frame_support::{
        self, derive_impl, parameter_types,
        traits::{ConstU32, ConstU64, UnixTime},
    },
    frame_system, pallet_balances,
    sp_core::{Pair, ed25519},
    sp_io,
    sp_runtime::{BuildStorage, Perbill},
};

type Block = frame_system::mocking::MockBlock<Test>;

/// Account balances in MINT.
pub(crate) type Balance = u64;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Market: pallet_sigil_market,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type ExistentialDeposit = ExistentialDeposit;
}

parameter_types! {
    /// The mock clock, Unix milliseconds.
    pub static NowMs: u64 = GENESIS_MS;
    /// The smallest job price (tests lower it to reach the tier-2 price check).
    pub static MinimumPrice: Balance = 10;
    /// The existential deposit (tests raise it to reach the tier-2 payout floor).
    pub static ExistentialDeposit: Balance = 1;
    /// The smallest offer bond (0 unless a test of bonds raises it, so that other tests'
    /// balances hold only escrow).
    pub static MinProviderBond: Balance = 0;
    /// The provider record deposit (0 unless a test of deposits raises it).
    pub static ProviderDeposit: Balance = 0;
    /// The attestation record deposit, base and per byte (0 unless a test of deposits raises
    /// them).
    pub static AttestationDepositBase: Balance = 0;
    pub static AttestationDepositPerByte: Balance = 0;
}

/// The mock clock at genesis (2026-01-01T00:00:00Z).
pub(crate) const GENESIS_MS: u64 = 1_767_225_600_000;
/// One hour in milliseconds.
pub(crate) const HOUR_MS: u64 = 3_600_000;

/// Unix time from [`NowMs`].
pub struct MockTime;
impl UnixTime for MockTime {
    fn now() -> core::time::Duration {
        core::time::Duration::from_millis(NowMs::get())
    }
}

impl pallet_sigil_market::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type UnixTime = MockTime;
    type AttestationVerifier = MockVerifier;
    type MaxQuorum = ConstU32<5>;
    type MaxEvidenceLen = ConstU32<1024>;
    type MaxCollateralLen = ConstU32<512>;
    type MaxReceiptLen = ConstU32<512>;
    type MinimumPrice = MinimumPrice;
    type MaxJobDuration = ConstU64<1_000>;
    type MaxAttestationValidityMs = ConstU64<{ 7 * 24 * HOUR_MS }>;
    type MaxClockDriftMs = ConstU64<60_000>;
    type MaxPolicyLen = ConstU32<2048>;
    type ProviderDeposit = ProviderDeposit;
    type AttestationDepositBase = AttestationDepositBase;
    type AttestationDepositPerByte = AttestationDepositPerByte;
    type PolicyDepositBase = ConstU64<{ POLICY_DEPOSIT_BASE }>;
    type PolicyDepositPerByte = ConstU64<{ POLICY_DEPOSIT_PER_BYTE }>;
    type RegistrationAnchorWindow = ConstU64<{ ANCHOR_WINDOW }>;
    type MaxOffers = ConstU32<{ MAX_OFFERS }>;
    type MinProviderBond = MinProviderBond;
    type UnresponsivePenalty = UnresponsivePenalty;
    type DissentPenalty = DissentPenalty;
    type MaxPenalties = ConstU32<3>;
    type MaxDispatchPerBlock = ConstU32<2>;
    type MaxPrunePerBlock = ConstU32<2>;
    type WeightInfo = ();
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = MockVerifier;
}

parameter_types! {
    /// A provider that misses a response window loses a tenth of its bond.
    pub const UnresponsivePenalty: Perbill = Perbill::from_percent(10);
    /// A dissenting tier-2 provider loses a fifth of its bond.
    pub const DissentPenalty: Perbill = Perbill::from_percent(20);
}

/// Most offers in the book.
pub(crate) const MAX_OFFERS: u32 = 8;

/// Deposit held for each registered policy.
pub(crate) const POLICY_DEPOSIT_BASE: Balance = 100;
/// Deposit held per byte of a policy document.
pub(crate) const POLICY_DEPOSIT_PER_BYTE: Balance = 2;
/// How many blocks back a registration anchor may lie.
pub(crate) const ANCHOR_WINDOW: u64 = 100;

// ---- the test attestation scheme -------------------------------------------------------------

/// Seed of the pinned root key of the test scheme.
const ROOT_SEED: [u8; 32] = *b"sigil-mock-vendor-root-key-seed!";
/// Seed of the platform key the root endorses.
const PLATFORM_SEED: [u8; 32] = *b"sigil-mock-platform-key-seed-01!";
/// Domain of the root's endorsement of a platform key.
const ENDORSEMENT_DOMAIN: &[u8] = b"sigil.mock.endorsement\0";
/// Domain of the platform's evidence signature.
const EVIDENCE_DOMAIN: &[u8] = b"sigil.mock.evidence\0";
/// Evidence is valid this long after it is issued.
pub(crate) const EVIDENCE_LIFETIME_MS: u64 = 24 * HOUR_MS;

/// The measurement the production policy accepts.
pub(crate) const GOOD_MEASUREMENT: Measurement = [0xA1; 48];
/// A measurement no policy accepts.
pub(crate) const BAD_MEASUREMENT: Measurement = [0xBB; 48];
/// A policy of the test scheme, SCALE-encoded as its document. Canonical: `tees` sorted by
/// code and `measurements` sorted, both without duplicates.
#[derive(Encode, Decode, Clone, Debug, PartialEq)]
pub(crate) struct MockPolicy {
    pub tees: Vec<TeeKind>,
    /// Accepted measurements (empty: any, which tier 3 refuses on hardware).
    pub measurements: Vec<Measurement>,
    pub allow_simulated: bool,
    pub key_lifetime_ms: Option<u64>,
    pub min_gpus: u32,
}

/// Domain of the test scheme's policy ids.
const POLICY_DOMAIN: &[u8] = b"sigil.mock.policy\0";

impl MockPolicy {
    /// Accepting `tees` with [`GOOD_MEASUREMENT`].
    pub(crate) fn pinned(tees: &[TeeKind]) -> Self {
        Self {
            tees: tees.to_vec(),
            measurements: vec![GOOD_MEASUREMENT],
            allow_simulated: tees.contains(&TeeKind::Simulated),
            key_lifetime_ms: None,
            min_gpus: 0,
        }
    }

    pub(crate) fn document(&self) -> Vec<u8> {
        self.encode()
    }

    pub(crate) fn id(&self) -> PolicyId {
        id_of(&self.document())
    }
}

fn id_of(document: &[u8]) -> PolicyId {
    sp_io::hashing::sha2_256(&[POLICY_DOMAIN, document].concat())
}

/// Accepts SEV-SNP and TDX with [`GOOD_MEASUREMENT`], not simulated, not debug.
pub(crate) fn prod_policy() -> MockPolicy {
    MockPolicy::pinned(&[TeeKind::SevSnp, TeeKind::Tdx])
}
/// Accepts only TDX with [`GOOD_MEASUREMENT`].
pub(crate) fn tdx_only_policy() -> MockPolicy {
    MockPolicy::pinned(&[TeeKind::Tdx])
}
/// Accepts simulated evidence with any measurement.
pub(crate) fn simulated_policy() -> MockPolicy {
    MockPolicy {
        measurements: Vec::new(),
        ..MockPolicy::pinned(&[TeeKind::Simulated])
    }
}
/// Accepts SEV-SNP and TDX with any measurement: registrable, useless for tier 3.
pub(crate) fn unpinned_policy() -> MockPolicy {
    MockPolicy {
        measurements: Vec::new(),
        ..prod_policy()
    }
}

/// The id of [`prod_policy`] (a genesis policy).
pub(crate) fn policy_prod() -> PolicyId {
    prod_policy().id()
}
/// The id of [`tdx_only_policy`] (a genesis policy).
pub(crate) fn policy_tdx_only() -> PolicyId {
    tdx_only_policy().id()
}
/// The id of [`simulated_policy`] (a genesis policy).
pub(crate) fn policy_simulated() -> PolicyId {
    simulated_policy().id()
}

/// The root key's pair.
pub(crate) fn root_pair() -> ed25519::Pair {
    ed25519::Pair::from_seed(&ROOT_SEED)
}

/// The platform key's pair.
pub(crate) fn platform_pair() -> ed25519::Pair {
    ed25519::Pair::from_seed(&PLATFORM_SEED)
}

/// Collateral: a platform key endorsed by a root until `not_after_ms`.
#[derive(Encode, Decode, Clone, Debug, PartialEq)]
pub(crate) struct MockCollateral {
    pub platform_key: [u8; 32],
    pub not_after_ms: u64,
    pub endorsement: [u8; 64],
}

/// The signed statement inside evidence.
#[derive(Encode, Decode, Clone, Debug, PartialEq)]
pub(crate) struct MockStatement {
    pub tee: TeeKind,
    pub key: [u8; 32],
    pub measurement: Measurement,
    pub nonce: [u8; 32],
    pub debug: bool,
    pub issued_at_ms: u64,
    /// GPU reports verified with the statement, their chip and versions.
    pub gpu_count: u32,
    pub gpu_chip: Vec<u8>,
    pub gpu_driver: Vec<u8>,
    pub gpu_vbios: Vec<u8>,
    pub sealing_key: Option<[u8; 32]>,
}

/// Evidence: a statement and the platform key's signature over it.
#[derive(Encode, Decode, Clone, Debug, PartialEq)]
pub(crate) struct MockEvidence {
    pub statement: MockStatement,
    pub signature: [u8; 64],
}

fn endorsement_message(platform_key: &[u8; 32], not_after_ms: u64) -> Vec<u8> {
    (ENDORSEMENT_DOMAIN, platform_key, not_after_ms).encode()
}

fn statement_message(statement: &MockStatement) -> Vec<u8> {
    (EVIDENCE_DOMAIN, statement).encode()
}

/// Collateral for `platform` signed by `root`.
pub(crate) fn make_collateral(
    root: &ed25519::Pair,
    platform: &ed25519::Pair,
    not_after_ms: u64,
) -> MockCollateral {
    let platform_key = platform.public().0;
    let endorsement = root
        .sign(&endorsement_message(&platform_key, not_after_ms))
        .0;
    MockCollateral {
        platform_key,
        not_after_ms,
        endorsement,
    }
}

/// Evidence for `statement` signed by `platform`.
pub(crate) fn make_evidence(platform: &ed25519::Pair, statement: MockStatement) -> MockEvidence {
    let signature = platform.sign(&statement_message(&statement)).0;
    MockEvidence {
        statement,
        signature,
    }
}

/// Verifies the test scheme. Each step can reject.
pub struct MockVerifier;

/// Decodes a canonical test policy document.
fn decode_policy(document: &[u8]) -> Result<MockPolicy, PolicyRejection> {
    use codec::DecodeAll;
    let policy =
        MockPolicy::decode_all(&mut &document[..]).map_err(|_| PolicyRejection::Malformed)?;
    let sorted = |codes: Vec<u8>| codes.windows(2).all(|w| w[0] < w[1]);
    if !sorted(policy.tees.iter().map(|t| t.code()).collect())
        || !policy.measurements.windows(2).all(|w| w[0] < w[1])
    {
        return Err(PolicyRejection::NotCanonical);
    }
    if policy.tees.is_empty() || policy.tees.contains(&TeeKind::Simulated) != policy.allow_simulated
    {
        return Err(PolicyRejection::InvalidValue);
    }
    Ok(policy)
}

impl AttestationVerifier for MockVerifier {
    /// The test scheme has no GPU items: its cost is its bytes.
    fn evidence_cost(evidence: &[u8], collateral: &[u8]) -> crate::EvidenceCost {
        crate::EvidenceCost {
            bytes: crate::len_u32_items(evidence.len().saturating_add(collateral.len())),
            ..Default::default()
        }
    }

    fn inspect_policy(document: &[u8]) -> Result<PolicySummary, PolicyRejection> {
        let policy = decode_policy(document)?;
        let hardware = policy.tees.iter().any(|t| *t != TeeKind::Simulated);
        let unpinned = (hardware && policy.measurements.is_empty()).then(|| {
            if policy.tees.contains(&TeeKind::SevSnp) {
                PolicyRejection::SnpMeasurementNotPinned
            } else {
                PolicyRejection::TdxMrtdNotPinned
            }
        });
        Ok(PolicySummary {
            id: id_of(document),
            tees: policy
                .tees
                .clone()
                .try_into()
                .map_err(|_| PolicyRejection::InvalidValue)?,
            unpinned,
            key_lifetime_ms: policy.key_lifetime_ms,
        })
    }

    fn verify(
        evidence: &[u8],
        collateral: &[u8],
        policy: &[u8],
        now_ms: u64,
    ) -> Result<VerifiedAttestation, AttestationFailure> {
        use codec::DecodeAll;
        // Step 1: parse.
        let evidence = MockEvidence::decode_all(&mut &evidence[..])
            .map_err(|_| AttestationFailure::Malformed)?;
        let collateral = MockCollateral::decode_all(&mut &collateral[..])
            .map_err(|_| AttestationFailure::Malformed)?;
        // Step 2: the collateral chains to the pinned root and is valid now.
        let root = root_pair().public();
        if !sp_io::crypto::ed25519_verify(
            &ed25519::Signature::from_raw(collateral.endorsement),
            &endorsement_message(&collateral.platform_key, collateral.not_after_ms),
            &root,
        ) {
            return Err(AttestationFailure::UntrustedSigner);
        }
        if now_ms > collateral.not_after_ms {
            return Err(AttestationFailure::OutsideValidity);
        }
        // Step 3: the platform key signed the statement.
        if !sp_io::crypto::ed25519_verify(
            &ed25519::Signature::from_raw(evidence.signature),
            &statement_message(&evidence.statement),
            &ed25519::Public::from_raw(collateral.platform_key),
        ) {
            return Err(AttestationFailure::BadSignature);
        }
        let statement = evidence.statement;
        let expires_at_ms = statement
            .issued_at_ms
            .saturating_add(EVIDENCE_LIFETIME_MS)
            .min(collateral.not_after_ms.saturating_add(1));
        if now_ms < statement.issued_at_ms || now_ms >= expires_at_ms {
            return Err(AttestationFailure::OutsideValidity);
        }
        // Step 4: appraise against the policy.
        let policy = decode_policy(policy).map_err(|_| AttestationFailure::UnknownPolicy)?;
        if statement.tee == TeeKind::Simulated && !policy.allow_simulated {
            return Err(AttestationFailure::SimulatedRejected);
        }
        if !policy.tees.contains(&statement.tee) {
            return Err(AttestationFailure::UnsupportedTee);
        }
        if statement.debug {
            return Err(AttestationFailure::DebugEnabled);
        }
        if !policy.measurements.is_empty() && !policy.measurements.contains(&statement.measurement)
        {
            return Err(AttestationFailure::MeasurementRejected);
        }
        if statement.gpu_count < policy.min_gpus {
            return Err(AttestationFailure::GpusRejected);
        }
        Ok(VerifiedAttestation {
            key: statement.key,
            tee: statement.tee,
            measurement: statement.measurement,
            nonce: statement.nonce,
            expires_at_ms,
            gpu_count: statement.gpu_count,
            gpu_chip: statement
                .gpu_chip
                .try_into()
                .map_err(|_| AttestationFailure::Malformed)?,
            gpu_driver: statement
                .gpu_driver
                .try_into()
                .map_err(|_| AttestationFailure::Malformed)?,
            gpu_vbios: statement
                .gpu_vbios
                .try_into()
                .map_err(|_| AttestationFailure::Malformed)?,
            sealing_key: statement.sealing_key,
        })
    }
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::attestation::BenchmarkHelper for MockVerifier {
    fn attestation(key: [u8; 32], nonce: [u8; 32], now_ms: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let statement = MockStatement {
            tee: TeeKind::SevSnp,
            key,
            measurement: GOOD_MEASUREMENT,
            nonce,
            debug: false,
            issued_at_ms: now_ms,
            gpu_count: 0,
            gpu_chip: Vec::new(),
            gpu_driver: Vec::new(),
            gpu_vbios: Vec::new(),
            sealing_key: None,
        };
        let evidence = make_evidence(&platform_pair(), statement);
        let collateral = make_collateral(
            &root_pair(),
            &platform_pair(),
            now_ms.saturating_add(30 * 24 * HOUR_MS),
        );
        (
            evidence.encode(),
            collateral.encode(),
            prod_policy().document(),
        )
    }

    fn policy_document(len: u32) -> Vec<u8> {
        // One measurement is 48 bytes; the rest of the document about 16.
        let n = usize::try_from(len.saturating_sub(16) / 48)
            .unwrap_or(0)
            .max(1);
        let measurements = (0..n)
            .map(|i| {
                let mut m = [0u8; 48];
                m[..8].copy_from_slice(&u64::try_from(i).unwrap().to_be_bytes());
                m
            })
            .collect();
        MockPolicy {
            measurements,
            ..MockPolicy::pinned(&[TeeKind::SevSnp])
        }
        .document()
    }

    fn evidence_bounds() -> crate::EvidenceCost {
        crate::EvidenceCost {
            gpus: 1,
            rims: 1,
            ocsp: 1,
            bytes: 0,
        }
    }

    fn evidence(_cost: crate::EvidenceCost) -> Option<crate::attestation::BenchmarkEvidence> {
        let now_ms = crate::Pallet::<Test>::now_ms();
        let (evidence, collateral, policy) = Self::attestation([7; 32], [9; 32], now_ms);
        Some(crate::attestation::BenchmarkEvidence {
            evidence,
            collateral,
            policy,
            now_ms,
            expected: None,
        })
    }
}

// ---- externalities ---------------------------------------------------------------------------

/// Starting balance of every funded account.
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// Accounts 1..=10 and the dispatcher hold [`INITIAL_BALANCE`]; block 1; clock at genesis;
/// a keystore for benchmarks.
pub(crate) fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    let balances: Vec<(u64, Balance)> = (1..=10).map(|a| (a, INITIAL_BALANCE)).collect();
    pallet_balances::GenesisConfig::<Test> {
        balances,
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .unwrap();
    pallet_sigil_market::GenesisConfig::<Test> {
        policies: vec![
            prod_policy().document(),
            tdx_only_policy().document(),
            simulated_policy().document(),
        ],
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(polkadot_sdk::sp_keystore::KeystoreExt::new(
        polkadot_sdk::sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| {
        System::set_block_number(1);
        NowMs::set(GENESIS_MS);
    });
    ext
}

/// Runs `test` in fresh externalities, then checks the pallet's invariants.
pub(crate) fn build_and_execute(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        Market::do_try_state().expect("invariants hold after the test");
    });
}
