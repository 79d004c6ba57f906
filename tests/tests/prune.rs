//! Pruning against the real local chain: an expired attestation record leaves the state, its
//! deposit returns, and the audit of the job that rested on it still verifies, reading the
//! record from the state at the block that accepted the receipt.
//!
//! The test moves the chain's clock eight days ahead (chopsticks' `dev_timeTravel`), so it runs
//! on its own, after the other end-to-end tests (`tests/e2e.sh`).

// Tests may unwrap and index: a failure is the test's report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::process::Command;

use sigil_chain_client::audit::replay;
use sigil_chain_client::policy::{SIMULATED_V1, policy_id};
use sigil_chain_client::types::MarketEvent;
use sigil_chain_client::{ChainClient, ChainError};
use sigil_e2e::*;

/// One JSON-RPC call to the chain's HTTP endpoint (chopsticks serves it on the WebSocket port).
fn rpc(method: &str, params: &str) {
    let url = chain_url().replacen("ws://", "http://", 1);
    let body = format!(r#"{{"id":1,"jsonrpc":"2.0","method":"{method}","params":{params}}}"#);
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            &url,
        ])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{method}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("\"error\""), "{method}: {text}");
}

fn dispatch_name(e: &ChainError) -> String {
    e.dispatch_failure()
        .map(|d| d.name())
        .unwrap_or_else(|| panic!("expected a dispatch error, got {e}"))
}

#[tokio::test]
async fn pruned_record_still_audits_works() {
    let c = ChainClient::connect(&chain_url()).await.unwrap();
    let dev = Dev::new().unwrap();
    let policy = policy_id(SIMULATED_V1).unwrap();
    let p = ProviderKey::fresh("prune").unwrap();
    let key = p.key.public_key();
    let bundle = p
        .fund_and_register_simulated(&c, &dev, |n| simulated_bundle(key, n), policy)
        .await
        .unwrap();
    let digest = evidence_digest(&bundle);
    let record = c.attestation(&digest).await.unwrap().unwrap();
    assert_eq!(record.depositor, p.account());
    assert!(record.deposit > 0);

    // A tier-3 job settles on the registration evidence.
    let head = c.block_number().await.unwrap();
    let o = simulated_tier3_order(policy, head);
    c.fund_job(&dev.bob, &o).await.unwrap();
    bind_via_offers(&c, &dev, &o.job_id, &[&p]).await.unwrap();
    let body = receipt_body(
        &o,
        &p.key,
        ReceiptFacts {
            tier: 3,
            result: result_of("prune"),
            evidence: attested_key_ref(&bundle),
        },
    );
    let r = c
        .submit_receipt(&p.signer, &o.job_id, &sign_receipt(&body, &p.key), None)
        .await
        .unwrap();
    assert!(r.settlement().is_some());

    // Not prunable while it may be used, nor while the provider's key rests on it.
    let e = c.prune_attestation(&dev.bob, digest).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.AttestationNotExpired");
    c.deregister(&p.signer).await.unwrap();

    // Eight days on (an attested key lives at most seven) the chain prunes it in the next
    // block's idle time (or anyone does, with `prune_attestation`); the deposit returns to the
    // provider.
    let eight_days_ms = 8 * 24 * 3_600_000u64;
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let free_before = c.free_balance(&p.account()).await.unwrap();
    rpc("dev_timeTravel", &format!("[{}]", now_ms + eight_days_ms));
    rpc("dev_newBlock", "[{\"count\":2}]");
    if c.attestation(&digest).await.unwrap().is_some() {
        let pruned = c.prune_attestation(&dev.bob, digest).await.unwrap();
        assert!(pruned.events.iter().any(|e| matches!(
            e,
            MarketEvent::AttestationPruned { evidence_digest, deposit, .. }
                if *evidence_digest == digest && *deposit == record.deposit
        )));
    }
    assert_eq!(
        c.free_balance(&p.account()).await.unwrap() - free_before,
        record.deposit
    );
    let e = c.prune_attestation(&dev.bob, digest).await.unwrap_err();
    assert_eq!(dispatch_name(&e), "market.UnknownAttestation");
    assert!(c.attestation(&digest).await.unwrap().is_none());

    // The audit reads the record (and the deregistered provider) where the receipt was
    // accepted, and the replay verifies.
    let job = c.job_record(&o.job_id).await.unwrap();
    let archived = job
        .attestations
        .iter()
        .find(|a| a.digest == digest)
        .expect("the pruned record, read from an earlier block");
    assert!(archived.archived_at.is_some());
    assert_eq!(archived.evidence, bundle);
    assert_eq!(job.providers.len(), 1);
    let report = replay(&job);
    assert!(report.verified, "{report:#?}");
}
