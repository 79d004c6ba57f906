//! A stand-in vTPM for the Azure tests: an RSA-2048 attestation key, runtime claims
//! publishing it as `HCLAkPub`, and `TPM2_Quote`s it signs.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::bundle::TpmQuote;
use attestation_verifier::crypto::{Crypto, RustCrypto};
use attestation_verifier::evidence::tpm2::{
    ClockInfo, PcrSelection, QuoteInfo, TpmsAttest, encode_tpms_attest, encode_tpmt_signature,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64ct::Encoding;

/// A vTPM: its attestation key and PCR values.
pub struct Vtpm {
    key: RsaKeyPair,
}

fn der_len(bytes: &[u8], at: usize) -> (usize, usize) {
    // (length, header bytes after the tag) of the DER element at `at`.
    match bytes[at + 1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (bytes[at + 2] as usize, 3),
        0x82 => (((bytes[at + 2] as usize) << 8) | bytes[at + 3] as usize, 4),
        _ => panic!("DER length"),
    }
}

impl Vtpm {
    pub fn new() -> Self {
        Self {
            key: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    /// (n, e) of the key, from its PKCS#1 RSAPublicKey.
    fn n_e(&self) -> (Vec<u8>, Vec<u8>) {
        let der = self.key.public_key().as_ref();
        let (_, h) = der_len(der, 0);
        let (n_len, nh) = der_len(der, h);
        let n = der[h + nh..h + nh + n_len].to_vec();
        let e_at = h + nh + n_len;
        let (e_len, eh) = der_len(der, e_at);
        let e = der[e_at + eh..e_at + eh + e_len].to_vec();
        (n, e)
    }

    /// Runtime claims publishing the key as `HCLAkPub`, with `user_data`.
    pub fn claims(&self, user_data: &[u8]) -> Vec<u8> {
        let (n, e) = self.n_e();
        let b64 = base64ct::Base64UrlUnpadded::encode_string;
        format!(
            r#"{{"keys":[{{"kid":"HCLAkPub","kty":"RSA","e":"{}","n":"{}"}}],"user-data":"{}"}}"#,
            b64(&e),
            b64(&n),
            hex::encode_upper(user_data)
        )
        .into_bytes()
    }

    /// A quote over PCR 0..23 (PCR i = [i; 32]) with `qualifying` data.
    pub fn quote(&self, qualifying: &[u8]) -> TpmQuote {
        self.quote_pcrs(qualifying, (0u8..24).map(|i| vec![i; 32]).collect())
    }

    /// A quote over PCR 0..23 holding `pcrs`.
    pub fn quote_pcrs(&self, qualifying: &[u8], pcrs: Vec<Vec<u8>>) -> TpmQuote {
        let attest = encode_tpms_attest(&TpmsAttest {
            qualified_signer: vec![0, 0x0b, 9, 9],
            extra_data: qualifying.to_vec(),
            clock_info: ClockInfo::default(),
            firmware_version: 0x2020_0312_0012_0003,
            quote: QuoteInfo {
                pcr_select: vec![PcrSelection::sha256(&(0..24).collect::<Vec<_>>())],
                pcr_digest: RustCrypto.sha256(&pcrs.concat()).to_vec(),
            },
        })
        .unwrap();
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &attest, &mut sig)
            .unwrap();
        TpmQuote {
            attest,
            signature: encode_tpmt_signature(&sig).unwrap(),
            pcrs,
        }
    }
}
