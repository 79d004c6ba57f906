//! The Intel TDX MRTD of a TDVF (TDX-capable OVMF) image.
//!
//! The TDX module extends MRTD (SHA-384) with a 128-byte buffer per operation:
//!
//! - `TDH.MEM.PAGE.ADD` of a 4 KiB page: `"MEM.PAGE.ADD"` at 0, the GPA (LE u64) at 16, zeros;
//! - `TDH.MR.EXTEND` of a 256-byte chunk: `"MR.EXTEND"` at 0, the chunk's GPA at 16, zeros,
//!   then the chunk's two 128-byte halves.
//!
//! The firmware's TDVF descriptor (found through the GUID table entry
//! `e47a6535-984a-4798-865e-4685a7bf8ec2`, an offset from the image end) lists the
//! sections the VMM adds, in order; every section is added page by page, and the
//! sections with attribute MR.EXTEND (bit 0) are also measured, from the image bytes
//! at `data_offset` (zeros past `raw_size`). Sections with PAGE.AUG (bit 1) are
//! accepted by the guest later and not added.
//!
//! Upstream Linux KVM (`KVM_TDX_INIT_MEM_REGION` with `KVM_TDX_MEASURE_MEMORY_REGION`)
//! and QEMU add each page and immediately extend it ([`PageOrder::PerPage`], the
//! `mrtd`); older TDX stacks added all pages of a section before extending any
//! ([`PageOrder::TwoPass`]).

use alloc::vec::Vec;
use core::fmt;

use sha2::Digest;

use super::guid_table::{Guid, GuidTable, GuidTableError};
use super::{MAX_FIRMWARE_LEN, PAGE_SIZE, PAGE_U64, slice_at, u32_at, u64_at};

/// `e47a6535-984a-4798-865e-4685a7bf8ec2`: offset from the image end to the TDVF descriptor.
pub const TDVF_METADATA_GUID: Guid = Guid::new(
    0xe47a_6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);

/// The most pages the sections may add together (1 GiB); OVMF adds about 540.
pub const MAX_ADDED_PAGES: u64 = 1 << 18;
/// The most bytes the MR.EXTEND sections may measure together (64 MiB, the firmware
/// size limit: measured memory past a section's data is zeros).
pub const MAX_EXTENDED_BYTES: u64 = 64 << 20;
/// The most TDVF sections accepted.
pub const MAX_SECTIONS: u32 = 256;

const ATTR_MR_EXTEND: u32 = 1;
const ATTR_PAGE_AUG: u32 = 2;
const DESCRIPTOR_HEADER_LEN: usize = 16;
const SECTION_LEN: usize = 32;

/// The order in which the pages of a section are added and extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageOrder {
    /// Each page's MEM.PAGE.ADD immediately followed by its 16 MR.EXTENDs (upstream KVM/QEMU).
    PerPage,
    /// All MEM.PAGE.ADDs of a section, then all its MR.EXTENDs (older TDX stacks).
    TwoPass,
}

/// TDVF section types (TDVF design guide, table 1.2-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdvfSectionType {
    /// 0: boot firmware volume (code).
    Bfv,
    /// 1: configuration firmware volume (variables).
    Cfv,
    /// 2: TD HOB.
    TdHob,
    /// 3: temporary memory.
    TempMem,
    /// 4: permanent memory.
    PermMem,
    /// 5: payload.
    Payload,
    /// 6: payload parameters.
    PayloadParam,
}

impl TdvfSectionType {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Bfv,
            1 => Self::Cfv,
            2 => Self::TdHob,
            3 => Self::TempMem,
            4 => Self::PermMem,
            5 => Self::Payload,
            6 => Self::PayloadParam,
            _ => return None,
        })
    }

    /// The design guide's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bfv => "BFV",
            Self::Cfv => "CFV",
            Self::TdHob => "TD_HOB",
            Self::TempMem => "TEMP_MEM",
            Self::PermMem => "PERM_MEM",
            Self::Payload => "PAYLOAD",
            Self::PayloadParam => "PAYLOAD_PARAM",
        }
    }
}

