#!/usr/bin/env bash
# Target 1 on a machine whose speed drifts: sluice against the bare passthrough in
# short alternating wrk slices, so that both see the same moments of the machine.
# Each round runs one slice on each, in the order passthrough-sluice, then
# sluice-passthrough the next round (drift within a round cancels over two). Prints
# each round's req/s and sluice/passthrough, then the median of the rounds' ratios,
# the ratio of all requests served, and each proxy's CPU time per request (user +
# system from /proc, summed over all its slices) with passthrough/sluice of it.
# Usage: perf/paired.sh [slice_s=3] [rounds=10] [connections=50]; SLUICE_BIN and
# PASS_BIN pick other binaries, WRK_SCRIPT another request (default perf/chat.lua;
# perf/chat-long.lua sends a 4 KB one).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE=${1:-3}; ROUNDS=${2:-10}; CONNS=${3:-50}; lua=${WRK_SCRIPT:-perf/chat.lua}
. perf/lib.sh
start_all_proxies
hz=$(getconf CLK_TCK)
slice() { # url pid -> "requests ticks" of one wrk slice
  local t0; t0=$(ticks "$2")
  local n; n=$(wrk -t1 -c"$CONNS" -d"${SLICE}s" -s "$lua" "$1/v1/chat/completions" |
    awk '/requests in/ {print $1}')
  echo "$n $(($(ticks "$2") - t0))"
}
for u in "$pass" "$sluice"; do # warm-up
  wrk -t1 -c"$CONNS" -d2s -s "$lua" "$u/v1/chat/completions" >/dev/null
done

echo "wrk -t1 -c$CONNS, $ROUNDS rounds of ${SLICE}s slices, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
fmt='%-6s %-10s %11s %10s %7s\n'
printf "$fmt" round order passthrough sluice s/pass
for i in $(seq "$ROUNDS"); do
  if ((i % 2)); then
    read -r p pt <<<"$(slice "$pass" "$pass_pid")"
    read -r s st <<<"$(slice "$sluice" "$sluice_pid")"
    order=pass-first
  else
    read -r s st <<<"$(slice "$sluice" "$sluice_pid")"
    read -r p pt <<<"$(slice "$pass" "$pass_pid")"
    order=s-first
  fi
  echo "$p $pt $s $st" >>"$work/rounds"
  awk -v i="$i" -v o="$order" -v p="$p" -v s="$s" -v d="$SLICE" -v f="$fmt" \
    'BEGIN {printf f, i, o, int(p / d), int(s / d), sprintf("%.2f", s / p)}'
done
median=$(awk '{print $3 / $1}' "$work/rounds" | median)
printf "median of the rounds' sluice/passthrough: %.2f\n" "$median"
awk -v hz="$hz" '
  {p += $1; pt += $2; s += $3; st += $4}
  END {
    printf "all requests, sluice/passthrough: %.2f (%d against %d)\n", s / p, s, p
    pc = pt / hz * 1e6 / p; sc = st / hz * 1e6 / s
    printf "CPU µs per request: passthrough %.1f, sluice %.1f; passthrough/sluice %.2f\n", pc, sc, pc / sc
  }' "$work/rounds"
