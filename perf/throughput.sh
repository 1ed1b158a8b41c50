#!/usr/bin/env bash
# Closed-loop max throughput, same wrk load on three targets in each run: fake-llm
# hit directly, through the bare hyper proxy examples/passthrough.rs, and through
# sluice; everything on loopback. Prints requests/s for each and the ratios
# sluice/passthrough (what sluice's own work costs) and sluice/direct.
# Usage: perf/throughput.sh [duration_s=10] [connections=50] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-50}; RUNS=${3:-3}
. perf/lib.sh
cargo build --release --quiet --example passthrough

start_fake_and_sluice
target/release/examples/passthrough --upstream "$fake" --port 0 >"$work/pass.out" 2>&1 &
pids+=($!)
pass=$(wait_url "$work/pass.out")

rps() { # url -> requests/s from one wrk run
  wrk -t1 -c"$CONNS" -d"${DUR}s" -s perf/chat.lua "$1/v1/chat/completions" \
    | awk '/Requests\/sec/ {print $2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
for u in "$pass" "$sluice"; do # warm-up
  wrk -t1 -c"$CONNS" -d2s -s perf/chat.lua "$u/v1/chat/completions" >/dev/null
done

echo "wrk -t1 -c$CONNS -d${DUR}s, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
printf '%-5s %12s %12s %12s %10s %10s\n' run direct passthrough sluice s/pass s/direct
row() { printf '%-5s %12s %12s %12s %10s %10s\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3")" "$(ratio "$4" "$2")"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for i in $(seq "$RUNS"); do
  d=$(rps "$fake"); p=$(rps "$pass"); s=$(rps "$sluice")
  row "$i" "$d" "$p" "$s"
  echo "$d $p $s" >>"$work/rps"
done
row median "$(cut -d' ' -f1 "$work/rps" | median)" "$(cut -d' ' -f2 "$work/rps" | median)" "$(cut -d' ' -f3 "$work/rps" | median)"
