#!/usr/bin/env python3
"""Load and abuse of a sigil-agent's gRPC API from a client the project did not write.

The client is Python `grpcio`, its stubs generated from proto/ by `grpcio-tools` at start.
It starts one agent (simulated evidence) on a fresh state directory and then:

  1. idle baseline: GetJob latency of a finished job with nothing else running;
  2. for each concurrency level (default 1, 8, 32, 64): that many workers, each submitting a
     signed job, watching it to its end and fetching its output (checked), for the level's
     share of --duration; a prober measures GetJob latency meanwhile (ratio to idle p50);
  3. abuse while a level runs: slow readers, abandoned Watch and GetOutput streams, an
     oversized Submit, bytes that are not protobuf, invalid UTF-8 in a string field, deeply
     nested and huge fields; each must be refused with a status (never kill or wedge the
     agent), and the agent must answer normally afterwards;
  4. every accepted job must end `SUCCEEDED` with its output.

With --mount-churn (root), a thread meanwhile mounts a tmpfs on a fresh directory, unmounts it
and removes the directory, over and over, as test suites and jobs with secrets do beside an
agent: a job must not fail for it (see docs/faults.md, "Jobs that failed under load").

Reports throughput, submit and end-to-end latency (p50, p99), the probe's latency under
load over idle, the agent's RSS over the run, and the abuse outcomes, as text and as JSON
(--json). Exit 1 if an accepted job did not complete, an abuse case was not refused as
expected, or the agent died.

Usage: agent_load.py --agent BIN [--duration SECS] [--levels 1,8,32,64] [--json FILE] [--mount-churn]
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUBMIT_DOMAIN = b"sigil.submit.v1\0"
STATUS_DOMAIN = b"sigil.status.v1\0"
OUTPUT_DOMAIN = b"sigil.output.v2\0"
KEY = Ed25519PrivateKey.from_private_bytes(b"\x42" * 32)
PUB = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
FINAL = None  # set of final JobState values, filled after the stubs load


def generate_stubs(out):
    """Generates the Python stubs of proto/sigil/v1/*.proto into `out` and imports them."""
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto/sigil/v1").glob("*.proto"))
    include = str(pathlib.Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", *protos])
    if rc != 0:
        sys.exit(f"agent_load: protoc failed ({rc})")
    sys.path.insert(0, str(out))
    global pb, cm, rpc, FINAL
    from sigil.v1 import common_pb2 as cm  # noqa: E402
    from sigil.v1 import jobs_pb2 as pb  # noqa: E402
    from sigil.v1 import jobs_pb2_grpc as rpc  # noqa: E402
    FINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}


def now_ms():
    return int(time.time() * 1000)


def auth(domain, job_id):
    at = now_ms()
    sig = KEY.sign(domain + job_id + struct.pack("<Q", at))
    return cm.RequestAuth(signature=cm.BuyerSignature(public_key=PUB, signature=sig), issued_at_ms=at)


def output_auth(job_id, kind, offset, path):
    at = now_ms()
    p = path.encode()
    m = OUTPUT_DOMAIN + job_id + struct.pack("<Q", at) + struct.pack("<i", kind) + struct.pack("<Q", offset) \
        + struct.pack("<I", len(p)) + p
    return cm.RequestAuth(signature=cm.BuyerSignature(public_key=PUB, signature=KEY.sign(m)), issued_at_ms=at)


def spec(script, job_id=None, **kw):
    job_id = job_id or os.urandom(32)
    s = pb.JobSpec(job_id=job_id, tier=3, process=pb.ProcessWorkload(argv=["/bin/sh", "-c", script]), **kw)
    return job_id, s.SerializeToString()


def submit_request(spec_bytes):
    sig = KEY.sign(hashlib.sha256(SUBMIT_DOMAIN + spec_bytes).digest())
    return pb.SubmitRequest(spec=spec_bytes, signature=cm.BuyerSignature(public_key=PUB, signature=sig))


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Agent:
    """A sigil-agent process on a fresh state directory."""

    def __init__(self, binary, state):
        self.state = pathlib.Path(state)
        self.log = open(self.state / "agent.log", "ab")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SIGIL_AGENT_STATE_DIR": str(self.state),
            "SIGIL_AGENT_LISTEN": "127.0.0.1:0",
            "SIGIL_AGENT_METRICS_LISTEN": "127.0.0.1:0",
            "SIGIL_AGENT_EVIDENCE__BACKEND": "simulated",
            "SIGIL_AGENT_EVIDENCE__ALLOW_SIMULATED": "true",
            "SIGIL_AGENT_GPUS__ENABLED": "false",
            "SIGIL_AGENT_LOG__FILTER": "warn",
            # One client address drives everything: the per-peer rate would measure itself.
            "SIGIL_AGENT_API__PEER_RATE": "0",
            "SIGIL_AGENT_API__GLOBAL_RATE": "0",
            "SIGIL_AGENT_API__STREAM_IDLE_SECS": "5",
            "SIGIL_AGENT_JOBS__MAX_CONCURRENT": os.environ.get("SIGIL_LOAD_SLOTS", "8"),
        }
        if os.geteuid() != 0:
            env["SIGIL_AGENT_ISOLATION__MODE"] = "off"
        self.proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        addr = self.state / "grpc.addr"
        t = time.time()
        while not addr.exists() or not addr.read_text().strip():
            if self.proc.poll() is not None or time.time() - t > 60:
                sys.exit(f"agent_load: the agent did not start:\n{(self.state / 'agent.log').read_text()[-3000:]}")
            time.sleep(0.05)
        self.addr = addr.read_text().strip()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def private_copy(binary, into):
    """The agent, and the `sigil-launch` beside it, copied into `into`: a build in the same
    target directory during the run replaces those files, and an isolated job started while
    the launcher is being replaced fails to start (the agent takes the launcher beside its
    own executable)."""
    into.mkdir()
    os.chmod(into, 0o755)
    src = pathlib.Path(binary)
    shutil.copy2(src, into / src.name)
    if (src.parent / "sigil-launch").is_file():
        shutil.copy2(src.parent / "sigil-launch", into / "sigil-launch")
    return str(into / src.name)


def memory_cgroups():
    """Memory cgroups on the machine, dying ones included (`/proc/cgroups`); None without."""
    try:
        for line in open("/proc/cgroups"):
            f = line.split()
            if f and f[0] == "memory":
                return int(f[2])
    except (OSError, ValueError, IndexError):
        return None
    return None


class MountChurn(threading.Thread):
    """Mounts a 1 MiB tmpfs on a fresh directory, waits 20 ms, unmounts it and removes the
    directory, over and over: what test suites and the private directories of jobs with
    secrets do on a machine running an agent (see docs/faults.md, "Jobs that failed under
    load"). Needs root."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.base, self.count, self.error, self.stop = base, 0, None, threading.Event()
        base.mkdir()

    def run(self):
        while not self.stop.is_set():
            d = self.base / f"d{self.count}"
            try:
                d.mkdir()
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(d)], check=True,
                               capture_output=True)
                time.sleep(0.02)
                subprocess.run(["umount", str(d)], check=True, capture_output=True)
                d.rmdir()
            except (OSError, subprocess.CalledProcessError) as e:
                self.error = f"{e} {getattr(e, 'stderr', b'') or b''!r}"
                return
            self.count += 1

    def end(self):
        self.stop.set()
        self.join()


def channel(addr):
    """A channel on its own connection (grpcio shares one between equal channels otherwise)."""
    return grpc.insecure_channel(addr, options=[
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.use_local_subchannel_pool", 1),
    ])


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.submit_ms, self.e2e_ms, self.accepted, self.busy, self.errors = [], [], [], 0, []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if isinstance(getattr(self, k), list):
                    getattr(self, k).append(v)
                else:
                    setattr(self, k, getattr(self, k) + v)


def run_job(stub, stats, script="printf %s > \"$SIGIL_OUTPUT_DIR/o\"", check=True):
    """Submits one job (retrying refusals for load), watches it to its end, checks its output."""
    tag = os.urandom(6).hex()
    job_id, sb = spec(script % tag if "%s" in script else script)
    req = submit_request(sb)
    t0 = time.perf_counter()
    while True:
        try:
            stub.Submit(req, timeout=60)
            break
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                stats.add(busy=1)
                hint = dict(e.trailing_metadata() or ()).get("retry-after-ms", "200")
                time.sleep(min(int(hint), 2000) / 1000 * random.uniform(0.5, 1.0))
                continue
            stats.add(errors=f"submit: {e.code().name}: {e.details()}")
            return
    t1 = time.perf_counter()
    stats.add(submit_ms=(t1 - t0) * 1000, accepted=job_id)
    state, reason = None, ""
    for ev in stub.Watch(pb.WatchRequest(job_id=job_id, auth=auth(STATUS_DOMAIN, job_id)), timeout=300):
        state, reason = ev.status.state, ev.status.reason
        if state in FINAL:
            break
    stats.add(e2e_ms=(time.perf_counter() - t0) * 1000)
    if not check:
        return
    if state != pb.JOB_STATE_SUCCEEDED:
        stats.add(errors=f"job {job_id.hex()} ended {pb.JobState.Name(state) if state else state}: {reason}")
        return
    kind = pb.OUTPUT_KIND_FILE
    data = b"".join(c.data for c in stub.GetOutput(pb.GetOutputRequest(
        job_id=job_id, kind=kind, path="o", offset=0, auth=output_auth(job_id, kind, 0, "o")), timeout=60))
    if data != tag.encode():
        stats.add(errors=f"job {job_id.hex()[:12]}: output {data[:20]!r}")


class Prober(threading.Thread):
    """GetJob of one finished job every 20 ms: the latency a reader sees."""

    def __init__(self, addr, job_id):
        super().__init__(daemon=True)
        self.stub = rpc.JobServiceStub(channel(addr))
        self.job_id, self.ms, self.stop = job_id, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                self.stub.GetJob(pb.GetJobRequest(job_id=self.job_id, auth=auth(STATUS_DOMAIN, self.job_id)), timeout=30)
                self.ms.append((time.perf_counter() - t) * 1000)
            except grpc.RpcError:
                pass
            self.stop.wait(0.02)


def probe_idle(addr, job_id, n=200):
    stub = rpc.JobServiceStub(channel(addr))
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        stub.GetJob(pb.GetJobRequest(job_id=job_id, auth=auth(STATUS_DOMAIN, job_id)), timeout=30)
        ms.append((time.perf_counter() - t) * 1000)
        time.sleep(0.005)
    return ms


def raw_call(ch, method, payload):
    """Calls `method` with `payload` as the request's bytes (no protobuf encoding)."""
    f = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        f(payload, timeout=30)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload=b""):
    key = varint(num << 3 | wire)
    return key + (varint(len(payload)) + payload if wire == 2 else payload)


def abuse(agent, big_job):
    """Each case: what was sent, the status it got, whether that is what it should get."""
    ch = channel(agent.addr)
    stub = rpc.JobServiceStub(ch)
    results = []

    def case(name, got, ok):
        results.append({"case": name, "status": got, "ok": bool(ok and agent.alive())})

    # Oversized Submit (above jobs.max_request_bytes, 16 MiB by default).
    _, sb = spec("true", inputs=[pb.InputFile(path="big", content=b"\0" * (17 << 20))])
    try:
        stub.Submit(submit_request(sb), timeout=60)
        got = "OK"
    except grpc.RpcError as e:
        got = e.code().name
    case("oversized Submit (17 MiB)", got, got in ("RESOURCE_EXHAUSTED", "OUT_OF_RANGE"))
    # Bytes that are not protobuf.
    got = raw_call(ch, "/sigil.v1.JobService/Submit", b"\xff" * 64)
    case("Submit of bytes that are not protobuf", got, got in ("INVALID_ARGUMENT", "INTERNAL"))
    got = raw_call(ch, "/sigil.v1.JobService/GetJob", os.urandom(4096))
    case("GetJob of random bytes", got, got in ("INVALID_ARGUMENT", "INTERNAL", "UNAUTHENTICATED"))
    # Invalid UTF-8 in GetOutputRequest.path (field 3, a string).
    payload = field(1, 2, big_job) + field(2, 0, varint(1)) + field(3, 2, b"\xff\xfeo")
    got = raw_call(ch, "/sigil.v1.JobService/GetOutput", payload)
    case("invalid UTF-8 in a string field", got, got in ("INVALID_ARGUMENT", "INTERNAL"))
    # Invalid UTF-8 inside a signed spec (the argv string): the agent decodes the spec.
    inner = field(1, 2, os.urandom(32)) + field(2, 0, varint(3)) + field(3, 2, field(1, 2, b"/bin/\xff"))
    got_s = None
    try:
        stub.Submit(submit_request(inner), timeout=30)
        got_s = "OK"
    except grpc.RpcError as e:
        got_s = e.code().name
    case("invalid UTF-8 in a signed spec's argv", got_s, got_s == "INVALID_ARGUMENT")
    # Deeply nested unknown fields (200 levels) in a request.
    nested = b""
    for _ in range(200):
        nested = field(99, 2, nested)
    got = raw_call(ch, "/sigil.v1.JobService/GetJob", field(1, 2, big_job) + nested)
    case("200-level nested unknown field", got, got in ("INVALID_ARGUMENT", "INTERNAL", "UNAUTHENTICATED"))
    # Huge fields in a signed spec: 100 000 environment entries, a 4 MiB argument.
    _, sb = spec("true", job_id=os.urandom(32))
    s = pb.JobSpec.FromString(sb)
    for i in range(100_000):
        s.process.env[f"K{i}"] = "v"
    try:
        stub.Submit(submit_request(s.SerializeToString()), timeout=60)
        got = "OK"
    except grpc.RpcError as e:
        got = e.code().name
    case("spec with 100 000 env entries", got, got in ("INVALID_ARGUMENT", "OK"))
    s = pb.JobSpec(job_id=os.urandom(32), tier=3, process=pb.ProcessWorkload(argv=["/bin/true", "x" * (4 << 20)]))
    try:
        stub.Submit(submit_request(s.SerializeToString()), timeout=60)
        got = "OK"
    except grpc.RpcError as e:
        got = e.code().name
    case("spec with a 4 MiB argument", got, got in ("INVALID_ARGUMENT", "OK"))
    # Abandoned streams: 200 Watch and 50 GetOutput calls cancelled without reading, on a
    # connection of their own (the server closes a connection that resets streams in bulk,
    # and every call on it with it: hyper's rapid-reset guard).
    stub = rpc.JobServiceStub(channel(agent.addr))
    calls = []
    for _ in range(200):
        calls.append(stub.Watch(pb.WatchRequest(job_id=big_job, auth=auth(STATUS_DOMAIN, big_job)), timeout=60))
    kind = pb.OUTPUT_KIND_FILE
    for _ in range(50):
        calls.append(stub.GetOutput(pb.GetOutputRequest(job_id=big_job, kind=kind, path="big", offset=0,
                                                        auth=output_auth(big_job, kind, 0, "big")), timeout=60))
    time.sleep(0.5)
    for c in calls:
        c.cancel()
    case("250 streams opened and abandoned", "cancelled", True)
    # Slow readers: 16 GetOutput streams of an 8 MiB output, each reading one chunk, then
    # stalling 8 s (past api.stream_idle_secs, 5 s here), then reading on: the stream ends with
    # a status or reads to the end (what HTTP/2 flow control let through), the agent unheld.
    stub = rpc.JobServiceStub(channel(agent.addr))

    def slow(out):
        it = stub.GetOutput(pb.GetOutputRequest(job_id=big_job, kind=kind, path="big", offset=0,
                                                auth=output_auth(big_job, kind, 0, "big")), timeout=120)
        try:
            next(it)
            time.sleep(8)
            for _ in it:
                pass
            out.append("read to the end")
        except grpc.RpcError as e:
            out.append(e.code().name)
    outs = []
    threads = [threading.Thread(target=slow, args=(outs,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    case("16 slow readers (8 s stall)", ",".join(sorted(set(outs))), len(outs) == 16)
    # Afterwards the agent answers normally (on a fresh connection).
    stub = rpc.JobServiceStub(channel(agent.addr))
    st = stub.GetJob(pb.GetJobRequest(job_id=big_job, auth=auth(STATUS_DOMAIN, big_job)), timeout=30)
    case("GetJob after the abuse", pb.JobState.Name(st.state), st.state == pb.JOB_STATE_SUCCEEDED)
    return results


def level(agent, n, secs, stats_out, probe_job, during=None):
    stats = Stats()
    stop = time.time() + secs
    stubs = [rpc.JobServiceStub(channel(agent.addr)) for _ in range(max(1, (n + 31) // 32))]

    def worker(i):
        stub = stubs[i % len(stubs)]
        while time.time() < stop:
            try:
                run_job(stub, stats)
            except grpc.RpcError as e:
                stats.add(errors=f"{e.code().name}: {e.details()}")
    prober = Prober(agent.addr, probe_job)
    prober.start()
    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    extra = during() if during else None
    for t in threads:
        t.join()
    wall = time.time() - t0
    prober.stop.set()
    prober.join()
    done = len(stats.e2e_ms)
    stats_out.append({
        "concurrency": n, "seconds": round(wall, 1), "accepted": len(stats.accepted), "completed": done,
        "refused_busy": stats.busy, "errors": stats.errors[:10], "error_count": len(stats.errors),
        "jobs_per_sec": round(done / wall, 2),
        "submit_p50_ms": round(pct(stats.submit_ms, 50), 2), "submit_p99_ms": round(pct(stats.submit_ms, 99), 2),
        "e2e_p50_ms": round(pct(stats.e2e_ms, 50), 1), "e2e_p99_ms": round(pct(stats.e2e_ms, 99), 1),
        "probe_p50_ms": round(pct(prober.ms, 50), 3), "probe_p99_ms": round(pct(prober.ms, 99), 3),
    })
    return stats, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agent", required=True, help="the sigil-agent binary")
    ap.add_argument("--duration", type=float, default=600, help="seconds of load in all (split over the levels)")
    ap.add_argument("--levels", default="1,8,32,64")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--mount-churn", action="store_true",
                    help="meanwhile mount, unmount and remove tmpfs directories (root)")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sigil-load."))
    os.chmod(tmp, 0o755)
    (tmp / "stubs").mkdir()
    generate_stubs(tmp / "stubs")
    state = tmp / "state"
    state.mkdir()
    os.chmod(state, 0o755)
    agent = Agent(private_copy(args.agent, tmp / "bin"), state)
    churn = MountChurn(tmp / "churn") if args.mount_churn else None
    try:
        if churn:
            churn.start()
        run(args, levels, tmp, agent, churn)
    finally:
        if churn:
            churn.end()
        agent.stop()


def run(args, levels, tmp, agent, churn):
    rss = []
    sampling = threading.Event()

    def sample():
        t0 = time.time()
        while not sampling.is_set():
            r = rss_kib(agent.proc.pid)
            if r:
                rss.append((round(time.time() - t0, 1), r))
            sampling.wait(1)
    threading.Thread(target=sample, daemon=True).start()

    stub = rpc.JobServiceStub(channel(agent.addr))
    warm = Stats()
    for _ in range(5):
        run_job(stub, warm)
    probe_job = warm.accepted[0]
    big_stats = Stats()
    run_job(stub, big_stats, script="head -c 8388608 /dev/urandom > \"$SIGIL_OUTPUT_DIR/big\"; printf %s > \"$SIGIL_OUTPUT_DIR/o\"")
    big_job = big_stats.accepted[0]
    idle = probe_idle(agent.addr, probe_job)
    rss_start = rss_kib(agent.proc.pid)
    memcg_start = memory_cgroups()

    figures, accepted, abuse_results = [], list(warm.accepted), []
    secs = args.duration / len(levels)
    for i, n in enumerate(levels):
        # The abuse runs during the second level (under load, not alone).
        during = (lambda: abuse(agent, big_job)) if i == min(1, len(levels) - 1) else None
        st, extra = level(agent, n, secs, figures, probe_job, during)
        accepted += st.accepted
        if extra:
            abuse_results = extra
        figures[-1]["probe_p50_over_idle"] = round(figures[-1]["probe_p50_ms"] / pct(idle, 50), 2)
        figures[-1]["rss_mib_after"] = round((rss_kib(agent.proc.pid) or 0) / 1024, 1)
        figures[-1]["memory_cgroups_after"] = memory_cgroups()
        print(f"level {n:>3}: {json.dumps(figures[-1])}", flush=True)

    # Every accepted job ended SUCCEEDED (checked once more from the store, after the load).
    def final_state(job_id):
        s = stub.GetJob(pb.GetJobRequest(job_id=job_id, auth=auth(STATUS_DOMAIN, job_id)), timeout=60)
        return job_id, s.state

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        unfinished = [(j.hex()[:12], pb.JobState.Name(st)) for j, st in pool.map(final_state, accepted)
                      if st != pb.JOB_STATE_SUCCEEDED]
    sampling.set()
    if churn:
        churn.end()
    rss_end = rss_kib(agent.proc.pid)
    alive = agent.alive()
    agent.stop()
    peak = max(r for _, r in rss) if rss else None
    report = {
        "duration_s": args.duration,
        "idle_probe_p50_ms": round(pct(idle, 50), 3), "idle_probe_p99_ms": round(pct(idle, 99), 3),
        "levels": figures,
        "accepted_jobs": len(accepted), "not_succeeded": unfinished[:10], "not_succeeded_count": len(unfinished),
        "rss_mib": {"after_warmup": round(rss_start / 1024, 1), "peak": round(peak / 1024, 1),
                    "end": round((rss_end or 0) / 1024, 1)},
        "rss_samples": rss[:: max(1, len(rss) // 60)],
        # Machine-wide, dying ones included: a job's memory cgroup kept alive after its end
        # shows here (the kernel has 65 535 ids; at the limit no job cgroup can be made).
        "memory_cgroups": {"after_warmup": memcg_start, "end": memory_cgroups()},
        "abuse": abuse_results,
        "agent_alive": alive,
        "mounts_churned": churn.count if churn else None,
    }
    print(f"idle GetJob p50 {report['idle_probe_p50_ms']} ms, p99 {report['idle_probe_p99_ms']} ms")
    print(f"{'conc':>4} {'jobs/s':>7} {'submit p50/p99 ms':>18} {'e2e p50/p99 ms':>16} {'GetJob p50 / idle':>18} {'busy':>6} {'errors':>6}")
    for f in figures:
        print(f"{f['concurrency']:>4} {f['jobs_per_sec']:>7} {f['submit_p50_ms']:>8}/{f['submit_p99_ms']:<9} "
              f"{f['e2e_p50_ms']:>7}/{f['e2e_p99_ms']:<8} {f['probe_p50_over_idle']:>18} {f['refused_busy']:>6} {f['error_count']:>6}")
    for a in abuse_results:
        print(f"abuse: {'ok ' if a['ok'] else 'BAD'} {a['case']}: {a['status']}")
    print(f"RSS MiB: after warm-up {report['rss_mib']['after_warmup']}, peak {report['rss_mib']['peak']}, end {report['rss_mib']['end']}")
    print(f"memory cgroups on the machine: after warm-up {memcg_start}, after each level "
          f"{[f['memory_cgroups_after'] for f in figures]}, end {report['memory_cgroups']['end']}")
    if churn:
        print(f"mount churn: {churn.count} tmpfs mounted, unmounted and their directories removed"
              + (f"; stopped: {churn.error}" if churn.error else ""))
    print(f"accepted {len(accepted)} jobs, {len(unfinished)} not succeeded; agent alive at the end: {alive}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    errors = sum(f["error_count"] for f in figures)
    bad = [a for a in abuse_results if not a["ok"]]
    if unfinished or errors or bad or not alive or (churn and churn.error):
        for f in figures:
            for e in f["errors"]:
                print(f"error: {e}")
        sys.exit(f"agent_load: {len(unfinished)} jobs not succeeded, {errors} errors, {len(bad)} abuse cases "
                 f"not refused as expected, alive={alive}; the agent's state and log are kept in {tmp / 'state'}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
