//! Unit tests.
#![allow(clippy::unwrap_used)] // tests

use attestation_verifier::evidence::azure_hcl::HCL_REPORT_NV_INDEX;

use super::*;

#[test]
fn commands_are_marshaled_works() {
    // TPM2_NV_Read(owner, 0x01400001, size 1024, offset 2048) with a password session.
    let cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_NV_READ)
        .u32(TPM_RH_OWNER)
        .u32(HCL_REPORT_NV_INDEX)
        .password_session()
        .u16(1024)
        .u16(2048)
        .finish();
    assert_eq!(
        hex::encode(cmd),
        concat!(
            "8002", "00000023", "0000014e", // tag, size 35, TPM_CC_NV_Read
            "40000001", "01400001", // TPM_RH_OWNER, the index
            "00000009", "40000009", "0000", "00", "0000", // TPM_RS_PW, empty password
            "0400", "0800", // size, offset
        )
    );
}
