#!/usr/bin/env bash
# The locust load tests of LiteLLM's docs, against fake-llm upstreams on 127.0.0.1;
# perf/locustfile.py is the user (closed loop, one short chat completion after
# another, no wait). Locust runs headless with --processes N (LOCUST_PROCESSES,
# default one per core), USERS users all started in the first second.
#   perf/locust.sh fake         "1K RPS": one fake-llm, sluice in front of it (one
#                               deployment); the same locust load on fake-llm
#                               directly, then through sluice. Prints requests,
#                               failures, req/s, median/average/p99 ms of each and
#                               the ratio sluice/direct req/s. On one box locust
#                               (Python) is the bottleneck long before sluice or
#                               fake-llm: the absolute req/s measure locust and the
#                               machine, the ratio to direct is what says something
#                               about sluice.
#   perf/locust.sh ratelimited  "endpoints with rate limits": two fake-llm upstreams
#                               answering 429 beyond 10000 requests a UTC minute,
#                               one sluice with both in one group at rpm 10000 each,
#                               usage-based-routing-v2 and pre-call checks. Prints
#                               locust's totals, its failures by status, what sluice
#                               admitted and answered per UTC minute (from /metrics,
#                               polled every second) and the upstreams' counters.
#                               Expect no upstream 429 and at most 20000 successes in
#                               a minute; exits 1 otherwise, or if sluice answered
#                               429 while a deployment still had quota.
# Usage: perf/locust.sh [fake|ratelimited] [users=1000] [secs=60]
# Needs python3 if locust is not on PATH: it is installed into target/perf-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:-fake}; USERS=${2:-1000}; SECS=${3:-60}
PROCS=${LOCUST_PROCESSES:-$(nproc)}
RPM=10000 # ratelimited: each upstream's and each deployment's requests per minute
case "$SCENARIO" in
  fake | ratelimited) ;;
  *) echo "usage: $0 [fake|ratelimited] [users=1000] [secs=60]" >&2; exit 2 ;;
esac

# Every user holds a connection to the target, and sluice one more upstream.
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1048576
want=$((hard < 65536 ? hard : 65536))
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"
[ "$(ulimit -n)" -ge $((2 * USERS + 256)) ] \
  || { echo "open-files limit $(ulimit -n) is too low for $USERS users" >&2; exit 1; }

echo "+ cargo build --release --bins"
PERF_NO_WRK=1 . perf/lib.sh # builds; sets work, pids, cleanup (on EXIT), wait_url, start_fake_and_sluice
trap 'exit 130' INT
trap 'exit 143' TERM

if command -v locust >/dev/null; then
  LOCUST=$(command -v locust)
else
  LOCUST=target/perf-venv/bin/locust
  if [ ! -x "$LOCUST" ]; then
    echo "+ python3 -m venv target/perf-venv && target/perf-venv/bin/pip install locust"
    python3 -m venv target/perf-venv
    target/perf-venv/bin/pip install --quiet --disable-pip-version-check locust
  fi
fi
export LOCUST_MODEL=fake-openai-endpoint

show() { printf '+'; printf ' %q' "$@"; printf '\n'; }
need_url() { [ -n "$2" ] || { echo "$1 did not start:" >&2; cat "$3" >&2; exit 1; }; }
stop() { # pid...: SIGTERM, then wait for each (fake-llm prints its counters)
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cpu() { # pid -> CPU seconds used so far (user + system)
  awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz}' "/proc/$1/stat"
}
run_locust() { # name url: headless locust run, CSVs at $work/NAME_*.csv
  local cmd=("$LOCUST" -f perf/locustfile.py --headless -u "$USERS" -r "$USERS" -t "${SECS}s"
    --processes "$PROCS" -H "$2" --csv "$work/$1" --only-summary)
  show "${cmd[@]}"
  "${cmd[@]}" >"$work/$1.locust.log" 2>&1 &
  local lpid=$! rc=0
  pids+=("$lpid")
  wait "$lpid" || rc=$? # 1 when any request failed
  [ -s "$work/$1_stats.csv" ] || { echo "locust ($rc) wrote no stats:" >&2; tail -30 "$work/$1.locust.log" >&2; exit 1; }
  grep -E '/(WARNING|ERROR|CRITICAL)/' "$work/$1.locust.log" | sed 's/^\[[^]]*\] [^/]*\///' \
    | sort | uniq -c | sort -rn | head -5 | sed 's/^/  locust: /' || true
}
agg() { # name -> "requests failures req/s median avg p99" from the Aggregated row
  awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; next}
    $2 == "Aggregated" {printf "%d %d %.1f %s %.1f %s\n", $c["Request Count"], $c["Failure Count"],
      $c["Requests/s"], $c["Median Response Time"], $c["Average Response Time"], $c["99%"]}' "$work/$1_stats.csv"
}
failures() { # name -> one line per distinct failure: occurrences, message
  awk -F, 'NR > 1 && $4 > 0 {m = $3; gsub(/^CatchResponseError\(.|.\)$/, "", m); printf "  %8d  %s\n", $4, m}' \
    "$work/$1_failures.csv"
}
problems() { # log -> its warn/error lines, colour codes stripped, in $work/problems
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -iE '\b(warn|warning|error)\b' >"$work/problems" || true
  echo "sluice stderr: $(wc -l <"$work/problems") warn/error lines"
  head -5 "$work/problems" | sed 's/^/  /'
}
counters() { # log -> fake-llm's counter line
  grep -o 'requests=.*' "$1" || echo "no counters printed"
}

