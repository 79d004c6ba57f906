#!/usr/bin/env bash
# Fault campaign (issue 21): real agents against the real local chain, killed and cut off at
# points of a job's life; checks that nothing funded is lost or paid twice.
#
# Cases (each a funded job; `kill -9` of the agent, then a restart on the same state):
#   running      killed while the job runs: the job ends `Failed` on restart (it is not run
#                again), no receipt, never settled, the escrow stays held for its refund
#   signed       killed when the job ended (receipt signed and stored, not yet submitted)
#   random       killed a random 0-1.5 s after the job ended (before, during or after the
#                receipt's submission)
#   submitted    killed when the agent logged the chain's acceptance of the receipt
#   settled      killed after the buyer saw the settlement event
#   rpc-loss     the agent's RPC connection is cut (a proxy in front of the chain stops) while
#                the job runs; its receipt waits; the RPC comes back, and (second half) the agent
#                is killed while the RPC is down and restarted with it
#   tier2-race   a 2-of-2 tier-2 job bound to two agents submitting at once; one is killed
#                right after its job ended
#   buyer-fund   the buyer's `sigil buyer fund` killed a random 0-2 s into the call, then retried
#   buyer-submit `sigil job submit` to the agent killed mid-call, then retried
# After every finished case: the job's state and attempts (run at most once), exactly one
# `job-settled` event for it, the on-chain record holds one receipt per provider, and the
# receipt the agent serves is byte-equal to the one on chain (no receipt signed twice with
# different contents), its output still served and checked against the receipt.
#
# Usage: scripts/faults.sh [--quick | --long N | --chain-load N]
#   --quick         kill-running, kill-signed, kill-random, rpc-loss, tier2-race, buyer-fund
#                   (default; what scripts/test.sh runs, about 4 minutes)
#   --long N        every case, then N jobs killed at random points (0-4 s after submission)
#   --chain-load N  no faults: three buyers (Bob, Eve, Ferdie) fund N tier-1 jobs each at
#                   once, two providers (Charlie, Dave) run and settle them; reports settled
#                   jobs per block and the fund-to-settle latency in blocks (chopsticks makes
#                   one block per extrinsic, so blocks count transactions, not time)
# Prints one line per case and a summary; exit 1 if any case failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
. "$root/scripts/lib.sh"

mode=quick
long_n=0
case "${1:---quick}" in
    --quick) ;;
    --long) mode=long; long_n="${2:?--long needs a count}" ;;
    --chain-load) mode=chain-load; long_n="${2:?--chain-load needs a count}" ;;
    *) echo "faults.sh: usage: scripts/faults.sh [--quick | --long N | --chain-load N]" >&2; exit 2 ;;
esac

