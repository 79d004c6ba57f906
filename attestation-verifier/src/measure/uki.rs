//! The TDX boot events of a Unified Kernel Image (UKI) booted by the firmware from disk.
//!
//! A UKI is a PE32+ image: the systemd-stub EFI program with the boot payload in named
//! sections (`.linux`, `.osrel`, `.cmdline`, `.initrd`, ...). Two parties measure it:
//!
//! - RTMR1, `EV_EFI_BOOT_SERVICES_APPLICATION`: the firmware measures the UKI's PE image
//!   by its Authenticode digest (SHA-384) before starting it, as for any EFI application
//!   ([`super::tdx_boot::kernel_digest`]).
//! - RTMR2, `EV_IPL`: systemd-stub measures the UKI's sections into TPM PCR 11; through
//!   the EFI CC measurement protocol PCR 11 maps to CC MR index 3, RTMR2. For each
//!   section the stub's systemd version knows ([`stub_sections`]: the version is read from
//!   its `.sdmagic` section; all of [`UKI_SECTIONS`] when it says none), in that fixed order (not the file's),
//!   that the image holds, two events: one over the section's name with its terminating NUL (`".linux\0"`),
//!   then one over its contents. `.pcrsig` (the signature over the expected PCR 11 values)
//!   is never measured. The contents are the section as loaded in memory: its
//!   `VirtualSize` bytes from its start, the file's raw data (`SizeOfRawData`, padded to
//!   the file alignment) cut to that size, or zero-filled up to it when the raw data is
//!   shorter. A section with `VirtualSize` 0 counts as absent; when a name appears twice
//!   the first wins (systemd `src/boot/pe.c`, `src/boot/stub.c` `measure_sections`).
//!
//! This is the value `systemd-measure calculate --phase=` prints for PCR 11 (the sections
//! alone, before systemd's boot-phase strings).
//!
//! With a TPM (a cloud's vTPM) the same events go into the TPM's banks: the firmware's
//! into PCR 4, the stub's into PCR 11. Each event here carries its SHA-256 digest too,
//! what the TPM's SHA-256 bank and its event log hold ([`UkiMeasurement::authenticode_sha256`],
//! [`UkiSectionEvent::digest_sha256`], [`UkiMeasurement::pcr11_sha256`]). Multi-profile UKIs (`.profile` sections,
//! systemd 257) measure a selected profile's sections over the base ones; they are
//! refused here rather than computed for a profile the caller did not choose, as are
//! UKIs with `.dtbauto` or `.efifw` sections, which the stub measures only when they
//! match the machine's hardware IDs.
//!
//! A third party measures after the stub: the kernel's own EFI stub, which systemd-stub
//! starts with the `.cmdline` section as its load options and the `.initrd` section behind
//! the `LINUX_EFI_INITRD_MEDIA_GUID` LoadFile2 protocol. The kernel measures both into
//! PCR 9 (RTMR2 through the CC measurement protocol when there is no TPM), each an
//! `EV_EVENT_TAG` event (Linux `drivers/firmware/efi/libstub/efi-stub-helper.c`:
//! `efi_convert_cmdline` measures the `LoadOptionsSize` bytes of the load options,
//! tag `LOADED_IMAGE::LoadOptions`; `efi_load_initrd` measures the initrd it loaded, tag
//! `Linux initrd`; both through `efi_measure_tagged_event`). [`UkiMeasurement::kernel`]
//! predicts them where the UKI alone decides their bytes ([`kernel_events`]):
//!
//! - load options: the `.cmdline` section widened to UTF-16LE with a terminating NUL
//!   (systemd-stub's conversion), when it is printable ASCII without leading or trailing
//!   blanks, so that no stub version converts or trims it differently;
//! - initrd: the `.initrd` section's contents, byte for byte (the same digest as the
//!   stub's `.initrd contents` event), when no section the stub may pass inside the initrd
//!   (`.pcrsig`, `.pcrpkey`, `.ucode`) is present.
//!
//! Not predicted, and said why ([`KernelEventOmitted`]): a UKI without `.cmdline` (the
//! kernel then gets the load options of the boot entry, which the image does not hold),
//! without `.initrd`, or whose `.cmdline` or initrd the stub may change. Two things outside
//! the UKI change these events too, and a policy pinning them rejects such boots, as it
//! should: a command line given to the UKI from outside (systemd-stub uses it instead of
//! `.cmdline` when Secure Boot is off) and credentials or system extensions on the EFI
//! system partition (the stub puts them into the initrd).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256, Sha384};