echo "== locust scenario $SCENARIO: perf/locust.sh $*"
echo "date: $(date -u '+%F %T UTC'); machine: $(uname -m), nproc $(nproc), load $(cut -d" " -f1-3 /proc/loadavg); commit: $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "$("$LOCUST" --version 2>&1 | head -1); $USERS users, ${SECS}s, --processes $PROCS"

if [ "$SCENARIO" = fake ]; then
  start_fake_and_sluice fake-openai-endpoint openai/any test
  need_url fake-llm "$fake" "$work/fake.out"
  need_url sluice "$sluice" "$work/sluice.err"
  echo "fake-llm $fake, sluice $sluice; config:"; sed 's/^/  /' "$work/config.yaml"

  c0s=$(cpu "$sluice_pid"); c0f=$(cpu "$fake_pid")
  run_locust direct "$fake"
  c1s=$(cpu "$sluice_pid"); c1f=$(cpu "$fake_pid")
  run_locust sluice "$sluice"
  c2s=$(cpu "$sluice_pid"); c2f=$(cpu "$fake_pid")
  stop "$sluice_pid" "$fake_pid"

  echo
  printf '%-8s %9s %9s %9s %10s %10s %8s\n' target requests failures req/s median_ms avg_ms p99_ms
  declare -A rps
  for t in direct sluice; do
    read -r n f r med avg p99 < <(agg "$t")
    printf '%-8s %9s %9s %9s %10s %10s %8s\n' "$t" "$n" "$f" "$r" "$med" "$avg" "$p99"
    rps[$t]=$r
  done
  awk -v s="${rps[sluice]}" -v d="${rps[direct]}" 'BEGIN {printf "sluice/direct req/s: %.2f\n", s / d}'
  echo "CPU seconds in the direct run: fake-llm $(awk -v a="$c0f" -v b="$c1f" 'BEGIN{print b - a}');" \
    "in the sluice run: sluice $(awk -v a="$c1s" -v b="$c2s" 'BEGIN{print b - a}')," \
    "fake-llm $(awk -v a="$c1f" -v b="$c2f" 'BEGIN{print b - a}') (of $((SECS * $(nproc))) core-seconds; locust has the rest)"
  for t in direct sluice; do
    [ "$(wc -l <"$work/${t}_failures.csv")" -le 1 ] || { echo "$t failures:"; failures "$t"; }
  done
  echo "fake-llm counters (both runs): $(counters "$work/fake.out")"
  problems "$work/sluice.err"
  exit 0
fi

# ratelimited: two upstreams at --rpm, two deployments at rpm in one group.
ups=() up_pids=()
for i in 1 2; do
  show target/release/fake-llm --port 0 --id "up$i" --rpm "$RPM"
  target/release/fake-llm --port 0 --id "up$i" --rpm "$RPM" >"$work/fake$i.out" 2>&1 &
  up_pids+=($!); pids+=($!)
  url=$(wait_url "$work/fake$i.out"); need_url "fake-llm up$i" "$url" "$work/fake$i.out"
  ups+=("$url")
done
cfg=$work/ratelimited.yaml
cat >"$cfg" <<YAML
model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/my-fake-model
      api_base: ${ups[0]}/v1
      api_key: my-fake-key
      rpm: $RPM
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/my-fake-model-2
      api_base: ${ups[1]}/v1
      api_key: my-fake-key
      rpm: $RPM

router_settings:
  routing_strategy: usage-based-routing-v2
  enable_pre_call_checks: true
YAML
echo "config ($cfg):"; sed 's/^/  /' "$cfg"
show target/release/sluice --config "$cfg" --host 127.0.0.1 --port 0
target/release/sluice --config "$cfg" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
sluice_pid=$!; pids+=("$sluice_pid")
sluice=$(wait_url "$work/sluice.err"); need_url sluice "$sluice" "$work/sluice.err"

