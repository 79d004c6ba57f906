//! The AMD SEV-SNP launch digest (the report's MEASUREMENT).
//!
//! The digest is a chain of SHA-384 over 112-byte PAGE_INFO structures (SEV-SNP
//! firmware ABI, SNP_LAUNCH_UPDATE): `ld' = SHA-384(ld || contents || 0x70u16 ||
//! page_type || is_imi=0 || vmpl3..1 perms=0 || 0 || gpa u64)`, starting from 48
//! zero bytes. What is launched, in order:
//!
//! 1. the firmware image, page by page as NORMAL pages (contents = SHA-384 of the
//!    page), placed so that it ends at 4 GiB;
//! 2. (SVSM) the COCONUT-SVSM image as NORMAL pages, ending `vars_size` below the
//!    firmware;
//! 3. the sections of the SEV metadata (`ASEV`) of the firmware (of the SVSM image
//!    in SVSM mode), in table order: SNP_SEC_MEM as ZERO pages (UNMEASURED on GCE),
//!    SNP_SECRETS as one SECRETS page, CPUID as one CPUID page (on EC2 the CPUID
//!    pages come after all other sections), SVSM_CAA as ZERO pages, and
//!    SNP_KERNEL_HASHES as one NORMAL page holding the SEV hashes table (kernel,
//!    initrd and command line SHA-256) at the table's offset in the page, or as a
//!    ZERO page without measured direct boot;
//! 4. one VMSA page per vCPU (contents = SHA-384 of the 4 KiB save area, GPA
//!    `0xFFFFFFFFF000`): the BSP starts at the reset vector `0xFFFFFFF0`, the APs at
//!    the firmware's SEV-ES reset EIP.
//!
//! The VMSA register values per VMM follow `sev-snp-measure` 0.0.13 (its GCE type,
//! and its EC2 values after the 2026-05 fix: RDX 0x600), which reproduces launches
//! observed on those clouds.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::guid_table::{Guid, GuidTable, GuidTableError};
use super::{MAX_FIRMWARE_LEN, PAGE_SIZE, PAGE_U32, PAGE_U64, sha384, slice_at, u32_at};

/// The most vCPUs accepted (KVM's `KVM_MAX_VCPUS` on x86).
pub const MAX_VCPUS: u32 = 4096;
/// The most pages the SEV metadata sections may launch together (1 GiB); real
/// firmware launches a few hundred.
pub const MAX_METADATA_PAGES: u64 = 1 << 18;
/// The firmware ends at this guest-physical address.
pub const FOUR_GIB: u64 = 1 << 32;
/// The GPA the PAGE_INFO of a VMSA page carries.
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;
/// The BSP's first instruction.
pub const BSP_EIP: u64 = 0xFFFF_FFF0;

/// `dc886566-984a-4798-a75e-5585a7bf67cc`: offset from the end of the image to the SEV metadata.
pub const SEV_METADATA_GUID: Guid = Guid::new(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);
/// `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: the SEV-ES AP reset EIP.
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::new(
    0x00f7_71de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);
/// `7255371f-3a3b-4b04-927b-1da6efa8d454`: GPA of the SEV hashes table.
pub const SEV_HASH_TABLE_RV_GUID: Guid = Guid::new(
    0x7255_371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);
/// `a789a612-0597-4c4b-a49f-cbb1fe9d1ddd`: the SVSM entry point, an offset into the SVSM image.
pub const SVSM_INFO_GUID: Guid = Guid::new(
    0xa789_a612,
    0x0597,
    0x4c4b,
    [0xa4, 0x9f, 0xcb, 0xb1, 0xfe, 0x9d, 0x1d, 0xdd],
);
const HASH_TABLE_GUID: Guid = Guid::new(
    0x9438_d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
const KERNEL_ENTRY_GUID: Guid = Guid::new(
    0x4de7_9437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);
const INITRD_ENTRY_GUID: Guid = Guid::new(
    0x44ba_f731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
const CMDLINE_ENTRY_GUID: Guid = Guid::new(
    0x97d0_2dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);

/// The hypervisor that builds the initial VMSAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmmType {
    /// QEMU/KVM (also the base for most clouds that run QEMU).
    Qemu,
    /// AWS EC2 (Nitro): different segment flags, RDX 0x600, no FPU defaults, CPUID pages last.
    Ec2,
    /// Google Compute Engine: g_pat 0x00070106, RDX 0x600, SNP_SEC_MEM unmeasured.
    Gce,
}

impl VmmType {
    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::Ec2 => "ec2",
            Self::Gce => "gce",
        }
    }
}

