//! The result commitment: a binary SHA-256 hash tree over a job's outputs, so a
//! buyer can check one output against a receipt without the others.
//!
//! The tree is the one of RFC 6962 / RFC 9162 (Certificate Transparency) with
//! Sigil's leaf contents:
//!
//! ```text
//! leaf  = SHA-256(0x00 || u32_le(len(name)) || name || SHA-256(content))
//! node  = SHA-256(0x01 || left || right)
//! MTH([])      = SHA-256("")
//! MTH([l])     = l
//! MTH(D[0..n]) = node(MTH(D[0..k]), MTH(D[k..n])), k the largest power of two < n
//! ```
//!
//! Leaves are ordered by name (bytewise) and names are unique, so the root
//! depends only on the set of (name, content) pairs. The 0x00/0x01 prefixes keep
//! a leaf from ever being read as a node (second-preimage attacks). Inclusion
//! proofs are RFC 9162 audit paths, checked with its §2.1.3.2 algorithm.

use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeAll, Encode};
#[cfg(feature = "scale")]
use scale_info::TypeInfo;

use crate::crypto::Crypto;

/// Prefix of leaf hashes.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of interior node hashes.
pub const NODE_PREFIX: u8 = 0x01;
/// Longest output name accepted, bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest audit path accepted (a tree of 2^64 leaves needs 64).
pub const MAX_PATH_LEN: usize = 64;

/// Why a tree cannot be built or a proof does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// Two outputs have the same name.
    #[error("output name {0:?} appears twice")]
    DuplicateName(alloc::string::String),
    /// An output name is empty or longer than [`MAX_NAME_LEN`].
    #[error("output name length {0} is outside 1..={MAX_NAME_LEN}")]
    NameLength(usize),
    /// More outputs than a `u32` counts.
    #[error("too many outputs")]
    TooManyOutputs,
    /// The proof's leaf count differs from the receipt's output count.
    #[error("proof is for a tree of {proof} outputs, the receipt commits to {receipt}")]
    CountMismatch {
        /// In the proof.
        proof: u32,
        /// In the receipt.
        receipt: u32,
    },
    /// The index is not below the count.
    #[error("proof index {index} is not below the output count {count}")]
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The count.
        count: u32,
    },
    /// The audit path has the wrong length for the index and count.
    #[error("audit path has the wrong length for index {index} of {count}")]
    PathLength {
        /// The index.
        index: u32,
        /// The count.
        count: u32,
    },
    /// The recomputed root differs from the commitment.
    #[error("output is not under the result commitment")]
    RootMismatch,
    /// The proof bytes are not a SCALE-encoded proof.
    #[error("inclusion proof is not valid SCALE")]
    Decode,
}

fn name_string(name: &[u8]) -> alloc::string::String {
    alloc::string::String::from_utf8_lossy(name).into_owned()
}

/// The hash of one output leaf.
pub fn leaf_hash<C: Crypto + ?Sized>(
    crypto: &C,
    name: &[u8],
    content_sha256: &[u8; 32],
) -> Result<[u8; 32], MerkleError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(MerkleError::NameLength(name.len()));
    }
    let len = u32::try_from(name.len()).map_err(|_| MerkleError::NameLength(name.len()))?;
    let mut msg = Vec::with_capacity(name.len().saturating_add(37));
    msg.push(LEAF_PREFIX);
    msg.extend_from_slice(&len.to_le_bytes());
    msg.extend_from_slice(name);
    msg.extend_from_slice(content_sha256);
    Ok(crypto.sha256(&msg))
}

/// The hash of an interior node.
pub fn node_hash<C: Crypto + ?Sized>(crypto: &C, left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut msg = [0u8; 65];
    let (p, rest) = msg.split_at_mut(1);
    let (l, r) = rest.split_at_mut(32);
    p.copy_from_slice(&[NODE_PREFIX]);
    l.copy_from_slice(left);
    r.copy_from_slice(right);
    crypto.sha256(&msg)
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    let mut k = 1usize;
    while let Some(next) = k.checked_mul(2) {
        if next >= n {
            break;
        }
        k = next;
    }
    k
}

fn mth<C: Crypto + ?Sized>(crypto: &C, leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => crypto.sha256(&[]),
        [one] => *one,
        _ => {
            let (l, r) = leaves.split_at(split_point(leaves.len()));
            node_hash(crypto, &mth(crypto, l), &mth(crypto, r))
        }
    }
}

