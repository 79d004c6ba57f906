//! A TPM's TCG event log (the vTPM log of an Azure confidential VM): the parser, the PCR
//! replay and every event's description; a log that parses replays to its own PCRs (the
//! check against them must pass) and is refused against other values without a panic.
#![no_main]

use attestation_verifier::eventlog::tpm::parse_tpm_log;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(log) = parse_tpm_log(data) else {
        return;
    };
    let pcrs = log.replay();
    let _ = log.events.iter().map(|e| e.description()).count();
    let own: Vec<(u8, [u8; 32])> = (0u8..).zip(pcrs).collect();
    assert_eq!(log.check_against(&own), Ok(log.touched()));
    let zero: Vec<(u8, [u8; 32])> = (0u8..24).map(|i| (i, [0; 32])).collect();
    let _ = log.check_against(&zero);
    let _ = log.check_against(&[]);
});
