#!/usr/bin/env bash
# Runs metrics_check.py against sluice (two deployments on one fake-llm), all on
# loopback. Usage: tests/python/run_metrics_check.sh [path/to/python]
# (needs `prometheus_client` installed)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python3}
. tests/python/lib.sh

start_fake --stream-chunks 3
cat >"$work/config.yaml" <<YAML
model_list:
  - model_name: fake-gpt
    litellm_params: {model: openai/fake-a, api_base: "$fake_url/v1", api_key: upstream-key}
    model_info: {id: fake-a}
  - model_name: fake-gpt
    litellm_params: {model: openai/fake-b, api_base: "$fake_url/v1", api_key: upstream-key}
    model_info: {id: fake-b}
general_settings:
  master_key: sk-metrics-check
YAML
start_sluice

"$PY" tests/python/metrics_check.py "$sluice_url" sk-metrics-check
