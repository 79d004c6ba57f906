//! Azure vTPM evidence (SEV-SNP through the paravisor's HCL report) end to end:
//! synthetic HCL reports around SNP reports signed by a test AMD-like PKI,
//! verified as bundles and receipts with both crypto backends; every binding
//! failure with its typed reason; the real Azure SNP vector inside an HCL
//! report (genuine chain and signature, but a REPORT_DATA made for other
//! claims), also through the `sigil-verify` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;
mod snp_support;
mod vtpm_support;

use std::process::Command;

use attestation_verifier::binding::report_data;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::evidence::azure_hcl::{
    HclHashType, HclParseError, encode_hcl_report, parse_hcl_report,
};
use attestation_verifier::evidence::snp::REPORT_LEN;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::{
    EvidenceMode, EvidenceRef, RECEIPT_VERSION, ReceiptBody, SignedReceipt, TeeKind, Usage,
};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::azure_hcl::{HclBindingError, claims_report_data};
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::{SnpVerifier, SnpVerifyError};
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{
    CpuClaims, ReceiptVerifier, ReceiptVerifyError, VerifiedCpu, check_bundle, check_receipt,
};
use ed25519_dalek::{Signer, SigningKey};
use rcgen::KeyPair;
use sigil_test_support::tcg_log::{self, LogEvent};

const NOW: UnixTime = UnixTime(1_893_456_000); // 2030-01-01
const NONCE: [u8; 32] = [5; 32];

// ---- a test AMD-like PKI: ARK -> ASK -> VCEK with AMD's extensions ----

use snp_support::{TestPlatform as Platform, test_platform as platform};

/// A Milan v2 report as Azure's paravisor gets it (VMPL 0), signed by `key`.
fn snp_report(key: &KeyPair, rd: &[u8; 64]) -> Vec<u8> {
    snp_support::snp_report(key, 2, 0x3001f, rd)
}

fn claims_json(user_data: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"keys":[{{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"AQAB","n":"tegZ0wAB"}},{{"kid":"HCLEkPub","key_ops":["encrypt"],"kty":"RSA","e":"AQAB","n":"p9jNOQAA"}}],"vm-configuration":{{"console-enabled":false,"root-cert-thumbprint":"x","secure-boot":true,"tpm-enabled":true,"tpm-persisted":true,"vmUniqueId":"3404EF27-32A2-4A07-A4C7-1A1171624C5D"}},"user-data":"{}"}}"#,
        hex::encode_upper(user_data)
    )
    .into_bytes()
}

/// An HCL report whose claims carry `user_data` and whose SNP report commits to
/// the claims with `hash`, as the paravisor makes it.
fn hcl_report(p: &Platform, user_data: &[u8], hash: HclHashType) -> Vec<u8> {
    let claims = claims_json(user_data);
    let rd = claims_report_data(&RustCrypto, hash, &claims);
    encode_hcl_report(&snp_report(&p.vcek_key, &rd), hash, &claims).unwrap()
}

fn agent() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

fn expected_rd(a: &SigningKey) -> [u8; 64] {
    report_data(&RustCrypto, &a.verifying_key().to_bytes(), &[0; 32], &NONCE)
}

fn bundle(a: &SigningKey, p: &Platform, hcl: Vec<u8>, chain: bool) -> EvidenceBundle {
    EvidenceBundle::new(
        a.verifying_key().to_bytes(),
        NONCE,
        CpuEvidence::AzureSnpVtpm {
            hcl_report: hcl,
            vek: p.vcek.clone(),
            intermediate: chain.then(|| p.ask.clone()),
            ark: chain.then(|| p.ark.clone()),
        },
        vec![],
    )
}

fn verifier<C: Crypto + Clone>(c: C, p: &Platform) -> ReceiptVerifier<C> {
    ReceiptVerifier::with_verifiers(
        SnpVerifier::with_trust_store(c.clone(), p.trust.clone()),
        TdxVerifier::new(c.clone()).unwrap(),
        NvGpuVerifier::new(c).unwrap(),
    )
}

/// Verifies `bytes` with both backends; they must agree. Returns the failures.
fn failures(p: &Platform, bytes: &[u8]) -> Vec<ReceiptVerifyError> {
    let aws = verifier(AwsLc, p)
        .verify_bundle(bytes, None, None, NOW)
        .map(|_| ())
        .map_err(|f| f.0);
    let rc = verifier(RustCrypto, p)
        .verify_bundle(bytes, None, None, NOW)
        .map(|_| ())
        .map_err(|f| f.0);
    assert_eq!(aws, rc, "backends disagree");
    aws.err().unwrap_or_default()
}

