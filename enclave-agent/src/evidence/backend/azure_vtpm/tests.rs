//! The Azure vTPM backend against a fake TPM that parses the agent's commands
//! (strictly: header, handles, password session, parameters) and plays the
//! paravisor: a write to NV index 0x01400002 makes it issue a new HCL report
//! around an SNP report signed by a test AMD-like PKI. The resulting bundles go
//! through the verifier with that PKI's roots. Malformed responses and TPM error
//! codes come from a scripted transport.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use attestation_verifier::binding;
use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::crypto::{AwsLc, RustCrypto};
use attestation_verifier::evidence::azure_hcl::{HclHashType, encode_hcl_report, parse_hcl_report};
use attestation_verifier::evidence::snp::SnpReport;
use attestation_verifier::pcs::FetchError;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::azure_hcl::claims_report_data;
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::{SnpTrustStore, SnpVerifier};
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{CpuClaims, ReceiptVerifier, check_bundle};
use rcgen::KeyPair;

use super::*;
use crate::attestor::Attestor;
use crate::collateral::CollateralError;
use crate::collateral::vcek::*;
use crate::evidence::detect::{Backend, DetectOptions, open_source};
use crate::evidence::tpm::*;
use crate::keys::AgentKey;

const NOW: UnixTime = UnixTime(1_893_456_000); // 2030-01-01
/// The size Azure gives NV index 0x01400001.
const HCL_NV_SIZE: usize = 2600;

// ---- a test AMD-like PKI (sigil-test-support) ----

use sigil_test_support::snp as snp_support;

struct Pki {
    trust: SnpTrustStore,
    ark: Vec<u8>,
    ask: Vec<u8>,
    vcek: Vec<u8>,
    vcek_key: Arc<KeyPair>,
}

