//! Launch measurements computed from the published guest image (feature `measure`).
//!
//! What a policy pins must be computable by anyone from public inputs. This module
//! computes, from the firmware (and kernel, initrd, command line, SVSM) a guest is
//! launched with, the value its hardware evidence will carry:
//!
//! - [`snp`]: the AMD SEV-SNP launch digest (report field MEASUREMENT), the SHA-384
//!   PAGE_INFO chain over the firmware pages, the OVMF SEV metadata pages and one
//!   VMSA page per vCPU, for QEMU, AWS EC2 and Google Compute Engine, with or
//!   without measured direct boot, and for COCONUT-SVSM under QEMU.
//! - [`tdx`]: the Intel TDX MRTD, the SHA-384 over the TDX module's MEM.PAGE.ADD and
//!   MR.EXTEND buffers for the TDVF sections of the firmware image.
//! - [`tdx_boot`] and [`uki`]: the TDX RTMR1/RTMR2 events of a direct boot (kernel,
//!   initrd, command line) and of a Unified Kernel Image booted from disk.
//!
//! The launch calculations read the OVMF GUIDed footer table ([`guid_table`]). Everything here is a
//! pure function of its byte inputs; firmware is untrusted input and every parse
//! error is typed. Inputs are capped (see [`MAX_FIRMWARE_LEN`] and the per-module
//! limits) so a hostile file cannot make the calculation run unbounded.
//!
//! The `sev` crate (virtee) has a measurement module, but it indexes and subtracts
//! unchecked on file contents (it panics on short or malformed images), has no GCE
//! VMM type and no SVSM mode, trims the kernel command line, and still uses the
//! pre-2026-05 EC2 VMSA (RDX 0). So the calculation is written here; the tests
//! cross-check it against the `sev` crate for the QEMU cases, where the crate is
//! right, and against `sev-snp-measure` (the reference) for everything else.
//! See `docs/measure.md`.

pub mod guid_table;
pub mod snp;
pub mod tdx;
pub mod tdx_boot;
pub mod uki;

#[cfg(test)]
mod tests;

/// The largest firmware (OVMF, TDVF or SVSM) image accepted: 64 MiB. Real images
/// are 2 to 4 MiB; the SNP calculation places the firmware below 4 GiB.
pub const MAX_FIRMWARE_LEN: usize = 64 << 20;

/// The page size every calculation works in.
pub const PAGE_SIZE: usize = 4096;
const PAGE_U32: u32 = 4096;
const PAGE_U64: u64 = 4096;

fn sha384(data: &[u8]) -> [u8; 48] {
    use sha2::Digest;
    sha2::Sha384::digest(data).into()
}

/// `data[off..off + len]`, or `None` when it does not fit.
fn slice_at(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice_at(data, off, 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice_at(data, off, 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice_at(data, off, 8)?.try_into().ok()?))
}
