//! Job specs built by `arbitrary` on the shape of `sigil.v1.JobSpec`: ids, keys and
//! commitments of the right length or not, paths made of a few names, `.`, `..`, empty and
//! over-long components, variables reserved or not, pinned and almost-pinned images, lists
//! around the caps; validated for an agent whose limits, capabilities and clock are fuzzed
//! too, or for the raw target's two agents. The fuzzer spends its time in the
//! validation's rules instead of in protobuf syntax; the promises are the raw target's.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sigil_job_spec::{
    Capabilities, Evidence, MAX_ARG_BYTES, MAX_ARGS, MAX_INPUTS, MAX_SECRETS, SpecLimits,
};
use sigil_job_spec_fuzz::{AGENT_KEY, Agent, agents, check_spec_bytes};
use sigil_proto::v1;

const NAMES: &[&str] = &[
    "a", "b", "in", "data.bin", "x y", "é", "-", "..a", ".hidden",
];
const VARS: &[&str] = &[
    "PATH",
    "HOME",
    "A",
    "SIGIL_JOB_ID",
    "SIGIL_",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "sigil_x",
    "A=B",
    "",
];

fn pick(list: &[&str], i: u8) -> String {
    list[usize::from(i) % list.len()].to_owned()
}

/// 32 bytes, another length, or nothing.
#[derive(Arbitrary, Debug)]
enum Key {
    Empty,
    Agent,
    Bytes([u8; 32]),
    Other(Vec<u8>),
}

