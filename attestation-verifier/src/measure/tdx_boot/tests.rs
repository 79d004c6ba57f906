#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// A minimal PE32+ image: DOS header, PE signature, COFF header, optional header with
/// 16 data directories (a certificate table of `cert_len` bytes at the end when
/// non-zero), one section of `body`.
fn pe(body: &[u8], cert: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 0x40];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    out.extend_from_slice(b"PE\0\0");
    // COFF: machine x86-64, 1 section, optional header 240 bytes, characteristics.
    out.extend_from_slice(&0x8664u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&240u16.to_le_bytes());
    out.extend_from_slice(&0x0022u16.to_le_bytes());
    let opt_start = out.len();
    let mut opt = vec![0u8; 240];
    opt[0..2].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    opt[32..36].copy_from_slice(&0x1000u32.to_le_bytes()); // section alignment
    opt[36..40].copy_from_slice(&0x200u32.to_le_bytes()); // file alignment
    opt[56..60].copy_from_slice(&0x2000u32.to_le_bytes()); // size of image
    opt[60..64].copy_from_slice(&0x200u32.to_le_bytes()); // size of headers
    opt[108..112].copy_from_slice(&16u32.to_le_bytes()); // number of data directories
    let body_len = body.len().div_ceil(0x200) * 0x200;
    if !cert.is_empty() {
        // Data directory 4: the certificate table (file offset, size).
        let at = 0x200 + body_len;
        opt[112 + 4 * 8..116 + 4 * 8].copy_from_slice(&(at as u32).to_le_bytes());
        opt[116 + 4 * 8..120 + 4 * 8].copy_from_slice(&(cert.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&opt);
    assert_eq!(out.len(), opt_start + 240);
    // One section header.
    let mut sh = vec![0u8; 40];
    sh[0..5].copy_from_slice(b".text");
    sh[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
    sh[12..16].copy_from_slice(&0x1000u32.to_le_bytes());
    sh[16..20].copy_from_slice(&(body_len as u32).to_le_bytes());
    sh[20..24].copy_from_slice(&0x200u32.to_le_bytes());
    out.extend_from_slice(&sh);
    out.resize(0x200, 0);
    out.extend_from_slice(body);
    out.resize(0x200 + body_len, 0);
    out.extend_from_slice(cert);
    out
}

#[test]
fn kernel_digest_covers_code_not_signature_works() {
    let a = pe(&[0x90; 700], &[]);
    let d = kernel_digest(&a).unwrap();
    // Changing code changes the digest.
    let mut b = a.clone();
    b[0x200 + 5] ^= 1;
    assert_ne!(kernel_digest(&b).unwrap(), d);
    // Authenticode leaves out the checksum and the certificate table: a signed copy of
    // the same image hashes alike whatever its signature.
    let signed = kernel_digest(&pe(&[0x90; 700], &[7; 64])).unwrap();
    assert_eq!(signed, kernel_digest(&pe(&[0x90; 700], &[9; 64])).unwrap());
    let mut c = a.clone();
    c[0x40 + 24 + 64] ^= 0xff; // optional header CheckSum
    assert_eq!(kernel_digest(&c).unwrap(), d);
}

#[test]
fn not_a_pe_rejects() {
    assert!(matches!(
        kernel_digest(b"not a kernel"),
        Err(TdxBootError::NotPe(_))
    ));
    assert!(matches!(kernel_digest(&[]), Err(TdxBootError::NotPe(_))));
    let mut truncated = pe(&[0x90; 700], &[]);
    truncated.truncate(0x200 + 100);
    assert!(kernel_digest(&truncated).is_err());
}

#[test]
fn load_options_are_edk2s_works() {
    // "console=ttyS0" + " initrd=initrd" + NUL, as UTF-16LE.
    let lo = load_options("console=ttyS0", true).unwrap();
    let want: Vec<u8> = "console=ttyS0 initrd=initrd\0"
        .bytes()
        .flat_map(|b| [b, 0])
        .collect();
    assert_eq!(lo, want);
    assert_eq!(load_options("", false).unwrap(), vec![0, 0]);
    assert_eq!(
        cmdline_digest("console=ttyS0", true).unwrap(),
        <[u8; 48]>::from(Sha384::digest(&want))
    );
    assert_ne!(
        cmdline_digest("console=ttyS0", true).unwrap(),
        cmdline_digest("console=ttyS0", false).unwrap()
    );
    assert_eq!(
        load_options("consolé", false),
        Err(TdxBootError::CmdlineNotAscii)
    );
    assert_eq!(initrd_digest(b""), <[u8; 48]>::from(Sha384::digest(b"")));
}
