//! The agent over real sockets: submit -> run -> receipt -> `sigil-verify receipt`,
//! outputs with inclusion proofs, idempotency, cancellation, status codes for bad
//! requests, health, reflection, metrics and TLS.
// Tests may unwrap and index: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};

use attestation_verifier::bundle::EvidenceBundle;
use attestation_verifier::crypto::AwsLc;
use attestation_verifier::merkle::{InclusionProof, verify_inclusion};
use attestation_verifier::receipt::{ReceiptBody, SignedReceipt, TeeKind};
use common::*;
use prost::Message;
use sha2::{Digest, Sha256};
use sigil_proto::v1;
use tonic::Code;

async fn fetch_output(
    client: &mut v1::job_service_client::JobServiceClient<tonic::transport::Channel>,
    id: [u8; 32],
    kind: v1::OutputKind,
    path: &str,
    offset: u64,
) -> (Vec<u8>, Vec<u8>, u32) {
    let mut s = client
        .get_output(v1::GetOutputRequest {
            job_id: id.to_vec(),
            kind: kind as i32,
            path: path.into(),
            offset,
            auth: Some(output_auth(&buyer(), &id, kind, offset, path)),
        })
        .await
        .unwrap()
        .into_inner();
    let (mut data, mut proof, mut index) = (Vec::new(), Vec::new(), 0);
    while let Some(c) = s.message().await.unwrap() {
        if !c.proof.is_empty() {
            proof = c.proof;
            index = c.index;
        }
        data.extend(c.data);
    }
    (data, proof, index)
}

