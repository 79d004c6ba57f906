//! Benchmarks of every call, on its most expensive path.
//!
//! Keys are generated and used through the runtime keystore (`sp_io::crypto::ed25519_*`), and
//! hardware evidence comes from the runtime's [`BenchmarkHelper`], so the tier-3 benchmarks run
//! the configured verifier on evidence it accepts.

use crate::{
    AttestationVerifier, EvidenceCost,
    attestation::BenchmarkHelper,
    pallet::*,
    receipt::{
        EvidenceMode, EvidenceRef, NO_EVIDENCE, RECEIPT_VERSION, ReceiptBody, Usage,
        digest as receipt_digest_of, evidence_digest, fresh_quote_nonce, receipt_tee,
    },
    types::*,
};
use alloc::{vec, vec::Vec};
use codec::Encode;
use polkadot_sdk::{
    frame_benchmarking::v2::*,
    frame_support::{pallet_prelude::*, traits::fungible::Mutate},
    frame_system::{self, RawOrigin, pallet_prelude::BlockNumberFor},
    sp_core::{crypto::KeyTypeId, ed25519},
    sp_io,
    sp_runtime::traits::{Hash, One, Saturating, Zero},
};

const SEED: u32 = 0;
const KEY_TYPE: KeyTypeId = KeyTypeId(*b"sigl");
const SPEC: Digest = [0x5E; 32];
const RESULT: Digest = [0xAA; 32];

fn new_key() -> Ed25519Key {
    sp_io::crypto::ed25519_generate(KEY_TYPE, None).0
}

fn sign(key: &Ed25519Key, message: &[u8]) -> Result<Ed25519Signature, BenchmarkError> {
    sp_io::crypto::ed25519_sign(KEY_TYPE, &ed25519::Public::from_raw(*key), message)
        .map(|s| s.0)
        .ok_or(BenchmarkError::Stop("the keystore cannot sign"))
}

/// The price of benchmark jobs: enough for every provider of the largest quorum.
fn price<T: Config>() -> BalanceOf<T> {
    T::MinimumPrice::get().saturating_mul(BalanceOf::<T>::from(T::MaxQuorum::get().max(100)))
}

/// An account holding ten job prices, two offer bonds, a provider record's deposit and the
/// deposits of four attestation records of the largest size.
fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
    let who: T::AccountId = account(name, index, SEED);
    let largest_record =
        usize::try_from(T::MaxEvidenceLen::get().saturating_add(T::MaxCollateralLen::get()))
            .unwrap_or(usize::MAX);
    let amount =
        price::<T>()
            .saturating_mul(10u32.into())
            .saturating_add(T::MinProviderBond::get().saturating_mul(2u32.into()))
            .saturating_add(T::ProviderDeposit::get())
            .saturating_add(
                Pallet::<T>::attestation_deposit(largest_record).saturating_mul(4u32.into()),
            )
            .saturating_add(
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::Inspect<
                    T::AccountId,
                >>::minimum_balance(),
            );
    T::Currency::set_balance(&who, amount);
    who
}

/// An account holding ten job prices and the deposit of a `len`-byte policy.
fn policy_owner<T: Config>(len: u32) -> T::AccountId {
    let who = funded::<T>("owner", 0);
    let deposit = T::PolicyDepositPerByte::get()
        .saturating_mul(BalanceOf::<T>::from(len))
        .saturating_add(T::PolicyDepositBase::get());
    let balance = <T::Currency as polkadot_sdk::frame_support::traits::fungible::Inspect<
        T::AccountId,
    >>::balance(&who);
    T::Currency::set_balance(&who, balance.saturating_add(deposit));
    who
}

/// A registration anchor one block back (its hash recorded, as the chain does) and the nonce
/// `who`'s evidence must bind.
fn anchored_nonce<T: Config>(who: &T::AccountId) -> (BlockNumberFor<T>, [u8; 32]) {
    let mut now = frame_system::Pallet::<T>::block_number();
    if now.is_zero() {
        now = One::one();
        frame_system::Pallet::<T>::set_block_number(now);
    }
    let anchor = now.saturating_sub(One::one());
    if frame_system::Pallet::<T>::block_hash(anchor) == T::Hash::default() {
        frame_system::BlockHash::<T>::insert(anchor, T::Hashing::hash(b"sigil-bench-anchor"));
    }
    let nonce = crate::registration_nonce(
        frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
        frame_system::Pallet::<T>::block_hash(anchor).as_ref(),
        who,
    );
    (anchor, nonce)
}

