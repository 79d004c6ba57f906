//! Genesis presets: the development chain's accounts and policies.
//!
//! A preset is a JSON patch over the default genesis config; chain spec tools (this
//! workspace's `sigil-chain-spec`, or `chain-spec-builder create ... named-preset development`)
//! build the genesis state from it.

use crate::{AccountId, Balance, MINT};
use alloc::{vec, vec::Vec};
use polkadot_sdk::{sp_genesis_builder::PresetId, sp_keyring::Sr25519Keyring};
use serde_json::{Value, json};

/// What each development account holds at genesis: one million MINT.
pub const DEV_ENDOWMENT: Balance = 1_000_000 * MINT;

/// The development accounts (sr25519 keys `//Alice` .. `//Ferdie`).
pub fn dev_accounts() -> Vec<AccountId> {
    [
        Sr25519Keyring::Alice,
        Sr25519Keyring::Bob,
        Sr25519Keyring::Charlie,
        Sr25519Keyring::Dave,
        Sr25519Keyring::Eve,
        Sr25519Keyring::Ferdie,
    ]
    .into_iter()
    .map(|k| k.to_account_id())
    .collect()
}

/// A genesis patch: `endowed` accounts funded with [`DEV_ENDOWMENT`], the upgrade `council` with
/// its `threshold`, and the genesis attestation policies. There is no root key and no
/// dispatcher: nobody holds an origin above the market's rules.
pub fn genesis(endowed: &[AccountId], council: &[AccountId], threshold: u32) -> Value {
    let balances: Vec<(AccountId, Balance)> =
        endowed.iter().map(|a| (a.clone(), DEV_ENDOWMENT)).collect();
    json!({
        "balances": { "balances": balances },
        "upgrades": { "members": council, "threshold": threshold },
        "market": { "policies": sigil_verifier_adapter::policies::genesis_documents() },
    })
}

/// The development preset: Alice..Ferdie funded; Alice, Bob and Charlie the upgrade council,
/// two of them to approve.
pub fn development() -> Value {
    let accounts = dev_accounts();
    genesis(&accounts, accounts.get(..3).unwrap_or_default(), 2)
}

/// The preset named `id`, as JSON bytes.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_str() {
        polkadot_sdk::sp_genesis_builder::DEV_RUNTIME_PRESET
        | polkadot_sdk::sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => development(),
        _ => return None,
    };
    serde_json::to_vec(&patch).ok()
}

/// The names of the presets.
pub fn preset_names() -> Vec<PresetId> {
    vec![
        PresetId::from(polkadot_sdk::sp_genesis_builder::DEV_RUNTIME_PRESET),
        PresetId::from(polkadot_sdk::sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
    ]
}

/// The genesis config of the development preset (default config with the preset applied).
#[cfg(feature = "std")]
pub fn development_config() -> Result<crate::RuntimeGenesisConfig, serde_json::Error> {
    let mut config = serde_json::to_value(crate::RuntimeGenesisConfig::default())?;
    merge(&mut config, development());
    serde_json::from_value(config)
}

/// Applies a JSON merge patch (RFC 7396, without `null` deletions: presets never delete).
#[cfg(feature = "std")]
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, patch) => *base = patch,
    }
}
