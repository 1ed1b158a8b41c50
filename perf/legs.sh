#!/usr/bin/env bash
# How long each proxy holds a request at a fixed, light rate, from a trace of its
# system calls (read by perf/legs.py): the request leg, from being woken by epoll
# with the client's request to the first write upstream, and the answer leg, from
# being woken with the upstream's answer to the first write to the client. Each leg
# is split into user space, system calls and time off the CPU (preempted). What a
# proxy does in its legs is the latency it adds beyond the hop itself (the relay's
# legs); what it does after a leg's write is not, at a light rate. Tracing makes
# each system call slower by about a microsecond: compare proxies, and read the
# user-space column above all.
# Usage: perf/legs.sh [rate=1000] [secs=3] [conns=50]; proxies in turn: relay,
# passthrough, nginx (if installed), sluice, and sluice2 when SLUICE2_BIN or
# SLUICE2_ARGS is set (SLUICE_BIN, SLUICE_ARGS, PROXY_CPUS as for the other scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECS=${2:-3}; CONNS=${3:-50}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)"; exit 1; }
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
start_all_proxies
start_second_sluice
proxies=(relay passthrough)
[ -z "$nginx" ] || proxies+=(nginx)
proxies+=(sluice)
[ -z "$sluice2" ] || proxies+=(sluice2)
echo "oha -q $RATE -c $CONNS, ${SECS}s traced per proxy, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "µs; p50 and p90 of the whole leg, then medians of its parts"
for p in "${proxies[@]}"; do
  url=$(target_url "$p")
  serving=$(proxy_pids "$p") # not `pids`: lib.sh stops what that array holds on exit
  shoot "$url" "$RATE" 2 >/dev/null # warm-up
  shoot "$url" "$RATE" "$((SECS + 2))" >/dev/null &
  load=$!
  sleep 1 # past connection set-up
  # Which sockets go where, before and after the trace (the load is still on), so
  # that connections opened while tracing are known too.
  # shellcheck disable=SC2086 # one pid a word
  python3 perf/legs.py fds "${fake##*:}" "${url##*:}" ${serving//,/ } >"$work/$p.fds"
  perf record -q -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -e sched:sched_switch \
    -p "$serving" -o "$work/$p.data" -- sleep "$SECS" 2>/dev/null >&2
  # shellcheck disable=SC2086
  python3 perf/legs.py fds "${fake##*:}" "${url##*:}" ${serving//,/ } >>"$work/$p.fds"
  wait "$load"
  perf script -i "$work/$p.data" --ns -F comm,pid,tid,time,event,trace 2>/dev/null >"$work/$p.txt"
  echo "== $p"
  python3 perf/legs.py read "$work/$p.txt" "$work/$p.fds"
done
