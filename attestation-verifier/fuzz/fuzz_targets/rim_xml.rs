//! A RIM (SWID XML): the XML tokenizer and tree, the RIM parser, then the whole GPU
//! verification of a real report with the fuzzed RIM (signature, chain, measurements).
#![no_main]

use attestation_verifier::evidence::rim::parse_rim;
use attestation_verifier::evidence::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = xml::parse(text);
    }
    if parse_rim(data).is_err() {
        return;
    }
    let rims = [data.to_vec()];
    attestation_verifier_fuzz::check_real_gpu(None, None, &rims, &[]);
});
