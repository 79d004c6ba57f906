//! Google's launch endorsements of GCE firmware (`verify::gce_endorsement`,
//! `sigil-verify gce-endorsement`), on endorsements made here with a test root and signing
//! key in Google's format (`endorsement.proto`): RSA signing key, RSASSA-PSS SHA-256 over
//! the serialized golden measurement, the signing certificate inside it. One golden
//! measurement is written byte by byte with Google's field numbers, so that the decoder's
//! numbering is checked against the schema rather than against itself. Both crypto
//! backends; every refusal typed; the command's JSON, policy fragment and exit codes.

#![cfg(feature = "gce")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::gce_endorsement::{
    GceEndorsementError, PROVENANCE_REQUIRED_FROM, verify_gce_endorsement, wire,
};
use attestation_verifier::verify::x509::X509Error;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding};
use prost::Message;
use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair, date_time_ymd};
use sha2::{Digest, Sha384};
use sigil_test_support::snp::{ca_params, p384_key};

/// 2025-06-01T00:00:00Z: inside every test certificate's validity.
const AT: UnixTime = UnixTime(1_748_736_000);
/// 2025-01-01T00:00:00Z.
const MADE: i64 = 1_735_689_600;

struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
    signer_der: Vec<u8>,
    signer_key: KeyPair,
}

fn rsa_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
}

fn signer_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(2030, 1, 1);
    p
}

fn pki_named(root_cn: &str) -> Pki {
    let root = CertifiedIssuer::self_signed(ca_params(root_cn), rsa_key()).unwrap();
    let signer_key = rsa_key();
    let signer_der = signer_params("gce-uefi-signer")
        .signed_by(&signer_key, &root)
        .unwrap()
        .der()
        .to_vec();
    Pki {
        root,
        signer_der,
        signer_key,
    }
}

fn pki() -> Pki {
    pki_named("GCE-cc-tcb-root")
}

fn root_der(p: &Pki) -> Vec<u8> {
    p.root.der().to_vec()
}

fn m(b: u8) -> Vec<u8> {
    vec![b; 48]
}

fn golden(p: &Pki) -> wire::VmGoldenMeasurement {
    wire::VmGoldenMeasurement {
        timestamp: Some(wire::Timestamp {
            seconds: MADE,
            nanos: 0,
        }),
        cl_spec: 700_123_456,
        commit: vec![0xc0, 0x11, 0x17],
        cert: p.signer_der.clone(),
        digest: Sha384::digest(b"firmware").to_vec(),
        ca_bundle: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
        sev_snp: Some(wire::VmSevSnp {
            svn: 3,
            measurements: BTreeMap::from([(1, m(0x11)), (2, m(0x22)), (4, m(0x44))]),
            family_id: vec![1; 16],
            image_id: vec![2; 16],
            policy: 0x30000,
            ca_bundle: Vec::new(),
        }),
        tdx: Some(wire::VmTdx {
            svn: 2,
            measurements: vec![
                wire::VmTdxMeasurement {
                    ram_gib: 16,
                    early_accept: false,
                    mrtd: m(0xa1),
                },
                wire::VmTdxMeasurement {
                    ram_gib: 16,
                    early_accept: true,
                    mrtd: m(0xa2),
                },
            ],
        }),
    }
}

fn sign_with(key: &KeyPair, alg: &'static dyn RsaEncoding, msg: &[u8]) -> Vec<u8> {
    let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.serialize_der()).unwrap();
    let mut sig = vec![0; kp.public_modulus_len()];
    kp.sign(alg, &SystemRandom::new(), msg, &mut sig).unwrap();
    sig
}

fn endorse_bytes(p: &Pki, golden: &[u8]) -> Vec<u8> {
    wire::VmLaunchEndorsement {
        serialized_uefi_golden: golden.to_vec(),
        signature: sign_with(&p.signer_key, &RSA_PSS_SHA256, golden),
    }
    .encode_to_vec()
}

fn endorse(p: &Pki, g: &wire::VmGoldenMeasurement) -> Vec<u8> {
    endorse_bytes(p, &g.encode_to_vec())
}

fn check(
    crypto: &dyn Crypto,
    endorsement: &[u8],
    root: &[u8],
) -> Result<attestation_verifier::verify::gce_endorsement::GceEndorsement, GceEndorsementError> {
    verify_gce_endorsement(crypto, endorsement, root, AT)
}

