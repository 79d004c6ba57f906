//! The Sigil runtime's attestation verifier.
//!
//! Implements the market pallet's [`AttestationVerifier`] with the `attestation-verifier`
//! crate's no_std core (pure-Rust crypto): the evidence is an evidence bundle
//! (`SCALE(EvidenceBundle)`, see `docs/evidence-bundle.md`) carrying the CPU evidence and
//! its collateral (SEV-SNP report with its VCEK/VLEK, TDX quote with its DCAP collateral, or a
//! simulated report). It is checked against the vendor roots pinned in that crate, at the
//! chain's time, and appraised under the policy document the pallet stores for the policy id
//! (the verifier's canonical policy encoding, `docs/policy.md`; [`policies`] holds the genesis
//! ones).
//!
//! Steps:
//! 1. The policy document must decode (canonical bytes of a valid policy); the separate
//!    collateral argument must be empty (the bundle carries its own collateral, which is part of
//!    its digest).
//! 2. The bundle's declared TEE kind must be one the policy accepts (before any cryptography).
//! 3. [`ReceiptVerifier::verify_bundle`]: canonical decoding, the REPORT_DATA binding of the
//!    agent key, GPU evidence digest and nonce, the CPU evidence's signatures and certificate
//!    chain to the pinned roots, validity at `now`.
//! 4. The verified TEE kind again, then the policy's appraisal rules ([`evaluate_bundle`]).
//! 5. The result: the bundle's agent key and nonce, the TEE kind, the launch measurement
//!    (SEV-SNP `MEASUREMENT`, TDX `MRTD`, the simulator's claimed measurement), the expiry of
//!    the collateral it was verified with, and the number and chip of the verified GPU reports.
//!
//! Every failure maps to one [`AttestationFailure`] (see [`failure_of`] and
//! [`failure_of_violation`]); when the verifier reports several, the signer and signature
//! failures are reported first. Verification never panics on untrusted input.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod policies;

#[cfg(any(test, feature = "runtime-benchmarks"))]
pub mod benchmarking;

use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::{Policy, PolicyError, PolicyTee};
use attestation_verifier::receipt::TeeKind as BundleTee;
use attestation_verifier::time::{UnixTime, Window};
use attestation_verifier::verify::azure_vtpm::VtpmQuoteError;
use attestation_verifier::verify::measured::MeasuredBootError;
use attestation_verifier::verify::nvgpu::NvGpuVerifyError;
use attestation_verifier::verify::rim::RimVerifyError;
use attestation_verifier::verify::snp::SnpVerifyError;
use attestation_verifier::verify::tdx::TdxVerifyError;
use attestation_verifier::verify::x509::X509Error;
use attestation_verifier::{
    ReceiptVerifier, ReceiptVerifyError, Verdict, VerifiedCpu, Violation, evaluate_bundle,
};

use pallet_sigil_market::{
    AttestationFailure, AttestationVerifier, EvidenceCost, GpuChip, GpuVersion, PolicyRejection,
    PolicySummary, TeeKind, TeeKindSet, VerifiedAttestation,
};

/// Milliseconds per second.
const MS_PER_S: u64 = 1_000;

/// The runtime's [`AttestationVerifier`]: evidence bundles checked by the `attestation-verifier`
/// crate against its pinned vendor roots and the chain's [`policies`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BundleVerifier;

impl AttestationVerifier for BundleVerifier {
    /// The bundle's GPU reports, RIMs and OCSP responses as the verifier crate counts them
    /// without verifying ([`attestation_verifier::bundle::cost::cost`]: length prefixes only,
    /// the caps for what it cannot read), and every byte of the bundle and the collateral.
    fn evidence_cost(evidence: &[u8], collateral: &[u8]) -> EvidenceCost {
        let c = attestation_verifier::bundle::cost::cost(evidence);
        EvidenceCost {
            gpus: c.gpus,
            rims: c.rims,
            ocsp: c.ocsp,
            bytes: c
                .bytes
                .saturating_add(u32::try_from(collateral.len()).unwrap_or(u32::MAX)),
        }
    }

