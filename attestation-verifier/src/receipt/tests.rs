#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use ed25519_dalek::{Signer, SigningKey};
use parity_scale_codec::Encode;

use super::*;
use crate::crypto::RustCrypto;

pub(crate) fn sample_body(provider: [u8; 32]) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider,
        tier: 3,
        result_commitment: [3; 32],
        output_count: 2,
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_001_500,
        exit_code: 0,
        usage: Usage {
            wall_ms: 1500,
            cpu_ms: 1200,
            peak_memory_bytes: 1 << 20,
            gpu_ms: 0,
            gpu_energy_mj: 0,
        },
        evidence: EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: TeeKind::SevSnp,
            digest: [4; 32],
        },
    }
}

fn sign(sk: &SigningKey, body: &ReceiptBody) -> SignedReceipt {
    let d = receipt_digest(&RustCrypto, body);
    SignedReceipt::new(body, sk.sign(&d).to_bytes())
}

#[test]
fn encoding_is_fixed_layout_works() {
    let body = sample_body([9; 32]);
    let bytes = body.to_bytes();
    // 1 + 32*3 + 1 + 32 + 4 + 8 + 8 + 4 + 5*8 + (1 + 1 + 32)
    assert_eq!(bytes.len(), 228);
    assert_eq!(bytes[0], 1);
    assert_eq!(&bytes[1..33], &[1; 32]);
    assert_eq!(&bytes[65..97], &[9; 32]);
    assert_eq!(bytes[97], 3);
    // exit code is i32 little-endian right before usage
    assert_eq!(&bytes[150..154], &0i32.to_le_bytes());
    assert_eq!(&bytes[194..196], &[1, 1]);
    assert_eq!(ReceiptBody::from_bytes(&bytes).unwrap(), body);
}

#[test]
fn digest_known_answer_works() {
    // Pins the format: any change to the field order or encoding changes this.
    let body = sample_body([9; 32]);
    let mut msg = b"sigil.receipt.v1\0".to_vec();
    msg.extend(body.encode());
    let want: [u8; 32] = sha2::Sha256::digest(&msg).into();
    assert_eq!(receipt_digest(&RustCrypto, &body), want);
    assert_eq!(
        hex::encode(want),
        "83019101c34f3bdbc58f7cfc9a0027042e043e64acff9751632ff0a336ed9665"
    );
}

use sha2::Digest;

#[test]
fn sign_and_verify_works() {
    let sk = SigningKey::from_bytes(&[5; 32]);
    let body = sample_body(sk.verifying_key().to_bytes());
    let signed = sign(&sk, &body);
    let bytes = signed.to_bytes();
    let decoded = SignedReceipt::decode_bytes(&bytes).unwrap();
    let checked = decoded.verify(&RustCrypto).unwrap();
    assert_eq!(checked.body, body);
    assert_eq!(checked.digest, receipt_digest(&RustCrypto, &body));
    #[cfg(feature = "native")]
    decoded.verify(&crate::crypto::AwsLc).unwrap();
}

#[test]
fn tampered_body_rejects() {
    let sk = SigningKey::from_bytes(&[5; 32]);
    let body = sample_body(sk.verifying_key().to_bytes());
    let mut signed = sign(&sk, &body);
    // Change the exit code: still a valid body, signature no longer matches.
    signed.body[150] = 1;
    assert!(matches!(
        signed.verify(&RustCrypto),
        Err(ReceiptError::Signature(SignatureError::Invalid))
    ));
}

#[test]
fn other_signer_rejects() {
    let sk = SigningKey::from_bytes(&[5; 32]);
    let body = sample_body([9; 32]);
    let signed = sign(&sk, &body);
    assert!(matches!(
        signed.verify(&RustCrypto),
        Err(ReceiptError::Signature(_))
    ));
}

#[test]
fn trailing_and_truncated_bytes_reject() {
    let body = sample_body([9; 32]);
    let mut b = body.to_bytes();
    b.push(0);
    assert!(matches!(
        ReceiptBody::from_bytes(&b),
        Err(ReceiptError::Decode { .. })
    ));
    b.truncate(100);
    assert!(matches!(
        ReceiptBody::from_bytes(&b),
        Err(ReceiptError::Decode { .. })
    ));
    let signed = SignedReceipt {
        body: body.to_bytes(),
        signature: [0; 64],
    };
    let mut s = signed.to_bytes();
    s.push(1);
    assert!(SignedReceipt::decode_bytes(&s).is_err());
    assert!(matches!(
        SignedReceipt::decode_bytes(&vec![0; MAX_SIGNED_RECEIPT_LEN + 1]),
        Err(ReceiptError::TooLong { .. })
    ));
}

#[test]
fn unknown_enum_index_rejects() {
    let mut b = sample_body([9; 32]).to_bytes();
    b[194] = 7; // evidence mode
    assert!(matches!(
        ReceiptBody::from_bytes(&b),
        Err(ReceiptError::Decode { .. })
    ));
}

#[test]
fn structural_rules_reject() {
    let mut b = sample_body([9; 32]);
    b.version = 2;
    assert_eq!(b.check(), Err(ReceiptError::Version(2)));
    let mut b = sample_body([9; 32]);
    b.tier = 0;
    assert_eq!(b.check(), Err(ReceiptError::Tier(0)));
    let mut b = sample_body([9; 32]);
    b.finished_at_ms = b.started_at_ms - 1;
    assert!(matches!(b.check(), Err(ReceiptError::Times { .. })));
    let mut b = sample_body([9; 32]);
    b.evidence = EvidenceRef::NONE;
    assert!(
        matches!(b.check(), Err(ReceiptError::EvidenceRef(_))),
        "tier 3 without evidence"
    );
    b.tier = 1;
    b.check().unwrap();
    b.evidence.digest = [1; 32];
    assert!(matches!(b.check(), Err(ReceiptError::EvidenceRef(_))));
    let mut b = sample_body([9; 32]);
    b.evidence.tee = TeeKind::None;
    assert!(matches!(b.check(), Err(ReceiptError::EvidenceRef(_))));
}

proptest::proptest! {
    #[test]
    fn body_round_trip_works(
        job in proptest::array::uniform32(proptest::num::u8::ANY),
        tier in 1u8..=3,
        start in 0u64..u64::MAX / 2,
        dur in 0u64..1_000_000,
        exit in proptest::num::i32::ANY,
        count in proptest::num::u32::ANY,
    ) {
        let mut b = sample_body([9; 32]);
        b.job_id = job;
        b.tier = tier;
        b.started_at_ms = start;
        b.finished_at_ms = start + dur;
        b.exit_code = exit;
        b.output_count = count;
        proptest::prop_assert_eq!(ReceiptBody::from_bytes(&b.to_bytes()).unwrap(), b);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let _ = ReceiptBody::from_bytes(&bytes);
        let _ = SignedReceipt::decode_bytes(&bytes);
    }
}
