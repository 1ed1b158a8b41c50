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
