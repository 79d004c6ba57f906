//! The client's checked-in metadata and policy table against the chain as built: fails when
//! `chain-client/metadata/sigil.scale` differs from the `chain/dev/metadata.scale` that
//! `sigil-chain-spec` just wrote (run `chain-client/refresh-metadata.sh`), or when the client's
//! policy ids differ from the runtime's.

// Tests may unwrap: a failure is the test's report.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use sigil_chain_client::policy;
use sigil_e2e::*;

#[test]
fn checked_in_metadata_is_fresh_works() {
    let built = chain_dev_dir().join("metadata.scale");
    let checked_in = repo_root().join("chain-client/metadata/sigil.scale");
    let built = std::fs::read(&built).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the chain first: chain/local-chain.sh --build-only)",
            built.display()
        )
    });
    let checked_in = std::fs::read(&checked_in).unwrap();
    assert!(
        built == checked_in,
        "chain-client/metadata/sigil.scale is stale: run chain-client/refresh-metadata.sh"
    );
}

#[test]
fn policy_ids_match_runtime_works() {
    let bin = std::env::var_os("SIGIL_CHAIN_SPEC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("chain/target/debug/sigil-chain-spec"));
    let out = std::process::Command::new(&bin)
        .arg("--policies")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut runtime: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect();
    let mut client: Vec<(String, String)> = policy::NAMES
        .iter()
        .map(|n| {
            (
                format!(
                    "0x{}",
                    hex::encode(policy::policy_id(n).unwrap_or_default())
                ),
                (*n).to_string(),
            )
        })
        .collect();
    runtime.sort();
    client.sort();
    assert_eq!(runtime, client);
}
