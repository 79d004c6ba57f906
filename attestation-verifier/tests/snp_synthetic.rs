//! Synthetic SEV-SNP evidence built by the test itself (its own ARK/ASK/ASVK and
//! VCEK/VLEK with AMD's extensions, reports signed by the test VCEK): one test per
//! rejection path, each asserting the typed reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::snp::{Product, REPORT_LEN, SIGNED_LEN, parse_snp_report};
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::snp::{
    SnpCertificate, SnpCollateral, SnpTrustStore, SnpVerifier, SnpVerifyError,
};
use attestation_verifier::verify::x509::X509Error;
use rcgen::KeyPair;
use sigil_test_support::pki::crl;
use sigil_test_support::snp::{
    AmdPki as Pki, Report, Vek, make_report, make_vek, p384_key, sign_report,
};

/// 2030-01-01, inside every test certificate's validity.
const NOW: UnixTime = UnixTime(1_893_456_000);

/// The verifier's trust store over a test PKI.
trait Trust {
    fn trust(&self, product: Product) -> SnpTrustStore;
}

impl Trust for Pki {
    fn trust(&self, product: Product) -> SnpTrustStore {
        let mut t = SnpTrustStore::empty();
        t.add(product, self.ark.der(), self.ask.der(), self.asvk.der())
            .unwrap();
        t
    }
}

struct Fixture {
    pki: Pki,
    vek: Vec<u8>,
    key: KeyPair,
    report: Vec<u8>,
}

fn fixture(vek: Vek, report: Report) -> Fixture {
    let pki = Pki::new("Milan");
    let issuer = if vek.cn == "SEV-VLEK" {
        &pki.asvk
    } else {
        &pki.ask
    };
    let (vek_der, key) = make_vek(&vek, issuer);
    let report = make_report(&report, &key);
    Fixture {
        pki,
        vek: vek_der,
        key,
        report,
    }
}

fn run(f: &Fixture, c: SnpCollateral<'_>, now: UnixTime) -> Result<(), Vec<SnpVerifyError>> {
    let mut v = SnpVerifier::with_trust_store(AwsLc, f.pki.trust(Product::Milan));
    let r = parse_snp_report(&f.report).unwrap();
    let aws = v.verify(&r, &c, now).map(|_| ()).map_err(|e| e.0);
    // Both backends must reach the same verdict with the same reasons.
    let mut v2 = SnpVerifier::with_trust_store(RustCrypto, f.pki.trust(Product::Milan));
    let rc = v2.verify(&r, &c, now).map(|_| ()).map_err(|e| e.0);
    assert_eq!(aws, rc, "backends disagree");
    aws
}

fn plain(f: &Fixture) -> SnpCollateral<'_> {
    SnpCollateral {
        vek: &f.vek,
        ..Default::default()
    }
}

fn errs(f: &Fixture) -> Vec<SnpVerifyError> {
    run(f, plain(f), NOW).unwrap_err()
}

#[test]
fn synthetic_report_layout_matches_the_verifier_works() {
    assert_eq!(sigil_test_support::snp::REPORT_LEN, REPORT_LEN);
    assert_eq!(sigil_test_support::snp::SIGNED_LEN, SIGNED_LEN);
}

#[test]
fn synthetic_vcek_report_works() {
    let f = fixture(Vek::default(), Report::default());
    run(&f, plain(&f), NOW).unwrap();
    // The pinned intermediate and ARK may also be supplied explicitly.
    let c = SnpCollateral {
        vek: &f.vek,
        intermediate: Some(f.pki.ask.der()),
        ark: Some(f.pki.ark.der()),
        crl: None,
    };
    run(&f, c, NOW).unwrap();
}

#[test]
fn synthetic_vlek_report_without_chip_id_works() {
    let vek = Vek {
        cn: "SEV-VLEK",
        hw_id: None,
        ..Vek::default()
    };
    let f = fixture(
        vek,
        Report {
            vlek: true,
            chip_id: [0; 64],
            ..Report::default()
        },
    );
    run(&f, plain(&f), NOW).unwrap();
}

#[test]
fn tampered_report_rejects() {
    let mut f = fixture(Vek::default(), Report::default());
    f.report[0x90] ^= 1;
    assert!(matches!(
        errs(&f)[..],
        [SnpVerifyError::ReportSignature { .. }]
    ));
}

#[test]
fn report_signed_by_other_key_rejects() {
    let mut f = fixture(Vek::default(), Report::default());
    let other = p384_key();
    sign_report(&other, &mut f.report);
    assert!(matches!(
        errs(&f)[..],
        [SnpVerifyError::ReportSignature { .. }]
    ));
}

