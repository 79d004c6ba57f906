//! `sigil-chain-spec`: writes the development chain's raw chain spec and the runtime metadata.
//!
//! The genesis state is built natively from the runtime's `development` preset (the same code
//! the WASM runtime runs for `GenesisBuilder_build_state`), and the runtime WASM goes in as
//! `:code`. Any Substrate executor or node loads the result (`chopsticks --genesis`, a node's
//! `--chain`).
//!
//! Outputs, in `--out`:
//! - `sigil-dev.raw.json`: the raw chain spec;
//! - `metadata.scale`: `SCALE(RuntimeMetadataPrefixed)` at metadata version 15, for clients'
//!   code generation (subxt, polkadot.js);
//! - `sigil_runtime.wasm` (debug builds) or `sigil_runtime.compact.compressed.wasm` (release
//!   builds): the runtime, for other tools (`chain-spec-builder`, `frame-omni-bencher`).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use polkadot_sdk::sp_core::storage::well_known_keys;
use polkadot_sdk::sp_runtime::BuildStorage;
use serde_json::{Value, json};
use sigil_runtime::sigil_verifier_adapter::policies;
use sigil_runtime::{Runtime, SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, genesis_config_presets};

/// The prefix of a compressed runtime blob (`sp-maybe-compressed-blob`).
const ZSTD_PREFIX: [u8; 8] = [82, 188, 83, 118, 70, 219, 142, 5];

/// The metadata version written to `metadata.scale`.
const METADATA_VERSION: u32 = 15;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Writes the Sigil development chain's raw chain spec and metadata"
)]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "dev")]
    out: PathBuf,
    /// The chain's name.
    #[arg(long, default_value = "Sigil Development")]
    name: String,
    /// The chain's id.
    #[arg(long, default_value = "sigil_dev")]
    id: String,
    /// Print the ids of the chain's genesis attestation policies and exit.
    #[arg(long)]
    policies: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.policies {
        for name in policies::NAMES {
            let id = policies::id_of(name).unwrap_or_default();
            println!("0x{}  {name}", hex::encode(id));
        }
        return Ok(());
    }
    let Some(wasm) = sigil_runtime::WASM_BINARY else {
        bail!(
            "the runtime was built without its WASM (SKIP_WASM_BUILD was set); rebuild without it"
        );
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let spec = raw_spec(&args, wasm)?;
    let spec_path = args.out.join("sigil-dev.raw.json");
    let text = serde_json::to_string_pretty(&spec).context("encoding the chain spec")?;
    fs::write(&spec_path, text).with_context(|| format!("writing {}", spec_path.display()))?;

    let metadata = Runtime::metadata_at_version(METADATA_VERSION)
        .with_context(|| format!("the runtime has no metadata version {METADATA_VERSION}"))?;
    let metadata_path = args.out.join("metadata.scale");
    fs::write(&metadata_path, &*metadata)
        .with_context(|| format!("writing {}", metadata_path.display()))?;

    // Release builds compact and compress the runtime (zstd, with Substrate's prefix); debug
    // builds leave it as compiled. Either is valid `:code`.
    let wasm_name = if wasm.starts_with(&ZSTD_PREFIX) {
        "sigil_runtime.compact.compressed.wasm"
    } else {
        "sigil_runtime.wasm"
    };
    let wasm_path = args.out.join(wasm_name);
    fs::write(&wasm_path, wasm).with_context(|| format!("writing {}", wasm_path.display()))?;

    println!("{}", spec_path.display());
    println!("{}", metadata_path.display());
    println!("{}", wasm_path.display());
    Ok(())
}

/// The raw chain spec: the development genesis storage with the runtime as `:code`, in the
/// JSON layout of Substrate's `sc-chain-spec` (raw form).
fn raw_spec(args: &Args, wasm: &[u8]) -> Result<Value> {
    let config = genesis_config_presets::development_config()
        .context("applying the development preset to the default genesis config")?;
    let mut storage = config
        .build_storage()
        .map_err(|e| anyhow::anyhow!("building the genesis storage: {e}"))?;
    storage
        .top
        .insert(well_known_keys::CODE.to_vec(), wasm.to_vec());
    if !storage.children_default.is_empty() {
        bail!("the genesis has child tries, which this writer does not encode");
    }
    let top: BTreeMap<String, String> = storage
        .top
        .iter()
        .map(|(k, v)| {
            (
                format!("0x{}", hex::encode(k)),
                format!("0x{}", hex::encode(v)),
            )
        })
        .collect();
    Ok(json!({
        "name": args.name,
        "id": args.id,
        "chainType": "Development",
        "bootNodes": [],
        "telemetryEndpoints": null,
        "protocolId": "sigil",
        "properties": {
            "tokenDecimals": TOKEN_DECIMALS,
            "tokenSymbol": TOKEN_SYMBOL,
            "ss58Format": SS58_PREFIX,
        },
        "codeSubstitutes": {},
        "genesis": { "raw": { "top": top, "childrenDefault": {} } },
    }))
}
