#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::path::Path;
use std::sync::Mutex;

use attestation_verifier::bundle::{AgentEventKind, CpuEvidence, EvidenceBundle, MeasuredBoot};
use attestation_verifier::verify::measured::verify_measured_tdx;

use super::*;
use crate::evidence::backend::tsm::{StdFs, TsmFs};

/// The kernel's measurement interface over a real directory: writes to the RTMR3
/// attribute extend an in-memory register, reads give its value (raw or hex).
struct FakeKernel {
    rtmr3: PathBuf,
    register: Mutex<[u8; 48]>,
    hex: bool,
    /// Extensions refused (a kernel without write support).
    refuse_writes: bool,
}

impl FakeKernel {
    fn new(dir: &Path, start: [u8; 48]) -> Self {
        Self {
            rtmr3: dir.join("rtmr3:sha384"),
            register: Mutex::new(start),
            hex: false,
            refuse_writes: false,
        }
    }
}

impl TsmFs for FakeKernel {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        StdFs.mkdir(path)
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        StdFs.rmdir(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        if path == self.rtmr3 {
            if self.refuse_writes {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            let d: [u8; 48] = data
                .try_into()
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            let mut r = self.register.lock().unwrap();
            *r = extend(&r, &d);
            return Ok(());
        }
        StdFs.write(path, data)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path == self.rtmr3 {
            let r = *self.register.lock().unwrap();
            return Ok(if self.hex {
                format!("{}\n", hex::encode(r)).into_bytes()
            } else {
                r.to_vec()
            });
        }
        StdFs.read(path)
    }
}

fn paths(dir: &Path) -> MeasurePaths {
    MeasurePaths {
        ccel: dir.join("CCEL"),
        rtmr3: dir.join("rtmr3:sha384"),
        log: dir.join("run/sigil/agent-measurements"),
    }
}

const ME: SelfMeasurement = SelfMeasurement {
    binary: [0xA1; 48],
    config: [0xC1; 48],
};

fn rtmrs_with(rtmr3: [u8; 48]) -> [[u8; 48]; 4] {
    [[0; 48], [0; 48], [0; 48], rtmr3]
}

/// The bundle's measured-boot evidence replays to the kernel's register.
fn replays(m: &MeasuredBoot, k: &FakeKernel) -> bool {
    let r = *k.register.lock().unwrap();
    matches!(verify_measured_tdx(m, &rtmrs_with(r)), Some(Ok(_)))
}

#[test]
fn first_start_extends_and_logs_works() {
    let dir = tempfile::tempdir().unwrap();
    let k = FakeKernel::new(dir.path(), [0; 48]);
    let s = measure_at_start(&k, &paths(dir.path()), &ME);
    assert!(s.unmeasured.is_none(), "{:?}", s.unmeasured);
    let kinds: Vec<_> = s.evidence.agent_events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [AgentEventKind::Binary, AgentEventKind::Config]);
    assert!(s.evidence.event_log.is_none(), "no CCEL here");
    assert_eq!(
        *k.register.lock().unwrap(),
        extend(&extend(&[0; 48], &ME.binary), &ME.config)
    );
    assert!(replays(&s.evidence, &k));
    // ...and the bundle carries it, version 5.
    let b = EvidenceBundle::new(
        [1; 32],
        [2; 32],
        CpuEvidence::Tdx {
            quote: vec![1],
            collateral_json: None,
        },
        vec![],
    )
    .with_measured(s.evidence.clone());
    assert_eq!(
        EvidenceBundle::from_bytes(&b.to_bytes()).unwrap().measured,
        s.evidence
    );
}

#[test]
fn restart_appends_to_the_same_boot_works() {
    let dir = tempfile::tempdir().unwrap();
    let k = FakeKernel::new(dir.path(), [0; 48]);
    measure_at_start(&k, &paths(dir.path()), &ME);
    let other = SelfMeasurement {
        binary: [0xA2; 48],
        config: [0xC2; 48],
    };
    let s = measure_at_start(&k, &paths(dir.path()), &other);
    assert!(s.unmeasured.is_none());
    assert_eq!(s.evidence.agent_events.len(), 4);
    assert!(replays(&s.evidence, &k));
    // The verifier's claim is the last start's.
    let r = *k.register.lock().unwrap();
    let v = verify_measured_tdx(&s.evidence, &rtmrs_with(r))
        .unwrap()
        .unwrap();
    assert_eq!(v.agent_digest(), Some(&[0xA2; 48]));
}

