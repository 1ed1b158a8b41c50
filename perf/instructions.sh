#!/usr/bin/env bash
# User-space work per request, counted by valgrind's callgrind: the same count for
# the same binary and load whatever else the machine is doing, so it can judge
# changes too small for wall-clock benchmarks on a shared box. Each proxy (the bare
# passthrough, then sluice) runs under callgrind in front of one fake-llm, serves
# 500 requests (oha -c 10) to warm up, has its counts zeroed, and serves N more;
# the counts over those N are divided by N. Kernel work (the syscalls) is not
# counted. Printed per request:
# - instructions;
# - code lines: distinct 64-byte lines of machine code that run at least one
#   instruction a request on average (perf/code_lines.py). When a request starts
#   with cold caches, as at a light fixed rate (target 2), each is a fetch from
#   memory or a far cache. TOP=n also lists the n functions owning most of them;
# - code pages: distinct 4 KB pages those lines lie on, the instruction TLB
#   entries a request needs;
# - with CACHE_SIM=1, misses in simulated small caches (32 KB L1s, a 256 KB last
#   level): how much code and memory a request touches. With both proxies' working
#   sets near 256 KB the last-level count is a threshold effect: at 512 KB both
#   nearly vanish.
# HOT_TEXT=file also writes, from sluice's profile, the linker script with which
# build.rs gathers the functions a request runs (perf/hot_text.py); rebuild to use
# it. The names TOP lists are then mangled.
# Usage: [CACHE_SIM=1] [TOP=n] [HOT_TEXT=file] perf/instructions.sh [N=2000];
# SLUICE_BIN and PASS_BIN pick other sluice and passthrough binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
PERF_NO_WRK=1
. perf/lib.sh
start_valgrind_run

vg_opts=()
[ -n "${CACHE_SIM:-}" ] && vg_opts=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=262144,8,64)
[ -n "${HOT_TEXT:-}" ] && vg_opts+=(--demangle=no)
per_request() { # name command... -> callgrind's totals per request (instructions first), then code lines and pages
  local name=$1; shift
  valgrind --tool=callgrind --dump-instr=yes "${vg_opts[@]}" --callgrind-out-file="$work/$name" "$@" >"$work/$name.log" 2>&1 &
  local vg=$!
  for _ in $(seq 300); do grep -q 'listening on http://' "$work/$name.log" && break; sleep 0.1; done
  local url; url=$(grep 'listening on' "$work/$name.log" | grep -o 'http://127\.0\.0\.1:[0-9]*' | head -1)
  local chat=(--no-tui -c 10 -m POST -T application/json -d "$body" "$url/v1/chat/completions")
  oha -n 500 "${chat[@]}" >/dev/null # warm-up: connections, pools, lazily built state
  callgrind_control -z "$vg" >/dev/null 2>&1
  oha -n "$N" "${chat[@]}" >/dev/null
  callgrind_control -d "$vg" >/dev/null 2>&1
  sleep 0.5
  kill -9 "$vg"; wait "$vg" 2>/dev/null || true
  # Ir, and with the cache simulation Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw, summed over the dumps.
  cat "$work/$name".[0-9]* | awk -v n="$N" '/^totals:/ {for (i = 2; i <= NF; i++) s[i] += $i; k = NF}
    END {for (i = 2; i <= k; i++) printf "%d ", s[i] / n}'
  perf/code_lines.py "$work/$name.1" "$N" "${TOP:-0}" 2>"$work/$name.top"
}

echo "callgrind, oha -c 10, $N requests after 500 to warm up, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
p=$(per_request pass "${PASS_BIN:-target/release/examples/passthrough}" --upstream "$fake" --port 0)
sluice_bin=${SLUICE_BIN:-target/release/sluice}
# shellcheck disable=SC2086 # SLUICE_ARGS is split into arguments on purpose
s=$(per_request sluice "$sluice_bin" --config "$work/config.yaml" --host 127.0.0.1 --port 0 ${SLUICE_ARGS:-})
[ -z "${HOT_TEXT:-}" ] || perf/hot_text.py "$work/sluice.1" "$N" "$sluice_bin" "$HOT_TEXT"
last2() { echo "$1" | awk '{print $(NF - 1), $NF}'; }
# shellcheck disable=SC2046 # last2's two fields are two arguments on purpose
printf '%-12s %14s %12s %12s\n' proxy instr/request code_lines code_pages \
  passthrough "${p%% *}" $(last2 "$p") sluice "${s%% *}" $(last2 "$s")
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
if [ -n "${TOP:-}" ]; then
  for name in pass sluice; do echo "$name: code lines by function"; cat "$work/$name.top"; done
fi
