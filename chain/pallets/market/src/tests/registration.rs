//! Registration: `register_provider` (plain and attested, its evidence checks and key
//! binding) and `deregister`.

use super::*;

#[test]
fn register_provider_works() {
    build_and_execute(|| {
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Signed, Tier::Quorum], &[], GPU),
            None,
        ));
        let info = Providers::<Test>::get(P1).unwrap();
        assert_eq!(info.signing_key, key_of(P1));
        assert_eq!(info.capabilities.gpu_model, gpu(GPU));
        assert_eq!(info.attested, None);
        assert_eq!(info.registered_at, 1);
        assert_eq!(info.active_jobs, 0);
        assert_eq!(
            last_event(),
            Event::ProviderRegistered {
                provider: P1,
                signing_key: key_of(P1),
                tiers: vec![Tier::Signed, Tier::Quorum].try_into().unwrap(),
                attested: None,
            }
        );
    });
}

#[test]
fn register_attested_provider_works() {
    build_and_execute(|| {
        let sub = attestation_of(P1, TeeKind::Tdx);
        let digest = evidence_digest(&sub.evidence);
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Attested], &[TeeKind::Tdx], GPU),
            Some(sub.clone()),
        ));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.tee, TeeKind::Tdx);
        assert_eq!(attested.measurement, GOOD_MEASUREMENT);
        assert_eq!(attested.policy, policy_prod());
        assert_eq!(attested.evidence_digest, digest);
        assert_eq!(attested.verified_at_ms, now_ms());
        // The evidence's own lifetime is shorter than MaxAttestationValidityMs.
        assert_eq!(attested.expires_at_ms, now_ms() + EVIDENCE_LIFETIME_MS);
        let record = Attestations::<Test>::get(digest).unwrap();
        assert_eq!(record.evidence, sub.evidence);
        assert_eq!(record.collateral, sub.collateral);
        assert_eq!(record.key, key_of(P1));
        assert_eq!(
            last_event(),
            Event::ProviderRegistered {
                provider: P1,
                signing_key: key_of(P1),
                tiers: vec![Tier::Attested].try_into().unwrap(),
                attested: Some((TeeKind::Tdx, now_ms() + EVIDENCE_LIFETIME_MS)),
            }
        );
    });
}

#[test]
fn register_attested_provider_expiry_is_capped_works() {
    build_and_execute(|| {
        // Evidence issued in the future would outlive the cap; the verifier refuses it, so cap
        // through a long-lived policy instead: simulated evidence under the simulated policy.
        let evidence = make_evidence(
            &platform_pair(),
            MockStatement {
                measurement: BAD_MEASUREMENT,
                ..statement(key_of(P1), TeeKind::Simulated, reg_nonce(P1))
            },
        );
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P1),
            key_of(P1),
            proof_of(P1),
            caps(&[Tier::Attested], &[TeeKind::Simulated], b""),
            Some(submission(
                &evidence,
                &good_collateral(),
                policy_simulated()
            )),
        ));
        let attested = Providers::<Test>::get(P1).unwrap().attested.unwrap();
        assert_eq!(attested.tee, TeeKind::Simulated);
        assert!(attested.expires_at_ms <= now_ms() + 7 * 24 * HOUR_MS);
    });
}

#[test]
fn register_provider_origin_rejects() {
    build_and_execute(|| {
        for origin in [RuntimeOrigin::root(), RuntimeOrigin::none()] {
            assert_noop!(
                Market::register_provider(
                    origin,
                    key_of(P1),
                    proof_of(P1),
                    caps(&[Tier::Signed], &[], b""),
                    None
                ),
                DispatchError::BadOrigin
            );
        }
    });
}

#[test]
fn register_provider_bad_input_rejects() {
    build_and_execute(|| {
        let reg =
            |caps: Capabilities, proof: [u8; 64], att: Option<AttestationSubmission<Test>>| {
                Market::register_provider(RuntimeOrigin::signed(P1), key_of(P1), proof, caps, att)
            };
        assert_noop!(
            reg(caps(&[], &[], b""), proof_of(P1), None),
            Error::<Test>::NoTiers
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed, Tier::Signed], &[], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::DuplicateTier
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed], &[TeeKind::Tdx, TeeKind::Tdx], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::DuplicateTeeKind
        );
        assert_noop!(
            reg(
                caps(&[Tier::Attested], &[TeeKind::SevSnp], b""),
                proof_of(P1),
                None
            ),
            Error::<Test>::AttestationRequired
        );
        assert_noop!(
            reg(
                caps(&[Tier::Signed], &[TeeKind::SevSnp], b""),
                proof_of(P1),
                Some(attestation_of(P1, TeeKind::SevSnp))
            ),
            Error::<Test>::UnexpectedAttestation
        );
        // A proof by another key, and a proof for another account.
        assert_noop!(
            reg(caps(&[Tier::Signed], &[], b""), proof_of(P2), None),
            Error::<Test>::BadKeyProof
        );
        let wrong_account = pair_of(P1).sign(&key_proof_message(&P2)).0;
        assert_noop!(
            reg(caps(&[Tier::Signed], &[], b""), wrong_account, None),
            Error::<Test>::BadKeyProof
        );
    });
}

