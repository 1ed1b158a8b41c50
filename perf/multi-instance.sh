#!/usr/bin/env bash
# Two sluice replicas sharing one Redis in front of two fake-llm upstreams: does
# the pair keep each deployment under its rpm together? Everything on 127.0.0.1.
#   perf/multi-instance.sh       A: upstreams --rpm 100, deployments rpm 100 each,
#                                   10 bursts of 600 concurrent requests, 10 s apart;
#                                   expect <= 200 successes per minute, no upstream 429.
#   perf/multi-instance.sh big   B: unlimited upstreams, deployments rpm 10000 each,
#                                   1170 req/s open loop for 60 s; expect <= 20000
#                                   successes per minute, and close to it.
# Prints the load generator's per-minute table, the upstreams' own counters and a
# verdict; exits 1 if a limit was broken.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-small}" in
  small | a | A) scenario=A; up_rpm=(--rpm 100); dep_rpm=100
    load_args=(--bursts 10 --burst-size 600 --pause-secs 10) ;;
  big | b | B) scenario=B; up_rpm=(); dep_rpm=10000
    load_args=(--rate 1170 --duration-secs 60) ;;
  *) echo "usage: $0 [big]" >&2; exit 2 ;;
esac
limit=$((2 * dep_rpm))
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show() { printf '+'; printf ' %q' "$@"; printf '\n'; }
start() { # log-file command... : start in the background, remember its PID
  local log=$1; shift
  show "$@"
  "$@" >"$log" 2>&1 &
  pids+=($!)
  last_pid=$!
}
wait_url() { # log-file pid -> the http://127.0.0.1:PORT the process printed
  for _ in $(seq 200); do
    grep -q 'listening on http://' "$1" 2>/dev/null && break
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
  grep -o 'http://127\.0\.0\.1:[0-9]*' "$1" | head -1 | grep . || { echo "no address in $1" >&2; exit 1; }
}
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((30000 + (RANDOM * 32768 + RANDOM) % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port found" >&2; exit 1
}

echo "== sluice multi-instance scenario $scenario: perf/multi-instance.sh $*"
echo "date: $(date -u '+%F %T UTC'); machine: $(uname -m), nproc $(nproc); commit: $(git describe --always --dirty 2>/dev/null || echo '?')"
show cargo build --release --bins --examples
cargo build --release --quiet --bins --examples

redis_port=$(free_port)
start "$work/redis.log" redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
redis_pid=$last_pid
for _ in $(seq 100); do grep -q 'Ready to accept' "$work/redis.log" && break; kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.05; done
grep -q 'Ready to accept' "$work/redis.log" || { echo "redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }

ups=() up_pids=()
for i in 1 2; do
  start "$work/fake$i.log" target/release/fake-llm --port 0 --id "up$i" "${up_rpm[@]}"
  up_pids+=("$last_pid")
  url=$(wait_url "$work/fake$i.log" "$last_pid")
  ups+=("$url")
done

cfg=$work/multi-instance.yaml
cat >"$cfg" <<YAML
model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/my-fake-model
      api_base: ${ups[0]}
      api_key: my-fake-key
      rpm: $dep_rpm
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/my-fake-model-2
      api_base: ${ups[1]}
      api_key: my-fake-key
      rpm: $dep_rpm

router_settings:
  routing_strategy: usage-based-routing-v2
  enable_pre_call_checks: true
  num_retries: 0
  redis_host: 127.0.0.1
  redis_port: $redis_port
YAML
echo "config ($cfg):"; sed 's/^/  /' "$cfg"

replicas=() sluice_pids=()
for i in 1 2; do
  start "$work/sluice$i.log" target/release/sluice --config "$cfg" --host 127.0.0.1 --port 0
  sluice_pids+=("$last_pid")
  url=$(wait_url "$work/sluice$i.log" "$last_pid")
  replicas+=("$url")
done

load=(target/release/examples/load)
for r in "${replicas[@]}"; do load+=(--url "$r"); done
load+=("${load_args[@]}")
show "${load[@]}"
"${load[@]}" | tee "$work/load.txt"

# Stop the replicas, then the upstreams, which print their counters on SIGTERM.
for p in "${sluice_pids[@]}" "${up_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
echo "counters:"
rate_limited=0
for i in 1 2; do
  line=$(grep 'fake-llm: stopped' "$work/fake$i.log" || echo "fake-llm: no counters printed")
  echo "  up$i ${ups[i - 1]}: $line"
  n=$(sed -n 's/.*rate_limited=\([0-9]*\).*/\1/p' <<<"$line")
  rate_limited=$((rate_limited + ${n:-0}))
done
for i in 1 2; do # replicas' own complaints, colour codes stripped
  sed 's/\x1b\[[0-9;]*m//g' "$work/sluice$i.log" | grep -iE '\b(warn|error)\b' >"$work/problems$i" || true
  echo "  sluice$i ${replicas[i - 1]}: $(wc -l <"$work/problems$i") warn/error log lines"
  head -3 "$work/problems$i" | sed 's/^/    /'
done

# Verdict from the table's minute rows: minute requests ok ok_late [failures...].
# A success sent in minute M but answered in M+1 (ok_late) may count in either, so
# minute M's admitted successes lie in [ok - ok_late, ok + ok_late of M-1].
verdict=$(awk -v limit="$limit" -v upstream429="$rate_limited" '
  /^[0-9][0-9]:[0-9][0-9] / {
    n++; if ($3 > max) max = $3
    if ($3 - $4 > limit) over++; else if ($3 + prev > limit) maybe++
    if ($2 >= limit && $3 < 0.95 * limit) short++
    prev = $4
  }
  END {
    printf "max successes in one minute: %d (limit %d, %d minutes); minutes over the limit: %d", max, limit, n, over
    printf " (+%d only if boundary requests counted there); saturated minutes under 95%% of it: %d", maybe, short
    printf "; upstream 429s: %d\n", upstream429
    print (over || upstream429 || !n) ? "FAIL" : "PASS"
  }' "$work/load.txt")
echo "$verdict" | head -1
result=$(echo "$verdict" | tail -1)
echo "result: $result"
[ "$result" = PASS ]
