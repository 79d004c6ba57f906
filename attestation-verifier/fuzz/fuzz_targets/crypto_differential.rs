//! The two crypto backends (pure Rust, aws-lc-rs) agree: on every signature primitive with
//! fuzzed keys, messages and signatures, and on the whole verification of a fuzzed SEV-SNP
//! report against a real case's chain. The first byte picks the check.
#![no_main]

use attestation_verifier::check_snp;
use attestation_verifier::crypto::{AwsLc, Crypto, EcdsaAlg, RsaHash, RustCrypto};
use attestation_verifier::policy::Policy;
use attestation_verifier::verify::snp::{SnpCollateral, SnpVerifier};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

fn agree(what: &str, f: impl Fn(&dyn Crypto) -> bool) {
    let (rust, aws) = (f(&RustCrypto), f(&AwsLc));
    assert_eq!(
        rust, aws,
        "{what}: RustCrypto accepts {rust}, AwsLc accepts {aws}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let parts = attestation_verifier_fuzz::split(rest, 3);
    let [key, msg, sig] = [0, 1, 2].map(|i| parts.get(i).copied().unwrap_or_default());
    match which % 8 {
        0 => agree("ecdsa p256", |c| {
            c.verify_ecdsa(EcdsaAlg::P256Sha256, key, msg, sig).is_ok()
        }),
        1 => agree("ecdsa p384", |c| {
            c.verify_ecdsa(EcdsaAlg::P384Sha384, key, msg, sig).is_ok()
        }),
        2 => agree("ecdsa der p384", |c| {
            c.verify_ecdsa_der(EcdsaAlg::P384Sha384, key, msg, sig)
                .is_ok()
        }),
        3 => agree("rsa pss sha384", |c| {
            c.verify_rsa_pss(RsaHash::Sha384, key, msg, sig).is_ok()
        }),
        4 => agree("rsa pkcs1 sha256", |c| {
            c.verify_rsa_pkcs1(RsaHash::Sha256, key, msg, sig).is_ok()
        }),
        5 => agree("ed25519", |c| c.verify_ed25519(key, msg, sig).is_ok()),
        6 => {
            assert_eq!(RustCrypto.sha256(rest), AwsLc.sha256(rest));
            assert_eq!(RustCrypto.sha384(rest), AwsLc.sha384(rest));
        }
        _ => {
            let v = attestation_verifier_fuzz::snp();
            let collateral = SnpCollateral {
                vek: &v.vek,
                intermediate: Some(&v.ask),
                ark: Some(&v.ark),
                crl: None,
            };
            let policy = Policy::default();
            static RUST: Mutex<Option<SnpVerifier<RustCrypto>>> = Mutex::new(None);
            static AWS: Mutex<Option<SnpVerifier<AwsLc>>> = Mutex::new(None);
            let a = attestation_verifier_fuzz::long_lived(
                &RUST,
                || SnpVerifier::new(RustCrypto).expect("pinned roots"),
                |rust| check_snp(rust, rest, &collateral, &policy, v.now),
            );
            let b = attestation_verifier_fuzz::long_lived(
                &AWS,
                || SnpVerifier::new(AwsLc).expect("pinned roots"),
                |aws| check_snp(aws, rest, &collateral, &policy, v.now),
            );
            assert_eq!(a, b, "check_snp differs between the backends");
            if a.accepted() {
                attestation_verifier_fuzz::snp_accepted(rest);
            }
        }
    }
});