impl fmt::Display for VmmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// QEMU's EPYC vCPU models and the CPUID signature (family/model/stepping) each
/// reports, which QEMU puts in the initial RDX.
pub const VCPU_TYPES: &[(&str, u32)] = &[
    ("EPYC", cpu_sig(23, 1, 2)),
    ("EPYC-v1", cpu_sig(23, 1, 2)),
    ("EPYC-v2", cpu_sig(23, 1, 2)),
    ("EPYC-IBPB", cpu_sig(23, 1, 2)),
    ("EPYC-v3", cpu_sig(23, 1, 2)),
    ("EPYC-v4", cpu_sig(23, 1, 2)),
    ("EPYC-Rome", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v1", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v2", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v3", cpu_sig(23, 49, 0)),
    ("EPYC-Milan", cpu_sig(25, 1, 1)),
    ("EPYC-Milan-v1", cpu_sig(25, 1, 1)),
    ("EPYC-Milan-v2", cpu_sig(25, 1, 1)),
    ("EPYC-Genoa", cpu_sig(25, 17, 0)),
    ("EPYC-Genoa-v1", cpu_sig(25, 17, 0)),
    ("EPYC-Turin", cpu_sig(26, 0, 0)),
    ("EPYC-Turin-v1", cpu_sig(26, 0, 0)),
    ("EPYC-Turin-v2", cpu_sig(26, 0, 0)),
];

/// The CPUID Fn0000_0001_EAX signature of a family/model/stepping (AMD pub. 25481).
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, family.wrapping_sub(0xf) & 0xff)
    } else {
        (family, 0)
    };
    (family_high << 20)
        | (((model >> 4) & 0xf) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// The signature of a vCPU model named as QEMU names it (case-insensitive).
pub fn vcpu_sig(name: &str) -> Option<u32> {
    VCPU_TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, sig)| *sig)
}

/// The hashes QEMU writes into the SEV hashes table for measured direct boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the kernel image.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd (of nothing when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line with its terminating NUL.
    pub cmdline: [u8; 32],
}

impl KernelHashes {
    /// From the kernel and initrd SHA-256 and the command line. No command line
    /// and an empty one hash the same (`SHA-256(0x00)`), as in QEMU; the command
    /// line is hashed exactly as given (not trimmed).
    pub fn new(kernel: [u8; 32], initrd: [u8; 32], append: Option<&str>) -> Self {
        Self {
            kernel,
            initrd,
            cmdline: cmdline_sha256(append.unwrap_or_default()),
        }
    }

    /// The padded SEV hashes table (176 bytes): header GUID, u16 length 168, then
    /// the command line, initrd and kernel entries (GUID, u16 length 50, SHA-256).
    pub fn table(&self) -> Vec<u8> {
        let mut t = Vec::with_capacity(HASH_TABLE_PADDED_LEN);
        t.extend_from_slice(&HASH_TABLE_GUID.0);
        t.extend_from_slice(&168u16.to_le_bytes());
        for (guid, hash) in [
            (CMDLINE_ENTRY_GUID, &self.cmdline),
            (INITRD_ENTRY_GUID, &self.initrd),
            (KERNEL_ENTRY_GUID, &self.kernel),
        ] {
            t.extend_from_slice(&guid.0);
            t.extend_from_slice(&50u16.to_le_bytes());
            t.extend_from_slice(hash);
        }
        t.resize(HASH_TABLE_PADDED_LEN, 0);
        t
    }
}

const HASH_TABLE_PADDED_LEN: usize = 176;

/// SHA-256 of a kernel command line as QEMU measures it: the bytes and one NUL.
pub fn cmdline_sha256(append: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(append.as_bytes());
    h.update([0u8]);
    h.finalize().into()
}

/// A COCONUT-SVSM image launched below the firmware (`sev-snp-measure --mode snp:svsm`).
#[derive(Clone, Copy, Debug)]
pub struct Svsm<'a> {
    /// The SVSM image.
    pub image: &'a [u8],
    /// Size of the OVMF variable store between the SVSM and the firmware.
    pub vars_size: u64,
}

/// Everything the launch digest depends on.
#[derive(Clone, Debug)]
pub struct SnpLaunch<'a> {
    /// The firmware (OVMF) image.
    pub ovmf: &'a [u8],
    /// Number of vCPUs (one VMSA each).
    pub vcpus: u32,
    /// The vCPU signature QEMU puts in RDX (unused on EC2 and GCE, whose RDX is 0x600).
    pub vcpu_sig: u32,
    /// The hypervisor.
    pub vmm: VmmType,
    /// The VMSA SEV_FEATURES (guest features), e.g. 0x1 (SNPActive) or 0x21
    /// (+DebugSwap). In SVSM mode the SVSM's VMSA has SEV_FEATURES 0x1 and this is unused.
    pub guest_features: u64,
    /// Measured direct boot: the kernel, initrd and command-line hashes.
    pub kernel: Option<KernelHashes>,
    /// COCONUT-SVSM mode.
    pub svsm: Option<Svsm<'a>>,
}

