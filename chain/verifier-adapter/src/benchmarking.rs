//! Evidence the runtime's verifier accepts, for the market pallet's benchmarks and the tests.

use alloc::vec::Vec;
use attestation_verifier::binding;
use attestation_verifier::bundle::{CpuEvidence, EvidenceBundle};
use attestation_verifier::crypto::RustCrypto;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use ed25519_dalek::{Signer, SigningKey};
use pallet_sigil_market::Ed25519Key;
#[cfg(feature = "runtime-benchmarks")]
use {
    attestation_verifier::policy::{HexBytes, genesis},
    pallet_sigil_market::{EvidenceCost, attestation::BenchmarkEvidence},
};

/// The simulator key of benchmark evidence (fixed: benchmarks need no secrecy).
const SIMULATOR_SEED: [u8; 32] = [0x5e; 32];

/// A simulated evidence bundle binding `key` and `nonce`, as the agent's simulator makes it.
pub fn simulated_bundle(key: Ed25519Key, nonce: [u8; 32], measurement: [u8; 48]) -> Vec<u8> {
    let crypto = RustCrypto;
    let no_gpus = binding::gpu_evidence_digest(&crypto, &[]);
    let report_data = binding::report_data(&crypto, &key, &no_gpus, &nonce);
    let simulator = SigningKey::from_bytes(&SIMULATOR_SEED);
    let body = SimulatedBody::new(
        report_data,
        measurement,
        SimulatedKey::Ed25519(simulator.verifying_key().to_bytes()),
    );
    let signature = simulator.sign(&body.signed_message()).to_bytes().to_vec();
    let report = SimulatedReport { body, signature }.to_bytes();
    EvidenceBundle::new(key, nonce, CpuEvidence::Simulated { report }, Vec::new()).to_bytes()
}

/// The market pallet's benchmark helper: simulated evidence under the genesis policy
/// `sigil.simulated.v1`.
#[cfg(feature = "runtime-benchmarks")]
pub struct SimulatedEvidence;

///
/// The evidence of the `verify_evidence` benchmark is genuine hardware evidence, which the
/// runtime cannot carry: the native benchmark driver supplies a source of it with
/// [`set_evidence_source`] (std builds only). Without one the benchmark stops.
#[cfg(feature = "runtime-benchmarks")]
impl pallet_sigil_market::attestation::BenchmarkHelper for SimulatedEvidence {
    fn attestation(key: Ed25519Key, nonce: [u8; 32], _now_ms: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        (
            simulated_bundle(key, nonce, [0x11; 48]),
            Vec::new(),
            genesis::named(genesis::SIMULATED_V1)
                .map(|p| p.canonical_bytes())
                .unwrap_or_default(),
        )
    }

    fn policy_document(len: u32) -> Vec<u8> {
        largest_policy(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn evidence_bounds() -> EvidenceCost {
        let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        EvidenceCost {
            gpus: cap(attestation_verifier::bundle::MAX_GPUS),
            rims: cap(attestation_verifier::bundle::MAX_RIMS),
            ocsp: cap(attestation_verifier::bundle::MAX_OCSP),
            bytes: 0,
        }
    }

    fn evidence(cost: EvidenceCost) -> Option<BenchmarkEvidence> {
        #[cfg(feature = "std")]
        {
            SOURCE
                .lock()
                .ok()
                .and_then(|source| source.as_ref().and_then(|make| make(cost)))
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = cost;
            None
        }
    }
}

/// The largest policy document of at most `len` bytes (at least one pin of each kind, about
/// 180 bytes): the genesis confidential-VM policy pinning as many distinct SEV-SNP
/// measurements and TDX MRTDs as fit (so it is never a genesis policy itself), so that decoding and appraising it cost what a policy of that size costs. The
/// `register_policy` benchmark registers these; `sigil-bench` verifies evidence under the 16 KiB
/// one.
#[cfg(feature = "runtime-benchmarks")]
pub fn largest_policy(len: usize) -> Vec<u8> {
    let mut p = genesis::named(genesis::CONFIDENTIAL_VM_V1).unwrap_or_default();
    let entry = |tag: u8, i: usize| {
        let mut m = u64::try_from(i).unwrap_or(u64::MAX).to_be_bytes().to_vec();
        m.resize(47, 0);
        m.push(tag);
        HexBytes(m)
    };
    for i in 0..attestation_verifier::policy::MAX_LIST {
        p.snp.measurements.push(entry(1, i));
        p.tdx.mrtds.push(entry(2, i));
        if i > 0 && p.canonical_bytes().len() > len {
            p.snp.measurements.pop();
            p.tdx.mrtds.pop();
            break;
        }
    }
    p.canonical_bytes()
}

/// Makes the evidence of the `verify_evidence` benchmark for given counts.
#[cfg(all(feature = "runtime-benchmarks", feature = "std"))]
pub type EvidenceSource = Box<dyn Fn(EvidenceCost) -> Option<BenchmarkEvidence> + Send>;

/// The source set by the native benchmark driver.
#[cfg(all(feature = "runtime-benchmarks", feature = "std"))]
static SOURCE: std::sync::Mutex<Option<EvidenceSource>> = std::sync::Mutex::new(None);

/// Sets (or clears) what makes the evidence the `verify_evidence` benchmark verifies in this
/// process.
#[cfg(all(feature = "runtime-benchmarks", feature = "std"))]
pub fn set_evidence_source(source: Option<EvidenceSource>) {
    if let Ok(mut slot) = SOURCE.lock() {
        *slot = source;
    }
}