impl fmt::Display for TdvfSectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One TDVF section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdvfSection {
    /// Offset of its data in the image.
    pub data_offset: u32,
    /// Bytes of data in the image.
    pub raw_size: u32,
    /// Guest-physical start.
    pub gpa: u64,
    /// Size in guest memory.
    pub mem_size: u64,
    /// Its type.
    pub section_type: TdvfSectionType,
    /// Attributes: bit 0 MR.EXTEND, bit 1 PAGE.AUG.
    pub attributes: u32,
}

impl TdvfSection {
    /// Whether its contents are measured (MR.EXTEND).
    pub fn extended(&self) -> bool {
        self.attributes & ATTR_MR_EXTEND != 0
    }

    /// Whether it is added at launch (not PAGE.AUG).
    pub fn added(&self) -> bool {
        self.attributes & ATTR_PAGE_AUG == 0
    }
}

/// Why an MRTD cannot be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxMeasureError {
    /// Larger than [`MAX_FIRMWARE_LEN`].
    #[error("image of {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        /// Image length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The GUID table is missing or malformed.
    #[error(transparent)]
    GuidTable(#[from] GuidTableError),
    /// No TDVF metadata entry: not a TDX-capable image.
    #[error(
        "no TDVF metadata (GUID {TDVF_METADATA_GUID}) in the GUID table: not a TDX-capable image"
    )]
    NoTdvfMetadata,
    /// The TDVF metadata entry is too short to hold its offset.
    #[error("TDVF metadata GUID table entry is {len} bytes, too short for an offset")]
    EntryTooShort {
        /// Its length.
        len: usize,
    },
    /// The descriptor lies outside the image.
    #[error("TDVF descriptor at {offset_from_end:#x} bytes from the end lies outside the image")]
    DescriptorOutsideImage {
        /// The offset the table gives.
        offset_from_end: u32,
    },
    /// The descriptor does not start with `TDVF`.
    #[error("TDVF descriptor signature is not \"TDVF\"")]
    Signature,
    /// Unsupported descriptor version.
    #[error("TDVF descriptor version {version} is not supported (expected 1)")]
    Version {
        /// The version field.
        version: u32,
    },
    /// The sections lie outside the descriptor or the image, or are too many.
    #[error(
        "TDVF descriptor of {length} bytes cannot hold {sections} sections within the image (at most {MAX_SECTIONS})"
    )]
    Sections {
        /// The section count.
        sections: u32,
        /// The descriptor length field.
        length: u32,
    },
    /// Unknown section type.
    #[error("TDVF section {index} has unknown type {section_type}")]
    SectionType {
        /// The section's index.
        index: usize,
        /// Its type field.
        section_type: u32,
    },
    /// Unknown attribute bits.
    #[error("TDVF section {index} ({section_type}) has unknown attributes {attributes:#x}")]
    Attributes {
        /// The section's index.
        index: usize,
        /// Its type.
        section_type: TdvfSectionType,
        /// Its attributes.
        attributes: u32,
    },
    /// GPA or size not page aligned, or the region wraps.
    #[error(
        "TDVF section {index} ({section_type}) at {gpa:#x} of {mem_size:#x} bytes is not a page-aligned region"
    )]
    Unaligned {
        /// The section's index.
        index: usize,
        /// Its type.
        section_type: TdvfSectionType,
        /// Its GPA.
        gpa: u64,
        /// Its memory size.
        mem_size: u64,
    },
    /// More data than memory.
    #[error(
        "TDVF section {index} ({section_type}) has {raw_size:#x} bytes of data for {mem_size:#x} bytes of memory"
    )]
    RawLargerThanMemory {
        /// The section's index.
        index: usize,
        /// Its type.
        section_type: TdvfSectionType,
        /// Its data size.
        raw_size: u32,
        /// Its memory size.
        mem_size: u64,
    },
    /// The section's data lies outside the image (e.g. a code-only OVMF_CODE.fd
    /// carrying the metadata of the combined image).
    #[error(
        "TDVF section {index} ({section_type}) data [{data_offset:#x}, {data_offset:#x} + {raw_size:#x}) lies outside the {image_len:#x}-byte image"
    )]
    DataOutsideImage {
        /// The section's index.
        index: usize,
        /// Its type.
        section_type: TdvfSectionType,
        /// Its data offset.
        data_offset: u32,
        /// Its data size.
        raw_size: u32,
        /// The image length.
        image_len: usize,
    },
    /// The sections add more than [`MAX_ADDED_PAGES`].
    #[error("TDVF sections add more than {max} pages")]
    TooManyPages {
        /// The limit.
        max: u64,
    },
    /// The MR.EXTEND sections measure more than [`MAX_EXTENDED_BYTES`].
    #[error("TDVF sections measure more than {max} bytes")]
    TooManyExtendedBytes {
        /// The limit.
        max: u64,
    },
}

