//! The simulator (feature `simulator`): evidence for machines without a TEE.
//!
//! Its report is signed by an ed25519 key made when the source is created and
//! carried inside the report; it is marked simulated in every encoding
//! ([`attestation_verifier::evidence::simulated`]) and verifiers refuse it unless
//! told to allow simulated evidence. Creating the source and every report log a
//! warning.

use attestation_verifier::bundle::CpuEvidence;
use attestation_verifier::evidence::simulated::{SimulatedBody, SimulatedKey, SimulatedReport};
use attestation_verifier::receipt::TeeKind;
use ed25519_dalek::{Signer, SigningKey};

use crate::evidence::{EvidenceError, EvidenceSource};

/// The simulated evidence source.
pub struct SimulatedEvidenceSource {
    key: SigningKey,
    measurement: [u8; 48],
}

impl SimulatedEvidenceSource {
    /// A simulator with a fresh key. Its "measurement" stands in for a launch
    /// measurement: the SHA-384 of the running agent executable, which anyone with
    /// the same build computes (`sigil-verify measure simulated --agent FILE`), so a
    /// development policy can pin this agent build (`[simulated] measurements`).
    pub fn new() -> Result<Self, EvidenceError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| EvidenceError::Rng(e.to_string()))?;
        let measurement = std::env::current_exe()
            .and_then(std::fs::File::open)
            .and_then(|f| {
                attestation_verifier::evidence::simulated::executable_measurement(
                    std::io::BufReader::new(f),
                )
            })
            .map_err(|e| EvidenceError::Unavailable {
                backend: "simulated".into(),
                reason: format!("reading the agent executable to measure it: {e}"),
            })?;
        tracing::warn!(
            "SIMULATED evidence source: this agent has no TEE; its evidence proves nothing and verifiers reject it unless simulated evidence is allowed"
        );
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
            measurement,
        })
    }
}

impl EvidenceSource for SimulatedEvidenceSource {
    fn tee(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn name(&self) -> &'static str {
        "simulated"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<CpuEvidence, EvidenceError> {
        tracing::warn!("producing SIMULATED evidence (not from a TEE)");
        let body = SimulatedBody::new(
            *report_data,
            self.measurement,
            SimulatedKey::Ed25519(self.key.verifying_key().to_bytes()),
        );
        let signature = self.key.sign(&body.signed_message()).to_bytes().to_vec();
        Ok(CpuEvidence::Simulated {
            report: SimulatedReport { body, signature }.to_bytes(),
        })
    }
}