use super::tdx_boot::{self, TdxBootError};
use super::{slice_at, u16_at, u32_at};

/// systemd-stub's sections in its measuring order (systemd `src/boot/uki.c`,
/// `unified_sections`), each with the first systemd version whose stub knows it (0: every
/// stub this verifier handles); the measurement follows this order whatever the order of
/// the sections in the file, and a stub measures only the sections its version knows:
///
/// - 252 and earlier (systemd v252 `src/boot/efi/stub.c`, `sections[]`): neither the stub's
///   own `.sbat` nor a `.uname`. Debian 12's stub (`systemd-boot-efi` 252) lists exactly
///   these names in its code, and a TPM's event log of a boot with it holds no other PCR 11
///   event (`deploy/image/check.sh`);
/// - 253: `.uname` and `.sbat` after `.dtb` (v253 `src/fundamental/uki.c`); what
///   `systemd-measure` 254 computes (Debian 12's backports; `tests/measure_uki.rs`);
/// - 256: `.ucode` (CPU microcode, handed to the kernel in front of the initrd) after
///   `.initrd`;
/// - 257: `.profile`, `.dtbauto`, `.hwids`; 258: `.efifw`.
pub const UKI_SECTIONS: [(&str, u32); 15] = [
    (".linux", 0),
    (".osrel", 0),
    (".cmdline", 0),
    (".initrd", 0),
    (".ucode", 256),
    (".splash", 0),
    (".dtb", 0),
    (".uname", 253),
    (".sbat", 253),
    (".pcrsig", 0),
    (".pcrpkey", 0),
    (".profile", 257),
    (".dtbauto", 257),
    (".hwids", 257),
    (".efifw", 258),
];

/// The sections a stub of systemd `version` measures, in order; a stub that names no
/// version is taken to know them all.
pub fn stub_sections(version: Option<u32>) -> impl Iterator<Item = &'static str> {
    UKI_SECTIONS
        .into_iter()
        .filter(move |(_, since)| version.is_none_or(|v| v >= *since))
        .map(|(name, _)| name)
}

/// The most bytes of a `.sdmagic` section read for the stub's version.
const MAX_SDMAGIC_LEN: usize = 256;

/// The sections systemd-stub picks by the machine's hardware IDs (a device tree or
/// firmware blob for the board it runs on): measured only when one matches.
pub const HARDWARE_SELECTED: [&str; 2] = [".dtbauto", ".efifw"];

/// The one section systemd-stub does not measure.
pub const UNMEASURED_SECTION: &str = ".pcrsig";

/// The most bytes the measured sections may hold together in memory (2 GiB), zero fill
/// included, so that a hostile `VirtualSize` cannot make the hash run unbounded.
pub const MAX_MEASURED_LEN: u64 = 2 << 30;

/// The most sections a PE image may declare (the PE format's own limit is 96 for
/// executables; 1024 leaves room for odd linkers).
pub const MAX_PE_SECTIONS: u16 = 1024;

/// Why a UKI's events cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UkiError {
    /// The image is not a PE32+ image (the parser's reason).
    NotPe(String),
    /// The PE headers point outside the image, so no Authenticode digest exists.
    PeOffsets,
    /// The section table lies outside the image or declares too many sections.
    SectionTable {
        /// `NumberOfSections` from the COFF header (0 when the header is unreadable).
        sections: u16,
    },
    /// A measured section's raw data lies outside the image.
    SectionOutsideImage {
        /// The section's name.
        name: &'static str,
        /// `PointerToRawData`.
        offset: u32,
        /// The bytes of raw data the measurement reads.
        len: u32,
        /// The image's length.
        image_len: usize,
    },
    /// The measured sections hold more than [`MAX_MEASURED_LEN`] bytes.
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// No `.linux` section: systemd-stub refuses to boot such an image.
    NoLinux,
    /// A multi-profile UKI (`.profile` sections): not computed.
    Profiles,
    /// A section systemd-stub measures only when it matches the machine's hardware IDs
    /// (`.dtbauto`, `.efifw`): not computed.
    HardwareSelected {
        /// The section's name.
        name: &'static str,
    },
}

