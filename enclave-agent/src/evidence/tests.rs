//! Backends tested through their parsing and file protocol on real evidence from
//! `../shared/vectors` (override: `SIGIL_VECTORS`); the kernel and devices are
//! stood in for by fakes that return those bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::evidence::snp::parse_snp_report;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::receipt::TeeKind;

use super::backend::nvidia_gpu::GpuEvidenceSource;
use super::backend::snp::{SevGuestDevice, SevGuestSource};
use super::backend::tsm::{StdFs, TsmFs, TsmSource};
use super::certtable::*;
use super::detect::{Backend, DetectOptions, open_source};
use super::{EvidenceError, EvidenceSource};

pub(crate) use sigil_test_support::{vector, vectors_dir as vectors};

fn pem_der(path: &str) -> Vec<u8> {
    pem::parse(vector(path)).unwrap().into_contents()
}

const SNP: &str = "snp/milan-v3-oak-oc-release";
const TDX: &str = "tdx/tdx-v4-dcap-qvl-sample";

fn snp_report() -> (Vec<u8>, [u8; 64]) {
    let r = vector(&format!("{SNP}/report.bin"));
    let rd = parse_snp_report(&r).unwrap().report_data;
    (r, rd)
}

fn snp_table() -> Vec<u8> {
    build_cert_table(&[
        (ASK_GUID, &pem_der(&format!("{SNP}/ask.pem"))),
        (VCEK_GUID, &vector(&format!("{SNP}/vcek.der"))),
        (ARK_GUID, &pem_der(&format!("{SNP}/ark.pem"))),
    ])
}

// ---- certificate table ----

#[test]
fn cert_table_round_trip_works() {
    let t = snp_table();
    let c = parse_cert_table(&t).unwrap();
    assert_eq!(c.vcek.unwrap(), vector(&format!("{SNP}/vcek.der")));
    assert_eq!(c.ask.unwrap(), pem_der(&format!("{SNP}/ask.pem")));
    assert_eq!(c.ark.unwrap(), pem_der(&format!("{SNP}/ark.pem")));
    assert!(c.vlek.is_none());
}

#[test]
fn cert_table_guid_bytes_match_string_form_works() {
    // 63da758d-e664-4564-adc5-f4b93be8accd
    assert_eq!(hex::encode(VCEK_GUID), "63da758de6644564adc5f4b93be8accd");
    assert_eq!(hex::encode(ARK_GUID), "c0b406a4a803495297433fb6014cd0ae");
}

#[test]
fn cert_table_skips_unknown_guids_works() {
    let t = build_cert_table(&[([0x42; 16], b"other"), (VLEK_GUID, b"vlek")]);
    let c = parse_cert_table(&t).unwrap();
    assert_eq!(c.vlek.as_deref(), Some(&b"vlek"[..]));
    assert!(c.vcek.is_none());
}

#[test]
fn cert_table_malformed_rejects() {
    let t = snp_table();
    // Cut inside the first entry.
    assert_eq!(parse_cert_table(&t[..20]), Err(CertTableError::Truncated));
    // A complete first entry whose certificate lies beyond the cut.
    assert!(matches!(
        parse_cert_table(&t[..30]),
        Err(CertTableError::OutOfRange { index: 0, .. })
    ));
    assert_eq!(parse_cert_table(&[]), Err(CertTableError::Truncated));
    // Entry pointing past the end.
    let mut bad = t.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        parse_cert_table(&bad),
        Err(CertTableError::OutOfRange { index: 0, .. })
    ));
    let dup = build_cert_table(&[(VCEK_GUID, b"a"), (VCEK_GUID, b"b")]);
    assert_eq!(
        parse_cert_table(&dup),
        Err(CertTableError::Duplicate("VCEK"))
    );
    // 64 non-zero entries and no terminator.
    let mut many = Vec::new();
    for _ in 0..70 {
        many.extend([0x42u8; 16]);
        many.extend(0u32.to_le_bytes());
        many.extend(0u32.to_le_bytes());
    }
    assert_eq!(parse_cert_table(&many), Err(CertTableError::Truncated));
}