fn pki() -> Pki {
    let p = snp_support::test_platform();
    let mut trust = SnpTrustStore::empty();
    trust
        .add(
            attestation_verifier::evidence::snp::Product::Milan,
            &p.ark,
            &p.ask,
            &p.asvk,
        )
        .unwrap();
    Pki {
        trust,
        ark: p.ark,
        ask: p.ask,
        vcek: p.vcek,
        vcek_key: Arc::new(p.vcek_key),
    }
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn snp_report(key: &KeyPair, rd: &[u8; 64]) -> Vec<u8> {
    snp_support::snp_report(key, 2, 0x3001f, rd)
}

/// The paravisor's part: an HCL report whose claims carry `user_data`, padded
/// to the NV index size.
fn paravisor_report(key: &KeyPair, user_data: &[u8], report_type: u32) -> Vec<u8> {
    paravisor_report_with_ak(key, user_data, report_type, ("AQAB", "tegZ0wAB"))
}

/// The paravisor's runtime claims: the attestation key `(e, n)` (base64url) and
/// `user_data`.
fn claims_json(user_data: &[u8], (e, n): (&str, &str)) -> String {
    format!(
        r#"{{"keys":[{{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"{e}","n":"{n}"}}],"vm-configuration":{{"console-enabled":false,"secure-boot":true,"tpm-enabled":true,"vmUniqueId":"00000000-0000-0000-0000-000000000001"}},"user-data":"{}"}}"#,
        hex::encode_upper(user_data)
    )
}

/// [`paravisor_report`] publishing the attestation key `(e, n)` (base64url).
fn paravisor_report_with_ak(
    key: &KeyPair,
    user_data: &[u8],
    report_type: u32,
    (e, n): (&str, &str),
) -> Vec<u8> {
    let claims = claims_json(user_data, (e, n));
    let rd = claims_report_data(&RustCrypto, HclHashType::Sha256, claims.as_bytes());
    let mut b = encode_hcl_report(
        &snp_report(key, &rd),
        HclHashType::Sha256,
        claims.as_bytes(),
    )
    .unwrap();
    b[1224..1228].copy_from_slice(&report_type.to_le_bytes());
    b.resize(HCL_NV_SIZE, 0);
    b
}

// ---- the fake TPM ----

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b[..2].try_into().unwrap())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn response(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&tag.to_be_bytes());
    r.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    r.extend_from_slice(&rc.to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn error(rc: u32) -> Vec<u8> {
    response(TPM_ST_NO_SESSIONS, rc, &[])
}

/// A sessions response: parameterSize, parameters, one password session's answer.
fn session_response(params: &[u8]) -> Vec<u8> {
    let mut b = (params.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(params);
    b.extend_from_slice(&[0, 0, 1, 0, 0]);
    response(TPM_ST_SESSIONS, 0, &b)
}

fn tpm2b(data: &[u8]) -> Vec<u8> {
    let mut b = (data.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(data);
    b
}

fn nv_public(index: u32, attributes: u32, size: u16) -> Vec<u8> {
    let mut p = index.to_be_bytes().to_vec();
    p.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    p.extend_from_slice(&attributes.to_be_bytes());
    p.extend_from_slice(&tpm2b(&[]));
    p.extend_from_slice(&size.to_be_bytes());
    let mut body = tpm2b(&p);
    body.extend_from_slice(&tpm2b(&[0; 34]));
    body
}

#[derive(Default)]
struct State {
    nv: HashMap<u32, Vec<u8>>,
    /// User data the agent wrote, in order.
    written: Vec<Vec<u8>>,
    /// Command codes received, in order.
    commands: Vec<u32>,
    /// A report issued but not yet visible, and how many full reads still see the old one.
    pending: Option<Vec<u8>>,
    stale_left: usize,
    /// Full reads that see the old report after each write.
    stale_reads: usize,
    /// The SHA-256 PCRs 0..23.
    pcrs: Vec<[u8; 32]>,
    /// PCR reads after which PCR 10 is extended once (an event between the
    /// agent's read and its quote).
    extend_after_reads: Option<usize>,
    pcr_reads: usize,
}

#[derive(Clone)]
struct FakeTpm {
    state: Arc<Mutex<State>>,
    key: Arc<KeyPair>,
    max_nv: u16,
    /// The vTPM's attestation key, when it answers TPM2_Quote.
    ak: Option<Arc<aws_lc_rs::signature::RsaKeyPair>>,
    /// The VM is a TDX one: the paravisor's reports carry a TD report.
    tdx: bool,
}

impl FakeTpm {
    /// A vTPM as Azure boots it: the report for zero user data; the user-data
    /// index defined or not.
    fn new(key: Arc<KeyPair>, user_index_defined: bool) -> Self {
        let mut state = State {
            pcrs: (0u8..24).map(|i| [i; 32]).collect(),
            ..State::default()
        };
        state
            .nv
            .insert(HCL_REPORT_NV_INDEX, paravisor_report(&key, &[0; 64], 2));
        if user_index_defined {
            state.nv.insert(HCL_USER_DATA_NV_INDEX, vec![0; 64]);
        }
        Self {
            state: Arc::new(Mutex::new(state)),
            key,
            max_nv: 1024,
            ak: None,
            tdx: false,
        }
    }

    /// The same vTPM with an RSA attestation key the paravisor's reports
    /// publish, answering TPM2_Quote and TPM2_PCR_Read.
    fn with_ak(mut self) -> Self {
        let ak =
            aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        self.ak = Some(Arc::new(ak));
        let mut s = self.state.lock().unwrap();
        let r = self.report(&[0; 64]);
        s.nv.insert(HCL_REPORT_NV_INDEX, r);
        drop(s);
        self
    }

    /// (e, n) of the attestation key, base64url.
    fn ak_jwk(&self) -> Option<(String, String)> {
        use aws_lc_rs::signature::KeyPair as _;
        use base64ct::Encoding;
        let der = self.ak.as_ref()?.public_key().as_ref().to_vec();
        // SEQUENCE { INTEGER n (257 bytes with its leading zero), INTEGER e }
        assert_eq!(&der[..8], &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01]);
        let n = &der[9..265];
        assert_eq!(der[265], 0x02);
        let e = &der[267..267 + der[266] as usize];
        let b64 = base64ct::Base64UrlUnpadded::encode_string;
        Some((b64(e), b64(n)))
    }

    /// The paravisor's report for `user_data`, publishing the AK when there is one.
    fn report(&self, user_data: &[u8]) -> Vec<u8> {
        if self.tdx {
            let (e, n) = self
                .ak_jwk()
                .unwrap_or_else(|| ("AQAB".into(), "tegZ0wAB".into()));
            return tdx::paravisor_tdx_report(user_data, (&e, &n));
        }
        match self.ak_jwk() {
            None => paravisor_report(&self.key, user_data, 2),
            Some((e, n)) => paravisor_report_with_ak(&self.key, user_data, 2, (&e, &n)),
        }
    }

    /// TPM2_Quote and TPM2_PCR_Read, checked strictly.
    fn quote_or_read(&self, s: &mut State, cc: u32, cmd: &[u8]) -> Vec<u8> {
        use attestation_verifier::crypto::Crypto as _;
        use attestation_verifier::evidence::tpm2::{
            ClockInfo, PcrSelection, QuoteInfo, TpmsAttest, encode_tpms_attest,
            encode_tpmt_signature,
        };
        let selection = |sel: &[u8]| -> Vec<u8> {
            assert_eq!((be32(sel), be16(&sel[4..]), sel[6]), (1, TPM_ALG_SHA256, 3));
            (0u8..24)
                .filter(|&i| sel[7 + usize::from(i / 8)] & (1 << (i % 8)) != 0)
                .collect()
        };
        if cc == TPM_CC_PCR_READ {
            assert_eq!(be16(cmd), TPM_ST_NO_SESSIONS);
            let given: Vec<u8> = selection(&cmd[10..]).into_iter().take(8).collect();
            let sel = PcrSelection::sha256(&given);
            let mut body = 1u32.to_be_bytes().to_vec();
            body.extend_from_slice(&1u32.to_be_bytes());
            body.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
            body.push(3);
            body.extend_from_slice(&sel.select);
            body.extend_from_slice(&(given.len() as u32).to_be_bytes());
            for &i in &given {
                body.extend_from_slice(&tpm2b(&s.pcrs[usize::from(i)]));
            }
            s.pcr_reads += 1;
            if s.extend_after_reads == Some(s.pcr_reads) {
                s.pcrs[10][0] ^= 0xff;
                s.extend_after_reads = None;
            }
            return response(TPM_ST_NO_SESSIONS, 0, &body);
        }
        let Some(ak) = &self.ak else {
            return error(0x18B); // TPM_RC_HANDLE: no key at the handle
        };
        assert_eq!(be16(cmd), TPM_ST_SESSIONS);
        assert_eq!(be32(&cmd[10..]), AZURE_AK_HANDLE, "the AK");
        let p = Self::password_session(&cmd[14..]);
        let n = be16(p) as usize;
        let qualifying = p[2..2 + n].to_vec();
        assert_eq!(
            (be16(&p[2 + n..]), be16(&p[4 + n..])),
            (0x0014, TPM_ALG_SHA256),
            "RSASSA / SHA-256"
        );
        let pcrs = selection(&p[6 + n..]);
        assert_eq!(p.len(), 6 + n + 10);
        let values: Vec<u8> = pcrs.iter().flat_map(|&i| s.pcrs[usize::from(i)]).collect();
        let attest = encode_tpms_attest(&TpmsAttest {
            qualified_signer: vec![0, 0x0b, 1],
            extra_data: qualifying,
            clock_info: ClockInfo::default(),
            firmware_version: 1,
            quote: QuoteInfo {
                pcr_select: vec![PcrSelection::sha256(&pcrs)],
                pcr_digest: RustCrypto.sha256(&values).to_vec(),
            },
        })
        .unwrap();
        let mut sig = vec![0; ak.public_modulus_len()];
        ak.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            &attest,
            &mut sig,
        )
        .unwrap();
        let mut params = tpm2b(&attest);
        params.extend_from_slice(&encode_tpmt_signature(&sig).unwrap());
        session_response(&params)
    }

    /// Checks the one password session with an empty password; returns the parameters.
    fn password_session(cmd: &[u8]) -> &[u8] {
        assert_eq!(be32(cmd), 9, "authorizationSize");
        assert_eq!(be32(&cmd[4..]), TPM_RS_PW, "session handle");
        assert_eq!(be16(&cmd[8..]), 0, "nonce");
        assert_eq!(cmd[10], 0, "session attributes");
        assert_eq!(be16(&cmd[11..]), 0, "password");
        &cmd[13..]
    }

    fn handle(&self, cmd: &[u8]) -> Vec<u8> {
        let tag = be16(cmd);
        assert_eq!(be32(&cmd[2..]) as usize, cmd.len(), "command size field");
        let cc = be32(&cmd[6..]);
        let mut s = self.state.lock().unwrap();
        s.commands.push(cc);
        match cc {
            TPM_CC_NV_READ_PUBLIC => {
                assert_eq!((tag, cmd.len()), (TPM_ST_NO_SESSIONS, 14));
                let index = be32(&cmd[10..]);
                match s.nv.get(&index) {
                    None => error(0x18B), // TPM_RC_HANDLE, handle 1
                    Some(d) => response(
                        TPM_ST_NO_SESSIONS,
                        0,
                        &nv_public(index, 0x6_0006, d.len() as u16),
                    ),
                }
            }
            TPM_CC_GET_CAPABILITY => {
                assert_eq!(tag, TPM_ST_NO_SESSIONS);
                assert_eq!(
                    (be32(&cmd[10..]), be32(&cmd[14..]), be32(&cmd[18..])),
                    (TPM_CAP_TPM_PROPERTIES, TPM_PT_NV_BUFFER_MAX, 1)
                );
                let mut body = vec![0];
                for v in [TPM_CAP_TPM_PROPERTIES, 1, TPM_PT_NV_BUFFER_MAX] {
                    body.extend_from_slice(&v.to_be_bytes());
                }
                body.extend_from_slice(&u32::from(self.max_nv).to_be_bytes());
                response(TPM_ST_NO_SESSIONS, 0, &body)
            }
            TPM_CC_NV_READ => {
                assert_eq!(tag, TPM_ST_SESSIONS);
                assert_eq!(be32(&cmd[10..]), TPM_RH_OWNER, "owner authorization");
                let index = be32(&cmd[14..]);
                let p = Self::password_session(&cmd[18..]);
                assert_eq!(p.len(), 4);
                let (size, offset) = (be16(p) as usize, be16(&p[2..]) as usize);
                assert!(size <= self.max_nv as usize, "read of {size} bytes");
                if index == HCL_REPORT_NV_INDEX && offset == 0 && s.pending.is_some() {
                    if s.stale_left > 0 {
                        s.stale_left -= 1;
                    } else {
                        let new = s.pending.take().unwrap();
                        s.nv.insert(HCL_REPORT_NV_INDEX, new);
                    }
                }
                let Some(d) = s.nv.get(&index) else {
                    return error(0x18C); // TPM_RC_HANDLE, handle 2
                };
                if offset + size > d.len() {
                    return error(0x146); // TPM_RC_NV_RANGE
                }
                session_response(&tpm2b(&d[offset..offset + size]))
            }
            TPM_CC_NV_WRITE => {
                assert_eq!(tag, TPM_ST_SESSIONS);
                assert_eq!(be32(&cmd[10..]), TPM_RH_OWNER, "owner authorization");
                let index = be32(&cmd[14..]);
                let p = Self::password_session(&cmd[18..]);
                let n = be16(p) as usize;
                let data = p[2..2 + n].to_vec();
                assert_eq!(be16(&p[2 + n..]), 0, "offset");
                assert_eq!(p.len(), 4 + n);
                let Some(slot) = s.nv.get_mut(&index) else {
                    return error(0x18C);
                };
                if data.len() > slot.len() {
                    return error(0x146);
                }
                slot[..data.len()].copy_from_slice(&data);
                if index == HCL_USER_DATA_NV_INDEX {
                    s.written.push(data.clone());
                    s.pending = Some(self.report(&data));
                    s.stale_left = s.stale_reads;
                }
                session_response(&[])
            }
            TPM_CC_NV_DEFINE_SPACE => {
                assert_eq!(tag, TPM_ST_SESSIONS);
                assert_eq!(be32(&cmd[10..]), TPM_RH_OWNER, "owner authorization");
                let p = Self::password_session(&cmd[14..]);
                assert_eq!(be16(p), 0, "index password");
                let public = &p[4..];
                assert_eq!(be16(&p[2..]) as usize, public.len());
                let index = be32(public);
                assert_eq!(be16(&public[4..]), TPM_ALG_SHA256);
                assert_eq!(be32(&public[6..]), USER_DATA_NV_ATTRIBUTES);
                assert_eq!(be16(&public[10..]), 0, "auth policy");
                let size = be16(&public[12..]) as usize;
                if s.nv.contains_key(&index) {
                    return error(0x14C); // TPM_RC_NV_DEFINED
                }
                s.nv.insert(index, vec![0; size]);
                session_response(&[])
            }
            TPM_CC_QUOTE | TPM_CC_PCR_READ => self.quote_or_read(&mut s, cc, cmd),
            other => panic!("unexpected command {other:#x}"),
        }
    }
}

impl TpmTransport for FakeTpm {
    fn transact(&self, command: &[u8]) -> Result<Vec<u8>, TpmError> {
        Ok(self.handle(command))
    }
}

/// A fixed VCEK source.
struct StaticVcek(SnpCertificates);

impl VcekSource for StaticVcek {
    fn certificates(&self, _: &SnpReport) -> Result<SnpCertificates, CollateralError> {
        Ok(self.0.clone())
    }
}

fn certs(p: &Pki, chain: bool) -> SnpCertificates {
    SnpCertificates {
        vcek: Some(p.vcek.clone()),
        vlek: None,
        ask: chain.then(|| p.ask.clone()),
        ark: chain.then(|| p.ark.clone()),
    }
}

fn no_wait(attempts: u32) -> Poll {
    Poll {
        attempts,
        delay: Duration::ZERO,
    }
}

fn verifier<C: attestation_verifier::crypto::Crypto + Clone>(c: C, p: &Pki) -> ReceiptVerifier<C> {
    ReceiptVerifier::with_verifiers(
        SnpVerifier::with_trust_store(c.clone(), p.trust.clone()),
        TdxVerifier::new(c.clone()).unwrap(),
        NvGpuVerifier::new(c).unwrap(),
    )
}

/// `check_bundle` of `bytes` for `key` and `nonce` under `policy`, by both crypto backends.
fn both_backends(
    p: &Pki,
    bytes: &[u8],
    key: &[u8; 32],
    nonce: &[u8; 32],
    policy: &Policy,
) -> [attestation_verifier::Outcome<attestation_verifier::EvidenceClaims>; 2] {
    [
        check_bundle(
            &mut verifier(AwsLc, p),
            bytes,
            Some(key),
            Some(nonce),
            policy,
            NOW,
        ),
        check_bundle(
            &mut verifier(RustCrypto, p),
            bytes,
            Some(key),
            Some(nonce),
            policy,
            NOW,
        ),
    ]
}

#[test]
fn azure_vtpm_evidence_verifies_works() {
    let p = pki();
    let key = Arc::clone(&p.vcek_key);
    let tpm = FakeTpm::new(Arc::clone(&key), false);
    let source = AzureVtpmSource::new(Box::new(tpm.clone()), Box::new(StaticVcek(certs(&p, true))))
        .with_poll(no_wait(3));
    source.probe().unwrap();
    let attestor = Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(source)),
        None,
        Vec::new(),
    );
    assert_eq!(attestor.tee(), TeeKind::SevSnp);
    for nonce in [[1u8; 32], [2u8; 32]] {
        let bundle = attestor.attest(nonce).unwrap();
        let (key, sealing) = (attestor.public_key(), attestor.sealing_public_key());
        assert_eq!(bundle.sealing_key, Some(sealing));
        let rd = binding::Binding::V2 {
            agent_key: &key,
            sealing_key: &sealing,
        }
        .report_data(&RustCrypto, &[0; 32], &nonce);
        // The agent wrote exactly the bundle's REPORT_DATA to the user-data index.
        assert_eq!(tpm.state.lock().unwrap().written.last().unwrap(), &rd);
        let CpuEvidence::AzureSnpVtpm {
            hcl_report, vek, ..
        } = &bundle.cpu
        else {
            panic!("{:?}", bundle.cpu)
        };
        assert_eq!(vek, &p.vcek);
        // Trimmed to what the report uses (the NV index is zero-padded).
        assert!(hcl_report.len() < HCL_NV_SIZE);
        assert_eq!(
            parse_hcl_report(hcl_report).unwrap().used_len,
            hcl_report.len()
        );
        let bytes = bundle.to_bytes();
        assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), bundle);
        for outcome in both_backends(
            &p,
            &bytes,
            &attestor.public_key(),
            &nonce,
            &Policy::default(),
        ) {
            assert!(outcome.accepted(), "{:?}", outcome.reasons);
            let c = outcome.claims.unwrap();
            let Some(CpuClaims::AzureSnpVtpm(az)) = c.cpu else {
                panic!()
            };
            assert_eq!(az.path, "azure-vtpm");
            assert_eq!(az.hcl.user_data, Some(hex::encode(rd)));
        }
        // The same bundle offered for another nonce is refused.
        let o = check_bundle(
            &mut verifier(AwsLc, &p),
            &bytes,
            None,
            Some(&[3; 32]),
            &Policy::default(),
            NOW,
        );
        assert!(!o.accepted());
    }
    // The user-data index was defined once, by the first request.
    let s = tpm.state.lock().unwrap();
    let defines = s
        .commands
        .iter()
        .filter(|&&c| c == TPM_CC_NV_DEFINE_SPACE)
        .count();
    assert_eq!(defines, 1);
    assert_eq!(s.written.len(), 2);
    // 2600 bytes in reads of at most 1024.
    let reads = s.commands.iter().filter(|&&c| c == TPM_CC_NV_READ).count();
    assert_eq!(reads, 3 * 3, "probe and two requests, three chunks each");
}

