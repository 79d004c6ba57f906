//! What the job-spec targets share: the agents a spec is validated for (default and tight
//! limits), and the promises of `sigil_job_spec::validate`, asserted on every spec it accepts.
//!
//! A fuzz target fails on a panic in validation, on an accepted spec that breaks a promise,
//! and on a decoded message that does not survive re-encoding.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use prost::Message;
use sigil_job_spec::{
    Capabilities, ECHO_CHARS, Evidence, JobPlan, MAX_ARG_BYTES, MAX_ARGS, MAX_COMPONENT_BYTES,
    MAX_INPUTS, MAX_PATH_BYTES, MAX_PATH_DEPTH, MAX_SECRETS, SecretKind, SpecError, SpecLimits,
    Workload, validate,
};
use sigil_proto::v1;

/// The key of the agent every spec is validated for.
pub const AGENT_KEY: [u8; 32] = [0xa5; 32];

/// An agent a spec is validated for: its limits, what it offers, and its clock.
#[derive(Clone, Debug)]
pub struct Agent {
    /// The `[jobs]` limits.
    pub limits: SpecLimits,
    /// What it offers.
    pub caps: Capabilities,
    /// Its clock, ms since the Unix epoch.
    pub now_ms: u64,
}

/// The agents of the raw-bytes target: the default limits on a well-equipped agent (TEE,
/// GPUs, containers), and tight limits on one without a TEE or GPUs, later in time.
pub fn agents() -> [Agent; 2] {
    [
        Agent {
            limits: SpecLimits::default(),
            caps: Capabilities {
                agent_key: AGENT_KEY,
                has_tee: true,
                gpus: 8,
                containers: true,
                default_evidence: Evidence::FreshQuote,
            },
            now_ms: 0,
        },
        Agent {
            limits: SpecLimits {
                allow_process: true,
                default_wall_time_ms: 1_000,
                max_wall_time_ms: 60_000,
                max_cpu_time_ms: 30_000,
                default_memory_bytes: 1 << 20,
                max_memory_bytes: 64 << 20,
                default_output_bytes: 4_096,
                max_output_bytes: 1 << 20,
            },
            caps: Capabilities {
                agent_key: AGENT_KEY,
                has_tee: false,
                gpus: 0,
                containers: true,
                default_evidence: Evidence::AttestedKey,
            },
            now_ms: 1_750_000_000_000,
        },
    ]
}

/// The raw-bytes target: `data` as the agent's gRPC server gets it (a `SubmitRequest`,
/// decoded by prost as `sigil_proto::codec::StrictDecoder` does, its `spec` then validated as
/// admission does), and `data` as spec bytes themselves.
pub fn check_bytes(data: &[u8]) {
    if let Ok(req) = v1::SubmitRequest::decode(data) {
        let again = v1::SubmitRequest::decode(req.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&req), "SubmitRequest re-encoding");
        for a in agents() {
            check_spec_bytes(&req.spec, &a);
        }
    }
    for a in agents() {
        check_spec_bytes(data, &a);
    }
}

