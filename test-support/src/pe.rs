//! Synthetic PE32+ images (x86-64 EFI applications): a minimal valid header and the
//! sections a test names, such as a Unified Kernel Image's `.linux`, `.osrel`,
//! `.cmdline` and `.initrd`.

/// One section of a synthetic image.
#[derive(Clone, Debug)]
pub struct Section<'a> {
    /// Its name (at most 8 bytes; NUL-padded in the header).
    pub name: &'a str,
    /// Its raw data in the file (padded to the file alignment).
    pub data: &'a [u8],
    /// Its `VirtualSize`: `None` is the data's length.
    pub virtual_size: Option<u32>,
}

impl<'a> Section<'a> {
    /// A section whose `VirtualSize` is its data's length (what `ukify` and `objcopy` write).
    pub fn new(name: &'a str, data: &'a [u8]) -> Self {
        Self {
            name,
            data,
            virtual_size: None,
        }
    }
}

const FILE_ALIGN: usize = 0x200;
const SECTION_ALIGN: usize = 0x1000;

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// A PE32+ image (machine x86-64, EFI application subsystem) with `sections` in file order.
pub fn pe_image(sections: &[Section<'_>]) -> Vec<u8> {
    let headers_len = align(0x40 + 4 + 20 + 240 + 40 * sections.len(), FILE_ALIGN);
    let mut file_off = headers_len;
    let mut rva = SECTION_ALIGN;
    let mut table = Vec::new();
    let mut bodies = Vec::new();
    for s in sections {
        assert!(
            s.name.len() <= 8,
            "section name {:?} longer than 8 bytes",
            s.name
        );
        let raw_len = align(s.data.len(), FILE_ALIGN);
        let vsize = s.virtual_size.unwrap_or(s.data.len() as u32);
        let mut sh = vec![0u8; 40];
        sh[..s.name.len()].copy_from_slice(s.name.as_bytes());
        sh[8..12].copy_from_slice(&vsize.to_le_bytes());
        sh[12..16].copy_from_slice(&(rva as u32).to_le_bytes());
        sh[16..20].copy_from_slice(&(raw_len as u32).to_le_bytes());
        sh[20..24].copy_from_slice(&(if raw_len == 0 { 0 } else { file_off } as u32).to_le_bytes());
        sh[36..40].copy_from_slice(&0x4000_0040u32.to_le_bytes()); // initialised data, readable
        table.extend_from_slice(&sh);
        let mut body = s.data.to_vec();
        body.resize(raw_len, 0);
        bodies.extend_from_slice(&body);
        file_off += raw_len;
        rva += align((vsize as usize).max(raw_len).max(1), SECTION_ALIGN);
    }
    let mut out = vec![0u8; 0x40];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    out.extend_from_slice(b"PE\0\0");
    // COFF: machine x86-64, sections, optional header 240 bytes, executable image.
    out.extend_from_slice(&0x8664u16.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&240u16.to_le_bytes());
    out.extend_from_slice(&0x0022u16.to_le_bytes());
    let mut opt = vec![0u8; 240];
    opt[0..2].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    opt[32..36].copy_from_slice(&(SECTION_ALIGN as u32).to_le_bytes());
    opt[36..40].copy_from_slice(&(FILE_ALIGN as u32).to_le_bytes());
    opt[56..60].copy_from_slice(&(rva as u32).to_le_bytes()); // size of image
    opt[60..64].copy_from_slice(&(headers_len as u32).to_le_bytes());
    opt[68..70].copy_from_slice(&10u16.to_le_bytes()); // EFI application
    opt[108..112].copy_from_slice(&16u32.to_le_bytes()); // data directories
    out.extend_from_slice(&opt);
    out.extend_from_slice(&table);
    out.resize(headers_len, 0);
    out.extend_from_slice(&bodies);
    out
}
