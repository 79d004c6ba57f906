//! `measure`: every case in `measured/snp-launch` and `measured/tdx-mrtd`, through the
//! library and through `sigil-verify measure` (exit codes, JSON, policy fragment),
//! plus a cross-check against the `sev` crate for the QEMU cases (where it is right).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::path::PathBuf;
use std::process::Command;

use attestation_verifier::measure::snp::{
    self, KernelHashes, SnpLaunch, SnpMeasureError, Svsm, VmmType,
};
use attestation_verifier::measure::tdx::{self, TdxMeasureError};
use common::Case;
use sha2::Digest;

fn input<'a>(c: &'a Case, key: &str) -> Option<&'a toml::Value> {
    c.toml.get("inputs")?.get(key)
}

fn input_str<'a>(c: &'a Case, key: &str) -> Option<&'a str> {
    input(c, key)?.as_str()
}

/// A file named by an input such as `"kernel.bin (empty; ...)"`; `None` for "none ...".
fn input_file(c: &Case, key: &str) -> Option<PathBuf> {
    let v = input_str(c, key)?;
    let name = v.split_whitespace().next()?;
    let p = c.dir.join(name);
    p.is_file().then_some(p)
}

fn hexnum(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// Everything a case's `[inputs]` gives, normalised.
struct SnpCase {
    vcpus: u32,
    vmm: &'static str,
    vcpu_type: Option<String>,
    vcpu_sig: Option<u32>,
    guest_features: u64,
    ovmf: PathBuf,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    svsm: Option<PathBuf>,
    vars_size: Option<u64>,
}

fn snp_case(c: &Case) -> SnpCase {
    let vmm = match input_str(c, "vmm_type")
        .unwrap()
        .to_ascii_lowercase()
        .as_str()
    {
        "qemu" => "qemu",
        "ec2" => "ec2",
        "gce" => "gce",
        other => panic!("{}: vmm {other}", c.name),
    };
    let vcpu_type = input_str(c, "vcpu_type")
        .filter(|t| snp::vcpu_sig(t).is_some())
        .map(str::to_string);
    SnpCase {
        vcpus: input(c, "vcpus").unwrap().as_integer().unwrap() as u32,
        vmm,
        vcpu_type,
        vcpu_sig: input_str(c, "vcpu_sig").and_then(hexnum).map(|s| s as u32),
        guest_features: hexnum(input_str(c, "guest_features").unwrap()).unwrap(),
        ovmf: c.dir.join(input_str(c, "ovmf").unwrap()),
        kernel: input_file(c, "kernel"),
        initrd: input_file(c, "initrd"),
        append: input_str(c, "append").map(str::to_string),
        svsm: input_file(c, "svsm"),
        vars_size: input(c, "ovmf_vars_size")
            .and_then(|v| v.as_integer())
            .map(|v| v as u64),
    }
}

fn sha256(p: &PathBuf) -> [u8; 32] {
    sha2::Sha256::digest(std::fs::read(p).unwrap()).into()
}

fn lib_snp(s: &SnpCase) -> Result<snp::SnpMeasurement, SnpMeasureError> {
    let ovmf = std::fs::read(&s.ovmf).unwrap();
    let svsm = s.svsm.as_ref().map(|p| std::fs::read(p).unwrap());
    let vmm = match s.vmm {
        "qemu" => VmmType::Qemu,
        "ec2" => VmmType::Ec2,
        _ => VmmType::Gce,
    };
    let kernel = s.kernel.as_ref().map(|k| {
        let initrd = s
            .initrd
            .as_ref()
            .map(sha256)
            .unwrap_or_else(|| sha2::Sha256::digest([]).into());
        KernelHashes::new(sha256(k), initrd, s.append.as_deref())
    });
    let sig = s
        .vcpu_sig
        .or_else(|| s.vcpu_type.as_deref().and_then(snp::vcpu_sig))
        .unwrap_or_default();
    snp::snp_launch_digest(&SnpLaunch {
        ovmf: &ovmf,
        vcpus: s.vcpus,
        vcpu_sig: sig,
        vmm,
        guest_features: s.guest_features,
        kernel,
        svsm: svsm.as_deref().map(|image| Svsm {
            image,
            vars_size: s.vars_size.unwrap(),
        }),
    })
}

fn cli_args(s: &SnpCase, format: &str) -> Vec<String> {
    let mut a: Vec<String> = vec!["measure".into(), "snp".into()];
    let mut push = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    push("--ovmf", s.ovmf.display().to_string());
    if let Some(k) = &s.kernel {
        push("--kernel", k.display().to_string());
    }
    if let Some(i) = &s.initrd {
        push("--initrd", i.display().to_string());
    }
    if let Some(ap) = &s.append {
        push("--append", ap.clone());
    }
    if let Some(p) = &s.svsm {
        push("--svsm", p.display().to_string());
        push("--vars-size", s.vars_size.unwrap().to_string());
    }
    push("--vcpus", s.vcpus.to_string());
    if let Some(t) = &s.vcpu_type {
        push("--vcpu-type", t.clone());
    }
    if let Some(sig) = s.vcpu_sig {
        push("--vcpu-sig", format!("{sig:#x}"));
    }
    push("--vmm-type", s.vmm.to_string());
    push("--guest-features", format!("{:#x}", s.guest_features));
    push("--format", format.to_string());
    a
}

fn run(args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn expected<'a>(c: &'a Case, key: &str) -> &'a str {
    c.expected(key).and_then(|v| v.as_str()).unwrap()
}

