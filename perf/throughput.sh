#!/usr/bin/env bash
# Closed-loop max throughput, same wrk load on each target in each run: fake-llm
# hit directly, through the bare hyper proxy examples/passthrough.rs, through nginx
# proxy_pass (when nginx is installed) and through sluice; everything on loopback.
# Prints requests/s for each and the ratios sluice/passthrough (what sluice's own
# work costs), sluice/nginx and sluice/direct.
# Usage: perf/throughput.sh [duration_s=10] [connections=50] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-50}; RUNS=${3:-3}
. perf/lib.sh
start_all_proxies

rps() { # url -> requests/s from one wrk run, or - without a url
  [ -n "$1" ] || { echo -; return; }
  wrk -t1 -c"$CONNS" -d"${DUR}s" -s perf/chat.lua "$1/v1/chat/completions" \
    | awk '/Requests\/sec/ {print $2}'
}
ratio() { [ "$2" = - ] && echo - || awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
for u in "$pass" $nginx "$sluice"; do # warm-up
  wrk -t1 -c"$CONNS" -d2s -s perf/chat.lua "$u/v1/chat/completions" >/dev/null
done

echo "wrk -t1 -c$CONNS -d${DUR}s, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
fmt='%-6s %10s %11s %10s %10s %7s %7s %8s\n'
printf "$fmt" run direct passthrough nginx sluice s/pass s/nginx s/direct
row() { printf "$fmt" "$1" "$2" "$3" "$4" "$5" "$(ratio "$5" "$3")" "$(ratio "$5" "$4")" "$(ratio "$5" "$2")"; }
median() { sort -g | awk '{v[NR] = $1} END {if (v[1] == "-") print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for i in $(seq "$RUNS"); do
  d=$(rps "$fake"); p=$(rps "$pass"); n=$(rps "$nginx"); s=$(rps "$sluice")
  row "$i" "$d" "$p" "$n" "$s"
  echo "$d $p $n $s" >>"$work/rps"
done
col() { cut -d' ' -f"$1" "$work/rps" | median; }
row median "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)"
