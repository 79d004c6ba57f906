#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests

use super::*;

fn request() -> JobRequest {
    JobRequest {
        job_id: [7; 32],
        tier: 3,
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo hi > $SIGIL_OUTPUT_DIR/out".into(),
        ],
        env: vec![("A".into(), "1".into())],
        inputs: vec![("in.txt".into(), b"input".to_vec())],
        wall_time_ms: 5_000,
        evidence_mode: EvidenceMode::FreshQuote,
        provider_key: Some([9; 32]),
        ..JobRequest::default()
    }
}

#[test]
fn encoded_spec_hash_is_sha256_of_the_exact_bytes() {
    let spec = request().encode().unwrap();
    assert_eq!(spec.job_id, [7; 32]);
    assert_eq!(spec.spec_hash, sha256(&spec.bytes));
    let decoded = v1::JobSpec::decode(spec.bytes.as_slice()).unwrap();
    assert_eq!(decoded.tier, 3);
    assert_eq!(decoded.provider, vec![9; 32]);
    assert_eq!(
        decoded.evidence_mode,
        i32::from(v1::EvidenceMode::FreshQuote)
    );
    assert_eq!(decoded.limits.unwrap().wall_time_ms, 5_000);
    assert_eq!(decoded.inputs[0].path, "in.txt");
    match decoded.workload.unwrap() {
        v1::job_spec::Workload::Process(p) => {
            assert_eq!(p.argv[0], "/bin/sh");
            assert_eq!(p.env.get("A").map(String::as_str), Some("1"));
        }
        other => panic!("wrong workload {other:?}"),
    }
}

#[test]
fn spec_bytes_read_back_keep_id_and_hash() {
    let spec = request().encode().unwrap();
    let back = EncodedSpec::from_bytes(spec.bytes.clone()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn bad_requests_are_refused() {
    let mut r = request();
    r.tier = 4;
    assert!(matches!(r.encode(), Err(AgentError::BadRequest(m)) if m.contains("tier 4")));
    let mut r = request();
    r.argv.clear();
    assert!(matches!(r.encode(), Err(AgentError::BadRequest(m)) if m.contains("argv")));
    // A container needs no argv.
    let mut r = request();
    r.argv.clear();
    r.image = Some(format!("registry.example/app@sha256:{}", "ab".repeat(32)));
    assert!(r.encode().is_ok());
}

#[test]
fn spec_files_that_are_not_specs_are_refused() {
    assert!(matches!(
        EncodedSpec::from_bytes(vec![0xff, 0xff, 0xff]),
        Err(AgentError::BadRequest(_))
    ));
    // Decodes, but the job id is missing.
    let bytes = v1::JobSpec {
        tier: 1,
        ..Default::default()
    }
    .encode_to_vec();
    assert!(matches!(
        EncodedSpec::from_bytes(bytes),
        Err(AgentError::BadRequest(m)) if m.contains("32 bytes")
    ));
}

#[tokio::test]
async fn unreachable_agent_is_a_connect_error() {
    // Port 1 on loopback: nothing listens there.
    let err = AgentClient::connect("http://127.0.0.1:1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Connect { .. }), "{err}");
    let err = AgentClient::connect("not a url", None).await.unwrap_err();
    assert!(matches!(err, AgentError::Endpoint { .. }), "{err}");
    let err = AgentClient::connect("http://127.0.0.1:1", Some(Path::new("ca.pem")))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Endpoint { .. }), "{err}");
}