/// The kind of an SEV metadata section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SectionKind {
    /// SNP_SEC_MEM (1): pre-validated memory.
    SecMem,
    /// SNP_SECRETS (2): the secrets page.
    Secrets,
    /// CPUID (3): the CPUID page.
    Cpuid,
    /// SVSM_CAA (4): the SVSM calling-area page.
    SvsmCaa,
    /// SNP_KERNEL_HASHES (0x10): the page holding the SEV hashes table.
    KernelHashes,
}

impl SectionKind {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::SecMem,
            2 => Self::Secrets,
            3 => Self::Cpuid,
            4 => Self::SvsmCaa,
            0x10 => Self::KernelHashes,
            _ => return None,
        })
    }

    /// The name edk2 gives the section type.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecMem => "SNP_SEC_MEM",
            Self::Secrets => "SNP_SECRETS",
            Self::Cpuid => "CPUID",
            Self::SvsmCaa => "SVSM_CAA",
            Self::KernelHashes => "SNP_KERNEL_HASHES",
        }
    }
}

/// One SEV metadata section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataSection {
    /// Guest-physical start.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// What it is.
    pub kind: SectionKind,
}

/// Which image an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Image {
    /// The firmware (OVMF).
    Ovmf,
    /// The COCONUT-SVSM image.
    Svsm,
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ovmf => "OVMF",
            Self::Svsm => "SVSM",
        })
    }
}

/// Why a firmware image cannot be measured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// Larger than [`MAX_FIRMWARE_LEN`].
    #[error("image of {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        /// Image length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Empty or not a whole number of 4 KiB pages.
    #[error("image of {len} bytes is not a non-empty whole number of 4 KiB pages")]
    NotPageSized {
        /// Image length.
        len: usize,
    },
    /// The GUID table is missing or malformed.
    #[error(transparent)]
    GuidTable(#[from] GuidTableError),
    /// No SEV metadata entry: not an SEV-SNP capable image.
    #[error(
        "no SEV metadata (GUID {SEV_METADATA_GUID}) in the GUID table: not an SEV-SNP capable image"
    )]
    NoSevMetadata,
    /// A GUID table entry is shorter than the value it must hold.
    #[error("GUID table entry {guid} is too short ({len} bytes)")]
    EntryTooShort {
        /// The entry.
        guid: Guid,
        /// Its data length.
        len: usize,
    },
    /// The SEV metadata header lies outside the image.
    #[error("SEV metadata at {offset_from_end:#x} bytes from the end lies outside the image")]
    MetadataOutsideImage {
        /// The offset the table gives.
        offset_from_end: u32,
    },
    /// The SEV metadata does not start with `ASEV`.
    #[error("SEV metadata signature is not \"ASEV\"")]
    MetadataSignature,
    /// Unsupported SEV metadata version.
    #[error("SEV metadata version {version} is not supported (expected 1)")]
    MetadataVersion {
        /// The version field.
        version: u32,
    },
    /// The SEV metadata sections lie outside the metadata or the image.
    #[error("SEV metadata declares {items} sections in {size} bytes, past its end or the image's")]
    MetadataItems {
        /// The section count.
        items: u32,
        /// The metadata size field.
        size: u32,
    },
    /// Unknown SEV metadata section type.
    #[error("SEV metadata section {index} has unknown type {section_type:#x}")]
    SectionType {
        /// The section's index.
        index: usize,
        /// Its type field.
        section_type: u32,
    },
    /// A section that is not a whole number of pages.
    #[error(
        "SEV metadata section {index} ({kind}) at {gpa:#x} has size {size:#x}, not a whole number of 4 KiB pages"
    )]
    SectionSize {
        /// The section's index.
        index: usize,
        /// Its name.
        kind: &'static str,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// The sections together launch more than [`MAX_METADATA_PAGES`].
    #[error("SEV metadata sections launch more than {max} pages")]
    TooManyPages {
        /// The limit.
        max: u64,
    },
}