// ---- configfs-tsm ----

/// Stands in for the kernel on a real directory: `mkdir` makes the entry with
/// `provider` and `generation`; a write to `inblob` produces `outblob` (and
/// `auxblob`) and bumps `generation`, as configfs-tsm does.
struct KernelSim {
    provider: &'static str,
    outblob: Vec<u8>,
    auxblob: Option<Vec<u8>>,
    /// Extra generation bumps on each inblob write (a concurrent writer).
    interfere: AtomicU64,
    writes: Mutex<Vec<Vec<u8>>>,
}

impl KernelSim {
    fn new(provider: &'static str, outblob: Vec<u8>, auxblob: Option<Vec<u8>>) -> Self {
        Self {
            provider,
            outblob,
            auxblob,
            interfere: AtomicU64::new(0),
            writes: Mutex::new(Vec::new()),
        }
    }
}

impl TsmFs for KernelSim {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        StdFs.mkdir(path)?;
        std::fs::write(path.join("provider"), format!("{}\n", self.provider))?;
        std::fs::write(path.join("generation"), "0\n")
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        // configfs removes the attributes with the directory.
        std::fs::remove_dir_all(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        StdFs.write(path, data)?;
        let dir = path.parent().unwrap();
        if path.file_name().unwrap() == "inblob" {
            self.writes.lock().unwrap().push(data.to_vec());
            let g: u64 = std::fs::read_to_string(dir.join("generation"))?
                .trim()
                .parse()
                .unwrap();
            let extra = self.interfere.load(Ordering::Relaxed);
            if extra > 0 {
                self.interfere.fetch_sub(1, Ordering::Relaxed);
            }
            std::fs::write(dir.join("generation"), format!("{}\n", g + 1 + extra))?;
            std::fs::write(dir.join("outblob"), &self.outblob)?;
            if let Some(a) = &self.auxblob {
                std::fs::write(dir.join("auxblob"), a)?;
            }
        }
        Ok(())
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        StdFs.read(path)
    }
}

fn tsm(sim: KernelSim) -> (tempfile::TempDir, Arc<KernelSim>, TsmSource) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(sim);
    struct Shared(Arc<KernelSim>);
    impl TsmFs for Shared {
        fn mkdir(&self, p: &Path) -> std::io::Result<()> {
            self.0.mkdir(p)
        }
        fn rmdir(&self, p: &Path) -> std::io::Result<()> {
            self.0.rmdir(p)
        }
        fn write(&self, p: &Path, d: &[u8]) -> std::io::Result<()> {
            self.0.write(p, d)
        }
        fn read(&self, p: &Path) -> std::io::Result<Vec<u8>> {
            self.0.read(p)
        }
    }
    let src =
        TsmSource::with_fs(Box::new(Shared(Arc::clone(&sim))), dir.path().to_path_buf()).unwrap();
    (dir, sim, src)
}