#[test]
fn register_provider_twice_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Signed]);
        assert_noop!(
            Market::register_provider(
                RuntimeOrigin::signed(P1),
                key_of(P1),
                proof_of(P1),
                caps(&[Tier::Quorum], &[], b""),
                None
            ),
            Error::<Test>::AlreadyRegistered
        );
    });
}

#[test]
fn register_provider_key_of_another_account_rejects() {
    build_and_execute(|| {
        register(P1, &[Tier::Quorum]);
        // One operator holding P1's key signs a proof for a second account: refused, so one
        // key can never count as two quorum members.
        let proof = pair_of(P1).sign(&key_proof_message(&P2)).0;
        assert_noop!(
            Market::register_provider(
                RuntimeOrigin::signed(P2),
                key_of(P1),
                proof,
                caps(&[Tier::Quorum], &[], b""),
                None
            ),
            Error::<Test>::KeyInUse
        );
        // Once P1 leaves, the key is free again (for whoever can sign with it).
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert!(!crate::SigningKeys::<Test>::contains_key(key_of(P1)));
        assert_ok!(Market::register_provider(
            RuntimeOrigin::signed(P2),
            key_of(P1),
            proof,
            caps(&[Tier::Quorum], &[], b""),
            None
        ));
        assert_eq!(crate::SigningKeys::<Test>::get(key_of(P1)), Some(P2));
    });
}

fn register_with(sub: AttestationSubmission<Test>) -> polkadot_sdk::sp_runtime::DispatchResult {
    Market::register_provider(
        RuntimeOrigin::signed(P1),
        key_of(P1),
        proof_of(P1),
        caps(&[Tier::Attested], &[TeeKind::SevSnp], b""),
        Some(sub),
    )
}

#[test]
fn register_attested_provider_bad_evidence_rejects() {
    build_and_execute(|| {
        let good = make_evidence(
            &platform_pair(),
            statement(key_of(P1), TeeKind::SevSnp, [0; 32]),
        );
        let coll = good_collateral();

        // Tampered evidence: a measurement changed after signing.
        let mut tampered = good.clone();
        tampered.statement.measurement[0] ^= 1;
        assert_noop!(
            register_with(submission(&tampered, &coll, policy_prod())),
            rejected(AttestationFailure::BadSignature)
        );
        // Tampered signature bytes.
        let mut bad_sig = good.clone();
        bad_sig.signature[10] ^= 0x80;
        assert_noop!(
            register_with(submission(&bad_sig, &coll, policy_prod())),
            rejected(AttestationFailure::BadSignature)
        );
        // Evidence signed by a platform key the root never endorsed.
        let rogue = ed25519::Pair::from_seed(&[0x66; 32]);
        let rogue_evidence = make_evidence(&rogue, statement(key_of(P1), TeeKind::SevSnp, [0; 32]));
        assert_noop!(
            register_with(submission(&rogue_evidence, &coll, policy_prod())),
            rejected(AttestationFailure::BadSignature)
        );
        // ... with collateral endorsing it by a rogue root.
        let rogue_coll = make_collateral(&rogue, &rogue, now_ms() + HOUR_MS);
        assert_noop!(
            register_with(submission(&rogue_evidence, &rogue_coll, policy_prod())),
            rejected(AttestationFailure::UntrustedSigner)
        );
        // Expired collateral.
        let old_coll = make_collateral(&root_pair(), &platform_pair(), now_ms() - 1);
        assert_noop!(
            register_with(submission(&good, &old_coll, policy_prod())),
            rejected(AttestationFailure::OutsideValidity)
        );
        // Stale evidence.
        let stale = make_evidence(
            &platform_pair(),
            MockStatement {
                issued_at_ms: now_ms() - EVIDENCE_LIFETIME_MS,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&stale, &coll, policy_prod())),
            rejected(AttestationFailure::OutsideValidity)
        );
        // Garbage.
        let garbage = AttestationSubmission::<Test> {
            evidence: vec![1, 2, 3].try_into().unwrap(),
            collateral: coll.encode().try_into().unwrap(),
            policy: policy_prod(),
            anchor: 0,
        };
        assert_noop!(
            register_with(garbage),
            rejected(AttestationFailure::Malformed)
        );
        // Policy appraisal.
        assert_noop!(
            register_with(submission(&good, &coll, [0x77; 32])),
            Error::<Test>::UnknownPolicy
        );
        let bad_measurement = make_evidence(
            &platform_pair(),
            MockStatement {
                measurement: BAD_MEASUREMENT,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&bad_measurement, &coll, policy_prod())),
            rejected(AttestationFailure::MeasurementRejected)
        );
        let debug = make_evidence(
            &platform_pair(),
            MockStatement {
                debug: true,
                ..statement(key_of(P1), TeeKind::SevSnp, [0; 32])
            },
        );
        assert_noop!(
            register_with(submission(&debug, &coll, policy_prod())),
            rejected(AttestationFailure::DebugEnabled)
        );
        let simulated = make_evidence(
            &platform_pair(),
            statement(key_of(P1), TeeKind::Simulated, [0; 32]),
        );
        assert_noop!(
            register_with(submission(&simulated, &coll, policy_prod())),
            rejected(AttestationFailure::SimulatedRejected)
        );
        assert_noop!(
            register_with(submission(&good, &coll, policy_tdx_only())),
            rejected(AttestationFailure::UnsupportedTee)
        );
    });
}

