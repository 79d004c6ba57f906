//! A TDX event log (CCEL or dstack JSON): the parser and the replay, then the measured-boot
//! verification against the registers of a real quote (the go-tdx-guest COS boot, whose log
//! replays to them), with the input's last bytes as agent events.
#![no_main]

use attestation_verifier::bundle::{AgentEvent, AgentEventKind, MeasuredBoot};
use attestation_verifier::eventlog::parse_event_log;
use attestation_verifier::verify::measured::verify_measured_tdx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = parse_event_log(data) {
        let _ = log.replay();
        let _ = log.events.iter().map(|e| e.description()).count();
    }
    let rtmrs = attestation_verifier_fuzz::quote_rtmrs();
    let agent_events = data
        .rchunks_exact(48)
        .take(2)
        .map(|c| AgentEvent {
            kind: AgentEventKind::Binary,
            digest: c.try_into().unwrap_or([0; 48]),
        })
        .collect();
    let m = MeasuredBoot {
        event_log: Some(data.to_vec()),
        agent_events,
        tpm_quote: None,
    };
    let _ = verify_measured_tdx(&m, &rtmrs);
});
