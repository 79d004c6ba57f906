//! Dispatch by the chain: offers, the dispatch rule (price, rotation, capacity, eligibility),
//! waiting jobs and `on_idle`, cancellation, reassignment of unresponsive providers, bonds and
//! penalties.

use super::*;
use crate::{DispatchCursor, OfferBook, Penalties, PenaltyReason, Waiting, mock::MinProviderBond};
use polkadot_sdk::frame_support::traits::Hooks;

fn bond_held(account: u64) -> Balance {
    Balances::balance_on_hold(&HoldReason::ProviderBond.into(), &account)
}

fn bound_to(job_id: JobId) -> Vec<u64> {
    Bindings::<Test>::get(job_id)
        .map(|b| b.providers.to_vec())
        .unwrap_or_default()
}

fn fund_with(job_id: JobId, terms: TierTerms, price: Balance, response_blocks: u64) {
    assert_ok!(Market::fund_job(
        RuntimeOrigin::signed(BUYER),
        job_id,
        SPEC,
        terms,
        ProviderClass::default(),
        price,
        DEADLINE,
        response_blocks,
    ));
}

fn job(n: u8) -> JobId {
    [n; 32]
}

fn idle() {
    Market::on_idle(System::block_number(), Weight::MAX);
}

use polkadot_sdk::frame_support::weights::Weight;

#[test]
fn fund_binds_cheapest_offer_with_rotation_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3] {
            register(p, &[Tier::Signed]);
        }
        offer(P1, 5, 10, 0);
        offer(P2, 3, 10, 0);
        offer(P3, 3, 10, 0);
        let book: Vec<_> = OfferBook::<Test>::get()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(book, vec![P2, P3, P1]);
        // The cheapest two take turns, starting at the cursor's place in the book.
        for (n, expected) in [(1u8, P2), (2, P3), (3, P2), (4, P3)] {
            System::set_block_number(u64::from(n) + 1);
            fund(job(n), TierTerms::Signed, PRICE);
            assert_eq!(bound_to(job(n)), vec![expected], "job {n}");
            assert_eq!(status(job(n)), JobStatus::Bound);
            assert!(!Waiting::<Test>::contains_key(job(n)));
            assert_eq!(
                Bindings::<Test>::get(job(n)).unwrap().bound_at,
                u64::from(n) + 1
            );
            assert_eq!(
                last_event(),
                Event::JobBound {
                    job_id: job(n),
                    providers: vec![expected].try_into().unwrap()
                }
            );
        }
        assert_eq!(DispatchCursor::<Test>::get(), 4);
        assert_eq!(Providers::<Test>::get(P2).unwrap().active_jobs, 2);
        assert_eq!(Providers::<Test>::get(P3).unwrap().active_jobs, 2);
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 0);
    });
}

#[test]
fn dispatch_respects_price_and_capacity_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3] {
            register(p, &[Tier::Signed]);
        }
        offer(P1, 10, 1, 0);
        offer(P2, 20, 1, 0);
        // Paused: never bound.
        offer(P3, 1, 0, 0);
        // P2 asks more than this job pays; P1 serves it and is then full.
        fund(job(1), TierTerms::Signed, 15);
        assert_eq!(bound_to(job(1)), vec![P1]);
        fund(job(2), TierTerms::Signed, 15);
        assert_eq!(status(job(2)), JobStatus::Funded);
        assert!(Waiting::<Test>::contains_key(job(2)));
        assert!(events().contains(&Event::JobWaiting { job_id: job(2) }));
        fund(job(3), TierTerms::Signed, 25);
        assert_eq!(bound_to(job(3)), vec![P2]);
        // P1's job settles: its capacity is free again and the waiting job is bound.
        assert_ok!(submit(
            P1,
            job(1),
            &body(job(1), P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_ok!(Market::dispatch_job(
            RuntimeOrigin::signed(STRANGER),
            job(2)
        ));
        assert_eq!(bound_to(job(2)), vec![P1]);
    });
}

#[test]
fn dispatch_tier2_binds_n_distinct_cheapest_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3, P4] {
            register(p, &[Tier::Quorum]);
        }
        offer(P1, 40, 5, 0);
        offer(P2, 10, 5, 0);
        offer(P3, 30, 5, 0);
        offer(P4, 20, 5, 0);
        // k = 2: each settling provider gets at least 45; P1's 40 fits, so the three
        // cheapest are bound, cheapest first.
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, 90);
        assert_eq!(bound_to(JOB), vec![P2, P4, P3]);
        // A share of 30 (90 / 3) leaves only three offers: P1 asks 40.
        fund(JOB2, TierTerms::Quorum { k: 3, n: 4 }, 90);
        assert_eq!(status(JOB2), JobStatus::Funded);
    });
}

