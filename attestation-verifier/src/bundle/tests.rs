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
    assert_eq!(bytes[4], 5);
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
    bytes[4] = 6;
    assert_eq!(
        EvidenceBundle::from_bytes(&bytes),
        Err(BundleError::Version(6))
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

fn with_collateral() -> EvidenceBundle {
    sample().with_gpu_collateral(GpuCollateral {
        rims: vec![b"<rim/>".to_vec(), b"<vbios/>".to_vec()],
        ocsp: vec![vec![0x30, 0x03, 0x0A, 0x01, 0x00]],
    })
}

#[test]
fn version_2_collateral_round_trip_works() {
    let b = with_collateral();
    let bytes = b.to_bytes();
    assert_eq!(bytes[4], BUNDLE_VERSION);
    let back = EvidenceBundle::from_bytes(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.gpu_collateral.rims.len(), 2);
    // The GPU collateral is SCALE(Vec<Vec<u8>>) twice, followed by the CPU
    // collateral (here no CRL: one zero byte), the sealing key (none: one zero
    // byte) and empty measured-boot evidence (three zero bytes).
    let mut tail = GpuCollateral {
        rims: b.gpu_collateral.rims.clone(),
        ocsp: b.gpu_collateral.ocsp.clone(),
    }
    .encode();
    tail.extend([0, 0, 0, 0, 0]);
    assert!(bytes.ends_with(&tail));
    // ...and covered by the digest.
    let mut other = b.clone();
    other.gpu_collateral.ocsp.clear();
    assert_ne!(other.digest(&RustCrypto), b.digest(&RustCrypto));
    // Empty collateral is two zero length prefixes, an absent CRL and an absent key.
    let plain = sample().to_bytes();
    assert!(plain.ends_with(&[0, 0, 0, 0]));
}

fn with_crl() -> EvidenceBundle {
    with_collateral().with_cpu_collateral(CpuCollateral {
        snp_crl: Some(vec![0x30, 0x82, 0x01, 0x00, 0xAA]),
    })
}

/// Version 2 as earlier writers produced it: version 3 without the CPU collateral.
fn v2_bytes(b: &EvidenceBundle) -> Vec<u8> {
    let mut out = v1_bytes(b);
    out[4] = 2;
    b.gpu_collateral.encode_to(&mut out);
    out
}

#[test]
fn version_3_crl_round_trip_works() {
    let mut b = with_crl();
    b.version = BUNDLE_VERSION_3;
    let bytes = b.to_bytes();
    assert_eq!(bytes[4], 3);
    let back = EvidenceBundle::from_bytes(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.snp_crl(), Some(&[0x30, 0x82, 0x01, 0x00, 0xAA][..]));
    // The CRL is the encoding's tail in version 3: Some(Vec<u8>).
    assert!(bytes.ends_with(&Some(vec![0x30u8, 0x82, 0x01, 0x00, 0xAA]).encode()));
    // It re-encodes to its own bytes (its digest is the file's).
    assert_eq!(back.to_bytes(), bytes);
    // ...and covered by the digest.
    let without = with_collateral();
    assert_ne!(without.digest(&RustCrypto), b.digest(&RustCrypto));
}

#[test]
fn version_2_still_decodes_works() {
    let b = with_collateral();
    let v2 = v2_bytes(&b);
    let d = EvidenceBundle::from_bytes(&v2).unwrap();
    assert_eq!(d.version, BUNDLE_VERSION_2);
    assert_eq!(d.gpu_collateral, b.gpu_collateral);
    assert!(d.cpu_collateral.is_empty());
    assert_eq!(d.snp_crl(), None);
    // It re-encodes to the same bytes, so its digest is that of the file.
    assert_eq!(d.to_bytes(), v2);
    assert_eq!(d.digest(&RustCrypto), bundle_digest(&RustCrypto, &v2));
    // A version-3 file relabelled as version 2 is not version 2.
    let mut relabelled = with_crl().to_bytes();
    relabelled[4] = 2;
    assert!(EvidenceBundle::from_bytes(&relabelled).is_err());
}

#[test]
fn crl_in_older_version_or_without_snp_rejects() {
    let mut b = with_crl();
    b.version = BUNDLE_VERSION_2;
    assert_eq!(b.check(), Err(BundleError::CpuCollateralBeforeVersion3(2)));
    let b = EvidenceBundle::new(
        [1; 32],
        [2; 32],
        CpuEvidence::Simulated { report: vec![2; 5] },
        vec![],
    )
    .with_cpu_collateral(CpuCollateral {
        snp_crl: Some(vec![1]),
    });
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::CrlWithoutSnp(TeeKind::Simulated))
    );
}

