#!/usr/bin/env bash
# Latency percentiles at fixed request rates with oha (-q, latency correction on, so
# a slow answer does not hide the requests queued behind it): fake-llm hit directly,
# through the bare passthrough, through nginx proxy_pass (when installed) and through
# sluice, one after the other at each rate. Prints p50/p90/p99 and what each proxy
# adds over direct at p50 and p99.
# Usage: perf/oha.sh [secs=15] [rates="1000 5000"] [connections=50]
# TARGETS sets which run and in what order (default: direct sluice passthrough nginx);
# the + columns need direct to have run before.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}; RATES=${2:-1000 5000}; CONNS=${3:-50}
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
start_all_proxies

echo "oha -z ${SECS}s -q RATE --latency-correction -c $CONNS, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
fmt='%-6s %-12s %9s %8s %8s %8s %9s %9s %7s\n'
printf "$fmt" rate target req/s p50_ms p90_ms p99_ms +p50_ms +p99_ms ok%
delta() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%+.3f", a-b}' || echo -; } # - until direct has run
for rate in $RATES; do
  d50=; d99=
  for t in ${TARGETS:-direct sluice passthrough nginx}; do
    u=$(target_url "$t")
    [ -n "$u" ] || continue
    sleep 2 # let the previous run's connections close
    shoot "$u" "$rate" 2 >/dev/null # warm-up
    f=$work/$t-$rate.json
    shoot "$u" "$rate" "$SECS" >"$f"
    p50=$(ms "$f" p50); p90=$(ms "$f" p90); p99=$(ms "$f" p99)
    [ "$t" = direct ] && { d50=$p50; d99=$p99; }
    printf "$fmt" "$rate" "$t" "$(jq -r '.summary.requestsPerSec | floor' "$f")" \
      "$(printf %.3f "$p50")" "$(printf %.3f "$p90")" "$(printf %.3f "$p99")" \
      "$(delta "$p50" "$d50")" "$(delta "$p99" "$d99")" \
      "$(jq -r '.summary.successRate * 100 | floor' "$f")"
  done
done
