//! The market's whole loop against the real local chain, through `sigil-chain-client`:
//! fund -> bound by the chain from offers -> receipt -> settle -> audit record -> offline replay, for every tier, plus
//! refunds and refused receipts and evidence with their decoded errors.

// Tests may unwrap and index: a failure is the test's report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::time::Duration;

use sigil_chain_client::audit::replay;
use sigil_chain_client::policy::{SIMULATED_V1, policy_id};

fn simulated_policy() -> [u8; 32] {
    policy_id(SIMULATED_V1).unwrap()
}
use sigil_chain_client::types::{
    JobStatus, MarketEvent, Outcome, ProviderClass, TeeKind, Tier, TierTerms,
};
use sigil_chain_client::{ChainClient, ChainError};
use sigil_e2e::evidence_digest as evidence_digest_of;
use sigil_e2e::*;

async fn client() -> ChainClient {
    ChainClient::connect(&chain_url()).await.unwrap()
}

fn dispatch_name(e: &ChainError) -> String {
    e.dispatch_failure()
        .map(|d| d.name())
        .unwrap_or_else(|| panic!("expected a dispatch error, got {e}"))
}

/// Checks the audit record and its offline replay of a settled job.
async fn audit_settled(c: &ChainClient, job: &[u8; 32], payees: usize) {
    let record = c.job_record(job).await.unwrap();
    assert_eq!(record.job.status, JobStatus::Settled);
    let settlement = record.settlement.clone().unwrap();
    match &settlement.outcome {
        Outcome::Paid { payees: p, .. } => {
            assert_eq!(p.len(), payees);
            assert_eq!(p.iter().map(|x| x.amount).sum::<u128>(), PRICE);
        }
        other => panic!("expected a payment, got {other:?}"),
    }
    let report = replay(&record);
    assert!(report.verified, "replay: {report:#?}");
    // The record as JSON (what `sigil audit job` prints) keeps the receipt bytes as signed.
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(
        json["receipts"][0]["body"].as_str().unwrap(),
        format!("0x{}", hex::encode(&record.receipts[0].body))
    );
}