/// A computed MRTD with both page orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxMeasurement {
    /// MRTD with [`PageOrder::PerPage`] (upstream KVM/QEMU).
    pub mrtd: [u8; 48],
    /// MRTD with [`PageOrder::TwoPass`].
    pub mrtd_two_pass: [u8; 48],
    /// The sections, in descriptor order.
    pub sections: Vec<TdvfSection>,
    /// Pages added (MEM.PAGE.ADD).
    pub pages_added: u64,
    /// Bytes measured (MR.EXTEND).
    pub bytes_extended: u64,
}

/// Parses the TDVF descriptor of `image`, checking every section against the image.
pub fn parse_tdvf(image: &[u8]) -> Result<Vec<TdvfSection>, TdxMeasureError> {
    let len = image.len();
    if len > MAX_FIRMWARE_LEN {
        return Err(TdxMeasureError::TooLarge {
            len,
            max: MAX_FIRMWARE_LEN,
        });
    }
    let table = GuidTable::parse(image)?;
    let entry = table
        .get(&TDVF_METADATA_GUID)
        .ok_or(TdxMeasureError::NoTdvfMetadata)?;
    let offset_from_end =
        u32_at(entry, 0).ok_or(TdxMeasureError::EntryTooShort { len: entry.len() })?;
    let outside = TdxMeasureError::DescriptorOutsideImage { offset_from_end };
    let start = len
        .checked_sub(offset_from_end as usize)
        .ok_or(outside.clone())?;
    let header = slice_at(image, start, DESCRIPTOR_HEADER_LEN).ok_or(outside)?;
    if header.get(..4) != Some(b"TDVF".as_slice()) {
        return Err(TdxMeasureError::Signature);
    }
    let length = u32_at(header, 4).unwrap_or_default();
    let version = u32_at(header, 8).unwrap_or_default();
    let count = u32_at(header, 12).unwrap_or_default();
    if version != 1 {
        return Err(TdxMeasureError::Version { version });
    }
    let bad = TdxMeasureError::Sections {
        sections: count,
        length,
    };
    let body_len = (count as usize)
        .checked_mul(SECTION_LEN)
        .filter(|n| {
            count <= MAX_SECTIONS && n.saturating_add(DESCRIPTOR_HEADER_LEN) <= length as usize
        })
        .ok_or(bad.clone())?;
    let body = slice_at(image, start.saturating_add(DESCRIPTOR_HEADER_LEN), body_len).ok_or(bad)?;
    let mut sections = Vec::new();
    let mut pages: u64 = 0;
    let mut extended: u64 = 0;
    for (index, raw) in body.chunks_exact(SECTION_LEN).enumerate() {
        let s = parse_section(index, raw, len)?;
        if s.added() {
            pages = pages.saturating_add(s.mem_size.checked_div(PAGE_U64).unwrap_or_default());
            if pages > MAX_ADDED_PAGES {
                return Err(TdxMeasureError::TooManyPages {
                    max: MAX_ADDED_PAGES,
                });
            }
            if s.extended() {
                extended = extended.saturating_add(s.mem_size);
                if extended > MAX_EXTENDED_BYTES {
                    return Err(TdxMeasureError::TooManyExtendedBytes {
                        max: MAX_EXTENDED_BYTES,
                    });
                }
            }
        }
        sections.push(s);
    }
    Ok(sections)
}

