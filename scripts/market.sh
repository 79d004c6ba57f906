#!/usr/bin/env bash
# The main job: a local Sigil market, end to end, with the real components.
#
#   1. builds the runtime (WASM) and the chain spec, `sigil-agent` (with the simulated evidence
#      source: this machine has no TEE), `sigil` and `sigil-verify`;
#   2. starts the local chain (chopsticks executing the runtime, dev accounts funded in MINT);
#      Bob, the buyer, writes an attestation policy pinning the agent build he trusts (the
#      simulator's measurement of the `sigil-agent` executable, `sigil-verify measure
#      simulated`) and registers it on chain; an agent whose provider account is Charlie starts,
#      checks its own evidence against that policy and registers its attested key under it, with
#      evidence bound to the chain's registration nonce, verified by the runtime, and publishes
#      its offer (price, capacity, a 10 MINT bond held on Charlie); two more agents, Dave's and
#      Eve's, register and offer for tier 2;
#   3. for a tier-3 job and a tier-1 job: Bob writes the job spec and funds it (escrow held);
#      the chain binds Charlie's offer to it in the same transaction (nobody chooses the
#      provider), Bob submits the signed spec to the agent, the agent runs it, signs a receipt
#      bound to its evidence and submits it within the job's response window, the chain verifies
#      it and settles; Bob then checks the receipt offline with `sigil-verify receipt`, downloads the
#      output checked against the receipt's result commitment, and replays the job's on-chain
#      record with `sigil audit replay`;
#   4. a tier-2 job (2 of 3): the chain binds Charlie, Dave and Eve; Eve's agent answers
#      differently (the demonstration's faulty provider) and submits first; Charlie's and Dave's
#      matching receipts settle it and are paid, and a fifth of Eve's bond goes to Bob;
#   5. prints the balances that moved, and stops everything.
# While it runs, the market explorer (explorer/, once built: `npm ci && npm run build` there)
# is served on a local URL that the script prints, reading the local chain.
# Exit status 0 when every step did what it should.
#
# Usage: scripts/market.sh [--keep-running]
#   --keep-running  after the jobs settle, keep the chain, the agents and the explorer running
#                   until SIGTERM or Ctrl-C (exit status 0 then, when every step passed)
# SIGIL_CHAIN_PORT picks the chain's port (default 9944), SIGIL_EXPLORER_PORT the explorer's
# (default: a free one). Binaries are taken from $CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
keep_running=0
while [ $# -gt 0 ]; do
    case "$1" in
        --keep-running) keep_running=1; shift ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "market.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
port="${SIGIL_CHAIN_PORT:-9944}"
url="ws://127.0.0.1:$port"
work="$(mktemp -d -t sigil-market.XXXXXX)"
# Run as root, the agent runs workloads as an unprivileged user, who must reach their directories.
chmod 755 "$work"
. "$root/scripts/lib.sh"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

step "build: runtime + chain spec, sigil-agent, sigil, sigil-verify"
bash chain/local-chain.sh --build-only
cargo build --locked -p enclave-agent --features simulator --bin sigil-agent --bin sigil-launch
cargo build --locked -p sigil-chain-client --bin sigil
cargo build --locked -p attestation-verifier --bin sigil-verify
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
sigil() { "$bin/sigil" --url "$url" "$@"; }

step "local chain on $url"
SIGIL_CHAIN_PORT="$port" bash chain/local-chain.sh >"$work/chain.log" 2>&1 &
pids+=($!)
wait_rpc "$port" "${pids[0]}" "$work/chain.log" 120
sigil chain info | tee "$work/chain-info.json"

# The explorer: static files, served while the market runs (explorer/serve.mjs).
if [ -f explorer/dist/index.html ] && command -v node >/dev/null; then
    explorer_port="${SIGIL_EXPLORER_PORT:-$(free_port)}"
    node explorer/serve.mjs --dir explorer/dist --port "$explorer_port" --node "$url" >"$work/explorer.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$explorer_port/" >/dev/null 2>&1 && break; sleep 0.1; done
    echo "explorer: http://127.0.0.1:$explorer_port/ (the market as the chain records it; replay any job in the browser)"
else
    echo "explorer: not built (cd explorer && npm ci && npm run build), not served"
fi

