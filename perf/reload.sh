#!/usr/bin/env bash
# Reload under load: wrk drives sluice at full speed while the config is reloaded
# (SIGHUP) 20 times, changing the weights of deployments a and b and adding and
# removing deployment c. Prints wrk's totals (non-2xx responses and socket errors
# must be 0) and, for each reload, the weights in force and the traffic split seen
# in sluice's /metrics over the interval that followed.
# Usage: perf/reload.sh [seconds_between_reloads=1.5] [connections=32] [reloads=20]
set -euo pipefail
cd "$(dirname "$0")/.."
GAP=${1:-1.5}; CONNS=${2:-32}; RELOADS=${3:-20}
. perf/lib.sh

declare -A up
for d in a b c; do
  target/release/fake-llm --port 0 --id "$d" --workers 1 >"$work/fake-$d.out" 2>&1 &
  pids+=($!)
  up[$d]=$(wait_url "$work/fake-$d.out")
done

# Reload i: weights of a, b (and c when present) cycle through these.
weights=("1 1 -" "1 3 2" "3 1 -" "1 1 4" "4 1 -")
config() { # i -> config.yaml
  read -r wa wb wc <<<"${weights[$(($1 % ${#weights[@]}))]}"
  {
    echo "model_list:"
    for d in a b c; do
      w=$([ "$d" = a ] && echo "$wa" || { [ "$d" = b ] && echo "$wb" || echo "$wc"; })
      [ "$w" = - ] && continue
      echo "  - model_name: fake-gpt"
      echo "    litellm_params: {model: openai/fake-$d, api_base: \"${up[$d]}/v1\", api_key: k, weight: $w}"
      echo "    model_info: {id: $d}"
    done
    echo "router_settings: {num_retries: 0}"
  } >"$work/config.yaml"
  echo "$wa $wb $wc"
}

config 0 >/dev/null
target/release/sluice --config "$work/config.yaml" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
spid=$!
pids+=($spid)
sluice=$(wait_url "$work/sluice.err")

scrape() { curl -s "$sluice/metrics" >"$1"; }
split() { # before after weights -> "a=..% b=..% c=..%" seen vs expected
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
def counts(path):
    out = {}
    for line in open(path):
        m = re.match(r'litellm_deployment_total_requests_total\{.*model_id="(\w+)".*\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out
before, after = counts(sys.argv[1]), counts(sys.argv[2])
w = dict(zip("abc", sys.argv[3].split()))
w = {k: float(v) for k, v in w.items() if v != "-"}
seen = {k: after.get(k, 0) - before.get(k, 0) for k in "abc"}
n = sum(seen.values()) or 1
parts = []
for k in "abc":
    want = 100 * w[k] / sum(w.values()) if k in w else 0.0
    parts.append(f"{k} {100 * seen[k] / n:5.1f}% (want {want:4.1f}%)")
worst = max(abs(100 * seen[k] / n - (100 * w.get(k, 0) / sum(w.values()))) for k in "abc")
print(f"{n:6d} req  " + "  ".join(parts) + f"  max off {worst:.1f} pts")
PY
}

dur=$(awk -v g="$GAP" -v n="$RELOADS" 'BEGIN { printf "%d", 2 + g * n + 1.5 }')
echo "wrk -t1 -c$CONNS -d${dur}s through sluice, $RELOADS reloads ${GAP}s apart, $(nproc) cores, $(date -u +%F)"
start=$(date +%s.%N)
wrk -t1 -c"$CONNS" -d"${dur}s" -s perf/chat.lua "$sluice/v1/chat/completions" >"$work/wrk.out" 2>&1 &
wrkpid=$!
at() { # i -> wall-clock time of reload i (1-based), on a fixed schedule
  awk -v s="$start" -v g="$GAP" -v i="$1" 'BEGIN { printf "%.3f", s + 2 + (i - 1) * g }'
}
sleep_until() {
  sleep "$(awk -v t="$1" -v now="$(date +%s.%N)" 'BEGIN { d = t - now; print (d > 0 ? d : 0) }')"
}
for i in $(seq 1 "$RELOADS"); do
  sleep_until "$(at "$i")"
  w=$(config "$i")
  before=$(grep -c 'config reloaded' "$work/sluice.err" || true)
  kill -HUP "$spid"
  for _ in $(seq 100); do
    [ "$(grep -c 'config reloaded' "$work/sluice.err" || true)" -gt "$before" ] && break
    sleep 0.01
  done
  scrape "$work/m0"
  sleep_until "$(awk -v t="$(at $((i + 1)))" 'BEGIN { printf "%.3f", t - 0.05 }')"
  scrape "$work/m1"
  printf 'reload %2d  weights a b c = %-6s  ' "$i" "$w"
  split "$work/m0" "$work/m1" "$w"
done
wait "$wrkpid"
echo
grep -E 'Requests/sec|requests in' "$work/wrk.out"
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out"); echo "non-2xx responses: ${non2xx:-0}"
sock=$(grep 'Socket errors' "$work/wrk.out" || true); echo "socket errors: ${sock:-none}"
scrape "$work/m2"
grep -E '^sluice_config_reloads_total' "$work/m2"
grep -E '^litellm_proxy_total_requests_metric_total' "$work/m2"
echo "reload problems logged: $(grep -c 'reload rejected' "$work/sluice.err" || true)"
