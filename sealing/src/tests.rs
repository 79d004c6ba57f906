#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base
// mode (the suite Sigil seals with).
const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const PK_EM: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const IKM_R: &str = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df";
const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const ENCRYPTIONS: [(&str, &str); 3] = [
    (
        "436f756e742d30",
        "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
    ),
    (
        "436f756e742d31",
        "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e85285337cc95ba5f59992dc98c",
    ),
    (
        "436f756e742d32",
        "71146bd6795ccc9c49ce25dda112a48f202ad220559502cef1f34271e0cb4b02b4f10ecac6f48c32f878fae86b",
    ),
];

#[test]
fn rfc9180_derive_key_pair_works() {
    assert_eq!(
        SealingKey::derive(&h(IKM_R)).unwrap().public_key().to_vec(),
        h(PK_RM)
    );
    // The sender's ephemeral key pair: its public key is the vector's `enc`.
    assert_eq!(
        SealingKey::derive(&h(IKM_E)).unwrap().public_key().to_vec(),
        h(PK_EM)
    );
}

#[test]
fn rfc9180_open_works() {
    let key = SealingKey::derive(&h(IKM_R)).unwrap();
    // Single-shot Open is sequence number 0; later sequence numbers need the context kept.
    let (aad, ct) = ENCRYPTIONS[0];
    let pt = key.open_raw(&h(PK_EM), &h(INFO), &h(aad), &h(ct)).unwrap();
    assert_eq!(pt.as_slice(), h(PT));
    // The next encryptions of the vector use nonces 1 and 2: single-shot Open refuses them.
    for (aad, ct) in &ENCRYPTIONS[1..] {
        assert!(key.open_raw(&h(PK_EM), &h(INFO), &h(aad), &h(ct)).is_none());
    }
}

#[test]
fn rfc9180_changed_ciphertext_rejects() {
    let key = SealingKey::derive(&h(IKM_R)).unwrap();
    let (aad, ct) = ENCRYPTIONS[0];
    let mut ct = h(ct);
    for i in [0, ct.len() / 2, ct.len() - 1] {
        ct[i] ^= 1;
        assert!(
            key.open_raw(&h(PK_EM), &h(INFO), &h(aad), &ct).is_none(),
            "byte {i}"
        );
        ct[i] ^= 1;
    }
    assert!(key.open_raw(&h(PK_EM), &h(INFO), b"Count-9", &ct).is_none());
    assert!(
        key.open_raw(&h(PK_EM), b"other info", &h(aad), &ct)
            .is_none()
    );
}

const JOB: [u8; 32] = [7; 32];

#[test]
fn secret_round_trip_works() {
    let agent = SealingKey::generate().unwrap();
    let (salt, commitment) = commit_secret(b"hunter2").unwrap();
    let purpose = Purpose::Env {
        job_id: &JOB,
        name: "API_KEY",
    };
    let s = seal_secret(&agent.public_key(), &purpose, &salt, b"hunter2").unwrap();
    assert_eq!(s.commitment, commitment);
    let value = agent.open_secret(&s.sealed, &purpose, &commitment).unwrap();
    assert_eq!(value.as_slice(), b"hunter2");
}

#[test]
fn secret_moved_or_changed_rejects() {
    let agent = SealingKey::generate().unwrap();
    let other = SealingKey::generate().unwrap();
    let (salt, commitment) = commit_secret(b"model key").unwrap();
    let purpose = Purpose::InputFile {
        job_id: &JOB,
        path: "keys/model.key",
    };
    let s = seal_secret(&agent.public_key(), &purpose, &salt, b"model key").unwrap();
    let open = |k: &SealingKey, p: &Purpose<'_>, sealed: &Sealed, c: &[u8; 32]| {
        k.open_secret(sealed, p, c).unwrap_err()
    };
    // Another key (a swapped agent key), another job, another path, another kind.
    assert!(matches!(
        open(&other, &purpose, &s.sealed, &commitment),
        SealError::Open { .. }
    ));
    let other_job = [8; 32];
    for p in [
        Purpose::InputFile {
            job_id: &other_job,
            path: "keys/model.key",
        },
        Purpose::InputFile {
            job_id: &JOB,
            path: "keys/other.key",
        },
        Purpose::Env {
            job_id: &JOB,
            name: "keys/model.key",
        },
    ] {
        assert!(
            matches!(
                open(&agent, &p, &s.sealed, &commitment),
                SealError::Open { .. }
            ),
            "{p:?}"
        );
    }
    // A changed byte anywhere.
    for i in 0..s.sealed.ciphertext.len() {
        let mut t = s.sealed.clone();
        t.ciphertext[i] ^= 0x80;
        assert!(matches!(
            open(&agent, &purpose, &t, &commitment),
            SealError::Open { .. }
        ));
    }
    let mut t = s.sealed.clone();
    t.enc[0] ^= 1;
    assert!(agent.open_secret(&t, &purpose, &commitment).is_err());
    // The right ciphertext against another commitment (the spec names another value).
    let (_, c2) = commit_secret(b"model key").unwrap();
    assert_eq!(
        open(&agent, &purpose, &s.sealed, &c2),
        SealError::Commitment {
            what: "sealed input file"
        }
    );
    // Too short to be a sealed secret.
    let short = Sealed {
        enc: s.sealed.enc,
        ciphertext: vec![0; 47],
    };
    assert!(matches!(
        open(&agent, &purpose, &short, &commitment),
        SealError::TooShort {
            len: 47,
            min: 48,
            ..
        }
    ));
}

