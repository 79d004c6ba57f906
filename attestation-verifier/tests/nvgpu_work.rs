//! The work of one bundle verification is bounded by its distinct inputs: a device chain or a
//! RIM presented by several GPUs (or several times) is checked once, also when it fails, and
//! both crypto backends reach the same failures. Counted with a crypto backend that counts
//! signature verifications.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use attestation_verifier::crypto::{AwsLc, Crypto, EcdsaAlg, RsaHash, RustCrypto, SignatureError};
use attestation_verifier::evidence::nvgpu::{NvGpuReport, parse_nvgpu_report, split_pem_chain};
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::nvgpu::{GpuInput, NvGpuVerifier, NvGpuVerifyError};

/// A backend that counts the signatures it verifies.
struct Counting<C> {
    inner: C,
    signatures: AtomicUsize,
}

impl<C: Crypto> Counting<C> {
    fn new(inner: C) -> Self {
        Self {
            inner,
            signatures: AtomicUsize::new(0),
        }
    }

    fn count(&self) {
        self.signatures.fetch_add(1, Ordering::Relaxed);
    }
}

impl<C: Crypto> Crypto for Counting<C> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        self.inner.sha256(data)
    }
    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        self.inner.sha384(data)
    }
    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        self.inner.sha512(data)
    }
    fn verify_ecdsa(
        &self,
        alg: EcdsaAlg,
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.count();
        self.inner.verify_ecdsa(alg, key, message, signature)
    }
    fn verify_rsa_pss(
        &self,
        hash: RsaHash,
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.count();
        self.inner.verify_rsa_pss(hash, key, message, signature)
    }
    fn verify_rsa_pkcs1(
        &self,
        hash: RsaHash,
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.count();
        self.inner.verify_rsa_pkcs1(hash, key, message, signature)
    }
    fn verify_ed25519(
        &self,
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.count();
        self.inner.verify_ed25519(key, message, signature)
    }
}

struct Sample {
    report: NvGpuReport,
    chain: Vec<Vec<u8>>,
    nonce: [u8; 32],
    now: UnixTime,
}