/// Why a launch digest cannot be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpMeasureError {
    /// A firmware or SVSM image is malformed or not SNP capable.
    #[error("{image}: {source}")]
    Firmware {
        /// Which image.
        image: Image,
        /// What is wrong.
        #[source]
        source: FirmwareError,
    },
    /// vCPU count out of range.
    #[error("{vcpus} vCPUs: must be 1 to {max}")]
    Vcpus {
        /// The count given.
        vcpus: u32,
        /// The limit.
        max: u32,
    },
    /// Measured direct boot asked of a firmware that cannot measure a kernel.
    #[error(
        "kernel specified but the OVMF SEV metadata has no SNP_KERNEL_HASHES section (this firmware cannot measure a kernel; use an AmdSev build)"
    )]
    KernelHashesUnsupported,
    /// The firmware has an SNP_KERNEL_HASHES section but no SEV hashes table GPA.
    #[error(
        "kernel specified but the OVMF GUID table has no SEV hashes table entry (GUID {SEV_HASH_TABLE_RV_GUID})"
    )]
    NoHashesTable,
    /// The SEV hashes table does not fit in the kernel-hashes page.
    #[error(
        "the SEV hashes table at {table_gpa:#x} does not fit in the SNP_KERNEL_HASHES section at {section_gpa:#x} of {section_size:#x} bytes (must be one page holding the table)"
    )]
    HashesTablePlacement {
        /// The table's GPA.
        table_gpa: u32,
        /// The section's GPA.
        section_gpa: u32,
        /// The section's size.
        section_size: u32,
    },
    /// No SEV-ES reset block, so the APs' start cannot be known.
    #[error("{image}: no {guid} entry in the GUID table (the AP reset vector)")]
    NoResetVector {
        /// Which image.
        image: Image,
        /// The missing entry.
        guid: Guid,
    },
    /// An AP reset EIP of zero with more than one vCPU.
    #[error("the OVMF SEV-ES reset EIP is 0, so {vcpus} vCPUs cannot be launched")]
    NoApResetVector {
        /// The vCPU count.
        vcpus: u32,
    },
    /// SVSM mode on another VMM than QEMU.
    #[error("SVSM launch measurement is defined only for QEMU, not {vmm}")]
    SvsmVmm {
        /// The VMM given.
        vmm: VmmType,
    },
    /// A kernel together with an SVSM (the SVSM mode measures no kernel).
    #[error(
        "measured direct boot is not part of the SVSM launch (the kernel is measured by the guest firmware, not at launch)"
    )]
    SvsmKernel,
    /// The SVSM does not fit below the firmware and its variable store.
    #[error(
        "the SVSM image ({svsm_len} bytes) and {vars_size} bytes of OVMF variables do not fit below the firmware at {ovmf_gpa:#x}"
    )]
    SvsmPlacement {
        /// SVSM length.
        svsm_len: usize,
        /// The variable store size.
        vars_size: u64,
        /// The firmware's GPA.
        ovmf_gpa: u64,
    },
    /// The variable store size is not page aligned.
    #[error("OVMF variable store size {vars_size} is not a whole number of 4 KiB pages")]
    VarsSize {
        /// The size given.
        vars_size: u64,
    },
}

/// The result of a launch-digest calculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpMeasurement {
    /// The launch digest: the report's MEASUREMENT.
    pub measurement: [u8; 48],
    /// The digest after the firmware pages alone (`sev-snp-measure --snp-ovmf-hash`).
    pub ovmf_hash: [u8; 48],
    /// Where the firmware is loaded.
    pub ovmf_gpa: u64,
    /// Where the SVSM image is loaded (SVSM mode).
    pub svsm_gpa: Option<u64>,
    /// The APs' start (the SVSM entry point in SVSM mode).
    pub ap_eip: u64,
    /// The SEV metadata sections measured, in table order.
    pub sections: Vec<MetadataSection>,
    /// The SEV hashes table GPA, when a kernel was measured.
    pub hashes_table_gpa: Option<u32>,
}

/// A parsed firmware (or SVSM) image.
struct Firmware<'a> {
    data: &'a [u8],
    gpa: u64,
    table: GuidTable<'a>,
    sections: Vec<MetadataSection>,
}

impl<'a> Firmware<'a> {
    fn parse(data: &'a [u8], end: u64) -> Result<Self, FirmwareError> {
        let len = data.len();
        if len > MAX_FIRMWARE_LEN {
            return Err(FirmwareError::TooLarge {
                len,
                max: MAX_FIRMWARE_LEN,
            });
        }
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(FirmwareError::NotPageSized { len });
        }
        let table = GuidTable::parse(data)?;
        let sections = parse_sev_metadata(data, &table)?;
        let gpa = end.checked_sub(len as u64).ok_or(FirmwareError::TooLarge {
            len,
            max: MAX_FIRMWARE_LEN,
        })?;
        Ok(Self {
            data,
            gpa,
            table,
            sections,
        })
    }

    fn entry_u32(&self, guid: &Guid) -> Result<Option<u32>, FirmwareError> {
        match self.table.get(guid) {
            None => Ok(None),
            Some(data) => u32_at(data, 0)
                .map(Some)
                .ok_or(FirmwareError::EntryTooShort {
                    guid: *guid,
                    len: data.len(),
                }),
        }
    }
}

