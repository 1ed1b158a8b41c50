#!/usr/bin/env bash
# Where a proxy's time goes at a fixed, light rate (target 2's load: oha -q, open
# loop), for sluice and for the bare passthrough alike, so that the difference
# between the two can be read off one graph. Both are built with the `profiling`
# profile (release plus line tables) and sampled in turn, each on its own for the
# same time at the same rate, so sample weights compare per request as they are.
# Writes flamegraphs/{sluice,passthrough}-RATE.svg, and flamegraphs/diff-RATE.svg:
# sluice's graph coloured by the difference (red: more time in sluice than in the
# passthrough). Prints CPU time sampled per request, in user space and in the
# kernel, and the functions whose own time differs the most.
# Usage: perf/flamegraph-rate.sh [rate=1000] [secs=10] [conns=50]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECS=${2:-10}; CONNS=${3:-50}
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)"; exit 1; }
PERF_NO_WRK=1
. perf/lib.sh
need_profiler
cargo build --profile profiling --quiet --bin sluice --example passthrough
SLUICE_BIN=target/profiling/sluice PASS_BIN=target/profiling/examples/passthrough \
  start_all_proxies
mkdir -p flamegraphs
rev=$(git describe --always --dirty 2>/dev/null || echo '?')
echo "oha -q $RATE -c $CONNS for ${SECS}s per proxy, perf record -F 4999, $(nproc) cores, $(date -u +%F), commit $rev"

profile() { # name pid url -> flamegraphs/NAME-RATE.{folded,svg}
  local out=flamegraphs/$1-$RATE
  shoot "$3" "$RATE" 2 >/dev/null # warm-up
  shoot "$3" "$RATE" "$((SECS + 2))" >"$work/$1.json" &
  local load=$!
  sleep 1 # past connection set-up
  # --all marks kernel frames with _[k].
  fold_samples "$2" "$SECS" 4999 "$out.folded" --all
  wait "$load"
  # The first frame is the thread's name, which differs between the two proxies: one
  # root for both, so that their graphs line up.
  sed -i 's/^[^;]*;/proxy;/' "$out.folded"
  inferno-flamegraph --minwidth 0.2 --title "$1 at $RATE req/s, oha -c$CONNS ($rev)" \
    <"$out.folded" >"$out.svg"
  printf '%s: %d req/s, p50 %.3f ms (under sampling), wrote %s\n' "$1" \
    "$(jq -r '.summary.requestsPerSec | floor' "$work/$1.json")" "$(ms "$work/$1.json" p50)" "$out.svg"
}
profile passthrough "$pass_pid" "$pass"
profile sluice "$sluice_pid" "$sluice"

pf=flamegraphs/passthrough-$RATE.folded sf=flamegraphs/sluice-$RATE.folded
inferno-diff-folded "$pf" "$sf" \
  | inferno-flamegraph --minwidth 0.2 --title "sluice against the passthrough at $RATE req/s ($rev)" \
    >"flamegraphs/diff-$RATE.svg"
echo "wrote flamegraphs/diff-$RATE.svg"

# Sample weights are cpu-clock nanoseconds; each proxy served RATE × SECS requests
# while sampled.
n=$((RATE * SECS))
echo "CPU sampled per request, µs"
printf '%-12s %8s %8s %8s\n' proxy total user kernel
for p in passthrough sluice; do
  awk -v n="$n" -v p="$p" '{ w = $NF; t += w; if ($(NF - 1) ~ /_\[k\]$/) k += w }
    END { printf "%-12s %8.1f %8.1f %8.1f\n", p, t / n / 1e3, (t - k) / n / 1e3, k / n / 1e3 }' \
    "flamegraphs/$p-$RATE.folded"
done
echo "own time per request, sluice minus passthrough, µs: the 25 largest differences either way"
# A frame's own time is the weight of the stacks that end in it.
awk -v n="$n" '{ w = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";");
                 d[f[k]] += (FILENAME == ARGV[1] ? -w : w) }
     END { for (s in d) { v = d[s] / n / 1e3; printf "%.3f %+8.2f  %s\n", v < 0 ? -v : v, v, s } }' \
  "$pf" "$sf" | sort -rn -k1,1 | awk 'NR <= 25' | cut -d' ' -f2- | cut -c1-150