impl fmt::Display for UkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPe(e) => write!(f, "the UKI is not a PE32+ image: {e}"),
            Self::PeOffsets => f.write_str(
                "the UKI's PE headers point outside the image (no Authenticode digest)",
            ),
            Self::SectionTable { sections } => write!(
                f,
                "the UKI's section table ({sections} sections) lies outside the image or exceeds {MAX_PE_SECTIONS} sections"
            ),
            Self::SectionOutsideImage {
                name,
                offset,
                len,
                image_len,
            } => write!(
                f,
                "UKI section {name} data [{offset:#x}, {offset:#x} + {len:#x}) lies outside the {image_len:#x}-byte image"
            ),
            Self::TooLarge { max } => {
                write!(f, "the UKI's measured sections hold more than {max} bytes")
            }
            Self::NoLinux => f.write_str("the UKI has no .linux section (systemd-stub refuses it)"),
            Self::HardwareSelected { name } => write!(
                f,
                "the UKI has a {name} section, which systemd-stub measures only on hardware it matches: not computed"
            ),
            Self::Profiles => f.write_str(
                "the UKI has .profile sections (a multi-profile UKI): the measured sections depend on the profile chosen at boot and are not computed",
            ),
        }
    }
}

impl core::error::Error for UkiError {}

/// Whether an event is a section's name or its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UkiEventKind {
    /// The section's name with its NUL.
    Name,
    /// The section's contents in memory.
    Contents,
}

/// One RTMR2 event systemd-stub extends for a UKI section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UkiSectionEvent {
    /// The section's name (one of [`UKI_SECTIONS`]).
    pub section: &'static str,
    /// Name or contents.
    pub kind: UkiEventKind,
    /// SHA-384 of the measured bytes.
    pub digest: [u8; 48],
    /// SHA-256 of the measured bytes (a TPM's SHA-256 bank, PCR 11).
    pub digest_sha256: [u8; 32],
    /// How many bytes were measured.
    pub len: u64,
}

/// What the kernel's EFI stub measures into PCR 9 for what systemd-stub hands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelEventKind {
    /// `LOADED_IMAGE::LoadOptions`: the command line, UTF-16LE with its NUL.
    LoadOptions,
    /// `Linux initrd`: the initrd loaded through LoadFile2.
    Initrd,
}

impl KernelEventKind {
    /// The tagged event's identifier (`taggedEventID`, Linux `efistub.h`).
    pub const fn tag_id(self) -> u32 {
        match self {
            Self::LoadOptions => 0x8F3B_22ED,
            Self::Initrd => 0x8F3B_22EC,
        }
    }

    /// The tagged event's text (`taggedEventData`, NUL-terminated in the log).
    pub const fn tag(self) -> &'static str {
        match self {
            Self::LoadOptions => "LOADED_IMAGE::LoadOptions",
            Self::Initrd => "Linux initrd",
        }
    }
}

/// One `EV_EVENT_TAG` event the kernel's EFI stub extends into PCR 9 (RTMR2 on TDX).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UkiKernelEvent {
    /// Load options or initrd.
    pub kind: KernelEventKind,
    /// SHA-384 of the measured bytes (RTMR2).
    pub digest: [u8; 48],
    /// SHA-256 of the measured bytes (a TPM's SHA-256 bank, PCR 9).
    pub digest_sha256: [u8; 32],
    /// How many bytes were measured.
    pub len: u64,
}

