//! Funding: `fund_job`, its terms, balances and escrow hold.

use super::*;

#[test]
fn fund_job_works() {
    build_and_execute(|| {
        let issuance = Balances::total_issuance();
        let class = ProviderClass {
            tee_kinds: vec![TeeKind::SevSnp].try_into().unwrap(),
            gpu_model: gpu(GPU),
            gpu_count: 0,
        };
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            attested_policy(false),
            class.clone(),
            PRICE,
            DEADLINE,
            0,
        ));
        assert_eq!(held(BUYER), PRICE);
        assert_eq!(free(BUYER), INITIAL_BALANCE - PRICE);
        assert_eq!(TotalEscrow::<Test>::get(), PRICE);
        assert_eq!(Balances::total_issuance(), issuance);
        let job = Jobs::<Test>::get(JOB).unwrap();
        assert_eq!(job.buyer, BUYER);
        assert_eq!(job.spec_hash, SPEC);
        assert_eq!(job.class, class);
        assert_eq!(job.price, PRICE);
        assert_eq!(job.deadline, DEADLINE);
        assert_eq!(job.status, JobStatus::Funded);
        assert_eq!(job.response_blocks, 0);
        // No offer serves it yet: it waits.
        assert_eq!(last_event(), Event::JobWaiting { job_id: JOB });
        assert!(crate::Waiting::<Test>::contains_key(JOB));
        assert_eq!(
            events()[events().len() - 2],
            Event::JobFunded {
                job_id: JOB,
                buyer: BUYER,
                tier: Tier::Attested,
                price: PRICE,
                deadline: DEADLINE
            }
        );
        // A second job from the same buyer adds to the same hold.
        fund(JOB2, TierTerms::Quorum { k: 2, n: 3 }, 500);
        assert_eq!(held(BUYER), PRICE + 500);
        assert_eq!(TotalEscrow::<Test>::get(), PRICE + 500);
    });
}

#[test]
fn fund_job_bad_terms_rejects() {
    build_and_execute(|| {
        let f = |job_id: JobId, terms: TierTerms, price: Balance, deadline: u64| {
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                job_id,
                SPEC,
                terms,
                ProviderClass::default(),
                price,
                deadline,
                0,
            )
        };
        assert_noop!(
            f(JOB, TierTerms::Signed, 9, DEADLINE),
            Error::<Test>::PriceTooLow
        );
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, 1),
            Error::<Test>::DeadlineInPast
        );
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, 1_002),
            Error::<Test>::DeadlineTooFar
        );
        assert_ok!(f(JOB2, TierTerms::Signed, PRICE, 1_001));
        for (k, n) in [(0, 1), (3, 2), (6, 6), (2, 4), (1, 2), (3, 6)] {
            assert_noop!(
                f(JOB, TierTerms::Quorum { k, n }, PRICE, DEADLINE),
                Error::<Test>::InvalidQuorum
            );
        }
        // Tier 2 needs at least one unit per paid provider.
        MinimumPrice::set(1);
        assert_noop!(
            f(JOB, TierTerms::Quorum { k: 3, n: 5 }, 2, DEADLINE),
            Error::<Test>::PriceTooLow
        );
        // Each of the k payees' shares must keep an account alive: k x the existential deposit.
        ExistentialDeposit::set(100);
        assert_noop!(
            f(JOB, TierTerms::Quorum { k: 3, n: 5 }, 299, DEADLINE),
            Error::<Test>::PriceTooLow
        );
        ExistentialDeposit::set(1);
        MinimumPrice::set(10);
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            JOB,
            SPEC,
            TierTerms::Quorum { k: 3, n: 5 },
            ProviderClass::default(),
            10,
            DEADLINE,
            0
        ));
        assert_noop!(
            f(JOB, TierTerms::Signed, PRICE, DEADLINE),
            Error::<Test>::JobExists
        );
        let dup = ProviderClass {
            tee_kinds: vec![TeeKind::Tdx, TeeKind::Tdx].try_into().unwrap(),
            gpu_model: gpu(b""),
            gpu_count: 0,
        };
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                [9; 32],
                SPEC,
                TierTerms::Signed,
                dup,
                PRICE,
                DEADLINE,
                0
            ),
            Error::<Test>::DuplicateTeeKind
        );
    });
}

#[test]
fn fund_job_insufficient_balance_rejects() {
    build_and_execute(|| {
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(BUYER),
                JOB,
                SPEC,
                TierTerms::Signed,
                ProviderClass::default(),
                INITIAL_BALANCE + 1,
                DEADLINE,
                0
            ),
            TokenError::FundsUnavailable
        );
        // An account that does not exist has nothing to hold.
        assert_noop!(
            Market::fund_job(
                RuntimeOrigin::signed(42),
                JOB,
                SPEC,
                TierTerms::Signed,
                ProviderClass::default(),
                PRICE,
                DEADLINE,
                0
            ),
            TokenError::FundsUnavailable
        );
    });
}

#[test]
fn fund_job_origin_rejects() {
    build_and_execute(|| {
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::fund_job(
                    origin,
                    JOB,
                    SPEC,
                    TierTerms::Signed,
                    ProviderClass::default(),
                    PRICE,
                    DEADLINE,
                    0
                ),
                DispatchError::BadOrigin
            );
        }
    });
}