#[tokio::test]
async fn tier1_loop_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let p = ProviderKey::fresh("t1").unwrap();
    p.fund_and_register(&c, &dev, vec![Tier::Signed], vec![], None)
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let o = order(TierTerms::Signed, ProviderClass::default(), head, 100);

    let held_before = c.reserved_balance(&dev.bob.account_id()).await.unwrap();
    let funded = c.fund_job(&dev.bob, &o).await.unwrap();
    assert!(matches!(funded.events[0], MarketEvent::JobFunded { price, .. } if price == PRICE));
    assert_eq!(
        c.reserved_balance(&dev.bob.account_id()).await.unwrap() - held_before,
        PRICE
    );

    // No offer serves it yet: it waits, and the dispatch rule finds nobody.
    assert!(
        funded
            .events
            .iter()
            .any(|e| matches!(e, MarketEvent::JobWaiting { .. }))
    );
    let e = c.dispatch_job(&dev.bob, &o.job_id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.NoEligibleOffer");
    assert!(e.is_refusal());
    let bound = bind_via_offers(&c, &dev, &o.job_id, &[&p]).await.unwrap();
    assert_eq!(bound, vec![p.account()]);
    // Bound: nobody can run the rule for it again, nor take it from the provider.
    let e = c.dispatch_job(&dev.bob, &o.job_id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.NotWaiting");
    let e = c.reassign(&dev.bob, &o.job_id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.NothingToReassign");

    // The job shows up for a provider watching for its jobs... (the watch starts after the
    // binding, so it is checked on a second job below).
    let receipt = sign_receipt(
        &receipt_body(&o, &p.key, ReceiptFacts::plain(1, result_of("t1"))),
        &p.key,
    );
    let free_before = c.free_balance(&p.account()).await.unwrap();
    let included = c
        .submit_receipt(&p.signer, &o.job_id, &receipt, None)
        .await
        .unwrap();
    assert!(
        included
            .events
            .iter()
            .any(|e| matches!(e, MarketEvent::ReceiptAccepted { .. }))
    );
    assert!(included.settlement().is_some());
    let paid = c.free_balance(&p.account()).await.unwrap() - free_before;
    assert!(paid > PRICE - PRICE / 100, "paid {paid}");

    // The same receipt again: the job is closed.
    let e = c
        .submit_receipt(&p.signer, &o.job_id, &receipt, None)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.JobClosed");

    // Settlement tracking sees the closed job at once.
    let s = c
        .wait_for_settlement(&o.job_id, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(s.outcome, Outcome::Paid { .. }));
    audit_settled(&c, &o.job_id, 1).await;
}

#[tokio::test]
async fn key_rotation_keeps_open_jobs_with_their_key_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let p = ProviderKey::fresh("rot").unwrap();
    p.fund_and_register(&c, &dev, vec![Tier::Signed], vec![], None)
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let o1 = order(TierTerms::Signed, ProviderClass::default(), head, 100);
    c.fund_job(&dev.bob, &o1).await.unwrap();
    bind_via_offers(&c, &dev, &o1.job_id, &[&p]).await.unwrap();

    // A restarted agent has a new key: the account rotates to it with the job still open.
    let new_key = ProviderKey::fresh("rot-new").unwrap().key;
    let proof = new_key.sign(&sigil_chain_client::key_proof_message(&p.account()));
    let rotated = c
        .rotate_key(&p.signer, new_key.public_key(), proof, None)
        .await
        .unwrap();
    assert!(rotated.events.iter().any(|e| matches!(
        e,
        MarketEvent::KeyRotated { open_jobs: 1, new_key: k, .. } if *k == new_key.public_key()
    )));
    let info = c.provider(&p.account()).await.unwrap().unwrap();
    assert_eq!(info.signing_key, new_key.public_key());
    assert_eq!(
        info.retiring.as_ref().map(|r| (r.signing_key, r.open_jobs)),
        Some((p.key.public_key(), 1))
    );

    // A job bound now is bound under the new key.
    let head = c.block_number().await.unwrap();
    let o2 = order(TierTerms::Signed, ProviderClass::default(), head, 100);
    c.fund_job(&dev.bob, &o2).await.unwrap();
    // Room for a second job beside the open one, then paused again.
    c.set_offer(&p.signer, 0, 2, BOND).await.unwrap();
    if c.job(&o2.job_id).await.unwrap().unwrap().status == JobStatus::Funded {
        c.dispatch_job(&dev.bob, &o2.job_id).await.unwrap();
    }
    c.set_offer(&p.signer, 0, 0, BOND).await.unwrap();
    let b2 = c.binding(&o2.job_id).await.unwrap().unwrap();
    assert_eq!(b2.providers, vec![p.account()]);
    assert_eq!(b2.keys, vec![new_key.public_key()]);

    // The first job takes only the old key's receipt; the second only the new key's.
    let by_new = sign_receipt(
        &receipt_body(&o1, &new_key, ReceiptFacts::plain(1, result_of("rot1"))),
        &new_key,
    );
    let e = c
        .submit_receipt(&p.signer, &o1.job_id, &by_new, None)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.WrongSigner");
    let by_old = sign_receipt(
        &receipt_body(&o1, &p.key, ReceiptFacts::plain(1, result_of("rot1"))),
        &p.key,
    );
    let settled = c
        .submit_receipt(&p.signer, &o1.job_id, &by_old, None)
        .await
        .unwrap();
    assert!(settled.settlement().is_some());
    assert!(
        settled.events.iter().any(
            |e| matches!(e, MarketEvent::KeyRetired { key, .. } if *key == p.key.public_key())
        )
    );
    assert!(
        c.provider(&p.account())
            .await
            .unwrap()
            .unwrap()
            .retiring
            .is_none()
    );
    let by_new = sign_receipt(
        &receipt_body(&o2, &new_key, ReceiptFacts::plain(1, result_of("rot2"))),
        &new_key,
    );
    c.submit_receipt(&p.signer, &o2.job_id, &by_new, None)
        .await
        .unwrap();
    // Both replay offline: each receipt against the key its job was bound under.
    audit_settled(&c, &o1.job_id, 1).await;
    audit_settled(&c, &o2.job_id, 1).await;
}

#[tokio::test]
async fn provider_watch_and_buyer_watch_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let p = ProviderKey::fresh("watch").unwrap();
    p.fund_and_register(&c, &dev, vec![Tier::Signed], vec![], None)
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let o = order(TierTerms::Signed, ProviderClass::default(), head, 100);
    c.fund_job(&dev.bob, &o).await.unwrap();

    use futures::StreamExt;
    let mut jobs = Box::pin(c.jobs_bound_to(&p.account()).await.unwrap());
    let mut updates = Box::pin(c.watch_job(&o.job_id).await.unwrap());
    bind_via_offers(&c, &dev, &o.job_id, &[&p]).await.unwrap();
    let assignment = tokio::time::timeout(Duration::from_secs(30), jobs.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(assignment.job_id, o.job_id);
    assert_eq!(assignment.job.unwrap().spec_hash, o.spec_hash);

    let receipt = sign_receipt(
        &receipt_body(&o, &p.key, ReceiptFacts::plain(1, result_of("watch"))),
        &p.key,
    );
    c.submit_receipt(&p.signer, &o.job_id, &receipt, None)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(u) = tokio::time::timeout(Duration::from_secs(30), updates.next())
        .await
        .unwrap()
    {
        let u = u.unwrap();
        assert_eq!(u.event.job_id(), Some(o.job_id));
        seen.push(u.event);
    }
    // The watch starts at the finalized head, which may still be the funding block.
    let names: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            MarketEvent::JobFunded { .. } => "funded",
            MarketEvent::JobWaiting { .. } => "waiting",
            MarketEvent::JobBound { .. } => "bound",
            MarketEvent::ReceiptAccepted { .. } => "receipt",
            MarketEvent::JobSettled { .. } => "settled",
            _ => "other",
        })
        .filter(|n| *n != "funded" && *n != "waiting")
        .collect();
    assert_eq!(names, ["bound", "receipt", "settled"]);
}