    fn inspect_policy(document: &[u8]) -> Result<PolicySummary, PolicyRejection> {
        let policy = Policy::from_canonical_bytes(document).map_err(|e| rejection_of(&e))?;
        let tees: TeeKindSet = policy
            .accepted_tees()
            .into_iter()
            .map(tee_kind)
            .collect::<alloc::vec::Vec<_>>()
            .try_into()
            .map_err(|_| PolicyRejection::InvalidValue)?;
        let unpinned = policy.check_pinned().err().map(|rule| match rule {
            "tdx.mrtds" => PolicyRejection::TdxMrtdNotPinned,
            _ => PolicyRejection::SnpMeasurementNotPinned,
        });
        Ok(PolicySummary {
            id: policy.id(),
            tees,
            unpinned,
            key_lifetime_ms: policy.key_lifetime_secs.map(|s| s.saturating_mul(MS_PER_S)),
        })
    }

    fn verify(
        evidence: &[u8],
        collateral: &[u8],
        policy: &[u8],
        now_ms: u64,
    ) -> Result<VerifiedAttestation, AttestationFailure> {
        // Step 1. The pallet passes only documents `inspect_policy` accepted.
        let policy =
            Policy::from_canonical_bytes(policy).map_err(|_| AttestationFailure::UnknownPolicy)?;
        if !collateral.is_empty() {
            return Err(AttestationFailure::Malformed);
        }
        // Step 2. The bundle's declared TEE kind first: evidence the policy cannot accept is
        // refused before any signature is checked.
        let declared = EvidenceBundle::from_bytes(evidence)
            .map_err(|_| AttestationFailure::Malformed)?
            .tee;
        check_kind(
            &policy,
            tee_of(declared).ok_or(AttestationFailure::Malformed)?,
        )?;
        // Step 3. The pinned roots are compiled into the verifier crate; failing to load them is
        // a defect of the build, reported as an untrusted signer rather than accepted.
        let mut verifier =
            ReceiptVerifier::new(RustCrypto).map_err(|_| AttestationFailure::UntrustedSigner)?;
        let now = UnixTime(now_ms / MS_PER_S);
        let verified = verifier
            .verify_bundle(evidence, None, None, now)
            .map_err(|failures| {
                failures
                    .0
                    .iter()
                    .map(failure_of)
                    .min_by_key(|f| severity_rank(*f))
                    .unwrap_or(AttestationFailure::Malformed)
            })?;
        // Step 4
        let (tee, measurement, expires_at_ms) = match &verified.cpu {
            VerifiedCpu::SevSnp(ev) => (
                TeeKind::SevSnp,
                ev.report.measurement,
                window_end_ms(&ev.chain_validity),
            ),
            VerifiedCpu::Tdx(ev) => (
                TeeKind::Tdx,
                ev.body.mr_td,
                window_end_ms(&ev.collateral_window),
            ),
            VerifiedCpu::Simulated(report) => {
                // A simulated report is valid as long as its signature is; the pallet caps the
                // key's validity with `MaxAttestationValidityMs`.
                (TeeKind::Simulated, report.body.measurement, u64::MAX)
            }
            // Evidence kinds added to the verifier later are refused until mapped here.
            _ => return Err(AttestationFailure::UnsupportedTee),
        };
        check_kind(&policy, tee)?;
        if let Verdict::Reject(violations) = evaluate_bundle(&policy, &verified) {
            return Err(violations
                .first()
                .map_or(AttestationFailure::Malformed, failure_of_violation));
        }
        // Step 5
        let gpu_chip: GpuChip = common(verified.gpus.iter().map(|g| Some(g.chip.as_str())));
        let gpu_driver: GpuVersion = common(
            verified
                .gpus
                .iter()
                .map(|g| g.report.fields.driver_version.as_deref()),
        );
        let gpu_vbios: GpuVersion = common(
            verified
                .gpus
                .iter()
                .map(|g| g.report.fields.vbios_version.as_deref()),
        );
        Ok(VerifiedAttestation {
            key: verified.bundle.agent_key,
            tee,
            measurement,
            nonce: verified.bundle.nonce,
            expires_at_ms,
            gpu_count: u32::try_from(verified.gpus.len()).unwrap_or(u32::MAX),
            gpu_chip,
            gpu_driver,
            gpu_vbios,
            sealing_key: verified.bundle.sealing_key,
        })
    }
}