#[test]
fn vcek_not_signed_by_pinned_ask_rejects() {
    let f = fixture(Vek::default(), Report::default());
    let rogue = Pki::new("Milan");
    let (vek, key) = make_vek(&Vek::default(), &rogue.ask);
    let report = make_report(&Report::default(), &key);
    let g = Fixture {
        pki: f.pki,
        vek,
        key,
        report,
    };
    assert!(matches!(
        errs(&g)[..],
        [SnpVerifyError::Certificate(X509Error::BadSignature {
            what: "VCEK",
            ..
        })]
    ));
}

#[test]
fn supplied_ask_not_signed_by_pinned_ark_rejects() {
    let f = fixture(Vek::default(), Report::default());
    let rogue = Pki::new("Milan");
    let c = SnpCollateral {
        intermediate: Some(rogue.ask.der()),
        ..plain(&f)
    };
    assert!(matches!(
        run(&f, c, NOW).unwrap_err()[..],
        [SnpVerifyError::Certificate(X509Error::BadSignature {
            what: "intermediate",
            ..
        })]
    ));
}

#[test]
fn supplied_ark_not_pinned_rejects() {
    let f = fixture(Vek::default(), Report::default());
    let rogue = Pki::new("Milan");
    let c = SnpCollateral {
        ark: Some(rogue.ark.der()),
        ..plain(&f)
    };
    assert!(matches!(
        run(&f, c, NOW).unwrap_err()[..],
        [SnpVerifyError::UntrustedArk {
            product: Product::Milan,
            ..
        }]
    ));
}

#[test]
fn vlek_with_ask_intermediate_rejects() {
    let vek = Vek {
        cn: "SEV-VLEK",
        hw_id: None,
        ..Vek::default()
    };
    let f = fixture(
        vek,
        Report {
            vlek: true,
            ..Report::default()
        },
    );
    let c = SnpCollateral {
        intermediate: Some(f.pki.ask.der()),
        ..plain(&f)
    };
    assert!(matches!(
        run(&f, c, NOW).unwrap_err()[..],
        [SnpVerifyError::WrongIntermediate {
            signing_key: "VLEK",
            ..
        }]
    ));
}

#[test]
fn vlek_certificate_for_vcek_report_rejects() {
    // A VLEK-named certificate issued under the ASK, offered for a VCEK-signed report.
    let f = fixture(
        Vek {
            cn: "SEV-VLEK",
            ..Vek::default()
        },
        Report::default(),
    );
    let (vek, key) = make_vek(
        &Vek {
            cn: "SEV-VLEK",
            ..Vek::default()
        },
        &f.pki.ask,
    );
    let report = make_report(&Report::default(), &key);
    let g = Fixture {
        pki: f.pki,
        vek,
        key,
        report,
    };
    assert!(matches!(
        errs(&g)[..],
        [SnpVerifyError::WrongEndorsementKind {
            signing_key: "VCEK",
            ..
        }]
    ));
}

#[test]
fn product_mismatch_between_cpuid_and_certificate_rejects() {
    // Genoa CPUID, Milan certificate.
    let f = fixture(
        Vek::default(),
        Report {
            cpuid: (0x19, 0x11),
            ..Report::default()
        },
    );
    assert!(matches!(
        errs(&f)[..],
        [SnpVerifyError::ProductMismatch {
            report: Product::Genoa,
            certificate: Product::Milan
        }]
    ));
}

#[test]
fn unknown_product_rejects() {
    let f = fixture(
        Vek {
            product: None,
            ..Vek::default()
        },
        Report {
            version: 2,
            ..Report::default()
        },
    );
    assert!(matches!(errs(&f)[..], [SnpVerifyError::UnknownProduct]));
}

#[test]
fn v2_report_takes_product_from_certificate_works() {
    let f = fixture(
        Vek::default(),
        Report {
            version: 2,
            ..Report::default()
        },
    );
    run(&f, plain(&f), NOW).unwrap();
}

#[test]
fn tcb_mismatch_names_each_component_rejects() {
    let cases = [
        ("bootloader", [4, 0, 8, 115]),
        ("tee", [3, 1, 8, 115]),
        ("snp", [3, 0, 9, 115]),
        ("microcode", [3, 0, 8, 200]),
    ];
    for (component, tcb) in cases {
        let f = fixture(
            Vek {
                tcb,
                ..Vek::default()
            },
            Report::default(),
        );
        let e = errs(&f);
        assert!(
            matches!(&e[..], [SnpVerifyError::TcbMismatch { component: c, .. }] if *c == component),
            "{component}: {e:?}"
        );
    }
}

