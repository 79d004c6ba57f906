//! Writes the seed corpus of the job-spec fuzz targets (`job-spec/fuzz/seed.sh`): the job
//! specs of the crate's and the agent's tests (a process with inputs, a tier-3 job with
//! limits, keys and a restart policy, a pinned container, confidential secrets, the path caps)
//! and the refusals they check, each as the `SubmitRequest` a buyer sends, one file per spec.
//!
//! `cargo run -p sigil-job-spec --example seed_specs -- <directory>`

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;

use prost::Message;
use sigil_proto::v1;

fn process(argv: &[&str], env: &[(&str, &str)]) -> v1::JobSpec {
    v1::JobSpec {
        job_id: vec![1; 32],
        tier: 1,
        workload: Some(v1::job_spec::Workload::Process(v1::ProcessWorkload {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        })),
        ..Default::default()
    }
}

fn with_inputs(mut spec: v1::JobSpec, paths: &[&str]) -> v1::JobSpec {
    spec.inputs = paths
        .iter()
        .map(|p| v1::InputFile {
            path: (*p).to_owned(),
            content: b"x".to_vec(),
        })
        .collect();
    spec
}

fn container(image: &str) -> v1::JobSpec {
    v1::JobSpec {
        workload: Some(v1::job_spec::Workload::Container(v1::ContainerWorkload {
            image: image.to_owned(),
            args: vec!["--flag".into(), "value".into()],
            env: HashMap::from([("MODEL".into(), "small".into())]),
        })),
        ..process(&[], &[])
    }
}

fn secret(kind: v1::SecretKind, name: &str) -> v1::SecretRef {
    v1::SecretRef {
        kind: kind as i32,
        name: name.to_owned(),
        commitment: vec![0x5e; 32],
    }
}

/// The specs: accepted ones first, then the refusals the tests check.
fn specs() -> Vec<v1::JobSpec> {
    let digest = "0123456789abcdef".repeat(4);
    let mut tier3 = with_inputs(process(&["/bin/echo", "hi"], &[("A", "1")]), &["./a/b.txt"]);
    tier3.tier = 3;
    tier3.on_restart = v1::RestartPolicy::Rerun as i32;
    tier3.evidence_mode = v1::EvidenceMode::FreshQuote as i32;
    tier3.limits = Some(v1::Limits {
        wall_time_ms: 60_000,
        cpu_time_ms: 30_000,
        memory_bytes: 64 << 20,
        output_bytes: 1 << 20,
    });
    tier3.gpu_count = 1;
    tier3.provider = vec![0xa5; 32];
    tier3.buyer = vec![9; 32];
    tier3.not_after_ms = 1_900_000_000_000;
    let mut confidential = with_inputs(process(&["/bin/sh", "run.sh"], &[]), &["run.sh"]);
    confidential.secrets = vec![
        secret(v1::SecretKind::Env, "API_TOKEN"),
        secret(v1::SecretKind::InputFile, "keys/model.key"),
    ];
    confidential.output_recipient = vec![3; 32];
    let mut unknown_enum = process(&["/bin/true"], &[]);
    unknown_enum.evidence_mode = 99;
    let mut short_buyer = process(&["/bin/true"], &[]);
    short_buyer.buyer = vec![9; 31];
    let mut clear_and_secret = process(&["/bin/true"], &[("TOKEN", "x")]);
    clear_and_secret.secrets = vec![secret(v1::SecretKind::Env, "TOKEN")];
    let mut tier3_none = process(&["/bin/true"], &[]);
    tier3_none.tier = 3;
    tier3_none.evidence_mode = v1::EvidenceMode::None as i32;
    vec![
        with_inputs(
            process(&["/bin/true"], &[]),
            &["a/b", "a/c", "./d", "e/f/g"],
        ),
        tier3,
        container(&format!("ghcr.io/a/b@sha256:{digest}")),
        confidential,
        with_inputs(
            process(&["/bin/true"], &[]),
            &[&vec!["d"; 64].join("/"), &"c".repeat(255)],
        ),
        with_inputs(process(&["/bin/true"], &[]), &["a", "a/b"]),
        with_inputs(process(&["/bin/true"], &[]), &["a/b", "./a/b"]),
        with_inputs(process(&["/bin/true"], &[]), &["../x", "/etc/passwd"]),
        process(&["/bin/true"], &[("SIGIL_JOB_ID", "x")]),
        process(&["", "x"], &[]),
        container("alpine:3"),
        unknown_enum,
        short_buyer,
        clear_and_secret,
        tier3_none,
    ]
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: seed_specs <directory>")?,
    );
    std::fs::create_dir_all(&dir)?;
    let specs = specs();
    for (i, spec) in specs.iter().enumerate() {
        let request = v1::SubmitRequest {
            spec: spec.encode_to_vec(),
            signature: Some(v1::BuyerSignature {
                public_key: vec![9; 32],
                signature: vec![0; 64],
            }),
            sealed_secrets: Vec::new(),
        };
        std::fs::write(dir.join(format!("spec-{i:02}")), request.encode_to_vec())?;
    }
    println!("{} seeds in {}", specs.len(), dir.display());
    Ok(())
}