#[test]
fn snp_launch_vectors_work() {
    let cases = common::cases("measured/snp-launch");
    let mut valid = 0;
    for c in &cases {
        let s = snp_case(c);
        let lib = lib_snp(&s);
        if c.expected_valid() {
            let m = lib.unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(
                hex::encode(m.measurement),
                expected(c, "measurement"),
                "{}",
                c.name
            );
            if let Some(h) = c.facts().and_then(|f| f.get("snp_ovmf_hash")) {
                assert_eq!(hex::encode(m.ovmf_hash), h.as_str().unwrap(), "{}", c.name);
            }
            valid += 1;
        } else {
            assert_eq!(
                lib.unwrap_err(),
                SnpMeasureError::KernelHashesUnsupported,
                "{}",
                c.name
            );
        }
    }
    assert!(valid >= 12, "only {valid} valid snp-launch cases");
}

#[test]
fn snp_launch_cli_works() {
    for c in common::cases("measured/snp-launch") {
        let s = snp_case(&c);
        let (code, out, err) = run(&cli_args(&s, "json"));
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out} {err}", c.name));
        if c.expected_valid() {
            assert_eq!(code, 0, "{}: {out} {err}", c.name);
            assert_eq!(v["verdict"], "computed");
            assert_eq!(v["measurement"], expected(&c, "measurement"), "{}", c.name);
            assert_eq!(v["vcpus"], s.vcpus);
            assert_eq!(v["vmm_type"], s.vmm);
            let facts = c.facts().unwrap();
            assert_eq!(v["ovmf"]["sha256"], facts["ovmf_sha256"].as_str().unwrap());
            if let Some(h) = facts.get("snp_ovmf_hash") {
                assert_eq!(v["ovmf"]["snp_ovmf_hash"], h.as_str().unwrap());
            }
            if s.kernel.is_some() {
                assert_eq!(v["append"], s.append.as_deref().unwrap_or_default());
                assert_eq!(
                    v["kernel"]["sha256"],
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                );
            }
            // The policy fragment parses as a policy and pins the value.
            let (code, out, err) = run(&cli_args(&s, "policy"));
            assert_eq!(code, 0, "{}: {err}", c.name);
            let policy = attestation_verifier::policy::Policy::from_toml(&out)
                .unwrap_or_else(|e| panic!("{}: {e}\n{out}", c.name));
            assert_eq!(
                hex::encode(&policy.snp.measurements[0].0),
                expected(&c, "measurement")
            );
        } else {
            assert_eq!(code, 1, "{}: {out} {err}", c.name);
            assert_eq!(v["verdict"], "rejected");
            assert_eq!(v["code"], "kernel-hashes-unsupported");
            let reason = v["reasons"][0].as_str().unwrap();
            assert!(reason.contains("SNP_KERNEL_HASHES"), "{reason}");
        }
    }
}