fn entries_left(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn tsm_snp_with_certificate_table_works() {
    let (report, rd) = snp_report();
    let (dir, sim, src) = tsm(KernelSim::new(
        "sev_guest",
        report.clone(),
        Some(snp_table()),
    ));
    assert_eq!(src.tee(), TeeKind::SevSnp);
    let ev = src.collect(&rd).unwrap();
    let CpuEvidence::SevSnp {
        report: r,
        vek,
        intermediate,
        ark,
    } = ev
    else {
        panic!("not SNP evidence")
    };
    assert_eq!(r, report);
    assert_eq!(vek, vector(&format!("{SNP}/vcek.der")));
    assert!(intermediate.is_some() && ark.is_some());
    assert_eq!(sim.writes.lock().unwrap().as_slice(), &[rd.to_vec()]);
    assert_eq!(entries_left(dir.path()), 0, "entry not removed");
}

#[test]
fn tsm_tdx_quote_works() {
    let quote = vector(&format!("{TDX}/quote.bin"));
    let rd = parse_tdx_quote(&quote).unwrap().body.report_data;
    let (dir, _sim, src) = tsm(KernelSim::new("tdx_guest", quote.clone(), None));
    assert_eq!(src.tee(), TeeKind::Tdx);
    let ev = src.collect(&rd).unwrap();
    assert_eq!(
        ev,
        CpuEvidence::Tdx {
            quote,
            collateral_json: None
        }
    );
    assert_eq!(entries_left(dir.path()), 0);
}

#[test]
fn tsm_tdx_quote_with_collateral_verifies_works() {
    use attestation_verifier::bundle::EvidenceBundle;
    use attestation_verifier::crypto::RustCrypto;
    use attestation_verifier::time::UnixTime;
    use attestation_verifier::verify::receipt::ReceiptVerifier;
    struct Bundled(Vec<u8>);
    impl crate::collateral::tdx::TdxCollateralSource for Bundled {
        fn collateral(&self, _quote: &[u8]) -> Result<Vec<u8>, crate::collateral::CollateralError> {
            Ok(self.0.clone())
        }
    }
    let quote = vector(&format!("{TDX}/quote.bin"));
    let rd = parse_tdx_quote(&quote).unwrap().body.report_data;
    let (_dir, _sim, src) = tsm(KernelSim::new("tdx_guest", quote, None));
    let src = src.with_tdx_collateral(Box::new(Bundled(vector(&format!("{TDX}/collateral.json")))));
    let cpu = src.collect(&rd).unwrap();
    // The quote and its collateral verify to Intel's root; only the binding to an
    // agent key (which this recorded quote never had) is missing.
    let bundle = EvidenceBundle::new([1; 32], [2; 32], cpu, vec![]);
    let mut v = ReceiptVerifier::new(RustCrypto).unwrap();
    let f = v
        .verify_bundle(&bundle.to_bytes(), None, None, UnixTime(1_750_415_547))
        .unwrap_err();
    assert_eq!(f.0.len(), 1, "{f}");
    assert!(f.to_string().contains("REPORT_DATA"), "{f}");
}

#[test]
fn tsm_report_for_other_data_rejects() {
    let (report, _) = snp_report();
    let (dir, _sim, src) = tsm(KernelSim::new("sev_guest", report, Some(snp_table())));
    let err = src.collect(&[0x77; 64]).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Unusable {
                tee: TeeKind::SevSnp,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(entries_left(dir.path()), 0);
}

#[test]
fn tsm_snp_without_certificates_rejects() {
    let (report, rd) = snp_report();
    let (_dir, _sim, src) = tsm(KernelSim::new("sev_guest", report, None));
    assert!(matches!(
        src.collect(&rd),
        Err(EvidenceError::MissingEndorsementKey)
    ));
}

#[test]
fn tsm_race_is_retried_then_reported_works() {
    let (report, rd) = snp_report();
    let (dir, sim, src) = tsm(KernelSim::new("sev_guest", report, Some(snp_table())));
    // One interfering write: the first attempt sees generation 2, the retry succeeds.
    sim.interfere.store(1, Ordering::Relaxed);
    src.collect(&rd).unwrap();
    assert_eq!(sim.writes.lock().unwrap().len(), 2);
    // Interference on every attempt: reported as a race.
    sim.interfere.store(100, Ordering::Relaxed);
    assert!(matches!(
        src.collect(&rd),
        Err(EvidenceError::TsmRace { expected: 1, .. })
    ));
    assert_eq!(entries_left(dir.path()), 0);
}

#[test]
fn tsm_unknown_provider_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let r = TsmSource::with_fs(
        Box::new(KernelSim::new("arm_cca_guest", vec![], None)),
        dir.path().to_path_buf(),
    );
    assert!(matches!(r, Err(EvidenceError::TsmProvider(p)) if p == "arm_cca_guest"));
}

#[test]
fn tsm_missing_root_rejects() {
    let r = TsmSource::with_fs(Box::new(StdFs), PathBuf::from("/nonexistent/tsm/report"));
    assert!(matches!(r, Err(EvidenceError::Tsm { op: "mkdir", .. })));
}

// ---- /dev/sev-guest ----

/// A guest device answering with `report` and the host's `certs`.
pub(crate) struct FakeSevGuest {
    pub(crate) report: Vec<u8>,
    pub(crate) certs: SnpCertificates,
}

impl SevGuestDevice for FakeSevGuest {
    fn extended_report(
        &self,
        _rd: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, SnpCertificates), EvidenceError> {
        assert_eq!(vmpl, 0);
        Ok((self.report.clone(), self.certs.clone()))
    }
}

#[test]
fn sev_guest_extended_report_works() {
    let (report, rd) = snp_report();
    let certs = parse_cert_table(&snp_table()).unwrap();
    let src = SevGuestSource::new(
        Box::new(FakeSevGuest {
            report: report.clone(),
            certs,
        }),
        0,
    );
    assert_eq!(src.tee(), TeeKind::SevSnp);
    assert!(
        matches!(src.collect(&rd).unwrap(), CpuEvidence::SevSnp { report: r, .. } if r == report)
    );
    let src = SevGuestSource::new(
        Box::new(FakeSevGuest {
            report: report[..100].to_vec(),
            certs: SnpCertificates::default(),
        }),
        0,
    );
    assert!(matches!(
        src.collect(&rd),
        Err(EvidenceError::Unusable { .. })
    ));
}

// ---- GPUs ----

fn gpu_probe(nonce_in_report: Option<[u8; 32]>) -> Arc<gpu_monitor::FakeProbe> {
    let mut report = vector("nvgpu/hopper-nvtrust-sample/report.bin");
    if let Some(n) = nonce_in_report {
        report[4..36].copy_from_slice(&n);
    }
    let chain = vector("nvgpu/hopper-nvtrust-sample/cert_chain.pem");
    let mut g = gpu_monitor::FakeGpu::new(0, "GPU-11111111-2222-3333-4444-555555555555");
    g.evidence = Some((report, chain));
    Arc::new(
        gpu_monitor::FakeProbe::new("550.127.05")
            .with_gpu(g)
            .with_cc(Some(cc_on())),
    )
}

/// NVML's state of GPUs in confidential mode, in production.
pub(crate) fn cc_on() -> gpu_monitor::CcState {
    gpu_monitor::CcState {
        cc_enabled: true,
        environment: gpu_monitor::CcEnvironment::Production,
        dev_tools_mode: false,
        multi_gpu_mode: None,
        gpus_ready: false,
        cpu_capability: None,
        gpus_cc_capable: Some(true),
    }
}

#[test]
fn gpus_not_in_confidential_mode_rejects() {
    let n = [0x5A; 32];
    let probe = |cc: Option<gpu_monitor::CcState>| {
        let mut report = vector("nvgpu/hopper-nvtrust-sample/report.bin");
        report[4..36].copy_from_slice(&n);
        let mut g = gpu_monitor::FakeGpu::new(0, "GPU-11111111-2222-3333-4444-555555555555");
        g.evidence = Some((report, vector("nvgpu/hopper-nvtrust-sample/cert_chain.pem")));
        Arc::new(
            gpu_monitor::FakeProbe::new("550.127.05")
                .with_gpu(g)
                .with_cc(cc),
        )
    };
    let off = gpu_monitor::CcState {
        cc_enabled: false,
        ..cc_on()
    };
    let devtools = gpu_monitor::CcState {
        dev_tools_mode: true,
        ..cc_on()
    };
    let simulation = gpu_monitor::CcState {
        environment: gpu_monitor::CcEnvironment::Simulated,
        ..cc_on()
    };
    for (cc, why) in [
        (None, "does not report"),
        (Some(off), "off"),
        (Some(devtools), "developer-tools"),
        (Some(simulation), "not production"),
    ] {
        let err = GpuEvidenceSource::new(probe(cc), vec![])
            .collect(&n)
            .unwrap_err();
        assert!(
            matches!(&err, EvidenceError::Unavailable { reason, .. } if reason.contains(why)),
            "{err}"
        );
    }
    assert!(
        GpuEvidenceSource::new(probe(Some(cc_on())), vec![])
            .collect(&n)
            .is_ok()
    );
}

#[test]
fn gpu_evidence_for_nonce_works() {
    let n = [0x5A; 32];
    let src = GpuEvidenceSource::new(gpu_probe(Some(n)), vec![]);
    let ev = src.collect(&n).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].nonce, n);
    assert_eq!(&ev[0].report[4..36], &n);
    assert!(ev[0].uuid.starts_with("GPU-"));
    assert!(ev[0].cert_chain_pem.contains("BEGIN CERTIFICATE"));
}

