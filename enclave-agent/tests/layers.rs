//! The crate's layers (see the crate documentation in `src/lib.rs`): a module may name, in
//! `crate::` paths, only modules of its own layer or earlier ones. This test reads every
//! `src/**/*.rs` file, finds each `crate::x` path (also inside `use crate::{x, y}`) outside
//! comments, and fails on a path that reaches into a later layer, or on a module missing from
//! the table. Unit-test files (`tests.rs`, `src/**/tests/*.rs`) are not checked: they may
//! build fixtures from later layers.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};

/// Module (path from the crate root) -> layer. A file's module is the longest entry that
/// is a prefix of its path; so is a `crate::` path's.
const LAYERS: &[(&str, u8)] = &[
    // 0: jobs.
    ("job", 0),
    // 1: configuration (imports nothing from the crate).
    ("config", 1),
    // 2: small leaf utilities.
    ("keys", 2),
    ("shutdown", 2),
    ("receipt", 2),
    ("metering", 2),
    // 3: features, each over its own configuration section.
    ("store", 3),
    ("collateral", 3),
    ("workload", 3),
    ("auth", 3),
    ("funding", 3),
    // 4: evidence (asks the collateral sources), metrics (counts store and auth).
    ("evidence", 4),
    ("metrics", 4),
    // 5: the agent key and its evidence.
    ("attestor", 5),
    // 6: the job engine.
    ("engine", 6),
    // 7: what serves or uses the engine's results.
    ("grpc", 7),
    ("settle", 7),
    // 8: the one place that reads the whole configuration and builds everything.
    ("wiring", 8),
    // 9: the crate root and the binaries (the agent, and the job launcher).
    ("launch_main", 9),
    ("", 9),
];

fn layer_of(module: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .filter(|(name, _)| {
            name.is_empty()
                || module == *name
                || module
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
        .max_by_key(|(name, _)| name.len())
        .copied()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "tests" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().unwrap() != "tests.rs"
        {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` -> `a::b`; `src/lib.rs` and `src/main.rs` -> ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A `::`-separated path at the start of `s`.
fn path_at(s: &str) -> String {
    let mut end = 0;
    let b = s.as_bytes();
    loop {
        let start = end;
        while end < b.len() && is_ident(b[end] as char) {
            end += 1;
        }
        if end == start || !s[end..].starts_with("::") || !s[end + 2..].starts_with(is_ident) {
            return s[..end].trim_end_matches("::").to_owned();
        }
        end += 2;
    }
}

/// The modules named by `crate::` paths in `code` (comments removed).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(is_ident) {
                continue; // e.g. `enclave_agent_crate::`, not a crate path
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::b, c}`: the first path of each top-level item.
                let mut depth = 0usize;
                let mut item_start = true;
                for (i, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && is_ident(c) => {
                            out.push(path_at(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.push(path_at(rest));
            }
        }
    }
    out
}

/// Every `crate::` path that reaches a later layer, as `file: module (layer) -> path (layer)`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut bad = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        let (_, own) = layer_of(&module).unwrap();
        let code = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&code) {
            match layer_of(&path) {
                Some((_, layer)) if layer <= own => {}
                found => bad.push(format!(
                    "{}: {module} (layer {own}) -> crate::{path} (layer {})",
                    file.display(),
                    found.map_or("unknown: add it to the table".into(), |(_, l)| l
                        .to_string())
                )),
            }
        }
        if !module.is_empty() && layer_of(&module).is_some_and(|(name, _)| name.is_empty()) {
            bad.push(format!(
                "{}: module {module} is not in the table",
                file.display()
            ));
        }
    }
    bad
}

#[test]
fn modules_import_only_earlier_layers_works() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn a_later_layer_import_is_found_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    // Enough files for the sanity check, all clean.
    std::fs::create_dir(src.join("keys")).unwrap();
    for i in 0..21 {
        std::fs::write(src.join("keys").join(format!("k{i}.rs")), "").unwrap();
    }
    std::fs::write(src.join("job.rs"), "use std::fmt;\n").unwrap();
    std::fs::create_dir(src.join("store")).unwrap();
    std::fs::write(
        src.join("store").join("mod.rs"),
        "use crate::job::JobId;\n// crate::engine in a comment is fine\n",
    )
    .unwrap();
    assert_eq!(violations(src), Vec::<String>::new());
    // A module missing from the table is reported.
    std::fs::write(src.join("extra.rs"), "").unwrap();
    let unknown = violations(src);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains("module extra is not in the table"));
    std::fs::remove_file(src.join("extra.rs")).unwrap();
    // The config layer reaching later layers is caught, in both path forms.
    std::fs::write(
        src.join("config.rs"),
        "use crate::{job::JobId, store::Store};\nfn f() { crate::settle::run(); }\n",
    )
    .unwrap();
    let bad = violations(src);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].contains("config (layer 1) -> crate::store::Store (layer 3)"),
        "{bad:?}"
    );
    assert!(
        bad[1].contains("-> crate::settle::run (layer 7)"),
        "{bad:?}"
    );
}

#[test]
fn crate_paths_are_parsed_works() {
    assert_eq!(
        crate_paths("use crate::a::{b, c};\nlet x = crate::d::e(1); // crate::f\n"),
        vec!["a", "d::e"]
    );
    assert_eq!(
        crate_paths("use crate::{a::b::{C, D}, e, f::G};"),
        vec!["a::b", "e", "f::G"]
    );
    assert_eq!(layer_of("store::schema"), Some(("store", 3)));
    assert_eq!(layer_of("storehouse"), Some(("", 9)));
}
