#!/usr/bin/env bash
# Target 2 on a machine whose speed drifts: the latency each proxy adds over fake-llm
# hit directly, at a fixed rate (open loop, oha -q with latency correction), measured
# in short slices that take turns. Each round runs one slice on each target, the
# order rotated by one every round, and compares each proxy's p50 and p99 with the
# direct p50 and p99 of the same round; the medians over the rounds are the result.
# The targets are fake-llm direct, the TCP relay (`examples/relay.rs`: the cost of
# the extra hop alone, the floor for any proxy), the bare passthrough, nginx (when
# installed) and sluice.
# Usage: perf/paired-latency.sh [slice_s=5] [rounds=8] [rate=1000] [connections=50];
# SLUICE_BIN picks another sluice binary, PASS_BIN another passthrough. SLUICE2_BIN
# and/or SLUICE2_ARGS add a second sluice ("sluice2") with another build or settings.
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE=${1:-5}; ROUNDS=${2:-8}; RATE=${3:-1000}; CONNS=${4:-50}
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
start_all_proxies
targets=(direct relay passthrough sluice)
[ -n "$nginx" ] && targets=(direct relay passthrough nginx sluice)
start_second_sluice
[ -n "$sluice2" ] && targets+=(sluice2)
for t in "${targets[@]}"; do shoot "$(target_url "$t")" "$RATE" 2 >/dev/null; done # warm-up

echo "oha -q $RATE --latency-correction -c $CONNS, $ROUNDS rounds of ${SLICE}s slices, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "each proxy's p50 and p99 minus direct's in the same round, ms"
printf '%-6s %-14s' round direct_p50
for t in "${targets[@]:1}"; do printf ' %18s' "+$t p50/p99"; done
echo
n=${#targets[@]}
for i in $(seq "$ROUNDS"); do
  declare -A p50=() p99=()
  for k in $(seq 0 $((n - 1))); do
    t=${targets[$(((k + i - 1) % n))]}
    sleep 1 # let the previous slice's connections close
    f=$work/$t-$i.json
    shoot "$(target_url "$t")" "$RATE" "$SLICE" >"$f"
    p50[$t]=$(ms "$f" p50); p99[$t]=$(ms "$f" p99)
  done
  printf '%-6s %-14.3f' "$i" "${p50[direct]}"
  for t in "${targets[@]:1}"; do
    a=$(awk -v a="${p50[$t]}" -v b="${p50[direct]}" 'BEGIN {printf "%+.3f", a - b}')
    b=$(awk -v a="${p99[$t]}" -v b="${p99[direct]}" 'BEGIN {printf "%+.3f", a - b}')
    printf ' %18s' "$a/$b"
    echo "$a" >>"$work/$t.p50"; echo "$b" >>"$work/$t.p99"
  done
  echo
done
for t in "${targets[@]:1}"; do
  printf 'median added by %-12s p50 %+.3f ms, p99 %+.3f ms\n' "$t" \
    "$(median <"$work/$t.p50")" "$(median <"$work/$t.p99")"
done