#[test]
fn dispatch_eligibility_rejects() {
    build_and_execute(|| {
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Signed], &[TeeKind::Tdx], b"NVIDIA A100"),
            None
        ));
        register(P2, &[Tier::Quorum]);
        offer(P1, 1, 10, 0);
        offer(P2, 1, 10, 0);
        let fund_class = |job_id: JobId, tees: &[TeeKind], model: &[u8]| {
            assert_ok!(Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                job_id,
                SPEC,
                TierTerms::Signed,
                ProviderClass {
                    tee_kinds: tees.to_vec().try_into().unwrap(),
                    gpu_model: gpu(model),
                    gpu_count: 0,
                },
                PRICE,
                DEADLINE,
                0
            ));
        };
        // GPU model, TEE kind: P1 does not match; P2 does not serve tier 1.
        fund_class(job(1), &[], GPU);
        fund_class(job(2), &[TeeKind::SevSnp], b"");
        for j in [job(1), job(2)] {
            assert_eq!(status(j), JobStatus::Funded);
            assert_noop!(
                Market::dispatch_job(RuntimeOrigin::signed(STRANGER), j),
                Error::<Test>::NoEligibleOffer
            );
        }
        fund_class(job(3), &[TeeKind::SevSnp, TeeKind::Tdx], b"NVIDIA A100");
        assert_eq!(bound_to(job(3)), vec![P1]);
    });
}

#[test]
fn dispatch_attested_eligibility_rejects() {
    build_and_execute(|| {
        register(P2, &[Tier::Signed, Tier::Quorum]);
        register_attested(P1, TeeKind::SevSnp);
        // P1 is full: only the ineligible P2 has capacity.
        offer(P1, 1, 0, 0);
        offer(P2, 1, 10, 0);
        fund(JOB, attested_policy(false), PRICE);
        // Not serving tier 3.
        assert_eq!(status(JOB), JobStatus::Funded);
        offer(P1, 1, 10, 0);
        // Attested under another policy than the job's.
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB2,
            SPEC,
            TierTerms::Attested {
                policy: policy_tdx_only(),
                fresh_quote: false
            },
            ProviderClass::default(),
            PRICE,
            DEADLINE,
            0
        ));
        assert_eq!(status(JOB2), JobStatus::Funded);
        // A TEE kind the job does not accept.
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            job(3),
            SPEC,
            attested_policy(false),
            ProviderClass {
                tee_kinds: vec![TeeKind::Tdx].try_into().unwrap(),
                gpu_model: gpu(b""),
                gpu_count: 0,
            },
            PRICE,
            DEADLINE,
            0
        ));
        assert_eq!(status(job(3)), JobStatus::Funded);
        // Expired attested key: even JOB, which P1 could serve, is no longer bound.
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS);
        assert_noop!(
            Market::dispatch_job(RuntimeOrigin::signed(STRANGER), JOB),
            Error::<Test>::NoEligibleOffer
        );
    });
}

#[test]
fn waiting_job_bound_on_idle_works() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        for n in 1..=3 {
            fund(job(n), TierTerms::Signed, PRICE);
        }
        assert_eq!(Waiting::<Test>::iter().count(), 3);
        idle();
        assert_eq!(Waiting::<Test>::iter().count(), 3);
        offer(P1, 1, 10, 0);
        // At most two tries a block (`MaxDispatchPerBlock`), resuming where the last stopped.
        idle();
        assert_eq!(Waiting::<Test>::iter().count(), 1);
        idle();
        assert_eq!(Waiting::<Test>::iter().count(), 0);
        for n in 1..=3 {
            assert_eq!(bound_to(job(n)), vec![P1]);
        }
        // No spare weight: nothing is tried.
        fund(job(4), TierTerms::Signed, PRICE);
        assert_eq!(status(job(4)), JobStatus::Bound);
        assert_eq!(
            Market::on_idle(System::block_number(), Weight::zero()),
            Weight::zero()
        );
    });
}

