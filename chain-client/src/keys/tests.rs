// Tests may unwrap: a failure is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

// Reference public keys from the polkadot.js keyring (the wallets' derivation).
const ALICE_ED: &str = "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee";
const BOB_ED: &str = "d17c2d7823ebf260fd138f2d7e27d114c0145d968b5ff5006125f2414fadae69";
const ALICE_SR: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

fn ed(uri: &str) -> String {
    hex::encode(Ed25519Keypair::from_uri(uri).unwrap().public_key())
}

#[test]
fn ed25519_dev_uris_works() {
    assert_eq!(ed("//Alice"), ALICE_ED);
    assert_eq!(ed("//Bob"), BOB_ED);
}

#[test]
fn ed25519_phrase_junction_password_works() {
    assert_eq!(
        ed("bottom drive obey lake curtain smoke basket hold race lonely fit walk//Foo///pw"),
        "c4b0dfe3193efff3675fc9e42639189fcddb22cf3ad89277dde8e19387a4d9cd"
    );
}

#[test]
fn ed25519_hex_seed_works() {
    assert_eq!(
        ed(&format!("0x{}", "11".repeat(32))),
        "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737"
    );
}

#[test]
fn ed25519_soft_junction_rejects() {
    assert!(matches!(
        Ed25519Keypair::from_uri("//Alice/soft"),
        Err(ChainError::BadInput { .. })
    ));
}

#[test]
fn bad_uri_rejects() {
    for uri in ["not a phrase at all", "0x1234", "0xzz"] {
        assert!(
            matches!(
                Keypair::from_uri(KeyScheme::Ed25519, uri),
                Err(ChainError::BadInput { .. })
            ),
            "{uri}"
        );
    }
}

#[test]
fn sr25519_dev_uri_works() {
    let k = Keypair::from_uri(KeyScheme::Sr25519, "//Alice").unwrap();
    assert_eq!(hex::encode(k.account_id().0), ALICE_SR);
}

#[test]
fn key_file_works() {
    let path = std::env::temp_dir().join(format!("sigil-key-{}", std::process::id()));
    std::fs::write(&path, "//Bob\n").unwrap();
    let k = Keypair::from_file(KeyScheme::Ed25519, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(hex::encode(k.account_id().0), BOB_ED);
    assert!(matches!(
        Keypair::from_file(KeyScheme::Ed25519, &path),
        Err(ChainError::BadInput { .. })
    ));
}

#[test]
fn ed25519_signature_verifies() {
    let k = Ed25519Keypair::from_uri("//Alice").unwrap();
    let sig = k.sign(b"message");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&k.public_key()).unwrap();
    vk.verify_strict(b"message", &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
}
