//! `sigil`: the market chain from the command line (providers and their offers, buyers, the chain's dispatch rule, audit)
//! and jobs on providers' agents. See `--help` and `sigil_chain_client::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    sigil_chain_client::cli::run(sigil_chain_client::cli::Cli::parse())
}