#[test]
fn stale_report_is_waited_for_works() {
    let p = pki();
    let key = Arc::clone(&p.vcek_key);
    let tpm = FakeTpm::new(Arc::clone(&key), true);
    tpm.state.lock().unwrap().stale_reads = 2;
    let source = AzureVtpmSource::new(
        Box::new(tpm.clone()),
        Box::new(StaticVcek(certs(&p, false))),
    )
    .with_poll(no_wait(3));
    let rd = [0x42; 64];
    let ev = source.collect(&rd).unwrap();
    assert!(matches!(
        ev,
        CpuEvidence::AzureSnpVtpm {
            intermediate: None,
            ..
        }
    ));
    // No DefineSpace: the index existed.
    assert!(
        !tpm.state
            .lock()
            .unwrap()
            .commands
            .contains(&TPM_CC_NV_DEFINE_SPACE)
    );
    // A paravisor that never refreshes: a typed refusal, not stale evidence.
    tpm.state.lock().unwrap().stale_reads = 10;
    let e = source.collect(&[0x43; 64]).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Unusable { tee: TeeKind::SevSnp, detail } if detail.contains("did not refresh") && detail.contains(&hex::encode([0x42; 64]))),
        "{e}"
    );
}

#[test]
fn report_that_does_not_bind_rejects() {
    // A paravisor whose report is a VBS one, or whose claims do not match REPORT_DATA.
    let p = pki();
    let key = Arc::clone(&p.vcek_key);
    let tpm = FakeTpm::new(Arc::clone(&key), true);
    tpm.state
        .lock()
        .unwrap()
        .nv
        .insert(HCL_REPORT_NV_INDEX, paravisor_report(&key, &[0; 64], 1));
    let source = AzureVtpmSource::new(
        Box::new(tpm.clone()),
        Box::new(StaticVcek(certs(&p, false))),
    );
    assert!(matches!(
        source.probe(),
        Err(EvidenceError::Unavailable { ref reason, .. }) if reason.contains("VBS")
    ));
    // Claims edited after the report was made: the agent refuses to emit them.
    let mut forged = paravisor_report(&key, &[0; 64], 2);
    let at = forged.windows(8).position(|w| w == b"tegZ0wAB").unwrap();
    forged[at] = b'X';
    let user = [0x55u8; 64];
    let claims_at = forged
        .windows(128)
        .position(|w| w == "0".repeat(128).as_bytes())
        .unwrap();
    forged[claims_at..claims_at + 128].copy_from_slice(hex::encode_upper(user).as_bytes());
    let bad = Arc::new(Mutex::new(forged));
    struct Forging(FakeTpm, Arc<Mutex<Vec<u8>>>);
    impl TpmTransport for Forging {
        fn transact(&self, command: &[u8]) -> Result<Vec<u8>, TpmError> {
            let r = self.0.handle(command);
            // After every write, the "paravisor" stores the forged report.
            let mut s = self.0.state.lock().unwrap();
            s.pending = None;
            s.nv.insert(HCL_REPORT_NV_INDEX, self.1.lock().unwrap().clone());
            Ok(r)
        }
    }
    let source = AzureVtpmSource::new(
        Box::new(Forging(tpm, bad)),
        Box::new(StaticVcek(certs(&p, false))),
    )
    .with_poll(no_wait(1));
    let e = source.collect(&user).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Unusable { detail, .. } if detail.contains("not the SHA-256 digest")),
        "{e}"
    );
}

