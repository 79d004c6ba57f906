//! TDX through the Azure paravisor's vTPM (`CpuEvidence::AzureTdxVtpm`) end to end:
//! synthetic HCL reports carrying a TD report, with the TD quote made of it signed by a
//! test Intel PKI, verified as bundles and receipts with both crypto backends; the
//! vTPM quote and event log beside them; every binding failure with its typed reason;
//! the real Azure TDX evidence of the shared vectors in a bundle (its claims digest
//! binds, its user data is not ours), also through the `sigil-verify` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod tdx_support;
mod vtpm_support;

use std::process::Command;

use attestation_verifier::binding::report_data;
use attestation_verifier::bundle::{
    AgentEvent, AgentEventKind, CpuEvidence, EvidenceBundle, MeasuredBoot, TpmQuote,
};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::azure_hcl::{
    HclHashType, HclParseError, encode_hcl_report, encode_hcl_report_tdx, parse_hcl_report_tdx,
};
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, TeeKind, Usage,
};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::azure_hcl::{HclBindingError, claims_report_data};
use attestation_verifier::verify::azure_vtpm::{VtpmQuoteError, tpm_quote_qualifying_data};
use attestation_verifier::verify::measured::MeasuredBootError;
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::SnpVerifier;
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{
    CpuClaims, ReceiptVerifier, ReceiptVerifyError, VerifiedCpu, check_bundle, check_receipt,
};
use ed25519_dalek::{Signer, SigningKey};
use sigil_test_support::tcg_log;
use sigil_test_support::tdx::Spec;
use sigil_test_support::vectors::{Case, cases};
use tdx_support::{Anchor, Fixture, fixture};
use vtpm_support::Vtpm;

/// 2029-06-15: inside the synthetic collateral's window.
const NOW: UnixTime = UnixTime(1_876_176_000);
const NONCE: [u8; 32] = [5; 32];
/// The TD report the paravisor got (its bytes are not verified: the quote is).
const TD_REPORT: [u8; 1024] = [0x7D; 1024];

fn agent() -> SigningKey {
    SigningKey::from_bytes(&[23; 32])
}

fn expected_rd(a: &SigningKey) -> [u8; 64] {
    report_data(&RustCrypto, &a.verifying_key().to_bytes(), &[0; 32], &NONCE)
}

/// An Azure TDX VM: its vTPM, and the TD quote and HCL report the paravisor makes
/// for runtime claims carrying `user_data` (hashed with `hash`).
struct Vm {
    vtpm: Vtpm,
    hcl: Vec<u8>,
    td: Fixture,
}

fn vm(user_data: &[u8], hash: HclHashType) -> Vm {
    let vtpm = Vtpm::new();
    let claims = vtpm.claims(user_data);
    let td = fixture(Spec {
        report_data: claims_report_data(&RustCrypto, hash, &claims),
        ..Spec::default()
    });
    let hcl = encode_hcl_report_tdx(&TD_REPORT, hash, &claims).unwrap();
    Vm { vtpm, hcl, td }
}

/// The TD's MRTD, as its quote says.
fn mrtd(vm: &Vm) -> [u8; 48] {
    parse_tdx_quote(&vm.td.quote).unwrap().body.mr_td
}

fn cpu(vm: &Vm, collateral: bool) -> CpuEvidence {
    CpuEvidence::AzureTdxVtpm {
        hcl_report: vm.hcl.clone(),
        td_quote: vm.td.quote.clone(),
        collateral_json: collateral.then(|| vm.td.collateral.to_json().unwrap().into_bytes()),
    }
}

fn bundle(a: &SigningKey, vm: &Vm, tpm_quote: Option<TpmQuote>) -> EvidenceBundle {
    EvidenceBundle::new(a.verifying_key().to_bytes(), NONCE, cpu(vm, true), vec![]).with_measured(
        MeasuredBoot {
            tpm_quote,
            ..MeasuredBoot::default()
        },
    )
}

/// A quote of PCR 0..23 for `a`'s bundle by `vm`'s vTPM.
fn tpm_quote(a: &SigningKey, vm: &Vm) -> TpmQuote {
    vm.vtpm
        .quote(&tpm_quote_qualifying_data(&RustCrypto, &expected_rd(a)))
}