fn path<C: Crypto + ?Sized>(crypto: &C, m: usize, leaves: &[[u8; 32]], out: &mut Vec<[u8; 32]>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (l, r) = leaves.split_at(k);
    match m.checked_sub(k) {
        None => {
            path(crypto, m, l, out);
            out.push(mth(crypto, r));
        }
        Some(m_right) => {
            path(crypto, m_right, r, out);
            out.push(mth(crypto, l));
        }
    }
}

/// A job's outputs as a hash tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTree {
    names: Vec<Vec<u8>>,
    leaves: Vec<[u8; 32]>,
}

/// Proof that one output is under a result commitment.
#[derive(Encode, Decode, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scale", derive(TypeInfo))]
pub struct InclusionProof {
    /// The output's position (outputs are sorted by name).
    pub index: u32,
    /// How many outputs the tree has.
    pub count: u32,
    /// Sibling hashes from the leaf up (RFC 9162 audit path).
    pub path: Vec<[u8; 32]>,
}

impl InclusionProof {
    /// `SCALE(proof)`: the file and wire format.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes `SCALE(proof)`; every byte must be consumed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MerkleError> {
        let p = Self::decode_all(&mut &*bytes).map_err(|_| MerkleError::Decode)?;
        if p.path.len() > MAX_PATH_LEN {
            return Err(MerkleError::Decode);
        }
        Ok(p)
    }
}

impl OutputTree {
    /// Builds the tree over `(name, SHA-256(content))` pairs, in any order.
    pub fn new<C: Crypto + ?Sized>(
        crypto: &C,
        outputs: impl IntoIterator<Item = (Vec<u8>, [u8; 32])>,
    ) -> Result<Self, MerkleError> {
        let mut outputs: Vec<(Vec<u8>, [u8; 32])> = outputs.into_iter().collect();
        outputs.sort_by(|a, b| a.0.cmp(&b.0));
        if u32::try_from(outputs.len()).is_err() {
            return Err(MerkleError::TooManyOutputs);
        }
        let mut names = Vec::with_capacity(outputs.len());
        let mut leaves = Vec::with_capacity(outputs.len());
        for (name, content) in outputs {
            if names.last() == Some(&name) {
                return Err(MerkleError::DuplicateName(name_string(&name)));
            }
            leaves.push(leaf_hash(crypto, &name, &content)?);
            names.push(name);
        }
        Ok(Self { names, leaves })
    }

    /// Number of outputs.
    pub fn len(&self) -> u32 {
        // `new` checked that the count fits.
        u32::try_from(self.leaves.len()).unwrap_or(u32::MAX)
    }

    /// Whether there are no outputs.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Output names in tree order.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.iter().map(Vec::as_slice)
    }

    /// The root: the receipt's `result_commitment`.
    pub fn root<C: Crypto + ?Sized>(&self, crypto: &C) -> [u8; 32] {
        mth(crypto, &self.leaves)
    }

    /// The inclusion proof of the output called `name`, if there is one.
    pub fn prove<C: Crypto + ?Sized>(&self, crypto: &C, name: &[u8]) -> Option<InclusionProof> {
        let index = self
            .names
            .binary_search_by(|n| n.as_slice().cmp(name))
            .ok()?;
        let mut p = Vec::new();
        path(crypto, index, &self.leaves, &mut p);
        Some(InclusionProof {
            index: u32::try_from(index).ok()?,
            count: self.len(),
            path: p,
        })
    }
}

/// Checks that the output `name` with content hash `content_sha256` is under
/// `root`, a commitment to `count` outputs (both from the receipt).
pub fn verify_inclusion<C: Crypto + ?Sized>(
    crypto: &C,
    root: &[u8; 32],
    count: u32,
    name: &[u8],
    content_sha256: &[u8; 32],
    proof: &InclusionProof,
) -> Result<(), MerkleError> {
    if proof.count != count {
        return Err(MerkleError::CountMismatch {
            proof: proof.count,
            receipt: count,
        });
    }
    if proof.index >= count {
        return Err(MerkleError::IndexOutOfRange {
            index: proof.index,
            count,
        });
    }
    let bad_path = MerkleError::PathLength {
        index: proof.index,
        count,
    };
    // RFC 9162 §2.1.3.2.
    let mut fn_ = proof.index;
    let mut sn = count.checked_sub(1).ok_or(MerkleError::RootMismatch)?;
    let mut r = leaf_hash(crypto, name, content_sha256)?;
    for p in &proof.path {
        if sn == 0 {
            return Err(bad_path);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(crypto, p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(crypto, &r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(bad_path);
    }
    if &r == root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

#[cfg(test)]
mod tests;