fn parse_sev_metadata(
    data: &[u8],
    table: &GuidTable<'_>,
) -> Result<Vec<MetadataSection>, FirmwareError> {
    let entry = table
        .get(&SEV_METADATA_GUID)
        .ok_or(FirmwareError::NoSevMetadata)?;
    let offset_from_end = u32_at(entry, 0).ok_or(FirmwareError::EntryTooShort {
        guid: SEV_METADATA_GUID,
        len: entry.len(),
    })?;
    let outside = FirmwareError::MetadataOutsideImage { offset_from_end };
    let start = data
        .len()
        .checked_sub(offset_from_end as usize)
        .ok_or(outside.clone())?;
    let header = slice_at(data, start, 16).ok_or(outside)?;
    if header.get(..4) != Some(b"ASEV".as_slice()) {
        return Err(FirmwareError::MetadataSignature);
    }
    let size = u32_at(header, 4).unwrap_or_default();
    let version = u32_at(header, 8).unwrap_or_default();
    let items = u32_at(header, 12).unwrap_or_default();
    if version != 1 {
        return Err(FirmwareError::MetadataVersion { version });
    }
    let bad_items = FirmwareError::MetadataItems { items, size };
    let body_len = (size as usize).checked_sub(16).ok_or(bad_items.clone())?;
    let body = slice_at(data, start.saturating_add(16), body_len).ok_or(bad_items.clone())?;
    let mut out = Vec::new();
    let mut pages: u64 = 0;
    for (index, item) in body.chunks_exact(12).take(items as usize).enumerate() {
        let gpa = u32_at(item, 0).unwrap_or_default();
        let size = u32_at(item, 4).unwrap_or_default();
        let section_type = u32_at(item, 8).unwrap_or_default();
        let kind = SectionKind::from_u32(section_type).ok_or(FirmwareError::SectionType {
            index,
            section_type,
        })?;
        if !size.is_multiple_of(PAGE_U32) {
            return Err(FirmwareError::SectionSize {
                index,
                kind: kind.name(),
                gpa,
                size,
            });
        }
        pages =
            pages.saturating_add(u64::from(size.checked_div(PAGE_U32).unwrap_or_default()).max(1));
        if pages > MAX_METADATA_PAGES {
            return Err(FirmwareError::TooManyPages {
                max: MAX_METADATA_PAGES,
            });
        }
        out.push(MetadataSection { gpa, size, kind });
    }
    if out.len() != items as usize {
        return Err(bad_items);
    }
    Ok(out)
}

const PAGE_NORMAL: u8 = 1;
const PAGE_VMSA: u8 = 2;
const PAGE_ZERO: u8 = 3;
const PAGE_UNMEASURED: u8 = 4;
const PAGE_SECRETS: u8 = 5;
const PAGE_CPUID: u8 = 6;

/// The launch digest being built.
struct Gctx {
    ld: [u8; 48],
}