#[test]
fn oversized_crl_rejects() {
    let b = sample().with_cpu_collateral(CpuCollateral {
        snp_crl: Some(vec![0; MAX_CRL_LEN + 1]),
    });
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::CrlTooLong {
            len: MAX_CRL_LEN + 1,
            max: MAX_CRL_LEN
        })
    );
    // A CRL length prefix claiming far more than the input holds.
    let mut bytes = sample().to_bytes();
    bytes.pop();
    bytes.extend([1, 0x03, 0x00, 0x00, 0x00, 0x40]);
    assert!(matches!(
        EvidenceBundle::from_bytes(&bytes),
        Err(BundleError::Decode(_))
    ));
}

#[test]
fn truncated_version_3_rejects() {
    let bytes = with_crl().to_bytes();
    for n in 0..bytes.len() {
        assert!(
            EvidenceBundle::from_bytes(&bytes[..n]).is_err(),
            "{n} bytes"
        );
    }
}

/// Version 1 as the chain's smoke test writes it by hand: the fields without
/// the collateral.
fn v1_bytes(b: &EvidenceBundle) -> Vec<u8> {
    let mut out = b"SGEB\x01".to_vec();
    b.tee.encode_to(&mut out);
    out.extend(b.agent_key);
    out.extend(b.nonce);
    b.cpu.encode_to(&mut out);
    b.gpus.encode_to(&mut out);
    out
}

#[test]
fn version_1_still_decodes_works() {
    let b = sample();
    let v1 = v1_bytes(&b);
    let d = EvidenceBundle::from_bytes(&v1).unwrap();
    assert_eq!(d.version, BUNDLE_VERSION_1);
    assert!(d.gpu_collateral.is_empty());
    assert_eq!(d.gpus, b.gpus);
    // It re-encodes to the same bytes (so its digest is that of the file).
    assert_eq!(d.to_bytes(), v1);
    assert_eq!(d.digest(&RustCrypto), bundle_digest(&RustCrypto, &v1));
    // A version-1 file with collateral appended is not version 1.
    let mut longer = v1.clone();
    longer.extend([0, 0]);
    assert!(matches!(
        EvidenceBundle::from_bytes(&longer),
        Err(BundleError::Decode(_))
    ));
    // Nor is a version-2 file relabelled as version 1.
    let mut relabelled = with_collateral().to_bytes();
    relabelled[4] = 1;
    assert!(EvidenceBundle::from_bytes(&relabelled).is_err());
}

#[test]
fn version_1_value_with_collateral_rejects() {
    let mut b = with_collateral();
    b.version = BUNDLE_VERSION_1;
    assert_eq!(b.check(), Err(BundleError::CollateralInVersion1));
}

#[test]
fn too_much_collateral_rejects() {
    let b = sample().with_gpu_collateral(GpuCollateral {
        rims: vec![vec![1]; MAX_RIMS + 1],
        ocsp: vec![],
    });
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::TooMuchCollateral {
            what: "RIMs",
            count: MAX_RIMS + 1,
            max: MAX_RIMS
        })
    );
    let b = sample().with_gpu_collateral(GpuCollateral {
        rims: vec![],
        ocsp: vec![vec![1]; MAX_OCSP + 1],
    });
    assert!(matches!(
        EvidenceBundle::from_bytes(&b.to_bytes()),
        Err(BundleError::TooMuchCollateral {
            what: "OCSP responses",
            ..
        })
    ));
}

proptest::proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        for v in [1u8, 2, 3] {
            let mut b = b"SGEB".to_vec();
            b.push(v);
            b.extend(&bytes);
            let _ = EvidenceBundle::from_bytes(&b);
        }
    }

    #[test]
    fn round_trip_any_collateral_works(
        rims in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..4),
        ocsp in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..4),
        crl in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
    ) {
        let b = sample().with_gpu_collateral(GpuCollateral { rims, ocsp });
        proptest::prop_assert_eq!(EvidenceBundle::from_bytes(&b.to_bytes()).unwrap(), b.clone());
        let b = b.with_cpu_collateral(CpuCollateral { snp_crl: Some(crl) });
        proptest::prop_assert_eq!(EvidenceBundle::from_bytes(&b.to_bytes()).unwrap(), b);
    }
}

