//! `sigil audit`: a job's record, and its verification replayed offline.

use anyhow::Result;
use clap::Subcommand;

use super::{Cli, connect, emit};
use crate::{audit, parse_hex32};

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Print a job's record: job, binding, receipts, settlement, evidence.
    Job {
        /// The job id (0x hex).
        job: String,
    },
    /// Re-verify a job offline (receipt signatures, tier-3 evidence, settlement); exit 1 if it
    /// does not verify.
    Replay {
        /// The job id (0x hex).
        job: String,
    },
}

/// Runs a `sigil audit` command; returns the exit status (1: the job does not verify).
pub(crate) async fn run(cli: &Cli, cmd: &AuditCmd) -> Result<u8> {
    let format = cli.format;
    match cmd {
        AuditCmd::Job { job } => {
            let job = parse_hex32("job id", job)?;
            let c = connect(cli).await?;
            emit(format, &c.job_record(&job).await?)?;
        }
        AuditCmd::Replay { job } => {
            let job = parse_hex32("job id", job)?;
            let c = connect(cli).await?;
            let record = c.job_record(&job).await?;
            let report = audit::replay(&record);
            emit(format, &report)?;
            if !report.verified {
                eprintln!("sigil: job 0x{} does not verify", hex::encode(job));
                return Ok(1);
            }
        }
    }
    Ok(0)
}
