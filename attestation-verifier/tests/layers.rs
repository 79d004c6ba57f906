//! The pipeline's layers import only downward: parsing (`src/evidence/`) knows
//! nothing of verification, and verification (`src/verify/`) nothing of the
//! appraisal side (the policy and the `check_*` pipeline with its claims).

#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)] // tests

use std::fs;
use std::path::Path;

/// Every code line (comments skipped) under `dir` that names one of `forbidden`.
fn offending_lines(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(offending_lines(&path, forbidden));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if forbidden.iter().any(|f| code.contains(f)) {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, code));
                }
            }
        }
    }
    found
}

fn src(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)
}

#[test]
fn verify_does_not_import_appraisal_works() {
    let found = offending_lines(
        &src("verify"),
        &["crate::policy", "crate::pipeline", "crate::appraise"],
    );
    assert!(
        found.is_empty(),
        "verify/ imports the appraisal side:\n{}",
        found.join("\n")
    );
}

#[test]
fn evidence_does_not_import_later_layers_works() {
    let found = offending_lines(
        &src("evidence"),
        &[
            "crate::verify",
            "crate::policy",
            "crate::pipeline",
            "crate::appraise",
        ],
    );
    assert!(
        found.is_empty(),
        "evidence/ imports a later layer:\n{}",
        found.join("\n")
    );
}
