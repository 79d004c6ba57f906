//! Differential test of `sigil-verify measure snp` against `sev-snp-measure` (the
//! reference implementation, PyPI), on the shared fixtures and on Debian's `ovmf`
//! package firmware, for 1, 2, 4 and 16 vCPUs, every vCPU type and every VMM type,
//! with kernel, initrd and command lines made here.
//!
//! Without the tool (or Debian's OVMF) the test says so on stderr and passes, unless
//! `SIGIL_REQUIRE_REFERENCE_TOOLS` is set (CI sets it; `scripts/test.sh` installs both).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use attestation_verifier::measure::snp::VCPU_TYPES;

const TOOL: &str = "sev-snp-measure";
/// vCPU models `sev-snp-measure` 0.0.13 names; the others are given to it by signature.
const TOOL_VCPU_TYPES: &[&str] = &[
    "EPYC",
    "EPYC-v1",
    "EPYC-v2",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v1",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Milan",
    "EPYC-Milan-v1",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
    "EPYC-Genoa-v1",
    "EPYC-Turin",
];
/// Debian `ovmf` firmware with SEV metadata (no SNP_KERNEL_HASHES: not an AmdSev build;
/// bookworm ships no OVMF.amdsev.fd). It is the image QEMU takes as `-bios`.
const DEBIAN_OVMF: &[&str] = &["/usr/share/ovmf/OVMF.fd"];

fn required() -> bool {
    std::env::var_os("SIGIL_REQUIRE_REFERENCE_TOOLS").is_some_and(|v| !v.is_empty())
}

fn skip_or_fail(what: &str) {
    let msg = format!(
        "measure_reference: {what}; install with `pip install sev-snp-measure==0.0.13` and \
         `apt-get install -y ovmf` (scripts/test.sh does)"
    );
    if required() {
        panic!("{msg} (SIGIL_REQUIRE_REFERENCE_TOOLS is set)");
    }
    // Straight to stderr, past the test harness's capture: a skip must be seen.
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
}

/// One launch: the same inputs for both tools.
struct Job {
    name: String,
    ovmf: PathBuf,
    vcpus: u32,
    vcpu_type: &'static str,
    vmm: &'static str,
    guest_features: u64,
    kernel: Option<(PathBuf, Option<PathBuf>, Option<String>)>,
    svsm: Option<(PathBuf, u64)>,
    /// Refused here with this code while the reference computes a value.
    only_we_refuse: Option<&'static str>,
}

impl Job {
    fn tool_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--mode".into(),
            if self.svsm.is_some() {
                "snp:svsm"
            } else {
                "snp"
            }
            .into(),
            "--vcpus".into(),
            self.vcpus.to_string(),
            "--ovmf".into(),
            self.ovmf.display().to_string(),
            "--vmm-type".into(),
            match self.vmm {
                "qemu" => "QEMU",
                other => other,
            }
            .into(),
            "--guest-features".into(),
            format!("{:#x}", self.guest_features),
        ];
        if TOOL_VCPU_TYPES.contains(&self.vcpu_type) {
            a.extend(["--vcpu-type".into(), self.vcpu_type.into()]);
        } else {
            let sig = attestation_verifier::measure::snp::vcpu_sig(self.vcpu_type).unwrap();
            a.extend(["--vcpu-sig".into(), sig.to_string()]);
        }
        self.common_args(&mut a);
        a
    }

    fn our_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "measure".into(),
            "snp".into(),
            "--vcpus".into(),
            self.vcpus.to_string(),
            "--ovmf".into(),
            self.ovmf.display().to_string(),
            "--vmm-type".into(),
            self.vmm.into(),
            "--guest-features".into(),
            format!("{:#x}", self.guest_features),
            "--vcpu-type".into(),
            self.vcpu_type.into(),
            "--format".into(),
            "json".into(),
        ];
        self.common_args(&mut a);
        a
    }

    fn common_args(&self, a: &mut Vec<String>) {
        if let Some((k, i, append)) = &self.kernel {
            a.extend(["--kernel".into(), k.display().to_string()]);
            if let Some(i) = i {
                a.extend(["--initrd".into(), i.display().to_string()]);
            }
            if let Some(ap) = append {
                a.push(format!("--append={ap}"));
            }
        }
        if let Some((s, vars)) = &self.svsm {
            a.extend([
                "--svsm".into(),
                s.display().to_string(),
                "--vars-size".into(),
                vars.to_string(),
            ]);
        }
    }
}