#[tokio::test]
async fn tier2_quorum_pays_the_matching_providers_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let ps: Vec<ProviderKey> = (0..3)
        .map(|i| ProviderKey::fresh(&format!("t2-{i}")).unwrap())
        .collect();
    for p in &ps {
        p.fund_and_register(&c, &dev, vec![Tier::Quorum], vec![], None)
            .await
            .unwrap();
    }
    let head = c.block_number().await.unwrap();
    let o = order(
        TierTerms::Quorum { k: 2, n: 3 },
        ProviderClass::default(),
        head,
        100,
    );
    c.fund_job(&dev.bob, &o).await.unwrap();
    let mut accounts: Vec<_> = ps.iter().map(ProviderKey::account).collect();
    let mut bound = bind_via_offers(&c, &dev, &o.job_id, &ps.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    bound.sort();
    accounts.sort();
    assert_eq!(bound, accounts);

    let agreed = result_of("t2 agreed");
    // The dissenting provider reports first: recorded, not settled.
    let dissent = sign_receipt(
        &receipt_body(
            &o,
            &ps[2].key,
            ReceiptFacts::plain(2, result_of("t2 other")),
        ),
        &ps[2].key,
    );
    let r = c
        .submit_receipt(&ps[2].signer, &o.job_id, &dissent, None)
        .await
        .unwrap();
    assert!(r.settlement().is_none());
    let first = sign_receipt(
        &receipt_body(&o, &ps[0].key, ReceiptFacts::plain(2, agreed)),
        &ps[0].key,
    );
    let r = c
        .submit_receipt(&ps[0].signer, &o.job_id, &first, None)
        .await
        .unwrap();
    assert!(r.settlement().is_none(), "one matching receipt of two");
    let dissenter = ps[2].account();
    let dissent_before = c.free_balance(&dissenter).await.unwrap();
    let dissent_bond = c.reserved_balance(&dissenter).await.unwrap();
    let second = sign_receipt(
        &receipt_body(&o, &ps[1].key, ReceiptFacts::plain(2, agreed)),
        &ps[1].key,
    );
    let r = c
        .submit_receipt(&ps[1].signer, &o.job_id, &second, None)
        .await
        .unwrap();
    match r.settlement() {
        Some(MarketEvent::JobSettled {
            result_commitment,
            payees,
            ..
        }) => {
            assert_eq!(*result_commitment, agreed);
            let mut paid: Vec<_> = payees.iter().map(|p| p.account).collect();
            paid.sort();
            let mut agreeing = vec![ps[0].account(), ps[1].account()];
            agreeing.sort();
            assert_eq!(paid, agreeing);
            assert_eq!(payees.iter().map(|p| p.amount).sum::<u128>(), PRICE);
        }
        other => panic!("expected settlement, got {other:?}"),
    }
    assert_eq!(
        c.free_balance(&dissenter).await.unwrap(),
        dissent_before,
        "the minority is not paid"
    );
    // It dissented from the settled result: a fifth of its bond went to the buyer.
    assert_eq!(
        dissent_bond - c.reserved_balance(&dissenter).await.unwrap(),
        BOND / 5
    );
    assert!(r.events.iter().any(|e| matches!(
        e,
        MarketEvent::ProviderPenalised { provider, reason: sigil_chain_client::types::PenaltyReason::Dissent, amount, .. }
            if *provider == dissenter && *amount == BOND / 5
    )));
    let record = c.job_record(&o.job_id).await.unwrap();
    assert_eq!(
        record.receipts.len(),
        3,
        "the minority receipt stays on record"
    );
    audit_settled(&c, &o.job_id, 2).await;
}