#[tokio::test(flavor = "multi_thread")]
async fn receipt_verifies_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("receipt_verifies_works");
    let mut spec = shell_job(
        id,
        "cat \"$SIGIL_INPUT_DIR/name\" > \"$SIGIL_OUTPUT_DIR/greeting\"; \
         mkdir \"$SIGIL_OUTPUT_DIR/sub\"; printf 42 > \"$SIGIL_OUTPUT_DIR/sub/answer\"; echo done",
    );
    spec.inputs.push(v1::InputFile {
        path: "name".into(),
        content: b"hello sigil".to_vec(),
    });
    let resp = jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.created);
    let st = wait_final(&mut jobs, id).await;
    assert_eq!(
        state(&st),
        v1::JobState::Succeeded,
        "{st:?}\n{}",
        agent.log()
    );
    assert_eq!(st.exit_code, Some(0));
    assert!(st.has_receipt);
    assert_eq!(st.attempts, 1);
    assert_eq!(
        st.job_spec_hash,
        Sha256::digest(spec.encode_to_vec()).to_vec()
    );
    let names: Vec<&str> = st.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(names, ["greeting", "sub/answer"]);

    let r = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id)),
        })
        .await
        .unwrap()
        .into_inner();
    let signed_receipt = SignedReceipt::decode_bytes(&r.signed_receipt).unwrap();
    assert_eq!(signed_receipt.body, r.body);
    let body = ReceiptBody::from_bytes(&r.body).unwrap();
    let view = r.view.unwrap();
    assert_eq!(body.job_id, id);
    assert_eq!(view.job_id, id.to_vec());
    assert_eq!(body.output_count, 2);
    assert_eq!(body.exit_code, 0);
    assert_eq!(body.evidence.tee, TeeKind::Simulated);
    assert_eq!(view.result_commitment, body.result_commitment.to_vec());
    let bundle = EvidenceBundle::from_bytes(&r.evidence_bundle).unwrap();
    assert_eq!(bundle.agent_key, body.provider);
    assert_eq!(bundle.digest(&AwsLc), body.evidence.digest);

    // The whole receipt checks out offline, but only when simulated evidence is allowed.
    let (code, out) = verify_receipt(
        dir.path(),
        &r.signed_receipt,
        &r.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify_receipt(dir.path(), &r.signed_receipt, &r.evidence_bundle, &[]);
    assert_eq!(
        code, 1,
        "simulated evidence must be rejected by default: {out}"
    );
    assert!(out.to_lowercase().contains("simulat"), "{out}");

    // A tampered receipt: the exit code byte changed after signing.
    let mut tampered_body = body.clone();
    tampered_body.exit_code = 1;
    let tampered = SignedReceipt {
        body: tampered_body.to_bytes(),
        signature: signed_receipt.signature,
    };
    let (code, out) = verify_receipt(
        dir.path(),
        &tampered.to_bytes(),
        &r.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 1, "{out}");
    // A flipped signature bit.
    let mut sig_flip = signed_receipt.clone();
    sig_flip.signature[5] ^= 1;
    let (code, out) = verify_receipt(
        dir.path(),
        &sig_flip.to_bytes(),
        &r.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 1, "{out}");
    // A bundle for another key.
    let mut other = bundle.clone();
    other.agent_key[0] ^= 1;
    let (code, out) = verify_receipt(
        dir.path(),
        &r.signed_receipt,
        &other.to_bytes(),
        &["--allow-simulated"],
    );
    assert_ne!(code, 0, "{out}");

    // One output, checked alone against the receipt.
    let (data, proof, index) =
        fetch_output(&mut jobs, id, v1::OutputKind::File, "sub/answer", 0).await;
    assert_eq!(data, b"42");
    assert_eq!(index, 1);
    let proof = InclusionProof::from_bytes(&proof).unwrap();
    let h: [u8; 32] = Sha256::digest(&data).into();
    verify_inclusion(
        &AwsLc,
        &body.result_commitment,
        body.output_count,
        b"sub/answer",
        &h,
        &proof,
    )
    .unwrap();
    assert!(
        verify_inclusion(
            &AwsLc,
            &body.result_commitment,
            body.output_count,
            b"greeting",
            &h,
            &proof
        )
        .is_err()
    );
    let (data, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::File, "greeting", 6).await;
    assert_eq!(data, b"sigil");
    let (data, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::Stdout, "", 0).await;
    assert_eq!(data, b"done\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_quote_and_tier1_work() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("fresh_quote");
    let mut spec = shell_job(id, "printf x > \"$SIGIL_OUTPUT_DIR/x\"; exit 7");
    spec.evidence_mode = v1::EvidenceMode::FreshQuote as i32;
    jobs.submit(signed(&buyer(), &spec)).await.unwrap();
    let st = wait_final(&mut jobs, id).await;
    // A non-zero exit still gets a receipt that records it.
    assert_eq!(state(&st), v1::JobState::Failed);
    assert_eq!(st.reason, "exited with status 7");
    let r = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id)),
        })
        .await
        .unwrap()
        .into_inner();
    let body = ReceiptBody::from_bytes(&r.body).unwrap();
    assert_eq!(body.exit_code, 7);
    assert_eq!(
        r.view.unwrap().evidence_mode,
        v1::EvidenceMode::FreshQuote as i32
    );
    let bundle = EvidenceBundle::from_bytes(&r.evidence_bundle).unwrap();
    assert_eq!(
        bundle.nonce,
        attestation_verifier::binding::fresh_nonce(&AwsLc, &body)
    );
    let (code, out) = verify_receipt(
        dir.path(),
        &r.signed_receipt,
        &r.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 0, "{out}");

    let id1 = job_id("tier1");
    let mut t1 = shell_job(id1, "true");
    t1.tier = 1;
    jobs.submit(signed(&buyer(), &t1)).await.unwrap();
    assert_eq!(
        state(&wait_final(&mut jobs, id1).await),
        v1::JobState::Succeeded
    );
    let r = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id1.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id1)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.evidence_bundle.is_empty());
    assert_eq!(ReceiptBody::from_bytes(&r.body).unwrap().tier, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_is_idempotent_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("idempotent");
    let spec = shell_job(id, "echo once >> /dev/null");
    let a = jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    let b = jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(a.created);
    assert!(!b.created);
    assert_eq!(
        a.job.unwrap().submitted_at_ms,
        b.job.unwrap().submitted_at_ms
    );
    let st = wait_final(&mut jobs, id).await;
    assert_eq!(st.attempts, 1);
    // Resubmitting after it ran returns the finished job, it does not run again.
    let c = jobs
        .submit(signed(&buyer(), &spec))
        .await
        .unwrap()
        .into_inner();
    assert!(!c.created);
    assert_eq!(state(c.job.as_ref().unwrap()), v1::JobState::Succeeded);
    assert_eq!(c.job.unwrap().attempts, 1);
    let other = shell_job(id, "echo different");
    let e = jobs.submit(signed(&buyer(), &other)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
}

/// A finished job's directory goes (its outputs and logs are in the store and still
/// served); the agent's state directory does not grow with every job.
#[tokio::test(flavor = "multi_thread")]
async fn finished_job_directory_is_removed_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("dir-removed");
    let spec = shell_job(
        id,
        "mkdir -p \"$SIGIL_OUTPUT_DIR/sub\"; printf kept > \"$SIGIL_OUTPUT_DIR/sub/result\"; \
         ln -s / \"$SIGIL_OUTPUT_DIR/root\"; echo logged",
    );
    jobs.submit(signed(&buyer(), &spec)).await.unwrap();
    let st = wait_final(&mut jobs, id).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    let job_dir = dir.path().join("jobs").join(hex::encode(id));
    // The directory goes right after the job's end is published.
    let mut waited = 0;
    while job_dir.exists() && waited < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(!job_dir.exists(), "{} is still there", job_dir.display());
    // The link was removed, not followed.
    assert!(std::path::Path::new("/etc").exists());
    let (data, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::File, "sub/result", 0).await;
    assert_eq!(data, b"kept");
    let (log, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::Stdout, "", 0).await;
    assert_eq!(log, b"logged\n");
}

