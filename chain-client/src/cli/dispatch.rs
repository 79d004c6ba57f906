//! `sigil dispatch`: the dispatcher binds providers to jobs.

use anyhow::Result;
use clap::Subcommand;

use super::{Cli, KeyArgs, connect, emit};
use crate::{KeyScheme, parse_account, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum DispatchCmd {
    /// Bind providers to a funded job (one for tiers 1 and 3, n for tier 2).
    Bind {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
        /// A provider account (SS58 or 0x hex); repeat for tier 2.
        #[arg(long = "provider", required = true)]
        providers: Vec<String>,
    },
}

/// Runs a `sigil dispatch` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &DispatchCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        DispatchCmd::Bind {
            key,
            job,
            providers,
        } => {
            let job = parse_hex32("job id", job)?;
            let providers = providers
                .iter()
                .map(|p| parse_account(p))
                .collect::<Result<Vec<_>, _>>()?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.bind(&signer, &job, &providers).await?)?;
        }
    }
    Ok(0)
}
