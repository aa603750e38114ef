#!/usr/bin/env bash
# Throughput of one data-set job over many photos: one process, a pool of K workers, K shards as
# separate processes into one folder; every index.jsonl compared with the single run's.
#
#   cargo build --release -p firelight-cli
#   tools/bench/dataset_scale.sh [FIRELIGHT] [PHOTOS] [METHOD ARGS...]
#   tools/bench/dataset_scale.sh target/release/firelight 1000 --method saliency
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release/firelight}"
count="${2:-1000}"
shift 2 || true
method=("$@")
[ ${#method[@]} -eq 0 ] && method=(--method saliency)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"
photos=(chelsea.png coffee.png astronaut.png rocket.jpg)
for i in $(seq 0 $((count - 1))); do
    source="${photos[$((i % 4))]}"
    cp "models/images/$source" "$work/in/photo$(printf %05d "$i").${source##*.}"
done

job() { "$bin" explain --inputs "$work/in" --chunk-size 8 "${method[@]}" "$@" > /dev/null 2>&1; }
timed() { # name, then a command
    local name="$1" start end
    shift
    start="$(date +%s.%N)"
    "$@"
    end="$(date +%s.%N)"
    awk -v n="$name" -v s="$start" -v e="$end" -v c="$count" \
        'BEGIN { printf "| %s | %.1f | %.2f |\n", n, e - s, c / (e - s) }'
}
shards() { # K: K processes at once into one folder
    local k="$1" pids=()
    for i in $(seq 0 $((k - 1))); do
        job --out "$work/shards$k" --shard "$i/$k" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
}

echo "| run | wall (s) | images/s |"
echo "|---|---:|---:|"
timed "one process" job --out "$work/one"
for k in 2 4; do
    timed "--workers $k" job --out "$work/workers$k" --workers "$k"
    timed "$k shards (processes)" shards "$k"
done
for k in 2 4; do
    cmp "$work/one/index.jsonl" "$work/workers$k/index.jsonl"
    cmp "$work/one/index.jsonl" "$work/shards$k/index.jsonl"
done
echo "every index.jsonl equals the single run's"