work="$(mktemp -d -t sigil-faults.XXXXXX)"
chmod 755 "$work"
chain_port="${SIGIL_CHAIN_PORT:-$(free_port)}"
proxy_port="$(free_port)"
chain_url="ws://127.0.0.1:$chain_port"
url="ws://127.0.0.1:$proxy_port"
declare -A agent_pid=()
chain_pid=
proxy_pid=
cleanup() {
    for p in "${agent_pid[@]}" $proxy_pid $chain_pid; do kill "$p" 2>/dev/null || true; done
    for p in "${agent_pid[@]}" $proxy_pid $chain_pid; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# The chain workspace builds to chain/target unless SIGIL_CHAIN_TARGET_DIR says otherwise.
chain_sh() { CARGO_TARGET_DIR="${SIGIL_CHAIN_TARGET_DIR:-$root/chain/target}" bash chain/local-chain.sh "$@"; }

step "build: runtime + chain spec, sigil-agent, sigil"
chain_sh --build-only
cargo build --locked -p enclave-agent --features simulator --bin sigil-agent --bin sigil-launch
cargo build --locked -p sigil-chain-client --bin sigil
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
sigil() { "$bin/sigil" --url "$url" --reconnect-secs 60 "$@"; }

step "local chain on $chain_url, agents reach it through a proxy on $url"
# chopsticks on the chain spec just built (as chain/local-chain.sh runs it, without its
# second look at the build).
(cd chain && exec node_modules/.bin/chopsticks --genesis="$PWD/dev/sigil-dev.raw.json" \
    --build-block-mode=Instant --port="$chain_port") >"$work/chain.log" 2>&1 &
chain_pid=$!
wait_rpc "$chain_port" "$chain_pid" "$work/chain.log" 120

# A TCP proxy in front of the chain: stopping it cuts every RPC connection through it (the
# agents' and the CLI's), starting it again brings the chain back unchanged.
start_proxy() {
    python3 - "$proxy_port" "$chain_port" >>"$work/proxy.log" 2>&1 <<'PY' &
import asyncio, sys
listen, target = int(sys.argv[1]), int(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
    proxy_pid=$!
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && return 0
        sleep 0.1
    done
    fail "the RPC proxy did not start"
}
stop_proxy() {
    kill -9 "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=
}
start_proxy

BOB=$(sigil account address --suri //Bob | json account)
balance() { sigil account balance "$1" | json "$2"; }

# start_agent NAME: (re)starts the agent NAME on its state directory; its config is written
# the first time (`configure NAME SURI TIERS`).
configure() {
    local name=$1 suri=$2 tiers=$3 dir="$work/agent-$1"
    mkdir -p "$dir"
    chmod 755 "$dir"
    printf '%s\n' "$suri" >"$dir/account.suri"
    chmod 600 "$dir/account.suri"
    cat >"$dir/agent.toml" <<EOF
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
state_dir = "$dir"

[evidence]
backend = "simulated"
allow_simulated = true

[chain]
url = "$url"
account_key_file = "$dir/account.suri"
tiers = $tiers
retry_secs = 1

[chain.offer]
price = "1"
capacity = 8
bond = "10"
EOF
    if [ "$(id -u)" != 0 ]; then
        printf '\n[isolation]\nmode = "off"\n' >>"$dir/agent.toml"
    fi
}
start_agent() {
    local name=$1 dir="$work/agent-$1"
    rm -f "$dir/grpc.addr"
    "$bin/sigil-agent" --config "$dir/agent.toml" >>"$work/agent-$name.log" 2>&1 &
    agent_pid[$name]=$!
    for _ in $(seq 1 120); do [ -s "$dir/grpc.addr" ] && return 0; sleep 0.25; done
    tail -n 30 "$work/agent-$name.log" >&2
    fail "the $name agent did not start"
}
kill_agent() {
    local name=$1
    kill -9 "${agent_pid[$name]}" 2>/dev/null || true
    wait "${agent_pid[$name]}" 2>/dev/null || true
}
agent_url() { echo "http://$(cat "$work/agent-$1/grpc.addr")"; }
wait_offer() {
    local account; account=$(sigil account address --suri "$1" | json account)
    for _ in $(seq 1 90); do
        sigil provider show --account "$account" 2>/dev/null \
            | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("offer") else 1)' && return 0
        sleep 1
    done
    fail "$1 did not register and offer"
}

step "agents: Charlie (tiers 1 and 2) and Dave (tier 2), simulated TEEs"
configure charlie //Charlie "[1, 2]"
if [ "$mode" = chain-load ]; then configure dave //Dave "[1, 2]"; else configure dave //Dave "[2]"; fi
start_agent charlie
start_agent dave
wait_offer //Charlie
wait_offer //Dave
CHARLIE=$(sigil account address --suri //Charlie | json account)
DAVE=$(sigil account address --suri //Dave | json account)

# A restarted agent has a new key (made at start, in the TEE): it registers the account again
# (no open jobs) or rotates its key (jobs open: those stay bound under the old key, whose
# receipts, signed before the kill, still settle). Each case waits for it (docs/faults.md).
registrations() { grep -cE "re-registered on chain with this agent|rotated the account's receipt key to this agent" "$work/agent-$1.log" || true; }
wait_registered() { # NAME COUNT_BEFORE
    for _ in $(seq 1 120); do
        if [ "$(registrations "$1")" -gt "$2" ]; then
            wait_offer "//${1^}"
            return 0
        fi
        sleep 0.5
    done
    echo "faults: $1 did not re-register with its new key" >&2
    return 1
}
# Makes N blocks (chopsticks' dev_newBlock), e.g. to pass a job's deadline.
new_blocks() {
    curl -sf -H 'Content-Type: application/json' \
        -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"dev_newBlock\",\"params\":[{\"count\":$1}]}" \
        "http://127.0.0.1:$chain_port" >/dev/null
}
# Closes a job the agent failed (no receipt): past its deadline, Bob reclaims the escrow.
reclaim() { # LABEL JOB
    local held; held=$(balance "$BOB" held)
    new_blocks 26
    sigil buyer reclaim --suri //Bob --job "$2" >"$work/$1/reclaim.json" 2>&1 || return 1
    [ "$(( held - $(balance "$BOB" held) ))" = "$((2 * 10 ** 12))" ]
}

# Waits until LOG has a line with both the job id and PATTERN (at most SECS seconds).
wait_log() {
    local log=$1 job=$2 pattern=$3 secs=${4:-60}
    local hex=${job#0x}
    for _ in $(seq 1 $((secs * 20))); do
        grep -F "$hex" "$log" 2>/dev/null | grep -qF "$pattern" && return 0
        sleep 0.05
    done
    return 1
}

# new_job LABEL TIER SLEEP: writes and funds a job (Bob) that sleeps SLEEP seconds and writes
# one output; prints its id. Extra fund arguments follow.
new_job() {
    local label=$1 tier=$2 secs=$3; shift 3
    local dir="$work/$label"; mkdir -p "$dir"
    sigil job new --tier "$tier" --buyer-suri //Bob --out "$dir/spec.pb" -- \
        /bin/sh -c 'sleep "$1"; printf "fault case %s\n" "$0" > "$SIGIL_OUTPUT_DIR/result.txt"' "$label" "$secs" \
        >"$dir/new.json"
    local job; job=$(json job_id <"$dir/new.json")
    fund_once "$dir" "$job" --suri //Bob --job "$job" --spec "$dir/spec.pb" --tier "$tier" --price 2 \
        --deadline-blocks 25 --response-blocks 20 "$@"
    echo "$job"
}

# fund_once DIR JOB FUND-ARGS...: `sigil buyer fund`, retried while the chain does not hold
# the job (an RPC timeout may come after the transaction was included: then the chain's
# record says so and the retry is not sent). Writes DIR/fund.json with `bound`.
fund_once() {
    local dir=$1 job=$2 i; shift 2
    for i in 1 2 3; do
        sigil buyer fund "$@" >"$dir/fund.json" 2>"$dir/fund.err" && return 0
        if sigil audit job "$job" >"$dir/funded.json" 2>/dev/null; then
            python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"bound": (r.get("binding") or {}).get("providers"), "retried": True}))' \
                <"$dir/funded.json" >"$dir/fund.json"
            return 0
        fi
        echo "faults: funding $job failed (try $i): $(tail -c 200 "$dir/fund.json")" >&2
        sleep 2
    done
    fail "could not fund $job"
}
submit() { # LABEL JOB AGENT
    sigil job submit --agent "$(agent_url "$3")" --spec "$work/$1/spec.pb" --buyer-suri //Bob >"$work/$1/submit-$3.json"
}

passed=0
failed=0
declare -a outcomes=()
verdict() { # LABEL RESULT DETAIL
    outcomes+=("$(printf '%-14s %-4s %s' "$1" "$2" "$3")")
    if [ "$2" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    printf 'faults: %-14s %-4s %s\n' "$1" "$2" "$3"
}

# check_settled LABEL JOB AGENTS...: the job succeeded on each agent with one attempt, the
# chain settled it once with one receipt from each, and each agent's receipt is the one on
# chain; its output is served and checked against the receipt.
check_settled() {
    local label=$1 job=$2; shift 2
    local dir="$work/$label" name why=""
    for name in "$@"; do
        sigil job wait --agent "$(agent_url "$name")" --job "$job" --buyer-suri //Bob --timeout-secs 120 >"$dir/done-$name.json" \
            || why+="$name: job wait failed; "
        sigil job receipt --agent "$(agent_url "$name")" --job "$job" --buyer-suri //Bob \
            --receipt-out "$dir/receipt-$name.bin" --bundle-out "$dir/bundle-$name.bin" >/dev/null 2>&1 \
            || why+="$name: receipt not served; "
        sigil job output --agent "$(agent_url "$name")" --job "$job" --path result.txt --buyer-suri //Bob \
            --out "$dir/result-$name.txt" >/dev/null 2>&1 || why+="$name: output not served; "
    done
    sigil buyer watch --job "$job" --timeout-secs 120 >"$dir/events.jsonl" 2>"$dir/watch.err" || why+="no settlement seen; "
    sigil audit job "$job" >"$dir/record.json" || why+="no record; "
    why+=$(python3 - "$job" "$dir" "$@" <<'PY'
import json, sys, pathlib
job, d, names = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
bad = []
for n in names:
    try:
        done = json.loads((d / f"done-{n}.json").read_text())
    except Exception:
        continue
    if done.get("state") != "succeeded":
        bad.append(f"{n}: state {done.get('state')}")
events = [json.loads(l) for l in (d / "events.jsonl").read_text().splitlines() if l.strip()]
settled = [e for e in events if e.get("event") == "job-settled" and e.get("job_id") == job]
if len(settled) != 1:
    bad.append(f"{len(settled)} job-settled events")
try:
    rec = json.loads((d / "record.json").read_text())
except Exception:
    rec = {}
receipts = rec.get("receipts") or []
if len(receipts) != len(names):
    bad.append(f"{len(receipts)} receipts on chain for {len(names)} providers")
# The agent serves SCALE(SignedReceipt): the chain's body and signature, byte for byte.
for n in names:
    p = d / f"receipt-{n}.bin"
    if not p.exists():
        continue
    served = p.read_bytes().hex()
    if not any(r["body"][2:] in served and r["signature"][2:] in served for r in receipts):
        bad.append(f"{n}: served receipt differs from the chain's")
print("; ".join(bad), end="")
PY
)
    if [ -z "$why" ]; then
        verdict "$label" ok "settled once, $(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["receipts"]))' <"$dir/record.json") receipt(s), served receipt = chain's, output served"
    else
        verdict "$label" FAIL "$why"
    fi
}

# Kill points on Charlie, one job each.
kill_case() { # LABEL TRIGGER...
    local label=$1 trigger=$2 job
    job=$(new_job "$label" 1 "${SLEEP:-1}")
    submit "$label" "$job" charlie
    case "$trigger" in
        running) wait_log "$work/agent-charlie.log" "$job" "job accepted" 30 ;;
        signed) wait_log "$work/agent-charlie.log" "$job" "job ended" 60 ;;
        random) wait_log "$work/agent-charlie.log" "$job" "job ended" 60
            sleep "$(python3 -c 'import random; print(round(random.uniform(0, 1.5), 3))')" ;;
        submitted) wait_log "$work/agent-charlie.log" "$job" "receipt accepted on chain" 60 ;;
        settled) sigil buyer watch --job "$job" --timeout-secs 120 >/dev/null ;;
        after-submit) sleep "$(python3 -c 'import random; print(round(random.uniform(0, 4), 3))')" ;;
    esac || true
    local regs; regs=$(registrations charlie)
    kill_agent charlie
    start_agent charlie
    if [ "$trigger" = running ]; then
        local dir="$work/$label"
        sigil job wait --agent "$(agent_url charlie)" --job "$job" --buyer-suri //Bob --timeout-secs 60 >"$dir/done.json" || true
        sigil audit job "$job" >"$dir/record.json"
        local st at rc
        st=$(json state <"$dir/done.json")
        rc=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["receipts"] or []))' <"$dir/record.json")
        if [ "$st" = failed ] && [ "$rc" = 0 ] && reclaim "$label" "$job"; then
            verdict "$label" ok "ended failed after the restart (not run again), no receipt on chain, escrow reclaimed by the buyer after the deadline"
        else
            verdict "$label" FAIL "state $st, $rc receipts on chain, reclaim: $(cat "$dir/reclaim.json" 2>/dev/null | tail -n1)"
        fi
    else
        check_settled "$label" "$job" charlie
    fi
    wait_registered charlie "$regs" || verdict "$label-rereg" FAIL "no re-registration with the new key"
}

