#!/usr/bin/env bash
# Statically linked sluice: build it (glibc, crt-static, own target dir so the
# normal build stays valid), check it with file and ldd, run --version, then
# serve configs/quickstart.yaml on a free port and answer one request.
# Usage: perf/static.sh
set -euo pipefail
cd "$(dirname "$0")/.."
triple=x86_64-unknown-linux-gnu
bin=target/static/$triple/release/sluice
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "+ RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --bin sluice --target $triple --target-dir target/static"
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --quiet --bin sluice --target "$triple" --target-dir target/static
echo "+ file $bin"; file "$bin"
echo "+ ldd $bin"; ldd "$bin" 2>&1 || true
file "$bin" | grep -qE 'static(ally|-pie) linked' || { echo "FAIL: not statically linked"; exit 1; }
echo "size: $(du -h "$bin" | cut -f1)"
echo "+ $bin --version"; "$bin" --version

"$bin" --config configs/quickstart.yaml --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://' "$work/sluice.err" && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sluice.err" | head -1)
[ -n "$url" ] || { echo "FAIL: no listening line"; cat "$work/sluice.err"; exit 1; }
echo "+ curl $url/v1/chat/completions"
curl -sS --fail-with-body -m 5 "$url/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}'
echo
echo "PASS"
