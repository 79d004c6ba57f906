//! Binding: `bind`, the dispatcher origin, job states, quorum sizes and provider classes.

use super::*;

#[test]
fn bind_works() {
    build_and_execute(|| {
        for p in [P1, P2, P3] {
            register(p, &[Tier::Quorum]);
        }
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE);
        System::set_block_number(7);
        bind(JOB, &[P3, P1, P2]);
        let binding = Bindings::<Test>::get(JOB).unwrap();
        assert_eq!(binding.providers.to_vec(), vec![P3, P1, P2]);
        assert_eq!(binding.bound_at, 7);
        assert_eq!(status(JOB), JobStatus::Bound);
        for p in [P1, P2, P3] {
            assert_eq!(Providers::<Test>::get(p).unwrap().active_jobs, 1);
        }
        assert_eq!(
            last_event(),
            Event::JobBound {
                job_id: JOB,
                providers: vec![P3, P1, P2].try_into().unwrap()
            }
        );
    });
}

#[test]
fn bind_origin_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        fund(JOB, TierTerms::Signed, PRICE);
        for origin in [
            RuntimeOrigin::root(),
            RuntimeOrigin::signed(BUYER),
            RuntimeOrigin::signed(P1),
            RuntimeOrigin::none(),
        ] {
            assert_noop!(
                Market::bind(origin, JOB, vec![P1].try_into().unwrap()),
                DispatchError::BadOrigin
            );
        }
    });
}

fn try_bind(job_id: JobId, providers: &[u64]) -> polkadot_sdk::sp_runtime::DispatchResult {
    Market::bind(
        RuntimeOrigin::signed(DISPATCHER),
        job_id,
        providers.to_vec().try_into().unwrap(),
    )
}

#[test]
fn bind_job_state_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        register(P2, &[Tier::Signed]);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::UnknownJob);
        fund(JOB, TierTerms::Signed, PRICE);
        assert_noop!(try_bind(JOB, &[]), Error::<Test>::WrongProviderCount);
        assert_noop!(try_bind(JOB, &[P1, P2]), Error::<Test>::WrongProviderCount);
        bind(JOB, &[P1]);
        assert_noop!(try_bind(JOB, &[P2]), Error::<Test>::NotBindable);
        fund(JOB2, TierTerms::Signed, PRICE);
        System::set_block_number(DEADLINE + 1);
        assert_noop!(try_bind(JOB2, &[P2]), Error::<Test>::JobExpired);
    });
}

#[test]
fn bind_quorum_providers_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Quorum]);
        register(P2, &[Tier::Quorum]);
        register(P3, &[Tier::Signed]);
        fund(JOB, TierTerms::Quorum { k: 2, n: 3 }, PRICE);
        assert_noop!(try_bind(JOB, &[P1, P2]), Error::<Test>::WrongProviderCount);
        assert_noop!(
            try_bind(JOB, &[P1, P2, P1]),
            Error::<Test>::DuplicateProvider
        );
        assert_noop!(
            try_bind(JOB, &[P1, P2, STRANGER]),
            Error::<Test>::NotRegistered
        );
        assert_noop!(try_bind(JOB, &[P1, P2, P3]), Error::<Test>::TierNotOffered);
    });
}

#[test]
fn bind_provider_class_rejects() {
    build_and_execute(|| {
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Signed], &[TeeKind::Tdx], b"NVIDIA A100"),
            None
        ));
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
                DEADLINE
            ));
        };
        fund_class(JOB, &[], GPU);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::GpuModelMismatch);
        fund_class(JOB2, &[TeeKind::SevSnp], b"");
        assert_noop!(try_bind(JOB2, &[P1]), Error::<Test>::TeeKindMismatch);
        fund_class([3; 32], &[TeeKind::SevSnp, TeeKind::Tdx], b"NVIDIA A100");
        assert_ok!(try_bind([3; 32], &[P1]));
    });
}

#[test]
fn bind_attested_provider_rejects() {
    build_and_execute(|| {
        register(P2, &[Tier::Signed, Tier::Quorum]);
        register_attested(P1, TeeKind::SevSnp);
        fund(JOB, attested_policy(false), PRICE);
        // Not serving tier 3.
        assert_noop!(try_bind(JOB, &[P2]), Error::<Test>::TierNotOffered);
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
            DEADLINE
        ));
        assert_noop!(try_bind(JOB2, &[P1]), Error::<Test>::PolicyMismatch);
        // A TEE kind the job does not accept.
        let tdx_only = [3; 32];
        assert_ok!(Market::fund_job(
            RuntimeOrigin::signed(BUYER),
            tdx_only,
            SPEC,
            attested_policy(false),
            ProviderClass {
                tee_kinds: vec![TeeKind::Tdx].try_into().unwrap(),
                gpu_model: gpu(b""),
                gpu_count: 0,
            },
            PRICE,
            DEADLINE
        ));
        assert_noop!(try_bind(tdx_only, &[P1]), Error::<Test>::TeeKindMismatch);
        // Expired attested key.
        NowMs::set(now_ms() + EVIDENCE_LIFETIME_MS);
        assert_noop!(try_bind(JOB, &[P1]), Error::<Test>::AttestationExpired);
    });
}
