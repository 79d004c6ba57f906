#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use alloc::vec;
use alloc::vec::Vec;

use sigil_test_support::pe::{Section, pe_image};

use super::*;

fn sha384(d: &[u8]) -> [u8; 48] {
    Sha384::digest(d).into()
}

#[test]
fn sections_in_stub_order_works() {
    // File order differs from systemd-stub's; .pcrsig is skipped; unknown sections ignored.
    let image = pe_image(&[
        Section::new(".text", &[0x90; 100]),
        Section::new(".initrd", b"initrd bytes"),
        Section::new(".pcrsig", b"{}"),
        Section::new(".cmdline", b"console=ttyS0"),
        Section::new(".osrel", b"ID=sigil\n"),
        Section::new(".linux", &[0xAB; 700]),
    ]);
    let m = uki_events(&image).unwrap();
    let names: Vec<(&str, UkiEventKind)> = m.sections.iter().map(|e| (e.section, e.kind)).collect();
    let mut want = Vec::new();
    for s in [".linux", ".osrel", ".cmdline", ".initrd"] {
        want.push((s, UkiEventKind::Name));
        want.push((s, UkiEventKind::Contents));
    }
    assert_eq!(names, want);
    assert_eq!(m.sections[0].digest, sha384(b".linux\0"));
    assert_eq!(m.sections[1].digest, sha384(&[0xAB; 700]));
    assert_eq!(m.sections[5].digest, sha384(b"console=ttyS0"));
    assert_eq!(m.authenticode, tdx_boot::kernel_digest(&image).unwrap());
    // The PCR 11 replay: each digest extended from zero.
    let mut reg = [0u8; 48];
    for e in &m.sections {
        let mut b = reg.to_vec();
        b.extend_from_slice(&e.digest);
        reg = sha384(&b);
    }
    assert_eq!(m.pcr11(), reg);
}

#[test]
fn virtual_size_trims_and_zero_fills_works() {
    // VirtualSize shorter than the file-aligned raw data: the tail padding is not measured.
    let trimmed = pe_image(&[Section {
        name: ".linux",
        data: &[1; 600],
        virtual_size: Some(10),
    }]);
    let m = uki_events(&trimmed).unwrap();
    assert_eq!(m.sections[1].digest, sha384(&[1; 10]));
    assert_eq!(m.sections[1].len, 10);
    // VirtualSize longer than the raw data: zeros up to it, as loaded in memory.
    let filled = pe_image(&[Section {
        name: ".linux",
        data: &[1; 600],
        virtual_size: Some(10_000),
    }]);
    let m = uki_events(&filled).unwrap();
    let mut want = vec![1u8; 600];
    want.resize(10_000, 0);
    assert_eq!(m.sections[1].digest, sha384(&want));
}

#[test]
fn first_of_duplicate_sections_and_empty_sections_works() {
    let image = pe_image(&[
        Section::new(".linux", b"first"),
        Section::new(".linux", b"second"),
        Section {
            name: ".osrel",
            data: b"",
            virtual_size: Some(0),
        },
    ]);
    let m = uki_events(&image).unwrap();
    assert_eq!(m.sections.len(), 2);
    assert_eq!(m.sections[1].digest, sha384(b"first"));
}

#[test]
fn uki_without_linux_rejects() {
    let image = pe_image(&[Section::new(".osrel", b"ID=x\n")]);
    assert_eq!(uki_events(&image), Err(UkiError::NoLinux));
    // .pcrsig alone beside .linux is fine; a .profile is refused.
    let image = pe_image(&[
        Section::new(".linux", b"k"),
        Section::new(".profile", b"ID=a"),
    ]);
    assert_eq!(uki_events(&image), Err(UkiError::Profiles));
    let image = pe_image(&[
        Section::new(".linux", b"k"),
        Section::new(".dtbauto", b"dt"),
    ]);
    assert_eq!(
        uki_events(&image),
        Err(UkiError::HardwareSelected { name: ".dtbauto" })
    );
}

#[test]
fn malformed_uki_rejects() {
    assert!(matches!(
        uki_events(b"MZ not a PE"),
        Err(UkiError::NotPe(_))
    ));
    // A section whose raw data points past the end of the file.
    let mut image = pe_image(&[Section::new(".linux", &[3; 512])]);
    let table = 0x40 + 4 + 20 + 240;
    image[table + 20..table + 24].copy_from_slice(&0x00ff_0000u32.to_le_bytes());
    let err = uki_events(&image).unwrap_err();
    assert!(
        matches!(
            err,
            UkiError::SectionOutsideImage { name: ".linux", .. } | UkiError::PeOffsets
        ),
        "{err:?}"
    );
}

