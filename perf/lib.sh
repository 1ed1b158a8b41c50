# Shared by the perf scripts (source it from the repository root): checks for wrk
# (unless PERF_NO_WRK is set), builds release binaries, makes a work dir, stops
# started processes on exit.
[ -n "${PERF_NO_WRK:-}" ] || command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bins
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# PROXY_CPUS (a taskset CPU list, e.g. 1) runs every proxy (relay, passthrough,
# nginx, sluice) on those CPUs only, the load generator and fake-llm wherever the
# scheduler puts them: the proxy on a core of its own. Each proxy sizes its threads
# or processes by the CPUs it may use.
proxy_pin=()
[ -z "${PROXY_CPUS:-}" ] || proxy_pin=(taskset -c "$PROXY_CPUS")

# The chat request the scripts driving oha send (wrk sends chat.lua's).
body='{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello in five words."}]}'

shoot() { # url rate secs -> oha's JSON report of the chat request at that fixed rate
  oha --no-tui --output-format json -z "${3}s" -q "$2" --latency-correction -c "${CONNS:-50}" \
    -m POST -T application/json -H 'Authorization: Bearer sk-1234' -d "$body" \
    "$1/v1/chat/completions"
}
ms() { jq -r "(.latencyPercentiles.$2 // 0) * 1000" "$1"; } # oha JSON, percentile key -> ms

wait_url() { # file -> first http://127.0.0.1:port printed in it
  for _ in $(seq 100); do grep -q 'http://' "$1" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://127.0.0.1:[0-9]*' "$1" | head -1
}

# Starts one fake-llm and writes $work/config.yaml, a one-deployment config
# pointing at it (model group $1, default `fake-gpt`; litellm_params model $2 and
# api_key $3); sets fake (its URL) and fake_pid.
start_fake() {
  # shellcheck disable=SC2086 # FAKE_ARGS is split on purpose
  target/release/fake-llm --port 0 ${FAKE_ARGS:-} >"$work/fake.out" 2>&1 &
  fake_pid=$!; pids+=($fake_pid)
  fake=$(wait_url "$work/fake.out")
  cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: ${1:-fake-gpt}
    litellm_params: {model: ${2:-openai/fake-upstream}, api_base: "$fake/v1", api_key: ${3:-k}}
YAML
}

# For the scripts that run each proxy under valgrind: checks for valgrind and oha,
# builds the passthrough and starts fake-llm (start_fake).
start_valgrind_run() {
  command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
  command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
  cargo build --release --quiet --example passthrough
  start_fake
}

# start_fake, then sluice on that config; also sets sluice (its URL) and
# sluice_pid. SLUICE_BIN picks another sluice binary (default
# target/release/sluice); SLUICE_ARGS adds to its command line (e.g.
# "--num_workers 1").
start_fake_and_sluice() {
  start_fake "$@"
  launch_sluice sluice "${SLUICE_BIN:-target/release/sluice}" "${SLUICE_ARGS:-}"
  sluice_pid=$launched_pid; sluice=$launched_url
}

# Starts sluice binary $2 with extra arguments $3 on $work/config.yaml, its log in
# $work/$1.err; sets launched_pid and launched_url.
launch_sluice() {
  # shellcheck disable=SC2086 # the extra arguments are split on purpose
  ${proxy_pin[@]+"${proxy_pin[@]}"} "$2" --config "$work/config.yaml" --host 127.0.0.1 --port 0 $3 2>"$work/$1.err" &
  launched_pid=$!; pids+=($launched_pid)
  launched_url=$(wait_url "$work/$1.err")
}

