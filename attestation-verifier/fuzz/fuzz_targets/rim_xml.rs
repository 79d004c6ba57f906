//! A RIM (SWID XML): the XML tokenizer and tree, the RIM parser, then the whole GPU
//! verification of a real report with the fuzzed RIM (signature, chain, measurements).
#![no_main]

use attestation_verifier::evidence::rim::parse_rim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `parse_rim` hands every UTF-8 input (less a leading byte-order mark) to the XML
    // tokenizer and tree builder, so they are fuzzed through it: parsing the text a second
    // time here, before it, was a third of each unit's time and reached no other code.
    let Ok(rim) = parse_rim(data) else {
        return;
    };
    let rims = [data.to_vec()];
    // The vectors' RIMs describe other drivers than the report's: the report is refused, but a
    // RIM whose signature and chain verified must still say what a genuine RIM says.
    if attestation_verifier_fuzz::check_real_gpu(None, None, &rims, &[]).rim_verified {
        attestation_verifier_fuzz::rim_verified(&rim);
    }
});