#[test]
fn version_4_sealing_key_round_trip_works() {
    let b = with_crl().with_sealing_key([0x5e; 32]);
    let bytes = b.to_bytes();
    assert_eq!(bytes[4], BUNDLE_VERSION);
    let back = EvidenceBundle::from_bytes(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.sealing_key, Some([0x5e; 32]));
    // The key follows the CRL: Some([u8; 32]), then empty measured-boot evidence.
    let mut tail = vec![1u8];
    tail.extend([0x5e; 32]);
    tail.extend([0, 0, 0]);
    assert!(bytes.ends_with(&tail));
    // ...and covered by the digest.
    assert_ne!(with_crl().digest(&RustCrypto), b.digest(&RustCrypto));
    // A version-4 file relabelled as version 3 is not version 3 (trailing bytes).
    let mut relabelled = bytes.clone();
    relabelled[4] = 3;
    assert!(EvidenceBundle::from_bytes(&relabelled).is_err());
}

#[test]
fn sealing_key_in_older_version_rejects() {
    for version in [BUNDLE_VERSION_1, BUNDLE_VERSION_2, BUNDLE_VERSION_3] {
        let mut b = sample().with_sealing_key([1; 32]);
        b.version = version;
        assert_eq!(
            b.check(),
            Err(BundleError::SealingKeyBeforeVersion4(version))
        );
    }
}

fn measured() -> MeasuredBoot {
    MeasuredBoot {
        event_log: Some(vec![0xCC; 100]),
        agent_events: vec![
            AgentEvent {
                kind: AgentEventKind::Binary,
                digest: [0xA1; 48],
            },
            AgentEvent {
                kind: AgentEventKind::Config,
                digest: [0xC0; 48],
            },
        ],
        tpm_quote: Some(TpmQuote {
            attest: vec![0xFF, 0x54, 0x43, 0x47],
            signature: vec![0x00, 0x14],
            pcrs: vec![vec![0; 32]; 24],
        }),
    }
}

#[test]
fn version_5_measured_boot_round_trip_works() {
    let b = with_crl()
        .with_sealing_key([0x5e; 32])
        .with_measured(measured());
    let bytes = b.to_bytes();
    assert_eq!(bytes[4], BUNDLE_VERSION);
    assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), b);
    // The measured-boot section is the encoding's tail, after the sealing key.
    assert!(bytes.ends_with(&measured().encode()));
    assert_ne!(
        b.digest(&RustCrypto),
        with_crl().with_sealing_key([0x5e; 32]).digest(&RustCrypto)
    );
    // A version-5 file relabelled as version 4 is not version 4 (trailing bytes).
    let mut relabelled = bytes.clone();
    relabelled[4] = BUNDLE_VERSION_4;
    assert!(EvidenceBundle::from_bytes(&relabelled).is_err());
    // A version-4 bundle still reads and re-encodes to its own bytes.
    let mut v4 = with_crl().with_sealing_key([0x5e; 32]);
    v4.version = BUNDLE_VERSION_4;
    let v4_bytes = v4.to_bytes();
    assert!(v4_bytes.ends_with(&[0x5e; 32]));
    assert_eq!(
        EvidenceBundle::from_bytes(&v4_bytes).unwrap().to_bytes(),
        v4_bytes
    );
}

#[test]
fn measured_boot_in_older_version_rejects() {
    for version in [
        BUNDLE_VERSION_1,
        BUNDLE_VERSION_2,
        BUNDLE_VERSION_3,
        BUNDLE_VERSION_4,
    ] {
        let mut b = sample().with_measured(measured());
        b.version = version;
        if version >= BUNDLE_VERSION_4 {
            assert_eq!(b.check(), Err(BundleError::MeasuredBeforeVersion5(version)));
        } else {
            assert!(b.check().is_err());
        }
    }
}

#[test]
fn oversized_measured_boot_rejects() {
    type Change = Box<dyn Fn(&mut MeasuredBoot)>;
    let cases: [(&str, Change); 4] = [
        (
            "event log bytes",
            Box::new(|m| m.event_log = Some(vec![0; MAX_EVENT_LOG_LEN + 1])),
        ),
        (
            "agent events",
            Box::new(|m| {
                m.agent_events = vec![m.agent_events[0]; MAX_AGENT_EVENTS + 1];
            }),
        ),
        (
            "TPM quote bytes",
            Box::new(|m| {
                if let Some(q) = &mut m.tpm_quote {
                    q.signature = vec![0; MAX_TPM_PART_LEN + 1];
                }
            }),
        ),
        (
            "TPM PCR values",
            Box::new(|m| {
                if let Some(q) = &mut m.tpm_quote {
                    q.pcrs = vec![vec![0; 32]; MAX_TPM_PCRS + 1];
                }
            }),
        ),
    ];
    for (what, change) in cases {
        let mut m = measured();
        change(&mut m);
        let b = sample().with_measured(m);
        assert!(
            matches!(b.check(), Err(BundleError::MeasuredTooLarge { what: w, .. }) if w == what),
            "{what}: {:?}",
            b.check()
        );
    }
}
