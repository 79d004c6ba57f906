//! A client and the CLI across a restart of the chain: the test runs its own chopsticks on a
//! free port (the chain spec `chain/dev/sigil-dev.raw.json` that `tests/e2e.sh` builds), stops
//! it and starts it again.

// Tests may unwrap: a failure is the test's report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sigil_chain_client::types::MINT;
use sigil_chain_client::{ChainClient, ConnectOptions, KeyScheme, Keypair};
use sigil_e2e::*;
use tokio::process::{Child, Command};

fn chopsticks_bin() -> PathBuf {
    std::env::var_os("SIGIL_CHOPSTICKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("chain/node_modules/.bin/chopsticks"))
}

/// Starts chopsticks on `port` and waits until its RPC answers.
async fn start_chain(port: u16) -> Child {
    let spec = chain_dev_dir().join("sigil-dev.raw.json");
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("sigil-e2e-chain-{port}.log")))
            .unwrap();
    let child = Command::new(chopsticks_bin())
        .arg(format!("--genesis={}", spec.display()))
        .arg("--build-block-mode=Instant")
        .arg(format!("--port={port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chopsticks_bin().display()));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "chopsticks did not start"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    child
}

async fn stop_chain(mut child: Child) {
    child.kill().await.unwrap();
    child.wait().await.unwrap();
}

#[tokio::test]
async fn client_reconnects_after_restart_works() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let chain = start_chain(port).await;
    let options = ConnectOptions {
        reconnect_window: Duration::from_secs(120),
        ..ConnectOptions::default()
    };
    let client = ChainClient::connect_with(&url, options).await.unwrap();
    let alice = Keypair::from_uri(KeyScheme::Sr25519, "//Alice").unwrap();
    let eve = Keypair::from_uri(KeyScheme::Sr25519, "//Eve")
        .unwrap()
        .account_id();
    let before = client.free_balance(&eve).await.unwrap();
    client.transfer(&alice, &eve, MINT).await.unwrap();
    assert_eq!(client.free_balance(&eve).await.unwrap(), before + MINT);

    // Down: the CLI gives up with a clear error within its reconnect window.
    stop_chain(chain).await;
    let out = Command::new(sigil_bin())
        .args(["--url", &url, "--reconnect-secs", "1", "chain", "info"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the chain"));

    // A CLI started while the node is down succeeds once it is back within the window.
    let cli = Command::new(sigil_bin())
        .args(["--url", &url, "--reconnect-secs", "120", "chain", "info"])
        .output();
    let restart = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        start_chain(port).await
    };
    let (out, chain) = tokio::join!(cli, restart);
    let out = out.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The client made before the restart works again on the restarted chain (whose state
    // started over from genesis): reads and a transaction with the new chain's nonce.
    let info = client.info().await.unwrap();
    assert_eq!(info.chain, "sigil_dev");
    assert_eq!(client.free_balance(&eve).await.unwrap(), before);
    client.transfer(&alice, &eve, MINT).await.unwrap();
    assert_eq!(client.free_balance(&eve).await.unwrap(), before + MINT);
    stop_chain(chain).await;
}
