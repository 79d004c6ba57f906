//! `sigil-verify measure tdx --uki`: the RTMR1 and RTMR2 events of a Unified Kernel Image,
//! on synthetic UKIs built here (a PE32+ image with `.linux`, `.osrel`, `.cmdline`,
//! `.initrd`, ... sections, as `ukify` lays them out).
//!
//! The differential test replays the RTMR2 events from zero and compares the result with
//! what systemd's own calculator prints for PCR 11 (`systemd-measure calculate
//! --bank=sha384 --phase=`, the sections alone), from Debian's `systemd` package. Without
//! the tool the test says so and passes, unless `SIGIL_REQUIRE_REFERENCE_TOOLS` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256, Sha384};
use sigil_test_support::pe::{Section, pe_image};

const SYSTEMD_MEASURE: &str = "/usr/lib/systemd/systemd-measure";

fn tdvf() -> PathBuf {
    let debian = PathBuf::from("/usr/share/ovmf/OVMF.fd");
    if debian.exists() {
        return debian;
    }
    sigil_test_support::vectors::vectors_dir()
        .join("measured/tdx-mrtd/debian-bookworm-ovmf/OVMF.fd")
}

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-measure-uki-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn measure(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(["measure", "tdx", "--tdvf"])
        .arg(tdvf())
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The payload of a synthetic UKI: (section, contents).
fn payload() -> Vec<(&'static str, Vec<u8>)> {
    let linux: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
    let initrd: Vec<u8> = (0..3333u32).map(|i| (i * 13) as u8).collect();
    vec![
        (".linux", linux),
        (".osrel", b"ID=sigil\nVERSION_ID=1\n".to_vec()),
        (".cmdline", b"console=ttyS0 ro quiet".to_vec()),
        (".initrd", initrd),
        (".splash", b"BM not really a bitmap".to_vec()),
        (".dtb", vec![0xd0, 0x0d, 0xfe, 0xed, 1, 2, 3]),
        (".pcrpkey", b"-----BEGIN PUBLIC KEY-----\n".to_vec()),
    ]
}

/// A UKI with the stub's code first and the payload sections in a file order unlike the
/// stub's measuring order, plus a `.pcrsig` (never measured).
fn uki(payload: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let mut sections = vec![
        Section::new(".text", &[0xc3; 300]),
        Section::new(".sdmagic", b"#### LoaderInfo: systemd-stub ####"),
        Section::new(".pcrsig", b"{\"sha384\":[]}"),
    ];
    for (name, data) in payload.iter().rev() {
        sections.push(Section::new(name, data));
    }
    pe_image(&sections)
}

/// The events' digests extended into a register of `D`'s size from zero, hex.
fn replay_with<D: Digest>(events: &[serde_json::Value]) -> String {
    let mut reg = vec![0u8; <D as Digest>::output_size()];
    for e in events {
        let d = hex::decode(e["digest"].as_str().unwrap()).unwrap();
        let mut h = D::new();
        h.update(&reg);
        h.update(&d);
        reg = h.finalize().to_vec();
    }
    hex::encode(reg)
}

fn replay(events: &[serde_json::Value]) -> String {
    replay_with::<Sha384>(events)
}

fn rtmr(v: &serde_json::Value, n: u64) -> Vec<serde_json::Value> {
    v["boot_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rtmr"] == n)
        .cloned()
        .collect()
}

