//! Secrets of confidential jobs: checked at submission, kept sealed in memory, opened only
//! when the job's private directory is ready (see `docs/confidential-jobs.md`).
//!
//! A spec names each secret by a hiding commitment; the values arrive sealed to this
//! agent's sealing key beside the spec. At submission every value is opened once and
//! checked against its commitment, so a buyer learns at once that a secret is missing,
//! sealed to another key or not the committed value; the plaintext is then dropped and the
//! ciphertexts wait in memory. At the start the ciphertexts are opened again into
//! [`OpenedSecrets`], written to the job's tmpfs and its environment, and forgotten. They
//! are never written to the store: after a restart of the agent (a new sealing key, unless
//! the key is configured from a file) the job fails with a reason that says so.

use std::path::PathBuf;

use sigil_proto::v1;
use sigil_sealing::{Purpose, Sealed};
use zeroize::Zeroizing;

use crate::job::JobId;
use crate::workload::OpenedSecrets;
use crate::workload::spec::{JobPlan, SecretKind, SecretRef};

use super::{AgentError, Engine, lock};

fn purpose<'a>(job_id: &'a JobId, s: &'a SecretRef) -> Purpose<'a> {
    match s.kind {
        SecretKind::InputFile => Purpose::InputFile {
            job_id,
            path: &s.name,
        },
        SecretKind::Env => Purpose::Env {
            job_id,
            name: &s.name,
        },
    }
}

fn sealed_of(w: &v1::SealedSecret) -> Option<Sealed> {
    Some(Sealed {
        enc: <[u8; 32]>::try_from(w.enc.as_slice()).ok()?,
        ciphertext: w.ciphertext.clone(),
    })
}

impl Engine {
    /// Checks the sealed values of a new job against its spec: one per secret the spec
    /// names (no other), each opening under this agent's sealing key to its commitment.
    /// Returns them in the spec's order.
    pub(super) fn check_sealed(
        &self,
        plan: &JobPlan,
        mut sealed: Vec<v1::SealedSecret>,
    ) -> Result<Vec<v1::SealedSecret>, AgentError> {
        if plan.secrets.is_empty() {
            return match sealed.first() {
                None => Ok(Vec::new()),
                Some(s) => Err(AgentError::SealedSecret {
                    name: crate::workload::spec::clip(&s.name),
                    reason: "the spec names no secrets".into(),
                }),
            };
        }
        if self.isolation.is_none() && !self.cfg.jobs.allow_secrets_on_disk {
            return Err(AgentError::SecretsUnsupported(
                "job directories are on disk (isolation.mode = \"off\"), not on a private tmpfs",
            ));
        }
        let mut ordered = Vec::with_capacity(plan.secrets.len());
        for s in &plan.secrets {
            let wire = s.kind.wire() as i32;
            let at = sealed
                .iter()
                .position(|w| w.kind == wire && w.name == s.name)
                .ok_or_else(|| AgentError::SealedSecret {
                    name: crate::workload::spec::clip(&s.name),
                    reason: "named by the spec, not sent sealed".into(),
                })?;
            let w = sealed.swap_remove(at);
            let bad = |reason: String| AgentError::SealedSecret {
                name: crate::workload::spec::clip(&s.name),
                reason,
            };
            let value = sealed_of(&w).ok_or_else(|| bad("enc must be 32 bytes".into()))?;
            self.attestor
                .sealing()
                .open_secret(&value, &purpose(&plan.job_id, s), &s.commitment)
                .map_err(|e| bad(e.to_string()))?;
            ordered.push(w);
        }
        if let Some(extra) = sealed.first() {
            return Err(AgentError::SealedSecret {
                name: crate::workload::spec::clip(&extra.name),
                reason: "not named by the spec (or sent twice)".into(),
            });
        }
        Ok(ordered)
    }

    /// Keeps a job's checked sealed values until it starts.
    pub(super) fn hold_sealed(&self, job_id: JobId, sealed: Vec<v1::SealedSecret>) {
        if !sealed.is_empty() {
            lock(&self.sealed).insert(job_id, sealed);
        }
    }

    /// Forgets a job's sealed values (it ended or was refused).
    pub(super) fn drop_sealed(&self, job_id: &JobId) {
        lock(&self.sealed).remove(job_id);
    }

    /// Opens a starting job's secrets. The sealed values stay held until the job's run ends
    /// (`run_job`), so nothing is opened twice from the store; an error fails the job.
    pub(super) fn open_sealed(&self, plan: &JobPlan) -> Result<OpenedSecrets, AgentError> {
        let Some(first) = plan.secrets.first() else {
            return Ok(OpenedSecrets::default());
        };
        let bad = |s: &SecretRef, reason: String| AgentError::SealedSecret {
            name: crate::workload::spec::clip(&s.name),
            reason,
        };
        let held = lock(&self.sealed)
            .get(&plan.job_id)
            .cloned()
            .ok_or_else(|| {
                bad(
                    first,
                    "held only in the memory of an earlier run of the agent (sealed secrets are \
                 never stored); fund and submit the job again"
                        .into(),
                )
            })?;
        let mut out = OpenedSecrets::default();
        for (s, w) in plan.secrets.iter().zip(&held) {
            let value = sealed_of(w).ok_or_else(|| bad(s, "enc must be 32 bytes".into()))?;
            let plain = self
                .attestor
                .sealing()
                .open_secret(&value, &purpose(&plan.job_id, s), &s.commitment)
                .map_err(|e| bad(s, e.to_string()))?;
            match s.kind {
                SecretKind::InputFile => out.files.push((PathBuf::from(&s.name), plain)),
                SecretKind::Env => {
                    let text = std::str::from_utf8(&plain)
                        .map_err(|_| bad(s, "an environment value must be UTF-8".into()))?;
                    if text.contains('\0') {
                        return Err(bad(s, "an environment value must not contain NUL".into()));
                    }
                    out.env
                        .push((s.name.clone(), Zeroizing::new(text.to_owned())));
                }
            }
        }
        Ok(out)
    }

    /// Whether `job_id` holds sealed secrets (its directory is then private and wiped).
    pub(super) fn has_sealed(&self, job_id: &JobId) -> bool {
        lock(&self.sealed).contains_key(job_id)
    }
}