#[tokio::test]
async fn tier3_attested_key_loop_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let policy = simulated_policy();
    let p = ProviderKey::fresh("t3").unwrap();
    let key = p.key.public_key();

    // Tampered evidence (a byte of the simulator's signature) is refused with its reason.
    let intruder = ProviderKey::fresh("t3-intruder").unwrap();
    let intruder_key = intruder.key.public_key();
    let e = intruder
        .fund_and_register_simulated(
            &c,
            &dev,
            |n| tampered_simulated_bundle(intruder_key, n),
            policy,
        )
        .await
        .unwrap_err();
    assert_eq!(
        dispatch_name(&e),
        "market.AttestationRejected(BadSignature)"
    );

    // Evidence for another key than the one registered.
    let other = ProviderKey::fresh("t3-other").unwrap();
    let e = other
        .fund_and_register_simulated(&c, &dev, |n| simulated_bundle(key, n), policy)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.AttestedKeyMismatch");

    // Evidence whose nonce is not the chain's registration nonce (old or chosen evidence).
    let e = p
        .fund_and_register_simulated(
            &c,
            &dev,
            |_| simulated_bundle(key, fresh_bytes("old")),
            policy,
        )
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.StaleNonce");

    let bundle = p
        .fund_and_register_simulated(&c, &dev, |n| simulated_bundle(key, n), policy)
        .await
        .unwrap();
    let info = c.provider(&p.account()).await.unwrap().unwrap();
    let attested = info.attested.unwrap();
    assert_eq!(attested.tee, TeeKind::Simulated);
    assert_eq!(attested.evidence_digest, evidence_digest(&bundle));

    let head = c.block_number().await.unwrap();
    let o = simulated_tier3_order(policy, head);
    c.fund_job(&dev.bob, &o).await.unwrap();
    bind_via_offers(&c, &dev, &o.job_id, &[&p]).await.unwrap();

    // A receipt whose signature was tampered with is refused.
    let body = receipt_body(
        &o,
        &p.key,
        ReceiptFacts {
            tier: 3,
            result: result_of("t3"),
            evidence: attested_key_ref(&bundle),
        },
    );
    let mut bad = sign_receipt(&body, &p.key);
    let at = bad.len() - 1;
    bad[at] ^= 1;
    let e = c
        .submit_receipt(&p.signer, &o.job_id, &bad, None)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.BadSignature");

    let r = c
        .submit_receipt(&p.signer, &o.job_id, &sign_receipt(&body, &p.key), None)
        .await
        .unwrap();
    assert!(r.settlement().is_some());
    audit_settled(&c, &o.job_id, 1).await;
    let record = c.job_record(&o.job_id).await.unwrap();
    assert_eq!(record.attestations.len(), 1);
    assert_eq!(record.attestations[0].evidence, bundle);

    // The provider refreshes its key's evidence; the key stays, the evidence digest moves.
    let anchor = c.registration_anchor(&p.account()).await.unwrap();
    let fresh = simulated_bundle(key, anchor.nonce);
    let r = c
        .refresh_attestation(&p.signer, &fresh, anchor.anchor)
        .await
        .unwrap();
    assert!(
        matches!(&r.events[0], MarketEvent::AttestationRefreshed { evidence_digest, .. }
        if *evidence_digest == evidence_digest_of(&fresh))
    );
    let info = c.provider(&p.account()).await.unwrap().unwrap();
    assert_eq!(
        info.attested.unwrap().evidence_digest,
        evidence_digest_of(&fresh)
    );
    // The same evidence again does not extend the key; evidence for another key is refused.
    let e = c
        .refresh_attestation(&p.signer, &fresh, anchor.anchor)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.EvidenceNotNew");
    let anchor = c.registration_anchor(&p.account()).await.unwrap();
    let e = c
        .refresh_attestation(
            &p.signer,
            &simulated_bundle(other.key.public_key(), anchor.nonce),
            anchor.anchor,
        )
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.AttestedKeyMismatch");

    // Replay catches a record whose stored evidence was altered.
    let mut forged = record.clone();
    let len = forged.attestations[0].evidence.len();
    forged.attestations[0].evidence[len - 2] ^= 1;
    assert!(!replay(&forged).verified);
}

