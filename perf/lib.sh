# Shared by the perf scripts (source it from the repository root): checks for wrk,
# builds release binaries, makes a work dir, stops started processes on exit.
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bins
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_url() { # file -> first http://127.0.0.1:port printed in it
  for _ in $(seq 100); do grep -q 'http://' "$1" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://127.0.0.1:[0-9]*' "$1" | head -1
}

# Starts one fake-llm and sluice on a one-deployment config pointing at it (model
# `fake-gpt`); sets fake, sluice (their URLs) and fake_pid, sluice_pid.
start_fake_and_sluice() {
  target/release/fake-llm --port 0 >"$work/fake.out" 2>&1 &
  fake_pid=$!; pids+=($fake_pid)
  fake=$(wait_url "$work/fake.out")
  cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: fake-gpt
    litellm_params: {model: openai/fake-upstream, api_base: "$fake/v1", api_key: k}
YAML
  target/release/sluice --config "$work/config.yaml" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
  sluice_pid=$!; pids+=($sluice_pid)
  sluice=$(wait_url "$work/sluice.err")
}
