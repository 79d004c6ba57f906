//! `sigil dispatch`: the chain's dispatch rule, which anyone may run: bind a waiting job now,
//! or take a job from bound providers that missed its response window. Neither lets the caller
//! choose a provider.

use anyhow::Result;
use clap::Subcommand;

use super::{Cli, KeyArgs, connect, emit};
use crate::{KeyScheme, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum DispatchCmd {
    /// Run the dispatch rule for a waiting job now (the chain also retries waiting jobs in
    /// blocks with spare weight).
    Job {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
    },
    /// Take a job from its bound providers that delivered no receipt within its response
    /// window: each loses a share of its bond to the buyer, and the chain binds others.
    Reassign {
        #[command(flatten)]
        key: KeyArgs,
        /// The job id (0x hex).
        #[arg(long)]
        job: String,
    },
}

/// Runs a `sigil dispatch` command; returns the exit status.
pub(crate) async fn run(cli: &Cli, cmd: &DispatchCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        DispatchCmd::Job { key, job } => {
            let job = parse_hex32("job id", job)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.dispatch_job(&signer, &job).await?)?;
        }
        DispatchCmd::Reassign { key, job } => {
            let job = parse_hex32("job id", job)?;
            let signer = key.load(KeyScheme::Sr25519)?;
            let c = connect(cli).await?;
            emit(format, &c.reassign(&signer, &job).await?)?;
        }
    }
    Ok(0)
}
