//! Property tests: the TDX parser is total, body fields land where the ABI says,
//! and verification never panics on mutated real quotes and collateral.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::sync::OnceLock;

use attestation_verifier::check_tdx;
use attestation_verifier::crypto::AwsLc;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{TdxCollateral, TdxVerifier};
use proptest::prelude::*;

struct Fixture {
    quote: Vec<u8>,
    collateral_json: Vec<u8>,
    now: UnixTime,
    /// Byte ranges of the quote that no change may leave valid: everything up to the
    /// PEM chain, and the base64 of the PCK certificate and PCK CA. (The root's copy
    /// is only compared with the pinned root by name and key, and text between PEM
    /// blocks and after the signature data is not part of anything verified.)
    signed_or_endorsed: Vec<std::ops::Range<usize>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let c = common::cases("tdx")
            .into_iter()
            .find(|c| c.name == "tdx-v5-go-tdx-guest-sample")
            .unwrap();
        let quote = c.file("quote.bin");
        let find = |from: usize, pat: &[u8]| {
            from + quote[from..]
                .windows(pat.len())
                .position(|w| w == pat)
                .unwrap()
        };
        let (begin, end) = (b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----");
        let chain = find(0, begin);
        let leaf = chain + begin.len()..find(chain, end);
        let ca_begin = find(leaf.end, begin) + begin.len();
        let ca = ca_begin..find(ca_begin, end);
        Fixture {
            signed_or_endorsed: vec![0..chain, leaf, ca],
            quote,
            collateral_json: c.file("collateral.json"),
            now: UnixTime(c.verification_time()),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = parse_tdx_quote(&bytes);
    }

    #[test]
    fn v4_body_fields_land_in_place(body in proptest::collection::vec(any::<u8>(), 584)) {
        // A real v4 quote with its body replaced: parsing still succeeds and reads
        // every field from its ABI offset.
        let c = common::cases("tdx")
            .into_iter()
            .find(|c| c.name == "tdx-v4-dcap-qvl-sample")
            .unwrap();
        let mut q = c.file("quote.bin");
        q[48..48 + 584].copy_from_slice(&body);
        let p = parse_tdx_quote(&q).unwrap();
        prop_assert_eq!(&p.body.tee_tcb_svn[..], &body[0..16]);
        prop_assert_eq!(&p.body.mr_seam[..], &body[16..64]);
        prop_assert_eq!(&p.body.td_attributes_raw[..], &body[120..128]);
        prop_assert_eq!(&p.body.mr_td[..], &body[136..184]);
        prop_assert_eq!(&p.body.rtmr[3][..], &body[472..520]);
        prop_assert_eq!(&p.body.report_data[..], &body[520..584]);
        prop_assert_eq!(&p.signed[..], &q[..632]);
    }

    #[test]
    fn mutated_quotes_never_panic_or_verify(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8)
    ) {
        let f = fixture();
        let mut q = f.quote.clone();
        let mut must_reject = false;
        for (i, x) in &flips {
            let i = i.index(q.len());
            let before = q[i];
            q[i] ^= x;
            // One line break of a PEM body turned into another whitespace byte (a tab, a
            // form feed) leaves the decoded certificate, and so everything signed, as it was.
            let whitespace_for_whitespace =
                i >= f.signed_or_endorsed[1].start && before.is_ascii_whitespace() && q[i].is_ascii_whitespace();
            must_reject |= !whitespace_for_whitespace
                && f.signed_or_endorsed.iter().any(|r| r.contains(&i));
        }
        let collateral = TdxCollateral::from_json(&f.collateral_json).unwrap();
        let mut v = TdxVerifier::new(AwsLc).unwrap();
        let out = check_tdx(&mut v, &q, &collateral, &Policy::default(), f.now);
        if must_reject {
            prop_assert!(!out.accepted());
        }
    }

    #[test]
    fn mutated_collateral_never_panics_or_verifies(
        field in 0usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let f = fixture();
        let mut parts = TdxCollateral::from_json(&f.collateral_json).unwrap().parts().clone();
        let target = match field {
            0 => &mut parts.tcb_info,
            1 => &mut parts.tcb_info_signature,
            2 => &mut parts.qe_identity,
            3 => &mut parts.qe_identity_signature,
            4 => &mut parts.pck_crl,
            _ => &mut parts.root_ca_crl,
        };
        for (i, x) in &flips {
            let i = i.index(target.len());
            target[i] ^= x;
        }
        let collateral = TdxCollateral::new(parts);
        let mut v = TdxVerifier::new(AwsLc).unwrap();
        let out = check_tdx(&mut v, &f.quote, &collateral, &Policy::default(), f.now);
        // Signed documents and their signatures admit no change. (A CRL has bytes
        // outside what its signature covers, e.g. the BIT STRING's unused-bits count.)
        if field < 4 {
            prop_assert!(!out.accepted(), "accepted mutated collateral field {}", field);
        }
    }
}