/// Validates `bytes` for `agent`: an error is typed and short; an accepted spec keeps every
/// promise; the decoded spec re-encodes to a spec that decodes the same and gets the same
/// answer.
pub fn check_spec_bytes(bytes: &[u8], agent: &Agent) {
    let result = validate(bytes, &agent.limits, &agent.caps, agent.now_ms);
    let spec = match v1::JobSpec::decode(bytes) {
        Ok(spec) => spec,
        Err(_) => {
            assert!(
                matches!(result, Err(SpecError::Decode(_))),
                "undecodable bytes were not a decode error: {result:?}"
            );
            return;
        }
    };
    let encoded = spec.encode_to_vec();
    let again = v1::JobSpec::decode(encoded.as_slice());
    assert_eq!(again.as_ref(), Ok(&spec), "JobSpec re-encoding");
    let result_again = validate(&encoded, &agent.limits, &agent.caps, agent.now_ms);
    match (&result, &result_again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the re-encoded spec gives another plan"),
        // The first bad environment variable found depends on the map's order: the same kind
        // of error is enough.
        (Err(a), Err(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "the re-encoded spec gives another error: {a} / {b}"
        ),
        (a, b) => panic!("the re-encoded spec gives another answer: {a:?} / {b:?}"),
    }
    match result {
        Ok(plan) => check_plan(&spec, &plan, agent),
        Err(e) => check_error(&e),
    }
}

/// Errors echo at most [`ECHO_CHARS`] characters of a request (`clip`), each written as at
/// most 10 (`{:?}` escapes a control character as `\u{11}`, at most `\u{10ffff}`): their
/// text stays short whatever the spec holds.
fn check_error(e: &SpecError) {
    let text = e.to_string();
    assert!(
        text.chars().count() <= 10 * (ECHO_CHARS + 1) + 200,
        "error text of {} characters: {text}",
        text.chars().count()
    );
}

fn reserved(name: &str) -> bool {
    name.starts_with("SIGIL_") || name == "CUDA_VISIBLE_DEVICES" || name == "NVIDIA_VISIBLE_DEVICES"
}

fn check_env_name(name: &str) {
    assert!(!name.is_empty(), "empty variable name");
    assert!(
        !name.contains('=') && !name.contains('\0'),
        "variable {name:?}"
    );
    assert!(!reserved(name), "reserved variable {name:?} accepted");
}

/// `name@sha256:<64 lower-case hex>`, checked on its own.
fn pinned(image: &str) -> bool {
    let Some(at) = image.rfind('@') else {
        return false;
    };
    let (name, digest) = (&image[..at], &image[at + 1..]);
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return false;
    };
    !name.is_empty()
        && !name.starts_with('-')
        && image.chars().all(|c| !c.is_whitespace() && !c.is_control())
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A path the plan gives a file: relative, made of plain names only (so it stays inside
/// whatever directory it is joined to), within the depth and length caps, and the spec's own
/// path without its `.` components.
fn check_path(raw: &str, path: &Path) {
    assert!(!raw.is_empty() && !raw.contains('\0'), "input path {raw:?}");
    assert!(
        raw.len() <= MAX_PATH_BYTES,
        "input path of {} bytes",
        raw.len()
    );
    assert!(
        path.is_relative() && !path.has_root(),
        "{path:?} is not relative"
    );
    let mut depth = 0;
    for c in path.components() {
        match c {
            Component::Normal(n) => assert!(n.len() <= MAX_COMPONENT_BYTES, "{path:?}"),
            other => panic!("{path:?} has the component {other:?}"),
        }
        depth += 1;
    }
    assert!(
        (1..=MAX_PATH_DEPTH).contains(&depth),
        "{path:?}: depth {depth}"
    );
    let dir = Path::new("/job/in");
    let joined = dir.join(path);
    assert!(
        joined.starts_with(dir) && joined != dir,
        "{path:?} leaves the input directory"
    );
    let expected: PathBuf = Path::new(raw)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    assert_eq!(path, expected.as_path(), "plan path of {raw:?}");
}

/// Every promise of `validate` about an accepted spec.
pub fn check_plan(spec: &v1::JobSpec, plan: &JobPlan, agent: &Agent) {
    let (limits, caps) = (&agent.limits, &agent.caps);
    // Identity, tier, provider, buyer, expiry.
    assert_eq!(plan.job_id.as_slice(), spec.job_id.as_slice());
    assert!((1..=3).contains(&plan.tier) && u32::from(plan.tier) == spec.tier);
    assert!(spec.provider.is_empty() || spec.provider == caps.agent_key);
    match plan.buyer {
        None => assert!(spec.buyer.is_empty()),
        Some(b) => assert_eq!(b.as_slice(), spec.buyer.as_slice()),
    }
    match plan.output_recipient {
        None => assert!(spec.output_recipient.is_empty()),
        Some(k) => assert_eq!(k.as_slice(), spec.output_recipient.as_slice()),
    }
    assert!(spec.not_after_ms == 0 || spec.not_after_ms >= agent.now_ms);

    // The workload: enabled on this agent, argv/args without NUL, the image pinned.
    let (args, env) = match (&plan.workload, &spec.workload) {
        (Workload::Process { argv }, Some(v1::job_spec::Workload::Process(p))) => {
            assert!(
                limits.allow_process,
                "process workload on an agent without them"
            );
            assert_eq!(argv, &p.argv);
            assert!(argv.first().is_some_and(|a| !a.is_empty()), "argv {argv:?}");
            (argv, &p.env)
        }
        (Workload::Container { image, args }, Some(v1::job_spec::Workload::Container(c))) => {
            assert!(
                caps.containers,
                "container workload on an agent without them"
            );
            assert_eq!((image, args), (&c.image, &c.args));
            assert!(pinned(image), "unpinned image {image:?} accepted");
            (args, &c.env)
        }
        (w, s) => panic!("plan workload {w:?} for spec workload {s:?}"),
    };
    assert!(args.iter().all(|a| !a.contains('\0')), "argument with NUL");
    assert!(
        args.len() + env.len() <= MAX_ARGS,
        "{} arguments",
        args.len()
    );
    let bytes: usize = args.iter().map(String::len).sum::<usize>()
        + env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    assert!(bytes <= MAX_ARG_BYTES, "{bytes} bytes of arguments");

    // The environment: the spec's, no variable reserved or malformed.
    let spec_env: BTreeMap<String, String> =
        env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(plan.env, spec_env);
    for (k, v) in &plan.env {
        check_env_name(k);
        assert!(!v.contains('\0'), "value of {k:?} with NUL");
    }

    // Inputs: the spec's contents in order, at paths inside the input directory.
    assert!(spec.inputs.len() <= MAX_INPUTS);
    assert_eq!(plan.inputs.len(), spec.inputs.len());
    for ((path, content), f) in plan.inputs.iter().zip(&spec.inputs) {
        check_path(&f.path, path);
        assert_eq!(content, &f.content);
    }

    // Secrets: the spec's, known kinds, each named once, variables neither reserved nor also
    // in clear, files at valid paths.
    assert!(spec.secrets.len() <= MAX_SECRETS);
    assert_eq!(plan.secrets.len(), spec.secrets.len());
    let mut names = BTreeSet::new();
    let mut files: Vec<PathBuf> = plan.inputs.iter().map(|(p, _)| p.clone()).collect();
    for (s, r) in plan.secrets.iter().zip(&spec.secrets) {
        assert_eq!(s.kind.wire() as i32, r.kind);
        assert_eq!(
            (&s.name, s.commitment.as_slice()),
            (&r.name, r.commitment.as_slice())
        );
        assert!(
            names.insert((s.kind, s.name.clone())),
            "secret {:?} twice",
            s.name
        );
        match s.kind {
            SecretKind::Env => {
                check_env_name(&s.name);
                assert!(
                    !plan.env.contains_key(&s.name),
                    "secret {:?} also in clear",
                    s.name
                );
            }
            SecretKind::InputFile => {
                let p: PathBuf = Path::new(&s.name)
                    .components()
                    .filter(|c| !matches!(c, Component::CurDir))
                    .collect();
                check_path(&s.name, &p);
                files.push(p);
            }
        }
    }
    // The files (inputs and secret files) can all be laid out: none repeats, none lies under
    // another.
    let set: BTreeSet<&Path> = files.iter().map(PathBuf::as_path).collect();
    assert_eq!(set.len(), files.len(), "an input path repeats: {files:?}");
    for f in &files {
        assert!(
            f.ancestors().skip(1).all(|a| !set.contains(a)),
            "{f:?} lies under another input file"
        );
    }

    // Limits: what the spec asked for, within the agent's ceilings, or the agent's defaults.
    let l = spec.limits.unwrap_or_default();
    let memory_default = match limits.default_memory_bytes {
        0 => limits.max_memory_bytes,
        d if limits.max_memory_bytes == 0 => d,
        d => d.min(limits.max_memory_bytes),
    };
    for (name, got, asked, default, max) in [
        (
            "wall",
            plan.limits.wall_time_ms,
            l.wall_time_ms,
            limits.default_wall_time_ms,
            limits.max_wall_time_ms,
        ),
        (
            "cpu",
            plan.limits.cpu_time_ms,
            l.cpu_time_ms,
            limits.max_cpu_time_ms,
            limits.max_cpu_time_ms,
        ),
        (
            "memory",
            plan.limits.memory_bytes,
            l.memory_bytes,
            memory_default,
            limits.max_memory_bytes,
        ),
        (
            "output",
            plan.limits.output_bytes,
            l.output_bytes,
            limits.default_output_bytes,
            limits.max_output_bytes,
        ),
    ] {
        if asked == 0 {
            assert_eq!(got, default, "{name} limit default");
        } else {
            assert_eq!(got, asked, "{name} limit");
            assert!(max == 0 || asked <= max, "{name} limit {asked} over {max}");
        }
    }

    // GPUs, evidence, restarts.
    assert!(plan.gpu_count == spec.gpu_count && plan.gpu_count <= caps.gpus);
    let mode = v1::EvidenceMode::try_from(spec.evidence_mode).expect("accepted evidence mode");
    let restart = v1::RestartPolicy::try_from(spec.on_restart).expect("accepted restart policy");
    assert_eq!(plan.rerun_on_restart, restart == v1::RestartPolicy::Rerun);
    if plan.tier == 3 {
        assert_ne!(plan.evidence, Evidence::None, "tier 3 without evidence");
    }
    if !caps.has_tee {
        assert_eq!(plan.evidence, Evidence::None, "evidence without a TEE");
    }
    match mode {
        v1::EvidenceMode::None => assert_eq!(plan.evidence, Evidence::None),
        v1::EvidenceMode::AttestedKey => assert_eq!(plan.evidence, Evidence::AttestedKey),
        v1::EvidenceMode::FreshQuote => assert_eq!(plan.evidence, Evidence::FreshQuote),
        v1::EvidenceMode::Unspecified if plan.tier == 3 => {
            assert_eq!(plan.evidence, caps.default_evidence)
        }
        v1::EvidenceMode::Unspecified => assert_eq!(plan.evidence, Evidence::None),
    }
}