fn verifier<C: Crypto + Clone>(c: C, vm: &Vm) -> ReceiptVerifier<C> {
    ReceiptVerifier::with_verifiers(
        SnpVerifier::new(c.clone()).unwrap(),
        TdxVerifier::with_trust_anchor(c.clone(), vm.td.pki.anchor()),
        NvGpuVerifier::new(c).unwrap(),
    )
}

/// Verifies `bytes` with both backends; they must agree. Returns the failures.
fn failures(vm: &Vm, bytes: &[u8]) -> Vec<ReceiptVerifyError> {
    let aws = verifier(AwsLc, vm)
        .verify_bundle(bytes, None, None, NOW)
        .map(|_| ())
        .map_err(|f| f.0);
    let rc = verifier(RustCrypto, vm)
        .verify_bundle(bytes, None, None, NOW)
        .map(|_| ())
        .map_err(|f| f.0);
    assert_eq!(aws, rc, "backends disagree");
    aws.err().unwrap_or_default()
}

#[test]
fn azure_tdx_bundle_works() {
    let a = agent();
    for hash in [
        HclHashType::Sha256,
        HclHashType::Sha384,
        HclHashType::Sha512,
    ] {
        let vm = vm(&expected_rd(&a), hash);
        let b = bundle(&a, &vm, Some(tpm_quote(&a, &vm)));
        let bytes = b.to_bytes();
        assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), b);
        assert_eq!(b.tee, TeeKind::Tdx);
        // magic, version, tee (2 = TDX), key, nonce, then the variant index 5.
        assert_eq!((bytes[5], bytes[70]), (2, 5));
        assert!(failures(&vm, &bytes).is_empty(), "{hash}");
        let v = verifier(AwsLc, &vm)
            .verify_bundle(
                &bytes,
                Some(&a.verifying_key().to_bytes()),
                Some(&NONCE),
                NOW,
            )
            .unwrap();
        assert!(matches!(v.cpu, VerifiedCpu::Tdx(_)));
        assert_eq!(v.tpm_quote.as_ref().unwrap().pcr(7), Some(&[7; 32]));
        let o = check_bundle(
            &mut verifier(RustCrypto, &vm),
            &bytes,
            None,
            None,
            &Policy::default(),
            NOW,
        );
        assert!(o.accepted(), "{:?}", o.reasons);
        let c = o.claims.unwrap();
        assert_eq!(c.tee, "tdx");
        let Some(CpuClaims::AzureTdxVtpm(az)) = &c.cpu else {
            panic!("{:?}", c.cpu)
        };
        assert_eq!(az.path, "azure-vtpm");
        assert_eq!(az.hcl.runtime_claims_hash, hash.name());
        assert_eq!(az.hcl.user_data.as_deref(), Some(&*c.expected_report_data));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["cpu"]["kind"], "azure-tdx-vtpm");
        assert_eq!(json["cpu"]["path"], "azure-vtpm");
        assert_eq!(json["cpu"]["mrtd"], hex::encode(mrtd(&vm)));
        assert_eq!(json["cpu"]["tcb_status"], "UpToDate");
        assert_eq!(json["cpu"]["tpm_quote"]["pcrs"]["pcr07"], "07".repeat(32));
    }
}