/// The id of `document`, registered (without owner) if it is not yet.
fn ensure_policy<T: Config>(document: &[u8]) -> Result<PolicyId, BenchmarkError> {
    let id = T::AttestationVerifier::inspect_policy(document)
        .map_err(|_| BenchmarkError::Stop("the benchmark helper's policy is refused"))?
        .id;
    if !Policies::<T>::contains_key(id) {
        Pallet::<T>::insert_policy(document, None, Zero::zero())?;
    }
    Ok(id)
}

/// An attestation submission binding `key` for `who`'s registration, under the benchmark
/// helper's policy (registered).
fn registration_submission<T: Config>(
    who: &T::AccountId,
    key: Ed25519Key,
) -> Result<AttestationSubmission<T>, BenchmarkError> {
    let (anchor, nonce) = anchored_nonce::<T>(who);
    let (evidence, collateral, document) =
        T::BenchmarkHelper::attestation(key, nonce, Pallet::<T>::now_ms());
    let policy = ensure_policy::<T>(&document)?;
    let mut sub = submission::<T>(evidence, collateral, policy)?;
    sub.anchor = anchor;
    Ok(sub)
}

/// Registers `who` for every tier, with an attested key verified by the configured verifier;
/// returns its key and the policy of its attestation.
fn register<T: Config>(who: &T::AccountId) -> Result<(Ed25519Key, PolicyId), BenchmarkError> {
    let key = new_key();
    let proof = sign(&key, &crate::key_proof_message(who))?;
    let sub = registration_submission::<T>(who, key)?;
    let policy = sub.policy;
    Pallet::<T>::register_provider(
        RawOrigin::Signed(who.clone()).into(),
        key,
        proof,
        capabilities(),
        Some(sub),
    )?;
    Ok((key, policy))
}

fn capabilities() -> Capabilities {
    Capabilities {
        tiers: BoundedVec::truncate_from(vec![Tier::Signed, Tier::Quorum, Tier::Attested]),
        tee_kinds: BoundedVec::truncate_from(vec![
            TeeKind::SevSnp,
            TeeKind::Tdx,
            TeeKind::Simulated,
        ]),
        gpu_model: BoundedVec::truncate_from(b"NVIDIA H100 80GB HBM3".to_vec()),
    }
}

fn submission<T: Config>(
    evidence: Vec<u8>,
    collateral: Vec<u8>,
    policy: PolicyId,
) -> Result<AttestationSubmission<T>, BenchmarkError> {
    Ok(AttestationSubmission {
        evidence: evidence
            .try_into()
            .map_err(|_| BenchmarkError::Stop("benchmark evidence exceeds MaxEvidenceLen"))?,
        collateral: collateral
            .try_into()
            .map_err(|_| BenchmarkError::Stop("benchmark collateral exceeds MaxCollateralLen"))?,
        policy,
        anchor: Zero::zero(),
    })
}

fn job_id(index: u32) -> JobId {
    sp_io::hashing::sha2_256(&(b"bench-job", index).encode())
}

fn deadline<T: Config>() -> BlockNumberFor<T> {
    frame_system::Pallet::<T>::block_number().saturating_add(T::MaxJobDuration::get())
}

/// Funds job 0 with `terms` after `providers` offer (price 0, the minimum bond), so that the
/// chain binds them; `providers` must be all the offers there are, and as many as the job needs.
fn funded_bound_job<T: Config>(
    terms: TierTerms,
    providers: Vec<T::AccountId>,
) -> Result<JobId, BenchmarkError> {
    for who in &providers {
        offer::<T>(who)?;
    }
    let buyer = funded::<T>("buyer", 0);
    let id = job_id(0);
    Pallet::<T>::fund_job(
        RawOrigin::Signed(buyer).into(),
        id,
        SPEC,
        terms,
        ProviderClass::default(),
        price::<T>(),
        deadline::<T>(),
        One::one(),
    )
    .map_err(|e| e.error)?;
    ensure!(
        Jobs::<T>::get(id).map(|j| j.status) == Some(JobStatus::Bound),
        BenchmarkError::Stop("the chain did not bind the benchmark's providers")
    );
    Ok(id)
}

