#!/usr/bin/env bash
# A CPU flamegraph of sluice under closed-loop wrk load (one fake-llm upstream, the
# same load as throughput.sh), and the functions with the most samples of their own.
# Builds the `profiling` profile (release plus line tables), samples sluice with
# `perf record -e cpu-clock --call-graph dwarf` (software clock: works where hardware
# counters are not exposed), folds and draws with inferno (installed with cargo if
# missing). Writes flamegraphs/sluice-wrk.svg and flamegraphs/sluice-wrk.folded.
# Usage: perf/flamegraph.sh [secs=8] [connections=50]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}; CONNS=${2:-50}
. perf/lib.sh
need_profiler
cargo build --profile profiling --quiet --bin sluice
SLUICE_BIN=target/profiling/sluice start_fake_and_sluice
mkdir -p flamegraphs
out=flamegraphs/sluice-wrk

wrk -t1 -c"$CONNS" -d"$((SECS + 3))s" -s perf/chat.lua "$sluice/v1/chat/completions" >"$work/wrk.out" &
load=$!
sleep 1 # past connection set-up
fold_samples "$sluice_pid" "$SECS" 999 "$out.folded"
wait "$load"
inferno-flamegraph --minwidth 0.5 --title "sluice under wrk -t1 -c$CONNS ($(git describe --always --dirty 2>/dev/null || echo '?'))" \
  <"$out.folded" >"$out.svg"

echo "wrk -t1 -c$CONNS, $(nproc) cores, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
grep -E 'Requests/sec' "$work/wrk.out" | sed 's/^ */wrk: /'
# Samples are weighted by their cpu-clock period, in nanoseconds.
echo "wrote $out.svg ($(awk '{n += $NF} END {printf "%.1f", n / 1e9}' "$out.folded") CPU-seconds sampled)"
echo "share of samples: own code of the hottest functions"
# The top 25 by awk, which reads to the end: `head` would end `sort` with SIGPIPE,
# which pipefail turns into the script's exit.
awk '{ n = $NF; t += n; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); self[f[k]] += n }
     END { for (s in self) printf "%6.2f%%  %s\n", 100 * self[s] / t, s }' "$out.folded" \
  | sort -rn | awk 'NR <= 25' | cut -c1-140
echo "share of samples: inside these (inclusive)"
for pat in 'routes::handle' 'upstream::' 'headers::finish' 'Tracked::finish' 'request::Parsed' 'scan::' 'router::' 'limiter::' 'entry_SYSCALL'; do
  awk -v p="$pat" '{ n = $NF; t += n; if (index($0, p)) s += n } END { printf "%6.2f%%  %s\n", 100 * s / t, p }' "$out.folded"
done
