//! The Azure vTPM backend on a TDX VM: the fake vTPM's paravisor issues HCL reports
//! carrying a TD report whose REPORTDATA is the claims' digest, a fake quoting service
//! (IMDS `/acc/tdquote`) signs TD quotes of them with a test Intel PKI, and the bundles
//! go through the verifier with that PKI's root and collateral.

use attestation_verifier::evidence::azure_hcl::encode_hcl_report_tdx;
use attestation_verifier::verify::tdx::{TdxCollateral, TdxCollateralParts, TdxTrustAnchor};
use p256::ecdsa::SigningKey as P256Key;
use sigil_test_support::tdx::{IntelPki, Spec, assemble, collateral_files, pck_cert, pem};

use super::*;
use crate::collateral::tdx::TdxCollateralSource;

/// 2029-06-15: inside the synthetic Intel collateral's window.
const TDX_NOW: UnixTime = UnixTime(1_876_176_000);
/// Where REPORTDATA sits in a TD report (REPORTMACSTRUCT).
const TD_REPORT_DATA: std::ops::Range<usize> = 128..192;

/// A TD report as the TDX module makes it for `report_data` (the rest is filler: only
/// the quote made of it is verified).
fn td_report(report_data: &[u8; 64]) -> Vec<u8> {
    let mut r = vec![0x7D; TD_REPORT_LEN];
    r[TD_REPORT_DATA].copy_from_slice(report_data);
    r
}

/// The paravisor's part on a TDX VM: an HCL report whose TD report commits to claims
/// carrying `user_data` and the attestation key `(e, n)`, padded to the NV index size.
pub(super) fn paravisor_tdx_report(user_data: &[u8], ak: (&str, &str)) -> Vec<u8> {
    let claims = claims_json(user_data, ak);
    let rd = claims_report_data(&RustCrypto, HclHashType::Sha256, claims.as_bytes());
    let mut b =
        encode_hcl_report_tdx(&td_report(&rd), HclHashType::Sha256, claims.as_bytes()).unwrap();
    b.resize(HCL_NV_SIZE, 0);
    b
}

/// Azure's quoting service, signing with a test Intel PKI.
struct FakeQuoting {
    pki: IntelPki,
    chain: String,
    pck_key: P256Key,
    att_key: P256Key,
    /// The TD reports it was given.
    seen: Mutex<Vec<Vec<u8>>>,
    /// Quote this REPORT_DATA whatever the TD report says.
    forced: Option<[u8; 64]>,
}

impl FakeQuoting {
    fn new(forced: Option<[u8; 64]>) -> Arc<Self> {
        let pki = IntelPki::new();
        let (pck_der, pck_key) = pck_cert(&Spec::default(), &pki.platform_ca);
        let chain = format!(
            "{}{}{}",
            pem(&pck_der),
            pem(pki.platform_ca.der()),
            pem(pki.root.der())
        );
        Arc::new(Self {
            pki,
            chain,
            pck_key,
            att_key: P256Key::from_slice(&[7u8; 32]).unwrap(),
            seen: Mutex::new(Vec::new()),
            forced,
        })
    }

    /// The collateral of its quotes, as the verifier's JSON.
    fn collateral_json(&self) -> Vec<u8> {
        let f = collateral_files(
            &self.pki,
            &Spec::default(),
            &self.pki.tcb_der,
            &self.pki.tcb_key,
        );
        TdxCollateral::new(TdxCollateralParts {
            pck_crl_issuer_chain: f.pck_crl_issuer_chain,
            root_ca_crl: f.root_ca_crl,
            pck_crl: f.pck_crl,
            tcb_info_issuer_chain: f.tcb_info_issuer_chain,
            tcb_info_signature: f.tcb_info_signature,
            tcb_info: f.tcb_info,
            qe_identity_issuer_chain: f.qe_identity_issuer_chain,
            qe_identity_signature: f.qe_identity_signature,
            qe_identity: f.qe_identity,
        })
        .to_json()
        .unwrap()
        .into_bytes()
    }
}

