//! `sigil account`: a key's account, balances, transfers.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{Cli, KeyArgs, connect, emit, parse_mint};
use crate::{KeyScheme, parse_account};

#[derive(Subcommand, Debug)]
pub(crate) enum AccountCmd {
    /// The account of a key: SS58 and hex (no chain needed).
    Address {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Free and held (escrowed) MINT of an account.
    Balance {
        /// The account (SS58 or 0x hex).
        account: String,
    },
    /// Transfer MINT (keeping the sender alive).
    Transfer {
        #[command(flatten)]
        key: KeyArgs,
        /// The recipient (SS58 or 0x hex).
        #[arg(long)]
        to: String,
        /// Amount in MINT (decimal).
        #[arg(long)]
        amount: String,
    },
}

/// Runs a `sigil account` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &AccountCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        AccountCmd::Address { key } => {
            // Without --scheme the key is read as sr25519, the scheme of non-provider accounts.
            let who = key.load(KeyScheme::Sr25519)?.account_id();
            emit(
                format,
                &json!({ "account": who.to_string(), "hex": format!("0x{}", hex::encode(who.0)) }),
            )?;
        }
        AccountCmd::Balance { account } => {
            let who = parse_account(account)?;
            let c = connect(cli).await?;
            let free = c.free_balance(&who).await?;
            let held = c.reserved_balance(&who).await?;
            emit(
                format,
                &json!({ "account": who.to_string(), "free": free.to_string(), "held": held.to_string() }),
            )?;
        }
        AccountCmd::Transfer { key, to, amount } => {
            let to = parse_account(to)?;
            let amount = parse_mint(amount)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.transfer(&signer, &to, amount).await?)?;
        }
    }
    Ok(0)
}