#[test]
fn turin_fmc_is_bound_rejects() {
    let pki = Pki::new("Turin");
    let turin_tcb = u64::from_le_bytes([1, 2, 0, 3, 0, 0, 0, 50]); // fmc=1 bl=2 tee=0 snp=3 ucode=50
    let vek = Vek {
        product: Some("Turin"),
        tcb: [2, 0, 3, 50],
        fmc: Some(2),
        hw_id: Some(vec![0xAB; 8]),
        ..Vek::default()
    };
    let (vek_der, key) = make_vek(&vek, &pki.ask);
    let report = make_report(
        &Report {
            cpuid: (0x1A, 0x02),
            reported_tcb: turin_tcb,
            ..Report::default()
        },
        &key,
    );
    let mut v = SnpVerifier::with_trust_store(AwsLc, pki.trust(Product::Turin));
    let r = parse_snp_report(&report).unwrap();
    let e = v
        .verify(
            &r,
            &SnpCollateral {
                vek: &vek_der,
                ..Default::default()
            },
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            &e.0[..],
            [SnpVerifyError::TcbMismatch {
                component: "fmc",
                reported: 1,
                certified: 2
            }]
        ),
        "{e}"
    );
}

#[test]
fn missing_tcb_extension_rejects() {
    let pki = Pki::new("Turin");
    let vek = Vek {
        product: Some("Turin"),
        fmc: None,
        hw_id: Some(vec![0xAB; 8]),
        ..Vek::default()
    };
    let (vek_der, key) = make_vek(&vek, &pki.ask);
    let report = make_report(
        &Report {
            cpuid: (0x1A, 0x02),
            reported_tcb: u64::from_le_bytes([0, 3, 0, 8, 0, 0, 0, 115]),
            ..Report::default()
        },
        &key,
    );
    let mut v = SnpVerifier::with_trust_store(AwsLc, pki.trust(Product::Turin));
    let r = parse_snp_report(&report).unwrap();
    let e = v
        .verify(
            &r,
            &SnpCollateral {
                vek: &vek_der,
                ..Default::default()
            },
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(&e.0[..], [SnpVerifyError::MissingTcbExtension("fmcSPL")]),
        "{e}"
    );
}

#[test]
fn chip_id_mismatch_rejects() {
    let f = fixture(
        Vek::default(),
        Report {
            chip_id: [0xCD; 64],
            ..Report::default()
        },
    );
    assert!(matches!(errs(&f)[..], [SnpVerifyError::ChipIdMismatch]));
}

#[test]
fn masked_chip_id_is_not_bound_works() {
    let f = fixture(
        Vek {
            hw_id: None,
            ..Vek::default()
        },
        Report {
            mask_chip: true,
            chip_id: [0; 64],
            ..Report::default()
        },
    );
    run(&f, plain(&f), NOW).unwrap();
}

#[test]
fn vcek_without_hw_id_rejects() {
    let f = fixture(
        Vek {
            hw_id: None,
            ..Vek::default()
        },
        Report::default(),
    );
    assert!(matches!(errs(&f)[..], [SnpVerifyError::MissingHwId]));
}

#[test]
fn endorsement_key_must_be_p384_rejects() {
    let f = fixture(Vek::default(), Report::default());
    let (vek, _p256) = make_vek(
        &Vek {
            p256: true,
            ..Vek::default()
        },
        &f.pki.ask,
    );
    let g = Fixture {
        pki: f.pki,
        vek,
        key: f.key,
        report: f.report,
    };
    assert!(matches!(errs(&g)[..], [SnpVerifyError::EndorsementKeyType]));
}

#[test]
fn expired_vcek_rejects_and_cache_rechecks_time() {
    let f = fixture(
        Vek {
            not_after: (2029, 1, 1),
            ..Vek::default()
        },
        Report::default(),
    );
    let mut v = SnpVerifier::with_trust_store(AwsLc, f.pki.trust(Product::Milan));
    let r = parse_snp_report(&f.report).unwrap();
    let c = plain(&f);
    v.verify(&r, &c, UnixTime(1_800_000_000)).unwrap(); // 2027: valid
    assert_eq!(v.cached_chains(), 1);
    let e = v.verify(&r, &c, NOW).unwrap_err(); // 2030: expired, from the cache
    assert!(matches!(
        &e.0[..],
        [SnpVerifyError::Certificate(X509Error::Expired {
            what: "VCEK",
            ..
        })]
    ));
    let e = v.verify(&r, &c, UnixTime(1_500_000_000)).unwrap_err(); // 2017: not yet valid
    assert!(
        e.0.iter()
            .all(|e| matches!(e, SnpVerifyError::Certificate(X509Error::Expired { .. })))
    );
    assert!(e.any(|e| matches!(
        e,
        SnpVerifyError::Certificate(X509Error::Expired { what: "VCEK", .. })
    )));
    // A tampered report with a cached chain is still refused.
    let mut t = f.report.clone();
    t[0x50] ^= 1;
    let r = parse_snp_report(&t).unwrap();
    let e = v.verify(&r, &c, UnixTime(1_800_000_000)).unwrap_err();
    assert!(matches!(&e.0[..], [SnpVerifyError::ReportSignature { .. }]));
}