// ---- malformed responses and TPM error codes ----

/// Answers each command with the next scripted response.
struct Scripted {
    responses: Mutex<VecDeque<Vec<u8>>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn tpm(responses: Vec<Vec<u8>>) -> (Tpm, Arc<Self>) {
        let s = Arc::new(Self {
            responses: Mutex::new(responses.into()),
            calls: AtomicUsize::new(0),
        });
        (Tpm::new(Box::new(Arc::clone(&s))), s)
    }
}

impl TpmTransport for Arc<Scripted> {
    fn transact(&self, _: &[u8]) -> Result<Vec<u8>, TpmError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .responses
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_default())
    }
}

fn malformed(r: Result<impl std::fmt::Debug, TpmError>, needle: &str) {
    match r {
        Err(TpmError::Malformed { detail, .. }) => {
            assert!(detail.contains(needle), "{detail}");
        }
        other => panic!("expected Malformed({needle}), got {other:?}"),
    }
}

#[test]
fn malformed_responses_rejects() {
    let idx = HCL_REPORT_NV_INDEX;
    let public = response(TPM_ST_NO_SESSIONS, 0, &nv_public(idx, 0x6_0006, 100));
    // Empty and short responses.
    malformed(Scripted::tpm(vec![vec![]]).0.nv_read_public(idx), "tag");
    malformed(
        Scripted::tpm(vec![vec![0x80, 0x01, 0, 0]])
            .0
            .nv_read_public(idx),
        "size",
    );
    // A size field that disagrees with the bytes.
    let mut wrong_size = public.clone();
    wrong_size[5] ^= 1;
    malformed(
        Scripted::tpm(vec![wrong_size]).0.nv_read_public(idx),
        "size field",
    );
    // A sessions tag on a command without sessions.
    let mut wrong_tag = public.clone();
    wrong_tag[1] = 0x02;
    malformed(Scripted::tpm(vec![wrong_tag]).0.nv_read_public(idx), "tag");
    // Trailing bytes, a public area cut short, another index.
    let mut body = nv_public(idx, 0, 100);
    body.push(0);
    malformed(
        Scripted::tpm(vec![response(TPM_ST_NO_SESSIONS, 0, &body)])
            .0
            .nv_read_public(idx),
        "trailing",
    );
    let cut = response(TPM_ST_NO_SESSIONS, 0, &nv_public(idx, 0, 100)[..8]);
    malformed(Scripted::tpm(vec![cut]).0.nv_read_public(idx), "truncated");
    malformed(
        Scripted::tpm(vec![public.clone()])
            .0
            .nv_read_public(HCL_USER_DATA_NV_INDEX),
        "describes index",
    );
    // A zero NV buffer size.
    let mut cap = vec![0];
    for v in [TPM_CAP_TPM_PROPERTIES, 1, TPM_PT_NV_BUFFER_MAX, 0] {
        cap.extend_from_slice(&v.to_be_bytes());
    }
    malformed(
        Scripted::tpm(vec![response(TPM_ST_NO_SESSIONS, 0, &cap)])
            .0
            .nv_buffer_max(),
        "NV_BUFFER_MAX is 0",
    );
    // A read that returns fewer bytes than asked.
    let mut cap = vec![0];
    for v in [TPM_CAP_TPM_PROPERTIES, 1, TPM_PT_NV_BUFFER_MAX, 512] {
        cap.extend_from_slice(&v.to_be_bytes());
    }
    let cap = response(TPM_ST_NO_SESSIONS, 0, &cap);
    let short = session_response(&tpm2b(&[0; 10]));
    malformed(
        Scripted::tpm(vec![public.clone(), cap.clone(), short])
            .0
            .nv_read(idx),
        "10 bytes returned, 100 asked",
    );
    // A session area that does not add up.
    let mut bad_session = session_response(&tpm2b(&[0; 100]));
    bad_session.truncate(bad_session.len() - 1);
    let n = bad_session.len() as u32;
    bad_session[2..6].copy_from_slice(&n.to_be_bytes());
    malformed(
        Scripted::tpm(vec![public.clone(), cap.clone(), bad_session])
            .0
            .nv_read(idx),
        "session HMAC",
    );
    // And a good read, for contrast.
    let (tpm, _) = Scripted::tpm(vec![public, cap, session_response(&tpm2b(&[7; 100]))]);
    assert_eq!(tpm.nv_read(idx).unwrap(), vec![7; 100]);
}

