//! The pallet's logic behind the dispatchables: registration, funding, binding, receipt
//! verification, settlement, refunds and the invariant checks.

use crate::{
    AttestationVerifier, VerifiedAttestation, ed25519_verify, len_u32_items, pallet::*, receipt,
    types::*, weights::WeightInfo,
};
use alloc::vec::Vec;
use polkadot_sdk::{
    frame_support::{
        dispatch::{DispatchResultWithPostInfo, PostDispatchInfo},
        ensure,
        pallet_prelude::*,
        traits::{
            UnixTime,
            fungible::MutateHold,
            tokens::{Fortitude, Precision, Restriction},
        },
    },
    frame_system::{self, pallet_prelude::BlockNumberFor},
    sp_runtime::traits::{CheckedAdd, CheckedDiv, CheckedMul, CheckedSub, Saturating, Zero},
};

/// Where an offer stands in the dispatch order: its price, then its distance from the rotation
/// cursor in the offer book.
type Rank<B> = (B, u32);

impl<T: Config> Pallet<T> {
    /// The current Unix time in milliseconds.
    pub fn now_ms() -> u64 {
        u64::try_from(T::UnixTime::now().as_millis()).unwrap_or(u64::MAX)
    }

    fn hold_reason() -> T::RuntimeHoldReason {
        HoldReason::JobEscrow.into()
    }

    /// The weight charged before dispatch: the dearest receipt path (with fresh evidence, its
    /// verification priced by what it carries).
    pub(crate) fn submit_receipt_max_weight(fresh: Option<&AttestationSubmission<T>>) -> Weight {
        let others = T::WeightInfo::submit_receipt_signed()
            .max(T::WeightInfo::submit_receipt_quorum(T::MaxQuorum::get()))
            .max(T::WeightInfo::submit_receipt_attested_key());
        let path = match fresh {
            Some(f) => others.max(Self::submit_receipt_fresh_quote_weight(f)),
            None => others,
        };
        path.saturating_add(Self::key_drop_weight(T::MaxQuorum::get()))
    }

    /// What closing a job may add for `n` bound providers whose rotated-away key it was the
    /// last job of (not in the benchmarked paths): per key, its [`SigningKeys`] entry removed
    /// and its policy's user count written.
    pub(crate) fn key_drop_weight(n: u32) -> Weight {
        T::DbWeight::get()
            .reads_writes(1, 2)
            .saturating_mul(u64::from(n))
    }

    /// `rotate_key` as benchmarked (the old key kept as retiring), plus the old key's removal
    /// when no job is open under it.
    pub(crate) fn rotate_key_weight() -> Weight {
        T::WeightInfo::rotate_key().saturating_add(T::DbWeight::get().writes(1))
    }

    /// A fresh-quote receipt: the pallet's work, benchmarked with the benchmark helper's
    /// evidence, plus the verification of this evidence.
    fn submit_receipt_fresh_quote_weight(fresh: &AttestationSubmission<T>) -> Weight {
        T::WeightInfo::submit_receipt_fresh_quote().saturating_add(Self::evidence_weight(fresh))
    }

    /// The verification of `submission`, priced before dispatch by what it carries.
    ///
    /// The verifier reads the counts from the evidence itself
    /// ([`AttestationVerifier::evidence_cost`]: a walk over length prefixes, no cryptography)
    /// rather than trusting counts declared in the call: the call's encoding stays as it is,
    /// the pre-scan is linear in the item counts (bounded by the verifier's caps) and never in
    /// the bytes, and what it cannot read is charged at the caps. Counts declared by the caller
    /// would need the same reading after decoding to be checked, and a typed refusal when
    /// exceeded, for no saving.
    pub(crate) fn evidence_weight(submission: &AttestationSubmission<T>) -> Weight {
        let c = T::AttestationVerifier::evidence_cost(&submission.evidence, &submission.collateral);
        T::WeightInfo::verify_evidence(c.gpus, c.rims, c.ocsp, c.bytes)
    }

    /// The registered policy `id`, refused unless it may serve tier 3.
    fn usable_policy(id: &PolicyId) -> Result<PolicyRecord<T>, DispatchError> {
        let record = Policies::<T>::get(id).ok_or(Error::<T>::UnknownPolicy)?;
        if let Some(reason) = record.unpinned {
            return Err(Error::<T>::PolicyRejected { reason }.into());
        }
        Ok(record)
    }

    /// Counts one more (`up`) or one fewer user of policy `id`.
    fn count_policy_user(id: &PolicyId, up: bool) {
        Policies::<T>::mutate(id, |record| {
            if let Some(record) = record {
                record.users = if up {
                    record.users.saturating_add(1)
                } else {
                    record.users.saturating_sub(1)
                };
            }
        });
    }

    /// Checks a registration anchor and returns the nonce the evidence must bind for `who`.
    fn expected_registration_nonce(
        who: &T::AccountId,
        anchor: BlockNumberFor<T>,
    ) -> Result<[u8; 32], DispatchError> {
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(
            anchor < now && now.saturating_sub(anchor) <= T::RegistrationAnchorWindow::get(),
            Error::<T>::BadAnchor
        );
        let anchor_hash = frame_system::Pallet::<T>::block_hash(anchor);
        ensure!(anchor_hash != T::Hash::default(), Error::<T>::BadAnchor);
        let genesis_hash = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
        Ok(crate::registration_nonce(
            genesis_hash.as_ref(),
            anchor_hash.as_ref(),
            who,
        ))
    }

    /// The expiry of a key attested now by `verified` under `policy`: the evidence's own, the
    /// policy's key lifetime and the chain's cap, whichever comes first.
    fn attested_key_expiry(
        verified: &VerifiedAttestation,
        policy: &PolicyRecord<T>,
        now_ms: u64,
    ) -> u64 {
        let mut expiry = verified
            .expires_at_ms
            .min(now_ms.saturating_add(T::MaxAttestationValidityMs::get()));
        if let Some(lifetime) = policy.key_lifetime_ms {
            expiry = expiry.min(now_ms.saturating_add(lifetime));
        }
        expiry
    }

    /// The storage deposit of an attestation record carrying `bytes` of evidence and
    /// collateral.
    pub(crate) fn attestation_deposit(bytes: usize) -> BalanceOf<T> {
        T::AttestationDepositPerByte::get()
            .saturating_mul(BalanceOf::<T>::from(len_u32_items(bytes)))
            .saturating_add(T::AttestationDepositBase::get())
    }

    /// The checks a key to register or rotate to passes before its evidence is verified:
    /// evidence exactly when the provider serves tier 3, proof of possession over `who`, and
    /// no provider holding the key.
    pub(crate) fn ensure_new_key(
        who: &T::AccountId,
        capabilities: &Capabilities,
        signing_key: &Ed25519Key,
        key_proof: &Ed25519Signature,
        has_attestation: bool,
    ) -> DispatchResult {
        let tier3 = capabilities.tiers.contains(&Tier::Attested);
        ensure!(!tier3 || has_attestation, Error::<T>::AttestationRequired);
        ensure!(tier3 || !has_attestation, Error::<T>::UnexpectedAttestation);
        ensure!(
            ed25519_verify(signing_key, &crate::key_proof_message(who), key_proof),
            Error::<T>::BadKeyProof
        );
        ensure!(
            !SigningKeys::<T>::contains_key(signing_key),
            Error::<T>::KeyInUse
        );
        Ok(())
    }

    /// The attested key `verified` (stored under `evidence_digest`) gives, under `policy`.
    fn attested_key(
        verified: &VerifiedAttestation,
        record: &PolicyRecord<T>,
        policy: PolicyId,
        evidence_digest: Digest,
        now_ms: u64,
        previous: Option<PreviousEvidence>,
    ) -> AttestedKey {
        AttestedKey {
            tee: verified.tee,
            measurement: verified.measurement,
            policy,
            evidence_digest,
            verified_at_ms: now_ms,
            expires_at_ms: Self::attested_key_expiry(verified, record, now_ms),
            gpu_count: verified.gpu_count,
            gpu_chip: verified.gpu_chip.clone(),
            gpu_driver: verified.gpu_driver.clone(),
            gpu_vbios: verified.gpu_vbios.clone(),
            sealing_key: verified.sealing_key,
            previous,
        }
    }

