//! The receipt's policy step: verified receipt evidence against the policy
//! table of its CPU evidence kind, the `[gpu]` table for every GPU, and
//! simulated evidence only with `allow_simulated`; the TEE kind must be one
//! of `tees` and the GPU reports at least `gpu.min_count`.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::{Policy, PolicyTee};
use crate::verdict::{Verdict, Verified, Violation};
use crate::verify::receipt::{VerifiedBundle, VerifiedCpu, VerifiedReceipt};

/// Step 7 of [`crate::verify::receipt`]: appraises a verified receipt against
/// `policy`; lists every violation.
pub fn evaluate_receipt(policy: &Policy, receipt: &Verified<VerifiedReceipt>) -> Verdict {
    match &receipt.evidence {
        None => Verdict::Accept,
        Some(b) => evaluate_bundle(policy, b),
    }
}

/// Appraises verified evidence against `policy`.
pub fn evaluate_bundle(policy: &Policy, bundle: &VerifiedBundle) -> Verdict {
    let mut v = Vec::new();
    let tee = match &bundle.cpu {
        VerifiedCpu::SevSnp(_) => PolicyTee::SevSnp,
        VerifiedCpu::Tdx(_) => PolicyTee::Tdx,
        VerifiedCpu::Simulated(_) => PolicyTee::Simulated,
    };
    policy.evaluate_evidence(tee, bundle.gpus.len(), &mut v);
    match &bundle.cpu {
        VerifiedCpu::SevSnp(ev) => {
            if let Verdict::Reject(vs) = policy.snp.evaluate(ev) {
                v.extend(vs);
            }
        }
        VerifiedCpu::Tdx(ev) => {
            if let Verdict::Reject(vs) = policy.tdx.evaluate(ev) {
                v.extend(vs);
            }
            policy
                .tdx
                .evaluate_measured(bundle.measured.as_ref(), &mut v);
        }
        VerifiedCpu::Simulated(report) => {
            if !policy.allow_simulated {
                v.push(Violation {
                    rule: "allow_simulated",
                    detail: "evidence is from the simulator, not a TEE (allow it only for testing)"
                        .to_string(),
                });
            } else if let Verdict::Reject(vs) = policy.simulated.evaluate(&report.body.measurement)
            {
                v.extend(vs);
            }
        }
    }
    policy.vtpm.evaluate(bundle.tpm_quote.as_ref(), &mut v);
    policy
        .vtpm
        .evaluate_events(bundle.measured.as_ref(), &mut v);
    for (i, (ev, g)) in bundle.gpus.iter().zip(&bundle.bundle.gpus).enumerate() {
        if let Verdict::Reject(vs) = policy.gpu.evaluate(ev) {
            v.extend(vs.into_iter().map(|x| Violation {
                rule: x.rule,
                detail: alloc::format!("GPU {i} ({}): {}", g.uuid, x.detail),
            }));
        }
    }
    Verdict::from_violations(v)
}