#[test]
fn endorsement_works() {
    let p = pki();
    let e = endorse(&p, &golden(&p));
    for crypto in [&RustCrypto as &dyn Crypto, &AwsLc] {
        let v = check(crypto, &e, &root_der(&p)).unwrap();
        assert_eq!(v.made, Some(UnixTime(MADE as u64)));
        assert_eq!(v.cl_spec, 700_123_456);
        assert_eq!(v.signer.as_deref(), Some("gce-uefi-signer"));
        assert_eq!(v.root_sha256, crypto.sha256(&root_der(&p)));
        let snp = v.sev_snp.as_ref().unwrap();
        assert_eq!((snp.svn, snp.policy), (3, 0x30000));
        assert_eq!(snp.family_id, Some([1; 16]));
        assert_eq!(snp.measurements.len(), 3);
        // Which vCPU count a MEASUREMENT is endorsed for; the count asked for must match.
        assert_eq!(v.snp(&[0x22; 48], None), Ok(2));
        assert_eq!(v.snp(&[0x22; 48], Some(2)), Ok(2));
        assert_eq!(
            v.snp(&[0x22; 48], Some(4)),
            Err(GceEndorsementError::MeasurementNotEndorsed {
                measurement: hex::encode([0x22; 48]),
                vcpus: Some(4)
            })
        );
        assert!(matches!(
            v.snp(&[0x33; 48], None),
            Err(GceEndorsementError::MeasurementNotEndorsed { vcpus: None, .. })
        ));
        let t = v.tdx(&[0xa2; 48]).unwrap();
        assert_eq!((t.ram_gib, t.early_accept), (16, true));
        assert_eq!(
            v.tdx(&[0xa3; 48]),
            Err(GceEndorsementError::MrtdNotEndorsed(hex::encode(
                [0xa3; 48]
            )))
        );
        assert_eq!(v.firmware(&Sha384::digest(b"firmware").into()), Ok(()));
        assert!(matches!(
            v.firmware(&Sha384::digest(b"other").into()),
            Err(GceEndorsementError::FirmwareDigest { .. })
        ));
    }
}

/// A protobuf field's key: (number << 3) | wire type.
fn key(field: u8, wire_type: u8) -> u8 {
    (field << 3) | wire_type
}

/// A length-delimited field (lengths here fit one or two varint bytes).
fn ld(field: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![key(field, 2)];
    let n = bytes.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        assert!(n < 0x4000);
        out.extend([(n as u8 & 0x7f) | 0x80, (n >> 7) as u8]);
    }
    out.extend_from_slice(bytes);
    out
}

/// A golden measurement written with `endorsement.proto`'s field numbers by hand:
/// timestamp 1 (seconds 1), cl_spec 2, commit 3, cert 4, digest 5, sev_snp 7
/// (svn 1, measurements 2 as map entries of key 1 and value 2, policy 5), tdx 8 (svn 1,
/// measurements 2: ram_gib 1, early_accept 2, mrtd 3).
#[test]
fn golden_fields_follow_googles_schema_works() {
    let p = pki();
    let mut g = Vec::new();
    g.extend(ld(1, &[key(1, 0), 0x80, 0x80, 0x80, 0x80, 0x06])); // 1610612736 s (2021)
    g.extend([key(2, 0), 42]);
    g.extend(ld(3, b"abc"));
    g.extend(ld(4, &p.signer_der));
    g.extend(ld(5, &[5; 48]));
    let mut entry = vec![key(1, 0), 8];
    entry.extend(ld(2, &[8; 48]));
    let mut snp = vec![key(1, 0), 7];
    snp.extend(ld(2, &entry));
    snp.extend([key(5, 0), 0x80, 0x80, 0x02]); // 0x8000
    g.extend(ld(7, &snp));
    let mut meas = vec![key(1, 0), 32, key(2, 0), 1];
    meas.extend(ld(3, &[9; 48]));
    let mut tdx = vec![key(1, 0), 4];
    tdx.extend(ld(2, &meas));
    g.extend(ld(8, &tdx));
    let e = endorse_bytes(&p, &g);
    let v = check(&AwsLc, &e, &root_der(&p)).unwrap();
    assert_eq!(v.made, Some(UnixTime(1_610_612_736)));
    assert_eq!(v.cl_spec, 42);
    assert_eq!(v.commit, b"abc");
    assert_eq!(v.firmware_sha384, Some([5; 48]));
    let snp = v.sev_snp.as_ref().unwrap();
    assert_eq!(snp.svn, 7);
    assert_eq!(snp.policy, 0x8000);
    assert_eq!(snp.measurements, BTreeMap::from([(8, [8; 48])]));
    assert_eq!(v.snp(&[8; 48], Some(8)), Ok(8));
    let t = v.tdx(&[9; 48]).unwrap();
    assert_eq!((t.ram_gib, t.early_accept), (32, true));
    assert_eq!(v.tdx.as_ref().unwrap().svn, 4);
}