#[test]
fn gpu_report_for_other_nonce_rejects() {
    // The real report carries its own nonce, not the one asked for.
    let src = GpuEvidenceSource::new(gpu_probe(None), vec![0]);
    assert!(matches!(
        src.collect(&[0x5A; 32]),
        Err(EvidenceError::Gpu { index: 0, .. })
    ));
}

// ---- detection ----

fn opts(dir: &Path, backend: Backend) -> DetectOptions {
    let mut o = DetectOptions::new(backend, false);
    o.tsm_root = dir.join("tsm");
    o.sev_guest_device = dir.join("sev-guest");
    o.tdx_guest_device = dir.join("tdx_guest");
    o.tpm_device = dir.join("tpmrm0");
    o
}

#[test]
fn detect_nothing_means_no_tee_works() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        open_source(&opts(dir.path(), Backend::Auto))
            .unwrap()
            .is_none()
    );
    assert!(
        open_source(&opts(dir.path(), Backend::None))
            .unwrap()
            .is_none()
    );
}

#[test]
fn detect_tdx_device_without_tsm_rejects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tdx_guest"), b"").unwrap();
    assert!(matches!(
        open_source(&opts(dir.path(), Backend::Auto)),
        Err(EvidenceError::Unavailable { .. })
    ));
    assert!(matches!(
        open_source(&opts(dir.path(), Backend::TdxGuest)),
        Err(EvidenceError::Unavailable { .. })
    ));
}