fn sha256(d: &[u8]) -> [u8; 32] {
    Sha256::digest(d).into()
}

fn utf16_nul(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[test]
fn kernel_events_works() {
    let image = pe_image(&[
        Section::new(".linux", &[0xAB; 700]),
        Section::new(".cmdline", b"console=ttyS0 panic=-1"),
        Section::new(".initrd", b"initrd bytes"),
    ]);
    let m = uki_events(&image).unwrap();
    assert_eq!(m.kernel.len(), 2);
    let (opts, initrd) = (m.kernel[0].as_ref().unwrap(), m.kernel[1].as_ref().unwrap());
    // The load options: the command line in UTF-16LE with its NUL (LoadOptionsSize bytes).
    let wide = utf16_nul("console=ttyS0 panic=-1");
    assert_eq!(opts.kind, KernelEventKind::LoadOptions);
    assert_eq!(opts.digest, sha384(&wide));
    assert_eq!(opts.digest_sha256, sha256(&wide));
    assert_eq!(opts.len, 46);
    // The initrd: the .initrd section's bytes, as the stub's contents event.
    assert_eq!(initrd.kind, KernelEventKind::Initrd);
    assert_eq!(initrd.digest, sha384(b"initrd bytes"));
    assert_eq!(initrd.digest_sha256, sha256(b"initrd bytes"));
    assert_eq!(KernelEventKind::Initrd.tag_id(), 0x8F3B_22EC);
    assert_eq!(
        KernelEventKind::LoadOptions.tag(),
        "LOADED_IMAGE::LoadOptions"
    );
}

#[test]
fn kernel_events_not_from_the_uki_rejects() {
    let omitted = |sections: &[Section<'_>]| -> Vec<_> {
        uki_events(&pe_image(sections))
            .unwrap()
            .kernel
            .into_iter()
            .map(|k| k.err().map(|(_, why)| why))
            .collect()
    };
    // No .cmdline, no .initrd: both come from outside the UKI.
    assert_eq!(
        omitted(&[Section::new(".linux", b"k")]),
        [
            Some(KernelEventOmitted::NoCmdline),
            Some(KernelEventOmitted::NoInitrd)
        ]
    );
    // A command line a stub may convert or trim differently.
    for c in [
        &b"console=ttyS0 "[..],
        b" ro",
        b"ro\nquiet",
        b"r\xc3\xa9",
        b"ro\0",
    ] {
        assert_eq!(
            omitted(&[
                Section::new(".linux", b"k"),
                Section::new(".cmdline", c),
                Section::new(".initrd", b"i"),
            ]),
            [Some(KernelEventOmitted::CmdlineNotPlain), None],
            "{c:?}"
        );
    }
    // Sections some stubs pass inside the initrd.
    for s in INITRD_AUGMENTING {
        assert_eq!(
            omitted(&[
                Section::new(".linux", b"k"),
                Section::new(".cmdline", b"ro"),
                Section::new(".initrd", b"i"),
                Section::new(s, b"x"),
            ]),
            [
                None,
                Some(KernelEventOmitted::InitrdAugmented { section: s })
            ],
        );
    }
}

#[test]
fn stub_252_sections_works() {
    // systemd-stub 252 measures neither its own .sbat nor a .uname; a stub that says no
    // version (or a later one) is measured with the current list.
    let sections = |magic: &'static [u8]| {
        let image = pe_image(&[
            Section::new(".sdmagic", magic),
            Section::new(".sbat", b"sbat,1\n"),
            Section::new(".linux", b"k"),
            Section::new(".uname", b"7.3.4"),
        ]);
        let m = uki_events(&image).unwrap();
        let names: Vec<&str> = m.sections.iter().map(|e| e.section).collect();
        (m.stub_version, names)
    };
    assert_eq!(
        sections(b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####"),
        (Some(252), vec![".linux", ".linux"])
    );
    assert_eq!(
        sections(b"#### LoaderInfo: systemd-stub 257.9 ####"),
        (
            Some(257),
            vec![".linux", ".linux", ".uname", ".uname", ".sbat", ".sbat"]
        )
    );
    assert_eq!(sections(b"#### LoaderInfo: systemd-stub ####").0, None);
}
