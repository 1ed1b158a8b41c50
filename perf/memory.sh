#!/usr/bin/env bash
# Peak memory under many client connections: sluice in front of one fake-llm,
# wrk holding N keep-alive connections busy for a while. Prints each process's
# RSS at rest and its peak (VmHWM from /proc/PID/status) after the load.
# Usage: perf/memory.sh [connections=1000] [secs=15]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-1000}; SECS=${2:-15}
need=$((CONNS + 256))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" \
  || { echo "cannot raise the open-files limit to $need (hard limit $(ulimit -Hn))"; exit 1; }
. perf/lib.sh

start_fake_and_sluice

kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # pid field -> kB
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }
rest_s=$(kb "$sluice_pid" VmRSS); rest_f=$(kb "$fake_pid" VmRSS)

echo "wrk -t2 -c$CONNS -d${SECS}s, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s perf/chat.lua "$sluice/v1/chat/completions" >"$work/wrk.out"
grep -E 'Requests/sec|Socket errors|Non-2xx' "$work/wrk.out" | sed 's/^ */wrk: /'
# Each in-flight request needs its own HTTP/1 upstream connection: memory follows them.
opened=$(curl -s "$sluice/metrics" | awk '/^sluice_upstream_connections_opened_total/ {print $2}')
echo "upstream connections opened by sluice: $opened"
printf '%-9s %12s %12s\n' process rest_MB peak_MB
printf '%-9s %12s %12s\n' sluice "$(mb "$rest_s")" "$(mb "$(kb "$sluice_pid" VmHWM)")"
printf '%-9s %12s %12s\n' fake-llm "$(mb "$rest_f")" "$(mb "$(kb "$fake_pid" VmHWM)")"
# What each open socket (client side plus upstream side) costs sluice at the peak.
awk -v p="$(kb "$sluice_pid" VmHWM)" -v r="$rest_s" -v n=$((CONNS + opened)) \
  'BEGIN {printf "sluice: %.1f KB per connection (%d client + upstream)\n", (p - r) / n, n}'
