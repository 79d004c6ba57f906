//! AMD SEV-SNP roots: ARK (self-signed RSA-4096), ASK (signs VCEKs) and ASVK
//! (signs VLEKs) for each product, as published by AMD's Key Distribution Service.

use crate::evidence::snp::Product;

/// The pinned certificates for one product, DER.
#[derive(Clone, Copy, Debug)]
pub struct AmdRoots {
    /// AMD Root Key (self-signed).
    pub ark: &'static [u8],
    /// AMD SEV Key: signs VCEKs.
    pub ask: &'static [u8],
    /// AMD SEV VLEK Key: signs VLEKs.
    pub asvk: &'static [u8],
}

/// The pinned roots of `product`.
pub const fn roots(product: Product) -> AmdRoots {
    match product {
        Product::Milan => AmdRoots {
            ark: include_bytes!("amd/milan_ark.der"),
            ask: include_bytes!("amd/milan_ask.der"),
            asvk: include_bytes!("amd/milan_asvk.der"),
        },
        Product::Genoa => AmdRoots {
            ark: include_bytes!("amd/genoa_ark.der"),
            ask: include_bytes!("amd/genoa_ask.der"),
            asvk: include_bytes!("amd/genoa_asvk.der"),
        },
        Product::Turin => AmdRoots {
            ark: include_bytes!("amd/turin_ark.der"),
            ask: include_bytes!("amd/turin_ask.der"),
            asvk: include_bytes!("amd/turin_asvk.der"),
        },
    }
}