#[test]
fn azure_bundle_works() {
    let p = platform();
    let a = agent();
    for hash in [
        HclHashType::Sha256,
        HclHashType::Sha384,
        HclHashType::Sha512,
    ] {
        for chain in [false, true] {
            let b = bundle(&a, &p, hcl_report(&p, &expected_rd(&a), hash), chain);
            let bytes = b.to_bytes();
            assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), b);
            assert_eq!(b.tee, TeeKind::SevSnp);
            // magic, version, tee (1 = SEV-SNP), key, nonce, then the variant index 4.
            assert_eq!((bytes[5], bytes[70]), (1, 4));
            assert!(failures(&p, &bytes).is_empty(), "{hash}");
            let v = verifier(AwsLc, &p)
                .verify_bundle(
                    &bytes,
                    Some(&a.verifying_key().to_bytes()),
                    Some(&NONCE),
                    NOW,
                )
                .unwrap();
            assert!(matches!(v.cpu, VerifiedCpu::SevSnp(ref ev) if ev.report.vmpl == 0));
            let o = check_bundle(
                &mut verifier(RustCrypto, &p),
                &bytes,
                None,
                None,
                &Policy::default(),
                NOW,
            );
            assert!(o.accepted(), "{:?}", o.reasons);
            let c = o.claims.unwrap();
            assert_eq!(c.tee, "sev-snp");
            let Some(CpuClaims::AzureSnpVtpm(az)) = &c.cpu else {
                panic!("{:?}", c.cpu)
            };
            assert_eq!(az.path, "azure-vtpm");
            assert_eq!(az.hcl.runtime_claims_hash, hash.name());
            assert_eq!(az.snp.product, "Milan");
            assert_eq!(az.hcl.user_data.as_deref(), Some(&*c.expected_report_data));
            assert_eq!(az.hcl.ak_pub.as_ref().unwrap().n, "tegZ0wAB");
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["cpu"]["kind"], "azure-snp-vtpm");
            assert_eq!(json["cpu"]["path"], "azure-vtpm");
            assert_eq!(json["cpu"]["measurement"], "11".repeat(48));
            assert_eq!(json["cpu"]["vm_configuration"]["secure-boot"], true);
        }
    }
}

#[test]
fn azure_receipt_works() {
    let p = platform();
    let a = agent();
    let b = bundle(
        &a,
        &p,
        hcl_report(&p, &expected_rd(&a), HclHashType::Sha256),
        false,
    );
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
            tee: TeeKind::SevSnp,
            digest: b.digest(&RustCrypto),
        },
    };
    let signed = |body: &ReceiptBody| {
        SignedReceipt::new(body, a.sign(&body.digest(&RustCrypto)).to_bytes()).to_bytes()
    };
    let o = check_receipt(
        &mut verifier(AwsLc, &p),
        &signed(&body),
        Some(&b.to_bytes()),
        &Policy::default(),
        NOW,
    );
    assert!(o.accepted(), "{:?}", o.reasons);
    // The [snp] policy applies to the report inside the HCL report.
    let policy = Policy::from_toml(&format!(
        "[snp]\nmeasurements = [\"{}\"]\n",
        "22".repeat(48)
    ))
    .unwrap();
    let o = check_receipt(
        &mut verifier(AwsLc, &p),
        &signed(&body),
        Some(&b.to_bytes()),
        &policy,
        NOW,
    );
    assert!(
        o.reasons.iter().any(|r| r.contains("snp.measurements")),
        "{:?}",
        o.reasons
    );
    // A receipt that says TDX does not take SEV-SNP evidence.
    body.evidence.tee = TeeKind::Tdx;
    let f = verifier(AwsLc, &p)
        .verify(&signed(&body), Some(&b.to_bytes()), NOW)
        .unwrap_err();
    assert!(
        f.0.iter()
            .any(|e| matches!(e, ReceiptVerifyError::TeeMismatch { .. })),
        "{f}"
    );
}

