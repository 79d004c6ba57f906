//! Sequences of the market pallet's calls with fuzzed arguments through the runtime, checking
//! after each that a refused call changed nothing, the pallet's invariants and total issuance
//! (`sigil_runtime::fuzzing`). With `SIGIL_FUZZ_SEEDS=<dir>` set, the hand-built sequences that
//! settle a job of each tier are first written to `<dir>` (the corpus directory, so that this
//! run reads them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        if let Some(dir) = std::env::var_os("SIGIL_FUZZ_SEEDS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("seed directory");
            for (i, seed) in sigil_runtime::fuzzing::seeds::encoded().iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).expect("seed file");
            }
        }
    },
    |data: &[u8]| sigil_runtime::fuzzing::run(data)
);