/// Why a kernel event is not predicted from the UKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelEventOmitted {
    /// No `.cmdline` section: the kernel gets the load options of the boot entry that
    /// started the UKI (none, or whatever the firmware's boot option holds).
    NoCmdline,
    /// The `.cmdline` section is not printable ASCII without leading or trailing blanks
    /// (or holds a NUL): systemd-stub versions convert or trim such a command line
    /// differently.
    CmdlineNotPlain,
    /// No `.initrd` section: any initrd the kernel gets comes from outside the UKI.
    NoInitrd,
    /// A section some systemd-stub versions pass to the kernel inside the initrd, so that
    /// the initrd the kernel measures is not the `.initrd` section alone.
    InitrdAugmented {
        /// The section's name.
        section: &'static str,
    },
}

impl fmt::Display for KernelEventOmitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCmdline => f.write_str(
                "no .cmdline section: the kernel gets the boot entry's load options, which the image does not hold",
            ),
            Self::CmdlineNotPlain => f.write_str(
                "the .cmdline section is not printable ASCII without leading or trailing blanks: systemd-stub versions convert it differently",
            ),
            Self::NoInitrd => f.write_str(
                "no .initrd section: any initrd the kernel loads comes from outside the UKI",
            ),
            Self::InitrdAugmented { section } => write!(
                f,
                "the UKI has a {section} section, which systemd-stub may pass inside the initrd: the kernel's initrd is not the .initrd section alone"
            ),
        }
    }
}

/// The events of a UKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UkiMeasurement {
    /// The UKI's Authenticode SHA-384 digest: the RTMR1 event.
    pub authenticode: [u8; 48],
    /// The UKI's Authenticode SHA-256 digest: the PCR 4 event of a TPM's SHA-256 bank.
    pub authenticode_sha256: [u8; 32],
    /// The systemd version of the stub (`#### LoaderInfo: systemd-stub 252.39-1~deb12u2
    /// ####` in its `.sdmagic` section gives 252), when it says one; it decides which
    /// sections are measured ([`stub_sections`]).
    pub stub_version: Option<u32>,
    /// The RTMR2 events, in the order systemd-stub extends them.
    pub sections: Vec<UkiSectionEvent>,
    /// The PCR 9 (RTMR2) events of the kernel's EFI stub, in the order it extends them
    /// (load options, then initrd), each predicted or the reason it is not.
    pub kernel: Vec<Result<UkiKernelEvent, (KernelEventKind, KernelEventOmitted)>>,
}

impl UkiMeasurement {
    /// The value PCR 11 (and the part of RTMR2 these events make up) holds after the
    /// events, extended from zero: `systemd-measure calculate --bank=sha384 --phase=`.
    pub fn pcr11(&self) -> [u8; 48] {
        extend_from_zero::<Sha384, 48>(self.sections.iter().map(|e| e.digest))
    }

    /// [`Self::pcr11`] in the SHA-256 bank: `systemd-measure calculate --bank=sha256
    /// --phase=`.
    pub fn pcr11_sha256(&self) -> [u8; 32] {
        extend_from_zero::<Sha256, 32>(self.sections.iter().map(|e| e.digest_sha256))
    }
}

/// A register of `N` bytes extended with each digest in turn, from zero.
fn extend_from_zero<D: Digest, const N: usize>(digests: impl Iterator<Item = [u8; N]>) -> [u8; N] {
    let mut reg = [0u8; N];
    for d in digests {
        let mut h = D::new();
        h.update(reg);
        h.update(d);
        reg.copy_from_slice(&h.finalize());
    }
    reg
}

/// One PE section header, as read from the table.
#[derive(Clone, Copy)]
struct SectionHeader<'a> {
    name: &'a [u8],
    virtual_size: u32,
    size_of_raw_data: u32,
    pointer_to_raw_data: u32,
}

