//! The SEV-SNP certificate table the host hands out with an extended report
//! (`/dev/sev-guest` extended report, configfs-tsm `auxblob`).
//!
//! Layout (AMD GHCB specification, "SNP Extended Guest Request"): entries of
//! 24 bytes, `GUID (16) | offset u32 LE | length u32 LE`, terminated by an
//! all-zero entry; offsets count from the start of the table. GUIDs are stored in
//! the byte order of their string form (as the Linux kernel, the `sev` crate and
//! go-sev-guest read them). Parsed by hand because the `sev` crate's parser takes
//! a raw pointer (`unsafe`) and is not available for configfs-tsm bytes.

/// GUID of the VCEK certificate.
pub const VCEK_GUID: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, 0xadc5, 0xf4b93be8accd);
/// GUID of the VLEK certificate.
pub const VLEK_GUID: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6, 0x39c045a0b8a1);
/// GUID of the ASK certificate.
pub const ASK_GUID: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f, 0x05aef327c782);
/// GUID of the ARK certificate.
pub const ARK_GUID: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, 0x9743, 0x3fb6014cd0ae);

const ENTRY_LEN: usize = 24;
/// Most entries read before giving up on a table without a terminator.
const MAX_ENTRIES: usize = 64;

const fn guid(a: u32, b: u16, c: u16, d: u16, e: u64) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    let d = d.to_be_bytes();
    let e = e.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], e[2], e[3], e[4], e[5], e[6],
        e[7],
    ]
}

/// Why a certificate table is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertTableError {
    /// The table ends inside an entry or has no terminator.
    #[error("certificate table is truncated or has no terminating entry")]
    Truncated,
    /// An entry points outside the table.
    #[error("certificate table entry {index} points outside the table ({offset}+{length} > {len})")]
    OutOfRange {
        /// The entry.
        index: usize,
        /// Its offset.
        offset: u32,
        /// Its length.
        length: u32,
        /// The table's length.
        len: usize,
    },
    /// Two entries have the same GUID.
    #[error("certificate table lists {0} twice")]
    Duplicate(&'static str),
}

pub use crate::collateral::vcek::SnpCertificates;

/// Parses a certificate table.
pub fn parse_cert_table(table: &[u8]) -> Result<SnpCertificates, CertTableError> {
    let mut out = SnpCertificates::default();
    for index in 0..MAX_ENTRIES {
        let start = index
            .checked_mul(ENTRY_LEN)
            .ok_or(CertTableError::Truncated)?;
        let end = start
            .checked_add(ENTRY_LEN)
            .ok_or(CertTableError::Truncated)?;
        let entry = table.get(start..end).ok_or(CertTableError::Truncated)?;
        let (g, rest) = entry.split_at(16);
        let (off, len) = rest.split_at(4);
        let offset = u32::from_le_bytes(off.try_into().map_err(|_| CertTableError::Truncated)?);
        let length = u32::from_le_bytes(len.try_into().map_err(|_| CertTableError::Truncated)?);
        if g.iter().all(|b| *b == 0) {
            return Ok(out);
        }
        let range = usize::try_from(offset)
            .ok()
            .and_then(|o| Some(o..o.checked_add(usize::try_from(length).ok()?)?));
        let data = range
            .and_then(|r| table.get(r))
            .ok_or(CertTableError::OutOfRange {
                index,
                offset,
                length,
                len: table.len(),
            })?;
        let (slot, name) = if g == VCEK_GUID {
            (&mut out.vcek, "VCEK")
        } else if g == VLEK_GUID {
            (&mut out.vlek, "VLEK")
        } else if g == ASK_GUID {
            (&mut out.ask, "ASK")
        } else if g == ARK_GUID {
            (&mut out.ark, "ARK")
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(CertTableError::Duplicate(name));
        }
        *slot = Some(data.to_vec());
    }
    Err(CertTableError::Truncated)
}

/// Builds a table (what a host does); used by tests and the simulator-free
/// configfs-tsm test tree.
pub fn build_cert_table(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let header = entries.len().saturating_add(1).saturating_mul(ENTRY_LEN);
    let mut table = Vec::new();
    let mut blobs = Vec::new();
    let mut offset = header;
    for (g, data) in entries {
        table.extend_from_slice(g);
        table.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
        table.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
        blobs.extend_from_slice(data);
        offset = offset.saturating_add(data.len());
    }
    table.extend_from_slice(&[0u8; ENTRY_LEN]);
    table.extend_from_slice(&blobs);
    table
}