    /// Verifies `submission` under the registered policy `policy` and records it in
    /// [`Attestations`], holding its storage deposit on `payer` (a record already stored is
    /// not stored or paid for again).
    fn verify_attestation(
        payer: &T::AccountId,
        submission: AttestationSubmission<T>,
        policy: PolicyId,
        now_ms: u64,
    ) -> Result<(VerifiedAttestation, Digest), DispatchError> {
        let record = Policies::<T>::get(policy).ok_or(Error::<T>::UnknownPolicy)?;
        let verified = T::AttestationVerifier::verify(
            &submission.evidence,
            &submission.collateral,
            &record.document,
            now_ms,
        )
        .map_err(|reason| Error::<T>::AttestationRejected { reason })?;
        ensure!(
            verified.expires_at_ms > now_ms,
            Error::<T>::AttestationExpired
        );
        let digest = receipt::evidence_digest(&submission.evidence);
        if !Attestations::<T>::contains_key(digest) {
            let deposit = Self::attestation_deposit(
                submission
                    .evidence
                    .len()
                    .saturating_add(submission.collateral.len()),
            );
            T::Currency::hold(&HoldReason::AttestationDeposit.into(), payer, deposit)?;
            Attestations::<T>::insert(
                digest,
                AttestationRecord {
                    evidence: submission.evidence,
                    collateral: submission.collateral,
                    policy,
                    key: verified.key,
                    tee: verified.tee,
                    measurement: verified.measurement,
                    nonce: verified.nonce,
                    verified_at_ms: now_ms,
                    expires_at_ms: verified.expires_at_ms,
                    depositor: payer.clone(),
                    deposit,
                },
            );
        }
        Ok((verified, digest))
    }

    /// Verifies the evidence of a key `who` registers or rotates to: under the policy it
    /// names (usable for tier 3), binding `signing_key` and `who`'s registration nonce of its
    /// anchor, from a TEE kind in `capabilities`. Stores the record (deposit on `who`) and
    /// counts the key as its policy's user.
    fn attest_new_key(
        who: &T::AccountId,
        signing_key: Ed25519Key,
        capabilities: &Capabilities,
        attestation: Option<AttestationSubmission<T>>,
    ) -> Result<Option<AttestedKey>, DispatchError> {
        let Some(submission) = attestation else {
            return Ok(None);
        };
        let now_ms = Self::now_ms();
        let policy = submission.policy;
        let record = Self::usable_policy(&policy)?;
        let nonce = Self::expected_registration_nonce(who, submission.anchor)?;
        let (verified, evidence_digest) =
            Self::verify_attestation(who, submission, policy, now_ms)?;
        ensure!(verified.key == signing_key, Error::<T>::AttestedKeyMismatch);
        ensure!(verified.nonce == nonce, Error::<T>::StaleNonce);
        ensure!(
            capabilities.tee_kinds.contains(&verified.tee),
            Error::<T>::TeeKindNotOffered
        );
        Self::count_policy_user(&policy, true);
        Ok(Some(Self::attested_key(
            &verified,
            &record,
            policy,
            evidence_digest,
            now_ms,
            None,
        )))
    }

    pub(crate) fn do_register_provider(
        who: T::AccountId,
        signing_key: Ed25519Key,
        capabilities: Capabilities,
        attestation: Option<AttestationSubmission<T>>,
    ) -> DispatchResult {
        let attested = Self::attest_new_key(&who, signing_key, &capabilities, attestation)?;
        let tiers = capabilities.tiers.clone();
        let event_attested = attested.as_ref().map(|a| (a.tee, a.expires_at_ms));
        let deposit = T::ProviderDeposit::get();
        T::Currency::hold(&HoldReason::ProviderDeposit.into(), &who, deposit)?;
        SigningKeys::<T>::insert(signing_key, &who);
        Providers::<T>::insert(
            &who,
            ProviderInfo {
                signing_key,
                capabilities,
                attested,
                registered_at: frame_system::Pallet::<T>::block_number(),
                active_jobs: 0,
                offer: None,
                deposit,
                retiring: None,
            },
        );
        Self::deposit_event(Event::ProviderRegistered {
            provider: who,
            signing_key,
            tiers,
            attested: event_attested,
        });
        Ok(())
    }

