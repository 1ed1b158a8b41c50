# Shared by the run_*_check.sh scripts (source it from the repository root): builds
# the binaries, starts fake-llm and sluice on free loopback ports, stops them on exit.
cargo build --quiet --bins
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_fake [fake-llm options...]: sets fake_url.
start_fake() {
  target/debug/fake-llm --port 0 "$@" >"$work/fake.out" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/fake.out" && break; sleep 0.1; done
  fake_url=$(grep -o 'http://[0-9.:]*' "$work/fake.out" | head -1)
}

# start_sluice: serves $work/config.yaml; sets sluice_url.
start_sluice() {
  target/debug/sluice --config "$work/config.yaml" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/sluice.err" && break; sleep 0.1; done
  sluice_url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sluice.err" | head -1)
  [ -n "$sluice_url" ] || { cat "$work/sluice.err"; exit 1; }
}