/// The value every GPU reports, as bounded bytes; empty without GPUs, when one reports none,
/// when they differ, or when it is longer than the bound.
fn common<'a, B: TryFrom<alloc::vec::Vec<u8>> + Default>(
    mut values: impl Iterator<Item = Option<&'a str>>,
) -> B {
    let Some(Some(first)) = values.next() else {
        return B::default();
    };
    if values.all(|v| v == Some(first)) {
        B::try_from(first.as_bytes().to_vec()).unwrap_or_default()
    } else {
        B::default()
    }
}

/// The pallet's reason for a policy document the verifier refuses.
fn rejection_of(e: &PolicyError) -> PolicyRejection {
    match e {
        PolicyError::NotCanonical { .. } => PolicyRejection::NotCanonical,
        PolicyError::Length { .. }
        | PolicyError::Value { .. }
        | PolicyError::TooMany { .. }
        | PolicyError::TooLong { .. } => PolicyRejection::InvalidValue,
        _ => PolicyRejection::Malformed,
    }
}

/// The pallet's name of a policy's TEE kind.
fn tee_kind(t: PolicyTee) -> TeeKind {
    match t {
        PolicyTee::SevSnp => TeeKind::SevSnp,
        PolicyTee::Tdx => TeeKind::Tdx,
        PolicyTee::Simulated => TeeKind::Simulated,
    }
}

/// Refuses evidence of a kind the policy does not accept.
fn check_kind(policy: &Policy, tee: TeeKind) -> Result<(), AttestationFailure> {
    if policy
        .accepted_tees()
        .into_iter()
        .any(|t| tee_kind(t) == tee)
    {
        Ok(())
    } else if tee == TeeKind::Simulated {
        Err(AttestationFailure::SimulatedRejected)
    } else {
        Err(AttestationFailure::UnsupportedTee)
    }
}

/// The pallet's name of a bundle's TEE kind (a bundle never declares `None`).
fn tee_of(tee: BundleTee) -> Option<TeeKind> {
    match tee {
        BundleTee::SevSnp => Some(TeeKind::SevSnp),
        BundleTee::Tdx => Some(TeeKind::Tdx),
        BundleTee::Simulated => Some(TeeKind::Simulated),
        _ => None,
    }
}

/// The first millisecond after a validity window (its `not_after` is the last valid second).
fn window_end_ms(window: &Window) -> u64 {
    window
        .not_after
        .as_secs()
        .saturating_add(1)
        .saturating_mul(MS_PER_S)
}

/// Which of several failures to report: the verifier lists every failure it found (a tampered
/// report fails both its signature and, often, its binding); the most telling one wins, the
/// signer and signature ahead of validity, and those ahead of malformed or unbound content.
fn severity_rank(f: AttestationFailure) -> u8 {
    use AttestationFailure as F;
    match f {
        F::UntrustedSigner => 0,
        F::BadSignature => 1,
        F::OutsideValidity => 2,
        F::UnsupportedTee => 3,
        _ => 4,
    }
}