#[test]
fn commitment_hides_low_entropy_values_works() {
    // Two commitments to the same one-byte value differ (fresh salts), and neither equals the
    // unsalted hash of the value.
    let (_, a) = commit_secret(b"y").unwrap();
    let (_, b) = commit_secret(b"y").unwrap();
    assert_ne!(a, b);
    let unsalted: [u8; 32] = Sha256::digest(b"y").into();
    assert_ne!(a, unsalted);
}

#[test]
fn output_round_trip_works() {
    let buyer = SealingKey::for_outputs(&[3; 32], &JOB);
    assert_eq!(
        buyer.public_key(),
        SealingKey::for_outputs(&[3; 32], &JOB).public_key()
    );
    assert_ne!(
        buyer.public_key(),
        SealingKey::for_outputs(&[3; 32], &[8; 32]).public_key()
    );
    for data in [&b""[..], b"x", &vec![0xAB; 100_000]] {
        let file = seal_output(&buyer.public_key(), &JOB, 0, "result.json", data).unwrap();
        assert_eq!(
            file.len(),
            OUTPUT_HEADER_LEN + SALT_LEN + data.len() + TAG_LEN
        );
        let header = parse_output_header(&file).unwrap();
        assert_eq!(&file[37..69], header.commitment);
        assert_eq!(
            buyer
                .open_output(&file, &JOB, 0, "result.json")
                .unwrap()
                .as_slice(),
            data
        );
    }
}

#[test]
fn output_moved_or_changed_rejects() {
    let buyer = SealingKey::for_outputs(&[3; 32], &JOB);
    let file = seal_output(&buyer.public_key(), &JOB, 0, "a.txt", b"answer: 42").unwrap();
    assert!(buyer.open_output(&file, &JOB, 0, "b.txt").is_err());
    assert!(buyer.open_output(&file, &JOB, 1, "a.txt").is_err());
    assert!(buyer.open_output(&file, &[8; 32], 0, "a.txt").is_err());
    let stranger = SealingKey::generate().unwrap();
    assert!(stranger.open_output(&file, &JOB, 0, "a.txt").is_err());
    // Every byte, the header included: a changed commitment fails in the AEAD (it is
    // associated data), a changed magic or version is not a sealed output at all.
    for i in 0..file.len() {
        let mut f = file.clone();
        f[i] ^= 0x01;
        let e = buyer.open_output(&f, &JOB, 0, "a.txt").unwrap_err();
        if i < 5 {
            assert_eq!(e, SealError::NotSealedOutput);
        } else {
            assert!(matches!(e, SealError::Open { .. }), "byte {i}: {e:?}");
        }
    }
    assert_eq!(
        buyer
            .open_output(&file[..68], &JOB, 0, "a.txt")
            .unwrap_err(),
        SealError::NotSealedOutput
    );
    assert!(matches!(
        buyer
            .open_output(&file[..80], &JOB, 0, "a.txt")
            .unwrap_err(),
        SealError::TooShort { .. }
    ));
}

#[test]
fn bad_recipient_key_rejects() {
    let p = Purpose::Env {
        job_id: &JOB,
        name: "A",
    };
    assert_eq!(
        seal(&[1; 31], &p, b"x").unwrap_err(),
        SealError::KeyLength(31)
    );
    assert_eq!(
        SealingKey::derive(&[0; 31]).unwrap_err(),
        SealError::ShortIkm(31)
    );
}

#[test]
fn debug_prints_no_secret_works() {
    let k = SealingKey::derive(&h(IKM_R)).unwrap();
    let d = format!("{k:?}");
    assert!(d.contains(PK_RM), "{d}");
    assert!(!d.contains("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb"));
}