#[test]
fn azure_user_data_for_other_nonce_rejects() {
    // A genuine, self-consistent HCL report whose user data binds another nonce.
    let p = platform();
    let a = agent();
    let other = report_data(
        &RustCrypto,
        &a.verifying_key().to_bytes(),
        &[0; 32],
        &[6; 32],
    );
    let b = bundle(&a, &p, hcl_report(&p, &other, HclHashType::Sha256), false);
    let f = failures(&p, &b.to_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        matches!(&f[0], ReceiptVerifyError::AzureHcl(HclBindingError::UserDataMismatch { expected, found })
            if *expected == hex::encode(expected_rd(&a)) && *found == hex::encode(other)),
        "{f:?}"
    );
}

#[test]
fn azure_claims_not_in_report_data_rejects() {
    // Claims swapped after the report was made (the SNP signature still holds:
    // it covers the report, not the claims).
    let p = platform();
    let a = agent();
    let stale = hcl_report(&p, &[0; 64], HclHashType::Sha256);
    let parsed = parse_hcl_report(&stale).unwrap();
    let forged = encode_hcl_report(
        &parsed.snp_report,
        HclHashType::Sha256,
        &claims_json(&expected_rd(&a)),
    )
    .unwrap();
    let f = failures(&p, &bundle(&a, &p, forged, false).to_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        matches!(
            &f[0],
            ReceiptVerifyError::AzureHcl(HclBindingError::ClaimsDigest {
                hash: HclHashType::Sha256,
                ..
            })
        ),
        "{f:?}"
    );
    // The same claims declared with another hash algorithm.
    let mut relabelled = hcl_report(&p, &expected_rd(&a), HclHashType::Sha256);
    relabelled[1228..1232].copy_from_slice(&HclHashType::Sha384.value().to_le_bytes());
    let f = failures(&p, &bundle(&a, &p, relabelled, false).to_bytes());
    assert!(
        matches!(
            f.as_slice(),
            [ReceiptVerifyError::AzureHcl(
                HclBindingError::ClaimsDigest {
                    hash: HclHashType::Sha384,
                    ..
                }
            )]
        ),
        "{f:?}"
    );
}

#[test]
fn azure_without_user_data_rejects() {
    let p = platform();
    let a = agent();
    let claims = br#"{"keys":[],"vm-configuration":{"secure-boot":true}}"#;
    let rd = claims_report_data(&RustCrypto, HclHashType::Sha256, claims);
    let hcl =
        encode_hcl_report(&snp_report(&p.vcek_key, &rd), HclHashType::Sha256, claims).unwrap();
    let f = failures(&p, &bundle(&a, &p, hcl, false).to_bytes());
    assert!(
        matches!(
            f.as_slice(),
            [ReceiptVerifyError::AzureHcl(
                HclBindingError::UserDataMissing
            )]
        ),
        "{f:?}"
    );
}

#[test]
fn azure_tampered_or_malformed_rejects() {
    let p = platform();
    let a = agent();
    let good = hcl_report(&p, &expected_rd(&a), HclHashType::Sha256);
    // A flipped measurement bit: the SNP signature fails.
    let mut tampered = good.clone();
    tampered[32 + 0x90] ^= 1;
    let f = failures(&p, &bundle(&a, &p, tampered, false).to_bytes());
    assert!(
        f.iter().any(|e| matches!(
            e,
            ReceiptVerifyError::Snp(SnpVerifyError::ReportSignature { .. })
        )),
        "{f:?}"
    );
    // A TDX HCL report: refused by type.
    let mut tdx = good.clone();
    tdx[1224..1228].copy_from_slice(&4u32.to_le_bytes());
    let f = failures(&p, &bundle(&a, &p, tdx, false).to_bytes());
    assert!(
        matches!(
            f.as_slice(),
            [ReceiptVerifyError::AzureHclParse(
                HclParseError::UnsupportedReportType { value: 4, .. }
            )]
        ),
        "{f:?}"
    );
    // Not an HCL report at all (a raw SNP report in the Azure variant).
    let raw = good[32..32 + REPORT_LEN].to_vec();
    let f = failures(&p, &bundle(&a, &p, raw, false).to_bytes());
    assert!(
        matches!(
            f.as_slice(),
            [ReceiptVerifyError::AzureHclParse(HclParseError::Signature(
                _
            ))]
        ),
        "{f:?}"
    );
    // A bundle that labels Azure evidence as TDX does not decode.
    let mut b = bundle(&a, &p, good, false);
    b.tee = TeeKind::Tdx;
    assert!(EvidenceBundle::from_bytes(&b.to_bytes()).is_err());
}

