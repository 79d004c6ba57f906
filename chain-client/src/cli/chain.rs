//! `sigil chain`: the chain itself.

use anyhow::Result;
use clap::Subcommand;

use super::{Cli, connect, emit};

#[derive(Subcommand, Debug)]
pub(crate) enum ChainCmd {
    /// Chain name, runtime version, finalized head, token, upgrade council.
    Info,
}

/// Runs a `sigil chain` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &ChainCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        ChainCmd::Info => {
            let c = connect(cli).await?;
            emit(format, &c.info().await?)?;
        }
    }
    Ok(0)
}
