#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)] // tests

use std::prelude::rust_2024::*;
use std::{format, vec};

use super::*;
use crate::crypto::RustCrypto;
use sha2::Digest;

fn outputs(n: usize) -> Vec<(Vec<u8>, [u8; 32])> {
    (0..n)
        .map(|i| {
            let name = format!("out/{i:04}.bin").into_bytes();
            let content: [u8; 32] = sha2::Sha256::digest(format!("content {i}")).into();
            (name, content)
        })
        .collect()
}

/// The tree written out by hand for three leaves: node(node(a, b), c).
#[test]
fn three_leaf_root_known_structure_works() {
    let o = outputs(3);
    let leaf = |(n, c): &(Vec<u8>, [u8; 32])| {
        let mut m = vec![0u8];
        m.extend((n.len() as u32).to_le_bytes());
        m.extend(n);
        m.extend(c);
        <[u8; 32]>::from(sha2::Sha256::digest(&m))
    };
    let node = |l: &[u8; 32], r: &[u8; 32]| {
        let mut m = vec![1u8];
        m.extend(l);
        m.extend(r);
        <[u8; 32]>::from(sha2::Sha256::digest(&m))
    };
    let want = node(&node(&leaf(&o[0]), &leaf(&o[1])), &leaf(&o[2]));
    let t = OutputTree::new(&RustCrypto, o).unwrap();
    assert_eq!(t.root(&RustCrypto), want);
}

#[test]
fn empty_and_single_roots_works() {
    let t = OutputTree::new(&RustCrypto, vec![]).unwrap();
    assert!(t.is_empty());
    let empty: [u8; 32] = sha2::Sha256::digest([]).into();
    assert_eq!(t.root(&RustCrypto), empty);
    let o = outputs(1);
    let t = OutputTree::new(&RustCrypto, o.clone()).unwrap();
    assert_eq!(
        t.root(&RustCrypto),
        leaf_hash(&RustCrypto, &o[0].0, &o[0].1).unwrap()
    );
    let p = t.prove(&RustCrypto, &o[0].0).unwrap();
    assert!(p.path.is_empty());
    verify_inclusion(&RustCrypto, &t.root(&RustCrypto), 1, &o[0].0, &o[0].1, &p).unwrap();
}

#[test]
fn order_does_not_matter_works() {
    let o = outputs(7);
    let mut r = o.clone();
    r.reverse();
    assert_eq!(
        OutputTree::new(&RustCrypto, o).unwrap().root(&RustCrypto),
        OutputTree::new(&RustCrypto, r).unwrap().root(&RustCrypto)
    );
}

#[test]
fn every_proof_verifies_for_sizes_up_to_33_works() {
    for n in 1..=33 {
        let o = outputs(n);
        let t = OutputTree::new(&RustCrypto, o.clone()).unwrap();
        let root = t.root(&RustCrypto);
        for (name, content) in &o {
            let p = t.prove(&RustCrypto, name).unwrap();
            let p = InclusionProof::from_bytes(&p.to_bytes()).unwrap();
            verify_inclusion(&RustCrypto, &root, n as u32, name, content, &p)
                .unwrap_or_else(|e| core::panic!("n={n} {name:?}: {e}"));
        }
    }
}

#[test]
fn wrong_content_name_or_root_rejects() {
    let o = outputs(5);
    let t = OutputTree::new(&RustCrypto, o.clone()).unwrap();
    let root = t.root(&RustCrypto);
    let p = t.prove(&RustCrypto, &o[2].0).unwrap();
    assert_eq!(
        verify_inclusion(&RustCrypto, &root, 5, &o[2].0, &[0; 32], &p),
        Err(MerkleError::RootMismatch)
    );
    assert_eq!(
        verify_inclusion(&RustCrypto, &root, 5, &o[3].0, &o[2].1, &p),
        Err(MerkleError::RootMismatch)
    );
    assert_eq!(
        verify_inclusion(&RustCrypto, &[0; 32], 5, &o[2].0, &o[2].1, &p),
        Err(MerkleError::RootMismatch)
    );
}