#[test]
fn dispatch_job_state_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        let d = |j| Market::dispatch_job(RuntimeOrigin::signed(STRANGER), j);
        assert_noop!(d(JOB), Error::<Test>::UnknownJob);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(d(JOB), Error::<Test>::NoEligibleOffer);
        assert_noop!(
            Market::dispatch_job(RuntimeOrigin::none(), JOB),
            DispatchError::BadOrigin
        );
        bind(JOB, &[P1]);
        assert_noop!(d(JOB), Error::<Test>::NotWaiting);
        offer(P1, 1, 0, 0);
        fund(JOB2, TierTerms::Signed, PRICE);
        offer(P1, 1, 10, 0);
        System::set_block_number(DEADLINE + 1);
        assert_noop!(d(JOB2), Error::<Test>::JobExpired);
        // Expired waiting jobs are skipped by on_idle and refunded as usual.
        idle();
        assert_eq!(status(JOB2), JobStatus::Funded);
        assert_ok!(Market::refund_expired(
            RuntimeOrigin::signed(STRANGER),
            JOB2
        ));
        assert!(!Waiting::<Test>::contains_key(JOB2));
    });
}

#[test]
fn cancel_job_works() {
    build_and_execute(|| {
        fund(JOB, TierTerms::Signed, PRICE);
        let before = free(BUYER);
        assert_ok!(Market::cancel_job(RuntimeOrigin::signed(BUYER), JOB));
        assert_eq!(status(JOB), JobStatus::Refunded);
        assert_eq!(held(BUYER), 0);
        assert_eq!(free(BUYER), before + PRICE);
        assert!(!Waiting::<Test>::contains_key(JOB));
        assert_eq!(
            Settlements::<Test>::get(JOB).unwrap().outcome,
            Outcome::Refunded { amount: PRICE }
        );
        assert_eq!(
            last_event(),
            Event::JobCancelled {
                job_id: JOB,
                buyer: BUYER,
                amount: PRICE
            }
        );
        // An unbound tier-3 job gives its policy use back.
        fund(JOB2, attested_policy(false), PRICE);
        assert_eq!(
            market::Policies::<Test>::get(policy_prod()).unwrap().users,
            1
        );
        assert_ok!(Market::cancel_job(RuntimeOrigin::signed(BUYER), JOB2));
        assert_eq!(
            market::Policies::<Test>::get(policy_prod()).unwrap().users,
            0
        );
    });
}

#[test]
fn cancel_job_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        let cancel = |who, j| Market::cancel_job(RuntimeOrigin::signed(who), j);
        assert_noop!(cancel(BUYER, JOB), Error::<Test>::UnknownJob);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(cancel(STRANGER, JOB), Error::<Test>::NotBuyer);
        bind(JOB, &[P1]);
        assert_noop!(cancel(BUYER, JOB), Error::<Test>::NotCancellable);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_noop!(cancel(BUYER, JOB), Error::<Test>::JobClosed);
    });
}

#[test]
fn offer_bond_works() {
    build_and_execute(|| {
        MinProviderBond::set(100);
        register(P1, &[Tier::Signed]);
        let start = free(P1);
        assert_noop!(
            Market::set_offer(RuntimeOrigin::signed(P1), 1, 1, 99),
            Error::<Test>::BondTooLow
        );
        assert_noop!(
            Market::set_offer(RuntimeOrigin::signed(STRANGER), 1, 1, 100),
            Error::<Test>::NotRegistered
        );
        offer(P1, 1, 1, 300);
        assert_eq!(bond_held(P1), 300);
        assert_eq!(free(P1), start - 300);
        assert_eq!(
            last_event(),
            Event::OfferSet {
                provider: P1,
                price: 1,
                capacity: 1,
                bond: 300
            }
        );
        offer(P1, 2, 1, 200);
        assert_eq!(bond_held(P1), 200);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_eq!(bound_to(JOB), vec![P1]);
        // While a job is open the bond can grow, not shrink, and cannot be withdrawn.
        assert_noop!(
            Market::set_offer(RuntimeOrigin::signed(P1), 2, 1, 150),
            Error::<Test>::BondLocked
        );
        assert_noop!(
            Market::withdraw_offer(RuntimeOrigin::signed(P1)),
            Error::<Test>::HasActiveJobs
        );
        offer(P1, 2, 1, 250);
        assert_eq!(bond_held(P1), 250);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_ok!(Market::withdraw_offer(RuntimeOrigin::signed(P1)));
        assert_eq!(bond_held(P1), 0);
        assert!(OfferBook::<Test>::get().is_empty());
        assert_noop!(
            Market::withdraw_offer(RuntimeOrigin::signed(P1)),
            Error::<Test>::NoOffer
        );
        // Deregistering releases the bond too.
        offer(P1, 2, 1, 100);
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert_eq!(bond_held(P1), 0);
        assert!(OfferBook::<Test>::get().is_empty());
    });
}

