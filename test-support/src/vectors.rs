//! The shared evidence vectors: real public evidence read from `../shared/vectors` beside the
//! repository root (override: the `SIGIL_VECTORS` environment variable), never copied into the
//! repository. Each case is a directory `<kind>/<name>/` (`kind`: `snp`, `tdx`, `nvgpu`) whose
//! `case.toml` gives the provenance, the expected verdict and facts about the evidence.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the vectors directory.
pub const VECTORS_ENV: &str = "SIGIL_VECTORS";

/// The vectors directory: `SIGIL_VECTORS`, or `../shared/vectors` beside the repository root.
///
/// # Panics
/// When the directory does not exist, so a missing vectors directory cannot pass silently.
pub fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os(VECTORS_ENV).map_or_else(
        // test-support/ -> repository root -> ../shared/vectors
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        PathBuf::from,
    );
    match dir.canonicalize() {
        Ok(d) if d.is_dir() => d,
        _ => panic!(
            "test vectors not found at {} (set {VECTORS_ENV})",
            dir.display()
        ),
    }
}

/// The bytes of `path` relative to the vectors directory (e.g. `snp/<case>/report.bin`).
///
/// # Panics
/// When the file cannot be read.
pub fn vector(path: &str) -> Vec<u8> {
    let p = vectors_dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One case directory with its parsed `case.toml`.
#[derive(Debug, Clone)]
pub struct Case {
    /// The directory's name, e.g. `milan-v3-oak-oc-release`.
    pub name: String,
    /// The case directory.
    pub dir: PathBuf,
    /// Its `case.toml`.
    pub toml: toml::Table,
}

impl Case {
    /// The case `name` of `kind` (`snp`, `tdx`, `nvgpu`).
    ///
    /// # Panics
    /// When it has no readable, well-formed `case.toml`.
    pub fn load(kind: &str, name: &str) -> Self {
        Self::at(vectors_dir().join(kind).join(name))
    }

    fn at(dir: PathBuf) -> Self {
        let path = dir.join("case.toml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let toml = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self { name, dir, toml }
    }

    /// The bytes of the case's file `name`.
    ///
    /// # Panics
    /// When it cannot be read.
    pub fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{}: reading {name}: {e}", self.name))
    }

    /// Whether the case has a file `name`.
    pub fn has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    /// `[expected] <key>`.
    pub fn expected(&self, key: &str) -> Option<&toml::Value> {
        self.toml.get("expected")?.get(key)
    }

    /// `[expected] verdict == "valid"`.
    pub fn expected_valid(&self) -> bool {
        self.expected("verdict").and_then(|v| v.as_str()) == Some("valid")
    }

    /// `[expected] verification_time_unix`: the time (Unix seconds) to verify the case at.
    ///
    /// # Panics
    /// When the case has none.
    pub fn verification_time(&self) -> u64 {
        self.expected("verification_time_unix")
            .and_then(toml::Value::as_integer)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or_else(|| panic!("{}: no verification_time_unix", self.name))
    }

    /// The `[facts]` table, if any.
    pub fn facts(&self) -> Option<&toml::Table> {
        self.toml.get("facts")?.as_table()
    }
}

/// Every case of `kind` (`snp`, `tdx`, `nvgpu`), sorted by name.
///
/// # Panics
/// When there are none, so a missing vectors directory cannot pass silently.
pub fn cases(kind: &str) -> Vec<Case> {
    let dir = vectors_dir().join(kind);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut out: Vec<Case> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.join("case.toml").exists())
        .map(Case::at)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no {kind} vectors in {}", dir.display());
    out
}

#[cfg(test)]
mod tests;