impl TdQuoteSource for FakeQuoting {
    fn td_quote(&self, td_report: &[u8]) -> Result<Vec<u8>, TdQuoteError> {
        assert_eq!(td_report.len(), TD_REPORT_LEN);
        self.seen.lock().unwrap().push(td_report.to_vec());
        let report_data = self
            .forced
            .unwrap_or_else(|| td_report[TD_REPORT_DATA].try_into().unwrap());
        let spec = Spec {
            report_data,
            ..Spec::default()
        };
        Ok(assemble(
            &spec,
            &self.chain,
            &self.att_key,
            &self.pck_key,
            None,
        ))
    }
}

/// A quoting service that answers with `answer`.
struct Answering(fn() -> Result<Vec<u8>, TdQuoteError>);

impl TdQuoteSource for Answering {
    fn td_quote(&self, _: &[u8]) -> Result<Vec<u8>, TdQuoteError> {
        (self.0)()
    }
}

/// Fixed collateral.
struct StaticCollateral(Vec<u8>);

impl TdxCollateralSource for StaticCollateral {
    fn collateral(&self, _: &[u8]) -> Result<Vec<u8>, CollateralError> {
        Ok(self.0.clone())
    }
}

/// A TDX VM's vTPM (answering quotes with its AK).
fn tdx_tpm() -> FakeTpm {
    let p = pki();
    let mut tpm = FakeTpm::new(Arc::clone(&p.vcek_key), false);
    tpm.tdx = true;
    let r = tpm.report(&[0; 64]);
    tpm.state.lock().unwrap().nv.insert(HCL_REPORT_NV_INDEX, r);
    tpm.with_ak()
}

fn source(tpm: &FakeTpm, quoting: Box<dyn TdQuoteSource>) -> AzureVtpmSource {
    let all: Vec<u8> = (0..PCR_COUNT).collect();
    AzureVtpmSource::new(Box::new(tpm.clone()), Box::new(NoVcek))
        .with_td_quotes(quoting)
        .with_tpm_quote(&all)
        .with_poll(no_wait(3))
        .probed()
        .unwrap()
}

fn tdx_verifier<C: attestation_verifier::crypto::Crypto + Clone>(
    c: C,
    q: &FakeQuoting,
) -> ReceiptVerifier<C> {
    ReceiptVerifier::with_verifiers(
        SnpVerifier::new(c.clone()).unwrap(),
        TdxVerifier::with_trust_anchor(
            c.clone(),
            TdxTrustAnchor::from_der(q.pki.root.der()).unwrap(),
        ),
        NvGpuVerifier::new(c).unwrap(),
    )
}

