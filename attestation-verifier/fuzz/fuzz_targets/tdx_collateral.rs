//! TDX collateral: TCB Info and QE Identity JSON, a CRL, a whole collateral bundle JSON, and
//! a quote of a real case verified against the fuzzed bundle. The first byte picks which.
#![no_main]

use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::tdx::parse_tdx_quote;
use attestation_verifier::verify::tdx::{QeIdentity, TcbInfo, TdxCollateral, TdxVerifier};
use attestation_verifier::verify::x509::Crl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(TcbInfo::parse(rest)),
        1 => drop(QeIdentity::parse(rest)),
        2 => drop(Crl::from_der("CRL", rest)),
        3 => drop(TdxCollateral::from_json(rest)),
        _ => {
            if let Ok(collateral) = TdxCollateral::from_json(rest) {
                let t = attestation_verifier_fuzz::tdx();
                let quote = parse_tdx_quote(&t.quote).expect("the vector's quote parses");
                let mut verifier = TdxVerifier::new(RustCrypto).expect("pinned root");
                if verifier.verify(&quote, &collateral, t.now).is_ok() {
                    attestation_verifier_fuzz::tdx_collateral_verified(&collateral);
                }
            }
        }
    }
});
