//! Evidence bundles built by `arbitrary` (every CPU evidence kind, GPU reports, collateral,
//! each bundle version): encoding then decoding gives the same bundle back, and the whole
//! bundle verification runs on the encoding.
#![no_main]

use arbitrary::Arbitrary;
use attestation_verifier::bundle::{
    AgentEvent, AgentEventKind, CpuCollateral, CpuEvidence, EvidenceBundle, GpuCollateral,
    GpuEvidence, MeasuredBoot, TpmQuote,
};
use attestation_verifier::check_bundle;
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::policy::Policy;
use attestation_verifier::receipt::TeeKind;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::receipt::ReceiptVerifier;
use libfuzzer_sys::fuzz_target;
use parity_scale_codec::{DecodeAll, Encode};
use std::sync::Mutex;

#[derive(Arbitrary, Debug)]
enum Cpu {
    SevSnp {
        report: Vec<u8>,
        vek: Vec<u8>,
        intermediate: Option<Vec<u8>>,
        ark: Option<Vec<u8>>,
    },
    Tdx {
        quote: Vec<u8>,
        collateral_json: Option<Vec<u8>>,
    },
    Simulated {
        report: Vec<u8>,
    },
    AzureSnpVtpm {
        hcl_report: Vec<u8>,
        vek: Vec<u8>,
        intermediate: Option<Vec<u8>>,
        ark: Option<Vec<u8>>,
    },
    AzureTdxVtpm {
        hcl_report: Vec<u8>,
        td_quote: Vec<u8>,
        collateral_json: Option<Vec<u8>>,
    },
}

#[derive(Arbitrary, Debug)]
struct Gpu {
    report: Vec<u8>,
    cert_chain_pem: String,
    nonce: [u8; 32],
    uuid: String,
}

#[derive(Arbitrary, Debug)]
struct Bundle {
    magic: [u8; 4],
    sigil_magic: bool,
    version: u8,
    tee: u8,
    agent_key: [u8; 32],
    nonce: [u8; 32],
    cpu: Cpu,
    gpus: Vec<Gpu>,
    rims: Vec<Vec<u8>>,
    ocsp: Vec<Vec<u8>>,
    snp_crl: Option<Vec<u8>>,
    sealing_key: Option<[u8; 32]>,
    event_log: Option<Vec<u8>>,
    agent_events: Vec<(bool, [u8; 48])>,
    tpm_quote: Option<(Vec<u8>, Vec<u8>, Vec<Vec<u8>>)>,
}

static VERIFIER: Mutex<Option<ReceiptVerifier<RustCrypto>>> = Mutex::new(None);

fuzz_target!(|b: Bundle| {
    // Versions 1..=5 are the readable ones; the fields a version lacks stay empty.
    let version = 1 + b.version % 5;
    let cpu = match b.cpu {
        Cpu::SevSnp {
            report,
            vek,
            intermediate,
            ark,
        } => CpuEvidence::SevSnp {
            report,
            vek,
            intermediate,
            ark,
        },
        Cpu::Tdx {
            quote,
            collateral_json,
        } => CpuEvidence::Tdx {
            quote,
            collateral_json,
        },
        Cpu::Simulated { report } => CpuEvidence::Simulated { report },
        Cpu::AzureSnpVtpm {
            hcl_report,
            vek,
            intermediate,
            ark,
        } => CpuEvidence::AzureSnpVtpm {
            hcl_report,
            vek,
            intermediate,
            ark,
        },
        Cpu::AzureTdxVtpm {
            hcl_report,
            td_quote,
            collateral_json,
        } => CpuEvidence::AzureTdxVtpm {
            hcl_report,
            td_quote,
            collateral_json,
        },
    };
    let tee = match b.tee % 4 {
        0 => TeeKind::None,
        1 => TeeKind::SevSnp,
        2 => TeeKind::Tdx,
        _ => TeeKind::Simulated,
    };
    let bundle = EvidenceBundle {
        magic: if b.sigil_magic { *b"SGEB" } else { b.magic },
        version,
        tee,
        agent_key: b.agent_key,
        nonce: b.nonce,
        cpu,
        gpus: b
            .gpus
            .into_iter()
            .map(|g| GpuEvidence {
                report: g.report,
                cert_chain_pem: g.cert_chain_pem,
                nonce: g.nonce,
                uuid: g.uuid,
            })
            .collect(),
        gpu_collateral: if version >= 2 {
            GpuCollateral {
                rims: b.rims,
                ocsp: b.ocsp,
            }
        } else {
            GpuCollateral::default()
        },
        cpu_collateral: if version >= 3 {
            CpuCollateral { snp_crl: b.snp_crl }
        } else {
            CpuCollateral::default()
        },
        sealing_key: if version >= 4 { b.sealing_key } else { None },
        measured: if version >= 5 {
            MeasuredBoot {
                event_log: b.event_log,
                agent_events: b
                    .agent_events
                    .into_iter()
                    .map(|(binary, digest)| AgentEvent {
                        kind: if binary {
                            AgentEventKind::Binary
                        } else {
                            AgentEventKind::Config
                        },
                        digest,
                    })
                    .collect(),
                tpm_quote: b.tpm_quote.map(|(attest, signature, pcrs)| TpmQuote {
                    attest,
                    signature,
                    pcrs,
                }),
            }
        } else {
            MeasuredBoot::default()
        },
    };
    let bytes = bundle.encode();
    let back = EvidenceBundle::decode_all(&mut &bytes[..]).expect("an encoded bundle decodes");
    assert_eq!(back, bundle, "SCALE round trip");
    let outcome = attestation_verifier_fuzz::long_lived(
        &VERIFIER,
        || ReceiptVerifier::new(RustCrypto).expect("pinned roots"),
        |verifier| {
            check_bundle(
                verifier,
                &bytes,
                Some(&bundle.agent_key),
                Some(&bundle.nonce),
                &Policy::default(),
                UnixTime(1_750_000_000),
            )
        },
    );
    // The forgery oracle: the genuine evidence a seed carries binds the vectors' REPORT_DATA,
    // never a bundle's key and nonce, other evidence is signed by no vendor key, and the
    // default policy refuses simulated evidence: an accepted bundle is a forgery.
    assert!(!outcome.accepted(), "a bundle was accepted: {outcome:?}");
});
