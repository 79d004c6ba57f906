//! Parsing: untrusted bytes to typed evidence. Total (never panics) and free of
//! cryptography: nothing here is trusted until a `verify` step says so.

pub mod azure_hcl;
pub mod azure_vtpm;
pub mod nvgpu;
pub mod rim;
pub mod simulated;
pub mod snp;
pub mod tdx;
pub mod tpm2;
pub mod xml;

/// A little cursor over untrusted bytes; every read is bounds-checked.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub(crate) const fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// `len` bytes at `offset`, or `None` when out of range.
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Option<&'a [u8]> {
        self.data.get(offset..offset.checked_add(len)?)
    }

    /// A fixed-size array at `offset`.
    pub(crate) fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        self.slice(offset, N)?.try_into().ok()
    }

    pub(crate) fn u8(&self, offset: usize) -> Option<u8> {
        self.data.get(offset).copied()
    }

    pub(crate) fn u32_le(&self, offset: usize) -> Option<u32> {
        self.array(offset).map(u32::from_le_bytes)
    }

    pub(crate) fn u64_le(&self, offset: usize) -> Option<u64> {
        self.array(offset).map(u64::from_le_bytes)
    }
}
