#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use super::*;
use crate::time::UnixTime;

#[test]
fn intel_times_parse_works() {
    assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(UnixTime(0)));
    assert_eq!(
        parse_time("2025-06-19T10:16:03Z"),
        Some(UnixTime(1_750_328_163))
    );
    assert_eq!(
        parse_time("2024-02-29T23:59:59.123Z"),
        Some(UnixTime(1_709_251_199))
    );
    assert_eq!(
        parse_time("2025-06-19T10:16:03+00:00"),
        Some(UnixTime(1_750_328_163))
    );
    for bad in [
        "",
        "2025-06-19",
        "2025-06-19T10:16:03",
        "2025-06-19T10:16:03+01:00",
        "2025-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2025-06-19T24:00:00Z",
        "2025-06-19T10:16:03.Z",
        "1969-12-31T23:59:59Z",
        "2025-06-19 10:16:03Z",
        "+025-06-19T10:16:03Z",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
    // Round trip with the formatter over many days.
    for d in (0..40_000u64).step_by(37) {
        let t = UnixTime(d * 86_400 + 3_723);
        assert_eq!(parse_time(&alloc::format!("{t}")), Some(t));
    }
}

#[test]
fn status_convergence_matches_intel_works() {
    use TcbStatus::*;
    for (platform, component, expected) in [
        (UpToDate, OutOfDate, OutOfDate),
        (SWHardeningNeeded, OutOfDate, OutOfDate),
        (ConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded),
        (
            ConfigurationAndSWHardeningNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
        ),
        (
            OutOfDateConfigurationNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
        ),
        (ConfigurationNeeded, Revoked, Revoked),
        (UpToDate, ConfigurationNeeded, UpToDate),
        (UpToDate, SWHardeningNeeded, UpToDate),
        (SWHardeningNeeded, UpToDate, SWHardeningNeeded),
    ] {
        assert_eq!(
            platform.converge(component),
            expected,
            "{platform} + {component}"
        );
    }
    for (launch, current, expected) in [
        (OutOfDate, UpToDate, TDRelaunchAdvised),
        (OutOfDate, SWHardeningNeeded, TDRelaunchAdvised),
        (
            OutOfDate,
            ConfigurationNeeded,
            TDRelaunchAdvisedConfigurationNeeded,
        ),
        (
            OutOfDateConfigurationNeeded,
            UpToDate,
            TDRelaunchAdvisedConfigurationNeeded,
        ),
        (OutOfDate, OutOfDate, OutOfDate),
        (UpToDate, UpToDate, UpToDate),
        (ConfigurationNeeded, UpToDate, ConfigurationNeeded),
    ] {
        assert_eq!(launch.check_for_relaunch(current), expected);
    }
    // Derived statuses never come from collateral.
    assert!(tcb::TcbStatus::from_collateral_name("TDRelaunchAdvised").is_none());
    assert!(tcb::TcbStatus::from_collateral_name("Revoked").is_some());
}

#[test]
fn tcb_info_must_be_tdx_v3_rejects() {
    let sgx = br#"{"id":"SGX","version":3,"issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[]}"#;
    assert!(matches!(
        TcbInfo::parse(sgx),
        Err(CollateralError::Kind {
            what: "TCB Info",
            ..
        })
    ));
    let no_module = br#"{"id":"TDX","version":3,"issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[]}"#;
    assert!(matches!(
        TcbInfo::parse(no_module),
        Err(CollateralError::Field {
            field: "tdxModule",
            ..
        })
    ));
    let qe = br#"{"id":"QE","version":2,"issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5","isvprodid":1,"tcbLevels":[]}"#;
    assert!(matches!(
        QeIdentity::parse(qe),
        Err(CollateralError::Kind {
            what: "QE Identity",
            ..
        })
    ));
    assert!(matches!(
        TdxCollateral::from_json(b"{}"),
        Err(CollateralError::Json { .. })
    ));
}

#[test]
fn der_signatures_agree_across_backends_works() {
    use crate::crypto::{Crypto, EcdsaAlg, RustCrypto};
    use crate::verify::x509::{Cert, ecdsa_der_to_fixed};
    let root = Cert::from_der("root", crate::roots::intel::SGX_ROOT_CA_DER).unwrap();
    // The root is self-signed: its signature is a DER ECDSA-Sig-Value over its TBS.
    let sig = root.inner().signature().raw_bytes().to_vec();
    let tbs = crate::verify::x509::signed_part(root.der()).unwrap();
    let key = root.public_key();
    let mut backends: alloc::vec::Vec<&dyn Crypto> = alloc::vec![&RustCrypto];
    #[cfg(feature = "native")]
    backends.push(&crate::crypto::AwsLc);
    for c in backends {
        c.verify_ecdsa_der(EcdsaAlg::P256Sha256, key, &tbs, &sig)
            .unwrap();
        let fixed = ecdsa_der_to_fixed(EcdsaAlg::P256Sha256, &sig).unwrap();
        c.verify_ecdsa(EcdsaAlg::P256Sha256, key, &tbs, &fixed)
            .unwrap();
        // A changed message, and a non-minimal (BER) encoding of the same signature.
        assert!(
            c.verify_ecdsa_der(EcdsaAlg::P256Sha256, key, b"x", &sig)
                .is_err()
        );
        let mut ber = sig.clone();
        ber[1] += 1; // SEQUENCE length
        ber[3] += 1; // INTEGER r length
        ber.insert(4, 0); // leading zero on r
        assert!(
            c.verify_ecdsa_der(EcdsaAlg::P256Sha256, key, &tbs, &ber)
                .is_err(),
            "{}",
            c.name()
        );
    }
}