/// `who` offers at price 0, capacity `MaxQuorum`, the minimum bond.
fn offer<T: Config>(who: &T::AccountId) -> Result<(), BenchmarkError> {
    Pallet::<T>::set_offer(
        RawOrigin::Signed(who.clone()).into(),
        Zero::zero(),
        T::MaxQuorum::get(),
        T::MinProviderBond::get(),
    )?;
    Ok(())
}

/// `n` providers registered for tiers 1 and 2 (no evidence), offering; the cheapest setup for
/// filling the offer book.
fn offering<T: Config>(name: &'static str, n: u32) -> Result<Vec<T::AccountId>, BenchmarkError> {
    (0..n)
        .map(|i| {
            let who = funded::<T>(name, i);
            let key = new_key();
            let proof = sign(&key, &crate::key_proof_message(&who))?;
            let mut caps = capabilities();
            caps.tiers = BoundedVec::truncate_from(vec![Tier::Signed, Tier::Quorum]);
            Pallet::<T>::register_provider(
                RawOrigin::Signed(who.clone()).into(),
                key,
                proof,
                caps,
                None,
            )?;
            offer::<T>(&who)?;
            Ok(who)
        })
        .collect()
}

/// `n` registered providers.
fn providers<T: Config>(
    n: u32,
) -> Result<Vec<(T::AccountId, Ed25519Key, PolicyId)>, BenchmarkError> {
    (0..n)
        .map(|i| {
            let who = funded::<T>("provider", i);
            let (key, policy) = register::<T>(&who)?;
            Ok((who, key, policy))
        })
        .collect()
}

fn body<T: Config>(job_id: JobId, key: Ed25519Key, tier: Tier) -> ReceiptBody {
    let now = Pallet::<T>::now_ms();
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id,
        job_spec_hash: SPEC,
        provider: key,
        tier: tier.code(),
        result_commitment: RESULT,
        output_count: 16,
        started_at_ms: now,
        finished_at_ms: now,
        exit_code: 0,
        usage: Usage {
            wall_ms: 60_000,
            cpu_ms: 240_000,
            peak_memory_bytes: 1 << 34,
            gpu_ms: 60_000,
            gpu_energy_mj: 42_000_000,
        },
        evidence: NO_EVIDENCE,
    }
}

/// The encoded body and its signature.
fn signed<T: Config>(
    body: &ReceiptBody,
) -> Result<(BoundedVec<u8, T::MaxReceiptLen>, Ed25519Signature), BenchmarkError> {
    let bytes = BoundedVec::try_from(body.encode())
        .map_err(|_| BenchmarkError::Stop("MaxReceiptLen below the receipt size"))?;
    Ok((bytes, sign(&body.provider, &receipt_digest_of(body))?))
}

