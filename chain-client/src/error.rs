//! What can go wrong talking to the chain, by kind: the caller's input, the connection, the
//! chain refusing a transaction, or a record that does not exist.

use std::fmt;

use serde::Serialize;

/// Why a call of [`crate::ChainClient`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The caller's input is unusable (a key, a file, an id, a receipt that does not decode).
    #[error("bad input: {what}: {detail}")]
    BadInput {
        /// What was wrong.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// No connection to the node could be made (or re-made within the reconnect window).
    #[error("cannot reach the chain at {url}: {detail}")]
    Unreachable {
        /// The node's URL.
        url: String,
        /// The transport's message.
        detail: String,
    },
    /// An RPC call failed or its answer did not make sense.
    #[error("RPC failure while {action}: {source}")]
    Rpc {
        /// What the client was doing.
        action: &'static str,
        /// subxt's error.
        #[source]
        source: Box<subxt::Error>,
    },
    /// The transaction was included and its dispatch failed: the chain said no.
    #[error("the chain refused {call}: {error}")]
    Dispatch {
        /// The call, as `pallet.call`.
        call: &'static str,
        /// The decoded dispatch error.
        error: DispatchFailure,
    },
    /// The transaction pool refused the transaction (invalid, e.g. fees it cannot pay, or
    /// dropped) and it was never included.
    #[error("the chain refused {call} before inclusion: {detail}")]
    Rejected {
        /// The call, as `pallet.call`.
        call: &'static str,
        /// The node's message.
        detail: String,
    },
    /// A record the call needs is not on chain.
    #[error("{what} {id} not found on chain")]
    NotFound {
        /// The kind of record.
        what: &'static str,
        /// Its id, hex or SS58.
        id: String,
    },
    /// Nothing was heard back in time.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        secs: u64,
    },
}

impl ChainError {
    /// Whether the chain itself refused (a dispatch error or an invalid transaction), as
    /// opposed to bad input or a failed connection.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Dispatch { .. } | Self::Rejected { .. })
    }

    /// The decoded dispatch error, when the chain refused a dispatched call.
    pub fn dispatch_failure(&self) -> Option<&DispatchFailure> {
        match self {
            Self::Dispatch { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(crate) fn rpc(action: &'static str) -> impl FnOnce(subxt::Error) -> Self {
        move |e| Self::Rpc {
            action,
            source: Box::new(e),
        }
    }
}

/// Maps any of subxt's per-stage errors into [`ChainError::Rpc`].
pub(crate) fn rpc<E: Into<subxt::Error>>(action: &'static str) -> impl FnOnce(E) -> ChainError {
    move |e| ChainError::rpc(action)(e.into())
}

/// A dispatch error decoded with the runtime's metadata.
///
/// Module errors read `pallet.Error` with the pallet's name in lower camel case, as wallets
/// show them (`market.JobClosed`); the market's `AttestationRejected` and `PolicyRejected`
/// name their reason: `market.AttestationRejected(BadSignature)`,
/// `market.PolicyRejected(SnpMeasurementNotPinned)`. Other dispatch errors read as the runtime names
/// them (`BadOrigin`, `Token(FundsUnavailable)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DispatchFailure {
    /// The pallet, for module errors (`market`, `balances`).
    pub pallet: Option<String>,
    /// The error's name (`AttestationRejected`, `BadOrigin`).
    pub error: String,
    /// The inner reason where the error carries one (`BadSignature`).
    pub detail: Option<String>,
}

impl DispatchFailure {
    /// The full name, e.g. `market.AttestationRejected(BadSignature)`.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DispatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.pallet {
            write!(f, "{p}.")?;
        }
        f.write_str(&self.error)?;
        if let Some(d) = &self.detail {
            write!(f, "({d})")?;
        }
        Ok(())
    }
}

/// `Market` -> `market`, `TransactionPayment` -> `transactionPayment`.
pub(crate) fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