#[test]
fn tpm_error_codes_are_typed_rejects() {
    let idx = HCL_REPORT_NV_INDEX;
    // An undefined index: `None` from ReadPublic, a typed error from a read.
    let (tpm, _) = Scripted::tpm(vec![error(0x18B), error(0x18B)]);
    assert_eq!(tpm.nv_read_public(idx).unwrap(), None);
    assert!(matches!(
        tpm.nv_read(idx),
        Err(TpmError::NvIndexUndefined { index }) if index == idx
    ));
    // An authorization failure on the write.
    let (tpm, _) = Scripted::tpm(vec![error(0x149)]);
    let e = tpm.nv_write(HCL_USER_DATA_NV_INDEX, &[0; 64]).unwrap_err();
    assert!(
        matches!(e, TpmError::Response { command: "TPM2_NV_Write", code } if code.name() == "TPM_RC_NV_AUTHORIZATION"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "TPM2_NV_Write: TPM_RC_NV_AUTHORIZATION (0x149)"
    );
    // A bad password for session 1.
    let (tpm, _) = Scripted::tpm(vec![error(0x9A2)]);
    let e = tpm.nv_write(HCL_USER_DATA_NV_INDEX, &[0; 64]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TPM2_NV_Write: TPM_RC_BAD_AUTH (0x9a2) for session 1"
    );
    // TPM_RC_RETRY is retried; a TPM that keeps asking is an error.
    let ok = session_response(&[]);
    let (tpm, s) = Scripted::tpm(vec![error(0x922), error(0x922), ok]);
    tpm.nv_write(HCL_USER_DATA_NV_INDEX, &[0; 64]).unwrap();
    assert_eq!(s.calls.load(Ordering::Relaxed), 3);
    let (tpm, s) = Scripted::tpm(vec![error(0x922); 10]);
    assert!(matches!(
        tpm.nv_write(HCL_USER_DATA_NV_INDEX, &[0; 64]),
        Err(TpmError::Response { code, .. }) if code.is_retry()
    ));
    assert_eq!(s.calls.load(Ordering::Relaxed), TPM_RETRIES + 1);
    // A user-data index too small for 64 bytes.
    let small = response(
        TPM_ST_NO_SESSIONS,
        0,
        &nv_public(HCL_USER_DATA_NV_INDEX, 0x6_0006, 32),
    );
    let source = AzureVtpmSource::new(
        Box::new(Arc::new(Scripted {
            responses: Mutex::new(vec![small].into()),
            calls: AtomicUsize::new(0),
        })),
        Box::new(NoVcek),
    );
    assert!(matches!(
        source.collect(&[0; 64]),
        Err(EvidenceError::Tpm(TpmError::NvIndexSize { size: 32, .. }))
    ));
}

#[test]
fn response_codes_decode_works() {
    let cases = [
        (0x18B, "TPM_RC_HANDLE", RcSubject::Handle(1)),
        (0x28B, "TPM_RC_HANDLE", RcSubject::Handle(2)),
        (0x9A2, "TPM_RC_BAD_AUTH", RcSubject::Session(1)),
        (0x98E, "TPM_RC_AUTH_FAIL", RcSubject::Session(1)),
        (0x1C4, "TPM_RC_VALUE", RcSubject::Parameter(1)),
        (0x2D5, "TPM_RC_SIZE", RcSubject::Parameter(2)),
        (0x149, "TPM_RC_NV_AUTHORIZATION", RcSubject::None),
        (0x14A, "TPM_RC_NV_UNINITIALIZED", RcSubject::None),
        (0x101, "TPM_RC_FAILURE", RcSubject::None),
        (0x922, "TPM_RC_RETRY", RcSubject::None),
        (0x921, "TPM_RC_LOCKOUT", RcSubject::None),
        // Vendor-defined and software-layer codes are not mistaken for TPM ones.
        (0x549, "TPM_RC (unnamed)", RcSubject::None),
        (0x000B_0149, "TPM_RC (unnamed)", RcSubject::None),
    ];
    for (rc, name, subject) in cases {
        let c = ResponseCode(rc);
        assert_eq!((c.name(), c.subject()), (name, subject), "{rc:#x}");
    }
    assert!(ResponseCode(0x18B).is_handle());
    assert!(!ResponseCode(0x149).is_handle());
    assert!(ResponseCode(0x908).is_retry() && ResponseCode(0x90A).is_retry());
    assert!(!ResponseCode(0x921).is_retry());
    assert_eq!(
        ResponseCode(0x1C4).to_string(),
        "TPM_RC_VALUE (0x1c4) for parameter 1"
    );
}

// ---- VCEK sources ----

#[test]
fn vcek_file_works() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let report =
        attestation_verifier::evidence::snp::parse_snp_report(&snp_report(&p.vcek_key, &[0; 64]))
            .unwrap();
    // PEM in any order.
    let path = dir.path().join("chain.pem");
    std::fs::write(
        &path,
        format!("{}{}{}", pem_of(&p.ark), pem_of(&p.vcek), pem_of(&p.ask)),
    )
    .unwrap();
    let c = VcekFile::new(&path).certificates(&report).unwrap();
    assert_eq!(c, certs(&p, true));
    // IMDS's JSON.
    let path = dir.path().join("thim.json");
    std::fs::write(&path, thim_json(&p)).unwrap();
    let c = VcekFile::new(&path).certificates(&report).unwrap();
    assert_eq!(c, certs(&p, true));
    // No VCEK in the file, no file.
    let path = dir.path().join("ask.pem");
    std::fs::write(&path, pem_of(&p.ask)).unwrap();
    assert!(matches!(
        VcekFile::new(&path).certificates(&report),
        Err(CollateralError::Invalid { ref reason, .. }) if reason.contains("SEV-VCEK")
    ));
    assert!(matches!(
        VcekFile::new(dir.path().join("missing.pem")).certificates(&report),
        Err(CollateralError::File { .. })
    ));
    assert!(matches!(
        NoVcek.certificates(&report),
        Err(CollateralError::Unconfigured(_))
    ));
}