/// `s` in UTF-16LE with a terminating NUL: the load options systemd-stub hands the kernel.
fn utf16_nul(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn uki_events_works() {
    let dir = tmpdir("events");
    let payload = payload();
    let image = uki(&payload);
    let path = write(&dir, "sigil.efi", &image);
    let v = json(&measure(&["--uki".as_ref(), path.as_os_str()]));
    let r1 = rtmr(&v, 1);
    assert_eq!(r1.len(), 1);
    assert_eq!(r1[0]["event_type"], "EV_EFI_BOOT_SERVICES_APPLICATION");
    assert_eq!(
        r1[0]["digest"].as_str().unwrap(),
        hex::encode(attestation_verifier::measure::tdx_boot::kernel_digest(&image).unwrap())
    );
    // RTMR2: name then contents for each section, in the stub's order, then the kernel's
    // load options (the initrd is not predicted: the UKI has a .pcrsig and a .pcrpkey,
    // which a stub may pass inside the initrd).
    let r2 = rtmr(&v, 2);
    assert_eq!(r2.len(), 2 * payload.len() + 1);
    let opts = &r2[2 * payload.len()];
    assert_eq!(opts["what"], "kernel load options");
    assert_eq!(opts["event_type"], "EV_EVENT_TAG LOADED_IMAGE::LoadOptions");
    assert_eq!(
        opts["digest"].as_str().unwrap(),
        hex::encode(Sha384::digest(utf16_nul("console=ttyS0 ro quiet")))
    );
    let omitted = &r1[0]["input"]["kernel_events_not_predicted"];
    assert_eq!(omitted[0]["what"], "kernel initrd");
    assert!(
        omitted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("inside the initrd")
    );
    let r2 = r2[..2 * payload.len()].to_vec();
    for (i, (name, data)) in payload.iter().enumerate() {
        let mut label = name.as_bytes().to_vec();
        label.push(0);
        assert_eq!(r2[2 * i]["what"], format!("{name} name"));
        assert_eq!(
            r2[2 * i]["digest"].as_str().unwrap(),
            hex::encode(Sha384::digest(&label))
        );
        assert_eq!(r2[2 * i + 1]["what"], format!("{name} contents"));
        assert_eq!(
            r2[2 * i + 1]["digest"].as_str().unwrap(),
            hex::encode(Sha384::digest(data))
        );
        assert_eq!(r2[2 * i + 1]["event_type"], "EV_IPL");
    }
    assert_eq!(
        r1[0]["input"]["pcr11_sha384"].as_str().unwrap(),
        replay(&r2)
    );

    // The policy fragment pins the same events.
    let out = measure(&[
        "--uki".as_ref(),
        path.as_os_str(),
        "--format".as_ref(),
        "policy".as_ref(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let events = doc["tdx"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1 + 2 * payload.len() + 1);
    assert_eq!(events[0]["rtmr"].as_integer(), Some(1));
    assert_eq!(events[0]["digest"].as_str(), r1[0]["digest"].as_str());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn uki_with_kernel_or_initrd_rejects() {
    let dir = tmpdir("conflict");
    let path = write(&dir, "sigil.efi", &uki(&payload()));
    for other in ["--kernel", "--initrd"] {
        let out = measure(&[
            "--uki".as_ref(),
            path.as_os_str(),
            other.as_ref(),
            path.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(2), "--uki with {other}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn uki_without_linux_or_not_pe_rejects() {
    let dir = tmpdir("reject");
    let no_linux = write(
        &dir,
        "a.efi",
        &pe_image(&[Section::new(".osrel", b"ID=x\n")]),
    );
    let not_pe = write(&dir, "b.efi", b"not a UKI");
    for (path, code) in [(no_linux, "uki-no-linux"), (not_pe, "uki-not-pe")] {
        let out = measure(&["--uki".as_ref(), path.as_os_str()]);
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["code"], code);
    }
    std::fs::remove_dir_all(dir).ok();
}

fn measure_vtpm(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .args(["measure", "vtpm"])
        .args(args)
        .output()
        .unwrap()
}

/// The same events in a TPM's SHA-256 bank: PCR 4 the UKI's Authenticode SHA-256, PCR 11
/// the stub's, as JSON and as `[vtpm] events` rules a policy reads.
#[test]
fn uki_vtpm_events_works() {
    let dir = tmpdir("vtpm");
    let payload = payload();
    let image = uki(&payload);
    let path = write(&dir, "sigil.efi", &image);
    let out = measure_vtpm(&["--uki".as_ref(), path.as_os_str()]);
    let v = json(&out);
    assert_eq!(v["bank"], "sha256");
    let events = v["pcr_events"].as_array().unwrap();
    assert_eq!(events.len(), 1 + 2 * payload.len() + 1);
    assert_eq!(v["not_predicted"][0]["what"], "kernel initrd");
    assert_eq!(
        (events[0]["pcr"].as_u64(), events[0]["what"].as_str()),
        (Some(4), Some("uki"))
    );
    assert_eq!(
        events[0]["digest"].as_str().unwrap(),
        hex::encode(attestation_verifier::measure::tdx_boot::kernel_digest_sha256(&image).unwrap())
    );
    let pcr11: Vec<_> = events[1..events.len() - 1].to_vec();
    let pcr9 = &events[events.len() - 1];
    assert_eq!(
        (pcr9["pcr"].as_u64(), pcr9["what"].as_str()),
        (Some(9), Some("kernel load options"))
    );
    assert_eq!(
        pcr9["digest"].as_str().unwrap(),
        hex::encode(Sha256::digest(utf16_nul("console=ttyS0 ro quiet")))
    );
    for (i, (name, data)) in payload.iter().enumerate() {
        let mut label = name.as_bytes().to_vec();
        label.push(0);
        assert_eq!(pcr11[2 * i]["pcr"], 11);
        assert_eq!(
            pcr11[2 * i]["digest"].as_str().unwrap(),
            hex::encode(Sha256::digest(&label))
        );
        assert_eq!(pcr11[2 * i + 1]["what"], format!("{name} contents"));
        assert_eq!(
            pcr11[2 * i + 1]["digest"].as_str().unwrap(),
            hex::encode(Sha256::digest(data))
        );
    }
    assert_eq!(
        v["pcr11_sha256"].as_str().unwrap(),
        replay_with::<Sha256>(&pcr11)
    );

    let out = measure_vtpm(&[
        "--uki".as_ref(),
        path.as_os_str(),
        "--format".as_ref(),
        "policy".as_ref(),
    ]);
    assert!(out.status.success());
    let policy =
        attestation_verifier::policy::Policy::from_toml(&String::from_utf8(out.stdout).unwrap())
            .unwrap();
    // The rules, in the policy's canonical order, are the events.
    let mut rules: Vec<(u64, String)> = policy
        .vtpm
        .events
        .iter()
        .map(|r| (u64::from(r.pcr), hex::encode(&r.digest.0)))
        .collect();
    let mut want: Vec<(u64, String)> = events
        .iter()
        .map(|e| {
            (
                e["pcr"].as_u64().unwrap(),
                e["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rules.sort();
    want.sort();
    assert_eq!(rules, want);

    // What the TDX command refuses, this one refuses the same way.
    let not_pe = write(&dir, "b.efi", b"not a UKI");
    let out = measure_vtpm(&["--uki".as_ref(), not_pe.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "uki-not-pe");
    std::fs::remove_dir_all(dir).ok();
}

/// The RTMR2 events replayed from zero equal systemd's own PCR 11 calculation.
#[test]
fn uki_pcr11_matches_systemd_measure_works() {
    if !Path::new(SYSTEMD_MEASURE).exists() {
        let msg = format!(
            "measure_uki: no {SYSTEMD_MEASURE} (Debian package systemd); the differential test"
        );
        let required =
            std::env::var_os("SIGIL_REQUIRE_REFERENCE_TOOLS").is_some_and(|v| !v.is_empty());
        assert!(
            !required,
            "{msg} is required (SIGIL_REQUIRE_REFERENCE_TOOLS is set)"
        );
        eprintln!("{msg} is skipped");
        return;
    }
    let dir = tmpdir("systemd");
    let full = payload();
    // The full set systemd-measure knows, and a minimal UKI (kernel and command line).
    let minimal: Vec<_> = full
        .iter()
        .filter(|(n, _)| matches!(*n, ".linux" | ".cmdline"))
        .cloned()
        .collect();
    for (i, payload) in [full, minimal].iter().enumerate() {
        let image = write(&dir, &format!("uki{i}.efi"), &uki(payload));
        let v = json(&measure(&["--uki".as_ref(), image.as_os_str()]));
        // systemd-stub's events only (the kernel's own come after them).
        let stub: Vec<_> = rtmr(&v, 2)
            .into_iter()
            .filter(|e| e["event_type"] == "EV_IPL")
            .collect();
        let ours = replay(&stub);
        let vtpm = json(&measure_vtpm(&["--uki".as_ref(), image.as_os_str()]));
        let ours256 = vtpm["pcr11_sha256"].as_str().unwrap().to_string();
        let mut cmd = Command::new(SYSTEMD_MEASURE);
        cmd.args([
            "calculate",
            "--bank=sha384",
            "--bank=sha256",
            "--phase=",
            "--json=short",
        ]);
        for (name, data) in payload {
            let file = write(&dir, &format!("{i}{name}"), data);
            cmd.arg(format!(
                "--{}={}",
                name.trim_start_matches('.'),
                file.display()
            ));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pcr = &theirs["sha384"][0];
        assert_eq!(pcr["pcr"], 11);
        assert_eq!(pcr["hash"].as_str().unwrap(), ours, "payload {i}");
        let pcr = &theirs["sha256"][0];
        assert_eq!(pcr["pcr"], 11);
        assert_eq!(
            pcr["hash"].as_str().unwrap(),
            ours256,
            "payload {i}, SHA-256 bank"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The systemd-measure of a newer systemd than the distribution's 252 (Debian 12's
/// backports, extracted by `scripts/test.sh`), or the distribution's own where it is newer.
fn newer_systemd_measure() -> Option<PathBuf> {
    let required = std::env::var_os("SIGIL_REQUIRE_REFERENCE_TOOLS").is_some_and(|v| !v.is_empty());
    let tool = std::env::var_os("SIGIL_SYSTEMD_MEASURE_NEWER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if tool.is_none() {
        let msg = "measure_uki: SIGIL_SYSTEMD_MEASURE_NEWER names no systemd-measure of systemd 253 or later; the differential test of newer stubs";
        assert!(
            !required,
            "{msg} is required (SIGIL_REQUIRE_REFERENCE_TOOLS is set)"
        );
        eprintln!("{msg} is skipped");
    }
    tool
}

/// Each stub version's section list (`stub_sections`) against the `systemd-measure` of a
/// newer systemd: a UKI whose `.sdmagic` names that tool's version and that carries every
/// section a stub of any version measures (`.uname`, `.sbat` and `.ucode` among them)
/// replays to the PCR 11 the tool computes from the sections it knows, in both banks; and
/// the sections the tool knows are exactly the ones the version's list measures.
#[test]
fn uki_pcr11_matches_newer_systemd_measure_works() {
    let Some(tool) = newer_systemd_measure() else {
        return;
    };
    let run = |args: &[&str]| {
        let out = Command::new(&tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            tool.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let version = run(&["--version"]);
    let major: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version in {version:?}"));
    assert!(
        major >= 253,
        "{} is systemd {major}, not newer than 252",
        tool.display()
    );
    // The tool's section options, as its help maps them: `--linux=PATH ... → .linux`.
    let help = run(&["--help"]);
    let known: Vec<String> = help
        .lines()
        .filter_map(|l| l.split_once('→'))
        .map(|(_, section)| section.trim().to_string())
        .filter(|section| section.starts_with('.'))
        .collect();
    let measured: Vec<&str> = attestation_verifier::measure::uki::stub_sections(Some(major))
        .filter(|s| *s != ".pcrsig")
        .collect();
    assert_eq!(
        known, measured,
        "systemd {major}'s sections against stub_sections({major})"
    );

    let dir = tmpdir("systemd-newer");
    let mut payload = payload();
    payload.push((".uname", b"6.1.0-sigil".to_vec()));
    payload.push((
        ".sbat",
        b"sbat,1,SBAT Version,sbat,1,https://example.org\n".to_vec(),
    ));
    payload.push((".ucode", vec![0x5a; 777]));
    let magic = format!("#### LoaderInfo: systemd-stub {major}.1 ####");
    let mut sections = vec![
        Section::new(".text", &[0xc3; 300]),
        Section::new(".sdmagic", magic.as_bytes()),
        Section::new(".pcrsig", b"{}"),
    ];
    for (name, data) in payload.iter().rev() {
        sections.push(Section::new(name, data));
    }
    let image = write(&dir, "uki.efi", &pe_image(&sections));
    let v = json(&measure(&["--uki".as_ref(), image.as_os_str()]));
    let stub: Vec<_> = rtmr(&v, 2)
        .into_iter()
        .filter(|e| e["event_type"] == "EV_IPL")
        .collect();
    let ours = replay(&stub);
    let vtpm = json(&measure_vtpm(&["--uki".as_ref(), image.as_os_str()]));
    assert_eq!(vtpm["stub_version"], major);
    let ours256 = vtpm["pcr11_sha256"].as_str().unwrap().to_string();
    let mut args = vec![
        "calculate".to_string(),
        "--bank=sha384".into(),
        "--bank=sha256".into(),
        "--phase=".into(),
        "--json=short".into(),
    ];
    for (name, data) in &payload {
        if known.iter().any(|k| k == name) {
            let file = write(&dir, &format!("s{name}"), data);
            args.push(format!(
                "--{}={}",
                name.trim_start_matches('.'),
                file.display()
            ));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let theirs: serde_json::Value = serde_json::from_str(&run(&args)).unwrap();
    assert_eq!(theirs["sha384"][0]["pcr"], 11);
    assert_eq!(
        theirs["sha384"][0]["hash"].as_str().unwrap(),
        ours,
        "systemd {major}, SHA-384"
    );
    assert_eq!(
        theirs["sha256"][0]["hash"].as_str().unwrap(),
        ours256,
        "systemd {major}, SHA-256"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Which sections a stub measures follows its version: a `.uname`, `.sbat` or `.ucode`
/// the stub does not know adds no event.
#[test]
fn uki_sections_follow_the_stub_version_works() {
    let dir = tmpdir("versions");
    let names = |version: &str| {
        let magic = format!("#### LoaderInfo: systemd-stub {version} ####");
        let image = pe_image(&[
            Section::new(".text", &[0xc3; 64]),
            Section::new(".sdmagic", magic.as_bytes()),
            Section::new(".ucode", &[1; 16]),
            Section::new(".sbat", b"sbat,1\n"),
            Section::new(".uname", b"6.1.0"),
            Section::new(".linux", &[0x4d; 512]),
        ]);
        let path = write(&dir, &format!("{version}.efi"), &image);
        let v = json(&measure_vtpm(&["--uki".as_ref(), path.as_os_str()]));
        v["pcr_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["pcr"] == 11 && e["what"].as_str().unwrap().ends_with(" name"))
            .map(|e| {
                e["what"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches(" name")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(names("252.39-1~deb12u2"), [".linux"]);
    assert_eq!(names("254.26-1~bpo12+1"), [".linux", ".uname", ".sbat"]);
    assert_eq!(names("256.7"), [".linux", ".ucode", ".uname", ".sbat"]);
    assert_eq!(names("257.9"), [".linux", ".ucode", ".uname", ".sbat"]);
    std::fs::remove_dir_all(dir).ok();
}

/// A UKI laid out as the agent image's (a systemd-stub 252 with its own `.sbat`, then
/// `.osrel`, `.cmdline`, `.initrd`, `.linux`): PCR 11 holds no `.sbat` event, and the
/// kernel's PCR 9 events are its load options and initrd, in both banks; a changed
/// command line or initrd changes exactly the events that cover it.
#[test]
fn uki_kernel_events_works() {
    let dir = tmpdir("kernel");
    let cmdline = "console=ttyS0,115200 panic=-1 loglevel=4";
    let initrd: Vec<u8> = (0..9000u32).map(|i| (i * 31 + 7) as u8).collect();
    let image = |cmdline: &str, initrd: &[u8]| {
        pe_image(&[
            Section::new(".text", &[0xc3; 300]),
            Section::new(".sbat", b"sbat,1,SBAT Version\n"),
            Section::new(
                ".sdmagic",
                b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####",
            ),
            Section::new(".osrel", b"ID=sigil-agent\n"),
            Section::new(".cmdline", cmdline.as_bytes()),
            Section::new(".initrd", initrd),
            Section::new(".linux", &[0x4d; 4000]),
        ])
    };
    let events = |path: &Path| {
        let v = json(&measure_vtpm(&["--uki".as_ref(), path.as_os_str()]));
        assert_eq!(v["stub_version"], 252);
        assert_eq!(v["not_predicted"], serde_json::json!([]));
        v["pcr_events"].as_array().unwrap().clone()
    };
    let path = write(&dir, "a.efi", &image(cmdline, &initrd));
    let got = events(&path);
    let whats: Vec<(u64, &str)> = got
        .iter()
        .map(|e| (e["pcr"].as_u64().unwrap(), e["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        whats,
        [
            (4, "uki"),
            (11, ".linux name"),
            (11, ".linux contents"),
            (11, ".osrel name"),
            (11, ".osrel contents"),
            (11, ".cmdline name"),
            (11, ".cmdline contents"),
            (11, ".initrd name"),
            (11, ".initrd contents"),
            (9, "kernel load options"),
            (9, "kernel initrd"),
        ]
    );
    assert_eq!(
        got[9]["digest"].as_str().unwrap(),
        hex::encode(Sha256::digest(utf16_nul(cmdline)))
    );
    assert_eq!(got[10]["event_type"], "EV_EVENT_TAG Linux initrd");
    assert_eq!(
        got[10]["digest"].as_str().unwrap(),
        hex::encode(Sha256::digest(&initrd))
    );
    // SHA-384, RTMR2 through the CC measurement protocol.
    let v = json(&measure(&["--uki".as_ref(), path.as_os_str()]));
    let kernel: Vec<_> = rtmr(&v, 2)
        .into_iter()
        .filter(|e| {
            e["event_type"]
                .as_str()
                .unwrap()
                .starts_with("EV_EVENT_TAG")
        })
        .collect();
    assert_eq!(kernel.len(), 2);
    assert_eq!(
        kernel[0]["digest"].as_str().unwrap(),
        hex::encode(Sha384::digest(utf16_nul(cmdline)))
    );
    assert_eq!(
        kernel[1]["digest"].as_str().unwrap(),
        hex::encode(Sha384::digest(&initrd))
    );

    // One changed byte of the command line, then of the initrd: the events that cover it
    // differ (the UKI, the section's contents, the kernel's event), no other.
    let mut other = initrd.clone();
    other[100] ^= 1;
    for (name, changed, want) in [
        (
            "b.efi",
            image("console=ttyS0,115200 panic=-1 loglevel=7", &initrd),
            [0, 6, 9],
        ),
        ("c.efi", image(cmdline, &other), [0, 8, 10]),
    ] {
        let path = write(&dir, name, &changed);
        let differ: Vec<usize> = events(&path)
            .iter()
            .zip(&got)
            .enumerate()
            .filter(|(_, (a, b))| a["digest"] != b["digest"])
            .map(|(i, _)| i)
            .collect();
        assert_eq!(differ, want, "{name}");
    }
    std::fs::remove_dir_all(dir).ok();
}
