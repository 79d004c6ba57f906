//! The outcome of verification and appraisal.

use alloc::string::String;
use alloc::vec::Vec;

/// Evidence whose signatures, chains and bindings were checked.
///
/// Only this crate's verifiers construct it, so holding a `Verified<T>` proves the
/// checks ran.
#[derive(Clone, Debug)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Unwraps the verified value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> core::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Every independent reason verification failed (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failures<E>(pub Vec<E>);

impl<E> Failures<E> {
    /// A single failure.
    pub fn one(e: E) -> Self {
        Self(alloc::vec![e])
    }

    /// Whether any failure satisfies `f`.
    pub fn any(&self, f: impl Fn(&E) -> bool) -> bool {
        self.0.iter().any(f)
    }
}

impl<E: core::fmt::Display> core::fmt::Display for Failures<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
impl<E: core::fmt::Debug + core::fmt::Display> std::error::Error for Failures<E> {}

/// One way verified evidence fails an appraisal policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The policy rule that failed (the policy file's key, e.g. `snp.allow_debug`).
    pub rule: &'static str,
    /// What the evidence had and what the policy wanted.
    pub detail: String,
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "policy {}: {}", self.rule, self.detail)
    }
}

/// The result of appraising verified evidence against a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The evidence satisfies the policy.
    Accept,
    /// The evidence violates the policy, for every listed reason.
    Reject(Vec<Violation>),
}

impl Verdict {
    /// Accept when `violations` is empty, otherwise reject with all of them.
    pub fn from_violations(violations: Vec<Violation>) -> Self {
        if violations.is_empty() {
            Self::Accept
        } else {
            Self::Reject(violations)
        }
    }

    /// Whether the verdict accepts.
    pub fn is_accept(&self) -> bool {
        matches!(self, Self::Accept)
    }
}