fn sample() -> Sample {
    let case = common::cases("nvgpu")
        .into_iter()
        .find(|c| c.name == "hopper-nvtrust-sample")
        .unwrap();
    let nonce = hex::decode(String::from_utf8(case.file("nonce.hex")).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap();
    Sample {
        report: parse_nvgpu_report(&case.file("report.bin")).unwrap(),
        chain: split_pem_chain(std::str::from_utf8(&case.file("cert_chain.pem")).unwrap()).unwrap(),
        nonce,
        now: UnixTime(case.verification_time()),
    }
}

/// NVIDIA's driver RIM with one byte of its `SignatureValue` changed.
fn flipped_rim() -> Vec<u8> {
    let mut rim = std::fs::read(
        common::vectors_dir().join("nvgpu-extra/nvat/NV_GPU_DRIVER_GH100_550.144.03.xml"),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&rim).into_owned();
    let at = text.find("SignatureValue>").unwrap() + "SignatureValue>".len() + 8;
    rim[at] = if rim[at] == b'A' { b'B' } else { b'A' };
    rim
}

/// The failures per GPU and the signatures verified, for `copies` copies of the sample GPU
/// with `rims`, and a device chain whose last signature is broken when `broken_chain`.
fn run<C: Crypto>(
    crypto: C,
    copies: usize,
    rims: &[Vec<u8>],
    broken_chain: bool,
) -> (Vec<Vec<String>>, usize) {
    let s = sample();
    let mut chain = s.chain.clone();
    if broken_chain {
        // The last byte of the certificate below the root: its signature.
        let last = chain.len() - 2;
        let cert = &mut chain[last];
        let end = cert.len() - 1;
        cert[end] ^= 1;
    }
    let counting = Counting::new(crypto);
    let mut v = NvGpuVerifier::new(&counting).unwrap();
    let inputs: Vec<GpuInput<'_>> = (0..copies)
        .map(|_| GpuInput {
            report: &s.report,
            cert_chain: &chain,
            nonce: s.nonce,
        })
        .collect();
    let out = v.verify_bundle(&inputs, rims, &[], s.now);
    let failures = out
        .into_iter()
        .map(|r| match r {
            Ok(_) => Vec::new(),
            Err(f) => f.0.iter().map(NvGpuVerifyError::to_string).collect(),
        })
        .collect();
    (failures, counting.signatures.load(Ordering::Relaxed))
}

#[test]
fn failed_rim_is_checked_once_per_bundle_works() {
    let bad = flipped_rim();
    let rims = vec![bad.clone(), bad];
    let (one, one_work) = run(RustCrypto, 1, &rims, false);
    let (many, many_work) = run(RustCrypto, 16, &rims, false);
    // Every GPU still reports both positions' failure.
    for failures in &many {
        assert!(
            failures.iter().any(|f| f.starts_with("RIM 0")),
            "{failures:?}"
        );
        assert!(
            failures.iter().any(|f| f.starts_with("RIM 1")),
            "{failures:?}"
        );
    }
    assert_eq!(one[0], many[0]);
    // The chain (cached on success) and the RIM (remembered on failure) are checked once:
    // each further copy costs its report signature only.
    assert_eq!(many_work, one_work + 15, "one copy: {one_work}");
}

#[test]
fn failed_chain_is_checked_once_per_bundle_works() {
    let (one, one_work) = run(RustCrypto, 1, &[], true);
    let (many, many_work) = run(RustCrypto, 16, &[], true);
    assert_eq!(one[0].len(), 1, "{one:?}");
    // Each copy repeats the chain's failure, and each later copy is refused once as a second
    // report of the first one's device.
    for (j, f) in many.iter().enumerate() {
        assert_eq!(f[0], one[0][0]);
        if j > 0 {
            assert_eq!(f.len(), 2, "{f:?}");
            assert_eq!(
                f[1],
                format!("GPU 0 and GPU {j} of the bundle have the same attestation certificate")
            );
        }
    }
    assert_eq!(many_work, one_work, "a failed chain is not checked again");
}

#[test]
fn backends_agree_on_adversarial_bundles_works() {
    let bad = flipped_rim();
    for (copies, rims, broken) in [
        (16, vec![bad.clone()], false),
        (4, vec![bad.clone(), bad], true),
    ] {
        let (rust, _) = run(RustCrypto, copies, &rims, broken);
        let (native, _) = run(AwsLc, copies, &rims, broken);
        assert_eq!(rust, native);
        assert!(rust.iter().all(|f| !f.is_empty()));
    }
}

/// An OCSP response about the sample chain's first intermediate carrying `certs` copies of
/// the chain's certificates, with a signature that does not verify.
fn ocsp_with_certs(certs: usize) -> Vec<u8> {
    use attestation_verifier::verify::ocsp::{
        BasicResponse, CertStatusDer, ID_PKIX_OCSP_BASIC, OcspResponseDer, ResponderId,
        ResponseBytes, ResponseData, ResponseStatus, SingleResponse, cert_id_sha384,
    };
    use attestation_verifier::verify::x509::Cert;
    use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
    use der::{Decode, Encode};

    let s = sample();
    let cert = Cert::from_der("c", &s.chain[1]).unwrap();
    let issuer = Cert::from_der("i", &s.chain[2]).unwrap();
    let at = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(s.now.0)).unwrap();
    let data = ResponseData {
        version: 0,
        responder_id: ResponderId::ByKey(OctetString::new(vec![0u8; 20]).unwrap()),
        produced_at: at,
        responses: vec![SingleResponse {
            cert_id: cert_id_sha384(&RustCrypto, &cert, &issuer).unwrap(),
            cert_status: CertStatusDer::Good(Null),
            this_update: at,
            next_update: None,
            single_extensions: None,
        }],
        response_extensions: None,
    };
    let basic = BasicResponse {
        tbs_response_data: data,
        signature_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
            parameters: None,
        },
        signature: BitString::from_bytes(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
            .unwrap(),
        certs: Some(
            (0..certs)
                .map(|i| der::asn1::Any::from_der(&s.chain[i % 4]).unwrap())
                .collect(),
        ),
    };
    OcspResponseDer {
        response_status: ResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der().unwrap()).unwrap(),
        }),
    }
    .to_der()
    .unwrap()
}

#[test]
fn ocsp_response_with_many_certificates_rejects() {
    use attestation_verifier::verify::ocsp::{MAX_OCSP_CERTS, OcspError, parse_ocsp};
    assert!(parse_ocsp(&ocsp_with_certs(MAX_OCSP_CERTS)).is_ok());
    assert_eq!(
        parse_ocsp(&ocsp_with_certs(MAX_OCSP_CERTS + 1)).err(),
        Some(OcspError::TooManyCerts {
            count: MAX_OCSP_CERTS + 1,
            max: MAX_OCSP_CERTS,
        })
    );
}
