//! Measured boot through the whole bundle pipeline (`check_bundle`): a synthetic TDX
//! quote signed by a test Intel PKI whose RTMRs are what a real firmware event log
//! (from the shared vectors) and the agent's own RTMR3 events replay to; the `[tdx]`
//! event, agent and configuration rules; every way the pieces can disagree. Both
//! crypto backends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // tests

mod snp_support;
mod tdx_support;

use attestation_verifier::binding::{Binding, gpu_evidence_digest};
use attestation_verifier::bundle::{
    AgentEvent, AgentEventKind, CpuEvidence, EvidenceBundle, MeasuredBoot,
};
use attestation_verifier::crypto::{AwsLc, Crypto, RustCrypto};
use attestation_verifier::eventlog::parse_event_log;
use attestation_verifier::policy::Policy;
use attestation_verifier::time::UnixTime;
use attestation_verifier::verify::measured::extend;
use attestation_verifier::verify::nvgpu::NvGpuVerifier;
use attestation_verifier::verify::snp::SnpVerifier;
use attestation_verifier::verify::tdx::TdxVerifier;
use attestation_verifier::{EvidenceClaims, Outcome, ReceiptVerifier, check_bundle};
use sigil_test_support::tdx::Spec;
use tdx_support::{Anchor, fixture};

/// 2029-06-15: inside the synthetic collateral's window.
const NOW: UnixTime = UnixTime(1_876_176_000);
const AGENT_KEY: [u8; 32] = [0x0A; 32];
const SEALING_KEY: [u8; 32] = [0x5E; 32];
const NONCE: [u8; 32] = [0x17; 32];
const BINARY: [u8; 48] = [0xA1; 48];
const CONFIG: [u8; 48] = [0xC1; 48];

fn ccel() -> Vec<u8> {
    sigil_test_support::vectors::vector("measured/tdx-eventlog/trustee-ccel-ovmf-direct/ccel.bin")
}

fn agent_events() -> Vec<AgentEvent> {
    vec![
        AgentEvent {
            kind: AgentEventKind::Binary,
            digest: BINARY,
        },
        AgentEvent {
            kind: AgentEventKind::Config,
            digest: CONFIG,
        },
    ]
}

/// The registers of a TD whose firmware wrote `log` and whose agent extended `agent`.
fn registers(log: Option<&[u8]>, agent: &[AgentEvent]) -> [[u8; 48]; 4] {
    let mut r = log.map_or([[0; 48]; 4], |l| parse_event_log(l).unwrap().replay());
    for e in agent {
        r[3] = extend(&r[3], &e.digest);
    }
    r
}

/// A bundle whose quote has `rtmr` and binds the bundle, carrying `measured`; and the
/// verifier over the test PKI it was signed with.
fn bundle_with<C: Crypto + Clone>(
    crypto: C,
    rtmr: [[u8; 48]; 4],
    measured: MeasuredBoot,
) -> (Vec<u8>, ReceiptVerifier<C>) {
    let keys = Binding::V2 {
        agent_key: &AGENT_KEY,
        sealing_key: &SEALING_KEY,
    };
    let report_data = keys.report_data(&RustCrypto, &gpu_evidence_digest(&RustCrypto, &[]), &NONCE);
    let f = fixture(Spec {
        rtmr,
        report_data,
        ..Spec::default()
    });
    let bundle = EvidenceBundle::new(
        AGENT_KEY,
        NONCE,
        CpuEvidence::Tdx {
            quote: f.quote.clone(),
            collateral_json: Some(f.collateral.to_json().unwrap().into_bytes()),
        },
        vec![],
    )
    .with_sealing_key(SEALING_KEY)
    .with_measured(measured);
    let verifier = ReceiptVerifier::with_verifiers(
        SnpVerifier::new(crypto.clone()).unwrap(),
        TdxVerifier::with_trust_anchor(crypto.clone(), f.pki.anchor()),
        NvGpuVerifier::new(crypto).unwrap(),
    );
    (bundle.to_bytes(), verifier)
}

/// `check_bundle` through both backends, which must agree.
fn check(rtmr: [[u8; 48]; 4], measured: &MeasuredBoot, policy: &Policy) -> Outcome<EvidenceClaims> {
    let (bytes, mut v) = bundle_with(AwsLc, rtmr, measured.clone());
    let a = check_bundle(&mut v, &bytes, None, None, policy, NOW);
    let (bytes, mut v) = bundle_with(RustCrypto, rtmr, measured.clone());
    let b = check_bundle(&mut v, &bytes, None, None, policy, NOW);
    // Each run signs with a fresh test PKI, so the bundles (and digests) differ;
    // the verdicts must not.
    assert_eq!(a.reasons, b.reasons, "the backends disagree");
    assert_eq!(
        a.claims.as_ref().and_then(|c| c.measured_boot.clone()),
        b.claims.as_ref().and_then(|c| c.measured_boot.clone()),
    );
    a
}