fn real_case() -> common::Case {
    common::cases("snp")
        .into_iter()
        .find(|c| c.name == "milan-v2-azure-hcl")
        .expect("vector milan-v2-azure-hcl")
}

/// The real Azure SNP report inside an HCL report with claims of our own: its
/// REPORT_DATA commits to claims we do not have, so only the binding fails.
fn real_bundle(a: &SigningKey) -> (Vec<u8>, u64) {
    let case = real_case();
    let hcl = encode_hcl_report(
        &case.file("report.bin"),
        HclHashType::Sha256,
        &claims_json(&expected_rd(a)),
    )
    .unwrap();
    let b = EvidenceBundle::new(
        a.verifying_key().to_bytes(),
        NONCE,
        CpuEvidence::AzureSnpVtpm {
            hcl_report: hcl,
            vek: case.file("vcek.der"),
            intermediate: None,
            ark: None,
        },
        vec![],
    );
    (b.to_bytes(), case.verification_time())
}

#[test]
fn real_azure_report_verifies_but_does_not_bind_rejects() {
    let a = agent();
    let (bytes, at) = real_bundle(&a);
    let case = real_case();
    let facts = case.facts().unwrap();
    for f in [
        ReceiptVerifier::new(AwsLc)
            .unwrap()
            .verify_bundle(&bytes, None, None, UnixTime(at))
            .unwrap_err()
            .0,
        ReceiptVerifier::new(RustCrypto)
            .unwrap()
            .verify_bundle(&bytes, None, None, UnixTime(at))
            .unwrap_err()
            .0,
    ] {
        // Pinned AMD roots, real chain and signature: no SNP failure.
        assert_eq!(f.len(), 1, "{f:?}");
        let ReceiptVerifyError::AzureHcl(HclBindingError::ClaimsDigest { found, .. }) = &f[0]
        else {
            panic!("{f:?}")
        };
        assert_eq!(found, facts["report_data"].as_str().unwrap());
    }
    // A real Azure report's REPORT_DATA has the shape of a SHA-256 claims digest.
    let rd = hex::decode(facts["report_data"].as_str().unwrap()).unwrap();
    assert!(rd[32..].iter().all(|&b| b == 0));
}