fn tool_available() -> bool {
    Command::new(TOOL)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `jobs` through both tools (in parallel batches) and compares.
fn compare(jobs: &[Job]) {
    let spawn = |mut c: Command| {
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut outs: Vec<(Output, Output)> = Vec::new();
    for batch in jobs.chunks(16) {
        let children: Vec<_> = batch
            .iter()
            .map(|j| {
                let mut t = Command::new(TOOL);
                t.args(j.tool_args());
                let mut o = Command::new(env!("CARGO_BIN_EXE_sigil-verify"));
                o.args(j.our_args());
                (spawn(t), spawn(o))
            })
            .collect();
        outs.extend(
            children
                .into_iter()
                .map(|(t, o)| (t.wait_with_output().unwrap(), o.wait_with_output().unwrap())),
        );
    }
    let (mut agreed, mut refused, mut ours_only) = (0, 0, 0);
    for (j, (t, ours)) in jobs.iter().zip(&outs) {
        let ours_json: serde_json::Value =
            serde_json::from_slice(&ours.stdout).unwrap_or_else(|e| {
                panic!("{}: {e}: {}", j.name, String::from_utf8_lossy(&ours.stderr))
            });
        if let Some(code) = j.only_we_refuse {
            // A deliberate difference: the reference measures what cannot launch.
            assert!(t.status.success(), "{}: the reference refused too", j.name);
            assert_eq!(ours.status.code(), Some(1), "{}: {ours_json}", j.name);
            assert_eq!(ours_json["code"], code, "{}", j.name);
            ours_only += 1;
        } else if t.status.success() {
            let want = String::from_utf8(t.stdout.clone())
                .unwrap()
                .trim()
                .to_string();
            assert_eq!(ours.status.code(), Some(0), "{}: {ours_json}", j.name);
            assert_eq!(ours_json["measurement"], want, "{}", j.name);
            agreed += 1;
        } else {
            assert_eq!(
                ours.status.code(),
                Some(1),
                "{}: reference refused ({}), we did not: {ours_json}",
                j.name,
                String::from_utf8_lossy(&t.stderr)
            );
            refused += 1;
        }
    }
    eprintln!(
        "measure_reference: {agreed} measurements equal, {refused} refusals agree, \
         {ours_only} refused here only (firmware without SEV metadata)"
    );
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn snp_matches_sev_snp_measure() {
    if !tool_available() {
        skip_or_fail("the `sev-snp-measure` command is not installed");
        return;
    }
    let vectors = common::vectors_dir().join("measured/snp-launch");
    let amdsev = vectors.join("qemu-amdsev-1vcpu-cmdline-gf21/ovmf.bin");
    let ovmfx64 = vectors.join("qemu-ovmfx64-1vcpu-nokernel-gf21/ovmf.bin");
    let svsm_dir = vectors.join("svsm-qemu-4vcpu");
    let tmp = std::env::temp_dir().join(format!("sigil-measure-ref-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // Kernel and initrd bytes made here (any bytes: only their SHA-256 is measured).
    let kernel = write(
        &tmp,
        "bzImage",
        &(0..150_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let initrd = write(
        &tmp,
        "initrd",
        &(0..70_001u32)
            .map(|i| (i * 13 % 241) as u8)
            .collect::<Vec<_>>(),
    );
    let append = "console=ttyS0  root=/dev/vda1 sigil.agent=1 ".to_string();

    let mut jobs = Vec::new();
    let vmms = ["qemu", "ec2", "gce"];
    // The AmdSev fixture: measured direct boot on every VMM and vCPU count.
    for vmm in vmms {
        for vcpus in [1, 2, 4, 16] {
            jobs.push(Job {
                name: format!("amdsev {vmm} {vcpus} vCPUs kernel+initrd+cmdline"),
                ovmf: amdsev.clone(),
                vcpus,
                vcpu_type: "EPYC-Genoa",
                vmm,
                guest_features: 0x1,
                kernel: Some((kernel.clone(), Some(initrd.clone()), Some(append.clone()))),
                svsm: None,
                only_we_refuse: None,
            });
        }
    }
    jobs.push(Job {
        name: "amdsev kernel only, empty cmdline".into(),
        ovmf: amdsev.clone(),
        vcpus: 2,
        vcpu_type: "EPYC-Milan",
        vmm: "qemu",
        guest_features: 0x21,
        kernel: Some((kernel.clone(), None, Some(String::new()))),
        svsm: None,
        only_we_refuse: None,
    });
    jobs.push(Job {
        name: "ovmfx64 with kernel (refused)".into(),
        ovmf: ovmfx64.clone(),
        vcpus: 1,
        vcpu_type: "EPYC-v4",
        vmm: "qemu",
        guest_features: 0x1,
        kernel: Some((kernel.clone(), Some(initrd.clone()), None)),
        svsm: None,
        only_we_refuse: None,
    });
    for vcpus in [1, 2, 16] {
        jobs.push(Job {
            name: format!("svsm {vcpus} vCPUs"),
            ovmf: svsm_dir.join("ovmf.fd"),
            vcpus,
            vcpu_type: "EPYC-Milan",
            vmm: "qemu",
            guest_features: 0x1,
            kernel: None,
            svsm: Some((svsm_dir.join("svsm.bin"), 540_672)),
            only_we_refuse: None,
        });
    }
    let debian: Vec<&str> = DEBIAN_OVMF
        .iter()
        .copied()
        .filter(|p| Path::new(p).is_file())
        .collect();
    if debian.is_empty() {
        skip_or_fail("Debian's ovmf package is not installed (no /usr/share/ovmf/OVMF.fd)");
    }
    for (n, path) in debian.iter().enumerate() {
        let ovmf = PathBuf::from(path);
        // Every vCPU type (on the first image), 4 vCPUs.
        let types: Vec<&'static str> = if n == 0 {
            VCPU_TYPES.iter().map(|(t, _)| *t).collect()
        } else {
            vec!["EPYC-v4"]
        };
        for t in types {
            jobs.push(Job {
                name: format!("{path} qemu 4 vCPUs {t}"),
                ovmf: ovmf.clone(),
                vcpus: 4,
                vcpu_type: t,
                vmm: "qemu",
                guest_features: 0x21,
                kernel: None,
                svsm: None,
                only_we_refuse: None,
            });
        }
        for vmm in vmms {
            for vcpus in [1, 16] {
                jobs.push(Job {
                    name: format!("{path} {vmm} {vcpus} vCPUs"),
                    ovmf: ovmf.clone(),
                    vcpus,
                    vcpu_type: "EPYC-Milan",
                    vmm,
                    guest_features: 0x1,
                    kernel: None,
                    svsm: None,
                    only_we_refuse: None,
                });
            }
        }
        jobs.push(Job {
            name: format!("{path} with kernel (refused: no SNP_KERNEL_HASHES)"),
            ovmf,
            vcpus: 1,
            vcpu_type: "EPYC-v4",
            vmm: "qemu",
            guest_features: 0x1,
            kernel: Some((kernel.clone(), None, None)),
            svsm: None,
            only_we_refuse: None,
        });
    }
    // Debian's code-only OVMF_CODE_4M.fd has no SEV metadata: QEMU refuses to
    // launch an SNP guest from it ("Failed to locate SEV metadata header");
    // sev-snp-measure measures it without metadata pages; we refuse it.
    let code_4m = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    if code_4m.is_file() {
        jobs.push(Job {
            name: "OVMF_CODE_4M.fd (no SEV metadata)".into(),
            ovmf: code_4m.to_path_buf(),
            vcpus: 1,
            vcpu_type: "EPYC-v4",
            vmm: "qemu",
            guest_features: 0x1,
            kernel: None,
            svsm: None,
            only_we_refuse: Some("firmware-unusable"),
        });
    }
    compare(&jobs);
    let _ = std::fs::remove_dir_all(&tmp);
}