fn thim_json(p: &Pki) -> String {
    serde_json::json!({
        "vcekCert": pem_of(&p.vcek),
        "tcbm": "7308000000000003",
        "certificateChain": format!("{}{}", pem_of(&p.ask), pem_of(&p.ark)),
        "cacheControl": "86400",
    })
    .to_string()
}

/// Serves `status` and `body` to every GET, recording each request's headers.
fn imds_server(status: u16, body: String) -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/metadata/THIM/amd/certification",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.trim_end().to_string());
            }
            s.lock().unwrap().push(headers);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn imds_vcek_is_fetched_and_cached_works() {
    let p = pki();
    let (url, seen) = imds_server(200, thim_json(&p));
    let imds = ImdsVcek::new(url, Duration::from_secs(5));
    let mut report =
        attestation_verifier::evidence::snp::parse_snp_report(&snp_report(&p.vcek_key, &[0; 64]))
            .unwrap();
    assert_eq!(imds.certificates(&report).unwrap(), certs(&p, true));
    assert_eq!(imds.certificates(&report).unwrap(), certs(&p, true));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "cached for the same chip and TCB"
    );
    let req = seen.lock().unwrap()[0].clone();
    assert!(req[0].starts_with("GET /metadata/THIM/amd/certification "));
    assert!(
        req.iter().any(|h| h.eq_ignore_ascii_case("metadata: true")),
        "{req:?}"
    );
    // A TCB update fetches again.
    report.reported_tcb += 1;
    imds.certificates(&report).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Errors are typed.
    let (url, _) = imds_server(404, String::new());
    assert!(matches!(
        ImdsVcek::new(url, Duration::from_secs(5)).certificates(&report),
        Err(CollateralError::Fetch {
            source: FetchError::Status { status: 404, .. },
            ..
        })
    ));
    let (url, _) = imds_server(200, "{\"vcekCert\": 3}".into());
    assert!(matches!(
        ImdsVcek::new(url, Duration::from_secs(5)).certificates(&report),
        Err(CollateralError::Invalid { .. })
    ));
}

