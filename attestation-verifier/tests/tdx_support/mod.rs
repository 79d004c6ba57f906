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
use sigil_test_support::tdx::{
    IntelPki as Pki, PCK_SERIAL, Spec, assemble, crl, pck_cert, pem, qe_identity_json, sign,
    tcb_info_json,
};

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
    let tcb_info = tcb_info_json(s);
    let qe_identity = qe_identity_json(s);
    let crl_ca = if s.crl_from_processor_ca {
        &pki.processor_ca
    } else {
        &pki.platform_ca
    };
    let tcb_chain = format!("{}{}", pem(tcb_der), pem(pki.root.der()));
    // Serial 2 is the platform CA.
    let root_revoked: &[u64] = if s.pck_ca_revoked { &[2] } else { &[9] };
    TdxCollateral::new(TdxCollateralParts {
        pck_crl_issuer_chain: format!("{}{}", pem(crl_ca.der()), pem(pki.root.der())).into_bytes(),
        root_ca_crl: crl(&pki.root, root_revoked),
        pck_crl: crl(
            crl_ca,
            if s.pck_revoked {
                &[7, PCK_SERIAL]
            } else {
                &[7]
            },
        ),
        tcb_info_issuer_chain: tcb_chain.clone().into_bytes(),
        tcb_info_signature: sign(tcb_key, tcb_info.as_bytes()),
        tcb_info: tcb_info.into_bytes(),
        qe_identity_issuer_chain: tcb_chain.into_bytes(),
        qe_identity_signature: sign(tcb_key, qe_identity.as_bytes()),
        qe_identity: qe_identity.into_bytes(),
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
