//! Client of the Sigil market chain.
//!
//! The typed API is generated at compile time from the runtime's metadata, checked in as
//! `metadata/sigil.scale` (refreshed by `refresh-metadata.sh`; the end-to-end tests fail when it
//! is stale). [`ChainClient`] covers every role of the market:
//!
//! | role | calls |
//! |---|---|
//! | provider | [`ChainClient::register_provider`], [`ChainClient::set_offer`], [`ChainClient::withdraw_offer`], [`ChainClient::deregister`], [`ChainClient::submit_receipt`], [`ChainClient::jobs_bound_to`], [`ChainClient::wait_for_settlement`] |
//! | buyer | [`ChainClient::fund_job`] (the chain binds providers from their offers), [`ChainClient::cancel_job`], [`ChainClient::watch_job`], [`ChainClient::refund_expired`] |
//! | anyone | [`ChainClient::dispatch_job`], [`ChainClient::reassign`] (the chain's dispatch rule, not a choice) |
//! | auditor | [`ChainClient::job_record`], [`audit::replay`] |
//!
//! Errors say what failed ([`ChainError`]): bad input, an unreachable node or a failed RPC,
//! the chain refusing a transaction (with the dispatch error decoded from the metadata, e.g.
//! `market.AttestationRejected(BadSignature)`), or a record not found.
//!
//! The provider agent settles through this crate too: it registers its TEE-held key with
//! [`ChainClient::register_provider_with_proof`], keeps its evidence current with
//! [`ChainClient::refresh_attestation`] and submits receipts, recording each [`Submitted`]
//! outcome (`enclave-agent/src/settle.rs`). The other direction, a buyer's gRPC client of an
//! agent, is the crate `sigil-agent-client`.

pub mod audit;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
mod error;
pub mod keys;
pub mod policy;
mod submitter;
pub mod types;
mod watch;

/// Types, calls, storage and events generated from `metadata/sigil.scale`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
#[subxt::subxt(
    runtime_metadata_path = "metadata/sigil.scale",
    derive_for_all_types = "Clone, PartialEq, Eq"
)]
pub mod runtime {}

pub use client::{
    ChainClient, ChainInfo, ConnectOptions, Included, KEY_PROOF_DOMAIN, REGISTRATION_NONCE_DOMAIN,
    RegistrationAnchor, ScheduledUpgrade, SigilConfig, key_proof_message, registration_nonce,
};
pub use error::{ChainError, DispatchFailure};
pub use keys::{Ed25519Keypair, KeyScheme, Keypair};
pub use submitter::Submitted;
pub use subxt::utils::AccountId32;
pub use watch::{Assignment, BlockEvent};

/// Parses an account given as SS58 or as `0x` + 64 hex digits.
pub fn parse_account(s: &str) -> Result<AccountId32, ChainError> {
    if let Some(h) = s.strip_prefix("0x") {
        let bytes: [u8; 32] = hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ChainError::BadInput {
                what: "account",
                detail: format!("{s:?} is not 32 bytes of hex"),
            })?;
        return Ok(AccountId32(bytes));
    }
    s.parse().map_err(|e| ChainError::BadInput {
        what: "account",
        detail: format!("{s:?}: {e}"),
    })
}

/// Parses 32 bytes given as `0x` + 64 hex digits (a job id, a digest).
pub fn parse_hex32(what: &'static str, s: &str) -> Result<[u8; 32], ChainError> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(h)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ChainError::BadInput {
            what,
            detail: format!("{s:?} is not 32 bytes of hex"),
        })
}

/// Parses a MINT amount (`5`, `0.25`, `1000.000000000001`) into the smallest unit (12
/// decimals); `what` names the amount in the error.
pub fn parse_mint(what: &'static str, s: &str) -> Result<u128, ChainError> {
    let err = || ChainError::BadInput {
        what,
        detail: format!("{s:?} is not a MINT amount (e.g. 5 or 0.25)"),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 12 {
        return Err(err());
    }
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return Err(err());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let padded = format!("{frac:0<12}");
    let frac: u128 = padded.parse().map_err(|_| err())?;
    int.checked_mul(types::MINT)
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(err)
}