impl Gctx {
    fn update(&mut self, page_type: u8, gpa: u64, contents: &[u8; 48]) {
        let mut info = Vec::with_capacity(0x70);
        info.extend_from_slice(&self.ld);
        info.extend_from_slice(contents);
        info.extend_from_slice(&0x70u16.to_le_bytes());
        info.extend_from_slice(&[page_type, 0, 0, 0, 0, 0]);
        info.extend_from_slice(&gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// NORMAL pages of `data` from `gpa` (`data` is page sized: checked by the caller).
    fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        let mut at = gpa;
        for page in data.chunks_exact(PAGE_SIZE) {
            self.update(PAGE_NORMAL, at, &sha384(page));
            at = at.wrapping_add(PAGE_U64);
        }
    }

    /// `size / 4096` pages of a contents-less type from `gpa`.
    fn empty_pages(&mut self, page_type: u8, gpa: u32, size: u32) {
        let mut at = u64::from(gpa);
        for _ in 0..size.checked_div(PAGE_U32).unwrap_or_default() {
            self.update(page_type, at, &[0; 48]);
            at = at.wrapping_add(PAGE_U64);
        }
    }
}

fn update_metadata(gctx: &mut Gctx, fw: &Firmware<'_>, vmm: VmmType, hashes_page: Option<&[u8]>) {
    for s in &fw.sections {
        match s.kind {
            SectionKind::SecMem if vmm == VmmType::Gce => {
                gctx.empty_pages(PAGE_UNMEASURED, s.gpa, s.size)
            }
            SectionKind::SecMem | SectionKind::SvsmCaa => {
                gctx.empty_pages(PAGE_ZERO, s.gpa, s.size)
            }
            SectionKind::Secrets => gctx.update(PAGE_SECRETS, u64::from(s.gpa), &[0; 48]),
            SectionKind::Cpuid if vmm == VmmType::Ec2 => {}
            SectionKind::Cpuid => gctx.update(PAGE_CPUID, u64::from(s.gpa), &[0; 48]),
            SectionKind::KernelHashes => match hashes_page {
                Some(page) => gctx.normal_pages(u64::from(s.gpa), page),
                None => gctx.empty_pages(PAGE_ZERO, s.gpa, s.size),
            },
        }
    }
    if vmm == VmmType::Ec2 {
        for s in fw.sections.iter().filter(|s| s.kind == SectionKind::Cpuid) {
            gctx.update(PAGE_CPUID, u64::from(s.gpa), &[0; 48]);
        }
    }
}

/// Computes the SEV-SNP launch digest.
pub fn snp_launch_digest(launch: &SnpLaunch<'_>) -> Result<SnpMeasurement, SnpMeasureError> {
    if launch.vcpus == 0 || launch.vcpus > MAX_VCPUS {
        return Err(SnpMeasureError::Vcpus {
            vcpus: launch.vcpus,
            max: MAX_VCPUS,
        });
    }
    let ovmf =
        Firmware::parse(launch.ovmf, FOUR_GIB).map_err(|source| SnpMeasureError::Firmware {
            image: Image::Ovmf,
            source,
        })?;
    let mut gctx = Gctx { ld: [0; 48] };
    gctx.normal_pages(ovmf.gpa, ovmf.data);
    let ovmf_hash = gctx.ld;
    match launch.svsm {
        Some(svsm) => svsm_digest(launch, &ovmf, svsm, gctx, ovmf_hash),
        None => ovmf_digest(launch, &ovmf, gctx, ovmf_hash),
    }
}

fn ovmf_digest(
    launch: &SnpLaunch<'_>,
    ovmf: &Firmware<'_>,
    mut gctx: Gctx,
    ovmf_hash: [u8; 48],
) -> Result<SnpMeasurement, SnpMeasureError> {
    let fw_err = |source| SnpMeasureError::Firmware {
        image: Image::Ovmf,
        source,
    };
    let mut hashes_table_gpa = None;
    let hashes_page = match &launch.kernel {
        None => None,
        Some(k) => {
            let section = ovmf
                .sections
                .iter()
                .find(|s| s.kind == SectionKind::KernelHashes)
                .ok_or(SnpMeasureError::KernelHashesUnsupported)?;
            let table_gpa = ovmf
                .entry_u32(&SEV_HASH_TABLE_RV_GUID)
                .map_err(fw_err)?
                .ok_or(SnpMeasureError::NoHashesTable)?;
            hashes_table_gpa = Some(table_gpa);
            Some(hashes_page(k, table_gpa, section)?)
        }
    };
    let ap_eip = ovmf
        .entry_u32(&SEV_ES_RESET_BLOCK_GUID)
        .map_err(fw_err)?
        .ok_or(SnpMeasureError::NoResetVector {
            image: Image::Ovmf,
            guid: SEV_ES_RESET_BLOCK_GUID,
        })?;
    if ap_eip == 0 && launch.vcpus > 1 {
        return Err(SnpMeasureError::NoApResetVector {
            vcpus: launch.vcpus,
        });
    }
    update_metadata(&mut gctx, ovmf, launch.vmm, hashes_page.as_deref());
    let regs = VmsaRegs {
        vmm: launch.vmm,
        vcpu_sig: launch.vcpu_sig,
        sev_features: launch.guest_features,
    };
    let bsp = sha384(&regs.ovmf_vmsa(BSP_EIP));
    let ap = sha384(&regs.ovmf_vmsa(u64::from(ap_eip)));
    for i in 0..launch.vcpus {
        gctx.update(PAGE_VMSA, VMSA_GPA, if i == 0 { &bsp } else { &ap });
    }
    Ok(SnpMeasurement {
        measurement: gctx.ld,
        ovmf_hash,
        ovmf_gpa: ovmf.gpa,
        svsm_gpa: None,
        ap_eip: u64::from(ap_eip),
        sections: ovmf.sections.clone(),
        hashes_table_gpa,
    })
}

fn hashes_page(
    k: &KernelHashes,
    table_gpa: u32,
    section: &MetadataSection,
) -> Result<Vec<u8>, SnpMeasureError> {
    let placement = SnpMeasureError::HashesTablePlacement {
        table_gpa,
        section_gpa: section.gpa,
        section_size: section.size,
    };
    // sev-snp-measure places the table at the GPA's offset within the page and
    // requires the section to be exactly that one page.
    let offset = (table_gpa as usize) % PAGE_SIZE;
    if section.size as usize != PAGE_SIZE
        || offset.saturating_add(HASH_TABLE_PADDED_LEN) > PAGE_SIZE
    {
        return Err(placement);
    }
    let mut page = vec![0u8; offset];
    page.extend_from_slice(&k.table());
    page.resize(PAGE_SIZE, 0);
    Ok(page)
}

fn svsm_digest(
    launch: &SnpLaunch<'_>,
    ovmf: &Firmware<'_>,
    svsm: Svsm<'_>,
    mut gctx: Gctx,
    ovmf_hash: [u8; 48],
) -> Result<SnpMeasurement, SnpMeasureError> {
    if launch.vmm != VmmType::Qemu {
        return Err(SnpMeasureError::SvsmVmm { vmm: launch.vmm });
    }
    if launch.kernel.is_some() {
        return Err(SnpMeasureError::SvsmKernel);
    }
    if !svsm.vars_size.is_multiple_of(PAGE_U64) {
        return Err(SnpMeasureError::VarsSize {
            vars_size: svsm.vars_size,
        });
    }
    let placement = SnpMeasureError::SvsmPlacement {
        svsm_len: svsm.image.len(),
        vars_size: svsm.vars_size,
        ovmf_gpa: ovmf.gpa,
    };
    let end = ovmf
        .gpa
        .checked_sub(svsm.vars_size)
        .ok_or(placement.clone())?;
    if (svsm.image.len() as u64) > end {
        return Err(placement);
    }
    let fw_err = |source| SnpMeasureError::Firmware {
        image: Image::Svsm,
        source,
    };
    let image = Firmware::parse(svsm.image, end).map_err(fw_err)?;
    let entry = image.entry_u32(&SVSM_INFO_GUID).map_err(fw_err)?.ok_or(
        SnpMeasureError::NoResetVector {
            image: Image::Svsm,
            guid: SVSM_INFO_GUID,
        },
    )?;
    let ap_eip = u64::from(entry).wrapping_add(image.gpa);
    gctx.normal_pages(image.gpa, image.data);
    update_metadata(&mut gctx, &image, VmmType::Qemu, None);
    let vmsa = sha384(&svsm_vmsa(ap_eip, launch.vcpu_sig));
    for _ in 0..launch.vcpus {
        gctx.update(PAGE_VMSA, VMSA_GPA, &vmsa);
    }
    Ok(SnpMeasurement {
        measurement: gctx.ld,
        ovmf_hash,
        ovmf_gpa: ovmf.gpa,
        svsm_gpa: Some(image.gpa),
        ap_eip,
        sections: image.sections.clone(),
        hashes_table_gpa: None,
    })
}

/// A VMCB segment register: selector, attributes, limit, base.
#[derive(Clone, Copy)]
struct Seg(u16, u16, u32, u64);

/// The 4 KiB VMSA (SEV-ES save area, AMD APM vol. 2 table B-4), zeroed.
struct Vmsa(Vec<u8>);

impl Vmsa {
    fn new() -> Self {
        Self(vec![0; PAGE_SIZE])
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        if let Some(dst) = off
            .checked_add(bytes.len())
            .and_then(|end| self.0.get_mut(off..end))
        {
            dst.copy_from_slice(bytes);
        }
    }

