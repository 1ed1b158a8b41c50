#!/usr/bin/env bash
# Closed-loop max throughput, same wrk load on each target in each run: fake-llm
# hit directly, through the bare hyper proxy examples/passthrough.rs, through nginx
# proxy_pass (when nginx is installed) and through sluice; everything on loopback.
# Prints requests/s for each and the ratios sluice/passthrough (what sluice's own
# work costs), sluice/nginx and sluice/direct. Then the CPU time each proxy spent
# per request (user + system, from /proc, nginx's workers included) and
# passthrough/sluice of it: on a shared machine whose req/s swing from run to run,
# that ratio moves much less.
# Usage: perf/throughput.sh [duration_s=10] [connections=50] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-50}; RUNS=${3:-3}
. perf/lib.sh
start_all_proxies
hz=$(getconf CLK_TCK)

rps() { # url [pids...] -> "requests/s microseconds-of-CPU-per-request" from one wrk run, or "- -"
  [ -n "$1" ] || { echo - -; return; }
  local url=$1; shift
  local t0; t0=$(ticks "$@")
  local r; r=$(wrk -t1 -c"$CONNS" -d"${DUR}s" -s perf/chat.lua "$url/v1/chat/completions" | awk '/Requests\/sec/ {print $2}')
  local t1; t1=$(ticks "$@")
  awk -v r="$r" -v t=$((t1 - t0)) -v hz="$hz" -v d="$DUR" 'BEGIN {printf "%s %.1f\n", r, t / hz * 1e6 / (r * d)}'
}
ratio() { [ "$2" = - ] && echo - || awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
nginx_pids=()
[ -z "$nginx" ] || nginx_pids=("$nginx_pid" $(pgrep -P "$nginx_pid"))
for u in "$pass" $nginx "$sluice"; do # warm-up
  wrk -t1 -c"$CONNS" -d2s -s perf/chat.lua "$u/v1/chat/completions" >/dev/null
done

echo "wrk -t1 -c$CONNS -d${DUR}s, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
fmt='%-6s %10s %11s %10s %10s %7s %7s %8s\n'
cfmt='%-6s %11s %10s %10s %11s\n'
printf "$fmt" run direct passthrough nginx sluice s/pass s/nginx s/direct
row() { printf "$fmt" "$1" "$2" "$3" "$4" "$5" "$(ratio "$5" "$3")" "$(ratio "$5" "$4")" "$(ratio "$5" "$2")"; }
for i in $(seq "$RUNS"); do
  read -r d _ <<<"$(rps "$fake")"
  read -r p pc <<<"$(rps "$pass" "$pass_pid")"
  read -r n nc <<<"$(rps "$nginx" "${nginx_pids[@]}")"
  read -r s sc <<<"$(rps "$sluice" "$sluice_pid")"
  row "$i" "$d" "$p" "$n" "$s"
  echo "$d $p $n $s $pc $nc $sc" >>"$work/rps"
done
col() { cut -d' ' -f"$1" "$work/rps" | median; }
row median "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)"
echo "CPU time per request (µs, user + system), medians of the same runs:"
printf "$cfmt" "" passthrough nginx sluice pass/sluice
printf "$cfmt" median "$(col 5)" "$(col 6)" "$(col 7)" "$(ratio "$(col 5)" "$(col 7)")"
