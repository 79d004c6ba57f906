//! Unit tests on synthetic firmware: the parsers refuse malformed images without panicking.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::guid_table::{FOOTER_GUID, Guid, GuidTable, GuidTableError};
use super::snp::{self, SnpLaunch, SnpMeasureError, VmmType};
use super::tdx::{self, TdxMeasureError};

/// An image of `pages` pages whose GUID table holds `entries`.
fn image(pages: usize, entries: &[(Guid, Vec<u8>)]) -> Vec<u8> {
    let mut table = Vec::new();
    for (g, data) in entries {
        table.extend_from_slice(data);
        table.extend_from_slice(&((data.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(&g.0);
    }
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(&FOOTER_GUID.0);
    let mut img = vec![0u8; pages * 4096];
    let end = img.len() - 32;
    img[end - table.len()..end].copy_from_slice(&table);
    img
}

#[test]
fn guid_table_works() {
    let g = Guid::new(1, 2, 3, [4; 8]);
    let img = image(1, &[(g, vec![9, 9, 9, 9])]);
    let t = GuidTable::parse(&img).unwrap();
    assert_eq!(t.get(&g), Some(&[9u8, 9, 9, 9][..]));
    assert_eq!(
        FOOTER_GUID.to_string(),
        "96b582de-1fb2-45f7-baea-a366c55a082d"
    );
}

#[test]
fn guid_table_rejects() {
    assert_eq!(
        GuidTable::parse(&[0u8; 10]),
        Err(GuidTableError::TooShort { len: 10 })
    );
    assert_eq!(
        GuidTable::parse(&[0u8; 4096]),
        Err(GuidTableError::NoFooter)
    );
    let g = Guid::new(1, 2, 3, [4; 8]);
    let img = image(1, &[(g, vec![1]), (g, vec![2])]);
    assert_eq!(
        GuidTable::parse(&img),
        Err(GuidTableError::DuplicateEntry { guid: g })
    );
    // A footer claiming a table larger than the image.
    let mut img = image(1, &[]);
    let at = 4096 - 50;
    img[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    assert!(matches!(
        GuidTable::parse(&img),
        Err(GuidTableError::TableOutsideImage { .. })
    ));
}

fn launch(ovmf: &[u8]) -> SnpLaunch<'_> {
    SnpLaunch {
        ovmf,
        vcpus: 1,
        vcpu_sig: snp::vcpu_sig("EPYC-v4").unwrap(),
        vmm: VmmType::Qemu,
        guest_features: 1,
        kernel: None,
        svsm: None,
    }
}

#[test]
fn snp_rejects_malformed_firmware() {
    // Not page sized, empty, no table, no SEV metadata.
    for img in [vec![0u8; 100], vec![], vec![0u8; 4096], image(1, &[])] {
        assert!(matches!(
            snp::snp_launch_digest(&launch(&img)),
            Err(SnpMeasureError::Firmware { .. })
        ));
    }
    // SEV metadata pointing past the start of the image.
    let img = image(
        1,
        &[(
            snp::SEV_METADATA_GUID,
            0xffff_fff0u32.to_le_bytes().to_vec(),
        )],
    );
    assert!(snp::snp_launch_digest(&launch(&img)).is_err());
    // Metadata header claiming u32::MAX sections.
    let mut img = image(
        2,
        &[(snp::SEV_METADATA_GUID, 0x1000u32.to_le_bytes().to_vec())],
    );
    let at = img.len() - 0x1000;
    img[at..at + 4].copy_from_slice(b"ASEV");
    img[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    img[at + 8..at + 12].copy_from_slice(&1u32.to_le_bytes());
    img[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(snp::snp_launch_digest(&launch(&img)).is_err());
    let mut l = launch(&img);
    l.vcpus = 0;
    assert!(matches!(
        snp::snp_launch_digest(&l),
        Err(SnpMeasureError::Vcpus { .. })
    ));
}

#[test]
fn cpu_sig_works() {
    assert_eq!(snp::vcpu_sig("epyc-v4"), Some(0x800f12));
    assert_eq!(snp::vcpu_sig("EPYC-Milan"), Some(0xa00f11));
    assert_eq!(snp::vcpu_sig("EPYC-Genoa"), Some(0xa10f10));
    assert_eq!(snp::vcpu_sig("EPYC-Turin"), Some(0xb00f00));
    assert_eq!(snp::vcpu_sig("Skylake"), None);
}

#[test]
fn cmdline_hash_works() {
    // An empty command line is SHA-256 of one NUL.
    assert_eq!(
        hex::encode(snp::cmdline_sha256("")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

#[test]
fn tdx_rejects_malformed_firmware() {
    assert!(matches!(
        tdx::tdx_mrtd(&image(1, &[])),
        Err(TdxMeasureError::NoTdvfMetadata)
    ));
    // A descriptor with one BFV section whose data lies past the image.
    let mut img = image(
        2,
        &[(tdx::TDVF_METADATA_GUID, 0x1000u32.to_le_bytes().to_vec())],
    );
    let at = img.len() - 0x1000;
    img[at..at + 4].copy_from_slice(b"TDVF");
    img[at + 4..at + 8].copy_from_slice(&48u32.to_le_bytes());
    img[at + 8..at + 12].copy_from_slice(&1u32.to_le_bytes());
    img[at + 12..at + 16].copy_from_slice(&1u32.to_le_bytes());
    let s = at + 16;
    img[s..s + 4].copy_from_slice(&0x1000u32.to_le_bytes());
    img[s + 4..s + 8].copy_from_slice(&0x2000u32.to_le_bytes());
    img[s + 8..s + 16].copy_from_slice(&0xffff_e000u64.to_le_bytes());
    img[s + 16..s + 24].copy_from_slice(&0x2000u64.to_le_bytes());
    img[s + 28..s + 32].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(
        tdx::tdx_mrtd(&img),
        Err(TdxMeasureError::DataOutsideImage { .. })
    ));
    // The same section fitting the image measures.
    img[s..s + 4].copy_from_slice(&0u32.to_le_bytes());
    let m = tdx::tdx_mrtd(&img).unwrap();
    assert_eq!(m.pages_added, 2);
    assert_eq!(m.bytes_extended, 0x2000);
    assert_ne!(m.mrtd, m.mrtd_two_pass);
    // Too many sections for the descriptor length.
    img[at + 12..at + 16].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        tdx::tdx_mrtd(&img),
        Err(TdxMeasureError::Sections { .. })
    ));
}