# Which outcomes a random kill may leave: a job killed while running fails (no receipt);
# otherwise it settles once.
random_case() {
    local label=$1 job
    job=$(new_job "$label" 1 1)
    submit "$label" "$job" charlie
    sleep "$(python3 -c 'import random; print(round(random.uniform(0, 4), 3))')"
    local regs; regs=$(registrations charlie)
    kill_agent charlie
    start_agent charlie
    local dir="$work/$label"
    sigil job wait --agent "$(agent_url charlie)" --job "$job" --buyer-suri //Bob --timeout-secs 60 >"$dir/done.json" || true
    if [ "$(json state <"$dir/done.json")" = failed ]; then
        sigil audit job "$job" >"$dir/record.json"
        local rc; rc=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["receipts"] or []))' <"$dir/record.json")
        if [ "$rc" = 0 ] && reclaim "$label" "$job"; then
            verdict "$label" ok "killed while running: failed, not run again, no receipt, escrow reclaimed"
        else
            verdict "$label" FAIL "failed with $rc receipts on chain, or no reclaim"
        fi
    else
        check_settled "$label" "$job" charlie
    fi
    wait_registered charlie "$regs" || verdict "$label-rereg" FAIL "no re-registration with the new key"
}

# chain_load N: three buyers fund N tier-1 jobs each at once; each job goes to the agent the
# chain bound; then every job's funding and settlement blocks are read from its record.
chain_load() {
    local per=$1 buyer pids=()
    local t0=$SECONDS
    for buyer in Bob Eve Ferdie; do
        (
            for i in $(seq 1 "$per"); do
                local dir="$work/load-$buyer-$i"; mkdir -p "$dir"
                sigil job new --tier 1 --buyer-suri "//$buyer" --out "$dir/spec.pb" -- \
                    /bin/sh -c 'printf ok > "$SIGIL_OUTPUT_DIR/result.txt"' >"$dir/new.json"
                local job; job=$(json job_id <"$dir/new.json")
                fund_once "$dir" "$job" --suri "//$buyer" --job "$job" --spec "$dir/spec.pb" --tier 1 --price 2 \
                    --deadline-blocks 2000 --response-blocks 1500
                local bound; bound=$(json bound.0 <"$dir/fund.json")
                local name=charlie; [ "$bound" = "$DAVE" ] && name=dave
                sigil job submit --agent "$(agent_url "$name")" --spec "$dir/spec.pb" --buyer-suri "//$buyer" >/dev/null
                echo "$job" >"$dir/job"
            done
        ) &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    local funded_s=$((SECONDS - t0))
    for dir in "$work"/load-*; do
        sigil buyer watch --job "$(cat "$dir/job")" --timeout-secs 300 >"$dir/events.jsonl"
        sigil audit job "$(cat "$dir/job")" >"$dir/record.json"
    done
    local wall=$((SECONDS - t0))
    python3 - "$work" "$funded_s" "$wall" <<'PY'
import json, pathlib, statistics, sys
work, funded_s, wall = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lat, funded, settled, by = [], [], [], {}
for d in sorted(work.glob("load-*")):
    r = json.loads((d / "record.json").read_text())
    f = r["job"]["funded_at"]
    s = max(x["submitted_at"] for x in r["receipts"])
    ev = [json.loads(l) for l in (d / "events.jsonl").read_text().splitlines() if l.strip()]
    assert sum(e.get("event") == "job-settled" for e in ev) == 1, d
    funded.append(f); settled.append(s); lat.append(s - f)
    p = r["receipts"][0]["provider"]; by[p] = by.get(p, 0) + 1
span = max(settled) - min(funded) + 1
q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
print(f"chain load: {len(lat)} jobs from 3 buyers, settled once each by {len(by)} providers {sorted(by.values())}")
print(f"  blocks {min(funded)}..{max(settled)} ({span} blocks): {len(lat) / span:.2f} settled jobs per block")
print(f"  fund-to-settle latency, blocks: p50 {q[49]:.0f}, p90 {q[89]:.0f}, max {max(lat)}, min {min(lat)}")
print(f"  wall: {funded_s} s to fund and submit all, {wall} s until all settled ({len(lat) / wall:.2f} jobs/s)")
PY
}

