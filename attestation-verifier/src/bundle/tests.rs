#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use super::*;
use crate::crypto::RustCrypto;
use sha2::Digest;

fn sample() -> EvidenceBundle {
    EvidenceBundle::new(
        [7; 32],
        [8; 32],
        CpuEvidence::SevSnp {
            report: vec![1, 2, 3],
            vek: vec![4, 5],
            intermediate: None,
            ark: Some(vec![6]),
        },
        vec![GpuEvidence {
            report: vec![0x11, 0xE0],
            cert_chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            nonce: [9; 32],
            uuid: "GPU-00000000-0000-0000-0000-000000000000".into(),
        }],
    )
}

#[test]
fn round_trip_works() {
    let b = sample();
    let bytes = b.to_bytes();
    assert_eq!(&bytes[..4], b"SGEB");
    assert_eq!(bytes[4], 1);
    assert_eq!(bytes[5], 1, "tee index of SEV-SNP");
    assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), b);
    for cpu in [
        CpuEvidence::Tdx {
            quote: vec![1; 10],
            collateral_json: Some(b"{}".to_vec()),
        },
        CpuEvidence::Simulated { report: vec![2; 5] },
    ] {
        let b = EvidenceBundle::new([1; 32], [2; 32], cpu, vec![]);
        assert_eq!(EvidenceBundle::from_bytes(&b.to_bytes()).unwrap(), b);
    }
}

#[test]
fn digest_is_domain_separated_works() {
    let b = sample();
    let bytes = b.to_bytes();
    let mut msg = b"sigil.evidence.v1\0".to_vec();
    msg.extend(&bytes);
    let want: [u8; 32] = sha2::Sha256::digest(&msg).into();
    assert_eq!(bundle_digest(&RustCrypto, &bytes), want);
    assert_eq!(b.digest(&RustCrypto), want);
}

#[test]
fn wrong_magic_and_version_reject() {
    let mut bytes = sample().to_bytes();
    bytes[0] = b'X';
    assert_eq!(EvidenceBundle::from_bytes(&bytes), Err(BundleError::Magic));
    let mut bytes = sample().to_bytes();
    bytes[4] = 2;
    assert_eq!(
        EvidenceBundle::from_bytes(&bytes),
        Err(BundleError::Version(2))
    );
    assert_eq!(EvidenceBundle::from_bytes(b"SG"), Err(BundleError::Magic));
    assert!(matches!(
        EvidenceBundle::from_bytes(b"SGEB"),
        Err(BundleError::Decode(_))
    ));
}

#[test]
fn trailing_bytes_reject() {
    let mut bytes = sample().to_bytes();
    bytes.push(0);
    assert!(matches!(
        EvidenceBundle::from_bytes(&bytes),
        Err(BundleError::Decode(_))
    ));
}

#[test]
fn tee_mismatch_rejects() {
    let mut b = sample();
    b.tee = TeeKind::Simulated;
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::TeeMismatch {
            tee: TeeKind::Simulated,
            cpu: TeeKind::SevSnp
        })
    );
}

#[test]
fn too_many_gpus_and_too_long_reject() {
    let mut b = sample();
    let g = b.gpus[0].clone();
    b.gpus = vec![g; MAX_GPUS + 1];
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::TooManyGpus(MAX_GPUS + 1))
    );
    let big = vec![0u8; MAX_BUNDLE_LEN + 1];
    assert!(matches!(
        EvidenceBundle::from_bytes(&big),
        Err(BundleError::TooLong { .. })
    ));
}

#[test]
fn huge_length_prefix_rejects() {
    // A vector length claiming 2^30 bytes with nothing behind it.
    let mut bytes = b"SGEB\x01\x03".to_vec();
    bytes.extend([0u8; 64]);
    bytes.push(3); // CpuEvidence::Simulated
    bytes.extend([0x03, 0x00, 0x00, 0x00, 0x40]); // compact u32 mode 3: 2^30
    assert!(matches!(
        EvidenceBundle::from_bytes(&bytes),
        Err(BundleError::Decode(_))
    ));
}

#[test]
fn non_canonical_length_rejects() {
    let b = EvidenceBundle::new(
        [1; 32],
        [2; 32],
        CpuEvidence::Simulated { report: vec![] },
        vec![],
    );
    let bytes = b.to_bytes();
    // The report length 0 as compact mode 1 (two bytes) instead of mode 0.
    let mut alt = bytes[..4 + 1 + 1 + 64 + 1].to_vec();
    alt.extend([0x01, 0x00]);
    alt.extend(&bytes[4 + 1 + 1 + 64 + 1 + 1..]);
    assert!(EvidenceBundle::from_bytes(&alt).is_err());
}

proptest::proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let mut b = b"SGEB\x01".to_vec();
        b.extend(bytes);
        let _ = EvidenceBundle::from_bytes(&b);
    }
}
