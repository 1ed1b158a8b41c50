#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: the same
# count for the same binary and load whatever else the machine is doing, so it
# can judge changes too small for wall-clock benchmarks on a shared box. Each
# proxy (the bare passthrough, then sluice) runs under callgrind twice, serving
# N and 3N requests (oha -c 10) to one fake-llm; the difference of the two totals
# divided by 2N leaves out start-up. Kernel work (the syscalls) is not counted.
# With CACHE_SIM=1, callgrind also simulates small caches (32 KB L1s, a 256 KB last
# level) and prints the misses per request: a repeatable measure of how much code and
# memory a request touches, which sets its time when it starts with cold caches, as
# at a light fixed rate (target 2).
# Usage: [CACHE_SIM=1] perf/instructions.sh [N=1000]; SLUICE_BIN and PASS_BIN pick other
# sluice and passthrough binaries.
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

sim=()
[ -n "${CACHE_SIM:-}" ] && sim=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=262144,8,64)
total() { # name requests command... -> callgrind's totals (instructions first) for start-up plus that many requests
  local name=$1 n=$2; shift 2
  valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$work/$name.$n" "$@" >"$work/$name.$n.log" 2>&1 &
  local vg=$!
  for _ in $(seq 300); do grep -q 'listening on http://' "$work/$name.$n.log" && break; sleep 0.1; done
  local url; url=$(grep 'listening on' "$work/$name.$n.log" | grep -o 'http://127\.0\.0\.1:[0-9]*' | head -1)
  oha --no-tui -n "$n" -c 10 -m POST -T application/json -d "$body" "$url/v1/chat/completions" >/dev/null
  callgrind_control -d "$vg" >/dev/null 2>&1
  sleep 0.5
  kill -9 "$vg"; wait "$vg" 2>/dev/null || true
  # Ir, and with the cache simulation Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw, summed over the dumps.
  cat "$work/$name.$n".* | awk '/^totals:/ {for (i = 2; i <= NF; i++) s[i] += $i; n = NF}
    END {for (i = 2; i <= n; i++) printf "%d ", s[i]; print ""}'
}
per_request() { # name command... -> each total per request
  local name=$1; shift
  local a b
  a=$(total "$name" "$N" "$@"); b=$(total "$name" $((3 * N)) "$@")
  awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN {k = split(a, x); split(b, y)
    for (i = 1; i <= k; i++) printf "%d ", (y[i] - x[i]) / (2 * n); print ""}'
}

echo "callgrind, oha -c 10, $N and $((3 * N)) requests, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
p=$(per_request pass "${PASS_BIN:-target/release/examples/passthrough}" --upstream "$fake" --port 0)
# shellcheck disable=SC2086 # SLUICE_ARGS is split into arguments on purpose
s=$(per_request sluice "${SLUICE_BIN:-target/release/sluice}" --config "$work/config.yaml" --host 127.0.0.1 --port 0 ${SLUICE_ARGS:-})
printf '%-12s %14s\n' proxy instr/request passthrough "${p%% *}" sluice "${s%% *}"
awk -v p="${p%% *}" -v s="${s%% *}" 'BEGIN {printf "passthrough/sluice: %.2f\n", p / s}'
if [ -n "${CACHE_SIM:-}" ]; then
  echo "simulated misses per request (I1, D1 32 KB; LL 256 KB; 64-byte lines)"
  printf '%-12s %8s %8s %8s %8s %8s\n' proxy I1 D1 LL_instr LL_data LL_all
  for row in "passthrough $p" "sluice $s"; do
    # shellcheck disable=SC2086 # the row is split into its fields on purpose
    set -- $row
    printf '%-12s %8d %8d %8d %8d %8d\n' "$1" "$5" $(($6 + $7)) "$8" $(($9 + ${10})) $(($8 + $9 + ${10}))
  done
fi