if [ "$mode" = chain-load ]; then
    step "chain load: 3 buyers x $long_n tier-1 jobs, providers Charlie and Dave"
    chain_load "$long_n"
    exit 0
fi

step "kill -9 of the agent at points of a job's life"
kill_case kill-running running
kill_case kill-signed signed
kill_case kill-random random
if [ "$mode" = long ]; then
    kill_case kill-submitted submitted
    kill_case kill-settled settled
fi

step "RPC loss while a receipt is in flight"
job=$(new_job rpc-loss 1 2)
submit rpc-loss "$job" charlie
stop_proxy
wait_log "$work/agent-charlie.log" "$job" "job ended" 60 || true
sleep 3
start_proxy
check_settled rpc-loss "$job" charlie
if [ "$mode" = long ]; then
job=$(new_job rpc-loss-kill 1 2)
submit rpc-loss-kill "$job" charlie
stop_proxy
wait_log "$work/agent-charlie.log" "$job" "job ended" 60 || true
regs=$(registrations charlie)
kill_agent charlie
start_proxy
start_agent charlie
check_settled rpc-loss-kill "$job" charlie
wait_registered charlie "$regs" || verdict rpc-loss-rereg FAIL "no re-registration with the new key"
fi

step "tier 2: two agents race their receipts for one job; one is killed after its job ended"
job=$(new_job tier2-race 2 1 --k 2 --n 2)
python3 -c '
import json, sys
b = sorted(json.load(sys.stdin)["bound"] or [])
sys.exit(0 if b == sorted(sys.argv[1:3]) else f"bound to {b}")' "$CHARLIE" "$DAVE" <"$work/tier2-race/fund.json" \
    || fail "the tier-2 job was not bound to Charlie and Dave"