#[test]
fn wrong_index_count_or_path_rejects() {
    let o = outputs(6);
    let t = OutputTree::new(&RustCrypto, o.clone()).unwrap();
    let root = t.root(&RustCrypto);
    let p = t.prove(&RustCrypto, &o[1].0).unwrap();
    assert!(matches!(
        verify_inclusion(&RustCrypto, &root, 7, &o[1].0, &o[1].1, &p),
        Err(MerkleError::CountMismatch { .. })
    ));
    let mut q = p.clone();
    q.index = 0;
    assert!(verify_inclusion(&RustCrypto, &root, 6, &o[1].0, &o[1].1, &q).is_err());
    let mut q = p.clone();
    q.index = 6;
    assert!(matches!(
        verify_inclusion(&RustCrypto, &root, 6, &o[1].0, &o[1].1, &q),
        Err(MerkleError::IndexOutOfRange { .. })
    ));
    let mut q = p.clone();
    q.path.push([0; 32]);
    assert!(matches!(
        verify_inclusion(&RustCrypto, &root, 6, &o[1].0, &o[1].1, &q),
        Err(MerkleError::PathLength { .. })
    ));
    let mut q = p.clone();
    q.path.pop();
    assert!(matches!(
        verify_inclusion(&RustCrypto, &root, 6, &o[1].0, &o[1].1, &q),
        Err(MerkleError::PathLength { .. })
    ));
    let mut q = p;
    q.path[0][0] ^= 1;
    assert_eq!(
        verify_inclusion(&RustCrypto, &root, 6, &o[1].0, &o[1].1, &q),
        Err(MerkleError::RootMismatch)
    );
}

#[test]
fn leaf_cannot_pose_as_node_works() {
    // A two-leaf tree's root is node(a, b); no single output can have that as its
    // leaf hash because leaves and nodes have different prefixes.
    let o = outputs(2);
    let t = OutputTree::new(&RustCrypto, o).unwrap();
    let root = t.root(&RustCrypto);
    let p = InclusionProof {
        index: 0,
        count: 1,
        path: vec![],
    };
    assert!(verify_inclusion(&RustCrypto, &root, 1, b"x", &[0; 32], &p).is_err());
}

#[test]
fn duplicate_and_bad_names_reject() {
    let mut o = outputs(3);
    o.push(o[1].clone());
    assert!(matches!(
        OutputTree::new(&RustCrypto, o),
        Err(MerkleError::DuplicateName(_))
    ));
    assert_eq!(
        OutputTree::new(&RustCrypto, vec![(vec![], [0; 32])]),
        Err(MerkleError::NameLength(0))
    );
    assert_eq!(
        OutputTree::new(&RustCrypto, vec![(vec![b'a'; MAX_NAME_LEN + 1], [0; 32])]),
        Err(MerkleError::NameLength(MAX_NAME_LEN + 1))
    );
    let t = OutputTree::new(&RustCrypto, outputs(2)).unwrap();
    assert!(t.prove(&RustCrypto, b"missing").is_none());
}

proptest::proptest! {
    #[test]
    fn proofs_verify_for_random_sets_works(
        names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..12), 1..40),
        pick in proptest::num::usize::ANY,
    ) {
        let o: Vec<(Vec<u8>, [u8; 32])> = names
            .into_iter()
            .map(|n| { let c = sha2::Sha256::digest(&n).into(); (n, c) })
            .collect();
        let t = OutputTree::new(&RustCrypto, o.clone()).unwrap();
        let (name, content) = &o[pick % o.len()];
        let p = t.prove(&RustCrypto, name).unwrap();
        proptest::prop_assert!(
            verify_inclusion(&RustCrypto, &t.root(&RustCrypto), t.len(), name, content, &p).is_ok()
        );
    }

    #[test]
    fn proof_decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = InclusionProof::from_bytes(&bytes);
    }
}