# Every second: the time before and after a /metrics scrape, sluice's answers so far
# (200, 429, other), each deployment's admitted requests this minute, the requests
# left this minute over both deployments, and upstream failures sluice saw.
poll() {
  while :; do
    local b a m
    b=$(date +%s.%N); m=$(curl -s --max-time 2 "$sluice/metrics" || true); a=$(date +%s.%N)
    awk -v b="$b" -v a="$a" '
      /^litellm_proxy_total_requests_metric_total/ {
        if ($0 ~ /status_code="200"/) ok += $NF; else if ($0 ~ /status_code="429"/) r429 += $NF; else other += $NF }
      /^sluice_deployment_requests_this_minute/ { used[++n] = $NF }
      /^litellm_remaining_requests/ { left += $NF }
      /^litellm_deployment_failure_responses_total/ { upfail += $NF }
      END { if (n) printf "%s %s %d %d %d %d %d %d %d\n", b, a, ok, r429, other, used[1], used[2], left, upfail }' <<<"$m"
    sleep 1
  done
}
poll >"$work/metrics.txt" &
poll_pid=$!; pids+=("$poll_pid")
sleep 1.5

c0s=$(cpu "$sluice_pid")
run_locust ratelimited "$sluice"
c1s=$(cpu "$sluice_pid")
sleep 1.5 # one more scrape after the last answer
stop "$poll_pid"
stop "$sluice_pid" "${up_pids[@]}"

echo
read -r n f r med avg p99 < <(agg ratelimited)
ok=$((n - f))
printf '%9s %9s %9s %9s %10s %10s %8s\n' requests successes failures req/s median_ms avg_ms p99_ms
printf '%9s %9s %9s %9s %10s %10s %8s\n' "$n" "$ok" "$f" "$r" "$med" "$avg" "$p99"
echo "failures by status (locust):"; failures ratelimited
echo "sluice used $(awk -v a="$c0s" -v b="$c1s" 'BEGIN{print b - a}') CPU seconds of $((SECS * $(nproc))) core-seconds"

# Per UTC minute, from the scrapes: admitted = the highest requests_this_minute seen
# for each deployment; 200/429/other = counter growth since the previous minute's
# last scrape (so +-1 s at the edges). A 429 counts as "with quota left" if requests
# were still left at a scrape later in the same minute: the quota only shrinks
# within a minute, so there were some when that 429 was sent.
echo "per UTC minute (sluice /metrics, scraped every second):"
minutes=$(awk -v rpm="$RPM" '
  function mm(t) { return int(t / 60) }
  function hhmm(m) { return sprintf("%02d:%02d", int(m / 60) % 24, m % 60) }
  {
    same = mm($1) == mm($2); m = mm($1)
    if (same) {
      if (!(m in seen)) { seen[m] = 1; order[++k] = m }
      if ($6 > u1[m]) u1[m] = $6
      if ($7 > u2[m]) u2[m] = $7
      ok[m] = $3; r4[m] = $4; ot[m] = $5
    }
    if (NR > 1 && mm(pb) == mm($2) && $8 > 0 && $4 > p4) quota_left += $4 - p4
    pb = $1; p4 = $4; upfail = $9
  }
  END {
    printf "  %-6s %12s %12s %8s %8s %6s\n", "minute", "admitted_up1", "admitted_up2", "200", "429", "other" > "/dev/stderr"
    for (i = 1; i <= k; i++) {
      m = order[i]
      d_ok = ok[m] - pok; d4 = r4[m] - p4m; dot = ot[m] - pot
      pok = ok[m]; p4m = r4[m]; pot = ot[m]
      if (d_ok + d4 + dot == 0) continue
      printf "  %-6s %12d %12d %8d %8d %6d\n", hhmm(m), u1[m], u2[m], d_ok, d4, dot > "/dev/stderr"
      touched++
      if (u1[m] > rpm || u2[m] > rpm) over++
      if (d_ok > 2 * rpm) overok++
    }
    printf "%d %d %d %d %d\n", touched, over + 0, overok + 0, quota_left + 0, upfail + 0
  }' "$work/metrics.txt" 2>&1 >"$work/minutes")
echo "$minutes"
read -r touched over overok quota_left upfail <"$work/minutes"

echo "upstream counters (on SIGTERM):"
up429=0
for i in 1 2; do
  line=$(counters "$work/fake$i.out")
  echo "  up$i ${ups[i - 1]}: $line"
  k=$(sed -n 's/.*rate_limited=\([0-9]*\).*/\1/p' <<<"$line")
  up429=$((up429 + ${k:-0}))
done
problems "$work/sluice.err"

limit=$((2 * RPM * touched))
echo "verdict: upstream 429s $up429 (expect 0); upstream failures seen by sluice $upfail;" \
  "successes $ok over $touched UTC minutes (at most $limit); minutes over $RPM admitted to a deployment: $over;" \
  "minutes over $((2 * RPM)) answered 200: $overok; sluice 429s while quota was left: $quota_left"
if [ "$up429" -eq 0 ] && [ "$ok" -le "$limit" ] && [ "$over" -eq 0 ] && [ "$overok" -eq 0 ] && [ "$quota_left" -eq 0 ]; then
  echo "result: PASS"
else
  echo "result: FAIL"; exit 1
fi