fn section_headers(pe: &[u8]) -> Result<Vec<SectionHeader<'_>>, UkiError> {
    let table = UkiError::SectionTable { sections: 0 };
    let lfanew = u32_at(pe, 0x3c).ok_or(table.clone())? as usize;
    let coff = lfanew.checked_add(4).ok_or(table.clone())?;
    let count = u16_at(pe, coff.saturating_add(2)).ok_or(table.clone())?;
    let table = UkiError::SectionTable { sections: count };
    let opt_len = u16_at(pe, coff.saturating_add(16)).ok_or(table.clone())?;
    if count > MAX_PE_SECTIONS {
        return Err(table);
    }
    let start = coff
        .checked_add(20)
        .and_then(|s| s.checked_add(usize::from(opt_len)))
        .ok_or(table.clone())?;
    let raw = slice_at(pe, start, usize::from(count).saturating_mul(40)).ok_or(table)?;
    Ok(raw
        .chunks_exact(40)
        .map(|h| SectionHeader {
            name: h.get(..8).unwrap_or_default(),
            virtual_size: u32_at(h, 8).unwrap_or_default(),
            size_of_raw_data: u32_at(h, 16).unwrap_or_default(),
            pointer_to_raw_data: u32_at(h, 20).unwrap_or_default(),
        })
        .collect())
}

/// Whether a PE section name field (8 bytes, NUL-padded) names `name`.
fn name_is(field: &[u8], name: &str) -> bool {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    field.get(..end) == Some(name.as_bytes())
}

/// Computes the RTMR1 and RTMR2 events of a UKI.
pub fn uki_events(pe: &[u8]) -> Result<UkiMeasurement, UkiError> {
    let pe_error = |e| match e {
        TdxBootError::NotPe(reason) => UkiError::NotPe(reason),
        _ => UkiError::PeOffsets,
    };
    let authenticode = tdx_boot::kernel_digest(pe).map_err(pe_error)?;
    let authenticode_sha256 = tdx_boot::kernel_digest_sha256(pe).map_err(pe_error)?;
    let headers = section_headers(pe)?;
    if headers.iter().any(|h| name_is(h.name, ".profile")) {
        return Err(UkiError::Profiles);
    }
    for name in HARDWARE_SELECTED {
        if headers.iter().any(|h| name_is(h.name, name)) {
            return Err(UkiError::HardwareSelected { name });
        }
    }
    let mut sections = Vec::new();
    let mut total: u64 = 0;
    let mut linux = false;
    let mut cmdline: Option<Vec<u8>> = None;
    let stub_version = stub_version(pe, &headers);
    for name in stub_sections(stub_version) {
        let Some(h) = headers
            .iter()
            .find(|h| name_is(h.name, name) && h.virtual_size != 0)
        else {
            continue;
        };
        linux |= name == ".linux";
        if name == UNMEASURED_SECTION {
            continue;
        }
        let file_len = h.size_of_raw_data.min(h.virtual_size);
        let data = slice_at(pe, h.pointer_to_raw_data as usize, file_len as usize).ok_or(
            UkiError::SectionOutsideImage {
                name,
                offset: h.pointer_to_raw_data,
                len: file_len,
                image_len: pe.len(),
            },
        )?;
        total = total.saturating_add(u64::from(h.virtual_size));
        if total > MAX_MEASURED_LEN {
            return Err(UkiError::TooLarge {
                max: MAX_MEASURED_LEN,
            });
        }
        let mut label = Vec::with_capacity(name.len().saturating_add(1));
        label.extend_from_slice(name.as_bytes());
        label.push(0);
        sections.push(UkiSectionEvent {
            section: name,
            kind: UkiEventKind::Name,
            digest: Sha384::digest(&label).into(),
            digest_sha256: Sha256::digest(&label).into(),
            len: label.len() as u64,
        });
        let (mut h384, mut h256) = (Sha384::new(), Sha256::new());
        h384.update(data);
        h256.update(data);
        if name == ".cmdline" {
            // Short (a command line); the zero fill, if any, makes it "not plain".
            let mut bytes = data.to_vec();
            if h.virtual_size > file_len {
                bytes.push(0);
            }
            cmdline = Some(bytes);
        }
        let mut fill = u64::from(h.virtual_size.saturating_sub(file_len));
        let zeros = [0u8; 4096];
        while fill > 0 {
            let n = fill.min(zeros.len() as u64);
            let chunk = zeros.get(..n as usize).unwrap_or_default();
            h384.update(chunk);
            h256.update(chunk);
            fill = fill.saturating_sub(n);
        }
        sections.push(UkiSectionEvent {
            section: name,
            kind: UkiEventKind::Contents,
            digest: h384.finalize().into(),
            digest_sha256: h256.finalize().into(),
            len: u64::from(h.virtual_size),
        });
    }
    if !linux {
        return Err(UkiError::NoLinux);
    }
    let present: Vec<&'static str> = stub_sections(None)
        .filter(|name| {
            headers
                .iter()
                .any(|h| name_is(h.name, name) && h.virtual_size != 0)
        })
        .collect();
    let kernel = kernel_events(cmdline.as_deref(), &sections, &present);
    Ok(UkiMeasurement {
        authenticode,
        authenticode_sha256,
        stub_version,
        sections,
        kernel,
    })
}