#[test]
fn detect_configured_backend_missing_rejects() {
    let dir = tempfile::tempdir().unwrap();
    assert!(open_source(&opts(dir.path(), Backend::SevGuest)).is_err());
    assert!(open_source(&opts(dir.path(), Backend::Tsm)).is_err());
    // The simulator needs both the feature and allow_simulated.
    assert!(open_source(&opts(dir.path(), Backend::Simulated)).is_err());
}

#[test]
fn backend_names_parse_works() {
    for (s, b) in [
        ("auto", Backend::Auto),
        ("sev-guest", Backend::SevGuest),
        ("tsm", Backend::Tsm),
        ("tdx-guest", Backend::TdxGuest),
        ("simulated", Backend::Simulated),
        ("none", Backend::None),
    ] {
        assert_eq!(s.parse::<Backend>().unwrap(), b);
    }
    assert!("sgx".parse::<Backend>().is_err());
}

#[cfg(feature = "simulator")]
#[test]
fn detect_simulator_when_allowed_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), Backend::Simulated);
    o.allow_simulated = true;
    let s = open_source(&o).unwrap().unwrap();
    assert_eq!(s.tee(), TeeKind::Simulated);
    let ev = s.collect(&[3; 64]).unwrap();
    let CpuEvidence::Simulated { report } = ev else {
        panic!("not simulated")
    };
    assert!(report.starts_with(b"SIGIL-SIMULATED\0"));
}