#[test]
fn azure_tdx_policies_apply_works() {
    let a = agent();
    let vm = vm(&expected_rd(&a), HclHashType::Sha256);
    let bytes = bundle(&a, &vm, Some(tpm_quote(&a, &vm))).to_bytes();
    let check = |toml: &str| {
        check_bundle(
            &mut verifier(AwsLc, &vm),
            &bytes,
            None,
            None,
            &Policy::from_toml(toml).unwrap(),
            NOW,
        )
    };
    // [tdx] applies to the TD quote, [vtpm] to the quoted PCRs.
    let pin = format!(
        "[tdx]\nmrtds = [\"{}\"]\n[vtpm]\npcrs = [{{ index = 7, sha256 = \"{}\" }}]\n",
        hex::encode(mrtd(&vm)),
        "07".repeat(32)
    );
    let o = check(&pin);
    assert!(o.accepted(), "{:?}", o.reasons);
    let o = check(&format!(
        "[tdx]\nmrtds = [\"{}\"]\n[vtpm]\npcrs = [{{ index = 7, sha256 = \"{}\" }}]\n",
        "ab".repeat(48),
        "08".repeat(32)
    ));
    assert!(!o.accepted());
    assert!(
        o.reasons.iter().any(|r| r.contains("tdx.mrtds")),
        "{:?}",
        o.reasons
    );
    assert!(
        o.reasons.iter().any(|r| r.contains("vtpm.pcrs")),
        "{:?}",
        o.reasons
    );
    // A TDX event rule needs the TD's own event log (RTMRs): the vTPM's does not do.
    let o = check(&format!(
        "[tdx]\nevents = [{{ rtmr = 1, digest = \"{}\" }}]\n",
        "11".repeat(48)
    ));
    assert!(
        o.reasons.iter().any(|r| r.contains("tdx.events")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn azure_tdx_event_log_works() {
    let a = agent();
    let vm = vm(&expected_rd(&a), HclHashType::Sha256);
    let events = tcg_log::sample_boot();
    let pcrs = tcg_log::replay(&events)
        .iter()
        .map(|p| p.to_vec())
        .collect();
    let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
    let mut b = bundle(&a, &vm, Some(vm.vtpm.quote_pcrs(&qd, pcrs)));
    b.measured.event_log = Some(tcg_log::log(&events));
    let bytes = b.to_bytes();
    assert!(failures(&vm, &bytes).is_empty());
    let v = verifier(RustCrypto, &vm)
        .verify_bundle(&bytes, None, None, NOW)
        .unwrap();
    let m = v.measured.as_ref().unwrap();
    assert!(m.get().tpm_log.is_some());
    assert!(!m.get().pcrs_covered.is_empty());
    // A log the quote does not replay to.
    let mut b = bundle(&a, &vm, Some(tpm_quote(&a, &vm)));
    b.measured.event_log = Some(tcg_log::log(&events));
    let f = failures(&vm, &b.to_bytes());
    assert!(
        !f.is_empty()
            && f.iter().all(|e| matches!(
                e,
                ReceiptVerifyError::MeasuredBoot(MeasuredBootError::Replay(_))
            )),
        "{f:?}"
    );
    // Agent events: the TD's RTMR3 is the paravisor's, not the guest's.
    let mut b = bundle(&a, &vm, None);
    b.measured.agent_events = vec![AgentEvent {
        kind: AgentEventKind::Binary,
        digest: [1; 48],
    }];
    assert_eq!(
        failures(&vm, &b.to_bytes()),
        [ReceiptVerifyError::MeasuredBoot(
            MeasuredBootError::NoRegisters {
                what: "agent events",
                tee: TeeKind::Tdx,
            }
        )]
    );
}

#[test]
fn azure_tdx_binding_rejects() {
    let a = agent();
    // User data of another binding (another nonce).
    let other = report_data(
        &RustCrypto,
        &a.verifying_key().to_bytes(),
        &[0; 32],
        &[6; 32],
    );
    let vm_other = vm(&other, HclHashType::Sha256);
    let f = failures(&vm_other, &bundle(&a, &vm_other, None).to_bytes());
    assert_eq!(
        f,
        [ReceiptVerifyError::AzureHcl(
            HclBindingError::UserDataMismatch {
                expected: hex::encode(expected_rd(&a)),
                found: hex::encode(other),
            }
        )]
    );
    // A TD quote whose REPORT_DATA is not the claims' digest (the quote of another report).
    let good = vm(&expected_rd(&a), HclHashType::Sha256);
    let mut swapped = vm(&expected_rd(&a), HclHashType::Sha384);
    swapped.hcl = encode_hcl_report_tdx(
        &TD_REPORT,
        HclHashType::Sha256,
        &good.vtpm.claims(&expected_rd(&a)),
    )
    .unwrap();
    let f = failures(&swapped, &bundle(&a, &swapped, None).to_bytes());
    assert!(
        matches!(
            f.as_slice(),
            [ReceiptVerifyError::AzureHcl(
                HclBindingError::ClaimsDigest { .. }
            )]
        ),
        "{f:?}"
    );
    // An SEV-SNP HCL report where a TDX one belongs.
    let claims = good.vtpm.claims(&expected_rd(&a));
    let snp_hcl = encode_hcl_report(&[0; 0x4A0], HclHashType::Sha256, &claims).unwrap();
    assert!(matches!(
        parse_hcl_report_tdx(&snp_hcl),
        Err(HclParseError::ExpectedTdx { value: 2, .. })
    ));
    let mut b = bundle(&a, &good, None);
    b.cpu = CpuEvidence::AzureTdxVtpm {
        hcl_report: snp_hcl,
        td_quote: good.td.quote.clone(),
        collateral_json: None,
    };
    assert!(matches!(
        failures(&good, &b.to_bytes()).as_slice(),
        [ReceiptVerifyError::AzureHclParse(
            HclParseError::ExpectedTdx { .. }
        )]
    ));
    // No collateral: the quote is not verified, and the bundle is not accepted.
    let mut b = bundle(&a, &good, None);
    b.cpu = cpu(&good, false);
    assert_eq!(
        failures(&good, &b.to_bytes()),
        [ReceiptVerifyError::TdxCollateralMissing]
    );
    // A TD quote signed by another attestation key (a changed byte of its body).
    let mut b = bundle(&a, &good, None);
    let CpuEvidence::AzureTdxVtpm { td_quote, .. } = &mut b.cpu else {
        unreachable!()
    };
    td_quote[48 + 100] ^= 1; // inside the TD report body (MRSIGNERSEAM)
    let f = failures(&good, &b.to_bytes());
    assert!(
        !f.is_empty() && f.iter().all(|e| matches!(e, ReceiptVerifyError::Tdx(_))),
        "{f:?}"
    );
    // Not a quote at all.
    let mut b = bundle(&a, &good, None);
    let CpuEvidence::AzureTdxVtpm { td_quote, .. } = &mut b.cpu else {
        unreachable!()
    };
    td_quote.truncate(100);
    assert!(matches!(
        failures(&good, &b.to_bytes()).as_slice(),
        [ReceiptVerifyError::TdxParse(_)]
    ));
    // The vTPM quote: for another binding; signed by a key the claims do not publish.
    let b = bundle(&a, &good, Some(good.vtpm.quote(&NONCE)));
    assert!(matches!(
        failures(&good, &b.to_bytes()).as_slice(),
        [ReceiptVerifyError::VtpmQuote(
            VtpmQuoteError::NonceMismatch { .. }
        )]
    ));
    let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
    let b = bundle(&a, &good, Some(Vtpm::new().quote(&qd)));
    assert!(matches!(
        failures(&good, &b.to_bytes()).as_slice(),
        [ReceiptVerifyError::VtpmQuote(VtpmQuoteError::Signature(_))]
    ));
    // A vTPM quote with plain TDX evidence, which has no vTPM.
    let plain = EvidenceBundle::new(
        a.verifying_key().to_bytes(),
        NONCE,
        CpuEvidence::Tdx {
            quote: good.td.quote.clone(),
            collateral_json: Some(good.td.collateral.to_json().unwrap().into_bytes()),
        },
        vec![],
    )
    .with_measured(MeasuredBoot {
        tpm_quote: Some(good.vtpm.quote(&qd)),
        ..MeasuredBoot::default()
    });
    assert!(
        failures(&good, &plain.to_bytes())
            .contains(&ReceiptVerifyError::TpmQuoteWithoutVtpm(TeeKind::Tdx))
    );
    // A bundle that labels the evidence SEV-SNP does not decode.
    let mut b = bundle(&a, &good, None);
    b.tee = TeeKind::SevSnp;
    assert!(EvidenceBundle::from_bytes(&b.to_bytes()).is_err());
}

#[test]
fn azure_tdx_receipt_works() {
    let a = agent();
    let vm = vm(&expected_rd(&a), HclHashType::Sha256);
    let b = bundle(&a, &vm, Some(tpm_quote(&a, &vm)));
    let mut body = ReceiptBody {
        version: RECEIPT_VERSION,
        job_id: [1; 32],
        job_spec_hash: [2; 32],
        provider: a.verifying_key().to_bytes(),
        tier: 3,
        result_commitment: [3; 32],
        output_count: 1,
        started_at_ms: 1_000,
        finished_at_ms: 2_000,
        exit_code: 0,
        usage: Usage::default(),
        evidence: EvidenceRef {
            mode: EvidenceMode::AttestedKey,
            tee: TeeKind::Tdx,
            digest: b.digest(&RustCrypto),
        },
    };
    let signed = |body: &ReceiptBody| {
        SignedReceipt::new(body, a.sign(&body.digest(&RustCrypto)).to_bytes()).to_bytes()
    };
    for accepted in [
        check_receipt(
            &mut verifier(AwsLc, &vm),
            &signed(&body),
            Some(&b.to_bytes()),
            &Policy::default(),
            NOW,
        ),
        check_receipt(
            &mut verifier(RustCrypto, &vm),
            &signed(&body),
            Some(&b.to_bytes()),
            &Policy::default(),
            NOW,
        ),
    ] {
        assert!(accepted.accepted(), "{:?}", accepted.reasons);
    }
    // A receipt that says SEV-SNP does not take TDX evidence.
    body.evidence.tee = TeeKind::SevSnp;
    let f = verifier(AwsLc, &vm)
        .verify(&signed(&body), Some(&b.to_bytes()), NOW)
        .unwrap_err();
    assert!(
        f.0.iter()
            .any(|e| matches!(e, ReceiptVerifyError::TeeMismatch { .. })),
        "{f}"
    );
}

// ---- the real Azure TDX evidence of the shared vectors ----

fn real_cases() -> Vec<Case> {
    let all: Vec<Case> = cases("measured/azure-vtpm")
        .into_iter()
        .filter(|c| c.name.starts_with("az-tdx-"))
        .collect();
    assert!(all.len() >= 2, "the az-tdx vectors");
    all
}

/// The real HCL report and TD quote in a bundle for our agent key: the quote's REPORT_DATA
/// is the digest of the real claims (binds), the claims' user data is not our binding, and
/// no Intel collateral is published for the quote.
#[test]
fn real_azure_tdx_evidence_binds_its_claims_only_works() {
    let a = agent();
    for case in real_cases() {
        let facts = &case.toml["facts"];
        let b = EvidenceBundle::new(
            a.verifying_key().to_bytes(),
            NONCE,
            CpuEvidence::AzureTdxVtpm {
                hcl_report: case.file("hcl_report.bin"),
                td_quote: case.file("td_quote.bin"),
                collateral_json: None,
            },
            vec![],
        );
        let bytes = b.to_bytes();
        for f in [
            ReceiptVerifier::new(AwsLc)
                .unwrap()
                .verify_bundle(&bytes, None, None, NOW)
                .unwrap_err()
                .0,
            ReceiptVerifier::new(RustCrypto)
                .unwrap()
                .verify_bundle(&bytes, None, None, NOW)
                .unwrap_err()
                .0,
        ] {
            assert_eq!(
                f,
                [
                    ReceiptVerifyError::AzureHcl(HclBindingError::UserDataMismatch {
                        expected: hex::encode(expected_rd(&a)),
                        found: facts["user_data"].as_str().unwrap().to_owned(),
                    }),
                    ReceiptVerifyError::TdxCollateralMissing,
                ],
                "{}",
                case.name
            );
        }
        // The claims as the CLI prints them.
        let dir = std::env::temp_dir().join(format!(
            "sigil-azure-tdx-{}-{}",
            case.name,
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bundle.scale");
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
            .args([
                "bundle",
                "--bundle",
                path.to_str().unwrap(),
                "--at",
                "2029-06-15T00:00:00Z",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["verdict"], "rejected");
        let cpu = &json["claims"]["cpu"];
        assert_eq!(cpu["kind"], "azure-tdx-vtpm", "{json}");
        assert_eq!(cpu["path"], "azure-vtpm");
        assert_eq!(cpu["mrtd"], facts["td_quote"]["mrtd"].as_str().unwrap());
        assert_eq!(
            cpu["report_data"],
            facts["td_quote_report_data"].as_str().unwrap()
        );
        assert_eq!(
            cpu["hcl_version"],
            facts["hcl_version"].as_integer().unwrap()
        );
        assert_eq!(cpu["runtime_claims_hash"], "SHA-256");
        assert_eq!(
            cpu["ak_pub"]["kid"], "HCLAkPub",
            "{}: the claims publish the attestation key",
            case.name
        );
        let reasons = json["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
    }
}