#[test]
fn offer_book_full_rejects() {
    build_and_execute(|| {
        for p in 1..=MAX_OFFERS as u64 {
            register(p, &[Tier::Signed]);
            offer(p, p, 1, 0);
        }
        register(MAX_OFFERS as u64 + 1, &[Tier::Signed]);
        assert_noop!(
            Market::set_offer(RuntimeOrigin::signed(MAX_OFFERS as u64 + 1), 1, 1, 0),
            Error::<Test>::OfferBookFull
        );
        // A paused offer takes no place in the book.
        offer(MAX_OFFERS as u64 + 1, 1, 0, 0);
        // Re-pricing an offer already listed keeps its place available.
        offer(1, 50, 1, 0);
        let prices: Vec<_> = OfferBook::<Test>::get()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(prices, vec![2, 3, 4, 5, 6, 7, 8, 50]);
    });
}

#[test]
fn reassign_unresponsive_provider_works() {
    build_and_execute(|| {
        MinProviderBond::set(100);
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        offer(P1, 1, 5, 1_000);
        offer(P2, 2, 5, 1_000);
        System::set_block_number(10);
        fund_with(JOB, TierTerms::Signed, PRICE, 5);
        assert_eq!(bound_to(JOB), vec![P1]);
        let reassign = || Market::reassign(RuntimeOrigin::signed(STRANGER), JOB);
        System::set_block_number(15);
        assert_noop!(reassign(), Error::<Test>::ResponseWindowOpen);
        System::set_block_number(16);
        let buyer_before = free(BUYER);
        assert_ok!(reassign());
        // P1 loses a tenth of its bond to the buyer and the job; P2 is bound.
        assert_eq!(bond_held(P1), 900);
        assert_eq!(free(BUYER), buyer_before + 100);
        assert_eq!(Providers::<Test>::get(P1).unwrap().offer.unwrap().bond, 900);
        assert_eq!(Providers::<Test>::get(P1).unwrap().active_jobs, 0);
        assert_eq!(bound_to(JOB), vec![P2]);
        assert_eq!(Bindings::<Test>::get(JOB).unwrap().bound_at, 16);
        let penalties = Penalties::<Test>::get(JOB);
        assert_eq!(penalties.len(), 1);
        assert_eq!(penalties[0].provider, P1);
        assert_eq!(penalties[0].reason, PenaltyReason::Unresponsive);
        assert_eq!(penalties[0].amount, 100);
        assert!(events().contains(&Event::ProviderPenalised {
            job_id: JOB,
            provider: P1,
            reason: PenaltyReason::Unresponsive,
            amount: 100
        }));
        // P1's late receipt is refused: it is no longer bound.
        assert_noop!(
            submit(P1, JOB, &body(JOB, P1, Tier::Signed, RESULT_A), None),
            Error::<Test>::NotBoundProvider
        );
        // P2 delivers and is paid; the escrow is exactly the price.
        let p2_before = free(P2);
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Signed, RESULT_A),
            None
        ));
        assert_eq!(free(P2), p2_before + PRICE);
        assert_noop!(reassign(), Error::<Test>::JobClosed);
    });
}

#[test]
fn reassign_without_replacement_waits_works() {
    build_and_execute(|| {
        MinProviderBond::set(100);
        register(P1, &[Tier::Signed]);
        // One penalty takes P1's bond below the minimum: its offer leaves the book.
        offer(P1, 1, 5, 105);
        fund_with(JOB, TierTerms::Signed, PRICE, 5);
        System::set_block_number(10);
        assert_ok!(Market::reassign(RuntimeOrigin::signed(STRANGER), JOB));
        assert_eq!(bond_held(P1), 95);
        assert!(OfferBook::<Test>::get().is_empty());
        assert_eq!(status(JOB), JobStatus::Funded);
        assert!(Waiting::<Test>::contains_key(JOB));
        assert!(Bindings::<Test>::get(JOB).is_none());
        // The buyer may now cancel it.
        assert_ok!(Market::cancel_job(RuntimeOrigin::signed(BUYER), JOB));
    });
}