impl Key {
    fn bytes(self) -> Vec<u8> {
        match self {
            Self::Empty => Vec::new(),
            Self::Agent => AGENT_KEY.to_vec(),
            Self::Bytes(b) => b.to_vec(),
            Self::Other(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PathPart {
    Name(u8),
    Dot,
    DotDot,
    Empty,
    Long(u16),
    Nul,
    Raw(String),
}

/// A path: an optional leading `/`, then parts joined by `/`.
#[derive(Arbitrary, Debug)]
struct PathSpec {
    absolute: bool,
    parts: Vec<PathPart>,
    /// Repeats the parts this many times (deep paths).
    repeat: u8,
}

impl PathSpec {
    fn build(self) -> String {
        let parts: Vec<String> = self
            .parts
            .into_iter()
            .map(|p| match p {
                PathPart::Name(i) => pick(NAMES, i),
                PathPart::Dot => ".".into(),
                PathPart::DotDot => "..".into(),
                PathPart::Empty => String::new(),
                PathPart::Long(n) => "n".repeat(usize::from(n % 300)),
                PathPart::Nul => "a\0b".into(),
                PathPart::Raw(s) => s,
            })
            .collect();
        let one = parts.join("/");
        let times = usize::from(self.repeat % 80).max(1);
        let mut path = vec![one; times].join("/");
        if self.absolute {
            path.insert(0, '/');
        }
        path
    }
}

#[derive(Arbitrary, Debug)]
enum Text {
    Short(u8),
    Nul,
    Raw(String),
}

impl Text {
    fn build(self) -> String {
        match self {
            Self::Short(i) => pick(NAMES, i),
            Self::Nul => "a\0".into(),
            Self::Raw(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Var {
    Known(u8),
    Raw(String),
}

impl Var {
    fn build(self) -> String {
        match self {
            Self::Known(i) => pick(VARS, i),
            Self::Raw(s) => s,
        }
    }
}

/// Whether a list is filled up to around its cap: only for one value of a byte, so that most
/// runs stay small and fast (the fuzzer finds the value by the comparison).
#[derive(Arbitrary, Debug)]
struct Bulk {
    key: u8,
    /// Elements (or bytes) past the cap, less 8.
    around: u8,
}

const BULK: u8 = 0xb7;

impl Bulk {
    /// `cap - 8 + around % 16` when selected.
    fn count(&self, cap: usize) -> Option<usize> {
        (self.key == BULK).then(|| cap - 8 + usize::from(self.around % 16))
    }
}

/// Arguments: a few, or many (around the count cap), or one huge (around the byte cap).
#[derive(Arbitrary, Debug)]
struct Args {
    few: Vec<Text>,
    many: Bulk,
    huge: Bulk,
}

impl Args {
    fn build(self) -> Vec<String> {
        let mut args: Vec<String> = self.few.into_iter().map(Text::build).collect();
        if let Some(n) = self.many.count(MAX_ARGS) {
            args.resize(n, "a".into());
        }
        if let Some(n) = self.huge.count(MAX_ARG_BYTES / 1024) {
            args.push("h".repeat(n * 1024));
        }
        args
    }
}

#[derive(Arbitrary, Debug)]
enum Image {
    Pinned { name: u8, digest: [u8; 32] },
    Upper { digest: [u8; 32] },
    Short { digest: [u8; 31] },
    Raw(String),
}

impl Image {
    fn build(self) -> String {
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        match self {
            Self::Pinned { name, digest } => format!(
                "{}@sha256:{}",
                ["ghcr.io/a/b", "alpine:3", "-x", "", "a b", "a\u{7f}"][usize::from(name) % 6],
                hex(&digest)
            ),
            Self::Upper { digest } => format!("a@sha256:{}", hex(&digest).to_uppercase()),
            Self::Short { digest } => format!("a@sha256:{}", hex(&digest)),
            Self::Raw(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum WorkloadSpec {
    Process {
        argv: Args,
        env: Vec<(Var, Text)>,
    },
    Container {
        image: Image,
        args: Args,
        env: Vec<(Var, Text)>,
    },
}

fn env(vars: Vec<(Var, Text)>) -> std::collections::HashMap<String, String> {
    vars.into_iter()
        .map(|(k, v)| (k.build(), v.build()))
        .collect()
}

impl WorkloadSpec {
    fn build(self) -> v1::job_spec::Workload {
        match self {
            Self::Process { argv, env: e } => {
                v1::job_spec::Workload::Process(v1::ProcessWorkload {
                    argv: argv.build(),
                    env: env(e),
                })
            }
            Self::Container {
                image,
                args,
                env: e,
            } => v1::job_spec::Workload::Container(v1::ContainerWorkload {
                image: image.build(),
                args: args.build(),
                env: env(e),
            }),
        }
    }
}

/// Inputs: a few, then many distinct ones (around the count cap).
#[derive(Arbitrary, Debug)]
struct Inputs {
    few: Vec<(PathSpec, Vec<u8>)>,
    many: Bulk,
}

impl Inputs {
    fn build(self) -> Vec<v1::InputFile> {
        let mut inputs: Vec<v1::InputFile> = self
            .few
            .into_iter()
            .map(|(p, content)| v1::InputFile {
                path: p.build(),
                content,
            })
            .collect();
        let n = self.many.count(MAX_INPUTS).unwrap_or(0);
        inputs.extend((inputs.len()..n).map(|i| v1::InputFile {
            path: format!("f{i}"),
            content: Vec::new(),
        }));
        inputs
    }
}

#[derive(Arbitrary, Debug)]
enum SecretName {
    Path(PathSpec),
    Var(Var),
}

#[derive(Arbitrary, Debug)]
struct Secret {
    kind: i32,
    name: SecretName,
    commitment: Key,
}

/// Secrets: a few, then many distinct variables (around the cap).
#[derive(Arbitrary, Debug)]
struct Secrets {
    few: Vec<Secret>,
    many: Bulk,
}

impl Secrets {
    fn build(self) -> Vec<v1::SecretRef> {
        let mut secrets: Vec<v1::SecretRef> = self
            .few
            .into_iter()
            .map(|s| v1::SecretRef {
                // Mostly the two kinds the API defines.
                kind: match s.kind {
                    k @ 0..=2 => k,
                    k if k % 2 == 0 => 1,
                    k if k % 3 == 0 => 2,
                    k => k,
                },
                name: match s.name {
                    SecretName::Path(p) => p.build(),
                    SecretName::Var(v) => v.build(),
                },
                commitment: s.commitment.bytes(),
            })
            .collect();
        let n = self.many.count(MAX_SECRETS).unwrap_or(0);
        secrets.extend((secrets.len()..n).map(|i| v1::SecretRef {
            kind: v1::SecretKind::Env as i32,
            name: format!("S{i}"),
            commitment: vec![0; 32],
        }));
        secrets
    }
}

/// A value near an agent limit, a small one, or any.
#[derive(Arbitrary, Debug)]
enum Amount {
    Zero,
    Small(u16),
    Any(u64),
}

impl Amount {
    fn get(&self) -> u64 {
        match *self {
            Self::Zero => 0,
            Self::Small(n) => u64::from(n),
            Self::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Spec {
    job_id: Key,
    tier: u8,
    workload: Option<WorkloadSpec>,
    inputs: Inputs,
    limits: Option<[Amount; 4]>,
    evidence_mode: u8,
    gpu_count: u8,
    on_restart: u8,
    provider: Key,
    not_after_ms: Amount,
    buyer: Key,
    secrets: Secrets,
    output_recipient: Key,
}

#[derive(Arbitrary, Debug)]
struct AgentSpec {
    allow_process: bool,
    limits: [Amount; 7],
    has_tee: bool,
    gpus: u8,
    containers: bool,
    default_evidence: u8,
    now_ms: Amount,
}

impl AgentSpec {
    fn build(self) -> Agent {
        let [dw, mw, mc, dm, mm, dout, mout] = self.limits.map(|a| a.get());
        Agent {
            limits: SpecLimits {
                allow_process: self.allow_process,
                default_wall_time_ms: dw,
                max_wall_time_ms: mw,
                max_cpu_time_ms: mc,
                default_memory_bytes: dm,
                max_memory_bytes: mm,
                default_output_bytes: dout,
                max_output_bytes: mout,
            },
            caps: Capabilities {
                agent_key: AGENT_KEY,
                has_tee: self.has_tee,
                gpus: u32::from(self.gpus % 9),
                containers: self.containers,
                default_evidence: match self.default_evidence % 3 {
                    0 => Evidence::None,
                    1 => Evidence::AttestedKey,
                    _ => Evidence::FreshQuote,
                },
            },
            now_ms: self.now_ms.get(),
        }
    }
}

impl Spec {
    fn build(self) -> v1::JobSpec {
        v1::JobSpec {
            job_id: self.job_id.bytes(),
            // Mostly 1 to 3.
            tier: match self.tier {
                t @ 0..=4 => u32::from(t),
                t => u32::from(t % 3) + 1,
            },
            workload: self.workload.map(WorkloadSpec::build),
            inputs: self.inputs.build(),
            limits: self.limits.map(|[w, c, m, o]| v1::Limits {
                wall_time_ms: w.get(),
                cpu_time_ms: c.get(),
                memory_bytes: m.get(),
                output_bytes: o.get(),
            }),
            evidence_mode: i32::from(self.evidence_mode % 5),
            gpu_count: u32::from(self.gpu_count % 10),
            on_restart: i32::from(self.on_restart % 4),
            provider: self.provider.bytes(),
            not_after_ms: self.not_after_ms.get(),
            buyer: self.buyer.bytes(),
            secrets: self.secrets.build(),
            output_recipient: self.output_recipient.bytes(),
        }
    }
}

fuzz_target!(|input: (Spec, Option<AgentSpec>)| {
    let (spec, agent) = input;
    let bytes = spec.build().encode_to_vec();
    match agent {
        Some(agent) => check_spec_bytes(&bytes, &agent.build()),
        None => agents().iter().for_each(|a| check_spec_bytes(&bytes, a)),
    }
});