/// Maps one of the verifier's failures to the pallet's reason.
///
/// The pallet's reasons are coarser than the verifier's: a REPORT_DATA or GPU nonce that does
/// not bind the bundle's key and nonce is [`AttestationFailure::KeyNotBound`]; a certificate chain that does not lead to the pinned roots
/// (a certificate signature included), or does not endorse the report's chip and TCB, as
/// [`AttestationFailure::UntrustedSigner`]; a bad signature over the report, quote or collateral
/// as [`AttestationFailure::BadSignature`].
pub fn failure_of(e: &ReceiptVerifyError) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        ReceiptVerifyError::NotSupported { .. } => F::UnsupportedTee,
        ReceiptVerifyError::Snp(e) => snp_failure(e),
        ReceiptVerifyError::Tdx(e) => tdx_failure(e),
        ReceiptVerifyError::Simulated(_) => F::BadSignature,
        ReceiptVerifyError::Gpu { source, .. } => gpu_failure(source),
        ReceiptVerifyError::GpuParse { .. } | ReceiptVerifyError::GpuCertChain { .. } => {
            F::Malformed
        }
        ReceiptVerifyError::Bundle(_)
        | ReceiptVerifyError::SnpParse(_)
        | ReceiptVerifyError::TdxParse(_)
        | ReceiptVerifyError::TdxCollateral(_)
        | ReceiptVerifyError::TdxCollateralMissing
        | ReceiptVerifyError::SimulatedParse(_) => F::Malformed,
        ReceiptVerifyError::ReportDataMismatch { .. }
        | ReceiptVerifyError::GpuNonceMismatch { .. }
        | ReceiptVerifyError::AgentKeyMismatch { .. }
        | ReceiptVerifyError::FreshNonceMismatch { .. } => F::KeyNotBound,
        // An event log or agent events that do not replay to the quote's registers
        // describe other software than the one measured.
        ReceiptVerifyError::MeasuredBoot(MeasuredBootError::Replay(_)) => F::MeasurementRejected,
        // A vTPM quote: its signature under the attestation key the hardware report
        // vouches for, its nonce bound to the bundle, its PCR values bound to the digest.
        ReceiptVerifyError::VtpmQuote(VtpmQuoteError::Signature(_)) => F::BadSignature,
        ReceiptVerifyError::VtpmQuote(VtpmQuoteError::NonceMismatch { .. }) => F::KeyNotBound,
        ReceiptVerifyError::VtpmQuote(VtpmQuoteError::PcrDigest { .. }) => F::MeasurementRejected,
        _ => F::Malformed,
    }
}

/// An NVIDIA GPU report's failure: its device chain and revocation as the CPU evidence's
/// chain; a report signature as [`AttestationFailure::BadSignature`]; a nonce that is not the
/// bundle's GPU nonce as [`AttestationFailure::KeyNotBound`]; RIMs that do not describe the
/// report's driver, VBIOS or chip, or whose golden values the report does not match, as
/// [`AttestationFailure::MeasurementRejected`].
fn gpu_failure(e: &NvGpuVerifyError) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        NvGpuVerifyError::Certificate(e) => x509_failure(e),
        NvGpuVerifyError::NonceMismatch { .. } => F::KeyNotBound,
        NvGpuVerifyError::ReportSignature(_) => F::BadSignature,
        NvGpuVerifyError::MissingCertFwid(_)
        | NvGpuVerifyError::MissingReportFwid
        | NvGpuVerifyError::RimParse { .. }
        | NvGpuVerifyError::DuplicateRim(_)
        | NvGpuVerifyError::DuplicateDevice { .. } => F::Malformed,
        NvGpuVerifyError::Rim { source, .. } => rim_failure(source),
        NvGpuVerifyError::RimNotApplicable { .. } | NvGpuVerifyError::RimChip { .. } => {
            F::MeasurementRejected
        }
        _ => F::UntrustedSigner,
    }
}

