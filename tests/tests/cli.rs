//! The `sigil` binary driven as a subprocess against the local chain: a whole tier-1 loop with
//! its JSON output parsed, a refused call (exit 1), bad input (exit 2), and a node that is not
//! there (exit 2 with a clear message).

// Tests may unwrap and index: a failure is the test's report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::process::Output;

use attestation_verifier::crypto::{Crypto, RustCrypto};
use serde_json::Value;
use sigil_chain_client::types::{JobOrder, ProviderClass, TierTerms};
use sigil_chain_client::{Ed25519Keypair, parse_hex32};
use sigil_e2e::*;

async fn sigil(args: &[&str]) -> Output {
    tokio::process::Command::new(sigil_bin())
        .arg("--url")
        .arg(chain_url())
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", sigil_bin().display()))
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ok(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(out)
}

#[tokio::test]
async fn cli_tier1_loop_works() {
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}", hex::encode(fresh_bytes("d"))));
    std::fs::create_dir_all(&dir).unwrap();
    let provider_uri = format!("//SigilCli//{}", hex::encode(fresh_bytes("p")));
    let provider = Ed25519Keypair::from_uri(&provider_uri).unwrap();
    let provider_hex = format!("0x{}", hex::encode(provider.public_key()));
    let provider_ss58 = sigil_chain_client::AccountId32(provider.public_key()).to_string();
    let key_file = dir.join("provider.suri");
    std::fs::write(&key_file, format!("{provider_uri}\n")).unwrap();
    let key_file = key_file.to_str().unwrap();

    let info = ok(&sigil(&["chain", "info"]).await);
    assert_eq!(info["token"], "MINT");
    assert_eq!(info["chain"], "sigil_dev");
    // No root: only the council can approve new code, two of Alice, Bob and Charlie.
    assert_eq!(info["council"].as_array().unwrap().len(), 3);
    assert_eq!(info["council_threshold"], 2);
    assert_eq!(info["scheduled_upgrade"], Value::Null);

    ok(&sigil(&[
        "account",
        "transfer",
        "--suri",
        "//Alice",
        "--to",
        &provider_hex,
        "--amount",
        "100",
    ])
    .await);
    let reg = ok(&sigil(&[
        "provider",
        "register",
        "--suri-file",
        key_file,
        "--tiers",
        "signed",
    ])
    .await);
    assert_eq!(reg["events"][0]["event"], "provider-registered");
    assert_eq!(reg["events"][0]["signing_key"], provider_hex.as_str());

    let spec = dir.join("spec.json");
    std::fs::write(&spec, br#"{"image":"busybox","cmd":["true"]}"#).unwrap();
    let funded = ok(&sigil(&[
        "buyer",
        "fund",
        "--suri",
        "//Bob",
        "--spec",
        spec.to_str().unwrap(),
        "--tier",
        "1",
        "--price",
        "5",
        "--deadline-blocks",
        "100",
    ])
    .await);
    let job = funded["job_id"].as_str().unwrap().to_string();
    assert_eq!(funded["included"]["events"][0]["event"], "job-funded");
    assert_eq!(funded["included"]["events"][0]["price"], "5000000000000");

    // No offer serves it yet: the dispatch rule finds nobody (exit 1), decoded.
    assert_eq!(funded["bound"], serde_json::Value::Null);
    let refused = sigil(&["dispatch", "job", "--suri", "//Bob", "--job", &job]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        json_of(&refused)["error"]["dispatch"],
        "market.NoEligibleOffer"
    );
    // The provider offers (a 10 MINT bond held); anyone runs the rule, which binds it.
    let offered = ok(&sigil(&[
        "provider",
        "offer",
        "--suri-file",
        key_file,
        "--price",
        "0",
        "--capacity",
        "1",
        "--bond",
        "10",
    ])
    .await);
    assert_eq!(offered["events"][0]["event"], "offer-set");
    assert_eq!(offered["events"][0]["bond"], "10000000000000");
    // The chain binds it in the next block with spare weight (the offer's own, here); running
    // the rule then says it no longer waits.
    let again = sigil(&["dispatch", "job", "--suri", "//Bob", "--job", &job]).await;
    if again.status.code() == Some(1) {
        assert_eq!(json_of(&again)["error"]["dispatch"], "market.NotWaiting");
    } else {
        assert_eq!(ok(&again)["events"][0]["event"], "job-bound");
    }
    let record = ok(&sigil(&["audit", "job", &job]).await);
    assert_eq!(record["binding"]["providers"][0], provider_ss58.as_str());
    assert_eq!(record["job"]["status"], "bound");
    // Paused again, so that no later test's job is bound to it.
    ok(&sigil(&[
        "provider",
        "offer",
        "--suri-file",
        key_file,
        "--price",
        "0",
        "--capacity",
        "0",
        "--bond",
        "10",
    ])
    .await);

    // The receipt file, as the agent writes it.
    let order = JobOrder {
        job_id: parse_hex32("job", &job).unwrap(),
        spec_hash: RustCrypto.sha256(&std::fs::read(&spec).unwrap()),
        terms: TierTerms::Signed,
        class: ProviderClass::default(),
        price: PRICE,
        deadline: 0,
        response_blocks: 0,
    };
    let receipt = sign_receipt(
        &receipt_body(&order, &provider, ReceiptFacts::plain(1, result_of("cli"))),
        &provider,
    );
    let receipt_file = dir.join("receipt.bin");
    std::fs::write(&receipt_file, &receipt).unwrap();
    let submitted = ok(&sigil(&[
        "provider",
        "submit-receipt",
        "--suri-file",
        key_file,
        "--receipt",
        receipt_file.to_str().unwrap(),
    ])
    .await);
    let events: Vec<&str> = submitted["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["receipt-accepted", "job-settled"]);

    let record = ok(&sigil(&["audit", "job", &job]).await);
    assert_eq!(record["job"]["status"], "settled");
    assert_eq!(record["settlement"]["outcome"], "paid");
    assert_eq!(
        record["receipts"][0]["provider"],
        submitted["events"][0]["provider"]
    );

    let replayed = ok(&sigil(&["audit", "replay", &job]).await);
    assert_eq!(replayed["verified"], true);
    assert_eq!(replayed["receipts"][0]["verified"], true);

    // Text output.
    let text = sigil(&["--format", "text", "audit", "job", &job]).await;
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("job.status: settled"));

    // Watching a closed job prints its closing event and ends.
    let watched = sigil(&["buyer", "watch", "--job", &job, "--timeout-secs", "30"]).await;
    assert_eq!(watched.status.code(), Some(0));
    let line: Value =
        serde_json::from_slice(watched.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["event"], "job-settled");

    let balance = ok(&sigil(&["account", "balance", &provider_hex]).await);
    // Paid 5 MINT on top of 100 (less fees); the 10 MINT bond stays held while it offers, the
    // 1 MINT deposit of its provider record while it is registered.
    let amount = |k: &str| balance[k].as_str().unwrap().parse::<u128>().unwrap();
    assert_eq!(amount("held"), 11 * sigil_chain_client::types::MINT);
    assert!(amount("free") + amount("held") > 100 * sigil_chain_client::types::MINT);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sigil policy`: write a policy pinning an agent build, compute its id offline (the same for
/// another spelling of the same rules), register it, read it back, list it.
#[tokio::test]
async fn cli_policy_lifecycle_works() {
    let dir = std::env::temp_dir().join(format!("sigil-policy-{}", hex::encode(fresh_bytes("d"))));
    std::fs::create_dir_all(&dir).unwrap();
    let measurement = hex::encode(fresh_bytes("measurement")) + &"ab".repeat(16);
    let fragment = dir.join("measure.toml");
    std::fs::write(
        &fragment,
        format!(
            "# from sigil-verify measure simulated\n[simulated]\nmeasurements = [\"0x{}\"]\n",
            measurement.to_uppercase()
        ),
    )
    .unwrap();
    let file = dir.join("policy.toml");
    let out = sigil(&[
        "policy",
        "new",
        "--base",
        "sigil.simulated.v1",
        "--from",
        fragment.to_str().unwrap(),
        "--key-lifetime-secs",
        "3600",
        "--out",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = ok(&sigil(&["policy", "id", "--file", file.to_str().unwrap()]).await);
    assert_eq!(id["unpinned"], Value::Null);
    let id = id["id"].as_str().unwrap().to_string();
    // The same rules, spelled by hand: same id.
    let by_hand = dir.join("by-hand.toml");
    std::fs::write(
        &by_hand,
        format!(
            "# the simulator, this build\ntees = ['simulated']\nallow_simulated = true\n\
             key_lifetime_secs = 3600\n\n[simulated]\nmeasurements = ['{measurement}']\n"
        ),
    )
    .unwrap();
    let again = ok(&sigil(&["policy", "id", "--file", by_hand.to_str().unwrap()]).await);
    assert_eq!(again["id"].as_str(), Some(id.as_str()));

    let r = ok(&sigil(&[
        "policy",
        "register",
        "--suri",
        "//Bob",
        "--file",
        file.to_str().unwrap(),
    ])
    .await);
    assert_eq!(r["id"].as_str(), Some(id.as_str()));
    let shown = ok(&sigil(&["policy", "show", &id]).await);
    assert_eq!(shown["users"], 0);
    assert!(shown["rules"].as_str().unwrap().contains(&measurement));
    assert_eq!(shown["genesis_name"], Value::Null);
    let list = ok(&sigil(&["policy", "list"]).await);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{list}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["genesis_name"] == "sigil.simulated.v1")
    );
    // Registered once: a second registration is refused by the chain (exit 1).
    let out = sigil(&[
        "policy",
        "register",
        "--suri",
        "//Bob",
        "--file",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    // The owner retires it (nothing uses it).
    ok(&sigil(&["policy", "retire", "--suri", "//Bob", &id]).await);
    let out = sigil(&["policy", "show", &id]).await;
    assert_eq!(out.status.code(), Some(2));
    // A file that is not a policy.
    std::fs::write(&by_hand, "[snp]\nmeasurements = [\"00\"]\n").unwrap();
    let out = sigil(&["policy", "id", "--file", by_hand.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn cli_bad_input_rejects() {
    for args in [
        &["audit", "job", "0x1234"][..],
        &[
            "buyer",
            "fund",
            "--suri",
            "//Bob",
            "--spec-hash",
            "0x00",
            "--tier",
            "1",
            "--price",
            "5",
        ][..],
        &[
            "buyer",
            "fund",
            "--suri",
            "//Bob",
            "--spec-hash",
            &format!("0x{}", "00".repeat(32)),
            "--tier",
            "3",
            "--price",
            "5",
            "--policy",
            "sigil.nothing.v1",
        ][..],
        &["provider", "deregister", "--suri", "not a key"][..],
        &[
            "audit",
            "job",
            &format!("0x{}", hex::encode(fresh_bytes("missing"))),
        ][..],
    ] {
        let out = sigil(args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("sigil: error: "));
        assert!(json_of(&out)["error"]["kind"].is_string());
    }
}

#[tokio::test]
async fn cli_node_down_rejects() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::process::Command::new(sigil_bin())
        .args([
            "--url",
            &format!("ws://127.0.0.1:{port}"),
            "--reconnect-secs",
            "2",
            "chain",
            "info",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the chain at ws://127.0.0.1:{port}")),
        "{stderr}"
    );
    assert_eq!(json_of(&out)["error"]["kind"], "unreachable");
}
