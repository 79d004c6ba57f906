#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;

#[test]
fn empty_policy_is_strict_default_works() {
    let p = Policy::from_toml("").unwrap();
    assert!(!p.allow_simulated);
    assert!(!p.snp.allow_debug);
    assert!(!p.snp.allow_migration_agent);
    assert!(p.snp.allow_smt);
}

#[test]
fn policy_fields_parse_works() {
    let p = Policy::from_toml(
        r#"
        allow_simulated = true
        [snp]
        measurements = ["0x000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001"]
        min_tcb = { bootloader = 2, snp = 8, microcode = 115 }
        vmpls = [0]
        signing_keys = ["VCEK"]
        products = ["Genoa"]
        "#,
    )
    .unwrap();
    assert!(p.allow_simulated);
    assert_eq!(p.snp.measurements[0].0[47], 1);
    assert_eq!(p.snp.min_tcb.unwrap().microcode, 115);
}

#[test]
fn policy_rejects_bad_values_rejects() {
    assert!(matches!(
        Policy::from_toml("[snp]\nmeasurements = [\"00\"]"),
        Err(PolicyError::Length {
            field: "snp.measurements",
            expected: 48,
            actual: 1
        })
    ));
    assert!(matches!(
        Policy::from_toml("[snp]\nreport_data = \"zz\""),
        Err(PolicyError::Syntax(_))
    ));
    assert!(matches!(
        Policy::from_toml("[snp]\nallow_debgu = true"),
        Err(PolicyError::Syntax(_))
    ));
    assert!(matches!(
        Policy::from_toml("[snp]\nsigning_keys = [\"VXEK\"]"),
        Err(PolicyError::Value {
            field: "snp.signing_keys",
            ..
        })
    ));
    assert!(matches!(
        Policy::from_toml("[snp]\nproducts = [\"Naples\"]"),
        Err(PolicyError::Value {
            field: "snp.products",
            ..
        })
    ));
}
