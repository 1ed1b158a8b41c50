#!/usr/bin/env bash
# Open-loop latency at a fixed rate: fake-llm hit directly, then through sluice,
# same timetable, one after the other on loopback. Prints p50/p90/p99 for each and
# the latency sluice adds (sluice minus direct) at p50 and p99.
# Usage: perf/latency.sh [rate=1000] [secs=20]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECS=${2:-20}
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)"; exit 1; }
. perf/lib.sh
cargo build --release --quiet --example load

start_fake_and_sluice

load() { # url secs -> JSON line
  target/release/examples/load --url "$1" --model fake-gpt --rate "$RATE" --duration-secs "$2" --json
}
get() { jq -r "$2" "$1"; } # json-file jq-path -> value
for u in "$fake" "$sluice"; do load "$u" 2 >/dev/null; done # warm-up

echo "load --rate $RATE --duration-secs $SECS, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
load "$fake" "$SECS" >"$work/direct.json"
load "$sluice" "$SECS" >"$work/sluice.json"
printf '%-8s %10s %10s %10s %10s %8s %8s\n' target req/s p50_ms p90_ms p99_ms ok failed
for t in direct sluice; do
  f=$work/$t.json
  printf '%-8s %10.1f %10.3f %10.3f %10.3f %8s %8s\n' "$t" "$(get "$f" .achieved_rate)" \
    "$(get "$f" .latency_ms.p50)" "$(get "$f" .latency_ms.p90)" "$(get "$f" .latency_ms.p99)" \
    "$(get "$f" .total.ok)" "$(get "$f" '.total.requests - .total.ok')"
done
awk -v d50="$(get "$work/direct.json" .latency_ms.p50)" -v s50="$(get "$work/sluice.json" .latency_ms.p50)" \
    -v d99="$(get "$work/direct.json" .latency_ms.p99)" -v s99="$(get "$work/sluice.json" .latency_ms.p99)" \
  'BEGIN {printf "added by sluice: p50 %+.3f ms, p99 %+.3f ms\n", s50 - d50, s99 - d99}'
