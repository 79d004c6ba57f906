//! Google's launch endorsement of GCE firmware: the bytes as a whole `VMLaunchEndorsement`
//! verified against a test root; and, where they decode as a `VMGoldenMeasurement`, that
//! golden measurement with the test signing certificate put in, re-encoded and signed with
//! the test key (RSASSA-PSS SHA-256, as Google signs), so that what comes after the
//! signature (digest lengths, provenance, the endorsed MEASUREMENT and MRTD lookups) is
//! fuzzed too. No real endorsement nor Google's root is among the vectors: the PKI is made
//! once per process.
#![no_main]

use std::sync::OnceLock;

use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::gce_endorsement::{verify_gce_endorsement, wire};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PSS_SHA256;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair};

/// 2025-06-01T00:00:00Z.
const AT: UnixTime = UnixTime(1_748_736_000);

struct Pki {
    root: Vec<u8>,
    signer: Vec<u8>,
    key: aws_lc_rs::rsa::KeyPair,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let rsa = || KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let root = CertifiedIssuer::self_signed(
            sigil_test_support::snp::ca_params("GCE-cc-tcb-root"),
            rsa(),
        )
        .expect("root");
        let key = rsa();
        let mut p = CertificateParams::new(vec![]).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, "gce-uefi-signer");
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let signer = p.signed_by(&key, &root).expect("signer").der().to_vec();
        Pki {
            root: root.der().to_vec(),
            signer,
            key: aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.serialize_der()).expect("PKCS#8"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let p = pki();
    let _ = verify_gce_endorsement(&RustCrypto, data, &p.root, AT);
    if let Ok(mut golden) = wire::VmGoldenMeasurement::decode(data) {
        golden.cert = p.signer.clone();
        let bytes = golden.encode_to_vec();
        let mut signature = vec![0; p.key.public_modulus_len()];
        p.key
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                &bytes,
                &mut signature,
            )
            .expect("signing");
        let endorsement = wire::VmLaunchEndorsement {
            serialized_uefi_golden: bytes,
            signature,
        }
        .encode_to_vec();
        let a = verify_gce_endorsement(&RustCrypto, &endorsement, &p.root, AT);
        let b = verify_gce_endorsement(&AwsLc, &endorsement, &p.root, AT);
        assert_eq!(a, b, "the backends differ on a signed endorsement");
        if let Ok(v) = a {
            if let Some(snp) = &v.sev_snp {
                for (n, m) in &snp.measurements {
                    assert_eq!(
                        v.snp(m, Some(*n)),
                        Ok(*n),
                        "an endorsed MEASUREMENT is found"
                    );
                }
            }
            if let Some(tdx) = &v.tdx {
                for m in &tdx.measurements {
                    assert!(v.tdx(&m.mrtd).is_ok(), "an endorsed MRTD is found");
                }
            }
        }
    }
});
