//! The TDX boot events a direct boot extends into RTMR1 and RTMR2, computed from the
//! kernel, initrd and command line given to the VMM (QEMU `-kernel -initrd -append`
//! with TDVF/OVMF).
//!
//! - RTMR1, `EV_EFI_BOOT_SERVICES_APPLICATION`: the firmware measures the kernel's PE
//!   image by its Authenticode digest (SHA-384), before starting it.
//! - RTMR2, `EV_EVENT_TAG` "LOADED_IMAGE::LoadOptions": the Linux EFI stub measures the
//!   load options it was given. OVMF's QEMU loader builds them from the command line:
//!   the ASCII command line, then `" initrd=initrd"` when an initrd is given, as UTF-16LE
//!   with a terminating NUL (edk2 `X86QemuLoadImageLib`); the digest is SHA-384 of those
//!   bytes.
//! - RTMR2, `EV_EVENT_TAG` "Linux initrd": the EFI stub measures the initrd it loads
//!   (LoadFile2), SHA-384 of its bytes.
//!
//! These are the values a policy pins as `[tdx] events` (`docs/measured-boot.md`):
//! unlike RTMR0, which depends on the instance's ACPI tables and memory size, they depend
//! only on the boot payload. A UKI is measured differently (the UKI, then its sections):
//! see [`super::uki`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha384};

/// The largest kernel or initrd accepted (2 GiB).
pub const MAX_PAYLOAD_LEN: usize = 2 << 30;

/// Why a boot event cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdxBootError {
    /// The kernel is not a PE32+ image (an x86-64 kernel with an EFI stub is).
    NotPe(String),
    /// The PE image's headers point outside it, so no Authenticode digest exists.
    PeOffsets,
    /// The command line is not ASCII (the firmware reads it as ASCII).
    CmdlineNotAscii,
}

impl fmt::Display for TdxBootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPe(e) => write!(f, "the kernel is not a PE32+ image: {e}"),
            Self::PeOffsets => f.write_str(
                "the kernel's PE headers point outside the image (no Authenticode digest)",
            ),
            Self::CmdlineNotAscii => f.write_str("the kernel command line is not ASCII"),
        }
    }
}

impl core::error::Error for TdxBootError {}

/// Feeds `authenticode` (digest 0.10's `Update`) into one of this crate's hashes.
struct Update<D>(D);

impl<D: Digest> digest010::Update for Update<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
}

fn authenticode<D: Digest>(pe: &[u8]) -> Result<D, TdxBootError> {
    let file = object::read::pe::PeFile64::parse(pe)
        .map_err(|e| TdxBootError::NotPe(alloc::string::ToString::to_string(&e)))?;
    let mut h = Update(D::new());
    authenticode::authenticode_digest(&file, &mut h).map_err(|_| TdxBootError::PeOffsets)?;
    Ok(h.0)
}

/// The Authenticode SHA-384 digest of a PE32+ image: what the firmware extends into
/// RTMR1 when it starts it.
pub fn kernel_digest(pe: &[u8]) -> Result<[u8; 48], TdxBootError> {
    Ok(authenticode::<Sha384>(pe)?.finalize().into())
}

/// The Authenticode SHA-256 digest of a PE32+ image: what a Secure Boot signature
/// signs (and what the `db`/`dbx` databases list).
pub fn kernel_digest_sha256(pe: &[u8]) -> Result<[u8; 32], TdxBootError> {
    Ok(authenticode::<sha2::Sha256>(pe)?.finalize().into())
}

/// The load options OVMF gives a directly booted kernel: `cmdline`, then
/// `" initrd=initrd"` with an initrd, UTF-16LE, NUL-terminated.
pub fn load_options(cmdline: &str, with_initrd: bool) -> Result<Vec<u8>, TdxBootError> {
    if !cmdline.is_ascii() {
        return Err(TdxBootError::CmdlineNotAscii);
    }
    let suffix = if with_initrd { " initrd=initrd" } else { "" };
    Ok(cmdline
        .encode_utf16()
        .chain(suffix.encode_utf16())
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect())
}

/// The digest of the "LOADED_IMAGE::LoadOptions" event (RTMR2).
pub fn cmdline_digest(cmdline: &str, with_initrd: bool) -> Result<[u8; 48], TdxBootError> {
    Ok(Sha384::digest(load_options(cmdline, with_initrd)?).into())
}

/// The digest of the "Linux initrd" event (RTMR2).
pub fn initrd_digest(initrd: &[u8]) -> [u8; 48] {
    Sha384::digest(initrd).into()
}

#[cfg(test)]
mod tests;
