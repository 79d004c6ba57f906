//! `sigil-verify`: verify attestation evidence and receipts. See `--help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = attestation_verifier::cli::Cli::parse();
    match attestation_verifier::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sigil-verify: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