#[test]
fn crl_checks_work_and_rejects() {
    let f = fixture(Vek::default(), Report::default());
    // Not revoked: accepted.
    let good = crl(&f.pki.ark, &[7], (2031, 1, 1));
    run(
        &f,
        SnpCollateral {
            crl: Some(&good),
            ..plain(&f)
        },
        NOW,
    )
    .unwrap();
    // The VCEK's serial is listed.
    let revoked = crl(&f.pki.ark, &[42], (2031, 1, 1));
    assert!(matches!(
        run(
            &f,
            SnpCollateral {
                crl: Some(&revoked),
                ..plain(&f)
            },
            NOW
        )
        .unwrap_err()[..],
        [SnpVerifyError::Revoked {
            certificate: SnpCertificate::Vcek,
            ..
        }]
    ));
    // Past nextUpdate.
    let stale = crl(&f.pki.ark, &[], (2029, 12, 1));
    assert!(matches!(
        run(
            &f,
            SnpCollateral {
                crl: Some(&stale),
                ..plain(&f)
            },
            NOW
        )
        .unwrap_err()[..],
        [SnpVerifyError::CrlExpired { .. }]
    ));
    // Signed by someone other than the ARK.
    let forged = crl(&f.pki.ask, &[], (2031, 1, 1));
    assert!(matches!(
        run(
            &f,
            SnpCollateral {
                crl: Some(&forged),
                ..plain(&f)
            },
            NOW
        )
        .unwrap_err()[..],
        [SnpVerifyError::Certificate(X509Error::BadSignature {
            what: "CRL",
            ..
        })]
    ));
}

#[test]
fn policy_rules_each_reject() {
    use attestation_verifier::Verdict;
    let f = fixture(
        Vek::default(),
        Report {
            policy: 0x30000 | (1 << 19) | (1 << 18),
            ..Report::default()
        },
    );
    let mut v = SnpVerifier::with_trust_store(AwsLc, f.pki.trust(Product::Milan));
    let r = parse_snp_report(&f.report).unwrap();
    let ev = v.verify(&r, &plain(&f), NOW).unwrap();
    let rules = |toml: &str| -> Vec<&'static str> {
        match Policy::from_toml(toml).unwrap().snp.evaluate(&ev) {
            Verdict::Accept => vec![],
            Verdict::Reject(vs) => vs.into_iter().map(|v| v.rule).collect(),
        }
    };
    assert_eq!(rules(""), ["snp.allow_debug", "snp.allow_migration_agent"]);
    let base = "[snp]\nallow_debug = true\nallow_migration_agent = true\n";
    assert!(rules(base).is_empty());
    let m = "11".repeat(48);
    let other = "22".repeat(48);
    assert!(rules(&format!("{base}measurements = [\"{m}\"]")).is_empty());
    for (extra, rule) in [
        (format!("measurements = [\"{other}\"]"), "snp.measurements"),
        (
            format!("report_data = \"{}\"", "00".repeat(64)),
            "snp.report_data",
        ),
        (
            format!("host_data = \"{}\"", "01".repeat(32)),
            "snp.host_data",
        ),
        ("min_tcb = { microcode = 116 }".into(), "snp.min_tcb"),
        ("vmpls = [1, 2]".into(), "snp.vmpls"),
        (
            format!("id_key_digests = [\"{other}\"]"),
            "snp.id_key_digests",
        ),
        (
            format!("author_key_digests = [\"{other}\"]"),
            "snp.author_key_digests",
        ),
        ("signing_keys = [\"VLEK\"]".into(), "snp.signing_keys"),
        ("min_guest_svn = 1".into(), "snp.min_guest_svn"),
        ("products = [\"Genoa\"]".into(), "snp.products"),
        ("allow_smt = false".into(), "snp.allow_smt"),
    ] {
        assert_eq!(rules(&format!("{base}{extra}")), [rule], "{extra}");
    }
}
