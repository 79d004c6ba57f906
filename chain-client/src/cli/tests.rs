// Tests may unwrap: a failure is the test's report.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::types::MINT;

#[test]
fn parse_mint_works() {
    assert_eq!(parse_mint("5").unwrap(), 5 * MINT);
    assert_eq!(parse_mint("0.25").unwrap(), MINT / 4);
    assert_eq!(parse_mint(".5").unwrap(), MINT / 2);
    assert_eq!(parse_mint("1.000000000001").unwrap(), MINT + 1);
}

#[test]
fn parse_mint_rejects() {
    for s in ["", ".", "-1", "1.0000000000001", "1e3", "abc", "1.2.3"] {
        assert!(parse_mint(s).is_err(), "{s}");
    }
    assert!(parse_mint(&"9".repeat(40)).is_err());
}

#[test]
fn cli_definition_works() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
