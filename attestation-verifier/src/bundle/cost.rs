//! What verifying a bundle will cost, read from its bytes without verifying
//! anything: the counts that drive the verifier's work and the bytes it reads.
//!
//! The chain charges evidence verification before it runs (a transaction's
//! weight is fixed before dispatch), so it needs the work a bundle can cause
//! from a cheap, bounded look at its bytes. [`cost`] walks the SCALE layout up
//! to the GPU collateral, reading only length prefixes and variant bytes: its
//! work is linear in the number of GPU entries, RIMs and OCSP responses, never
//! in the bytes they hold, and it allocates nothing.
//!
//! It is total and conservative:
//! - counts above the bundle's caps ([`MAX_GPUS`], [`MAX_RIMS`], [`MAX_OCSP`])
//!   read as the caps: [`EvidenceBundle::check`](super::EvidenceBundle::check)
//!   refuses such a bundle before any cryptography;
//! - bytes it cannot walk (truncated, an unknown CPU evidence variant, a later
//!   layout) read as the caps too ([`EvidenceCost::worst`]), so a bundle can
//!   never be charged less than what the verifier may do with it;
//! - every byte is counted in [`EvidenceCost::bytes`], whatever field holds
//!   it: the CRL, certificate chains, a later version's event log or TPM quote
//!   are charged by their length, with no change here.

use parity_scale_codec::{Compact, Decode};

use super::{BUNDLE_MAGIC, BUNDLE_VERSION_2, MAX_GPUS, MAX_OCSP, MAX_RIMS};

/// The counts and size that bound a bundle's verification cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceCost {
    /// GPU reports (each: a device chain, a report signature, RIM comparisons).
    pub gpus: u32,
    /// RIMs (each: an XML signature over its document and a signing chain).
    pub rims: u32,
    /// OCSP responses (each parsed, and matched against every checked certificate).
    pub ocsp: u32,
    /// All bytes of the bundle.
    pub bytes: u32,
}

impl EvidenceCost {
    /// The most a bundle of `bytes` bytes can carry: every count at its cap.
    pub const fn worst(bytes: u32) -> Self {
        Self {
            gpus: cap(MAX_GPUS),
            rims: cap(MAX_RIMS),
            ocsp: cap(MAX_OCSP),
            bytes,
        }
    }
}

/// A cap as a `u32` (the caps are small constants).
const fn cap(max: usize) -> u32 {
    if max > u32::MAX as usize {
        u32::MAX
    } else {
        max as u32
    }
}

/// The cost of verifying `bytes` as an evidence bundle; see the module docs.
pub fn cost(bytes: &[u8]) -> EvidenceCost {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    scan(bytes, len).unwrap_or(EvidenceCost::worst(len))
}

/// Walks the layout; `None` where it cannot.
fn scan(bytes: &[u8], len: u32) -> Option<EvidenceCost> {
    let mut r = Reader(bytes);
    if r.take(4)? != BUNDLE_MAGIC.as_slice() {
        // Not a bundle: the verifier refuses it at its first check.
        return Some(EvidenceCost {
            bytes: len,
            ..EvidenceCost::default()
        });
    }
    let version = r.byte()?;
    r.byte()?; // tee
    r.take(64)?; // agent key, nonce
    match r.byte()? {
        // SEV-SNP: report, VEK, optional ASK and ARK.
        1 => {
            r.vec()?;
            r.vec()?;
            r.option_vec()?;
            r.option_vec()?;
        }
        // TDX: quote, optional collateral.
        2 => {
            r.vec()?;
            r.option_vec()?;
        }
        // Simulated: report.
        3 => {
            r.vec()?;
        }
        // Azure vTPM, SEV-SNP: HCL report, VEK, optional ASK and ARK.
        4 => {
            r.vec()?;
            r.vec()?;
            r.option_vec()?;
            r.option_vec()?;
        }
        // Azure vTPM, TDX: HCL report, TD quote, optional collateral.
        5 => {
            r.vec()?;
            r.vec()?;
            r.option_vec()?;
        }
        _ => return None,
    }
    let gpus = r.count()?;
    for _ in 0..gpus.min(cap(MAX_GPUS)) {
        r.vec()?; // report
        r.vec()?; // PEM chain
        r.take(32)?; // nonce
        r.vec()?; // uuid
    }
    if gpus > cap(MAX_GPUS) {
        return None;
    }
    let (mut rims, mut ocsp) = (0, 0);
    if version >= BUNDLE_VERSION_2 {
        rims = r.count()?;
        for _ in 0..rims.min(cap(MAX_RIMS)) {
            r.vec()?;
        }
        if rims > cap(MAX_RIMS) {
            return None;
        }
        ocsp = r.count()?;
        // The rest (the OCSP responses themselves, CPU collateral, later fields) is counted
        // by its bytes only.
    }
    Some(EvidenceCost {
        gpus,
        rims,
        ocsp: ocsp.min(cap(MAX_OCSP)),
        bytes: len,
    })
}

/// A cursor over the bundle's bytes; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    /// A SCALE compact length.
    fn count(&mut self) -> Option<u32> {
        Compact::<u32>::decode(&mut self.0).ok().map(|c| c.0)
    }

    /// A `Vec<u8>` or `String`: its length prefix and bytes, skipped.
    fn vec(&mut self) -> Option<()> {
        let n = usize::try_from(self.count()?).ok()?;
        self.take(n).map(|_| ())
    }

    /// An `Option<Vec<u8>>`, skipped.
    fn option_vec(&mut self) -> Option<()> {
        match self.byte()? {
            0 => Some(()),
            1 => self.vec(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
