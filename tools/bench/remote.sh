#!/usr/bin/env bash
# What the wire costs: one data-set job run locally, on one `firelight serve` on loopback, and on
# two as a pool; wall time, images per second and the bytes that crossed the loopback interface.
#
#   cargo build --release -p firelight-cli --features remote
#   tools/bench/remote.sh [FIRELIGHT] [PHOTOS] [METHOD ARGS...]
#   tools/bench/remote.sh target/release/firelight 8 --method integrated_gradients
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release/firelight}"
count="${2:-8}"
shift 2 || true
method=("$@")
[ ${#method[@]} -eq 0 ] && method=(--method integrated_gradients)

work="$(mktemp -d)"
# The servers start in command substitutions (subshells), so they are not this shell's jobs:
# their PIDs go to a file, for the trap.
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/in"
photos=(chelsea.png coffee.png astronaut.png rocket.jpg)
for i in $(seq 0 $((count - 1))); do
    source="${photos[$((i % 4))]}"
    cp "models/images/$source" "$work/in/photo$(printf %03d "$i").${source##*.}"
done

lo_bytes() { awk '/^ *lo:/ { print $2 }' /proc/net/dev; }

serve() { # prints the URL of a new server
    "$bin" serve --port 0 > "$work/server$1.log" 2>&1 &
    echo $! > "$work/server$1.pid"
    until grep -q "ws://" "$work/server$1.log" 2>/dev/null; do sleep 0.05; done
    grep -o "ws://[0-9.:]*" "$work/server$1.log" | head -1
}

run() { # name, then the devices
    local name="$1"
    shift
    local before start end after
    before="$(lo_bytes)"
    start="$(date +%s.%N)"
    "$bin" explain --inputs "$work/in" --out "$work/$name" --chunk-size 4 "${method[@]}" "$@" \
        > "$work/$name.log" 2>&1
    end="$(date +%s.%N)"
    after="$(lo_bytes)"
    awk -v n="$name" -v s="$start" -v e="$end" -v c="$count" -v b=$((after - before)) \
        'BEGIN { printf "| %s | %.1f | %.3f | %.1f |\n", n, e - s, c / (e - s), b / 1048576 }'
}

echo "| run | wall (s) | images/s | loopback MiB |"
echo "|---|---:|---:|---:|"
run local
run "local, 2 workers" --workers 2
a="$(serve a)"
run "one server" --device "$a"
b="$(serve b)"
run "two servers" --device "$a" --device "$b"
cmp "$work/local/index.jsonl" "$work/one server/index.jsonl" && echo "one server's index.jsonl = local's"
cmp "$work/local/index.jsonl" "$work/two servers/index.jsonl" && echo "two servers' index.jsonl = local's"