fn rim_failure(e: &RimVerifyError) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        RimVerifyError::Certificate(e) => x509_failure(e),
        RimVerifyError::Signature(_) | RimVerifyError::DigestMismatch => F::BadSignature,
        RimVerifyError::Canonicalization(_) | RimVerifyError::Algorithm { .. } => F::Malformed,
        _ => F::UntrustedSigner,
    }
}

fn x509_failure(e: &X509Error) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        X509Error::Expired { .. } => F::OutsideValidity,
        X509Error::Malformed { .. } | X509Error::BadExtension { .. } => F::Malformed,
        _ => F::UntrustedSigner,
    }
}

fn snp_failure(e: &SnpVerifyError) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        SnpVerifyError::Certificate(e) => x509_failure(e),
        SnpVerifyError::ReportSignature { .. } => F::BadSignature,
        SnpVerifyError::MissingTcbExtension(_) | SnpVerifyError::MissingHwId => F::Malformed,
        // A CRL outside its validity says nothing either way about revocation; a revoked
        // VCEK, VLEK or ASK is an untrusted signer (below).
        SnpVerifyError::CrlExpired { .. }
        | SnpVerifyError::CrlNotYetValid { .. }
        | SnpVerifyError::CrlWithoutNextUpdate => F::OutsideValidity,
        _ => F::UntrustedSigner,
    }
}

fn tdx_failure(e: &TdxVerifyError) -> AttestationFailure {
    use AttestationFailure as F;
    match e {
        TdxVerifyError::Certificate(e) => x509_failure(e),
        TdxVerifyError::Collateral(_) | TdxVerifyError::Pem { .. } => F::Malformed,
        TdxVerifyError::QeReportSignature(_)
        | TdxVerifyError::QuoteSignature(_)
        | TdxVerifyError::TcbInfoSignature(_)
        | TdxVerifyError::QeIdentitySignature(_) => F::BadSignature,
        TdxVerifyError::CollateralExpired { .. } | TdxVerifyError::CollateralNotYetValid { .. } => {
            F::OutsideValidity
        }
        _ => F::UntrustedSigner,
    }
}

/// Maps the first policy violation to the pallet's reason, by the rule's name.
///
/// Rules on what runs in the guest (launch measurement, ID and author keys, host and report
/// data, VMPL, TDX measurement registers) are [`AttestationFailure::MeasurementRejected`]; rules
/// on the platform (TCB levels, status and advisories, signing key kind, product, SMT,
/// migration, service TDs, guest SVN) are [`AttestationFailure::TcbRejected`].
pub fn failure_of_violation(v: &Violation) -> AttestationFailure {
    use AttestationFailure as F;
    match v.rule {
        "allow_simulated" => F::SimulatedRejected,
        "tees" => F::UnsupportedTee,
        "snp.allow_chip_ids" | "snp.deny_chip_ids" | "tdx.allow_fmspcs" | "tdx.deny_fmspcs"
        | "tdx.allow_ppids" | "tdx.deny_ppids" => F::PlatformRejected,
        "gpu.min_count" | "gpu.models" | "gpu.require_confidential_mode" => F::GpusRejected,
        "tdx.max_collateral_age_secs" | "gpu.ocsp_max_age_secs" | "snp.crl_max_age_secs" => {
            F::OutsideValidity
        }
        "snp.allow_debug" | "tdx.allow_debug" => F::DebugEnabled,
        "snp.measurements"
        | "snp.report_data"
        | "snp.host_data"
        | "snp.vmpls"
        | "snp.id_key_digests"
        | "snp.author_key_digests"
        | "tdx.mrtds"
        | "tdx.mrconfigid"
        | "tdx.mrowner"
        | "tdx.mrownerconfig"
        | "tdx.mrseams"
        | "tdx.report_data"
        | "tdx.events"
        | "tdx.agent_digests"
        | "tdx.config_digests"
        | "vtpm.pcrs"
        | "simulated.measurements" => F::MeasurementRejected,
        _ => F::TcbRejected,
    }
}

#[cfg(test)]
mod tests;
