//! Property tests: the SNP parser is total, and parsed fields land where the ABI says.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::evidence::snp::{REPORT_LEN, SnpParseError, parse_snp_report};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parse_never_panics_on_any_length(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_snp_report(&bytes);
    }

    #[test]
    fn parse_is_total_on_report_sized_input(mut bytes in proptest::collection::vec(any::<u8>(), REPORT_LEN)) {
        // Make most inputs get past the header checks so the field decoding runs.
        bytes[0..4].copy_from_slice(&3u32.to_le_bytes());
        bytes[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        bytes[0x48] &= 0b0000_0111;
        match parse_snp_report(&bytes) {
            Ok(r) => {
                prop_assert_eq!(&r.measurement[..], &bytes[0x90..0xC0]);
                prop_assert_eq!(&r.report_data[..], &bytes[0x50..0x90]);
                prop_assert_eq!(&r.chip_id[..], &bytes[0x1A0..0x1E0]);
                prop_assert_eq!(r.reported_tcb, u64::from_le_bytes(bytes[0x180..0x188].try_into().unwrap()));
                prop_assert_eq!(&r.signed[..], &bytes[..0x2A0]);
                let mut r_le = r.signature_r;
                r_le.reverse();
                prop_assert_eq!(&r_le[..], &bytes[0x2A0..0x2D0]);
            }
            Err(e) => prop_assert_eq!(e, SnpParseError::SignaturePadding),
        }
    }
}