#[test]
fn azure_tdx_evidence_verifies_works() {
    let tpm = tdx_tpm();
    let quoting = FakeQuoting::new(None);
    let s = source(&tpm, Box::new(Arc::clone(&quoting)))
        .with_tdx_collateral(Box::new(StaticCollateral(quoting.collateral_json())));
    assert_eq!(s.tee(), TeeKind::Tdx);
    let attestor = Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(s)),
        None,
        Vec::new(),
    );
    assert_eq!(attestor.tee(), TeeKind::Tdx);
    assert_eq!(attestor.backend(), Some("azure-vtpm"));
    for nonce in [[1u8; 32], [2u8; 32]] {
        let bundle = attestor.attest(nonce).unwrap();
        let (key, sealing) = (attestor.public_key(), attestor.sealing_public_key());
        let rd = binding::Binding::V2 {
            agent_key: &key,
            sealing_key: &sealing,
        }
        .report_data(&RustCrypto, &[0; 32], &nonce);
        assert_eq!(tpm.state.lock().unwrap().written.last().unwrap(), &rd);
        assert_eq!(bundle.tee, TeeKind::Tdx);
        let CpuEvidence::AzureTdxVtpm {
            hcl_report,
            collateral_json,
            ..
        } = &bundle.cpu
        else {
            panic!("{:?}", bundle.cpu)
        };
        // Trimmed; the TD report the service was given is the one inside it.
        assert!(hcl_report.len() < HCL_NV_SIZE);
        assert_eq!(
            quoting.seen.lock().unwrap().last().unwrap(),
            &hcl_report[32..32 + TD_REPORT_LEN]
        );
        assert!(collateral_json.is_some());
        assert!(bundle.measured.tpm_quote.is_some());
        let bytes = bundle.to_bytes();
        assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), bundle);
        for outcome in [
            check_bundle(
                &mut tdx_verifier(AwsLc, &quoting),
                &bytes,
                Some(&key),
                Some(&nonce),
                &Policy::default(),
                TDX_NOW,
            ),
            check_bundle(
                &mut tdx_verifier(RustCrypto, &quoting),
                &bytes,
                Some(&key),
                Some(&nonce),
                &Policy::default(),
                TDX_NOW,
            ),
        ] {
            assert!(outcome.accepted(), "{:?}", outcome.reasons);
            let c = outcome.claims.unwrap();
            let Some(CpuClaims::AzureTdxVtpm(az)) = c.cpu else {
                panic!()
            };
            assert_eq!(az.hcl.user_data, Some(hex::encode(rd)));
            assert!(az.hcl.tpm_quote.is_some());
        }
    }
    // Without a collateral source the bundle carries none: the verifier says so.
    let s = source(&tpm, Box::new(Arc::clone(&quoting)));
    let bundle = Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(s)),
        None,
        Vec::new(),
    )
    .attest([3; 32])
    .unwrap();
    let f = tdx_verifier(AwsLc, &quoting)
        .verify_bundle(&bundle.to_bytes(), None, None, TDX_NOW)
        .unwrap_err();
    assert_eq!(
        f.0,
        [attestation_verifier::ReceiptVerifyError::TdxCollateralMissing]
    );
}

#[test]
fn azure_tdx_evidence_rejects() {
    let tpm = tdx_tpm();
    let rd = [0x42u8; 64];
    // No quoting service configured.
    let s = AzureVtpmSource::new(Box::new(tpm.clone()), Box::new(NoVcek))
        .with_poll(no_wait(3))
        .probed()
        .unwrap();
    assert!(matches!(
        s.collect(&rd),
        Err(EvidenceError::Unavailable { ref reason, .. }) if reason.contains("TD quote source")
    ));
    // A quote of another TD report (its REPORT_DATA is not the claims' digest).
    let s = source(&tpm, Box::new(FakeQuoting::new(Some([0x11; 64]))));
    let e = s.collect(&rd).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Unusable { tee: TeeKind::Tdx, detail } if detail.contains("TD quote") && detail.contains("digest")),
        "{e}"
    );
    // Not a quote.
    let s = source(&tpm, Box::new(Answering(|| Ok(vec![4; 700]))));
    let e = s.collect(&rd).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Unusable { tee: TeeKind::Tdx, detail } if detail.starts_with("TD quote:")),
        "{e}"
    );
    // The service fails.
    let s = source(
        &tpm,
        Box::new(Answering(|| {
            Err(TdQuoteError::Status {
                url: "http://169.254.169.254/acc/tdquote".into(),
                status: 503,
            })
        })),
    );
    let e = s.collect(&rd).unwrap_err();
    assert!(
        matches!(
            e,
            EvidenceError::TdQuote(TdQuoteError::Status { status: 503, .. })
        ),
        "{e}"
    );
    // A source opened on an SEV-SNP VM whose paravisor now reports TDX.
    let snp = FakeTpm::new(Arc::clone(&pki().vcek_key), false);
    let s = AzureVtpmSource::new(Box::new(snp.clone()), Box::new(NoVcek))
        .with_poll(no_wait(3))
        .probed()
        .unwrap();
    assert_eq!(s.tee(), TeeKind::SevSnp);
    let mut tdx_now = snp.clone();
    tdx_now.tdx = true;
    let r = tdx_now.report(&[0; 64]);
    snp.state.lock().unwrap().nv.insert(HCL_REPORT_NV_INDEX, r);
    let e = AzureVtpmSource::new(Box::new(tdx_now), Box::new(NoVcek))
        .with_poll(no_wait(3))
        .collect(&rd)
        .unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Unusable { tee: TeeKind::SevSnp, detail } if detail.contains("type 4")),
        "{e}"
    );
}