submit tier2-race "$job" charlie &
p=$!
submit tier2-race "$job" dave
wait "$p"
wait_log "$work/agent-dave.log" "$job" "job ended" 60 || true
regs=$(registrations dave)
kill_agent dave
start_agent dave
check_settled tier2-race "$job" charlie dave
wait_registered dave "$regs" || verdict tier2-rereg FAIL "no re-registration with the new key"

step "the buyer's sigil interrupted mid-call, then retried"
dir="$work/buyer-fund"; mkdir -p "$dir"
sigil job new --tier 1 --buyer-suri //Bob --out "$dir/spec.pb" -- /bin/sh -c 'printf ok > "$SIGIL_OUTPUT_DIR/result.txt"' >"$dir/new.json"
job=$(json job_id <"$dir/new.json")
held_before=$(balance "$BOB" held)
"$bin/sigil" --url "$url" buyer fund --suri //Bob --job "$job" --spec "$dir/spec.pb" --tier 1 --price 2 --deadline-blocks 25 --response-blocks 20 >"$dir/fund-1.json" 2>&1 &
p=$!
sleep "$(python3 -c 'import random; print(round(random.uniform(0, 2), 3))')"
kill -9 "$p" 2>/dev/null || true
wait "$p" 2>/dev/null || true
# The buyer retries until the chain holds the job: not at all if the killed call landed (a
# retry racing its inclusion is refused as a duplicate, which fund_once takes as funded).
if sigil audit job "$job" >/dev/null 2>&1; then
    first="the killed call had landed; not sent again"