/// A TDX receipt as the agent makes it: the configfs-tsm tree returns the real
/// quote, the collateral comes from a PCCS (a local server serving the vector's
/// PCS responses) through the agent's provider, and the receipt is checked as
/// `sigil-verify receipt` checks it. The recorded quote was never made for this
/// agent's key, so its REPORTDATA binding is the one reason left at the
/// vector's time; missing or expired collateral adds its own.
#[test]
fn tsm_tdx_receipt_with_fetched_collateral_works() {
    use attestation_verifier::bundle::EvidenceBundle;
    use attestation_verifier::crypto::AwsLc;
    use attestation_verifier::policy::Policy;
    use attestation_verifier::receipt::{EvidenceMode, EvidenceRef, ReceiptBody, Usage};
    use attestation_verifier::time::UnixTime;
    use attestation_verifier::{ReceiptVerifier, check_receipt};

    use crate::collateral::tdx::TdxCollateralProvider;
    use crate::collateral::tests::{TDX_TIME, fake_pccs, settings};

    let pccs = fake_pccs(TDX);
    let cache = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(TDX_TIME));
    let provider = Arc::new(TdxCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        Some(&pccs.url),
        None,
    ));
    let quote = vector(&format!("{TDX}/quote.bin"));
    let rd = parse_tdx_quote(&quote).unwrap().body.report_data;
    let key = crate::keys::AgentKey::from_seed(&[3; 32]);
    let receipt_for = |cpu: CpuEvidence| {
        let bundle = EvidenceBundle::new(key.public_key(), [2; 32], cpu, vec![]);
        let body = ReceiptBody {
            version: attestation_verifier::receipt::RECEIPT_VERSION,
            job_id: [1; 32],
            job_spec_hash: [2; 32],
            provider: key.public_key(),
            tier: 3,
            result_commitment: [3; 32],
            output_count: 0,
            started_at_ms: TDX_TIME * 1000,
            finished_at_ms: TDX_TIME * 1000 + 5,
            exit_code: 0,
            usage: Usage::default(),
            evidence: EvidenceRef {
                mode: EvidenceMode::AttestedKey,
                tee: TeeKind::Tdx,
                digest: bundle.digest(&AwsLc),
            },
        };
        (key.sign_receipt(&body).to_bytes(), bundle.to_bytes())
    };
    let appraise = |r: &[u8], b: &[u8], at: u64| {
        let mut v = ReceiptVerifier::new(AwsLc).unwrap();
        check_receipt(&mut v, r, Some(b), &Policy::default(), UnixTime(at)).reasons
    };

    let (_dir, _sim, src) = tsm(KernelSim::new("tdx_guest", quote.clone(), None));
    let src = src.with_tdx_collateral(Box::new(Arc::clone(&provider)));
    let cpu = src.collect(&rd).unwrap();
    let CpuEvidence::Tdx {
        collateral_json: Some(json),
        ..
    } = cpu.clone()
    else {
        panic!("no collateral in {cpu:?}")
    };
    assert_eq!(
        json,
        provider.collateral_for(&quote).unwrap(),
        "the provider's collateral"
    );
    assert_eq!(pccs.requests(), 4);
    let (r, b) = receipt_for(cpu);
    let reasons = appraise(&r, &b, TDX_TIME);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("REPORT_DATA"), "{reasons:?}");
    // Checked after the collateral's nextUpdate: stale collateral is refused too.
    let next = attestation_verifier::verify::tdx::TdxCollateral::from_json(&json)
        .unwrap()
        .next_update()
        .unwrap()
        .0;
    let reasons = appraise(&r, &b, next + 1);
    assert!(reasons.len() >= 2, "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("expired")), "{reasons:?}");

    // Without a collateral source the bundle cannot be verified offline.
    let (_dir, _sim, bare) = tsm(KernelSim::new("tdx_guest", quote.clone(), None));
    let (r, b) = receipt_for(bare.collect(&rd).unwrap());
    let reasons = appraise(&r, &b, TDX_TIME);
    assert!(
        reasons.iter().any(|x| x.contains("without collateral")),
        "{reasons:?}"
    );

    // The agent itself refuses to collect once only expired collateral exists.
    *now.lock().unwrap() = next + 1;
    let (_dir, _sim, src) = tsm(KernelSim::new("tdx_guest", quote, None));
    let src = src.with_tdx_collateral(Box::new(TdxCollateralProvider::new(
        settings(cache.path(), Arc::clone(&now)),
        Some(&pccs.url),
        None,
    )));
    let e = src.collect(&rd).unwrap_err();
    assert!(
        matches!(
            e,
            EvidenceError::Collateral(crate::collateral::CollateralError::Stale { .. })
        ),
        "{e}"
    );
}