#[tokio::test]
async fn tier3_fresh_quote_loop_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let policy = simulated_policy();
    let p = ProviderKey::fresh("t3f").unwrap();
    let key = p.key.public_key();
    p.fund_and_register_simulated(&c, &dev, |n| simulated_bundle(key, n), policy)
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let o = order(
        TierTerms::Attested {
            policy,
            fresh_quote: true,
        },
        ProviderClass::default(),
        head,
        100,
    );
    c.fund_job(&dev.bob, &o).await.unwrap();
    bind_via_offers(&c, &dev, &o.job_id, &[&p]).await.unwrap();

    let (receipt, bundle) = fresh_quote_receipt(&o, &p.key, result_of("t3f"));
    // Without its evidence the fresh-quote receipt is refused.
    let e = c
        .submit_receipt(&p.signer, &o.job_id, &receipt, None)
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.MissingEvidence");
    // Evidence that is not this receipt's is refused.
    let (_, other) = fresh_quote_receipt(&o, &p.key, result_of("t3f other"));
    let e = c
        .submit_receipt(&p.signer, &o.job_id, &receipt, Some(&other))
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.EvidenceMismatch");
    // A receipt that names genuine evidence whose nonce does not bind the receipt.
    let mut body = receipt_body(
        &o,
        &p.key,
        ReceiptFacts {
            tier: 3,
            result: result_of("t3f unbound"),
            evidence: attestation_verifier::receipt::EvidenceRef {
                mode: attestation_verifier::receipt::EvidenceMode::FreshQuote,
                tee: attestation_verifier::receipt::TeeKind::Simulated,
                digest: [0; 32],
            },
        },
    );
    let unbound = simulated_bundle(p.key.public_key(), fresh_bytes("nonce"));
    body.evidence.digest = evidence_digest(&unbound);
    let e = c
        .submit_receipt(
            &p.signer,
            &o.job_id,
            &sign_receipt(&body, &p.key),
            Some(&unbound),
        )
        .await
        .unwrap_err();
    assert_eq!(dispatch_name(&e), "market.EvidenceNotBound");

    let r = c
        .submit_receipt(&p.signer, &o.job_id, &receipt, Some(&bundle))
        .await
        .unwrap();
    assert!(r.settlement().is_some());
    audit_settled(&c, &o.job_id, 1).await;
    let record = c.job_record(&o.job_id).await.unwrap();
    assert!(
        record
            .attestations
            .iter()
            .any(|a| a.evidence == bundle && a.nonce != [0; 32])
    );
}

