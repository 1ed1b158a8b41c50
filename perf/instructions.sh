#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: the same
# count for the same binary and load whatever else the machine is doing, so it
# can judge changes too small for wall-clock benchmarks on a shared box. Each
# proxy (the bare passthrough, then sluice) runs under callgrind twice, serving
# N and 3N requests (oha -c 10) to one fake-llm; the difference of the two totals
# divided by 2N leaves out start-up. Kernel work (the syscalls) is not counted.
# Usage: perf/instructions.sh [N=1000]; SLUICE_BIN and PASS_BIN pick other sluice and
# passthrough binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
cargo build --release --quiet --example passthrough
target/release/fake-llm --port 0 >"$work/fake.out" 2>&1 &
pids+=($!)
fake=$(wait_url "$work/fake.out")
cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: fake-gpt
    litellm_params: {model: openai/fake-upstream, api_base: "$fake/v1", api_key: k}
YAML

total() { # name requests command... -> instructions for start-up plus that many requests
  local name=$1 n=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.$n" "$@" >"$work/$name.$n.log" 2>&1 &
  local vg=$!
  for _ in $(seq 300); do grep -q 'listening on http://' "$work/$name.$n.log" && break; sleep 0.1; done
  local url; url=$(grep 'listening on' "$work/$name.$n.log" | grep -o 'http://127\.0\.0\.1:[0-9]*' | head -1)
  oha --no-tui -n "$n" -c 10 -m POST -T application/json -d "$body" "$url/v1/chat/completions" >/dev/null
  callgrind_control -d "$vg" >/dev/null 2>&1
  sleep 0.5
  kill -9 "$vg"; wait "$vg" 2>/dev/null || true
  cat "$work/$name.$n".* | awk '/^totals:/ {s += $2} END {print s}'
}
per_request() { # name command... -> instructions per request
  local name=$1; shift
  local a b
  a=$(total "$name" "$N" "$@"); b=$(total "$name" $((3 * N)) "$@")
  echo $(((b - a) / (2 * N)))
}

echo "callgrind, oha -c 10, $N and $((3 * N)) requests, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
p=$(per_request pass "${PASS_BIN:-target/release/examples/passthrough}" --upstream "$fake" --port 0)
# shellcheck disable=SC2086 # SLUICE_ARGS is split into arguments on purpose
s=$(per_request sluice "${SLUICE_BIN:-target/release/sluice}" --config "$work/config.yaml" --host 127.0.0.1 --port 0 ${SLUICE_ARGS:-})
printf '%-12s %14s\n' proxy instr/request passthrough "$p" sluice "$s"
awk -v p="$p" -v s="$s" 'BEGIN {printf "passthrough/sluice: %.2f\n", p / s}'
