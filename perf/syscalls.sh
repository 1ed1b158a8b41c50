#!/usr/bin/env bash
# Kernel work per request, bare passthrough against sluice (and, with RATE, the TCP
# relay and nginx when installed beside them), under the same wrk load
# as throughput.sh: system calls and context switches counted by `perf stat` on the
# proxy process (the raw_syscalls tracepoint, so run as root or with
# perf_event_paranoid <= 1), and user and system CPU time from /proc. Counting every
# system call slows both proxies, so read the counts, not the req/s.
# With RATE set, the load is instead oha at that fixed rate (open loop), where the
# proxies' threads sleep between requests and each wake-up shows.
# Usage: [RATE=1000] perf/syscalls.sh [duration_s=10] [connections=50] [runs=2];
# SLUICE_BIN picks another sluice binary.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-50}; RUNS=${3:-2}; RATE=${RATE:-}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)"; exit 1; }
[ -z "$RATE" ] || command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
[ -z "$RATE" ] || command -v jq >/dev/null || { echo "needs jq (apt-get install jq)"; exit 1; }
. perf/lib.sh
start_all_proxies
hz=$(getconf CLK_TCK)
load() { # url secs -> requests answered
  if [ -n "$RATE" ]; then
    shoot "$1" "$RATE" "$2" | jq '[.statusCodeDistribution[]] | add'
  else
    wrk -t1 -c"$CONNS" -d"${2}s" -s perf/chat.lua "$1/v1/chat/completions" | awk '/requests in/ {print $1}'
  fi
}
for u in "$relay" "$pass" "$nginx" "$sluice"; do [ -z "$u" ] || load "$u" 2 >/dev/null; done # warm-up

echo "$([ -n "$RATE" ] && echo "oha -q $RATE" || echo "wrk -t1") -c$CONNS -d${DUR}s, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
fmt='%-12s %9s %13s %12s %13s %13s\n'
printf "$fmt" proxy req/s syscalls/req ctxsw/req user_µs/req sys_µs/req
measure() { # name url pid[,pid...] -> one row
  local name=$1 url=$2 pid=$3 u0 s0 u1 s1 n
  read -r u0 s0 < <(user_sys_ticks ${pid//,/ })
  perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o "$work/perf.$name" \
    -- sleep "$DUR" &
  local counting=$!
  n=$(load "$url" "$DUR")
  wait "$counting"
  read -r u1 s1 < <(user_sys_ticks ${pid//,/ })
  awk -F, -v name="$name" -v n="$n" -v d="$DUR" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v fmt="$fmt" '
    /raw_syscalls:sys_enter/ {sc = $1} /context-switches/ {cs = $1}
    END {printf fmt, name, int(n / d), sprintf("%.2f", sc / n), sprintf("%.3f", cs / n),
         sprintf("%.1f", u / hz * 1e6 / n), sprintf("%.1f", s / hz * 1e6 / n)}' "$work/perf.$name"
}
# At a fixed rate the relay and nginx show what a wake-up costs any proxy, not only
# those written with hyper (nginx: its worker processes, not the idle master).
nginx_workers=$([ -n "$nginx" ] && pgrep -d, -P "$nginx_pid" || true)
for _ in $(seq "$RUNS"); do
  [ -z "$RATE" ] || measure relay "$relay" "$relay_pid"
  measure passthrough "$pass" "$pass_pid"
  [ -z "$RATE" ] || [ -z "$nginx_workers" ] || measure nginx "$nginx" "$nginx_workers"
  measure sluice "$sluice" "$sluice_pid"
done