/// The systemd major version in the stub's `.sdmagic` section (`#### LoaderInfo:
/// systemd-stub 252.39-1~deb12u2 ####`), if it has one that says it.
fn stub_version(pe: &[u8], headers: &[SectionHeader<'_>]) -> Option<u32> {
    let h = headers.iter().find(|h| name_is(h.name, ".sdmagic"))?;
    let len = h.virtual_size.min(h.size_of_raw_data) as usize;
    let data = slice_at(pe, h.pointer_to_raw_data as usize, len.min(MAX_SDMAGIC_LEN))?;
    const MARK: &[u8] = b"systemd-stub ";
    let at = data.windows(MARK.len()).position(|w| w == MARK)?;
    let rest = data.get(at.saturating_add(MARK.len())..)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    core::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok()
}

/// The sections some systemd-stub versions hand the kernel inside its initrd (`.pcrsig`
/// and `.pcrpkey` as files under `/.extra/`, `.ucode` in front of it).
pub const INITRD_AUGMENTING: [&str; 3] = [".pcrsig", ".pcrpkey", ".ucode"];

/// The kernel's PCR 9 events for a UKI whose `.cmdline` contents are `cmdline` (`None`
/// without one), whose stub events are `sections` and which holds the sections `present`
/// (module documentation: what is predicted and when).
pub fn kernel_events(
    cmdline: Option<&[u8]>,
    sections: &[UkiSectionEvent],
    present: &[&'static str],
) -> Vec<Result<UkiKernelEvent, (KernelEventKind, KernelEventOmitted)>> {
    let load_options = match cmdline {
        None => Err(KernelEventOmitted::NoCmdline),
        Some(c) if !is_plain_cmdline(c) => Err(KernelEventOmitted::CmdlineNotPlain),
        Some(c) => {
            // UTF-16LE, each ASCII byte widened, then the NUL: LoadOptionsSize bytes.
            let mut wide = Vec::with_capacity(c.len().saturating_add(1).saturating_mul(2));
            for b in c.iter().chain(core::iter::once(&0u8)) {
                wide.extend_from_slice(&[*b, 0]);
            }
            Ok(UkiKernelEvent {
                kind: KernelEventKind::LoadOptions,
                digest: Sha384::digest(&wide).into(),
                digest_sha256: Sha256::digest(&wide).into(),
                len: wide.len() as u64,
            })
        }
    };
    let initrd = match (
        sections
            .iter()
            .find(|e| e.section == ".initrd" && e.kind == UkiEventKind::Contents),
        INITRD_AUGMENTING.into_iter().find(|s| present.contains(s)),
    ) {
        (None, _) => Err(KernelEventOmitted::NoInitrd),
        (Some(_), Some(section)) => Err(KernelEventOmitted::InitrdAugmented { section }),
        (Some(e), None) => Ok(UkiKernelEvent {
            kind: KernelEventKind::Initrd,
            digest: e.digest,
            digest_sha256: e.digest_sha256,
            len: e.len,
        }),
    };
    vec![
        load_options.map_err(|why| (KernelEventKind::LoadOptions, why)),
        initrd.map_err(|why| (KernelEventKind::Initrd, why)),
    ]
}

/// Printable ASCII, not empty, no blank at either end.
fn is_plain_cmdline(c: &[u8]) -> bool {
    !c.is_empty()
        && c.iter().all(|b| (0x20..0x7f).contains(b))
        && c.first() != Some(&b' ')
        && c.last() != Some(&b' ')
}

#[cfg(test)]
mod tests;