user_sys_ticks() { # pids... -> user and system clock ticks the processes have used so far, each summed
  for p in "$@"; do cat "/proc/$p/stat"; done | awk '{u += $14; s += $15} END {print u + 0, s + 0}'
}
ticks() { # pids... -> user + system clock ticks the processes have used so far, summed
  user_sys_ticks "$@" | awk '{print $1 + $2}'
}
median() { # numbers on stdin, one a line -> their median ("-" when they are "-")
  sort -g | awk '{v[NR] = $1} END {if (v[1] == "-") print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts nginx as a reverse proxy (proxy_pass with upstream keep-alive, one worker
# per core, no access log) in front of $1, if nginx is installed; sets nginx to its
# URL, or to nothing, and nginx_pid. NGINX_CPU_AFFINITY=auto pins its workers to
# the CPUs in turn, as sluice's --pin_workers does its own.
start_nginx_proxy() {
  nginx=
  local bin; bin=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$bin" ] || return 0
  local port; port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
${NGINX_CPU_AFFINITY:+worker_cpu_affinity $NGINX_CPU_AFFINITY;}
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream fake { server ${1#http://}; keepalive 256; }
  server {
    listen 127.0.0.1:$port reuseport;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
  ${proxy_pin[@]+"${proxy_pin[@]}"} "$bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx/stderr" &
  nginx_pid=$!; pids+=($nginx_pid)
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && { nginx="http://127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  echo "nginx did not start:" >&2; cat "$work/nginx/stderr" "$work/nginx/error.log" >&2 2>/dev/null || true
}

# fake-llm, sluice, the bare passthrough, the TCP relay and nginx (if installed) in
# front of it: sets fake, sluice, pass, relay and nginx (empty without nginx) to
# their URLs, and pass_pid, relay_pid and nginx_pid (nginx's master) beside
# fake_pid and sluice_pid. PASS_BIN picks another passthrough binary (default
# target/release/examples/passthrough).
start_all_proxies() {
  cargo build --release --quiet --example passthrough --example relay
  start_fake_and_sluice
  ${proxy_pin[@]+"${proxy_pin[@]}"} "${PASS_BIN:-target/release/examples/passthrough}" --upstream "$fake" --port 0 >"$work/pass.out" 2>&1 &
  pass_pid=$!; pids+=($pass_pid)
  pass=$(wait_url "$work/pass.out")
  ${proxy_pin[@]+"${proxy_pin[@]}"} target/release/examples/relay --upstream "$fake" --port 0 >"$work/relay.out" 2>&1 &
  relay_pid=$!; pids+=($relay_pid)
  relay=$(wait_url "$work/relay.out")
  start_nginx_proxy "$fake"
}
# A second sluice on the same config, when SLUICE2_BIN or SLUICE2_ARGS is set (the
# other defaulting to SLUICE_BIN's binary): sets sluice2 to its URL, or to nothing.
# Two builds or settings then take turns in one run.
start_second_sluice() {
  sluice2=
  [ -n "${SLUICE2_BIN:-}${SLUICE2_ARGS:-}" ] || return 0
  launch_sluice sluice2 "${SLUICE2_BIN:-${SLUICE_BIN:-target/release/sluice}}" "${SLUICE2_ARGS:-}"
  sluice2=$launched_url; sluice2_pid=$launched_pid
}
proxy_pids() { # relay|passthrough|nginx|sluice|sluice2 -> the processes serving it, comma-separated
  case $1 in relay) echo "$relay_pid" ;; passthrough) echo "$pass_pid" ;; sluice) echo "$sluice_pid" ;;
    sluice2) echo "$sluice2_pid" ;; nginx) pgrep -d, -P "$nginx_pid" ;; esac # nginx: its workers
}
target_url() { # direct|relay|passthrough|nginx|sluice|sluice2 -> its URL, once start_all_proxies ran
  case $1 in direct) echo "$fake" ;; relay) echo "$relay" ;; passthrough) echo "$pass" ;; nginx) echo "$nginx" ;; sluice) echo "$sluice" ;; sluice2) echo "$sluice2" ;; esac
}

# For the flamegraph scripts: perf, and inferno (installed with cargo if missing).
need_profiler() {
  command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)"; exit 1; }
  for tool in inferno-collapse-perf inferno-flamegraph inferno-diff-folded; do
    command -v "$tool" >/dev/null || { cargo install --locked inferno; return; }
  done
}
# Samples a process's stacks with perf's software cpu-clock (it works where hardware
# counters are not exposed), with DWARF call graphs, and folds them for inferno;
# sample weights are nanoseconds of CPU.
fold_samples() { # pid secs hz out.folded [inferno-collapse-perf args...]
  local pid=$1 secs=$2 hz=$3 out=$4; shift 4
  perf record -q -e cpu-clock -F "$hz" --call-graph dwarf,16384 -p "$pid" \
    -o "$work/perf.data" -- sleep "$secs" 2>/dev/null
  perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf "$@" >"$out"
}