#[test]
fn hex_register_and_a_start_that_died_before_extending_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = FakeKernel::new(dir.path(), [0; 48]);
    k.hex = true;
    let p = paths(dir.path());
    measure_at_start(&k, &p, &ME);
    // A later start logged its event and died before extending: the log is longer
    // than the register accounts for; the reconciliation drops the extra event.
    let mut logged = read_log(&k, &p.log);
    logged.push(AgentEvent {
        kind: AgentEventKind::Binary,
        digest: [0xEE; 48],
    });
    write_log(&k, &p.log, &logged).unwrap();
    let s = measure_at_start(&k, &p, &ME);
    assert!(s.unmeasured.is_none(), "{:?}", s.unmeasured);
    assert_eq!(s.evidence.agent_events.len(), 4);
    assert!(
        !s.evidence
            .agent_events
            .iter()
            .any(|e| e.digest == [0xEE; 48])
    );
    assert!(replays(&s.evidence, &k));
}

#[test]
fn firmware_rtmr3_events_come_first_works() {
    // A real CCEL whose RTMR3 holds firmware events (Alibaba Cloud's AAEL, from
    // the shared vectors); the agent's events follow them.
    let ccel = sigil_test_support::vectors::vector(
        "measured/tdx-eventlog/trustee-ccel-aael-alibabacloud/ccel.bin",
    );
    let log = parse_event_log(&ccel).unwrap();
    let firmware = log.replay();
    assert_ne!(firmware[3], [0; 48], "the vector extends RTMR3");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CCEL"), &ccel).unwrap();
    let k = FakeKernel::new(dir.path(), firmware[3]);
    let s = measure_at_start(&k, &paths(dir.path()), &ME);
    assert!(s.unmeasured.is_none(), "{:?}", s.unmeasured);
    // Carried without the CCEL area's fill: the bytes the events occupy.
    let used = log.used_len;
    assert!(used < ccel.len(), "the vector has fill after its events");
    assert_eq!(s.evidence.event_log.as_deref(), Some(&ccel[..used]));
    let mut quote = firmware;
    quote[3] = *k.register.lock().unwrap();
    let v = verify_measured_tdx(&s.evidence, &quote).unwrap().unwrap();
    assert_eq!(v.covered, [true; 4]);
    assert_eq!(v.agent_digest(), Some(&ME.binary));
}

#[test]
fn foreign_extension_leaves_measured_boot_out_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let k = FakeKernel::new(dir.path(), [0x77; 48]);
    let s = measure_at_start(&k, &paths(dir.path()), &ME);
    assert!(matches!(s.unmeasured, Some(MeasureError::Foreign { .. })));
    assert!(
        s.evidence.is_empty(),
        "nothing that could not replay is carried"
    );
    assert_eq!(*k.register.lock().unwrap(), [0x77; 48], "nothing extended");
}

#[test]
fn no_interface_keeps_the_firmware_log_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let ccel = {
        // A header-only CCEL is a valid, empty log.
        let mut spec = b"Spec ID Event03\0".to_vec();
        spec.extend(0u32.to_le_bytes());
        spec.extend([0, 2, 0, 2]);
        spec.extend(1u32.to_le_bytes());
        spec.extend(0x000cu16.to_le_bytes());
        spec.extend(48u16.to_le_bytes());
        spec.push(0);
        let mut out = 0u32.to_le_bytes().to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend([0u8; 20]);
        out.extend((spec.len() as u32).to_le_bytes());
        out.extend(spec);
        out
    };
    std::fs::write(dir.path().join("CCEL"), &ccel).unwrap();
    // StdFs over a directory without the attribute: an older kernel.
    let s = measure_at_start(&StdFs, &paths(dir.path()), &ME);
    assert!(matches!(
        s.unmeasured,
        Some(MeasureError::NoInterface { .. })
    ));
    assert!(s.evidence.agent_events.is_empty(), "never invented");
    assert_eq!(s.evidence.event_log, Some(ccel));
    // A kernel that refuses the write: nothing carried (the log may hold an
    // event the register lacks).
    let mut k = FakeKernel::new(dir.path(), [0; 48]);
    k.refuse_writes = true;
    let s = measure_at_start(&k, &paths(dir.path()), &ME);
    assert!(
        matches!(s.unmeasured, Some(MeasureError::Io { .. })),
        "{:?}",
        s.unmeasured
    );
    assert!(s.evidence.is_empty());
}

#[test]
fn config_digest_is_canonical_and_hides_the_token_works() {
    let mut a = crate::config::Config::default();
    let b = a.clone();
    assert_eq!(config_digest(&a), config_digest(&b));
    let canonical = canonical_config(&a);
    assert!(!canonical.contains(' '), "no spaces");
    a.auth.token = crate::config::Secret::new("hunter2");
    assert!(!canonical_config(&a).contains("hunter2"));
    let mut c = a.clone();
    c.auth.token = crate::config::Secret::new("another");
    assert_eq!(
        config_digest(&a),
        config_digest(&c),
        "only whether a token is set"
    );
    c.jobs.max_attempts = 7;
    assert_ne!(config_digest(&a), config_digest(&c));
}