fn assert_settled<T: Config>(id: JobId) {
    assert_eq!(
        Jobs::<T>::get(id).map(|j| j.status),
        Some(JobStatus::Settled)
    );
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_provider() -> Result<(), BenchmarkError> {
        let caller = funded::<T>("provider", 0);
        let key = new_key();
        let proof = sign(&key, &crate::key_proof_message(&caller))?;
        let mut caps = capabilities();
        caps.tiers = BoundedVec::truncate_from(vec![Tier::Signed, Tier::Quorum]);

        #[extrinsic_call]
        register_provider(RawOrigin::Signed(caller.clone()), key, proof, caps, None);

        assert!(Providers::<T>::contains_key(&caller));
        Ok(())
    }

    #[benchmark]
    fn register_attested_provider() -> Result<(), BenchmarkError> {
        let caller = funded::<T>("provider", 0);
        let key = new_key();
        let proof = sign(&key, &crate::key_proof_message(&caller))?;
        let attestation = registration_submission::<T>(&caller, key)?;

        #[extrinsic_call]
        register_provider(
            RawOrigin::Signed(caller.clone()),
            key,
            proof,
            capabilities(),
            Some(attestation),
        );

        assert!(
            Providers::<T>::get(&caller)
                .and_then(|p| p.attested)
                .is_some()
        );
        Ok(())
    }

    #[benchmark]
    fn fund_job() -> Result<(), BenchmarkError> {
        let buyer = funded::<T>("buyer", 0);
        let id = job_id(0);
        let class = ProviderClass {
            tee_kinds: capabilities().tee_kinds,
            gpu_model: capabilities().gpu_model,
            gpu_count: 1,
        };
        let (_, _, document) = T::BenchmarkHelper::attestation([0; 32], [0; 32], 0);
        let policy = ensure_policy::<T>(&document)?;

        #[extrinsic_call]
        _(
            RawOrigin::Signed(buyer),
            id,
            SPEC,
            TierTerms::Attested {
                policy,
                fresh_quote: false,
            },
            class,
            price::<T>(),
            deadline::<T>(),
            One::one(),
        );

        // The book is empty: the job waits (the dispatch rule is weighed by `dispatch_job`).
        assert!(Waiting::<T>::contains_key(id));
        Ok(())
    }

    /// The dispatch rule over a book of `o` eligible offers, binding a tier-2 job to
    /// `min(o, MaxQuorum)` of them.
    #[benchmark]
    fn dispatch_job(o: Linear<1, { T::MaxOffers::get() }>) -> Result<(), BenchmarkError> {
        let n = o.min(T::MaxQuorum::get());
        let k = n.saturating_div(2).saturating_add(1);
        let buyer = funded::<T>("buyer", 0);
        let id = job_id(0);
        Pallet::<T>::fund_job(
            RawOrigin::Signed(buyer).into(),
            id,
            SPEC,
            TierTerms::Quorum { k, n },
            ProviderClass::default(),
            price::<T>(),
            deadline::<T>(),
            One::one(),
        )
        .map_err(|e| e.error)?;
        offering::<T>("provider", o)?;
        let caller = funded::<T>("caller", 0);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert_eq!(Jobs::<T>::get(id).map(|j| j.status), Some(JobStatus::Bound));
        Ok(())
    }

    /// A new offer into a book one short of full (the book is rewritten in full).
    #[benchmark]
    fn set_offer() -> Result<(), BenchmarkError> {
        offering::<T>("other", T::MaxOffers::get().saturating_sub(1))?;
        let (who, _, _) = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;

        #[extrinsic_call]
        _(
            RawOrigin::Signed(who.clone()),
            One::one(),
            T::MaxQuorum::get(),
            T::MinProviderBond::get(),
        );

        assert_eq!(
            OfferBook::<T>::get().len(),
            usize::try_from(T::MaxOffers::get()).unwrap_or(usize::MAX)
        );
        Ok(())
    }

    /// The last offer of a full book withdrawn.
    #[benchmark]
    fn withdraw_offer() -> Result<(), BenchmarkError> {
        let mut all = offering::<T>("other", T::MaxOffers::get())?;
        let who = all.pop().ok_or(BenchmarkError::Weightless)?;

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));

        assert!(Providers::<T>::get(&who).is_some_and(|p| p.offer.is_none()));
        Ok(())
    }

    /// A waiting tier-3 job cancelled (its policy's use given back).
    #[benchmark]
    fn cancel_job() -> Result<(), BenchmarkError> {
        let buyer = funded::<T>("buyer", 0);
        let id = job_id(0);
        let (_, _, document) = T::BenchmarkHelper::attestation([0; 32], [0; 32], 0);
        let policy = ensure_policy::<T>(&document)?;
        Pallet::<T>::fund_job(
            RawOrigin::Signed(buyer.clone()).into(),
            id,
            SPEC,
            TierTerms::Attested {
                policy,
                fresh_quote: false,
            },
            ProviderClass::default(),
            price::<T>(),
            deadline::<T>(),
            One::one(),
        )
        .map_err(|e| e.error)?;

        #[extrinsic_call]
        _(RawOrigin::Signed(buyer), id);

        assert_eq!(
            Jobs::<T>::get(id).map(|j| j.status),
            Some(JobStatus::Refunded)
        );
        Ok(())
    }

    /// `n` bound providers of a tier-2 job miss its response window: each is penalised and
    /// unbound; no other offer exists, so the job waits (the dispatch rule is weighed by
    /// `dispatch_job`).
    #[benchmark]
    fn reassign(n: Linear<1, { T::MaxQuorum::get() }>) -> Result<(), BenchmarkError> {
        let bound = offering::<T>("provider", n)?;
        let k = n.saturating_div(2).saturating_add(1);
        let id = funded_bound_job::<T>(TierTerms::Quorum { k, n }, bound)?;
        frame_system::Pallet::<T>::set_block_number(
            frame_system::Pallet::<T>::block_number().saturating_add(2u32.into()),
        );
        let caller = funded::<T>("caller", 0);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert!(Waiting::<T>::contains_key(id));
        Ok(())
    }

    #[benchmark]
    fn submit_receipt_signed() -> Result<(), BenchmarkError> {
        let provider = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;
        let id = funded_bound_job::<T>(TierTerms::Signed, vec![provider.0.clone()])?;
        let (bytes, signature) = signed::<T>(&body::<T>(id, provider.1, Tier::Signed))?;

        #[extrinsic_call]
        submit_receipt(RawOrigin::Signed(provider.0), id, bytes, signature, None);

        assert_settled::<T>(id);
        Ok(())
    }

    /// The receipt that completes a quorum of `k = n / 2 + 1` out of `n`, paying `k` providers
    /// and penalising the `n - k` that committed another result first.
    #[benchmark]
    fn submit_receipt_quorum(n: Linear<1, { T::MaxQuorum::get() }>) -> Result<(), BenchmarkError> {
        let all = providers::<T>(n)?;
        let k = n.saturating_div(2).saturating_add(1);
        let id = funded_bound_job::<T>(
            TierTerms::Quorum { k, n },
            all.iter().map(|p| p.0.clone()).collect(),
        )?;
        let bound = Bindings::<T>::get(id).ok_or(BenchmarkError::Weightless)?;
        // In binding order: `n - k` dissenters, then the quorum.
        let mut ordered: Vec<(T::AccountId, Ed25519Key)> = Vec::new();
        for who in bound.providers.iter() {
            let key = all
                .iter()
                .find(|p| p.0 == *who)
                .map(|p| p.1)
                .ok_or(BenchmarkError::Weightless)?;
            ordered.push((who.clone(), key));
        }
        let dissenters = usize::try_from(n.saturating_sub(k)).unwrap_or(0);
        let mut earlier = ordered.into_iter();
        for (who, key) in earlier.by_ref().take(dissenters) {
            let mut b = body::<T>(id, key, Tier::Quorum);
            b.result_commitment = [0xBB; 32];
            let (bytes, signature) = signed::<T>(&b)?;
            Pallet::<T>::submit_receipt(RawOrigin::Signed(who).into(), id, bytes, signature, None)
                .map_err(|e| e.error)?;
        }
        let last = earlier.next_back().ok_or(BenchmarkError::Weightless)?;
        for (who, key) in earlier {
            let (bytes, signature) = signed::<T>(&body::<T>(id, key, Tier::Quorum))?;
            Pallet::<T>::submit_receipt(RawOrigin::Signed(who).into(), id, bytes, signature, None)
                .map_err(|e| e.error)?;
        }
        let (bytes, signature) = signed::<T>(&body::<T>(id, last.1, Tier::Quorum))?;

        #[extrinsic_call]
        submit_receipt(RawOrigin::Signed(last.0), id, bytes, signature, None);

        assert_settled::<T>(id);
        Ok(())
    }

    #[benchmark]
    fn submit_receipt_attested_key() -> Result<(), BenchmarkError> {
        let (who, key, policy) = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;
        let attested = Providers::<T>::get(&who)
            .and_then(|p| p.attested)
            .ok_or(BenchmarkError::Weightless)?;
        let id = funded_bound_job::<T>(
            TierTerms::Attested {
                policy,
                fresh_quote: false,
            },
            vec![who.clone()],
        )?;
        let mut b = body::<T>(id, key, Tier::Attested);
        b.evidence = EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: receipt_tee(attested.tee),
            digest: attested.evidence_digest,
        };
        let (bytes, signature) = signed::<T>(&b)?;

        #[extrinsic_call]
        submit_receipt(RawOrigin::Signed(who), id, bytes, signature, None);

        assert_settled::<T>(id);
        Ok(())
    }

    /// A receipt whose evidence is verified in the extrinsic.
    #[benchmark]
    fn submit_receipt_fresh_quote() -> Result<(), BenchmarkError> {
        let (who, key, policy) = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;
        let attested = Providers::<T>::get(&who)
            .and_then(|p| p.attested)
            .ok_or(BenchmarkError::Weightless)?;
        let id = funded_bound_job::<T>(
            TierTerms::Attested {
                policy,
                fresh_quote: true,
            },
            vec![who.clone()],
        )?;
        let mut b = body::<T>(id, key, Tier::Attested);
        b.evidence = EvidenceRef {
            mode: EvidenceMode::FreshQuote,
            tee: receipt_tee(attested.tee),
            digest: [0; 32],
        };
        let (evidence, collateral, _) =
            T::BenchmarkHelper::attestation(key, fresh_quote_nonce(&b), Pallet::<T>::now_ms());
        b.evidence.digest = evidence_digest(&evidence);
        let fresh = submission::<T>(evidence, collateral, policy)?;
        let (bytes, signature) = signed::<T>(&b)?;

        #[extrinsic_call]
        submit_receipt(RawOrigin::Signed(who), id, bytes, signature, Some(fresh));

        assert_settled::<T>(id);
        Ok(())
    }

    #[benchmark]
    fn refund_expired(n: Linear<1, { T::MaxQuorum::get() }>) -> Result<(), BenchmarkError> {
        let all = providers::<T>(n)?;
        let k = n.saturating_div(2).saturating_add(1);
        let id = funded_bound_job::<T>(
            TierTerms::Quorum { k, n },
            all.into_iter().map(|p| p.0).collect(),
        )?;
        frame_system::Pallet::<T>::set_block_number(deadline::<T>().saturating_add(One::one()));
        let caller = funded::<T>("caller", 0);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert_eq!(
            Jobs::<T>::get(id).map(|j| j.status),
            Some(JobStatus::Refunded)
        );
        Ok(())
    }

    /// A provider whose offer is the last of a full book.
    #[benchmark]
    fn deregister() -> Result<(), BenchmarkError> {
        offering::<T>("other", T::MaxOffers::get().saturating_sub(1))?;
        let (who, _, _) = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;
        offer::<T>(&who)?;

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));

        assert!(!Providers::<T>::contains_key(&who));
        Ok(())
    }

    /// The verifier alone, on evidence carrying `g` GPU reports, `r` RIMs, `o` OCSP responses
    /// and `b` more bytes, each as costly as the benchmark helper makes it (for the runtime:
    /// genuine TDX and H100 evidence, with adversarial copies that fail as late as possible).
    /// `r` starts at 1: the helper may put the `b` bytes into a RIM, the costliest bytes to
    /// read. The calls that verify evidence add this, at the counts the verifier reads from
    /// their evidence, to their own benchmark, which runs with the helper's cheapest evidence.
    #[benchmark]
    fn verify_evidence(
        g: Linear<0, { T::BenchmarkHelper::evidence_bounds().gpus }>,
        r: Linear<1, { T::BenchmarkHelper::evidence_bounds().rims }>,
        o: Linear<0, { T::BenchmarkHelper::evidence_bounds().ocsp }>,
        b: Linear<0, { T::MaxEvidenceLen::get().saturating_add(T::MaxCollateralLen::get()) }>,
    ) -> Result<(), BenchmarkError> {
        let e = T::BenchmarkHelper::evidence(EvidenceCost {
            gpus: g,
            rims: r,
            ocsp: o,
            bytes: b,
        })
        .ok_or(BenchmarkError::Stop(
            "the benchmark helper supplies no evidence to verify",
        ))?;
        let outcome;

        #[block]
        {
            outcome =
                T::AttestationVerifier::verify(&e.evidence, &e.collateral, &e.policy, e.now_ms);
        }

        assert_eq!(outcome.err(), e.expected);
        Ok(())
    }

    /// A policy document of `l` bytes (or the largest the helper makes below it).
    #[benchmark]
    fn register_policy(l: Linear<256, { T::MaxPolicyLen::get() }>) -> Result<(), BenchmarkError> {
        let caller = policy_owner::<T>(l);
        let document = T::BenchmarkHelper::policy_document(l);
        let id = T::AttestationVerifier::inspect_policy(&document)
            .map_err(|_| BenchmarkError::Stop("the benchmark helper's policy is refused"))?
            .id;
        let document = BoundedVec::try_from(document)
            .map_err(|_| BenchmarkError::Stop("policy document exceeds MaxPolicyLen"))?;

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), document);

        assert!(Policies::<T>::contains_key(id));
        Ok(())
    }

    #[benchmark]
    fn retire_policy() -> Result<(), BenchmarkError> {
        let caller = policy_owner::<T>(T::MaxPolicyLen::get());
        let document = T::BenchmarkHelper::policy_document(T::MaxPolicyLen::get());
        let bounded = BoundedVec::try_from(document.clone())
            .map_err(|_| BenchmarkError::Stop("policy document exceeds MaxPolicyLen"))?;
        Pallet::<T>::register_policy(RawOrigin::Signed(caller.clone()).into(), bounded)?;
        let id = T::AttestationVerifier::inspect_policy(&document)
            .map_err(|_| BenchmarkError::Weightless)?
            .id;

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert!(!Policies::<T>::contains_key(id));
        Ok(())
    }

    /// A tier-1/2 provider with an open job rotates its key: the old key is kept as retiring.
    /// (Tier-3 rotations add an attested registration and their evidence's verification.)
    #[benchmark]
    fn rotate_key() -> Result<(), BenchmarkError> {
        let mut who = offering::<T>("provider", 1)?;
        let who = who.pop().ok_or(BenchmarkError::Weightless)?;
        funded_bound_job::<T>(TierTerms::Signed, vec![who.clone()])?;
        let key = new_key();
        let proof = sign(&key, &crate::key_proof_message(&who))?;

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), key, proof, None);

        let info = Providers::<T>::get(&who).ok_or(BenchmarkError::Weightless)?;
        assert_eq!(info.signing_key, key);
        assert!(info.retiring.is_some());
        Ok(())
    }

    /// An expired record of the largest size whose key's provider is registered (on other
    /// evidence), so that every check reads.
    #[benchmark]
    fn prune_attestation() -> Result<(), BenchmarkError> {
        let (who, key, policy) = providers::<T>(1)?.pop().ok_or(BenchmarkError::Weightless)?;
        let evidence = BoundedVec::truncate_from(vec![
            0xE5;
            usize::try_from(T::MaxEvidenceLen::get())
                .unwrap_or(0)
        ]);
        let collateral = BoundedVec::truncate_from(vec![
            0xC0;
            usize::try_from(T::MaxCollateralLen::get())
                .unwrap_or(0)
        ]);
        let deposit =
            Pallet::<T>::attestation_deposit(evidence.len().saturating_add(collateral.len()));
        <T::Currency as polkadot_sdk::frame_support::traits::fungible::MutateHold<
            T::AccountId,
        >>::hold(&HoldReason::AttestationDeposit.into(), &who, deposit)?;
        let digest = evidence_digest(&evidence);
        Attestations::<T>::insert(
            digest,
            AttestationRecord {
                evidence,
                collateral,
                policy,
                key,
                tee: TeeKind::Tdx,
                measurement: [0; 48],
                nonce: [0; 32],
                verified_at_ms: 0,
                expires_at_ms: 0,
                depositor: who.clone(),
                deposit,
            },
        );

        #[extrinsic_call]
        _(RawOrigin::Signed(who), digest);

        assert!(!Attestations::<T>::contains_key(digest));
        Ok(())
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
