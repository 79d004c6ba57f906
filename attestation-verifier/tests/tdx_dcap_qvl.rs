//! Differential test: `dcap-qvl` 0.7.1 (the reference verifier of the vectors) and
//! this crate agree on accept/reject and on the TCB status for every TDX vector.
//!
//! `dcap-qvl` refuses debug TDs and the other TD attribute rules inside
//! verification and leaves TCB statuses to its caller (refusing only `Revoked`);
//! here those rules live in the policy. The comparison therefore uses a policy that
//! accepts every non-revoked status and otherwise keeps the defaults, and, for the
//! vectors, the strict default policy too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;
mod tdx_differential;

use attestation_verifier::check_tdx;
use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::tdx::{TcbStatus, TdxCollateral, TdxVerifier};
use tdx_differential::reference_collateral;

/// Whether `p` accepts only `UpToDate` (the default).
fn strict_status(p: &Policy) -> bool {
    p.tdx.accepted_tcb_statuses == ["UpToDate"]
}

fn permissive_status_policy() -> Policy {
    let mut p = Policy::default();
    p.tdx.accepted_tcb_statuses = TcbStatus::ALL
        .into_iter()
        .filter(|s| *s != TcbStatus::Revoked)
        .map(|s| s.name().to_string())
        .collect();
    p
}

#[test]
fn agrees_with_dcap_qvl_on_every_vector_works() {
    let mut compared = 0;
    for c in common::cases("tdx") {
        let quote = c.file("quote.bin");
        let ours_collateral = TdxCollateral::from_json(&c.file("collateral.json")).unwrap();
        let now = c.verification_time();
        let reference =
            dcap_qvl::verify::ring::verify(&quote, &reference_collateral(&ours_collateral), now);
        let kind = c.toml.get("kind").and_then(|k| k.as_str()).unwrap();
        for policy in [permissive_status_policy(), Policy::default()] {
            let mut aws = TdxVerifier::new(AwsLc).unwrap();
            let mut rust = TdxVerifier::new(RustCrypto).unwrap();
            let ours = check_tdx(&mut aws, &quote, &ours_collateral, &policy, UnixTime(now));
            let ours_rust = check_tdx(&mut rust, &quote, &ours_collateral, &policy, UnixTime(now));
            assert_eq!(ours, ours_rust, "{}", c.name);
            if kind == "sgx" {
                // dcap-qvl verifies SGX quotes too; a TDX verifier must not accept them.
                assert!(reference.is_ok(), "{}", c.name);
                assert!(!ours.accepted(), "{}", c.name);
                continue;
            }
            // dcap-qvl leaves the status to its caller; the default policy accepts
            // only UpToDate.
            let status_ok = |status: &str| !strict_status(&policy) || status == "UpToDate";
            assert_eq!(
                ours.accepted(),
                reference.as_ref().is_ok_and(|r| status_ok(&r.status)),
                "{}: ours {:?}, dcap-qvl {:?}",
                c.name,
                ours.reasons,
                reference.as_ref().err().map(|e| format!("{e:#}"))
            );
            if let Ok(r) = &reference {
                let claims = ours.claims.as_ref().unwrap();
                assert_eq!(
                    claims.tcb_status.as_deref(),
                    Some(r.status.as_str()),
                    "{}",
                    c.name
                );
                assert_eq!(claims.advisory_ids, r.advisory_ids, "{}", c.name);
                assert_eq!(
                    claims.qe_tcb_status.as_deref(),
                    Some(r.qe_status.status.to_string().as_str())
                );
                assert_eq!(
                    claims.platform_tcb_status.as_deref(),
                    Some(r.platform_status.status.to_string().as_str())
                );
                assert_eq!(claims.ppid.as_deref(), Some(hex::encode(&r.ppid).as_str()));
            }
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
}
