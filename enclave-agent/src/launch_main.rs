//! `sigil-launch`: the launcher of isolated jobs as a binary of its own (see
//! `enclave_agent::workload::isolate::launch`). The agent uses it when it is installed beside
//! `sigil-agent`; it starts in a fraction of the agent's own start-up time (a small
//! executable to map and relocate), which is most of the cost isolation adds to a job.
//! Without it the agent runs itself as `sigil-agent --sigil-launch`, with the same effect.

fn main() -> std::process::ExitCode {
    enclave_agent::workload::isolate::launch::main()
}