fn measured(log: Option<Vec<u8>>, agent: Vec<AgentEvent>) -> MeasuredBoot {
    MeasuredBoot {
        event_log: log,
        agent_events: agent,
        tpm_quote: None,
    }
}

fn policy(toml: &str) -> Policy {
    Policy::from_toml(toml).unwrap()
}

fn has_reason(out: &Outcome<EvidenceClaims>, needle: &str) -> bool {
    out.reasons.iter().any(|r| r.contains(needle))
}

#[test]
fn real_event_log_and_agent_events_verify_works() {
    let log = ccel();
    let m = measured(Some(log.clone()), agent_events());
    let out = check(
        registers(Some(&log), &agent_events()),
        &m,
        &Policy::default(),
    );
    assert!(out.accepted(), "{:?}", out.reasons);
    let c = out.claims.unwrap();
    assert_eq!(c.bundle_version, 5);
    let mb = c.measured_boot.unwrap();
    assert!(mb.verified);
    assert_eq!(mb.covered, ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]);
    assert_eq!(mb.log_format, Some("ccel"));
    assert_eq!(mb.events.len(), parse_event_log(&log).unwrap().events.len());
    assert_eq!(
        mb.agent_digest.as_deref(),
        Some(hex::encode(BINARY).as_str())
    );
    assert_eq!(
        mb.config_digest.as_deref(),
        Some(hex::encode(CONFIG).as_str())
    );
    assert_eq!(mb.agent_events.len(), 2);
}

#[test]
fn event_agent_and_config_rules_work() {
    let log = ccel();
    let parsed = parse_event_log(&log).unwrap();
    // The first event extending RTMR1 (the boot loader or kernel, on this log).
    let kernel = parsed.events.iter().find(|e| e.rtmr == Some(1)).unwrap();
    let m = measured(Some(log.clone()), agent_events());
    let rtmr = registers(Some(&log), &agent_events());
    let pinned = format!(
        "[tdx]\nevents = [{{ rtmr = 1, digest = \"{}\" }}]\nagent_digests = [\"{}\"]\nconfig_digests = [\"{}\"]",
        hex::encode(kernel.sha384),
        hex::encode(BINARY),
        hex::encode(CONFIG)
    );
    let out = check(rtmr, &m, &policy(&pinned));
    assert!(out.accepted(), "{:?}", out.reasons);

    // The same digest pinned in another register is not held.
    let other_register = pinned.replace("rtmr = 1", "rtmr = 2");
    let out = check(rtmr, &m, &policy(&other_register));
    assert!(has_reason(&out, "tdx.events"), "{:?}", out.reasons);
    assert!(
        has_reason(&out, "no event extends RTMR2"),
        "{:?}",
        out.reasons
    );

    // Another agent build or configuration is refused by name.
    let other_agent = pinned.replace(&hex::encode(BINARY), &hex::encode([0xA2; 48]));
    let out = check(rtmr, &m, &policy(&other_agent));
    assert!(has_reason(&out, "tdx.agent_digests"), "{:?}", out.reasons);
    let other_config = pinned.replace(&hex::encode(CONFIG), &hex::encode([0xC2; 48]));
    let out = check(rtmr, &m, &policy(&other_config));
    assert!(has_reason(&out, "tdx.config_digests"), "{:?}", out.reasons);
    assert!(!has_reason(&out, "tdx.agent_digests"), "{:?}", out.reasons);
}

#[test]
fn rules_without_measured_boot_reject() {
    // A bundle without measured boot (version 5, nothing in it): every rule fails,
    // saying what is missing.
    let pinned = format!(
        "[tdx]\nevents = [{{ rtmr = 1, digest = \"{}\" }}]\nagent_digests = [\"{}\"]",
        hex::encode([0x11; 48]),
        hex::encode(BINARY)
    );
    let out = check([[0; 48]; 4], &MeasuredBoot::default(), &policy(&pinned));
    assert!(
        has_reason(&out, "no verified event log"),
        "{:?}",
        out.reasons
    );
    assert!(
        has_reason(&out, "carries no measurement of the agent executable"),
        "{:?}",
        out.reasons
    );
    // Agent events without a firmware log satisfy the agent rule, not the event rule.
    let m = measured(None, agent_events());
    let out = check(registers(None, &agent_events()), &m, &policy(&pinned));
    assert!(has_reason(&out, "tdx.events"), "{:?}", out.reasons);
    assert!(!has_reason(&out, "tdx.agent_digests"), "{:?}", out.reasons);
    let mb = out.claims.unwrap().measured_boot.unwrap();
    assert!(mb.verified);
    assert_eq!(mb.covered, ["rtmr3"]);
}