else
    first="the killed call had not landed (or not yet); retried"
    fund_once "$dir" "$job" --suri //Bob --job "$job" --spec "$dir/spec.pb" --tier 1 --price 2 \
        --deadline-blocks 25 --response-blocks 20
fi
held_after=$(balance "$BOB" held)
escrow=$((held_after - held_before))
# The submission to the agent, interrupted and retried (idempotent on the job id).
"$bin/sigil" --url "$url" job submit --agent "$(agent_url charlie)" --spec "$dir/spec.pb" --buyer-suri //Bob >/dev/null 2>&1 &
p=$!
sleep 0.05
kill -9 "$p" 2>/dev/null || true
wait "$p" 2>/dev/null || true
sigil job submit --agent "$(agent_url charlie)" --spec "$dir/spec.pb" --buyer-suri //Bob >"$dir/submit-charlie.json"
if [ "$escrow" = "$((2 * 10 ** 12))" ]; then
    verdict buyer-fund ok "escrow held once ($first)"
    check_settled buyer-fund "$job" charlie
else
    verdict buyer-fund FAIL "escrow moved by $escrow planck ($first)"
fi

if [ "$mode" = long ]; then
    step "long: $long_n jobs, the agent killed 0-4 s after each submission"
    for i in $(seq 1 "$long_n"); do
        random_case "long-$i"
    done
fi

step "summary"
printf '%s\n' "${outcomes[@]}"
echo "faults: $((passed + failed)) cases, $passed passed, $failed failed ($mode mode, ${SECONDS}s)"
[ "$failed" = 0 ]
