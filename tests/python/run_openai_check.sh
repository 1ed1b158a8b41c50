#!/usr/bin/env bash
# Runs openai_check.py through sluice to fake-llm, all on loopback.
# Usage: tests/python/run_openai_check.sh [path/to/python]  (needs `openai` installed)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python3}
cargo build --quiet --bins
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

target/debug/fake-llm --port 0 --stream-chunks 4 >"$work/fake.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/fake.out" && break; sleep 0.1; done
fake_url=$(grep -o 'http://[0-9.:]*' "$work/fake.out" | head -1)

cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: fake-gpt
    litellm_params:
      model: openai/fake-upstream-model
      api_base: $fake_url/v1
      api_key: upstream-key
general_settings:
  master_key: sk-check
YAML
target/debug/sluice --config "$work/config.yaml" --host 127.0.0.1 --port 0 2>"$work/sluice.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/sluice.err" && break; sleep 0.1; done
sluice_url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sluice.err" | head -1)
[ -n "$sluice_url" ] || { cat "$work/sluice.err"; exit 1; }

"$PY" tests/python/openai_check.py "$sluice_url/v1"