/// The `sev` crate's calculation agrees for the QEMU cases without SVSM.
#[test]
fn snp_launch_matches_sev_crate() {
    use sev::measurement::snp::{SnpMeasurementArgs, snp_calc_launch_digest};
    use sev::measurement::vcpu_types::CpuType;
    use sev::measurement::vmsa::{GuestFeatures, VMMType};
    let mut compared = 0;
    for c in common::cases("measured/snp-launch") {
        let s = snp_case(&c);
        if s.vmm != "qemu" || s.svsm.is_some() {
            continue;
        }
        let ours = lib_snp(&s);
        let theirs = snp_calc_launch_digest(SnpMeasurementArgs {
            vcpus: s.vcpus,
            vcpu_type: CpuType::try_from(s.vcpu_type.as_deref().unwrap()).unwrap(),
            ovmf_file: s.ovmf.clone(),
            guest_features: GuestFeatures(s.guest_features),
            kernel_file: s.kernel.clone(),
            initrd_file: s.initrd.clone(),
            append: s.append.as_deref(),
            ovmf_hash_str: None,
            vmm_type: Some(VMMType::QEMU),
        });
        match (ours, theirs) {
            (Ok(o), Ok(t)) => assert_eq!(hex::encode(o.measurement), t.get_hex_ld(), "{}", c.name),
            (Err(_), Err(_)) => {}
            (o, t) => panic!(
                "{}: ours {o:?}, sev crate {:?}",
                c.name,
                t.map(|t| t.get_hex_ld())
            ),
        }
        compared += 1;
    }
    assert!(compared >= 8, "compared {compared}");
}

#[test]
fn tdx_mrtd_vectors_work() {
    for c in common::cases("measured/tdx-mrtd") {
        let image = c.dir.join(input_str(&c, "image").unwrap());
        let bytes = std::fs::read(&image).unwrap();
        let lib = tdx::tdx_mrtd(&bytes);
        let args: Vec<String> = vec![
            "measure".into(),
            "tdx".into(),
            "--tdvf".into(),
            image.display().to_string(),
            "--format".into(),
            "json".into(),
        ];
        let (code, out, err) = run(&args);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        if c.expected_valid() {
            let m = lib.unwrap();
            assert_eq!(hex::encode(m.mrtd), expected(&c, "mrtd"), "{}", c.name);
            assert_eq!(
                hex::encode(m.mrtd_two_pass),
                expected(&c, "mrtd_two_pass"),
                "{}",
                c.name
            );
            let facts = c.facts().unwrap();
            assert_eq!(
                m.pages_added as i64,
                facts["page_added_pages"].as_integer().unwrap()
            );
            assert_eq!(
                m.sections.len(),
                facts["sections"].as_array().unwrap().len()
            );
            assert_eq!(code, 0, "{err}");
            assert_eq!(v["mrtd"], expected(&c, "mrtd"));
            assert_eq!(v["mrtd_two_pass"], expected(&c, "mrtd_two_pass"));
            assert_eq!(v["tdvf"]["sha256"], facts["image_sha256"].as_str().unwrap());
            let mut p = args.clone();
            *p.last_mut().unwrap() = "policy".into();
            let (code, out, _) = run(&p);
            assert_eq!(code, 0);
            let policy = attestation_verifier::policy::Policy::from_toml(&out).unwrap();
            assert_eq!(hex::encode(&policy.tdx.mrtds[0].0), expected(&c, "mrtd"));
        } else {
            assert!(
                matches!(lib, Err(TdxMeasureError::DataOutsideImage { .. })),
                "{}: {lib:?}",
                c.name
            );
            assert_eq!(code, 1, "{out} {err}");
            assert_eq!(v["verdict"], "rejected");
            assert_eq!(v["code"], "tdvf-section-outside-image");
        }
    }
}