#[test]
fn endorsement_refusals_rejects() {
    let p = pki();
    let root = root_der(&p);
    let good = golden(&p);
    for crypto in [&RustCrypto as &dyn Crypto, &AwsLc] {
        // One byte of the signed golden measurement changed, or of the signature.
        let mut outer = wire::VmLaunchEndorsement::decode(endorse(&p, &good).as_slice()).unwrap();
        let last = outer.serialized_uefi_golden.len() - 1;
        outer.serialized_uefi_golden[last] ^= 1;
        assert_eq!(
            check(crypto, &outer.encode_to_vec(), &root).unwrap_err(),
            GceEndorsementError::Signature
        );
        let mut outer = wire::VmLaunchEndorsement::decode(endorse(&p, &good).as_slice()).unwrap();
        outer.signature[7] ^= 0x40;
        assert_eq!(
            check(crypto, &outer.encode_to_vec(), &root).unwrap_err(),
            GceEndorsementError::Signature
        );
        // PKCS#1 v1.5 by the right key is not the PSS signature Google makes.
        let bytes = good.encode_to_vec();
        let pkcs1 = wire::VmLaunchEndorsement {
            serialized_uefi_golden: bytes.clone(),
            signature: sign_with(&p.signer_key, &RSA_PKCS1_SHA256, &bytes),
        };
        assert_eq!(
            check(crypto, &pkcs1.encode_to_vec(), &root).unwrap_err(),
            GceEndorsementError::Signature
        );
        // Another root: another name, or the same name with another key.
        let other = pki_named("Another root");
        assert_eq!(
            check(crypto, &endorse(&p, &good), &root_der(&other)).unwrap_err(),
            GceEndorsementError::NotIssuedByRoot
        );
        let impostor = pki();
        assert!(matches!(
            check(crypto, &endorse(&p, &good), &root_der(&impostor)).unwrap_err(),
            GceEndorsementError::Cert(X509Error::BadSignature { .. })
        ));
        // Outside the signing certificate's validity.
        assert!(matches!(
            verify_gce_endorsement(crypto, &endorse(&p, &good), &root, UnixTime(1_900_000_000))
                .unwrap_err(),
            GceEndorsementError::Cert(X509Error::Expired { .. })
        ));
        // A signing key that is not RSA.
        let ec_key = p384_key();
        let ec_cert = signer_params("ec-signer")
            .signed_by(&ec_key, &p.root)
            .unwrap()
            .der()
            .to_vec();
        let mut g = good.clone();
        g.cert = ec_cert;
        assert_eq!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::SigningKeyNotRsa
        );
        // No signing certificate; a digest of another length.
        let mut g = good.clone();
        g.cert.clear();
        assert_eq!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::NoSigningCert
        );
        let mut g = good.clone();
        g.sev_snp
            .as_mut()
            .unwrap()
            .measurements
            .insert(8, vec![0; 32]);
        assert_eq!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::FieldLength {
                field: "sev_snp.measurements[8]".into(),
                len: 32,
                want: 48
            }
        );
        let mut g = good.clone();
        g.tdx.as_mut().unwrap().measurements[1].mrtd.pop();
        assert!(matches!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::FieldLength {
                want: 48,
                len: 47,
                ..
            }
        ));
        // No provenance after Google's release change; before it, accepted.
        let mut g = good.clone();
        g.cl_spec = 0;
        g.commit.clear();
        assert!(matches!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::MissingProvenance { .. }
        ));
        g.timestamp.as_mut().unwrap().seconds = PROVENANCE_REQUIRED_FROM.0 as i64;
        assert!(matches!(
            check(crypto, &endorse(&p, &g), &root).unwrap_err(),
            GceEndorsementError::MissingProvenance { .. }
        ));
        g.timestamp.as_mut().unwrap().seconds = PROVENANCE_REQUIRED_FROM.0 as i64 - 1;
        assert!(check(crypto, &endorse(&p, &g), &root).is_ok());
        // Not an endorsement; too large; a root that is not a certificate.
        assert!(matches!(
            check(crypto, b"\x0a\xff\xff\xff", &root).unwrap_err(),
            GceEndorsementError::Decode {
                what: "VMLaunchEndorsement",
                ..
            }
        ));
        let bad_golden = wire::VmLaunchEndorsement {
            serialized_uefi_golden: vec![0x22, 0x05, 1],
            signature: vec![],
        };
        assert!(matches!(
            check(crypto, &bad_golden.encode_to_vec(), &root).unwrap_err(),
            GceEndorsementError::Decode {
                what: "VMGoldenMeasurement",
                ..
            }
        ));
        assert!(matches!(
            check(crypto, &vec![0; 64 * 1024 + 1], &root).unwrap_err(),
            GceEndorsementError::TooLarge { .. }
        ));
        assert!(matches!(
            check(crypto, &endorse(&p, &good), b"not a certificate").unwrap_err(),
            GceEndorsementError::Cert(X509Error::Malformed { .. })
        ));
        // No TDX values asked of an SEV-SNP-only endorsement.
        let mut g = good.clone();
        g.tdx = None;
        assert_eq!(
            check(crypto, &endorse(&p, &g), &root)
                .unwrap()
                .tdx(&[0xa1; 48]),
            Err(GceEndorsementError::NoTdx)
        );
    }
}