/// A buyer's own policy on chain: registered with a deposit, pinning the measurement of the
/// agent build it trusts; a provider whose evidence does not satisfy it cannot register under
/// it, a provider registered under another policy is never bound to its jobs, and the job
/// settles with the provider that satisfies it.
#[tokio::test]
async fn tier3_under_a_registered_pinned_policy_works() {
    use attestation_verifier::policy::HexBytes;
    let c = client().await;
    let dev = Dev::new().unwrap();
    let mut pinned = attestation_verifier::policy::genesis::named(SIMULATED_V1).unwrap();
    // The measurement the test's evidence carries, and one of this run's (so the policy id is
    // new on a chain other tests ran on before).
    let other_build = [fresh_bytes("build"), fresh_bytes("build")].concat()[..48].to_vec();
    pinned.simulated.measurements = vec![
        HexBytes(SIMULATED_MEASUREMENT.to_vec()),
        HexBytes(other_build),
    ];
    let id = pinned.id();
    let r = c
        .register_policy(&dev.bob, &pinned.canonical_bytes())
        .await
        .unwrap();
    assert!(matches!(
        &r.events[0],
        MarketEvent::PolicyRegistered { policy, pinned: true, .. } if *policy == id
    ));
    let info = c.policy(&id).await.unwrap().unwrap();
    assert_eq!(info.owner, Some(dev.bob.account_id()));
    assert!(info.deposit > 0);
    assert_eq!(info.document, pinned.canonical_bytes());

    // Another agent build (another measurement) cannot register under it.
    let stranger = ProviderKey::fresh("pin-stranger").unwrap();
    let stranger_key = stranger.key.public_key();
    let e = stranger
        .fund_and_register_simulated(
            &c,
            &dev,
            |n| simulated_bundle_measured(stranger_key, n, [0x22; 48]),
            id,
        )
        .await
        .unwrap_err();
    assert_eq!(
        dispatch_name(&e),
        "market.AttestationRejected(MeasurementRejected)"
    );
    // It registers under the genesis simulated policy instead, and is never bound to a job
    // funded under the pinned one.
    stranger
        .fund_and_register_simulated(
            &c,
            &dev,
            |n| simulated_bundle_measured(stranger_key, n, [0x22; 48]),
            simulated_policy(),
        )
        .await
        .unwrap();
    let p = ProviderKey::fresh("pinned").unwrap();
    let key = p.key.public_key();
    p.fund_and_register_simulated(&c, &dev, |n| simulated_bundle(key, n), id)
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let o = order(
        TierTerms::Attested {
            policy: id,
            fresh_quote: false,
        },
        ProviderClass::default(),
        head,
        100,
    );
    c.fund_job(&dev.bob, &o).await.unwrap();
    assert_eq!(c.policy(&id).await.unwrap().unwrap().users, info.users + 2);
    // The stranger offers too, but is attested under another policy: the rule binds p.
    let bound = bind_via_offers(&c, &dev, &o.job_id, &[&stranger, &p])
        .await
        .unwrap();
    assert_eq!(bound, vec![p.account()]);
    let attested = c
        .provider(&p.account())
        .await
        .unwrap()
        .unwrap()
        .attested
        .unwrap();
    let body = receipt_body(
        &o,
        &p.key,
        ReceiptFacts {
            tier: 3,
            result: result_of("pinned"),
            evidence: attestation_verifier::receipt::EvidenceRef {
                mode: attestation_verifier::receipt::EvidenceMode::AttestedKey,
                tee: attestation_verifier::receipt::TeeKind::Simulated,
                digest: attested.evidence_digest,
            },
        },
    );
    let r = c
        .submit_receipt(&p.signer, &o.job_id, &sign_receipt(&body, &p.key), None)
        .await
        .unwrap();
    assert!(r.settlement().is_some());
    audit_settled(&c, &o.job_id, 1).await;
    // The settled job no longer counts as a user; the registered key still does.
    let e = c.retire_policy(&dev.bob, &id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.PolicyInUse");
    // A genesis policy that pins nothing cannot be named by a tier-3 job.
    let o = order(
        TierTerms::Attested {
            policy: policy_id(sigil_chain_client::policy::CONFIDENTIAL_VM_V1).unwrap(),
            fresh_quote: false,
        },
        ProviderClass::default(),
        head,
        100,
    );
    let e = c.fund_job(&dev.bob, &o).await.unwrap_err();
    assert_eq!(
        dispatch_name(&e),
        "market.PolicyRejected(SnpMeasurementNotPinned)"
    );
}

#[tokio::test]
async fn refund_after_deadline_works() {
    let c = client().await;
    let dev = Dev::new().unwrap();
    let head = c.block_number().await.unwrap();
    let o = order(TierTerms::Signed, ProviderClass::default(), head, 2);
    c.fund_job(&dev.bob, &o).await.unwrap();
    let held = c.reserved_balance(&dev.bob.account_id()).await.unwrap();

    let e = c.refund_expired(&dev.alice, &o.job_id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.DeadlineNotReached");

    advance_blocks(&c, &dev, 3).await.unwrap();
    // Anyone may trigger the refund; the escrow goes back to the buyer.
    let r = c.refund_expired(&dev.alice, &o.job_id).await.unwrap();
    assert!(
        matches!(&r.events[0], MarketEvent::JobRefunded { amount, buyer, .. }
        if *amount == PRICE && *buyer == dev.bob.account_id())
    );
    assert_eq!(
        held - c.reserved_balance(&dev.bob.account_id()).await.unwrap(),
        PRICE
    );
    let e = c.refund_expired(&dev.alice, &o.job_id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.JobClosed");

    let record = c.job_record(&o.job_id).await.unwrap();
    assert_eq!(record.job.status, JobStatus::Refunded);
    assert!(matches!(
        record.settlement.as_ref().unwrap().outcome,
        Outcome::Refunded { amount } if amount == PRICE
    ));
    assert!(replay(&record).verified);
}

#[tokio::test]
async fn unknown_job_rejects() {
    let c = client().await;
    let id = fresh_bytes("missing");
    assert!(c.job(&id).await.unwrap().is_none());
    assert!(matches!(
        c.job_record(&id).await,
        Err(ChainError::NotFound { what: "job", .. })
    ));
    let dev = Dev::new().unwrap();
    let e = c.refund_expired(&dev.bob, &id).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.UnknownJob");
    // A receipt that is not SCALE is bad input, never sent.
    assert!(matches!(
        c.submit_receipt(&dev.bob, &id, b"not a receipt", None)
            .await,
        Err(ChainError::BadInput { .. })
    ));
}