// ---- detection ----

#[test]
fn detection_works() {
    assert_eq!("azure-vtpm".parse::<Backend>().unwrap(), Backend::AzureVtpm);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DetectOptions::new(Backend::AzureVtpm, false);
    opts.tpm_device = dir.path().join("tpmrm0");
    opts.tsm_root = dir.path().join("tsm");
    opts.sev_guest_device = dir.path().join("sev-guest");
    opts.tdx_guest_device = dir.path().join("tdx_guest");
    assert!(matches!(
        open_source(&opts),
        Err(EvidenceError::Unavailable { ref backend, .. }) if backend == "azure-vtpm"
    ));
    // Auto: a "TPM" that answers nothing (a plain file) is no Azure vTPM, and no TEE.
    std::fs::write(&opts.tpm_device, b"").unwrap();
    opts.backend = Backend::Auto;
    assert!(open_source(&opts).unwrap().is_none());
    // Forced, the same device is a typed error.
    opts.backend = Backend::AzureVtpm;
    assert!(matches!(
        open_source(&opts),
        Err(EvidenceError::Tpm(TpmError::Malformed { .. }))
    ));
}

// ---- the vTPM quote in the bundle ----

fn quoting_source(p: &Pki, tpm: &FakeTpm) -> AzureVtpmSource {
    let all: Vec<u8> = (0..24).collect();
    AzureVtpmSource::new(Box::new(tpm.clone()), Box::new(StaticVcek(certs(p, true))))
        .with_poll(no_wait(3))
        .with_tpm_quote(&all)
}

#[test]
fn azure_vtpm_quote_in_bundle_works() {
    use attestation_verifier::crypto::Crypto as _;
    let p = pki();
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true).with_ak();
    let attestor = Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(quoting_source(&p, &tpm))),
        None,
        Vec::new(),
    );
    let nonce = [4u8; 32];
    let bundle = attestor.attest(nonce).unwrap();
    let q = bundle.measured.tpm_quote.as_ref().expect("a quote");
    assert_eq!(q.pcrs.len(), 24);
    assert_eq!(q.pcrs[7], vec![7; 32]);
    {
        let s = tpm.state.lock().unwrap();
        let count = |cc| s.commands.iter().filter(|&&c| c == cc).count();
        assert_eq!((count(TPM_CC_PCR_READ), count(TPM_CC_QUOTE)), (3, 1));
    }
    let policy = Policy::from_toml(&format!(
        "[vtpm]\npcrs = [{{ index = 7, sha256 = \"{}\" }}]\n",
        hex::encode([7u8; 32])
    ))
    .unwrap();
    let bytes = bundle.to_bytes();
    for outcome in both_backends(&p, &bytes, &attestor.public_key(), &nonce, &policy) {
        assert!(outcome.accepted(), "{:?}", outcome.reasons);
        let Some(CpuClaims::AzureSnpVtpm(az)) = outcome.claims.unwrap().cpu else {
            panic!()
        };
        let tq = az.hcl.tpm_quote.unwrap();
        assert_eq!(tq.pcrs["pcr07"], "07".repeat(32));
        let rd = binding::Binding::V2 {
            agent_key: &attestor.public_key(),
            sealing_key: &attestor.sealing_public_key(),
        }
        .report_data(&RustCrypto, &[0; 32], &nonce);
        let qd = attestation_verifier::verify::azure_vtpm::tpm_quote_qualifying_data(&AwsLc, &rd);
        assert_eq!(tq.nonce, hex::encode(qd));
        assert_eq!(
            tq.ak_modulus_sha256,
            hex::encode(AwsLc.sha256(&{
                use base64ct::Encoding;
                base64ct::Base64UrlUnpadded::decode_vec(&tpm.ak_jwk().unwrap().1).unwrap()
            }))
        );
    }
}

