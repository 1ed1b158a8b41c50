#!/usr/bin/env bash
# Closed-loop max throughput: fake-llm hit directly vs through sluice, same load,
# one run each, everything on loopback. Prints a table and the sluice/direct ratio.
# Usage: perf/throughput.sh [duration_s=10] [connections=50] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-50}; RUNS=${3:-3}
. perf/lib.sh

target/release/fake-llm --port 0 >"$work/fake.out" 2>&1 &
pids+=($!)
fake=$(wait_url "$work/fake.out")
cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: fake-gpt
    litellm_params: {model: openai/fake-upstream, api_base: "$fake/v1", api_key: k}
YAML
target/release/sluice --config "$work/config.yaml" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
pids+=($!)
sluice=$(wait_url "$work/sluice.err")

rps() { # url -> requests/s from one wrk run
  wrk -t1 -c"$CONNS" -d"${DUR}s" -s perf/chat.lua "$1/v1/chat/completions" \
    | awk '/Requests\/sec/ {print $2}'
}
wrk -t1 -c"$CONNS" -d2s -s perf/chat.lua "$sluice/v1/chat/completions" >/dev/null  # warm-up

echo "wrk -t1 -c$CONNS -d${DUR}s, $(nproc) cores, $(date -u +%F)"
printf '%-5s %12s %12s %8s\n' run direct sluice ratio
for i in $(seq "$RUNS"); do
  d=$(rps "$fake"); s=$(rps "$sluice")
  printf '%-5s %12s %12s %8s\n' "$i" "$d" "$s" "$(awk -v s="$s" -v d="$d" 'BEGIN{printf "%.2f", s/d}')"
done