fn parse_section(
    index: usize,
    raw: &[u8],
    image_len: usize,
) -> Result<TdvfSection, TdxMeasureError> {
    let data_offset = u32_at(raw, 0).unwrap_or_default();
    let raw_size = u32_at(raw, 4).unwrap_or_default();
    let gpa = u64_at(raw, 8).unwrap_or_default();
    let mem_size = u64_at(raw, 16).unwrap_or_default();
    let ty = u32_at(raw, 24).unwrap_or_default();
    let attributes = u32_at(raw, 28).unwrap_or_default();
    let section_type = TdvfSectionType::from_u32(ty).ok_or(TdxMeasureError::SectionType {
        index,
        section_type: ty,
    })?;
    if attributes & !(ATTR_MR_EXTEND | ATTR_PAGE_AUG) != 0 {
        return Err(TdxMeasureError::Attributes {
            index,
            section_type,
            attributes,
        });
    }
    if !gpa.is_multiple_of(PAGE_U64)
        || !mem_size.is_multiple_of(PAGE_U64)
        || gpa.checked_add(mem_size).is_none()
    {
        return Err(TdxMeasureError::Unaligned {
            index,
            section_type,
            gpa,
            mem_size,
        });
    }
    if u64::from(raw_size) > mem_size {
        return Err(TdxMeasureError::RawLargerThanMemory {
            index,
            section_type,
            raw_size,
            mem_size,
        });
    }
    let end = (data_offset as usize).checked_add(raw_size as usize);
    if raw_size != 0 && end.is_none_or(|e| e > image_len) {
        return Err(TdxMeasureError::DataOutsideImage {
            index,
            section_type,
            data_offset,
            raw_size,
            image_len,
        });
    }
    Ok(TdvfSection {
        data_offset,
        raw_size,
        gpa,
        mem_size,
        section_type,
        attributes,
    })
}

/// Computes the MRTD of a TDVF image in both page orders.
pub fn tdx_mrtd(image: &[u8]) -> Result<TdxMeasurement, TdxMeasureError> {
    let sections = parse_tdvf(image)?;
    let mut per_page = sha2::Sha384::new();
    let mut two_pass = sha2::Sha384::new();
    let mut pages_added: u64 = 0;
    let mut bytes_extended: u64 = 0;
    for s in sections.iter().filter(|s| s.added()) {
        let data = slice_at(image, s.data_offset as usize, s.raw_size as usize).unwrap_or_default();
        let pages = s.mem_size.checked_div(PAGE_U64).unwrap_or_default();
        // Two-pass: every page added first.
        for p in 0..pages {
            let gpa = s.gpa.wrapping_add(p.wrapping_mul(PAGE_U64));
            two_pass.update(page_add(gpa));
        }
        for p in 0..pages {
            let gpa = s.gpa.wrapping_add(p.wrapping_mul(PAGE_U64));
            per_page.update(page_add(gpa));
            if s.extended() {
                let off = (p as usize).wrapping_mul(PAGE_SIZE);
                let page = page_bytes(data, off);
                for (c, chunk) in page.chunks_exact(256).enumerate() {
                    let cgpa = gpa.wrapping_add((c as u64).wrapping_mul(256));
                    for h in [&mut per_page, &mut two_pass] {
                        h.update(extend_header(cgpa));
                        h.update(chunk);
                    }
                }
            }
        }
        pages_added = pages_added.saturating_add(pages);
        if s.extended() {
            bytes_extended = bytes_extended.saturating_add(s.mem_size);
        }
    }
    Ok(TdxMeasurement {
        mrtd: per_page.finalize().into(),
        mrtd_two_pass: two_pass.finalize().into(),
        sections,
        pages_added,
        bytes_extended,
    })
}

/// The page at `off` of a section's data, zero-filled past the data's end.
fn page_bytes(data: &[u8], off: usize) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE_SIZE);
    let have = data.get(off..).unwrap_or_default();
    page.extend_from_slice(have.get(..PAGE_SIZE).unwrap_or(have));
    page.resize(PAGE_SIZE, 0);
    page
}

fn page_add(gpa: u64) -> [u8; 128] {
    buffer(b"MEM.PAGE.ADD", gpa)
}

fn extend_header(gpa: u64) -> [u8; 128] {
    buffer(b"MR.EXTEND", gpa)
}

fn buffer(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut b = [0u8; 128];
    if let Some(dst) = b.get_mut(..op.len()) {
        dst.copy_from_slice(op);
    }
    if let Some(dst) = b.get_mut(16..24) {
        dst.copy_from_slice(&gpa.to_le_bytes());
    }
    b
}