/// Directories a stopped agent left behind (a crash between a job's end and its
/// directory's removal; a job the store does not know) are removed when it starts again,
/// without following the links in them; what is not a job's directory is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn ended_job_directories_are_swept_at_start_works() {
    let dir = state_dir();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), b"outside").unwrap();
    let mut agent = Agent::start(dir.path(), &[]);
    let mut jobs = agent.jobs().await;
    let id = job_id("swept-at-start");
    jobs.submit(signed(
        &buyer(),
        &shell_job(id, "printf done > \"$SIGIL_OUTPUT_DIR/r\""),
    ))
    .await
    .unwrap();
    let st = wait_final(&mut jobs, id).await;
    assert_eq!(state(&st), v1::JobState::Succeeded, "{st:?}");
    drop(jobs);
    assert!(agent.sigterm_and_wait().success());
    let work = dir.path().join("jobs");
    let ended = work.join(hex::encode(id));
    let unknown = work.join(hex::encode(job_id("never-submitted")));
    let not_a_job = work.join("notes");
    let upper = work.join(hex::encode(job_id("upper")).to_uppercase());
    for d in [&ended, &unknown, &not_a_job, &upper] {
        std::fs::create_dir_all(d.join("out")).unwrap();
        std::fs::write(d.join("out/left"), b"x").unwrap();
    }
    std::os::unix::fs::symlink(outside.path(), ended.join("out/escape")).unwrap();
    agent.restart();
    let mut jobs = agent.jobs().await;
    // The agent serves once recovery (and the sweep) is done.
    let (data, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::File, "r", 0).await;
    assert_eq!(data, b"done");
    assert!(!ended.exists(), "{} is still there", ended.display());
    assert!(!unknown.exists(), "{} is still there", unknown.display());
    assert!(not_a_job.join("out/left").exists());
    assert!(upper.join("out/left").exists());
    assert_eq!(
        std::fs::read(outside.path().join("keep")).unwrap(),
        b"outside"
    );
    assert!(
        agent
            .log()
            .contains("removed the directories of jobs that had ended"),
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "1")]);
    let mut jobs = agent.jobs().await;
    let running = job_id("cancel-running");
    let queued = job_id("cancel-queued");
    jobs.submit(signed(&buyer(), &shell_job(running, "sleep 60")))
        .await
        .unwrap();
    jobs.submit(signed(&buyer(), &shell_job(queued, "true")))
        .await
        .unwrap();
    wait_for(&mut jobs, running, |s| state(s) == v1::JobState::Running).await;
    // Someone else's key may not cancel.
    let intruder = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let e = jobs
        .cancel(v1::CancelRequest {
            job_id: queued.to_vec(),
            auth: Some(request_auth(&intruder, sigil_proto::CANCEL_DOMAIN, &queued)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let q = jobs
        .cancel(v1::CancelRequest {
            job_id: queued.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::CANCEL_DOMAIN, &queued)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&q), v1::JobState::Cancelled);
    let r = jobs
        .cancel(v1::CancelRequest {
            job_id: running.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::CANCEL_DOMAIN, &running)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&r), v1::JobState::Cancelled, "{r:?}");
    assert!(!r.has_receipt);
    let e = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: running.to_vec(),
            auth: Some(request_auth(
                &buyer(),
                sigil_proto::RECEIPT_DOMAIN,
                &running,
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = jobs
        .cancel(v1::CancelRequest {
            job_id: running.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::CANCEL_DOMAIN, &running)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_reject() {
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_JOBS__MAX_REQUEST_BYTES", "65536"),
            ("SIGIL_AGENT_AUTH__TOKEN", "op-token"),
        ],
    );
    let mut jobs = agent.jobs().await;
    let key = buyer();
    let ok = |label: &str| shell_job(job_id(label), "true");
    let with = |label: &str, f: &dyn Fn(&mut v1::JobSpec)| {
        let mut s = ok(label);
        f(&mut s);
        signed(&key, &s)
    };
    let unsigned = v1::SubmitRequest {
        spec: ok("unsigned").encode_to_vec(),
        signature: None,
        sealed_secrets: Vec::new(),
    };
    let mut bad_sig = signed(&key, &ok("badsig"));
    bad_sig.signature.as_mut().unwrap().signature[0] ^= 1;
    let mut short_key = signed(&key, &ok("shortkey"));
    short_key.signature.as_mut().unwrap().public_key.pop();
    let garbage = {
        let mut r = signed(&key, &ok("x"));
        r.spec = vec![0xff; 10];
        // Re-sign the garbage so only decoding fails.
        let fake = v1::JobSpec::default();
        let _ = fake;
        let msg: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(sigil_proto::SUBMIT_DOMAIN);
            h.update(&r.spec);
            h.finalize().into()
        };
        use ed25519_dalek::Signer;
        r.signature.as_mut().unwrap().signature = key.sign(&msg).to_bytes().to_vec();
        r
    };
    let pinned = format!("reg/img@sha256:{}", "0".repeat(64));
    let cases: Vec<(&str, v1::SubmitRequest, Code)> = vec![
        ("unsigned", unsigned, Code::Unauthenticated),
        ("bad signature", bad_sig, Code::Unauthenticated),
        ("short key", short_key, Code::Unauthenticated),
        ("undecodable spec", garbage, Code::InvalidArgument),
        (
            "short job id",
            with("a", &|s| s.job_id = vec![1; 16]),
            Code::InvalidArgument,
        ),
        ("tier 9", with("b", &|s| s.tier = 9), Code::InvalidArgument),
        (
            "no workload",
            with("c", &|s| s.workload = None),
            Code::InvalidArgument,
        ),
        (
            "file and directory",
            with("d2", &|s| {
                for p in ["a", "a/b"] {
                    s.inputs.push(v1::InputFile {
                        path: p.into(),
                        content: vec![],
                    })
                }
            }),
            Code::InvalidArgument,
        ),
        (
            "evidence mode 99",
            with("d3", &|s| s.evidence_mode = 99),
            Code::InvalidArgument,
        ),
        (
            "restart policy 42",
            with("d4", &|s| s.on_restart = 42),
            Code::InvalidArgument,
        ),
        (
            "escaping input",
            with("d", &|s| {
                s.inputs.push(v1::InputFile {
                    path: "../../etc/x".into(),
                    content: vec![],
                })
            }),
            Code::InvalidArgument,
        ),
        (
            "limit too high",
            with("e", &|s| {
                s.limits = Some(v1::Limits {
                    wall_time_ms: u64::MAX,
                    ..Default::default()
                })
            }),
            Code::InvalidArgument,
        ),
        (
            "reserved env",
            with("f", &|s| {
                if let Some(v1::job_spec::Workload::Process(p)) = &mut s.workload {
                    p.env.insert("SIGIL_OUTPUT_DIR".into(), "/".into());
                }
            }),
            Code::InvalidArgument,
        ),
        (
            "other provider",
            with("g", &|s| s.provider = vec![1; 32]),
            Code::FailedPrecondition,
        ),
        (
            "expired",
            with("h", &|s| s.not_after_ms = 1),
            Code::FailedPrecondition,
        ),
        (
            "too many GPUs",
            with("i", &|s| s.gpu_count = 1),
            Code::FailedPrecondition,
        ),
        (
            "tier 3 without evidence",
            with("j", &|s| s.evidence_mode = v1::EvidenceMode::None as i32),
            Code::FailedPrecondition,
        ),
        (
            "containers disabled",
            with("k", &|s| {
                s.workload = Some(v1::job_spec::Workload::Container(v1::ContainerWorkload {
                    image: pinned.clone(),
                    ..Default::default()
                }))
            }),
            Code::FailedPrecondition,
        ),
        (
            "too large",
            with("l", &|s| {
                s.inputs.push(v1::InputFile {
                    path: "big".into(),
                    content: vec![0; 70_000],
                })
            }),
            Code::OutOfRange,
        ),
    ];
    for (what, req, code) in cases {
        let e = jobs.submit(req).await.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        assert!(!e.message().is_empty(), "{what}");
    }
    // Wrong bearer token, then the right one without a signature.
    let mut req = tonic::Request::new(v1::SubmitRequest {
        spec: ok("token").encode_to_vec(),
        signature: None,
        sealed_secrets: Vec::new(),
    });
    req.metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        jobs.submit(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut req = tonic::Request::new(v1::SubmitRequest {
        spec: ok("token").encode_to_vec(),
        signature: None,
        sealed_secrets: Vec::new(),
    });
    req.metadata_mut()
        .insert("authorization", "Bearer op-token".parse().unwrap());
    assert!(jobs.submit(req).await.unwrap().into_inner().created);

    let unknown = job_id("nobody submitted this");
    let e = jobs
        .get_job(v1::GetJobRequest {
            job_id: unknown.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &unknown)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = jobs
        .get_job(v1::GetJobRequest {
            job_id: vec![1, 2, 3],
            auth: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: unknown.to_vec(),
            auth: Some(request_auth(
                &buyer(),
                sigil_proto::RECEIPT_DOMAIN,
                &unknown,
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Outputs: before the end, unknown paths, unauthenticated.
    let slow = job_id("slow");
    jobs.submit(signed(
        &key,
        &shell_job(slow, "sleep 2; printf a > \"$SIGIL_OUTPUT_DIR/a\""),
    ))
    .await
    .unwrap();
    let req = |path: &str, auth: Option<v1::RequestAuth>| v1::GetOutputRequest {
        job_id: slow.to_vec(),
        kind: v1::OutputKind::File as i32,
        path: path.into(),
        offset: 0,
        auth,
    };
    let file = v1::OutputKind::File;
    let e = jobs
        .get_output(req("a", Some(output_auth(&key, &slow, file, 0, "a"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: slow.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &slow)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    wait_final(&mut jobs, slow).await;
    let e = jobs.get_output(req("a", None)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = jobs
        .get_output(req(
            "a",
            Some(request_auth(&key, sigil_proto::CANCEL_DOMAIN, &slow)),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = jobs
        .get_output(req("nope", Some(output_auth(&key, &slow, file, 0, "nope"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut past = req("a", Some(output_auth(&key, &slow, file, 2, "a")));
    past.offset = 2;
    assert_eq!(
        jobs.get_output(past).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // Regression tests for issue 19. A signature for one output does not open another, nor
    // the same one from another offset.
    let e = jobs
        .get_output(req("b", Some(output_auth(&key, &slow, file, 0, "a"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let mut shifted = req("a", Some(output_auth(&key, &slow, file, 0, "a")));
    shifted.offset = 1;
    assert_eq!(
        jobs.get_output(shifted).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Another buyer's signature, and the operator token, do not read the buyer's outputs.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x77; 32]);
    let e = jobs
        .get_output(req("a", Some(output_auth(&stranger, &slow, file, 0, "a"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let mut op = tonic::Request::new(req("a", None));
    op.metadata_mut()
        .insert("authorization", "Bearer op-token".parse().unwrap());
    let e = jobs.get_output(op).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Nor do they read its status or receipt; the token does.
    let e = jobs
        .get_job(v1::GetJobRequest {
            job_id: slow.to_vec(),
            auth: Some(request_auth(&stranger, sigil_proto::STATUS_DOMAIN, &slow)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = jobs
        .get_job(v1::GetJobRequest {
            job_id: slow.to_vec(),
            auth: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut op = tonic::Request::new(v1::GetReceiptRequest {
        job_id: slow.to_vec(),
        auth: None,
    });
    op.metadata_mut()
        .insert("authorization", "Bearer op-token".parse().unwrap());
    jobs.get_receipt(op).await.unwrap();
    // Unknown output kinds are refused; echoed paths are capped.
    let mut k9 = req("a", Some(output_auth(&key, &slow, file, 0, "a")));
    k9.kind = 9;
    let e = jobs.get_output(k9).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let long = "p".repeat(4_000);
    let e = jobs
        .get_output(req(&long, Some(output_auth(&key, &slow, file, 0, &long))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().len() < 400, "{}", e.message().len());
    let huge = "p".repeat(60_000);
    let e = jobs.get_output(req(&huge, None)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().len() < 400, "{}", e.message().len());

    let mut att =
        v1::attestation_service_client::AttestationServiceClient::new(agent.channel().await);
    let e = att
        .challenge(v1::ChallengeRequest { nonce: vec![0; 31] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_info_health_reflection_metrics_work() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let ch = agent.channel().await;

    let info = v1::provider_service_client::ProviderServiceClient::new(ch.clone())
        .info(v1::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.tee, v1::TeeKind::Simulated as i32);
    assert_eq!(info.agent_public_key.len(), 32);
    assert!(info.modes.contains(&(v1::EvidenceMode::AttestedKey as i32)));
    assert!(info.modes.contains(&(v1::EvidenceMode::FreshQuote as i32)));
    assert_eq!(info.workloads, ["process"]);
    assert_eq!(info.evidence_digest.len(), 32);
    assert_eq!(info.measurement.len(), 48);

    let nonce = [0x5a; 32];
    let c = v1::attestation_service_client::AttestationServiceClient::new(ch.clone())
        .challenge(v1::ChallengeRequest {
            nonce: nonce.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let bundle = EvidenceBundle::from_bytes(&c.evidence_bundle).unwrap();
    assert_eq!(bundle.nonce, nonce);
    assert_eq!(bundle.agent_key.to_vec(), info.agent_public_key);
    assert_eq!(c.agent_public_key, info.agent_public_key);
    assert_eq!(c.evidence_digest, bundle.digest(&AwsLc).to_vec());
    assert_eq!(c.tee, v1::TeeKind::Simulated as i32);

    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let h = HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: "sigil.v1.JobService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.status, ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("{resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "sigil.v1.JobService",
        "sigil.v1.AttestationService",
        "sigil.v1.ProviderService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }

    // One job so the counters move, then scrape.
    let mut jobs = agent.jobs().await;
    let id = job_id("metrics");
    jobs.submit(signed(&buyer(), &shell_job(id, "true")))
        .await
        .unwrap();
    wait_final(&mut jobs, id).await;
    let mut s = std::net::TcpStream::connect(agent.metrics_addr()).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_jobs{state=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_submissions_total{result=\"created\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_evidence_seconds_count{kind=\"attested_key\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_evidence_seconds_count{kind=\"challenge\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_job_duration_seconds_count{outcome=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sigil_agent_receipt_seconds_count 1"),
        "{text}"
    );
    // The signed submission was verified, alone or in a batch.
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert!(
        counter("sigil_agent_signatures_inline_total")
            + counter("sigil_agent_signatures_batched_total")
            >= 1
    );
    assert_eq!(counter("sigil_agent_signature_batch_fallbacks_total"), 0);
    // The job's writes went through the store journal; the store was checkpointed at start.
    assert!(counter("sigil_agent_store_journal_frames_total") >= 1);
    assert!(counter("sigil_agent_store_checkpoints_total") >= 1);
    assert_eq!(counter("sigil_agent_store_replayed_writes_total"), 0);
    // The attested-start line deployment tooling waits for
    // (`attested:? tee=... measurement=<hex> key=<hex>`).
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("attested tee="))
        .unwrap_or_else(|| panic!("{log}"));
    let rest = &line[line.find("attested tee=").unwrap()..];
    let fields: Vec<&str> = rest.split(' ').collect();
    assert_eq!(fields[1], "tee=simulated", "{line}");
    assert_eq!(
        fields[2].strip_prefix("measurement=").unwrap().len(),
        96,
        "{line}"
    );
    assert_eq!(
        fields[3],
        format!("key={}", hex::encode(&info.agent_public_key)),
        "{line}"
    );
    // Logs carry no secrets (the token below is never configured here, but nothing
    // key-like may appear either).
    assert!(!agent.log().to_lowercase().contains("secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_works() {
    // The test's own TLS client needs a process-wide rustls provider (see the agent's main).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = state_dir();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("tls.pem");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_TLS__CERT", cert.to_str().unwrap()),
            ("SIGIL_AGENT_TLS__KEY", key.to_str().unwrap()),
        ],
    );
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ck.cert.pem()))
        .domain_name("localhost");
    let ch = tonic::transport::Channel::from_shared(format!("https://{}", agent.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let info = v1::provider_service_client::ProviderServiceClient::new(ch)
        .info(v1::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.agent_public_key.len(), 32);
    // Plaintext gRPC to the TLS port fails.
    let plain = tonic::transport::Channel::from_shared(agent.url())
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(
            v1::provider_service_client::ProviderServiceClient::new(ch)
                .info(v1::InfoRequest {})
                .await
                .is_err()
        );
    }
}

#[test]
fn plaintext_public_listen_rejects() {
    let dir = state_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil-agent"))
        .env_clear()
        .env("SIGIL_AGENT_STATE_DIR", dir.path())
        .env("SIGIL_AGENT_LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn container_job_works() {
    use std::os::unix::fs::PermissionsExt;
    let dir = state_dir();
    let bin = tempfile::tempdir().unwrap();
    // A stand-in for the docker CLI: records its arguments, writes an output into the
    // directory mounted at /sigil/out, and hangs for images tagged "slow".
    let cli = bin.path().join("docker");
    std::fs::write(
        &cli,
        "#!/bin/sh\n\
         echo \"$*\" >> \"$(dirname \"$0\")/args.log\"\n\
         [ \"$1\" = run ] || exit 0\n\
         case \"$*\" in *slow*) exec sleep 60;; esac\n\
         for a in \"$@\"; do case \"$a\" in *:/sigil/out:rw) out=\"${a%:/sigil/out:rw}\";; esac; done\n\
         printf from-container > \"$out/result\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_CONTAINER__ENGINE", "docker"),
            ("SIGIL_AGENT_CONTAINER__CLI", cli.to_str().unwrap()),
        ],
    );
    let info = v1::provider_service_client::ProviderServiceClient::new(agent.channel().await)
        .info(v1::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.workloads, ["process", "container"]);
    let mut jobs = agent.jobs().await;
    let image = format!("registry.example/model@sha256:{}", "ab".repeat(32));
    let container = |id: [u8; 32], args: &[&str]| v1::JobSpec {
        job_id: id.to_vec(),
        tier: 3,
        workload: Some(v1::job_spec::Workload::Container(v1::ContainerWorkload {
            image: image.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: [("MODEL".to_string(), "small".to_string())].into(),
        })),
        ..Default::default()
    };
    let id = job_id("container");
    jobs.submit(signed(&buyer(), &container(id, &["--prompt", "hi"])))
        .await
        .unwrap();
    let st = wait_final(&mut jobs, id).await;
    assert_eq!(
        state(&st),
        v1::JobState::Succeeded,
        "{st:?}\n{}",
        agent.log()
    );
    assert_eq!(st.outputs.len(), 1);
    let (data, _, _) = fetch_output(&mut jobs, id, v1::OutputKind::File, "result", 0).await;
    assert_eq!(data, b"from-container");
    let r = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id)),
        })
        .await
        .unwrap()
        .into_inner();
    let (code, out) = verify_receipt(
        dir.path(),
        &r.signed_receipt,
        &r.evidence_bundle,
        &["--allow-simulated"],
    );
    assert_eq!(code, 0, "{out}");

    let slow = job_id("container-slow");
    jobs.submit(signed(&buyer(), &container(slow, &["slow"])))
        .await
        .unwrap();
    wait_for(&mut jobs, slow, |s| state(s) == v1::JobState::Running).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let c = jobs
        .cancel(v1::CancelRequest {
            job_id: slow.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::CANCEL_DOMAIN, &slow)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&c), v1::JobState::Cancelled);

    let log = std::fs::read_to_string(bin.path().join("args.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let first = lines[0];
    let name = format!("sigil-{}", &hex::encode(id)[..16]);
    assert!(
        first.starts_with(&format!(
            "run --rm --name {name} --label sigil.job={}",
            hex::encode(id)
        )),
        "{first}"
    );
    for part in [
        "--pull missing",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--network none",
        "--env MODEL=small",
        "--env CUDA_VISIBLE_DEVICES=",
    ] {
        assert!(first.contains(part), "{part} missing from {first}");
    }
    assert!(first.ends_with(&format!("{image} --prompt hi")), "{first}");
    let slow_name = format!("sigil-{}", &hex::encode(slow)[..16]);
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("rm --force {slow_name}")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_without_tee_works() {
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[("SIGIL_AGENT_EVIDENCE__BACKEND", "none")]);
    let ch = agent.channel().await;
    let info = v1::provider_service_client::ProviderServiceClient::new(ch.clone())
        .info(v1::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.tee, v1::TeeKind::None as i32);
    assert_eq!(info.modes, [v1::EvidenceMode::None as i32]);
    assert!(info.evidence_digest.is_empty());
    let e = v1::attestation_service_client::AttestationServiceClient::new(ch)
        .challenge(v1::ChallengeRequest { nonce: vec![1; 32] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let mut jobs = agent.jobs().await;
    let e = jobs
        .submit(signed(&buyer(), &shell_job(job_id("no-tee-t3"), "true")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Tier 1 runs and gets a receipt with no evidence, checkable without a bundle.
    let id = job_id("no-tee-t1");
    let mut spec = shell_job(id, "printf 1 > \"$SIGIL_OUTPUT_DIR/one\"");
    spec.tier = 1;
    jobs.submit(signed(&buyer(), &spec)).await.unwrap();
    assert_eq!(
        state(&wait_final(&mut jobs, id).await),
        v1::JobState::Succeeded
    );
    let r = jobs
        .get_receipt(v1::GetReceiptRequest {
            job_id: id.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::RECEIPT_DOMAIN, &id)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.evidence_bundle.is_empty());
    let file = dir.path().join("t1.bin");
    std::fs::write(&file, &r.signed_receipt).unwrap();
    let out = std::process::Command::new(sigil_verify())
        .args(["receipt", "--receipt"])
        .arg(&file)
        .args(["--at", &time_now_rfc3339(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression test for issue 19: a full queue refuses `Submit` with `RESOURCE_EXHAUSTED` and
/// a retry hint, before anything is stored.
#[tokio::test(flavor = "multi_thread")]
async fn queue_full_rejects() {
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "1"),
            ("SIGIL_AGENT_API__MAX_QUEUED_JOBS", "1"),
            ("SIGIL_AGENT_API__RETRY_AFTER_MS", "1500"),
        ],
    );
    let mut jobs = agent.jobs().await;
    let running = job_id("queue-running");
    jobs.submit(signed(&buyer(), &shell_job(running, "sleep 60")))
        .await
        .unwrap();
    wait_for(&mut jobs, running, |s| state(s) == v1::JobState::Running).await;
    jobs.submit(signed(
        &buyer(),
        &shell_job(job_id("queue-waiting"), "true"),
    ))
    .await
    .unwrap();
    let refused = job_id("queue-refused");
    let e = jobs
        .submit(signed(&buyer(), &shell_job(refused, "true")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let hint: u64 = e
        .metadata()
        .get("retry-after-ms")
        .expect("a retry hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(hint >= 1500, "{hint}");
    let e = jobs
        .get_job(v1::GetJobRequest {
            job_id: refused.to_vec(),
            auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &refused)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "nothing was stored");
}

/// Regression test for issue 19: a request that does not decode is `INVALID_ARGUMENT`.
#[tokio::test(flavor = "multi_thread")]
async fn undecodable_request_rejects() {
    /// `GetJobRequest.job_id` is bytes; as a varint the request does not decode.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Mistyped {
        #[prost(uint64, tag = "1")]
        job_id: u64,
    }
    let dir = state_dir();
    let agent = Agent::start(dir.path(), &[]);
    let mut grpc = tonic::client::Grpc::new(agent.channel().await);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/sigil.v1.JobService/GetJob");
    let codec = tonic_prost::ProstCodec::<Mistyped, v1::JobStatus>::default();
    let e = grpc
        .unary(tonic::Request::new(Mistyped { job_id: 7 }), path, codec)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

/// Regression test for issue 19: per-peer rates (with a retry hint), the `Challenge` rate and
/// the bound on open streams hold over the wire.
#[tokio::test(flavor = "multi_thread")]
async fn rate_and_stream_limits_reject() {
    let dir = state_dir();
    let agent = Agent::start(
        dir.path(),
        &[
            ("SIGIL_AGENT_API__PEER_RATE", "1"),
            ("SIGIL_AGENT_API__PEER_BURST", "6"),
            ("SIGIL_AGENT_API__CHALLENGE_BURST", "1"),
            ("SIGIL_AGENT_API__MAX_OPEN_STREAMS", "1"),
        ],
    );
    let ch = agent.channel().await;
    let mut att = v1::attestation_service_client::AttestationServiceClient::new(ch.clone());
    let nonce = || v1::ChallengeRequest { nonce: vec![1; 32] };
    att.challenge(nonce()).await.unwrap();
    let e = att.challenge(nonce()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.metadata().get("retry-after-ms").is_some());

    // One open stream at most: a second Watch is refused while the first is open.
    let mut jobs = v1::job_service_client::JobServiceClient::new(ch.clone());
    let id = job_id("limits-stream");
    jobs.submit(signed(&buyer(), &shell_job(id, "sleep 30")))
        .await
        .unwrap();
    let watch = || v1::WatchRequest {
        job_id: id.to_vec(),
        auth: Some(request_auth(&buyer(), sigil_proto::STATUS_DOMAIN, &id)),
    };
    let open = jobs.watch(watch()).await.unwrap();
    let e = jobs.watch(watch()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    drop(open);

    // The peer's burst is spent by now (6 calls): the next calls are refused with a hint.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = v1::provider_service_client::ProviderServiceClient::new(ch.clone())
            .info(v1::InfoRequest {})
            .await
        {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the peer rate refuses");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let hint: u64 = e
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1_000).contains(&hint), "{hint}");
}
