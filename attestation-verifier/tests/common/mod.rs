//! Shared helpers for tests that read the real evidence in `../shared/vectors`
//! (override with `SIGIL_VECTORS`).

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)] // test helpers

use std::path::{Path, PathBuf};

/// The vectors directory.
pub fn vectors_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SIGIL_VECTORS") {
        return PathBuf::from(p);
    }
    // attestation-verifier/ -> repository root -> ../shared/vectors
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .canonicalize()
        .expect("../shared/vectors not found beside the repository; set SIGIL_VECTORS")
}

/// One case directory with its parsed `case.toml`.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub toml: toml::Table,
}

impl Case {
    pub fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{}: reading {name}: {e}", self.name))
    }

    pub fn has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    pub fn expected(&self, key: &str) -> Option<&toml::Value> {
        self.toml.get("expected")?.get(key)
    }

    /// `[expected] verdict == "valid"`.
    pub fn expected_valid(&self) -> bool {
        self.expected("verdict").and_then(|v| v.as_str()) == Some("valid")
    }

    /// `[expected] verification_time_unix`.
    pub fn verification_time(&self) -> u64 {
        self.expected("verification_time_unix")
            .and_then(|v| v.as_integer())
            .map(|v| v as u64)
            .unwrap_or_else(|| panic!("{}: no verification_time_unix", self.name))
    }

    pub fn facts(&self) -> Option<&toml::Table> {
        self.toml.get("facts")?.as_table()
    }
}

/// Every case of `kind` ("snp", "tdx", "nvgpu"), sorted by name. Fails when none exist,
/// so a missing vectors directory cannot pass silently.
pub fn cases(kind: &str) -> Vec<Case> {
    let dir = vectors_dir().join(kind);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let case_toml = entry.path().join("case.toml");
        if !case_toml.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&case_toml).unwrap();
        out.push(Case {
            name: entry.file_name().to_string_lossy().into_owned(),
            dir: entry.path(),
            toml: text.parse().unwrap(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no {kind} vectors in {}", dir.display());
    out
}
