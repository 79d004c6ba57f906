//! Unit tests: input layout, enum values, sizes and what errors echo (issue 19).
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use prost::Message;
use sigil_proto::v1;

use super::*;

fn caps() -> Capabilities {
    Capabilities {
        agent_key: [7; 32],
        has_tee: true,
        gpus: 0,
        containers: false,
        default_evidence: Evidence::AttestedKey,
    }
}

fn spec_with(paths: &[&str]) -> v1::JobSpec {
    v1::JobSpec {
        job_id: vec![1; 32],
        tier: 1,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: vec!["/bin/true".into()],
            env: Default::default(),
        })),
        inputs: paths
            .iter()
            .map(|p| v1::InputFile {
                path: (*p).to_owned(),
                content: b"x".to_vec(),
            })
            .collect(),
        ..Default::default()
    }
}

fn check(spec: &v1::JobSpec) -> Result<JobPlan, SpecError> {
    validate(&spec.encode_to_vec(), &SpecLimits::default(), &caps(), 0)
}

fn path_reason(e: SpecError) -> &'static str {
    match e {
        SpecError::InputPath { reason, .. } => reason,
        other => panic!("not an input path error: {other}"),
    }
}

#[test]
fn input_layout_works() {
    let plan = check(&spec_with(&["a/b", "a/c", "./d", "e/f/g"])).unwrap();
    let names: Vec<_> = plan.inputs.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        names,
        ["a/b", "a/c", "d", "e/f/g"].map(PathBuf::from).to_vec()
    );
}

/// Regression test for issue 19: a file that is also a directory prefix of another.
#[test]
fn file_and_directory_prefix_rejects() {
    for paths in [&["a", "a/b"][..], &["a/b/c", "a/b"], &["x/./y", "x/y/z"]] {
        let e = check(&spec_with(paths)).unwrap_err();
        assert!(
            path_reason(e).contains("both a file and a directory"),
            "{paths:?}"
        );
    }
    let e = check(&spec_with(&["a/b", "./a/b"])).unwrap_err();
    assert_eq!(path_reason(e), "appears twice");
}

/// Regression test for issue 19: a 5,000-character name, 2,000 levels, a 256-byte component.
#[test]
fn path_length_and_depth_caps_reject() {
    let long = "n".repeat(5_000);
    let e = check(&spec_with(&[&long])).unwrap_err();
    assert_eq!(path_reason(e.clone()), "longer than 4096 bytes");
    // The echoed path is capped.
    assert!(e.to_string().len() < 300, "{e}");
    assert!(e.to_string().contains('…'));

    let deep = vec!["d"; 2_000].join("/");
    assert_eq!(
        path_reason(check(&spec_with(&[&deep])).unwrap_err()),
        "is more than 64 levels deep"
    );
    let ok = vec!["d"; 64].join("/");
    check(&spec_with(&[&ok])).unwrap();

    let component = "c".repeat(256);
    assert_eq!(
        path_reason(check(&spec_with(&[&component])).unwrap_err()),
        "has a component longer than 255 bytes"
    );
    check(&spec_with(&[&"c".repeat(255)])).unwrap();
}

#[test]
fn input_count_cap_rejects() {
    let names: Vec<String> = (0..=MAX_INPUTS).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let e = check(&spec_with(&refs)).unwrap_err();
    assert!(
        matches!(e, SpecError::TooMany { what: "inputs", .. }),
        "{e}"
    );
}

#[test]
fn argument_caps_reject() {
    let mut s = spec_with(&[]);
    if let Some(v1::job_spec::Workload::Process(p)) = &mut s.workload {
        p.argv.extend((0..MAX_ARGS).map(|i| i.to_string()));
    }
    assert!(matches!(check(&s).unwrap_err(), SpecError::TooMany { .. }));
    let mut s = spec_with(&[]);
    if let Some(v1::job_spec::Workload::Process(p)) = &mut s.workload {
        p.argv.push("a".repeat(MAX_ARG_BYTES));
    }
    assert!(matches!(check(&s).unwrap_err(), SpecError::TooMany { .. }));
}

/// Regression test for issue 19: enum values outside the API.
#[test]
fn unknown_enum_values_reject() {
    let mut s = spec_with(&[]);
    s.evidence_mode = 99;
    assert_eq!(
        check(&s).unwrap_err(),
        SpecError::UnknownEnum {
            field: "evidence_mode",
            value: 99
        }
    );
    let mut s = spec_with(&[]);
    s.on_restart = 42;
    assert_eq!(
        check(&s).unwrap_err(),
        SpecError::UnknownEnum {
            field: "on_restart",
            value: 42
        }
    );
    let mut s = spec_with(&[]);
    s.on_restart = v1::RestartPolicy::Rerun as i32;
    assert!(check(&s).unwrap().rerun_on_restart);
}

#[test]
fn buyer_field_works() {
    let mut s = spec_with(&[]);
    assert_eq!(check(&s).unwrap().buyer, None);
    s.buyer = vec![9; 32];
    assert_eq!(check(&s).unwrap().buyer, Some([9; 32]));
    s.buyer = vec![9; 31];
    assert_eq!(check(&s).unwrap_err(), SpecError::Buyer(31));
}

#[test]
fn echoed_values_are_capped_works() {
    let mut s = spec_with(&[]);
    s.provider = vec![0xab; 30_000];
    let e = check(&s).unwrap_err();
    assert!(e.to_string().chars().count() < 200, "{e}");
    assert_eq!(clip("short"), "short");
    let c = clip(&"é".repeat(1_000));
    assert_eq!(c.chars().count(), ECHO_CHARS + 1);
    assert!(c.ends_with('…'));
}

/// Regression test (found by the `job_spec_structured` fuzz target): a tier-3 spec that names
/// no evidence mode, on an agent whose default mode is none, was accepted without evidence.
#[test]
fn tier3_default_evidence_none_rejects() {
    let mut s = spec_with(&[]);
    s.tier = 3;
    let none = Capabilities {
        default_evidence: Evidence::None,
        ..caps()
    };
    let e = validate(&s.encode_to_vec(), &SpecLimits::default(), &none, 0).unwrap_err();
    assert_eq!(
        e,
        SpecError::EvidenceMode {
            mode: "none",
            tier: 3,
            reason: "tier 3 needs hardware evidence"
        }
    );
    // Named explicitly, as before; and the agent's default mode otherwise.
    s.evidence_mode = v1::EvidenceMode::None as i32;
    assert_eq!(check(&s).unwrap_err(), e);
    s.evidence_mode = v1::EvidenceMode::Unspecified as i32;
    assert_eq!(check(&s).unwrap().evidence, Evidence::AttestedKey);
}