/// Truncated and bit-flipped copies of every firmware vector are refused or
/// measured, never a panic; the CLI answers 2 for unusable command lines.
#[test]
fn mutated_firmware_rejects_without_panic() {
    let mut images: Vec<Vec<u8>> = Vec::new();
    for c in common::cases("measured/snp-launch") {
        images.push(std::fs::read(c.dir.join(input_str(&c, "ovmf").unwrap())).unwrap());
    }
    for c in common::cases("measured/tdx-mrtd") {
        images.push(std::fs::read(c.dir.join(input_str(&c, "image").unwrap())).unwrap());
    }
    images.sort();
    images.dedup();
    let launch = |ovmf: &[u8]| {
        snp::snp_launch_digest(&SnpLaunch {
            ovmf,
            vcpus: 2,
            vcpu_sig: 0x800f12,
            vmm: VmmType::Ec2,
            guest_features: 1,
            kernel: Some(KernelHashes::new([0; 32], [0; 32], None)),
            svsm: None,
        })
    };
    for img in &images {
        let n = img.len();
        // Small images are measured whole for every third byte flipped; for large ones
        // (hashing megabytes per try is slow in debug builds) only the parsers run.
        let small = n <= 16 * 4096;
        let step = if small { 3 } else { 61 };
        for at in (n.saturating_sub(4096)..n).step_by(step) {
            let mut m = img.clone();
            m[at] ^= 0xff;
            let _ = tdx::parse_tdvf(&m);
            if small {
                let _ = tdx::tdx_mrtd(&m);
                let _ = launch(&m);
            }
        }
        for cut in [1, 31, 50, 51, 4095] {
            let m = &img[..n.saturating_sub(cut)];
            assert!(tdx::parse_tdvf(m).is_err());
            assert!(launch(m).is_err());
        }
    }
    // Usage errors: exit 2 (missing file, no vCPU type on QEMU, unknown vCPU type,
    // --append without --kernel).
    let c = &common::cases("measured/snp-launch")[0];
    let ovmf = c.dir.join("ovmf.bin").display().to_string();
    let snp_args = |ovmf: &str, extra: &[&str]| -> Vec<String> {
        let base = ["measure", "snp", "--ovmf", ovmf, "--vcpus", "1"];
        let tail = ["--vmm-type", "qemu", "--guest-features", "1"];
        base.iter()
            .chain(extra)
            .chain(&tail)
            .map(|s| s.to_string())
            .collect()
    };
    for args in [
        snp_args("/nonexistent", &["--vcpu-type", "EPYC-v4"]),
        snp_args(&ovmf, &[]),
        snp_args(&ovmf, &["--vcpu-type", "Skylake"]),
        snp_args(&ovmf, &["--vcpu-type", "EPYC-v4", "--append", ""]),
        ["measure", "tdx", "--tdvf", "/nonexistent"]
            .map(String::from)
            .to_vec(),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

/// Firmware over the 64 MiB cap is refused (exit 1, `input-too-large`) without being
/// read whole; a refusal in `--format policy` prints nothing on stdout.
#[test]
fn oversized_and_policy_refusal_rejects() {
    let dir = std::env::temp_dir().join(format!("sigil-measure-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.fd");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len((64 << 20) + 4096).unwrap(); // sparse
    let big = big.display().to_string();
    let (code, out, err) = run(&["measure", "tdx", "--tdvf", &big].map(String::from));
    assert_eq!(code, 1, "{out} {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["code"], "input-too-large");
    let args = [
        "measure",
        "snp",
        "--ovmf",
        &big,
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--vmm-type",
        "qemu",
        "--guest-features",
        "1",
    ]
    .map(String::from);
    let (code, out, _) = run(&args);
    assert_eq!(code, 1);
    assert!(out.contains("input-too-large"), "{out}");
    let c = common::cases("measured/tdx-mrtd")
        .into_iter()
        .find(|c| !c.expected_valid())
        .unwrap();
    let image = c
        .dir
        .join(input_str(&c, "image").unwrap())
        .display()
        .to_string();
    let (code, out, err) =
        run(&["measure", "tdx", "--tdvf", &image, "--format", "policy"].map(String::from));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("tdvf-section-outside-image"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