#[test]
fn cli_bundle_reads_azure_evidence_works() {
    let a = agent();
    let (bytes, _) = real_bundle(&a);
    let dir = std::env::temp_dir().join(format!("sigil-azure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bundle.bin");
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args([
            "bundle",
            "--bundle",
            path.to_str().unwrap(),
            "--at",
            "2023-06-01T21:22:19Z",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "rejected");
    let reasons = json["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].as_str().unwrap().contains("runtime claims"));
    assert_eq!(json["claims"]["cpu"]["path"], "azure-vtpm");
    assert_eq!(json["claims"]["cpu"]["product"], "Milan");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- the bundle's vTPM quote (measured.tpm_quote) ----

mod vtpm {
    use super::*;
    use attestation_verifier::bundle::{MeasuredBoot, TpmQuote};
    use attestation_verifier::verify::azure_vtpm::{VtpmQuoteError, tpm_quote_qualifying_data};
    use vtpm_support::Vtpm;

    /// An Azure bundle whose HCL claims publish `vtpm`'s key, carrying `quote`.
    pub(super) fn quoted_bundle(
        a: &SigningKey,
        p: &Platform,
        vtpm: &Vtpm,
        quote: Option<TpmQuote>,
    ) -> EvidenceBundle {
        let claims = vtpm.claims(&expected_rd(a));
        let rd = claims_report_data(&RustCrypto, HclHashType::Sha256, &claims);
        let hcl =
            encode_hcl_report(&snp_report(&p.vcek_key, &rd), HclHashType::Sha256, &claims).unwrap();
        bundle(a, p, hcl, false).with_measured(MeasuredBoot {
            tpm_quote: quote,
            ..MeasuredBoot::default()
        })
    }

    fn pcr_policy(index: u8, value: u8) -> Policy {
        Policy::from_toml(&format!(
            "[vtpm]\npcrs = [{{ index = {index}, sha256 = \"{}\" }}]\n",
            hex::encode([value; 32])
        ))
        .unwrap()
    }

    #[test]
    fn azure_bundle_tpm_quote_works() {
        let p = platform();
        let a = agent();
        let t = Vtpm::new();
        let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
        let b = quoted_bundle(&a, &p, &t, Some(t.quote(&qd)));
        let bytes = b.to_bytes();
        assert!(failures(&p, &bytes).is_empty());
        let v = verifier(AwsLc, &p)
            .verify_bundle(&bytes, None, None, NOW)
            .unwrap();
        let q = v.tpm_quote.as_ref().unwrap();
        assert_eq!(q.pcr(7), Some(&[7; 32]));
        assert_eq!(q.nonce(), qd);
        for c in [&AwsLc as &dyn Crypto, &RustCrypto] {
            assert_eq!(tpm_quote_qualifying_data(c, &expected_rd(&a)), qd);
        }
        // The PCRs are claims, and [vtpm] pcrs appraises them.
        let o = check_bundle(
            &mut verifier(RustCrypto, &p),
            &bytes,
            None,
            None,
            &pcr_policy(7, 7),
            NOW,
        );
        assert!(o.accepted(), "{:?}", o.reasons);
        let c = serde_json::to_value(o.claims.unwrap()).unwrap();
        assert_eq!(c["cpu"]["tpm_quote"]["pcrs"]["pcr07"], "07".repeat(32));
        assert_eq!(c["cpu"]["tpm_quote"]["nonce"], hex::encode(qd));
        let o = check_bundle(
            &mut verifier(RustCrypto, &p),
            &bytes,
            None,
            None,
            &pcr_policy(7, 8),
            NOW,
        );
        assert!(!o.accepted());
        assert!(
            o.reasons
                .iter()
                .any(|r| r.contains("vtpm.pcrs") && r.contains(&"08".repeat(32))),
            "{:?}",
            o.reasons
        );
    }

    #[test]
    fn azure_bundle_tpm_quote_rejects() {
        let p = platform();
        let a = agent();
        let t = Vtpm::new();
        let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
        // Qualifying data that is not the bundle's: the raw nonce.
        let b = quoted_bundle(&a, &p, &t, Some(t.quote(&NONCE)));
        let f = failures(&p, &b.to_bytes());
        assert_eq!(
            f,
            [ReceiptVerifyError::VtpmQuote(
                VtpmQuoteError::NonceMismatch {
                    expected: hex::encode(qd),
                    found: hex::encode(NONCE),
                }
            )]
        );
        // Signed by another key than the one the HCL report publishes.
        let other = Vtpm::new();
        let b = quoted_bundle(&a, &p, &t, Some(other.quote(&qd)));
        assert!(matches!(
            failures(&p, &b.to_bytes()).as_slice(),
            [ReceiptVerifyError::VtpmQuote(VtpmQuoteError::Signature(_))]
        ));
        // A PCR value changed after quoting.
        let mut q = t.quote(&qd);
        q.pcrs[7][0] ^= 1;
        let b = quoted_bundle(&a, &p, &t, Some(q));
        assert!(matches!(
            failures(&p, &b.to_bytes()).as_slice(),
            [ReceiptVerifyError::VtpmQuote(
                VtpmQuoteError::PcrDigest { .. }
            )]
        ));
        // Not RSASSA.
        let mut q = t.quote(&qd);
        q.signature[1] = 0x18;
        let b = quoted_bundle(&a, &p, &t, Some(q));
        assert!(matches!(
            failures(&p, &b.to_bytes()).as_slice(),
            [ReceiptVerifyError::VtpmQuote(
                VtpmQuoteError::SignatureParse(_)
            )]
        ));
        // A PCR rule without a quote.
        let b = quoted_bundle(&a, &p, &t, None);
        assert!(failures(&p, &b.to_bytes()).is_empty());
        let o = check_bundle(
            &mut verifier(AwsLc, &p),
            &b.to_bytes(),
            None,
            None,
            &pcr_policy(0, 0),
            NOW,
        );
        assert!(
            o.reasons
                .iter()
                .any(|r| r.contains("vtpm.pcrs") && r.contains("no verified vTPM quote")),
            "{:?}",
            o.reasons
        );
        // A quote with SEV-SNP evidence that has no vTPM.
        let rd = expected_rd(&a);
        let plain = EvidenceBundle::new(
            a.verifying_key().to_bytes(),
            NONCE,
            CpuEvidence::SevSnp {
                report: snp_report(&p.vcek_key, &rd),
                vek: p.vcek.clone(),
                intermediate: None,
                ark: None,
            },
            vec![],
        )
        .with_measured(MeasuredBoot {
            tpm_quote: Some(t.quote(&qd)),
            ..MeasuredBoot::default()
        });
        assert_eq!(
            failures(&p, &plain.to_bytes()),
            [ReceiptVerifyError::TpmQuoteWithoutVtpm(TeeKind::SevSnp)]
        );
    }

    // ---- the vTPM's event log beside the quote ----

    use attestation_verifier::eventlog::EventLogError;
    use attestation_verifier::verify::measured::MeasuredBootError;

    /// An Azure bundle carrying `log` and a quote of the PCRs `quoted` replays to.
    fn logged_bundle(
        a: &SigningKey,
        p: &Platform,
        t: &Vtpm,
        log: Vec<u8>,
        quoted: &[LogEvent],
    ) -> EvidenceBundle {
        let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(a));
        let pcrs = tcg_log::replay(quoted).iter().map(|p| p.to_vec()).collect();
        let mut b = quoted_bundle(a, p, t, Some(t.quote_pcrs(&qd, pcrs)));
        b.measured.event_log = Some(log);
        b
    }

    fn replay_failures(f: &[ReceiptVerifyError]) -> Vec<&EventLogError> {
        f.iter()
            .map(|e| match e {
                ReceiptVerifyError::MeasuredBoot(MeasuredBootError::Replay(r)) => r,
                other => panic!("not a replay failure: {other}"),
            })
            .collect()
    }

    #[test]
    fn azure_bundle_event_log_works() {
        let p = platform();
        let a = agent();
        let t = Vtpm::new();
        let events = tcg_log::sample_boot();
        let b = logged_bundle(&a, &p, &t, tcg_log::log(&events), &events);
        let bytes = b.to_bytes();
        assert!(failures(&p, &bytes).is_empty());
        let v = verifier(AwsLc, &p)
            .verify_bundle(&bytes, None, None, NOW)
            .unwrap();
        let m = v.measured.as_ref().unwrap().get();
        assert_eq!(m.pcrs_covered, (0..=8).collect::<Vec<u8>>());
        let boot_app = &events[10];
        assert!(m.has_pcr_event(4, &boot_app.sha256));
        assert!(!m.has_pcr_event(5, &boot_app.sha256));
        // The events are claims.
        let o = check_bundle(
            &mut verifier(RustCrypto, &p),
            &bytes,
            None,
            None,
            &Policy::default(),
            NOW,
        );
        let c = serde_json::to_value(o.claims.unwrap()).unwrap();
        let mb = &c["measured_boot"];
        assert_eq!(mb["verified"], true, "{mb}");
        assert_eq!(mb["log_format"], "tpm");
        assert_eq!(mb["covered"][4], "pcr04");
        assert_eq!(mb["pcr_events"].as_array().unwrap().len(), events.len());
        let e = &mb["pcr_events"][10];
        assert_eq!(e["pcr"], 4);
        assert_eq!(e["event_type_name"], "EV_EFI_BOOT_SERVICES_APPLICATION");
        assert_eq!(e["sha256"], hex::encode(boot_app.sha256));
        assert!(
            e["description"].as_str().unwrap().contains("BOOTX64.EFI"),
            "{e}"
        );
        assert_eq!(mb["pcr_events"][0]["extends"], false); // StartupLocality

        // [vtpm] events pins the boot application's event.
        let events_policy = |pcr: u8, digest: &[u8; 32]| {
            Policy::from_toml(&format!(
                "[vtpm]\nevents = [{{ pcr = {pcr}, digest = \"{}\" }}]\n",
                hex::encode(digest)
            ))
            .unwrap()
        };
        let o = check_bundle(
            &mut verifier(AwsLc, &p),
            &bytes,
            None,
            None,
            &events_policy(4, &boot_app.sha256),
            NOW,
        );
        assert!(o.accepted(), "{:?}", o.reasons);
        // The same digest on another PCR, or another digest: rejected, named.
        for (pcr, digest) in [(5, boot_app.sha256), (4, [7u8; 32])] {
            let o = check_bundle(
                &mut verifier(RustCrypto, &p),
                &bytes,
                None,
                None,
                &events_policy(pcr, &digest),
                NOW,
            );
            assert!(
                o.reasons.iter().any(|r| r.contains("vtpm.events")
                    && r.contains(&format!(
                        "no event extends PCR{pcr} with {}",
                        hex::encode(digest)
                    ))),
                "{:?}",
                o.reasons
            );
        }
        // A bundle with the quote but no log: no verified log to hold the event.
        let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
        let pcrs = tcg_log::replay(&events)
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let no_log = quoted_bundle(&a, &p, &t, Some(t.quote_pcrs(&qd, pcrs))).to_bytes();
        let o = check_bundle(
            &mut verifier(RustCrypto, &p),
            &no_log,
            None,
            None,
            &events_policy(4, &boot_app.sha256),
            NOW,
        );
        assert!(
            o.reasons
                .iter()
                .any(|r| r.contains("vtpm.events") && r.contains("no verified vTPM event log")),
            "{:?}",
            o.reasons
        );
    }

    #[test]
    fn azure_bundle_event_log_rejects() {
        let p = platform();
        let a = agent();
        let t = Vtpm::new();
        let events = tcg_log::sample_boot();

        // One event changed: its PCR is named.
        let mut changed = events.clone();
        changed[10].sha256[0] ^= 1;
        let b = logged_bundle(&a, &p, &t, tcg_log::log(&changed), &events);
        let f = failures(&p, &b.to_bytes());
        let r = replay_failures(&f);
        assert!(
            matches!(r.as_slice(), [EventLogError::PcrMismatch { pcr: 4, .. }]),
            "{r:?}"
        );

        // One event moved after another of its PCR.
        let mut ordered = events.clone();
        ordered.push(LogEvent::measured(8, tcg_log::EV_IPL, b"initrd"));
        let mut reordered = ordered.clone();
        let n = reordered.len();
        reordered.swap(n - 1, n - 2);
        let b = logged_bundle(&a, &p, &t, tcg_log::log(&reordered), &ordered);
        let f = failures(&p, &b.to_bytes());
        assert!(
            matches!(
                replay_failures(&f).as_slice(),
                [EventLogError::PcrMismatch { pcr: 8, .. }]
            ),
            "{f:?}"
        );

        // A quote whose PCRs the log does not produce: every extended PCR is named.
        let qd = tpm_quote_qualifying_data(&RustCrypto, &expected_rd(&a));
        let mut b = quoted_bundle(&a, &p, &t, Some(t.quote(&qd)));
        b.measured.event_log = Some(tcg_log::log(&events));
        let f = failures(&p, &b.to_bytes());
        let named: Vec<u8> = replay_failures(&f)
            .iter()
            .map(|e| match e {
                EventLogError::PcrMismatch { pcr, .. } => *pcr,
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(named, (0..=8).collect::<Vec<u8>>());

        // Truncated and garbage logs: typed parse errors.
        let good = tcg_log::log(&events);
        for bad in [good[..good.len() - 3].to_vec(), b"not a TCG log".to_vec()] {
            let b = logged_bundle(&a, &p, &t, bad, &events);
            let f = failures(&p, &b.to_bytes());
            assert!(
                matches!(
                    f.as_slice(),
                    [ReceiptVerifyError::MeasuredBoot(MeasuredBootError::Log(_))]
                ),
                "{f:?}"
            );
        }

        // A log without a quote: nothing to replay it against.
        let mut b = quoted_bundle(&a, &p, &t, None);
        b.measured.event_log = Some(good.clone());
        assert_eq!(
            failures(&p, &b.to_bytes()),
            [ReceiptVerifyError::MeasuredBoot(
                MeasuredBootError::NoTpmQuote
            )]
        );

        // A log beside plain (non-Azure) SEV-SNP evidence is still refused.
        let rd = expected_rd(&a);
        let plain = EvidenceBundle::new(
            a.verifying_key().to_bytes(),
            NONCE,
            CpuEvidence::SevSnp {
                report: snp_report(&p.vcek_key, &rd),
                vek: p.vcek.clone(),
                intermediate: None,
                ark: None,
            },
            vec![],
        )
        .with_measured(MeasuredBoot {
            event_log: Some(good),
            ..MeasuredBoot::default()
        });
        assert!(matches!(
            failures(&p, &plain.to_bytes()).as_slice(),
            [ReceiptVerifyError::MeasuredBoot(
                MeasuredBootError::NoRegisters { .. }
            )]
        ));
    }
}
