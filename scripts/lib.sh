# Shell helpers shared by the project's scripts. Source it: `. "$root/scripts/lib.sh"`.
# Every function is plain POSIX-ish bash with no state beyond what it prints.

# A step heading, with the seconds since the script started.
step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

# Ends the script with a message on stderr, naming the script.
fail() {
    printf '%s: %s\n' "$(basename "${0%.sh}")" "$*" >&2
    exit 1
}

# A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Prints one field of the JSON document on stdin: `json a.b.0.c` (numbers index arrays).
json() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$1"
}

# Waits until a node answers JSON-RPC over HTTP on 127.0.0.1:PORT.
# Usage: wait_rpc PORT PID LOG [SECONDS]: fails early (printing LOG) when PID exits.
wait_rpc() {
    local port=$1 pid=$2 log=$3 secs=${4:-180}
    local _
    for _ in $(seq 1 "$secs"); do
        kill -0 "$pid" 2>/dev/null || {
            cat "$log" >&2
            fail "the local chain exited"
        }
        if curl -sf -H 'Content-Type: application/json' \
            -d '{"id":1,"jsonrpc":"2.0","method":"system_chain","params":[]}' \
            "http://127.0.0.1:$port" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    cat "$log" >&2
    fail "no RPC on 127.0.0.1:$port after ${secs}s"
}
