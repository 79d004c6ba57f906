#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::vec;

use super::*;
use crate::bundle::{
    BUNDLE_VERSION_1, CpuCollateral, CpuEvidence, EvidenceBundle, GpuCollateral, GpuEvidence,
};
use proptest::prelude::*;

fn gpu(i: u8) -> GpuEvidence {
    GpuEvidence {
        report: vec![i; 40],
        cert_chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
        nonce: [i; 32],
        uuid: "GPU-00000000-0000-0000-0000-000000000000".into(),
    }
}

fn bundle(cpu: CpuEvidence, gpus: usize, rims: usize, ocsp: usize) -> EvidenceBundle {
    EvidenceBundle::new(
        [7; 32],
        [8; 32],
        cpu,
        (0..gpus).map(|i| gpu(i as u8)).collect(),
    )
    .with_gpu_collateral(GpuCollateral {
        rims: (0..rims).map(|i| vec![i as u8; 300]).collect(),
        ocsp: (0..ocsp).map(|i| vec![i as u8; 20]).collect(),
    })
}

fn cpus() -> Vec<CpuEvidence> {
    vec![
        CpuEvidence::SevSnp {
            report: vec![1; 0x4A0],
            vek: vec![2; 900],
            intermediate: Some(vec![3; 10]),
            ark: None,
        },
        CpuEvidence::Tdx {
            quote: vec![4; 100],
            collateral_json: Some(b"{}".to_vec()),
        },
        CpuEvidence::Simulated { report: vec![5; 9] },
        CpuEvidence::AzureSnpVtpm {
            hcl_report: vec![6; 30],
            vek: vec![7; 3],
            intermediate: None,
            ark: Some(vec![8; 4]),
        },
        CpuEvidence::AzureTdxVtpm {
            hcl_report: vec![9; 40],
            td_quote: vec![10; 120],
            collateral_json: None,
        },
    ]
}

#[test]
fn cost_counts_every_cpu_kind_works() {
    for cpu in cpus() {
        for (g, r, o) in [(0, 0, 0), (1, 2, 0), (3, 5, 7), (16, 32, 128)] {
            let bytes = bundle(cpu.clone(), g, r, o).to_bytes();
            assert_eq!(
                cost(&bytes),
                EvidenceCost {
                    gpus: g as u32,
                    rims: r as u32,
                    ocsp: o as u32,
                    bytes: bytes.len() as u32,
                },
                "{cpu:?} with {g} GPUs, {r} RIMs, {o} OCSP responses"
            );
        }
    }
}

#[test]
fn cost_counts_later_fields_by_bytes_works() {
    let small = bundle(cpus().remove(0), 1, 1, 1);
    let big = small.clone().with_cpu_collateral(CpuCollateral {
        snp_crl: Some(vec![0x30; 256 << 10]),
    });
    let (a, b) = (cost(&small.to_bytes()), cost(&big.to_bytes()));
    assert_eq!((a.gpus, a.rims, a.ocsp), (b.gpus, b.rims, b.ocsp));
    assert!(b.bytes > a.bytes + (256 << 10));
    // Bytes after the GPU collateral that this crate does not know (a later version's
    // fields) are counted by their length as well.
    let mut later = big.to_bytes();
    later.extend_from_slice(&[0xEE; 4096]);
    let c = cost(&later);
    assert_eq!((c.gpus, c.rims, c.ocsp), (b.gpus, b.rims, b.ocsp));
    assert_eq!(c.bytes as usize, later.len());
}

#[test]
fn cost_of_version_1_has_no_collateral_works() {
    let mut b = bundle(cpus().remove(1), 2, 0, 0);
    b.version = BUNDLE_VERSION_1;
    let bytes = b.to_bytes();
    let c = cost(&bytes);
    assert_eq!((c.gpus, c.rims, c.ocsp), (2, 0, 0));
}

#[test]
fn cost_of_unreadable_bytes_is_the_worst_rejects() {
    let bytes = bundle(cpus().remove(0), 2, 3, 4).to_bytes();
    // Truncated anywhere in the part the scan reads: the caps.
    // The scan stops after the OCSP count: the responses (4 x 21 bytes), the CPU collateral
    // and the sealing key (one byte each) and the empty measured-boot section (three bytes)
    // are counted by their bytes only.
    let walked = bytes.len() - 4 * 21 - 2 - 3;
    for end in 5..walked {
        let c = cost(&bytes[..end]);
        assert_eq!(c, EvidenceCost::worst(end as u32), "truncated at {end}");
    }
    // An unknown CPU evidence variant: the caps.
    let mut unknown = bytes.clone();
    unknown[4 + 1 + 1 + 64] = 9;
    assert_eq!(cost(&unknown), EvidenceCost::worst(bytes.len() as u32));
    // More GPUs than the cap: the caps (the verifier refuses it before any crypto).
    let over = bundle(cpus().remove(2), MAX_GPUS + 1, 0, 0).to_bytes();
    assert_eq!(cost(&over), EvidenceCost::worst(over.len() as u32));
    // Not a bundle at all: nothing beyond the bytes.
    assert_eq!(cost(b"nope").gpus, 0);
    assert_eq!(cost(b""), EvidenceCost::worst(0));
}

proptest! {
    /// Whatever the bytes, `cost` returns, and for every bundle the decoder reads it counts
    /// at least what the verifier will meet.
    #[test]
    fn cost_never_undercounts_works(
        cpu in 0usize..4,
        g in 0usize..4,
        r in 0usize..4,
        o in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = bundle(cpus().remove(cpu), g, r, o).to_bytes();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let c = cost(&bytes);
        prop_assert_eq!(c.bytes as usize, bytes.len());
        if let Ok(b) = EvidenceBundle::from_bytes(&bytes) {
            prop_assert!(c.gpus as usize >= b.gpus.len());
            prop_assert!(c.rims as usize >= b.gpu_collateral.rims.len());
            prop_assert!(c.ocsp as usize >= b.gpu_collateral.ocsp.len());
        }
    }
}