    fn seg(&mut self, off: usize, s: Seg) {
        self.put(off, &s.0.to_le_bytes());
        self.put(off.saturating_add(2), &s.1.to_le_bytes());
        self.put(off.saturating_add(4), &s.2.to_le_bytes());
        self.put(off.saturating_add(8), &s.3.to_le_bytes());
    }

    fn u64(&mut self, off: usize, v: u64) {
        self.put(off, &v.to_le_bytes());
    }
}

// Save-area offsets.
const ES: usize = 0x00;
const CS: usize = 0x10;
const SS: usize = 0x20;
const DS: usize = 0x30;
const FS: usize = 0x40;
const GS: usize = 0x50;
const GDTR: usize = 0x60;
const LDTR: usize = 0x70;
const IDTR: usize = 0x80;
const TR: usize = 0x90;
const EFER: usize = 0xd0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// What the per-VMM register values depend on.
struct VmsaRegs {
    vmm: VmmType,
    vcpu_sig: u32,
    sev_features: u64,
}

impl VmsaRegs {
    /// The initial VMSA of a vCPU starting at `eip` (sev-snp-measure `VMSA.build_save_area`).
    fn ovmf_vmsa(&self, eip: u64) -> Vec<u8> {
        let mut g_pat: u64 = 0x0007_0406_0007_0406;
        let (cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw): (u16, u16, u16, u64, u32, u16) =
            match self.vmm {
                VmmType::Qemu => (0x9b, 0x93, 0x8b, u64::from(self.vcpu_sig), 0x1f80, 0x37f),
                VmmType::Ec2 if eip == BSP_EIP => (0x9a, 0x92, 0x83, 0x600, 0, 0),
                VmmType::Ec2 => (0x9b, 0x92, 0x83, 0x600, 0, 0),
                VmmType::Gce => {
                    g_pat = 0x0007_0106;
                    (0x9b, 0x93, 0x8b, 0x600, 0, 0)
                }
            };
        let mut v = Vmsa::new();
        v.seg(ES, Seg(0, 0x93, 0xffff, 0));
        v.seg(CS, Seg(0xf000, cs_flags, 0xffff, eip & 0xffff_0000));
        v.seg(SS, Seg(0, ss_flags, 0xffff, 0));
        v.seg(DS, Seg(0, 0x93, 0xffff, 0));
        v.seg(FS, Seg(0, 0x93, 0xffff, 0));
        v.seg(GS, Seg(0, 0x93, 0xffff, 0));
        v.seg(GDTR, Seg(0, 0, 0xffff, 0));
        v.seg(IDTR, Seg(0, 0, 0xffff, 0));
        v.seg(LDTR, Seg(0, 0x82, 0xffff, 0));
        v.seg(TR, Seg(0, tr_flags, 0xffff, 0));
        v.u64(EFER, 0x1000); // KVM sets EFER.SVME
        v.u64(CR4, 0x40); // KVM sets CR4.MCE
        v.u64(CR0, 0x10);
        v.u64(DR7, 0x400);
        v.u64(DR6, 0xffff_0ff0);
        v.u64(RFLAGS, 0x2);
        v.u64(RIP, eip & 0xffff);
        v.u64(G_PAT, g_pat);
        v.u64(RDX, rdx);
        v.u64(SEV_FEATURES, self.sev_features);
        v.u64(XCR0, 0x1);
        v.put(MXCSR, &mxcsr.to_le_bytes());
        v.put(X87_FCW, &fcw.to_le_bytes());
        v.0
    }
}

/// The SVSM's initial VMSA (sev-snp-measure `VMSA_SVSM`): 32-bit protected mode at
/// the SVSM entry point, SEV_FEATURES 0x1. As in sev-snp-measure (whose values
/// reproduce the hardware-observed measurement), the x87 control word is left 0.
fn svsm_vmsa(eip: u64, vcpu_sig: u32) -> Vec<u8> {
    let mut v = Vmsa::new();
    v.seg(ES, Seg(16, 0xc93, 0xffff_ffff, 0));
    v.seg(CS, Seg(8, 0xc9b, 0xffff_ffff, 0));
    v.seg(SS, Seg(16, 0xc93, 0xffff_ffff, 0));
    v.seg(DS, Seg(16, 0xc93, 0xffff_ffff, 0));
    v.seg(FS, Seg(16, 0xc93, 0xffff_ffff, 0));
    v.seg(GS, Seg(0, 0x93, 0xffff, 0));
    v.seg(GDTR, Seg(0, 0, 0xffff, 0));
    v.seg(IDTR, Seg(0, 0, 0xffff, 0));
    v.seg(LDTR, Seg(0, 0x82, 0xffff, 0));
    v.seg(TR, Seg(0, 0x8b, 0xffff, 0));
    v.u64(EFER, 0x1000);
    v.u64(CR4, 0x40);
    v.u64(CR0, 0x11);
    v.u64(DR7, 0x400);
    v.u64(DR6, 0xffff_0ff0);
    v.u64(RFLAGS, 0x2);
    v.u64(RIP, eip);
    v.u64(G_PAT, 0x0007_0406_0007_0406);
    v.u64(RDX, u64::from(vcpu_sig));
    v.u64(SEV_FEATURES, 0x1);
    v.u64(XCR0, 0x1);
    v.put(MXCSR, &0x1f80u32.to_le_bytes());
    v.0
}