#[test]
fn reassign_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        offer(P1, 1, 5, 0);
        let reassign = |j| Market::reassign(RuntimeOrigin::signed(STRANGER), j);
        assert_noop!(reassign(JOB), Error::<Test>::UnknownJob);
        // No response window: the provider has until the deadline.
        fund(JOB, TierTerms::Signed, PRICE);
        System::set_block_number(DEADLINE);
        assert_noop!(reassign(JOB), Error::<Test>::NothingToReassign);
        System::set_block_number(DEADLINE + 1);
        assert_noop!(reassign(JOB), Error::<Test>::JobExpired);
        System::set_block_number(1);
        offer(P1, 1, 0, 0);
        fund_with(JOB2, TierTerms::Signed, PRICE, 3);
        assert_noop!(reassign(JOB2), Error::<Test>::JobNotBound);
        // A bound provider that delivered is not taken off.
        register(P2, &[Tier::Quorum]);
        register(P3, &[Tier::Quorum]);
        register(P4, &[Tier::Quorum]);
        let q = job(3);
        fund_with(q, TierTerms::Quorum { k: 2, n: 3 }, PRICE, 3);
        bind(q, &[P2, P3, P4]);
        for p in [P2, P3, P4] {
            assert_ok!(submit(p, q, &body(q, p, Tier::Quorum, [p as u8; 32]), None));
        }
        System::set_block_number(10);
        assert_noop!(reassign(q), Error::<Test>::NothingToReassign);
        assert_noop!(
            Market::reassign(RuntimeOrigin::none(), q),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn reassign_tier2_keeps_delivered_providers_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3, P4, P5] {
            register(p, &[Tier::Quorum]);
        }
        for p in [P1, P2, P3] {
            offer(p, 1, 5, 0);
        }
        fund_with(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE, 5);
        assert_eq!(bound_to(JOB), vec![P1, P2, P3]);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Quorum, RESULT_A),
            None
        ));
        // P2 and P3 stay silent; P4 and P5 offer later.
        offer(P4, 1, 5, 0);
        offer(P5, 1, 5, 0);
        System::set_block_number(7);
        assert_ok!(Market::reassign(RuntimeOrigin::signed(STRANGER), JOB));
        let bound = bound_to(JOB);
        assert_eq!(bound[0], P1);
        let mut replacements = bound[1..].to_vec();
        replacements.sort();
        assert_eq!(replacements, vec![P4, P5]);
        assert_eq!(status(JOB), JobStatus::Bound);
        for p in [P2, P3] {
            assert_eq!(Providers::<Test>::get(p).unwrap().active_jobs, 0);
        }
        let penalised: Vec<u64> = Penalties::<Test>::get(JOB)
            .iter()
            .map(|p| p.provider)
            .collect();
        assert_eq!(penalised, vec![P2, P3]);
        // P1's receipt still counts: one more matching receipt settles the job.
        assert_ok!(submit(
            P4,
            JOB,
            &body(JOB, P4, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Settled);
    });
}

#[test]
fn dissenting_quorum_receipt_penalised_works() {
    build_and_execute(|| {
        MinProviderBond::set(100);
        for p in [P1, P2, P3] {
            register(p, &[Tier::Quorum]);
            offer(p, 1, 5, 1_000);
        }
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE);
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Quorum, RESULT_A),
            None
        ));
        assert_ok!(submit(
            P2,
            JOB,
            &body(JOB, P2, Tier::Quorum, RESULT_B),
            None
        ));
        let buyer_before = free(BUYER);
        assert_ok!(submit(
            P3,
            JOB,
            &body(JOB, P3, Tier::Quorum, RESULT_A),
            None
        ));
        assert_eq!(status(JOB), JobStatus::Settled);
        // P2 dissented: a fifth of its bond goes to the buyer; the others keep theirs.
        assert_eq!(bond_held(P2), 800);
        assert_eq!(bond_held(P1), 1_000);
        assert_eq!(bond_held(P3), 1_000);
        assert_eq!(free(BUYER), buyer_before + 200);
        let penalties = Penalties::<Test>::get(JOB);
        assert_eq!(penalties.len(), 1);
        assert_eq!(penalties[0].reason, PenaltyReason::Dissent);
    });
}

#[test]
fn penalty_record_full_stops_dispatch_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3, P4] {
            register(p, &[Tier::Signed]);
            offer(p, 1, 5, 0);
        }
        System::set_block_number(1);
        fund_with(JOB, TierTerms::Signed, PRICE, 1);
        // Three providers in turn miss the window (`MaxPenalties` is 3).
        for n in 0..3u64 {
            System::set_block_number(3 + 2 * n);
            assert_ok!(Market::reassign(RuntimeOrigin::signed(STRANGER), JOB));
        }
        assert_eq!(Penalties::<Test>::get(JOB).len(), 3);
        assert_eq!(status(JOB), JobStatus::Funded);
        assert_noop!(
            Market::dispatch_job(RuntimeOrigin::signed(STRANGER), JOB),
            Error::<Test>::NoEligibleOffer
        );
    });
}