#[test]
fn azure_vtpm_quote_pcr_changed_works() {
    // PCR 10 is extended after the agent's first full read: its first quote does
    // not match the values it read, so it reads and quotes again.
    let p = pki();
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true).with_ak();
    tpm.state.lock().unwrap().extend_after_reads = Some(3);
    let source = quoting_source(&p, &tpm);
    let (_, m) = source.collect_measured(&[6; 64]).unwrap();
    let q = m.tpm_quote.unwrap();
    assert_eq!(q.pcrs[10], {
        let mut v = vec![10u8; 32];
        v[0] ^= 0xff;
        v
    });
    let s = tpm.state.lock().unwrap();
    assert_eq!(s.commands.iter().filter(|&&c| c == TPM_CC_QUOTE).count(), 2);
}

#[test]
fn azure_vtpm_quote_rejects() {
    let p = pki();
    // No attestation key at 0x81000003: the TPM's error is the agent's.
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true);
    let e = quoting_source(&p, &tpm)
        .collect_measured(&[6; 64])
        .unwrap_err();
    assert!(
        matches!(
            &e,
            EvidenceError::Tpm(TpmError::Response { command: "TPM2_Quote", code }) if code.is_handle()
        ),
        "{e:?}"
    );
    // Without with_tpm_quote there is no quote and no quote command.
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true).with_ak();
    let source = AzureVtpmSource::new(Box::new(tpm.clone()), Box::new(StaticVcek(certs(&p, true))))
        .with_poll(no_wait(3));
    let (_, m) = source.collect_measured(&[6; 64]).unwrap();
    assert!(m.is_empty());
    assert!(!tpm.state.lock().unwrap().commands.contains(&TPM_CC_QUOTE));
}

// ---- the TPM's event log beside the quote ----

/// A fake vTPM whose PCRs are what `events` replay to.
fn logged_tpm(p: &Pki, events: &[sigil_test_support::tcg_log::LogEvent]) -> FakeTpm {
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true).with_ak();
    tpm.state.lock().unwrap().pcrs = sigil_test_support::tcg_log::replay(events).to_vec();
    tpm
}

#[test]
fn azure_vtpm_event_log_in_bundle_works() {
    use sigil_test_support::tcg_log;
    let p = pki();
    let events = tcg_log::sample_boot();
    let log = tcg_log::log(&events);
    let tpm = logged_tpm(&p, &events);
    let attestor = Attestor::new(
        AgentKey::from_seed(&[9; 32]),
        Some(Arc::new(
            quoting_source(&p, &tpm).with_event_log(log.clone()),
        )),
        None,
        Vec::new(),
    );
    let nonce = [4u8; 32];
    let bundle = attestor.attest(nonce).unwrap();
    assert!(bundle.measured.tpm_quote.is_some());
    assert_eq!(bundle.measured.event_log.as_ref(), Some(&log));
    let bytes = bundle.to_bytes();
    for outcome in both_backends(
        &p,
        &bytes,
        &attestor.public_key(),
        &nonce,
        &Policy::default(),
    ) {
        assert!(outcome.accepted(), "{:?}", outcome.reasons);
        let claims = serde_json::to_value(outcome.claims.unwrap()).unwrap();
        let mb = &claims["measured_boot"];
        assert_eq!(mb["verified"], true, "{mb}");
        assert_eq!(mb["pcr_events"].as_array().unwrap().len(), events.len());
    }
}

#[test]
fn azure_vtpm_event_log_not_matching_is_left_out_works() {
    use sigil_test_support::tcg_log;
    let p = pki();
    // The fake vTPM's PCRs are [i; 32], which no log replays to.
    let tpm = FakeTpm::new(Arc::clone(&p.vcek_key), true).with_ak();
    let source = quoting_source(&p, &tpm).with_event_log(tcg_log::log(&tcg_log::sample_boot()));
    let (_, m) = source.collect_measured(&[6; 64]).unwrap();
    assert!(m.tpm_quote.is_some());
    assert_eq!(m.event_log, None);
}

#[test]
fn azure_vtpm_event_log_file_works() {
    use sigil_test_support::tcg_log;
    let p = pki();
    let events = tcg_log::sample_boot();
    let tpm = logged_tpm(&p, &events);
    let dir = tempfile::tempdir().unwrap();
    // Absent: no log, never an invented one.
    let absent = quoting_source(&p, &tpm).with_event_log_file(&dir.path().join("none"));
    assert_eq!(absent.collect_measured(&[6; 64]).unwrap().1.event_log, None);
    // Not a TCG log: not carried.
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"not a log").unwrap();
    let bad = quoting_source(&p, &tpm).with_event_log_file(&garbage);
    assert_eq!(bad.collect_measured(&[6; 64]).unwrap().1.event_log, None);
    // The firmware's log: carried.
    let path = dir.path().join("binary_bios_measurements");
    std::fs::write(&path, tcg_log::log(&events)).unwrap();
    let good = quoting_source(&p, &tpm).with_event_log_file(&path);
    assert_eq!(
        good.collect_measured(&[6; 64]).unwrap().1.event_log,
        Some(tcg_log::log(&events))
    );
}

mod tdx;
