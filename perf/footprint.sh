#!/usr/bin/env bash
# The memory one request touches, passthrough against sluice: distinct 64-byte
# lines of code and of data, counted from valgrind lackey's trace of every
# access (perf/footprint.py). At a light fixed rate (target 2) on a shared host,
# a request finds its caches taken by others, and each line it touches is a
# fetch from memory or a far cache: this is that cost, counted the same way on a
# busy machine or a quiet one. Each proxy runs under lackey in front of one
# fake-llm, serves WARM requests one at a time (oha -c 1) to warm up, then N more
# that are traced; the data lines are split into thread stacks, heap, the
# program's own constants and statics, and shared libraries.
# Usage: perf/footprint.sh [N=200]; WARM (default 200), SLUICE_BIN, PASS_BIN and
# SLUICE_ARGS as in the other scripts. About a minute (lackey runs each proxy
# some 100 times slower).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}; WARM=${WARM:-200}
PERF_NO_WRK=1
. perf/lib.sh
start_valgrind_run

footprint() { # name binary args... -> code lines, data lines, then data lines by place
  local name=$1 bin=$2; shift 2
  local flag=$work/$name.on maps=$work/$name.maps
  valgrind --tool=lackey --trace-mem=yes --log-fd=9 "$bin" "$@" \
    9> >(perf/footprint.py "$flag" "$maps" "$N" "$bin" >"$work/$name.out") >"$work/$name.log" 2>&1 &
  local vg=$!
  for _ in $(seq 600); do grep -q 'listening on http://' "$work/$name.log" && break; sleep 0.1; done
  local url; url=$(grep 'listening on' "$work/$name.log" | grep -o 'http://[0-9.]*:[0-9]*' | head -1)
  url=${url/0.0.0.0/127.0.0.1}
  local chat=(--no-tui -c 1 -m POST -T application/json -d "$body" "$url/v1/chat/completions")
  oha -n "$WARM" "${chat[@]}" >/dev/null
  touch "$flag"; sleep 0.5
  oha -n "$N" "${chat[@]}" >/dev/null
  sleep 0.5; rm "$flag"
  cat "/proc/$vg/maps" >"$maps"
  kill "$vg"; wait "$vg" 2>/dev/null || true
  for _ in $(seq 600); do [ -s "$work/$name.out" ] && break; sleep 0.1; done
  cat "$work/$name.out"
}

echo "valgrind lackey, oha -c 1, $N requests after $WARM to warm up, $(date -u +%F), commit $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "distinct 64-byte lines a request touches (median over the requests)"
p=$(footprint pass "${PASS_BIN:-target/release/examples/passthrough}" --upstream "$fake" --port 0)
# shellcheck disable=SC2086 # SLUICE_ARGS is split into arguments on purpose
s=$(footprint sluice "${SLUICE_BIN:-target/release/sluice}" --config "$work/config.yaml" --host 127.0.0.1 --port 0 ${SLUICE_ARGS:-})
printf '%-12s %6s %6s %6s %6s %8s %6s %6s\n' proxy code data all stack heap program libs
for row in "passthrough $p" "sluice $s"; do
  # shellcheck disable=SC2086 # the row is split into its fields on purpose
  set -- $row
  printf '%-12s %6d %6d %6d %6d %8d %6d %6d\n' "$1" "$2" "$3" $(($2 + $3)) "$4" "$5" "$6" "$7"
done