    pub(crate) fn do_refresh_attestation(
        who: T::AccountId,
        mut info: ProviderInfo<T>,
        submission: AttestationSubmission<T>,
    ) -> DispatchResult {
        let current = info.attested.clone().ok_or(Error::<T>::NotAttested)?;
        ensure!(
            submission.policy == current.policy,
            Error::<T>::PolicyMismatch
        );
        let digest = receipt::evidence_digest(&submission.evidence);
        ensure!(
            digest != current.evidence_digest
                && current.previous.is_none_or(|p| p.evidence_digest != digest),
            Error::<T>::EvidenceNotNew
        );
        let record = Self::usable_policy(&current.policy)?;
        let nonce = Self::expected_registration_nonce(&who, submission.anchor)?;
        let now_ms = Self::now_ms();
        let (verified, evidence_digest) =
            Self::verify_attestation(&who, submission, current.policy, now_ms)?;
        ensure!(
            verified.key == info.signing_key,
            Error::<T>::AttestedKeyMismatch
        );
        ensure!(verified.nonce == nonce, Error::<T>::StaleNonce);
        ensure!(
            Attestations::<T>::get(current.evidence_digest).is_none_or(|r| r.nonce != nonce),
            Error::<T>::EvidenceNotNew
        );
        ensure!(
            info.capabilities.tee_kinds.contains(&verified.tee),
            Error::<T>::TeeKindNotOffered
        );
        // The replaced evidence stays usable for receipts signed before the refresh; anything
        // older is dropped.
        let previous = Some(PreviousEvidence {
            evidence_digest: current.evidence_digest,
            expires_at_ms: current.expires_at_ms,
        });
        let attested = Self::attested_key(
            &verified,
            &record,
            current.policy,
            evidence_digest,
            now_ms,
            previous,
        );
        let expires_at_ms = attested.expires_at_ms;
        info.attested = Some(attested);
        Providers::<T>::insert(&who, info);
        Self::deposit_event(Event::AttestationRefreshed {
            provider: who,
            evidence_digest,
            expires_at_ms,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_fund_job(
        buyer: T::AccountId,
        job_id: JobId,
        spec_hash: Digest,
        terms: TierTerms,
        class: ProviderClass,
        price: BalanceOf<T>,
        deadline: BlockNumberFor<T>,
        response_blocks: BlockNumberFor<T>,
    ) -> DispatchResultWithPostInfo {
        let total = TotalEscrow::<T>::get()
            .checked_add(&price)
            .ok_or(Error::<T>::Overflow)?;
        if let TierTerms::Attested { policy, .. } = terms {
            let record = Self::usable_policy(&policy)?;
            ensure!(
                class.tee_kinds.is_empty()
                    || class.tee_kinds.iter().any(|t| record.tees.contains(t)),
                Error::<T>::TeeKindMismatch
            );
            Self::count_policy_user(&policy, true);
        }
        T::Currency::hold(&Self::hold_reason(), &buyer, price)?;
        TotalEscrow::<T>::put(total);
        let job = Job {
            buyer: buyer.clone(),
            spec_hash,
            terms,
            class,
            price,
            deadline,
            funded_at: frame_system::Pallet::<T>::block_number(),
            response_blocks,
            status: JobStatus::Funded,
        };
        Jobs::<T>::insert(job_id, &job);
        Waiting::<T>::insert(job_id, ());
        Self::deposit_event(Event::JobFunded {
            job_id,
            buyer,
            tier: terms.tier(),
            price,
            deadline,
        });
        let (bound, scanned) = Self::try_dispatch(job_id, job);
        if !bound {
            Self::deposit_event(Event::JobWaiting { job_id });
        }
        Ok(
            Some(T::WeightInfo::fund_job().saturating_add(T::WeightInfo::dispatch_job(scanned)))
                .into(),
        )
    }

    /// Whether `info` may serve `job` (offer, capacity and penalties aside): it serves the
    /// tier and the job's class; for tier 3 it holds an unexpired key attested under the job's
    /// policy, in an accepted TEE, with the verified GPUs the class asks for.
    fn eligible(job: &Job<T>, info: &ProviderInfo<T>, now_ms: u64) -> bool {
        if !info.capabilities.tiers.contains(&job.terms.tier()) {
            return false;
        }
        let class = &job.class;
        match (job.terms, &info.attested) {
            (TierTerms::Attested { policy, .. }, Some(attested)) => {
                Self::gpus_satisfy(class, attested.gpu_count, &attested.gpu_chip)
                    && attested.expires_at_ms > now_ms
                    && attested.policy == policy
                    && (class.tee_kinds.is_empty() || class.tee_kinds.contains(&attested.tee))
            }
            (TierTerms::Attested { .. }, None) => false,
            (TierTerms::Signed | TierTerms::Quorum { .. }, _) => {
                (class.gpu_model.is_empty() || class.gpu_model == info.capabilities.gpu_model)
                    && (class.tee_kinds.is_empty()
                        || class
                            .tee_kinds
                            .iter()
                            .any(|t| info.capabilities.tee_kinds.contains(t)))
            }
        }
    }

    /// Whether verified GPUs (`count` reports of `chip`) meet a tier-3 job's class.
    fn gpus_satisfy(class: &ProviderClass, count: u32, chip: &GpuChip) -> bool {
        count >= class.gpu_count
            && (class.gpu_model.is_empty() || gpu_model_matches_chip(&class.gpu_model, chip))
    }

    /// The least a provider must accept per job to serve `job`: the price, or for tier 2 the
    /// price over `k` (each settling provider's share).
    fn pay_per_provider(job: &Job<T>) -> BalanceOf<T> {
        match job.terms {
            TierTerms::Quorum { k, .. } => job
                .price
                .checked_div(&BalanceOf::<T>::from(k.max(1)))
                .unwrap_or_else(Zero::zero),
            TierTerms::Signed | TierTerms::Attested { .. } => job.price,
        }
    }

    /// Runs the dispatch rule for `job` (status `Funded`): binds the providers it still needs
    /// when enough eligible offers exist, and returns whether it did and how many offers it
    /// read. A job it cannot bind stays waiting, unchanged.
    pub(crate) fn try_dispatch(job_id: JobId, job: Job<T>) -> (bool, u32) {
        let mut binding = Self::binding_of(job_id);
        let need = job
            .terms
            .provider_count()
            .saturating_sub(len_u32_items(binding.providers.len()));
        let penalised = Penalties::<T>::get(job_id);
        if penalised.is_full() {
            // Nobody is bound to a job that exhausted its penalty record: it waits for its
            // deadline (and refund), so the record stays complete.
            return (false, 0);
        }
        let ceiling = Self::pay_per_provider(&job);
        let book = OfferBook::<T>::get();
        let now_ms = Self::now_ms();
        let mut scanned = 0u32;
        // Eligible offers in book order, so cheapest first.
        let mut eligible: Vec<(BalanceOf<T>, T::AccountId)> = Vec::new();
        let mut keys: Vec<(T::AccountId, Ed25519Key)> = Vec::new();
        for (price, provider) in book.iter() {
            // The book is sorted by price: nothing after this offer is cheap enough.
            if *price > ceiling {
                break;
            }
            if binding.providers.contains(provider)
                || penalised.iter().any(|p| p.provider == *provider)
            {
                continue;
            }
            scanned = scanned.saturating_add(1);
            let Some(info) = Providers::<T>::get(provider) else {
                continue;
            };
            let free = info
                .offer
                .as_ref()
                .is_some_and(|o| info.active_jobs < o.capacity);
            if !free || !Self::eligible(&job, &info, now_ms) {
                continue;
            }
            eligible.push((*price, provider.clone()));
            keys.push((provider.clone(), info.signing_key));
        }
        if len_u32_items(eligible.len()) < need {
            return (false, scanned);
        }
        let ranked = Self::rotate(eligible, DispatchCursor::<T>::get());
        for (_, provider) in ranked.into_iter().take(usize::try_from(need).unwrap_or(0)) {
            let Some(key) = keys.iter().find(|(p, _)| *p == provider).map(|(_, k)| *k) else {
                return (false, scanned);
            };
            if binding.providers.try_push(provider).is_err() || binding.keys.try_push(key).is_err()
            {
                return (false, scanned);
            }
        }
        Self::bind_providers(job_id, job, binding, need);
        DispatchCursor::<T>::mutate(|c| *c = c.wrapping_add(1));
        (true, scanned)
    }

    /// Orders eligible offers (given cheapest first, equal prices in book order) for binding:
    /// by price, and within each run of equal prices from position `cursor mod run length`
    /// onwards, wrapping, so that equally priced offers take turns as the cursor moves on.
    fn rotate(
        eligible: Vec<(BalanceOf<T>, T::AccountId)>,
        cursor: u32,
    ) -> Vec<(Rank<BalanceOf<T>>, T::AccountId)> {
        let mut ranked = Vec::with_capacity(eligible.len());
        let mut start = 0usize;
        while let Some((price, _)) = eligible.get(start) {
            let run = eligible
                .iter()
                .skip(start)
                .take_while(|(p, _)| p == price)
                .count();
            let len = len_u32_items(run).max(1);
            let shift = cursor.checked_rem(len).unwrap_or(0);
            for (pos, (p, provider)) in eligible.iter().skip(start).take(run).enumerate() {
                let distance = len_u32_items(pos)
                    .saturating_add(len)
                    .saturating_sub(shift)
                    .checked_rem(len)
                    .unwrap_or(0);
                ranked.push(((*p, distance), provider.clone()));
            }
            start = start.saturating_add(run.max(1));
        }
        ranked.sort_by_key(|a| a.0);
        ranked
    }

    /// Records the binding of `job` to `binding.providers`, the last `added` of them new.
    fn bind_providers(job_id: JobId, mut job: Job<T>, mut binding: Binding<T>, added: u32) {
        let first_new = binding
            .providers
            .len()
            .saturating_sub(usize::try_from(added).unwrap_or(0));
        for provider in binding.providers.iter().skip(first_new) {
            Self::count_active_job(provider, true, None);
        }
        if let TierTerms::Attested { policy, .. } = job.terms {
            Self::count_policy_user(&policy, false);
        }
        job.status = JobStatus::Bound;
        Jobs::<T>::insert(job_id, job);
        Waiting::<T>::remove(job_id);
        binding.bound_at = frame_system::Pallet::<T>::block_number();
        let providers = binding.providers.clone();
        Bindings::<T>::insert(job_id, binding);
        Self::deposit_event(Event::JobBound { job_id, providers });
    }

    /// `on_idle`: tries waiting jobs in [`Waiting`]'s order from where the last pass stopped,
    /// while `remaining` pays for a full dispatch and at most `MaxDispatchPerBlock` times.
    /// Expired jobs are only skipped: their escrow returns through `refund_expired`.
    pub(crate) fn dispatch_waiting(remaining: Weight) -> Weight {
        let per_try = T::WeightInfo::dispatch_job(T::MaxOffers::get())
            .saturating_add(T::DbWeight::get().reads_writes(2, 1));
        let mut used = T::DbWeight::get().reads_writes(1, 1);
        if !remaining.all_gte(used.saturating_add(per_try)) {
            return Weight::zero();
        }
        let cap = usize::try_from(T::MaxDispatchPerBlock::get()).unwrap_or(0);
        let mut batch: Vec<JobId> = match WaitingCursor::<T>::get() {
            Some(last) => Waiting::<T>::iter_keys_from(Waiting::<T>::hashed_key_for(last))
                .take(cap)
                .collect(),
            None => Waiting::<T>::iter_keys().take(cap).collect(),
        };
        if batch.len() < cap {
            // Wrap around to the start of the map for the rest of this block's tries.
            let rest = cap.saturating_sub(batch.len());
            for job_id in Waiting::<T>::iter_keys().take(rest) {
                if !batch.contains(&job_id) {
                    batch.push(job_id);
                }
            }
        }
        let now = frame_system::Pallet::<T>::block_number();
        let mut last = None;
        for job_id in batch {
            if !remaining.all_gte(used.saturating_add(per_try)) {
                break;
            }
            used = used.saturating_add(per_try);
            last = Some(job_id);
            match Jobs::<T>::get(job_id) {
                Some(job) if job.status == JobStatus::Funded && now <= job.deadline => {
                    Self::try_dispatch(job_id, job);
                }
                Some(job) if job.status == JobStatus::Funded => {}
                // Not waiting any more (bound or closed): drop the stale entry.
                _ => Waiting::<T>::remove(job_id),
            }
        }
        match last {
            Some(job_id) => WaitingCursor::<T>::put(job_id),
            None => WaitingCursor::<T>::kill(),
        }
        used
    }

    /// Moves `share` of `provider`'s bond to `job`'s buyer, records the penalty and drops the
    /// offer from the book if its bond falls below the minimum. Returns the amount moved.
    fn penalise(
        job_id: JobId,
        job: &Job<T>,
        provider: &T::AccountId,
        reason: PenaltyReason,
        share: polkadot_sdk::sp_runtime::Perbill,
    ) -> BalanceOf<T> {
        let mut amount = Zero::zero();
        Providers::<T>::mutate(provider, |info| {
            let Some(info) = info else { return };
            let Some(offer) = info.offer.as_mut() else {
                return;
            };
            let due = share.mul_floor(offer.bond);
            amount = T::Currency::transfer_on_hold(
                &HoldReason::ProviderBond.into(),
                provider,
                &job.buyer,
                due,
                Precision::BestEffort,
                Restriction::Free,
                Fortitude::Force,
            )
            .unwrap_or_else(|_| Zero::zero());
            offer.bond = offer.bond.saturating_sub(amount);
            if offer.bond < T::MinProviderBond::get() {
                Self::remove_from_book(provider);
            }
        });
        Penalties::<T>::mutate(job_id, |list| {
            // A full record stops the job's dispatch, so a penalty is never left unrecorded
            // for a provider that could be bound again.
            let _ = list.try_push(Penalty {
                provider: provider.clone(),
                reason,
                amount,
                at: frame_system::Pallet::<T>::block_number(),
            });
        });
        Self::deposit_event(Event::ProviderPenalised {
            job_id,
            provider: provider.clone(),
            reason,
            amount,
        });
        amount
    }

    pub(crate) fn do_reassign(
        job_id: JobId,
        mut job: Job<T>,
        mut binding: Binding<T>,
    ) -> DispatchResultWithPostInfo {
        let silent: Vec<T::AccountId> = binding
            .providers
            .iter()
            .filter(|p| !Receipts::<T>::contains_key(job_id, *p))
            .cloned()
            .collect();
        ensure!(!silent.is_empty(), Error::<T>::NothingToReassign);
        for provider in &silent {
            Self::penalise(
                job_id,
                &job,
                provider,
                PenaltyReason::Unresponsive,
                T::UnresponsivePenalty::get(),
            );
            Self::count_active_job(provider, false, binding.key_of(provider));
        }
        let (providers, keys): (Vec<T::AccountId>, Vec<Ed25519Key>) = binding
            .providers
            .iter()
            .cloned()
            .zip(binding.keys.iter().copied())
            .filter(|(p, _)| !silent.contains(p))
            .unzip();
        binding.providers = BoundedVec::truncate_from(providers);
        binding.keys = BoundedVec::truncate_from(keys);
        if job.status == JobStatus::Bound {
            if let TierTerms::Attested { policy, .. } = job.terms {
                Self::count_policy_user(&policy, true);
            }
            job.status = JobStatus::Funded;
        }
        if binding.providers.is_empty() {
            Bindings::<T>::remove(job_id);
        } else {
            Bindings::<T>::insert(job_id, binding);
        }
        Jobs::<T>::insert(job_id, &job);
        Waiting::<T>::insert(job_id, ());
        let (bound, scanned) = Self::try_dispatch(job_id, job);
        if !bound {
            Self::deposit_event(Event::JobWaiting { job_id });
        }
        Ok(Some(
            T::WeightInfo::reassign(len_u32_items(silent.len()))
                .saturating_add(Self::key_drop_weight(len_u32_items(silent.len())))
                .saturating_add(T::WeightInfo::dispatch_job(scanned)),
        )
        .into())
    }

    /// Counts one more (`up`) or one fewer open job bound to `provider`; a job bound under
    /// `key` closing also counts down the provider's retiring key when it is that key, and
    /// drops the retiring key with its last job.
    fn count_active_job(provider: &T::AccountId, up: bool, key: Option<Ed25519Key>) {
        let mut retired = None;
        Providers::<T>::mutate(provider, |info| {
            let Some(info) = info else { return };
            info.active_jobs = if up {
                info.active_jobs.saturating_add(1)
            } else {
                info.active_jobs.saturating_sub(1)
            };
            if up {
                return;
            }
            if let Some(retiring) = info
                .retiring
                .as_mut()
                .filter(|r| Some(r.signing_key) == key)
            {
                retiring.open_jobs = retiring.open_jobs.saturating_sub(1);
                if retiring.open_jobs == 0 {
                    retired = info.retiring.take();
                }
            }
        });
        if let Some(retiring) = retired {
            Self::drop_key(provider, retiring);
        }
    }

    /// Forgets a rotated-away key whose jobs all closed: it leaves [`SigningKeys`] and its
    /// attestation stops holding its policy.
    fn drop_key(provider: &T::AccountId, retiring: RetiringKey) {
        SigningKeys::<T>::remove(retiring.signing_key);
        if let Some(attested) = retiring.attested {
            Self::count_policy_user(&attested.policy, false);
        }
        Self::deposit_event(Event::KeyRetired {
            provider: provider.clone(),
            key: retiring.signing_key,
        });
    }

    pub(crate) fn do_rotate_key(
        who: T::AccountId,
        mut info: ProviderInfo<T>,
        signing_key: Ed25519Key,
        attestation: Option<AttestationSubmission<T>>,
    ) -> DispatchResult {
        let attested = Self::attest_new_key(&who, signing_key, &info.capabilities, attestation)?;
        let old = RetiringKey {
            signing_key: info.signing_key,
            attested: info.attested.take(),
            open_jobs: info.active_jobs,
        };
        let old_key = old.signing_key;
        let open_jobs = old.open_jobs;
        let event_attested = attested.as_ref().map(|a| (a.tee, a.expires_at_ms));
        SigningKeys::<T>::insert(signing_key, &who);
        info.signing_key = signing_key;
        info.attested = attested;
        info.retiring = (open_jobs > 0).then_some(old.clone());
        Providers::<T>::insert(&who, info);
        Self::deposit_event(Event::KeyRotated {
            provider: who.clone(),
            old_key,
            new_key: signing_key,
            attested: event_attested,
            open_jobs,
        });
        if open_jobs == 0 {
            Self::drop_key(&who, old);
        }
        Ok(())
    }

    /// Whether the record may go: no key can use it any more at `now_ms` (its evidence's own
    /// expiry or the chain's cap on an attested key's life after verification, whichever
    /// comes first), and no provider's current or retiring attested key rests on it.
    pub(crate) fn check_prunable(
        evidence_digest: &Digest,
        record: &AttestationRecord<T>,
        now_ms: u64,
    ) -> DispatchResult {
        let usable_until = record.expires_at_ms.min(
            record
                .verified_at_ms
                .saturating_add(T::MaxAttestationValidityMs::get()),
        );
        ensure!(usable_until <= now_ms, Error::<T>::AttestationNotExpired);
        if let Some(holder) = SigningKeys::<T>::get(record.key)
            && let Some(info) = Providers::<T>::get(&holder)
        {
            let rests_on = |a: &Option<AttestedKey>| {
                a.as_ref()
                    .is_some_and(|a| a.evidence_digest == *evidence_digest)
            };
            ensure!(
                !rests_on(&info.attested)
                    && !info
                        .retiring
                        .as_ref()
                        .is_some_and(|r| rests_on(&r.attested)),
                Error::<T>::AttestationInUse
            );
        }
        Ok(())
    }

    /// `on_idle`, after dispatch: looks at up to [`Config::MaxPrunePerBlock`] attestation
    /// records in [`Attestations`]' order from where the last pass stopped, while `remaining`
    /// pays for each, and prunes those [`Self::check_prunable`] allows (their deposits return).
    pub(crate) fn prune_expired(remaining: Weight) -> Weight {
        let per_try = T::WeightInfo::prune_attestation();
        let mut used = T::DbWeight::get().reads_writes(1, 1);
        if !remaining.all_gte(used.saturating_add(per_try)) {
            return Weight::zero();
        }
        let cap = usize::try_from(T::MaxPrunePerBlock::get()).unwrap_or(0);
        let mut batch: Vec<Digest> = match PruneCursor::<T>::get() {
            Some(last) => {
                Attestations::<T>::iter_keys_from(Attestations::<T>::hashed_key_for(last))
                    .take(cap)
                    .collect()
            }
            None => Attestations::<T>::iter_keys().take(cap).collect(),
        };
        if batch.len() < cap {
            // Wrap around to the start of the map for the rest of this block's looks.
            let rest = cap.saturating_sub(batch.len());
            for digest in Attestations::<T>::iter_keys().take(rest) {
                if !batch.contains(&digest) {
                    batch.push(digest);
                }
            }
        }
        let now_ms = Self::now_ms();
        let mut last = None;
        for digest in batch {
            if !remaining.all_gte(used.saturating_add(per_try)) {
                break;
            }
            used = used.saturating_add(per_try);
            last = Some(digest);
            if let Some(record) = Attestations::<T>::get(digest)
                && Self::check_prunable(&digest, &record, now_ms).is_ok()
            {
                // A release that fails leaves the record (and its deposit) for a later pass.
                let _ = Self::do_prune_attestation(digest, record);
            }
        }
        match last {
            Some(digest) => PruneCursor::<T>::put(digest),
            None => PruneCursor::<T>::kill(),
        }
        used
    }

    pub(crate) fn do_prune_attestation(
        evidence_digest: Digest,
        record: AttestationRecord<T>,
    ) -> DispatchResult {
        T::Currency::release(
            &HoldReason::AttestationDeposit.into(),
            &record.depositor,
            record.deposit,
            Precision::Exact,
        )?;
        Attestations::<T>::remove(evidence_digest);
        Self::deposit_event(Event::AttestationPruned {
            evidence_digest,
            depositor: record.depositor,
            deposit: record.deposit,
        });
        Ok(())
    }

    /// Takes `who`'s offer out of `info` and the book, releasing its bond.
    fn release_offer(who: &T::AccountId, info: &mut ProviderInfo<T>) -> DispatchResult {
        if let Some(offer) = info.offer.take() {
            T::Currency::release(
                &HoldReason::ProviderBond.into(),
                who,
                offer.bond,
                Precision::Exact,
            )?;
        }
        Self::remove_from_book(who);
        Ok(())
    }

    /// Removes `provider` from the offer book, if it is there.
    fn remove_from_book(provider: &T::AccountId) {
        OfferBook::<T>::mutate(|book| book.retain(|(_, p)| p != provider));
    }

    pub(crate) fn do_set_offer(
        who: T::AccountId,
        mut info: ProviderInfo<T>,
        offer: Offer<T>,
    ) -> DispatchResult {
        let reason: T::RuntimeHoldReason = HoldReason::ProviderBond.into();
        let held = info.offer.as_ref().map_or_else(Zero::zero, |o| o.bond);
        if offer.bond > held {
            T::Currency::hold(&reason, &who, offer.bond.saturating_sub(held))?;
        } else if offer.bond < held {
            ensure!(info.active_jobs == 0, Error::<T>::BondLocked);
            T::Currency::release(
                &reason,
                &who,
                held.saturating_sub(offer.bond),
                Precision::Exact,
            )?;
        }
        Self::remove_from_book(&who);
        if offer.capacity > 0 {
            OfferBook::<T>::try_mutate(|book| {
                // After the last offer at the same or a lower price: equal prices keep the
                // order they were set in.
                let at = book.partition_point(|(p, _)| *p <= offer.price);
                book.try_insert(at, (offer.price, who.clone()))
                    .map_err(|_| Error::<T>::OfferBookFull)
            })?;
        }
        Self::deposit_event(Event::OfferSet {
            provider: who.clone(),
            price: offer.price,
            capacity: offer.capacity,
            bond: offer.bond,
        });
        info.offer = Some(offer);
        Providers::<T>::insert(&who, info);
        Ok(())
    }

    pub(crate) fn do_withdraw_offer(
        who: T::AccountId,
        mut info: ProviderInfo<T>,
    ) -> DispatchResult {
        Self::release_offer(&who, &mut info)?;
        Providers::<T>::insert(&who, info);
        Self::deposit_event(Event::OfferWithdrawn { provider: who });
        Ok(())
    }

    pub(crate) fn do_cancel_job(job_id: JobId, job: Job<T>) -> DispatchResult {
        let (buyer, amount, _) = Self::return_escrow(job_id, job)?;
        Self::deposit_event(Event::JobCancelled {
            job_id,
            buyer,
            amount,
        });
        Ok(())
    }

    /// A job's binding, or an empty one.
    fn binding_of(job_id: JobId) -> Binding<T> {
        Bindings::<T>::get(job_id).unwrap_or(Binding {
            providers: BoundedVec::new(),
            keys: BoundedVec::new(),
            bound_at: Zero::zero(),
        })
    }

    /// Releases an open job's escrow to its buyer and closes it as refunded (the settlement
    /// record says so). Returns the buyer, the amount and how many providers were bound.
    fn return_escrow(
        job_id: JobId,
        mut job: Job<T>,
    ) -> Result<(T::AccountId, BalanceOf<T>, u32), DispatchError> {
        T::Currency::release(
            &Self::hold_reason(),
            &job.buyer,
            job.price,
            Precision::Exact,
        )?;
        let binding = Self::binding_of(job_id);
        let bound = len_u32_items(binding.providers.len());
        Self::close(&job, &binding)?;
        Waiting::<T>::remove(job_id);
        job.status = JobStatus::Refunded;
        let buyer = job.buyer.clone();
        let amount = job.price;
        Jobs::<T>::insert(job_id, job);
        Settlements::<T>::insert(
            job_id,
            Settlement {
                outcome: Outcome::Refunded { amount },
                at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Ok((buyer, amount, bound))
    }

    /// Checks a receipt against the job and the provider, and returns the key that must
    /// have signed it, the evidence it rests on, and the weight of the path taken.
    #[allow(clippy::too_many_arguments)]
    fn check_receipt(
        who: &T::AccountId,
        bound_key: Ed25519Key,
        job_id: JobId,
        job: &Job<T>,
        info: &ProviderInfo<T>,
        body: &receipt::ReceiptBody,
        fresh_evidence: Option<AttestationSubmission<T>>,
        now_ms: u64,
    ) -> Result<(Ed25519Key, Option<Digest>, Weight), DispatchError> {
        use receipt::EvidenceMode;
        ensure!(
            body.version == receipt::RECEIPT_VERSION,
            Error::<T>::UnsupportedReceiptVersion
        );
        ensure!(
            body.job_id == job_id && body.job_spec_hash == job.spec_hash,
            Error::<T>::ReceiptJobMismatch
        );
        ensure!(
            body.tier == job.terms.tier().code(),
            Error::<T>::ReceiptTierMismatch
        );
        ensure!(
            body.started_at_ms <= body.finished_at_ms
                && body.finished_at_ms <= now_ms.saturating_add(T::MaxClockDriftMs::get()),
            Error::<T>::InvalidTiming
        );
        match job.terms {
            TierTerms::Signed | TierTerms::Quorum { .. } => {
                ensure!(
                    body.evidence.mode == EvidenceMode::None
                        && body.evidence.tee == receipt::ReceiptTee::None
                        && body.evidence.digest == [0; 32]
                        && fresh_evidence.is_none(),
                    Error::<T>::UnexpectedEvidence
                );
                let weight = match job.terms {
                    TierTerms::Quorum { n, .. } => T::WeightInfo::submit_receipt_quorum(n),
                    _ => T::WeightInfo::submit_receipt_signed(),
                };
                Ok((bound_key, None, weight))
            }
            TierTerms::Attested {
                policy,
                fresh_quote,
            } => {
                // The attestation of the key the job was bound under: the current key's, or
                // the rotated-away key's while its jobs are open.
                let attested = if bound_key == info.signing_key {
                    info.attested.as_ref()
                } else {
                    info.retiring
                        .as_ref()
                        .filter(|r| r.signing_key == bound_key)
                        .and_then(|r| r.attested.as_ref())
                }
                .ok_or(Error::<T>::NotAttested)?;
                match body.evidence.mode {
                    EvidenceMode::AttestedKey => {
                        ensure!(!fresh_quote, Error::<T>::FreshQuoteRequired);
                        ensure!(fresh_evidence.is_none(), Error::<T>::UnexpectedEvidence);
                        let previous = attested
                            .previous
                            .filter(|p| p.evidence_digest == body.evidence.digest);
                        ensure!(
                            body.evidence.tee == receipt::receipt_tee(attested.tee)
                                && (body.evidence.digest == attested.evidence_digest
                                    || previous.is_some()),
                            Error::<T>::EvidenceMismatch
                        );
                        ensure!(
                            attested.honours(&body.evidence.digest, now_ms),
                            Error::<T>::AttestationExpired
                        );
                        Ok((
                            bound_key,
                            Some(body.evidence.digest),
                            T::WeightInfo::submit_receipt_attested_key(),
                        ))
                    }
                    EvidenceMode::FreshQuote => {
                        let submission = fresh_evidence.ok_or(Error::<T>::MissingEvidence)?;
                        let weight = Self::submit_receipt_fresh_quote_weight(&submission);
                        ensure!(
                            receipt::evidence_digest(&submission.evidence) == body.evidence.digest,
                            Error::<T>::EvidenceMismatch
                        );
                        let (verified, digest) =
                            Self::verify_attestation(who, submission, policy, now_ms)?;
                        ensure!(
                            receipt::receipt_tee(verified.tee) == body.evidence.tee,
                            Error::<T>::EvidenceMismatch
                        );
                        ensure!(
                            verified.nonce == receipt::fresh_quote_nonce(body),
                            Error::<T>::EvidenceNotBound
                        );
                        ensure!(verified.key == bound_key, Error::<T>::AttestedKeyMismatch);
                        ensure!(
                            Self::gpus_satisfy(&job.class, verified.gpu_count, &verified.gpu_chip),
                            Error::<T>::GpuRequirementUnmet
                        );
                        Ok((verified.key, Some(digest), weight))
                    }
                    EvidenceMode::None => Err(Error::<T>::UnsupportedEvidenceMode.into()),
                }
            }
        }
    }

    pub(crate) fn do_submit_receipt(
        who: T::AccountId,
        job_id: JobId,
        job: Job<T>,
        binding: Binding<T>,
        body_bytes: BoundedVec<u8, T::MaxReceiptLen>,
        signature: Ed25519Signature,
        fresh_evidence: Option<AttestationSubmission<T>>,
    ) -> DispatchResultWithPostInfo {
        let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        let body =
            receipt::decode_canonical(&body_bytes).map_err(|_| Error::<T>::MalformedReceipt)?;
        let now_ms = Self::now_ms();
        let bound_key = binding.key_of(&who).ok_or(Error::<T>::NotBoundProvider)?;
        let (key, evidence_digest, weight) = Self::check_receipt(
            &who,
            bound_key,
            job_id,
            &job,
            &info,
            &body,
            fresh_evidence,
            now_ms,
        )?;
        ensure!(body.provider == key, Error::<T>::WrongSigner);
        let digest = receipt::digest_of_encoded(&body_bytes);
        ensure!(
            ed25519_verify(&key, &digest, &signature),
            Error::<T>::BadSignature
        );

        Receipts::<T>::insert(
            job_id,
            &who,
            StoredReceipt {
                body: body_bytes,
                signature,
                digest,
                result_commitment: body.result_commitment,
                evidence_digest,
                submitted_at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Self::deposit_event(Event::ReceiptAccepted {
            job_id,
            provider: who.clone(),
            receipt_digest: digest,
            result_commitment: body.result_commitment,
        });

        let winners: Vec<T::AccountId> = match job.terms {
            TierTerms::Signed | TierTerms::Attested { .. } => alloc::vec![who],
            TierTerms::Quorum { k, .. } => {
                let matching: Vec<T::AccountId> = binding
                    .providers
                    .iter()
                    .filter(|p| {
                        Receipts::<T>::get(job_id, *p)
                            .is_some_and(|r| r.result_commitment == body.result_commitment)
                    })
                    .cloned()
                    .collect();
                if len_u32_items(matching.len()) < k {
                    return Ok(PostDispatchInfo {
                        actual_weight: Some(weight),
                        pays_fee: Pays::Yes,
                    });
                }
                matching
            }
        };
        let bound = len_u32_items(binding.providers.len());
        Self::settle(job_id, job, &binding, body.result_commitment, winners)?;
        Ok(PostDispatchInfo {
            actual_weight: Some(weight.saturating_add(Self::key_drop_weight(bound))),
            pays_fee: Pays::Yes,
        })
    }

    /// Pays the job's escrow to `winners` in equal shares. The remainder of the division
    /// goes one unit each to the first winners in binding order, so the shares sum to the
    /// price exactly: nothing is created or destroyed.
    fn settle(
        job_id: JobId,
        mut job: Job<T>,
        binding: &Binding<T>,
        result_commitment: Digest,
        winners: Vec<T::AccountId>,
    ) -> DispatchResult {
        let count = BalanceOf::<T>::from(len_u32_items(winners.len()));
        let share = job.price.checked_div(&count).ok_or(Error::<T>::Overflow)?;
        let mut remainder = share
            .checked_mul(&count)
            .and_then(|paid| job.price.checked_sub(&paid))
            .ok_or(Error::<T>::Overflow)?;
        let reason = Self::hold_reason();
        let mut payees = BoundedVec::<(T::AccountId, BalanceOf<T>), T::MaxQuorum>::new();
        for winner in winners {
            let mut amount = share;
            if !remainder.is_zero() {
                amount = amount.saturating_add(1u32.into());
                remainder = remainder.saturating_sub(1u32.into());
            }
            T::Currency::transfer_on_hold(
                &reason,
                &job.buyer,
                &winner,
                amount,
                Precision::Exact,
                Restriction::Free,
                Fortitude::Polite,
            )?;
            payees
                .try_push((winner, amount))
                .map_err(|_| Error::<T>::Overflow)?;
        }
        if let TierTerms::Quorum { .. } = job.terms {
            // Every receipt that committed another result dissents from the settled one.
            for provider in binding.providers.iter() {
                if Receipts::<T>::get(job_id, provider)
                    .is_some_and(|r| r.result_commitment != result_commitment)
                {
                    Self::penalise(
                        job_id,
                        &job,
                        provider,
                        PenaltyReason::Dissent,
                        T::DissentPenalty::get(),
                    );
                }
            }
        }
        Self::close(&job, binding)?;
        Waiting::<T>::remove(job_id);
        job.status = JobStatus::Settled;
        Jobs::<T>::insert(job_id, job);
        Settlements::<T>::insert(
            job_id,
            Settlement {
                outcome: Outcome::Paid {
                    result_commitment,
                    payees: payees.clone(),
                },
                at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Self::deposit_event(Event::JobSettled {
            job_id,
            result_commitment,
            payees,
        });
        Ok(())
    }

    /// Bookkeeping shared by settlement and refund: the escrow total and the bound
    /// providers' open-job counts.
    fn close(job: &Job<T>, binding: &Binding<T>) -> DispatchResult {
        let total = TotalEscrow::<T>::get()
            .checked_sub(&job.price)
            .ok_or(Error::<T>::Overflow)?;
        TotalEscrow::<T>::put(total);
        // A tier-3 job counts as its policy's user only until it is bound (then the bound
        // provider's attested key, registered under the same policy, holds it), so only an
        // unbound job's refund gives its use back, and receipts never write the policy.
        if let (TierTerms::Attested { policy, .. }, JobStatus::Funded) = (job.terms, job.status) {
            Self::count_policy_user(&policy, false);
        }
        for (provider, key) in binding.providers.iter().zip(binding.keys.iter()) {
            Self::count_active_job(provider, false, Some(*key));
        }
        Ok(())
    }

    pub(crate) fn do_refund_expired(job_id: JobId, job: Job<T>) -> DispatchResultWithPostInfo {
        let (buyer, amount, bound) = Self::return_escrow(job_id, job)?;
        Self::deposit_event(Event::JobRefunded {
            job_id,
            buyer,
            amount,
        });
        Ok(PostDispatchInfo {
            actual_weight: Some(
                T::WeightInfo::refund_expired(bound).saturating_add(Self::key_drop_weight(bound)),
            ),
            pays_fee: Pays::Yes,
        })
    }

    pub(crate) fn do_deregister(who: T::AccountId) -> DispatchResult {
        if let Some(mut info) = Providers::<T>::take(&who) {
            Self::release_offer(&who, &mut info)?;
            T::Currency::release(
                &HoldReason::ProviderDeposit.into(),
                &who,
                info.deposit,
                Precision::Exact,
            )?;
            SigningKeys::<T>::remove(info.signing_key);
            if let Some(attested) = info.attested {
                Self::count_policy_user(&attested.policy, false);
            }
        }
        Self::deposit_event(Event::ProviderDeregistered { provider: who });
        Ok(())
    }

    /// Reads `document` with the runtime's verifier and stores it under its id, owned by
    /// `owner` with `deposit` held (genesis policies: no owner, no deposit).
    pub(crate) fn insert_policy(
        document: &[u8],
        owner: Option<T::AccountId>,
        deposit: BalanceOf<T>,
    ) -> Result<PolicyId, DispatchError> {
        let bounded: BoundedVec<u8, T::MaxPolicyLen> =
            document
                .to_vec()
                .try_into()
                .map_err(|_| Error::<T>::PolicyRejected {
                    reason: crate::PolicyRejection::Malformed,
                })?;
        let summary = T::AttestationVerifier::inspect_policy(document)
            .map_err(|reason| Error::<T>::PolicyRejected { reason })?;
        ensure!(
            !Policies::<T>::contains_key(summary.id),
            Error::<T>::PolicyExists
        );
        if let Some(owner) = &owner {
            T::Currency::hold(&HoldReason::PolicyDeposit.into(), owner, deposit)?;
        }
        let pinned = summary.unpinned.is_none();
        Policies::<T>::insert(
            summary.id,
            PolicyRecord {
                document: bounded,
                owner: owner.clone(),
                deposit,
                tees: summary.tees,
                unpinned: summary.unpinned,
                key_lifetime_ms: summary.key_lifetime_ms,
                users: 0,
                registered_at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Self::deposit_event(Event::PolicyRegistered {
            policy: summary.id,
            owner,
            pinned,
        });
        Ok(summary.id)
    }

    pub(crate) fn do_register_policy(
        who: T::AccountId,
        document: BoundedVec<u8, T::MaxPolicyLen>,
        deposit: BalanceOf<T>,
    ) -> DispatchResult {
        Self::insert_policy(&document, Some(who), deposit).map(|_| ())
    }

    pub(crate) fn do_retire_policy(
        who: T::AccountId,
        policy: PolicyId,
        record: PolicyRecord<T>,
    ) -> DispatchResult {
        T::Currency::release(
            &HoldReason::PolicyDeposit.into(),
            &who,
            record.deposit,
            Precision::Exact,
        )?;
        Policies::<T>::remove(policy);
        Self::deposit_event(Event::PolicyRetired { policy });
        Ok(())
    }

    /// Checks the pallet's invariants:
    /// - each buyer's held escrow equals the sum of its open jobs' prices, so the total held
    ///   equals the open jobs' escrow and a closed job holds nothing;
    /// - [`TotalEscrow`] equals the sum of open jobs' prices;
    /// - open jobs have no settlement record, closed jobs have one whose amounts sum to the
    ///   price (no escrow created or destroyed);
    /// - bound jobs have all their providers bound, funded jobs fewer (a tier-2 job reassigned
    ///   keeps those that delivered), settled jobs a binding; each provider's open-job count
    ///   matches the bindings;
    /// - exactly the funded jobs wait in [`Waiting`];
    /// - the offer book is sorted by price, names each provider once at its offer's price, and
    ///   holds exactly the offers with capacity and at least the minimum bond; each provider's
    ///   bond hold equals its offer's bond;
    /// - receipts only come from bound providers;
    /// - each provider's signing key maps back to it, and only providers' keys are recorded;
    /// - every binding records the key each provider was bound under; a provider's open jobs
    ///   are bound under its current key or its retiring key (counted in the retiring record);
    /// - deposits held for provider records and attestation records equal the records';
    /// - each policy's user count equals its unbound tier-3 jobs plus the attested keys
    ///   registered under it (a bound job's provider key holds the policy for it), and every
    ///   policy in use is registered.
    #[cfg(any(feature = "try-runtime", feature = "fuzzing", test))]
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        use alloc::collections::btree_map::BTreeMap;
        let mut held_by_buyer: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        let mut open_jobs_of: BTreeMap<T::AccountId, u32> = BTreeMap::new();
        let mut open_jobs_under: BTreeMap<Ed25519Key, u32> = BTreeMap::new();
        let mut open_total: BalanceOf<T> = Zero::zero();
        let mut policy_users: BTreeMap<PolicyId, u32> = BTreeMap::new();
        for (job_id, job) in Jobs::<T>::iter() {
            if let (JobStatus::Funded, TierTerms::Attested { policy, .. }) = (job.status, job.terms)
            {
                let n = policy_users.entry(policy).or_insert(0);
                *n = n.saturating_add(1);
            }
            let entry = held_by_buyer
                .entry(job.buyer.clone())
                .or_insert_with(Zero::zero);
            let binding = Bindings::<T>::get(job_id);
            let bound = binding
                .as_ref()
                .map_or(0, |b| len_u32_items(b.providers.len()));
            let needed = job.terms.provider_count();
            if let Some(b) = &binding {
                ensure!(
                    b.keys.len() == b.providers.len(),
                    "a binding's keys do not match its providers"
                );
            }
            match job.status {
                JobStatus::Funded => ensure!(bound < needed, "funded job is fully bound"),
                JobStatus::Bound => ensure!(bound == needed, "bound job is not fully bound"),
                JobStatus::Settled => ensure!(binding.is_some(), "settled job has no binding"),
                JobStatus::Refunded => {}
            }
            ensure!(
                Waiting::<T>::contains_key(job_id) == (job.status == JobStatus::Funded),
                "waiting jobs differ from funded jobs"
            );
            if job.status.is_open() {
                *entry = entry.checked_add(&job.price).ok_or("escrow overflow")?;
                open_total = open_total
                    .checked_add(&job.price)
                    .ok_or("escrow overflow")?;
                ensure!(
                    !Settlements::<T>::contains_key(job_id),
                    "open job has a settlement"
                );
                if let Some(binding) = &binding {
                    for (p, k) in binding.providers.iter().zip(binding.keys.iter()) {
                        let n = open_jobs_of.entry(p.clone()).or_insert(0);
                        *n = n.saturating_add(1);
                        let n = open_jobs_under.entry(*k).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                }
            } else {
                let settlement =
                    Settlements::<T>::get(job_id).ok_or("closed job has no settlement")?;
                let paid = match (&settlement.outcome, job.status) {
                    (Outcome::Paid { payees, .. }, JobStatus::Settled) => {
                        let mut sum: BalanceOf<T> = Zero::zero();
                        for (payee, amount) in payees.iter() {
                            ensure!(
                                Receipts::<T>::contains_key(job_id, payee),
                                "payee without a receipt"
                            );
                            sum = sum.checked_add(amount).ok_or("payout overflow")?;
                        }
                        sum
                    }
                    (Outcome::Refunded { amount }, JobStatus::Refunded) => *amount,
                    _ => return Err("settlement outcome does not match job status".into()),
                };
                ensure!(
                    paid == job.price,
                    "settlement does not move exactly the escrow"
                );
            }
            if let Some(binding) = &binding {
                for (provider, _) in Receipts::<T>::iter_prefix(job_id) {
                    ensure!(
                        binding.providers.contains(&provider),
                        "receipt from an unbound provider"
                    );
                }
            }
        }
        ensure!(
            open_total == TotalEscrow::<T>::get(),
            "TotalEscrow differs from open jobs"
        );
        let reason = Self::hold_reason();
        for (buyer, expected) in held_by_buyer {
            ensure!(
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::InspectHold<
                    T::AccountId,
                >>::balance_on_hold(&reason, &buyer)
                    == expected,
                "held escrow differs from the buyer's open jobs"
            );
        }
        for (provider, info) in Providers::<T>::iter() {
            let expected = open_jobs_of.get(&provider).copied().unwrap_or(0);
            ensure!(
                info.active_jobs == expected,
                "provider open-job count is off"
            );
            if let Some(attested) = &info.attested {
                let n = policy_users.entry(attested.policy).or_insert(0);
                *n = n.saturating_add(1);
            }
            ensure!(
                SigningKeys::<T>::get(info.signing_key).as_ref() == Some(&provider),
                "a provider's signing key is not recorded as its own"
            );
            let under_current = open_jobs_under.get(&info.signing_key).copied().unwrap_or(0);
            match &info.retiring {
                Some(retiring) => {
                    ensure!(
                        retiring.open_jobs > 0
                            && open_jobs_under.get(&retiring.signing_key).copied()
                                == Some(retiring.open_jobs),
                        "a retiring key's open-job count is off"
                    );
                    ensure!(
                        SigningKeys::<T>::get(retiring.signing_key).as_ref() == Some(&provider),
                        "a retiring key is not recorded as its provider's"
                    );
                    ensure!(
                        under_current.saturating_add(retiring.open_jobs) == info.active_jobs,
                        "jobs are bound under a key the provider does not hold"
                    );
                    if let Some(attested) = &retiring.attested {
                        let n = policy_users.entry(attested.policy).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                }
                None => ensure!(
                    under_current == info.active_jobs,
                    "jobs are bound under a key the provider does not hold"
                ),
            }
            ensure!(
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::InspectHold<
                    T::AccountId,
                >>::balance_on_hold(&HoldReason::ProviderDeposit.into(), &provider)
                    == info.deposit,
                "a provider's held deposit differs from its record's"
            );
        }
        ensure!(
            Waiting::<T>::iter_keys().all(Jobs::<T>::contains_key),
            "a waiting job does not exist"
        );
        let book = OfferBook::<T>::get();
        ensure!(
            book.windows(2).all(|w| matches!(w, [a, b] if a.0 <= b.0)),
            "offer book not sorted by price"
        );
        let mut listed = 0usize;
        for (provider, info) in Providers::<T>::iter() {
            let bond_held =
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::InspectHold<
                    T::AccountId,
                >>::balance_on_hold(&HoldReason::ProviderBond.into(), &provider);
            let entries: Vec<_> = book.iter().filter(|(_, p)| *p == provider).collect();
            match &info.offer {
                Some(offer) => {
                    ensure!(
                        bond_held == offer.bond,
                        "bond hold differs from the offer's bond"
                    );
                    let listable = offer.capacity > 0 && offer.bond >= T::MinProviderBond::get();
                    if listable {
                        ensure!(
                            entries.len() == 1
                                && entries.first().is_some_and(|(p, _)| *p == offer.price),
                            "an offer is missing from the book or listed at another price"
                        );
                        listed = listed.saturating_add(1);
                    } else {
                        ensure!(entries.is_empty(), "an unlistable offer is in the book");
                    }
                }
                None => {
                    ensure!(bond_held.is_zero(), "a bond is held without an offer");
                    ensure!(
                        entries.is_empty(),
                        "a provider without offer is in the book"
                    );
                }
            }
        }
        ensure!(
            listed == book.len(),
            "the book lists an account that is not a provider"
        );
        ensure!(
            SigningKeys::<T>::iter().count()
                == Providers::<T>::iter()
                    .map(|(_, info)| if info.retiring.is_some() { 2 } else { 1 })
                    .sum::<usize>(),
            "a signing key is recorded for an account that is not a provider"
        );
        let mut attestation_deposits: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (_, record) in Attestations::<T>::iter() {
            let d = attestation_deposits
                .entry(record.depositor)
                .or_insert_with(Zero::zero);
            *d = d.checked_add(&record.deposit).ok_or("deposit overflow")?;
        }
        for (depositor, expected) in attestation_deposits {
            ensure!(
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::InspectHold<
                    T::AccountId,
                >>::balance_on_hold(
                    &HoldReason::AttestationDeposit.into(), &depositor
                ) == expected,
                "held attestation deposits differ from the depositor's records"
            );
        }
        let mut deposits_by_owner: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (id, record) in Policies::<T>::iter() {
            let expected = policy_users.remove(&id).unwrap_or(0);
            ensure!(record.users == expected, "policy user count is off");
            if let Some(owner) = record.owner {
                let d = deposits_by_owner.entry(owner).or_insert_with(Zero::zero);
                *d = d.checked_add(&record.deposit).ok_or("deposit overflow")?;
            }
        }
        ensure!(policy_users.is_empty(), "a policy in use is not registered");
        for (owner, expected) in deposits_by_owner {
            ensure!(
                <T::Currency as polkadot_sdk::frame_support::traits::fungible::InspectHold<
                    T::AccountId,
                >>::balance_on_hold(&HoldReason::PolicyDeposit.into(), &owner)
                    == expected,
                "held policy deposits differ from the owner's policies"
            );
        }
        Ok(())
    }
}
