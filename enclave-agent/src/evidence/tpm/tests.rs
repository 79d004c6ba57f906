//! Unit tests.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

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

// ---- TPM2_Quote and TPM2_PCR_Read against a fake TPM ----

use std::sync::Arc;

use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::azure_hcl::parse_hcl_report;
use attestation_verifier::evidence::azure_vtpm::{VtpmQuoteParts, parse_vtpm_quote_json};
use attestation_verifier::evidence::tpm2::encode_tpmt_signature;
use attestation_verifier::verify::azure_vtpm::{VtpmQuoteError, verify_vtpm_quote_tpmt};
use sigil_test_support::vectors::cases;

const AK: u32 = 0x8100_0003;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn response(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
    let mut r = tag.to_be_bytes().to_vec();
    r.extend_from_slice(&u32::try_from(10 + body.len()).unwrap().to_be_bytes());
    r.extend_from_slice(&rc.to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn tpm2b(data: &[u8]) -> Vec<u8> {
    let mut b = u16::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    b.extend_from_slice(data);
    b
}

/// A vTPM that answers `TPM2_Quote` with a recorded quote and `TPM2_PCR_Read`
/// with at most 8 values per answer, checking every command strictly.
struct QuotingTpm {
    quote: VtpmQuoteParts,
    /// The qualifying data the agent must send.
    expected_qualifying: Vec<u8>,
    /// The values of PCR 0..23.
    pcrs: Vec<Vec<u8>>,
    reads: std::sync::Mutex<usize>,
}

impl QuotingTpm {
    fn handle(&self, cmd: &[u8]) -> Vec<u8> {
        assert_eq!(be32(&cmd[2..]) as usize, cmd.len(), "command size field");
        match be32(&cmd[6..]) {
            TPM_CC_QUOTE => {
                assert_eq!(be16(cmd), TPM_ST_SESSIONS);
                assert_eq!(be32(&cmd[10..]), AK, "signHandle");
                assert_eq!(
                    &cmd[14..27],
                    &[0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0],
                    "an empty password session"
                );
                let p = &cmd[27..];
                let n = be16(p) as usize;
                assert_eq!(&p[2..2 + n], self.expected_qualifying.as_slice());
                let rest = &p[2 + n..];
                assert_eq!(
                    hex::encode(rest),
                    "0014000b00000001000b03ffffff",
                    "RSASSA/SHA-256 over SHA-256 PCR 0..23"
                );
                let sig = encode_tpmt_signature(&self.quote.signature).unwrap();
                let mut params = tpm2b(&self.quote.attest);
                params.extend_from_slice(&sig);
                let mut body = u32::try_from(params.len()).unwrap().to_be_bytes().to_vec();
                body.extend_from_slice(&params);
                body.extend_from_slice(&[0, 0, 1, 0, 0]);
                response(TPM_ST_SESSIONS, 0, &body)
            }
            TPM_CC_PCR_READ => {
                assert_eq!(be16(cmd), TPM_ST_NO_SESSIONS);
                *self.reads.lock().unwrap() += 1;
                let sel = &cmd[10..];
                assert_eq!(sel.len(), 10);
                assert_eq!((be32(sel), be16(&sel[4..]), sel[6]), (1, TPM_ALG_SHA256, 3));
                let asked: Vec<u8> = (0u8..24)
                    .filter(|&i| sel[7 + usize::from(i / 8)] & (1 << (i % 8)) != 0)
                    .collect();
                let given: Vec<u8> = asked.into_iter().take(8).collect();
                let mut bitmap = [0u8; 3];
                for &i in &given {
                    bitmap[usize::from(i / 8)] |= 1 << (i % 8);
                }
                let mut body = 7u32.to_be_bytes().to_vec(); // pcrUpdateCounter
                body.extend_from_slice(&1u32.to_be_bytes());
                body.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
                body.push(3);
                body.extend_from_slice(&bitmap);
                body.extend_from_slice(&u32::try_from(given.len()).unwrap().to_be_bytes());
                for &i in &given {
                    body.extend_from_slice(&tpm2b(&self.pcrs[usize::from(i)]));
                }
                response(TPM_ST_NO_SESSIONS, 0, &body)
            }
            other => panic!("unexpected command {other:#x}"),
        }
    }
}

impl TpmTransport for Arc<QuotingTpm> {
    fn transact(&self, command: &[u8]) -> Result<Vec<u8>, TpmError> {
        Ok(self.handle(command))
    }
}

#[test]
fn quote_command_is_marshaled_works() {
    let mut cmd = Command::new(TPM_ST_SESSIONS, TPM_CC_QUOTE)
        .u32(AK)
        .password_session()
        .tpm2b(b"ab")
        .u16(TPM_ALG_RSASSA)
        .u16(TPM_ALG_SHA256);
    cmd.buf.extend_from_slice(&sha256_selection(&[0, 7, 23]));
    assert_eq!(
        hex::encode(cmd.finish()),
        concat!(
            "8002", "0000002d", "00000158", // tag, size 45, TPM_CC_Quote
            "81000003", // the AK
            "00000009", "40000009", "0000", "00", "0000",     // TPM_RS_PW, empty password
            "00026162", // qualifyingData "ab"
            "0014", "000b", // RSASSA, SHA-256
            "00000001", "000b", "03", "810080", // SHA-256 PCR 0, 7, 23
        )
    );
}

/// The Azure vector's quote and PCRs replayed by a fake vTPM: the agent's
/// commands get them back intact, in three PCR reads, and they verify against
/// the vector's HCL report.
#[test]
fn real_quote_replayed_works() {
    // A valid SEV-SNP case with the quote in its own file.
    let Some(case) = cases("measured/azure-vtpm")
        .into_iter()
        .find(|c| c.expected_valid() && c.has("tpm_quote.json") && c.has("vcek.der"))
    else {
        panic!("no split-file SEV-SNP case in measured/azure-vtpm");
    };
    let nonce = hex::decode(
        case.expected("expected_nonce_hex")
            .and_then(|v| v.as_str())
            .unwrap(),
    )
    .unwrap();
    let quote = parse_vtpm_quote_json(&case.file("tpm_quote.json")).unwrap();
    let hcl = parse_hcl_report(&case.file("hcl_report.bin")).unwrap();
    let fake = Arc::new(QuotingTpm {
        pcrs: quote.pcrs.clone(),
        quote: quote.clone(),
        expected_qualifying: nonce.clone(),
        reads: std::sync::Mutex::new(0),
    });
    let tpm = Tpm::new(Box::new(Arc::clone(&fake)));
    let all: Vec<u8> = (0..PCR_COUNT).collect();
    let q = tpm.quote(AK, &nonce, &all).unwrap();
    assert_eq!(q.attest, quote.attest);
    let pcrs = tpm.pcr_read(&all).unwrap();
    assert_eq!(*fake.reads.lock().unwrap(), 3, "8 values per answer");
    assert_eq!(
        pcrs.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        all,
        "in index order"
    );
    let values: Vec<Vec<u8>> = pcrs.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, quote.pcrs);
    for c in [
        &AwsLc as &dyn attestation_verifier::crypto::Crypto,
        &RustCrypto,
    ] {
        let v = verify_vtpm_quote_tpmt(c, &hcl.claims, &q.attest, &q.signature, &values, &nonce)
            .unwrap();
        assert_eq!(
            hex::encode(v.pcr(0).unwrap()),
            case.facts().unwrap()["pcrs"]["pcr00"].as_str().unwrap()
        );
        // Another challenge is refused.
        let f = verify_vtpm_quote_tpmt(c, &hcl.claims, &q.attest, &q.signature, &values, b"other")
            .unwrap_err();
        assert!(matches!(f.0[..], [VtpmQuoteError::NonceMismatch { .. }]));
    }
}

/// A PCR read that answers with PCRs it was not asked for, or no values at all.
#[test]
fn pcr_read_malformed_rejects() {
    struct Scripted(Vec<u8>);
    impl TpmTransport for Scripted {
        fn transact(&self, _: &[u8]) -> Result<Vec<u8>, TpmError> {
            Ok(self.0.clone())
        }
    }
    let answer = |bitmap: [u8; 3], values: &[[u8; 32]]| {
        let mut body = 0u32.to_be_bytes().to_vec();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        body.push(3);
        body.extend_from_slice(&bitmap);
        body.extend_from_slice(&u32::try_from(values.len()).unwrap().to_be_bytes());
        for v in values {
            body.extend_from_slice(&tpm2b(v));
        }
        response(TPM_ST_NO_SESSIONS, 0, &body)
    };
    // PCR 1 returned for a request of PCR 0.
    let tpm = Tpm::new(Box::new(Scripted(answer([2, 0, 0], &[[0; 32]]))));
    assert!(matches!(
        tpm.pcr_read(&[0]).unwrap_err(),
        TpmError::Malformed { .. }
    ));
    // Nothing returned: no endless loop.
    let tpm = Tpm::new(Box::new(Scripted(answer([0, 0, 0], &[]))));
    assert!(matches!(
        tpm.pcr_read(&[0]).unwrap_err(),
        TpmError::Malformed { .. }
    ));
    // A count that does not match the selection.
    let tpm = Tpm::new(Box::new(Scripted(answer([1, 0, 0], &[[0; 32], [0; 32]]))));
    assert!(matches!(
        tpm.pcr_read(&[0]).unwrap_err(),
        TpmError::Malformed { .. }
    ));
    // A TPM error code is typed.
    let tpm = Tpm::new(Box::new(Scripted(response(TPM_ST_NO_SESSIONS, 0x18B, &[]))));
    assert!(matches!(
        tpm.quote(AK, b"x", &[0]).unwrap_err(),
        TpmError::Response { command: "TPM2_Quote", code } if code.is_handle()
    ));
}