fn tmpdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-gce-endorsement-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn sigil_verify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil-verify"))
        .arg("gce-endorsement")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn gce_endorsement_command_works() {
    let p = pki();
    let dir = tmpdir();
    let e = write(&dir, "e.binarypb", &endorse(&p, &golden(&p)));
    let root_pem = write(&dir, "root.pem", p.root.pem().as_bytes());
    let fw = write(&dir, "fw.fd", b"firmware");
    let base = [
        "--endorsement",
        e.to_str().unwrap(),
        "--root",
        root_pem.to_str().unwrap(),
        "--at",
        "2025-06-01T00:00:00Z",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        sigil_verify(&args)
    };

    let (code, out, err) = run(&[
        "--snp-measurement",
        &hex::encode([0x44; 48]),
        "--vcpus",
        "4",
        "--firmware",
        fw.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "accepted");
    let c = &v["claims"];
    assert_eq!(c["matched_vcpus"], 4);
    assert_eq!(c["root_sha256"], hex::encode(AwsLc.sha256(&root_der(&p))));
    assert_eq!(c["sev_snp"]["measurements"]["2"], hex::encode([0x22; 48]));
    assert_eq!(c["tdx"]["measurements"][1]["early_accept"], true);
    assert_eq!(
        c["firmware_sha384"],
        hex::encode(Sha384::digest(b"firmware"))
    );

    let (code, out, _) = run(&["--mrtd", &hex::encode([0xa1; 48]), "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"]["matched_tdx"]["ram_gib"], 16);

    // Not endorsed, another firmware: rejected (exit 1) with each reason.
    let other_fw = write(&dir, "other.fd", b"other firmware");
    let (code, out, _) = run(&[
        "--snp-measurement",
        &hex::encode([0x44; 48]),
        "--vcpus",
        "2",
        "--firmware",
        other_fw.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "rejected");
    let reasons = v["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .contains("is not endorsed for 2 vCPUs")
    );
    assert!(reasons[1].as_str().unwrap().contains("is not the endorsed"));

    // Another root: rejected, the reason names it; the endorsement is not trusted on its own.
    let other = pki_named("Another root");
    let other_root = write(&dir, "other.pem", other.root.pem().as_bytes());
    let (code, out, _) = sigil_verify(&[
        "--endorsement",
        e.to_str().unwrap(),
        "--root",
        other_root.to_str().unwrap(),
        "--at",
        "2025-06-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not issued by the given root"), "{out}");

    // The policy fragment is a policy: the endorsed values under [snp] and [tdx].
    let (code, out, err) = run(&["--format", "policy", "--vcpus", "2"]);
    assert_eq!(code, 0, "{err}");
    Policy::from_toml(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let toml: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(
        toml["snp"]["measurements"].as_array().unwrap(),
        &vec![toml::Value::String(hex::encode([0x22; 48]))]
    );
    assert_eq!(toml["tdx"]["mrtds"].as_array().unwrap().len(), 2);
    let (code, _, err) = run(&["--format", "policy", "--vcpus", "3"]);
    assert_eq!(code, 1);
    assert!(err.contains("no SEV-SNP measurement for 3 vCPUs"), "{err}");

    // Usage: bad hex, --vcpus alone: exit 2.
    assert_eq!(run(&["--snp-measurement", "zz"]).0, 2);
    assert_eq!(run(&["--snp-measurement", "00"]).0, 2);
    assert_eq!(run(&["--vcpus", "2"]).0, 2);
    std::fs::remove_dir_all(dir).ok();
}