#[test]
fn register_attested_provider_binding_rejects() {
    build_and_execute(|| {
        // Evidence attesting another key than the one registered.
        assert_noop!(
            register_with(attestation_of(P2, TeeKind::SevSnp)),
            Error::<Test>::AttestedKeyMismatch
        );
        // Evidence from a TEE kind the provider does not list.
        assert_noop!(
            register_with(attestation_of(P1, TeeKind::Tdx)),
            Error::<Test>::TeeKindNotOffered
        );
        assert!(Attestations::<Test>::iter().next().is_none());
    });
}

// ---- deregister ------------------------------------------------------------------------------

#[test]
fn deregister_works() {
    build_and_execute(|| {
        bound_signed_job();
        assert_ok!(submit(
            P1,
            JOB,
            &body(JOB, P1, Tier::Signed, RESULT_A),
            None
        ));
        assert_ok!(Market::deregister(RuntimeOrigin::signed(P1)));
        assert!(!Providers::<Test>::contains_key(P1));
        assert_eq!(last_event(), Event::ProviderDeregistered { provider: P1 });
        // The records it took part in stay.
        assert!(Receipts::<Test>::contains_key(JOB, P1));
        assert!(Settlements::<Test>::contains_key(JOB));
        // It can register again.
        register(P1, &[Tier::Signed]);
    });
}

#[test]
fn deregister_rejects() {
    build_and_execute(|| {
        assert_noop!(
            Market::deregister(RuntimeOrigin::signed(P1)),
            Error::<Test>::NotRegistered
        );
        assert_noop!(
            Market::deregister(RuntimeOrigin::root()),
            DispatchError::BadOrigin
        );
        bound_signed_job();
        assert_noop!(
            Market::deregister(RuntimeOrigin::signed(P1)),
            Error::<Test>::HasActiveJobs
        );
    });
}

/// The calls that verify evidence are charged by what it carries, as the verifier reads it
/// before dispatch (issue 17): their own path plus `verify_evidence` at the evidence's cost.
#[test]
fn evidence_weight_follows_what_it_carries_works() {
    use crate::{AttestationVerifier, WeightInfo};
    use polkadot_sdk::frame_support::dispatch::GetDispatchInfo;
    build_and_execute(|| {
        let sub = attestation_of(P1, TeeKind::SevSnp);
        let cost = MockVerifier::evidence_cost(&sub.evidence, &sub.collateral);
        assert_eq!(
            cost.bytes as usize,
            sub.evidence.len() + sub.collateral.len()
        );
        let evidence =
            <() as WeightInfo>::verify_evidence(cost.gpus, cost.rims, cost.ocsp, cost.bytes);
        let register = market::Call::<Test>::register_provider {
            signing_key: key_of(P1),
            key_proof: proof_of(P1),
            capabilities: caps(&[Tier::Signed, Tier::Attested], &[TeeKind::SevSnp], GPU),
            attestation: Some(sub.clone()),
        };
        assert_eq!(
            register.get_dispatch_info().call_weight,
            <() as WeightInfo>::register_attested_provider().saturating_add(evidence)
        );
        let refresh = market::Call::<Test>::refresh_attestation {
            attestation: sub.clone(),
        };
        assert_eq!(
            refresh.get_dispatch_info().call_weight,
            <() as WeightInfo>::register_attested_provider().saturating_add(evidence)
        );
        // A receipt without evidence is not charged for any.
        let plain = market::Call::<Test>::submit_receipt {
            job_id: [1; 32],
            body: BoundedVec::default(),
            signature: [0; 64],
            fresh_evidence: None,
        };
        let with = market::Call::<Test>::submit_receipt {
            job_id: [1; 32],
            body: BoundedVec::default(),
            signature: [0; 64],
            fresh_evidence: Some(sub),
        };
        assert!(
            with.get_dispatch_info().call_weight.ref_time()
                >= plain.get_dispatch_info().call_weight.ref_time()
        );
        assert!(
            with.get_dispatch_info().call_weight.ref_time()
                >= <() as WeightInfo>::submit_receipt_fresh_quote()
                    .saturating_add(evidence)
                    .ref_time()
        );
    });
}
