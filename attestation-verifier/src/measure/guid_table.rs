//! The OVMF GUIDed footer table.
//!
//! OVMF (and TDVF, and COCONUT-SVSM) images end with a table of GUID-tagged entries
//! that the hypervisor reads to find what it needs (SEV metadata, the SEV-ES reset
//! vector, the TDVF descriptor). Layout, from the end of the image backwards:
//!
//! ```text
//! image end - 32         : 32 bytes (reset vector; not part of the table)
//! image end - 32 - 18    : footer entry: u16 size (whole table incl. footer), GUID 96b582de-...
//! before the footer      : entries, last first; each ends with u16 size (incl. the
//!                          18-byte header), GUID; its data is the size - 18 bytes before that
//! ```
//!
//! The parser follows `sev-snp-measure`'s reading of it, but refuses what that tool
//! reads past or silently truncates: a table reaching before the image start, an
//! entry larger than what is left of the table, and the same GUID twice.

use alloc::vec::Vec;
use core::fmt;

use super::{slice_at, u16_at};

/// A GUID in its on-disk (mixed-endian, `bytes_le`) form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID `d1-d2-d3-d4[0..2]-d4[2..8]` in its on-disk byte order.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let d2 = u16::from_le_bytes([b[4], b[5]]);
        let d3 = u16::from_le_bytes([b[6], b[7]]);
        write!(f, "{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-", b[8], b[9])?;
        for x in &b[10..] {
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The GUID of the table footer entry: `96b582de-1fb2-45f7-baea-a366c55a082d`.
pub const FOOTER_GUID: Guid = Guid::new(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);

/// Size of an entry header (u16 size + GUID).
const ENTRY_HEADER_LEN: usize = 18;
/// Where the footer entry starts, counted from the end of the image: the 32 bytes
/// after it (the reset vector area) plus its own header.
const FOOTER_FROM_END: usize = 50;

/// Why an image's GUID table could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuidTableError {
    /// The image is too short to hold the table footer.
    #[error("image of {len} bytes is too short for an OVMF GUID table footer")]
    TooShort {
        /// Image length.
        len: usize,
    },
    /// No footer GUID 32 bytes before the end of the image.
    #[error("no OVMF GUID table footer (GUID {FOOTER_GUID}) 50 bytes before the end of the image")]
    NoFooter,
    /// The footer's size is smaller than its own header.
    #[error(
        "OVMF GUID table footer size {size} is smaller than an entry header ({ENTRY_HEADER_LEN})"
    )]
    FooterSize {
        /// The footer's size field.
        size: u16,
    },
    /// The table would start before the image does.
    #[error("OVMF GUID table of {table_len} bytes reaches before the start of the image")]
    TableOutsideImage {
        /// The table length the footer gives.
        table_len: usize,
    },
    /// An entry's size is smaller than its header.
    #[error("OVMF GUID table entry {guid} has size {size}, smaller than its header")]
    EntrySize {
        /// The entry's GUID.
        guid: Guid,
        /// Its size field.
        size: u16,
    },
    /// An entry is larger than what is left of the table.
    #[error(
        "OVMF GUID table entry {guid} of {size} bytes overruns the table ({remaining} bytes left)"
    )]
    EntryOverrunsTable {
        /// The entry's GUID.
        guid: Guid,
        /// Its size field.
        size: u16,
        /// Bytes of table left.
        remaining: usize,
    },
    /// The same GUID appears twice, so which one the hypervisor reads is ambiguous.
    #[error("OVMF GUID table has entry {guid} twice")]
    DuplicateEntry {
        /// The repeated GUID.
        guid: Guid,
    },
}

/// The entries of an image's GUID table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuidTable<'a> {
    entries: Vec<(Guid, &'a [u8])>,
}

impl<'a> GuidTable<'a> {
    /// Reads the table at the end of `image`.
    pub fn parse(image: &'a [u8]) -> Result<Self, GuidTableError> {
        let len = image.len();
        let footer_at = len
            .checked_sub(FOOTER_FROM_END)
            .ok_or(GuidTableError::TooShort { len })?;
        let guid = guid_at(
            image,
            footer_at
                .checked_add(2)
                .ok_or(GuidTableError::TooShort { len })?,
        )
        .ok_or(GuidTableError::TooShort { len })?;
        if guid != FOOTER_GUID {
            return Err(GuidTableError::NoFooter);
        }
        let size = u16_at(image, footer_at).ok_or(GuidTableError::TooShort { len })?;
        let table_len = usize::from(size)
            .checked_sub(ENTRY_HEADER_LEN)
            .ok_or(GuidTableError::FooterSize { size })?;
        let start = footer_at
            .checked_sub(table_len)
            .ok_or(GuidTableError::TableOutsideImage { table_len })?;
        let mut rest = image
            .get(start..footer_at)
            .ok_or(GuidTableError::TableOutsideImage { table_len })?;
        let mut entries: Vec<(Guid, &'a [u8])> = Vec::new();
        while let Some(hdr) = rest.len().checked_sub(ENTRY_HEADER_LEN) {
            let (size, guid) = match (u16_at(rest, hdr), guid_at(rest, hdr.saturating_add(2))) {
                (Some(s), Some(g)) => (s, g),
                _ => break,
            };
            let entry_len = usize::from(size);
            if entry_len < ENTRY_HEADER_LEN {
                return Err(GuidTableError::EntrySize { guid, size });
            }
            let Some(entry_start) = rest.len().checked_sub(entry_len) else {
                return Err(GuidTableError::EntryOverrunsTable {
                    guid,
                    size,
                    remaining: rest.len(),
                });
            };
            if entries.iter().any(|(g, _)| *g == guid) {
                return Err(GuidTableError::DuplicateEntry { guid });
            }
            let data = rest.get(entry_start..hdr).unwrap_or_default();
            entries.push((guid, data));
            rest = rest.get(..entry_start).unwrap_or_default();
        }
        Ok(Self { entries })
    }

    /// The data of the entry tagged `guid`.
    pub fn get(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, data)| *data)
    }

    /// Every entry, in table order from the end of the image.
    pub fn entries(&self) -> impl Iterator<Item = (Guid, &'a [u8])> + '_ {
        self.entries.iter().copied()
    }
}

fn guid_at(data: &[u8], off: usize) -> Option<Guid> {
    Some(Guid(slice_at(data, off, 16)?.try_into().ok()?))
}
