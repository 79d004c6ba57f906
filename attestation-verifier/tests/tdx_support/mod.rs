//! Synthetic TDX evidence shared by the tests: a test Intel PKI, collateral signed
//! by it, and a quote of a [`Spec`] (see `sigil_test_support::tdx`).

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use attestation_verifier::verify::tdx::{TdxCollateral, TdxCollateralParts, TdxTrustAnchor};
use p256::ecdsa::SigningKey;
use sigil_test_support::tdx::{IntelPki as Pki, Spec, assemble, collateral_files, pck_cert, pem};

/// The verifier's trust anchor over a test PKI.
pub trait Anchor {
    /// The anchor.
    fn anchor(&self) -> TdxTrustAnchor;
}

impl Anchor for Pki {
    fn anchor(&self) -> TdxTrustAnchor {
        TdxTrustAnchor::from_der(self.root.der()).unwrap()
    }
}

pub struct Fixture {
    pub pki: Pki,
    pub quote: Vec<u8>,
    pub collateral: TdxCollateral,
    pub att_key: SigningKey,
    pub pck_key: SigningKey,
    pub spec: Spec,
}

pub fn collateral(pki: &Pki, s: &Spec, tcb_der: &[u8], tcb_key: &SigningKey) -> TdxCollateral {
    let f = collateral_files(pki, s, tcb_der, tcb_key);
    TdxCollateral::new(TdxCollateralParts {
        pck_crl_issuer_chain: f.pck_crl_issuer_chain,
        root_ca_crl: f.root_ca_crl,
        pck_crl: f.pck_crl,
        tcb_info_issuer_chain: f.tcb_info_issuer_chain,
        tcb_info_signature: f.tcb_info_signature,
        tcb_info: f.tcb_info,
        qe_identity_issuer_chain: f.qe_identity_issuer_chain,
        qe_identity_signature: f.qe_identity_signature,
        qe_identity: f.qe_identity,
    })
}

pub fn fixture(s: Spec) -> Fixture {
    let pki = Pki::new();
    let (tcb_der, tcb_key) = if s.tcb_signer_cn == "Intel SGX TCB Signing" {
        (pki.tcb_der.clone(), pki.tcb_key.clone())
    } else {
        Pki::tcb_signer(&pki.root, s.tcb_signer_cn)
    };
    let (pck_der, pck_key) = pck_cert(&s, &pki.platform_ca);
    let chain = format!(
        "{}{}{}",
        pem(&pck_der),
        pem(pki.platform_ca.der()),
        pem(pki.root.der())
    );
    let att_key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let quote = assemble(&s, &chain, &att_key, &pck_key, None);
    let collateral = collateral(&pki, &s, &tcb_der, &tcb_key);
    Fixture {
        pki,
        quote,
        collateral,
        att_key,
        pck_key,
        spec: s,
    }
}