# The dev accounts' addresses, derived from their keys (sr25519, the agent's default scheme).
CHARLIE=$(sigil account address --suri //Charlie | json account)
BOB=$(sigil account address --suri //Bob | json account)
balance() { sigil account balance "$1" | json "$2"; }

step "Bob's attestation policy: this sigil-agent build, simulated evidence"
"$bin/sigil-verify" measure simulated --agent "$bin/sigil-agent" --format policy >"$work/measure.toml"
cat "$work/measure.toml"
sigil policy new --base sigil.simulated.v1 --from "$work/measure.toml" --out "$work/policy.toml"
sigil policy register --suri //Bob --file "$work/policy.toml" >"$work/policy.json"
POLICY=$(json id <"$work/policy.json")
[ "$(sigil policy id --file "$work/policy.toml" | json id)" = "$POLICY" ] || fail "the policy id computed offline is not the chain's"
echo "policy $POLICY registered by Bob (deposit $(sigil policy show "$POLICY" | json deposit) planck held)"

# start_agent NAME SURI TIERS: an agent (simulated TEE) acting for the dev account SURI on
# the chain, offering TIERS at 1 MINT per job with a 10 MINT bond; waits until the chain lists
# its registration and offer (in $work/provider-NAME.json).
start_agent() {
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
policy = "$POLICY"
tiers = $tiers
retry_secs = 2

[chain.offer]
price = "1"
capacity = 2
bond = "10"
EOF
    if [ "$(id -u)" != 0 ]; then
        # Jobs are isolated (own user ids, cgroups, mount namespaces), which needs root;
        # without it the agent refuses to start unless told, as here, to run them unisolated.
        printf '\n[isolation]\nmode = "off"\n\n[jobs]\nallow_secrets_on_disk = true\n' >>"$dir/agent.toml"
        echo "market: not root: the $name agent runs jobs without isolation (development only)" >&2
    fi
    "$bin/sigil-agent" --config "$dir/agent.toml" >"$work/agent-$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 60); do [ -s "$dir/grpc.addr" ] && break; sleep 0.5; done
    [ -s "$dir/grpc.addr" ] || { cat "$work/agent-$name.log" >&2; fail "the $name agent did not start"; }
    python3 - "$name" "$work/agent-$name.log" <<'PY' || true
import json, sys
for line in open(sys.argv[2]):
    try:
        f = json.loads(line)
        f = f.get("fields", f)
    except ValueError:
        continue
    if f.get("message", "").startswith("jobs run isolated"):
        print(f"{sys.argv[1]}: jobs isolated: own user ids from {f.get('ids')}, {f.get('cgroup')}, mount namespace {'yes' if f.get('namespace') else 'no'}")
        break
PY
    local account; account=$(sigil account address --suri "$suri" | json account)
    local show="$work/provider-$name.json"
    offered() { python3 -c 'import json,sys; o=json.load(sys.stdin).get("offer"); sys.exit(0 if o else 1)' <"$show"; }
    for _ in $(seq 1 60); do
        sigil provider show --account "$account" >"$show" 2>/dev/null && offered && break
        sleep 1
    done
    offered || { cat "$work/agent-$name.log" >&2; fail "the $name agent did not register and offer"; }
    echo "$name: agent at http://$(cat "$dir/grpc.addr"), key $(json signing_key <"$show"), tiers $(python3 -c 'import json,sys; print(json.load(sys.stdin)["capabilities"]["tiers"])' <"$show"), offer $(python3 -c 'import json,sys; print(json.load(sys.stdin)["offer"])' <"$show") (planck), held $(balance "$account" held) planck (bond and storage deposits)"
}
agent_url() { echo "http://$(cat "$work/agent-$1/grpc.addr")"; }

step "agents: simulated TEEs; Charlie (tiers 1, 2, 3), Dave and Eve (tier 2), settling on $url"
start_agent charlie //Charlie "[1, 2, 3]"
start_agent dave //Dave "[2]"
start_agent eve //Eve "[2]"
agent=$(agent_url charlie)
DAVE=$(sigil account address --suri //Dave | json account)
EVE=$(sigil account address --suri //Eve | json account)

charlie_before=$(balance "$CHARLIE" free)
PRICE_MINT=5 # each job's price (1 MINT = 10^12 planck)

run_job() { # tier label fund-args...
    local tier=$1 label=$2; shift 2
    local dir="$work/$label"; mkdir -p "$dir"
    step "$label job: spec, fund (Bob) and bound by the chain, run (agent), settle (chain)"
    # The tier-3 job is confidential: its input is a secret (named in the spec only by a
    # commitment, sealed at submission to the key Charlie's verified evidence binds) and its
    # output comes back sealed to Bob.
    local secret=() sealing=()
    if [ "$tier" = 3 ]; then
        printf 'market-secret-%s' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/secret.txt"
        secret=(--secret-input "keys/secret.txt=$dir/secret.txt")
        sealing=(--seal-outputs)
    fi
    sigil job new --tier "$tier" --buyer-suri //Bob "${secret[@]}" "${sealing[@]}" --out "$dir/spec.pb" -- \
        /bin/sh -c 'printf "sigil %s job on %s\n" "$0" "$(uname -s)" > "$SIGIL_OUTPUT_DIR/result.txt"
            if [ -f "$SIGIL_INPUT_DIR/keys/secret.txt" ]; then
                printf "secret input: %s\n" "$(cat "$SIGIL_INPUT_DIR/keys/secret.txt")" >> "$SIGIL_OUTPUT_DIR/result.txt"
            fi' "$label" \
        >"$dir/new.json"
    local job; job=$(json job_id <"$dir/new.json")
    echo "job $job, spec hash $(json spec_hash <"$dir/new.json")"
    sigil buyer fund --suri //Bob --job "$job" --spec "$dir/spec.pb" --tier "$tier" --price "$PRICE_MINT" \
        --response-blocks 50 "$@" >"$dir/fund.json"
    echo "funded: $PRICE_MINT MINT held on Bob ($(balance "$BOB" held) held in all)"
    python3 -c 'import json,sys; b=json.load(sys.stdin)["bound"]; sys.exit(0 if b == [sys.argv[1]] else f"bound to {b}")' "$CHARLIE" <"$dir/fund.json" \
        || fail "the chain did not bind Charlie's offer to the $label job"
    echo "bound by the chain to Charlie's offer in the funding transaction"
    sigil job submit --agent "$agent" --spec "$dir/spec.pb" --buyer-suri //Bob "${secret[@]}" >"$dir/submit.json" \
        || { cat "$dir/submit.json" >&2; fail "the $label job was not submitted"; }
    if [ "$tier" = 3 ]; then
        echo "verified Charlie's agent before sending (fresh evidence under the job's policy): sealing key $(python3 -c 'import json,sys; print(json.load(sys.stdin)["verified_agent"]["sealing_key"])' <"$dir/submit.json")"
    fi
    sigil job wait --agent "$agent" --job "$job" --buyer-suri //Bob --timeout-secs 120 >"$dir/done.json"
    echo "ran: $(json state <"$dir/done.json"), wall $(json wall_ms <"$dir/done.json") ms"
    sigil buyer watch --job "$job" --timeout-secs 120 >"$dir/events.jsonl"
    # The last event must be exactly this job's settlement, paying its whole price to Charlie.
    tail -n1 "$dir/events.jsonl" | python3 -c '
import json, sys
e = json.load(sys.stdin)
want = {"event": "job-settled", "job_id": sys.argv[1],
        "payees": [{"account": sys.argv[2], "amount": sys.argv[3]}]}
got = {k: e.get(k) for k in want}
sys.exit(0 if got == want else f"expected {want}, got {got}")' "$job" "$CHARLIE" "$((PRICE_MINT * 10 ** 12))" \
        || { cat "$dir/events.jsonl" "$work/agent-charlie.log" >&2; fail "$label job did not settle as funded"; }
    echo "settled on chain: $(tail -n1 "$dir/events.jsonl")"

    sigil job receipt --agent "$agent" --job "$job" --buyer-suri //Bob --receipt-out "$dir/receipt.bin" --bundle-out "$dir/bundle.bin" >"$dir/receipt.json"
    local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    if [ "$tier" = 3 ]; then
        "$bin/sigil-verify" receipt --receipt "$dir/receipt.bin" --bundle "$dir/bundle.bin" --at "$now" --allow-simulated --format json >"$dir/verify.json" \
            || { cat "$dir/verify.json" >&2; fail "sigil-verify refused the $label receipt"; }
        echo "sigil-verify receipt --allow-simulated: $(json verdict <"$dir/verify.json")"
        if "$bin/sigil-verify" receipt --receipt "$dir/receipt.bin" --bundle "$dir/bundle.bin" --at "$now" --format json >"$dir/verify-strict.json"; then
            fail "simulated evidence was accepted without --allow-simulated"
        fi
        echo "sigil-verify receipt without --allow-simulated: $(json verdict <"$dir/verify-strict.json") (simulated evidence)"
    else
        "$bin/sigil-verify" receipt --receipt "$dir/receipt.bin" --at "$now" --format json >"$dir/verify.json" \
            || { cat "$dir/verify.json" >&2; fail "sigil-verify refused the $label receipt"; }
        echo "sigil-verify receipt: $(json verdict <"$dir/verify.json")"
    fi
    sigil job output --agent "$agent" --job "$job" --path result.txt --buyer-suri //Bob --out "$dir/result.txt" >"$dir/output.json"
    echo "output (checked against the receipt's result commitment; sealed: $(json sealed <"$dir/output.json")): $(cat "$dir/result.txt")"
    if [ "$tier" = 3 ]; then
        grep -qF "secret input: $(cat "$dir/secret.txt")" "$dir/result.txt" || fail "the workload did not get the secret"
        sigil audit job "$job" >"$dir/audit.json"
        local s; s=$(cat "$dir/secret.txt")
        local hex; hex=$(printf '%s' "$s" | od -An -tx1 | tr -d ' \n')
        for f in "$dir/audit.json" "$work/agent-charlie.log"; do
            if grep -qF -e "$s" -e "$hex" "$f"; then fail "the secret appears in $f"; fi
        done
        if grep -rqF "$s" "$work/agent-charlie"; then fail "the secret reached Charlie's state directory"; fi
        echo "the secret input is in none of: the chain's record, the agent's log, its state directory (store included)"
    fi
    sigil audit replay "$job" >"$dir/replay.json" || { cat "$dir/replay.json" >&2; fail "audit replay of the $label job failed"; }
    echo "audit replay of the on-chain record: verified=$(json verified <"$dir/replay.json")"
}

run_job 3 tier-3 --policy "$POLICY"
TIER3_JOB=$(json job_id <"$work/tier-3/new.json")
echo "policy $POLICY in use by $(sigil policy show "$POLICY" | json users) attested key(s) and open job(s)"
run_job 1 tier-1
TIER1_JOB=$(json job_id <"$work/tier-1/new.json")

step "tier-2 job: quorum 2 of 3, bound by the chain to Charlie, Dave and Eve; Eve dissents"
# The job's answer depends on where it runs: in Eve's agent it answers 41 instead of 42, the
# faulty provider of this demonstration.
dir="$work/tier-2"; mkdir -p "$dir"
sigil job new --tier 2 --buyer-suri //Bob --out "$dir/spec.pb" -- /bin/sh -c \
    'case "$SIGIL_OUTPUT_DIR" in */agent-eve/*) a=41 ;; *) a=42 ;; esac; printf "answer %s\n" "$a" > "$SIGIL_OUTPUT_DIR/result.txt"' \
    >"$dir/new.json"
job=$(json job_id <"$dir/new.json")
eve_bond=$(balance "$EVE" held)
sigil buyer fund --suri //Bob --job "$job" --spec "$dir/spec.pb" --tier 2 --k 2 --n 3 --price 6 \
    --response-blocks 50 >"$dir/fund.json"
python3 -c '
import json, sys
bound = json.load(sys.stdin)["bound"]
sys.exit(0 if sorted(bound or []) == sorted(sys.argv[1:4]) else f"bound to {bound}")' "$CHARLIE" "$DAVE" "$EVE" <"$dir/fund.json" \
    || fail "the chain did not bind Charlie, Dave and Eve to the tier-2 job"
echo "bound by the chain to Charlie, Dave and Eve (each asks 1 MINT, at most 6 / 2 per settling provider)"
# Eve first, so that her dissent is on chain before the quorum settles the job.
for name in eve charlie dave; do
    sigil job submit --agent "$(agent_url "$name")" --spec "$dir/spec.pb" --buyer-suri //Bob >/dev/null
    sigil job wait --agent "$(agent_url "$name")" --job "$job" --buyer-suri //Bob --timeout-secs 120 >/dev/null
    if [ "$name" = eve ]; then
        for _ in $(seq 1 60); do
            sigil audit job "$job" >"$dir/record.json"
            python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["receipts"] else 1)' <"$dir/record.json" && break
            sleep 1
        done
        echo "Eve's receipt is on chain (answer 41): no quorum yet"
    fi
done
sigil buyer watch --job "$job" --timeout-secs 120 >"$dir/events.jsonl"
tail -n1 "$dir/events.jsonl" | python3 -c '
import json, sys
e = json.load(sys.stdin)
payees = sorted(p["account"] for p in e.get("payees", []))
ok = e.get("event") == "job-settled" and payees == sorted(sys.argv[1:3]) \
    and all(p["amount"] == str(3 * 10**12) for p in e["payees"])
sys.exit(0 if ok else f"expected Charlie and Dave paid 3 MINT each, got {e}")' "$CHARLIE" "$DAVE" \
    || { cat "$dir/events.jsonl" "$work/agent-eve.log" >&2; fail "the tier-2 job did not settle on the quorum"; }
echo "settled on chain: Charlie and Dave paid 3 MINT each"
sigil audit job "$job" >"$dir/record.json"
python3 -c '
import json, sys
p = json.load(sys.stdin)["penalties"]
ok = len(p) == 1 and p[0]["provider"] == sys.argv[1] and p[0]["reason"] == "dissent" and p[0]["amount"] == str(2 * 10**12)
sys.exit(0 if ok else f"penalties: {p}")' "$EVE" <"$dir/record.json" || fail "Eve's dissent was not penalised"
[ "$(( eve_bond - $(balance "$EVE" held) ))" = "$((2 * 10 ** 12))" ] || fail "Eve's bond did not lose 2 MINT"
echo "Eve dissented: a fifth of her 10 MINT bond (2 MINT) went to Bob; her receipt stays on record, unpaid"
sigil audit replay "$job" >"$dir/replay.json" || { cat "$dir/replay.json" >&2; fail "audit replay of the tier-2 job failed"; }
echo "audit replay of the on-chain record: verified=$(json verified <"$dir/replay.json")"

step "balances"
charlie_after=$(balance "$CHARLIE" free)
python3 - "$charlie_before" "$charlie_after" <<'EOF'
import sys
before, after = (int(x) for x in sys.argv[1:3])
MINT = 10**12
print(f"Charlie (provider) free: {before / MINT:.4f} -> {after / MINT:.4f} MINT (+{(after - before) / MINT:.4f}: two jobs at 5 MINT and a share of 3, less fees)")
if after - before < 12 * MINT:
    sys.exit("market: the provider was not paid")
EOF
deposit=$(sigil policy show "$POLICY" | json deposit)
[ "$(balance "$BOB" held)" = "$deposit" ] || fail "Bob holds more than his policy's deposit: escrow was not released"
echo "Bob (buyer) held: $deposit planck, his policy's deposit (the escrow was released)"
echo
echo "market: three jobs (tiers 3, 1 and 2) funded, bound by the chain, run, receipted, verified and settled"

# What ran, for tools that follow the market (the explorer's tests): the jobs, the policy, the
# accounts and the tier-3 receipt and bundle.
python3 - "$work/state.json" <<EOF
import json, sys
json.dump({"url": "$url", "policy": "$POLICY", "work": "$work", "bin": "$bin",
           "jobs": {"tier-3": "$TIER3_JOB", "tier-1": "$TIER1_JOB", "tier-2": "$job"},
           "accounts": {"bob": "$BOB", "charlie": "$CHARLIE", "dave": "$DAVE", "eve": "$EVE"},
           "tier3": {"receipt": "$work/tier-3/receipt.bin", "bundle": "$work/tier-3/bundle.bin"}},
          open(sys.argv[1], "w"), indent=1)
EOF
if [ "$keep_running" = 1 ]; then
    echo "market: state $work/state.json"
    echo "market: keeps running (--keep-running): chain on $url; SIGTERM or Ctrl-C stops it"
    trap 'exit 0' TERM INT
    # The chain runs until it is stopped; the EXIT trap stops everything.
    wait "${pids[0]}" || fail "the local chain exited"
fi