#[test]
fn log_or_agent_events_not_matching_the_quote_reject() {
    let log = ccel();
    let rtmr = registers(Some(&log), &agent_events());
    // The agent claims another binary than the one it extended.
    let mut claimed = agent_events();
    claimed[0].digest = [0xA2; 48];
    let out = check(
        rtmr,
        &measured(Some(log.clone()), claimed),
        &Policy::default(),
    );
    assert!(has_reason(&out, "RTMR3 replays to"), "{:?}", out.reasons);
    assert!(!out.accepted());
    let mb = out.claims.unwrap().measured_boot.unwrap();
    assert!(!mb.verified, "claims say the replay did not verify");
    assert!(!mb.events.is_empty(), "the log's events are still shown");

    // The agent's events left out of the bundle.
    let out = check(
        rtmr,
        &measured(Some(log.clone()), vec![]),
        &Policy::default(),
    );
    assert!(has_reason(&out, "RTMR3 replays to"), "{:?}", out.reasons);

    // A log event changed: the first RTMR1 digest flipped in the CCEL bytes.
    let parsed = parse_event_log(&log).unwrap();
    let kernel = parsed.events.iter().find(|e| e.rtmr == Some(1)).unwrap();
    let at = log
        .windows(48)
        .position(|w| w == kernel.sha384.as_slice())
        .unwrap();
    let mut tampered = log.clone();
    tampered[at] ^= 1;
    let out = check(
        rtmr,
        &measured(Some(tampered), agent_events()),
        &Policy::default(),
    );
    assert!(has_reason(&out, "RTMR1 replays to"), "{:?}", out.reasons);

    // A log that does not parse.
    let out = check(
        rtmr,
        &measured(Some(b"not an event log".to_vec()), agent_events()),
        &Policy::default(),
    );
    assert!(has_reason(&out, "event log:"), "{:?}", out.reasons);
}

#[test]
fn event_log_with_sev_snp_evidence_rejects() {
    let p = snp_support::test_platform();
    let keys = Binding::V2 {
        agent_key: &AGENT_KEY,
        sealing_key: &SEALING_KEY,
    };
    let rd = keys.report_data(&RustCrypto, &gpu_evidence_digest(&RustCrypto, &[]), &NONCE);
    let bundle = EvidenceBundle::new(
        AGENT_KEY,
        NONCE,
        CpuEvidence::SevSnp {
            report: snp_support::snp_report(&p.vcek_key, 3, 0x30000, &rd),
            vek: p.vcek.clone(),
            intermediate: None,
            ark: None,
        },
        vec![],
    )
    .with_sealing_key(SEALING_KEY)
    .with_measured(measured(Some(ccel()), vec![]));
    let mut v = ReceiptVerifier::with_verifiers(
        SnpVerifier::with_trust_store(RustCrypto, p.trust.clone()),
        TdxVerifier::new(RustCrypto).unwrap(),
        NvGpuVerifier::new(RustCrypto).unwrap(),
    );
    let out = check_bundle(
        &mut v,
        &bundle.to_bytes(),
        None,
        None,
        &Policy::default(),
        NOW,
    );
    assert!(
        has_reason(&out, "no RTMRs to replay it against"),
        "{:?}",
        out.reasons
    );
}

/// A bare quote (`check_tdx`, `sigil-verify tdx`) carries no measured boot: a policy with
/// event rules refuses it, saying so; the same quote with its event log beside it
/// (`check_tdx_measured`, `sigil-verify eventlog --quote --collateral`) is accepted.
#[test]
fn bare_quote_under_event_rules_rejects() {
    use attestation_verifier::{check_tdx, check_tdx_measured};
    let log = ccel();
    let parsed = parse_event_log(&log).unwrap();
    let kernel = parsed.events.iter().find(|e| e.rtmr == Some(1)).unwrap();
    let policy = policy(&format!(
        "[tdx]\nevents = [{{ rtmr = 1, digest = \"{}\" }}]",
        hex::encode(kernel.sha384)
    ));
    let f = fixture(Spec {
        rtmr: registers(Some(&log), &[]),
        ..Spec::default()
    });
    let mut v = TdxVerifier::with_trust_anchor(RustCrypto, f.pki.anchor());
    let bare = check_tdx(&mut v, &f.quote, &f.collateral, &policy, NOW);
    assert!(
        bare.reasons
            .iter()
            .any(|r| r.contains("no verified event log")),
        "{:?}",
        bare.reasons
    );
    let with_log = check_tdx_measured(
        &mut v,
        &f.quote,
        &f.collateral,
        &measured(Some(log.clone()), vec![]),
        &policy,
        NOW,
    );
    assert!(with_log.accepted(), "{:?}", with_log.reasons);
    // A log of another boot beside the quote: the replay names the register.
    let other = check_tdx_measured(
        &mut v,
        &f.quote,
        &f.collateral,
        &measured(Some(log), agent_events()),
        &policy,
        NOW,
    );
    assert!(
        other.reasons.iter().any(|r| r.contains("RTMR3 replays to")),
        "{:?}",
        other.reasons
    );
}
