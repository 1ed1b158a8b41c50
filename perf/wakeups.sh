#!/usr/bin/env bash
# How each process of a proxied request comes to run at a fixed, light rate: a
# scheduler trace (`perf sched record -a`) while oha sends to one proxy, read by
# perf/wakeups.py. For the proxy, fake-llm and oha, each way of getting a CPU (woken
# by which process, on that process's own CPU or the other; or back after being
# preempted) with how often it happens a request, the median and p90 wait for the
# CPU once woken, and the mean time run. Tracing slows everything a little; read
# the counts and the differences, not the absolute times.
# Usage: perf/wakeups.sh [proxy=sluice] [rate=1000] [secs=3] [conns=50], proxy one
# of relay, passthrough, nginx, sluice (SLUICE_ARGS, SLUICE_BIN, PROXY_CPUS as for
# the other scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
PROXY=${1:-sluice}; RATE=${2:-1000}; SECS=${3:-3}; CONNS=${4:-50}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)"; exit 1; }
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
start_all_proxies
case $PROXY in
  relay | passthrough | sluice) ;;
  nginx) [ -n "$nginx" ] || { echo "nginx is not installed"; exit 1; } ;;
  *) echo "proxy: relay, passthrough, nginx or sluice"; exit 1 ;;
esac
proxy_pids=$(proxy_pids "$PROXY")
url=$(target_url "$PROXY")
shoot "$url" "$RATE" 2 >/dev/null # warm-up
echo "$PROXY, oha -q $RATE -c $CONNS, ${SECS}s traced, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
shoot "$url" "$RATE" "$((SECS + 2))" >"$work/oha.json" &
load=$!
sleep 1 # past connection set-up
# shoot runs oha in a subshell, or as itself where bash saves the fork.
oha_pid=$(pgrep -P "$load" -x oha || echo "$load")
perf sched record -a -o "$work/sched.data" -- sleep "$SECS" 2>/dev/null >&2
wait "$load"
perf sched timehist -w -i "$work/sched.data" >"$work/timehist.txt" 2>/dev/null
python3 perf/wakeups.py "$work/timehist.txt" "$((RATE * SECS))" \
  "$PROXY=$proxy_pids" "fake-llm=$fake_pid" "oha=$oha_pid"
