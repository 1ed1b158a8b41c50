#!/usr/bin/env bash
# Runs openai_check.py through sluice to fake-llm, all on loopback.
# Usage: tests/python/run_openai_check.sh [path/to/python]  (needs `openai` installed)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python3}
. tests/python/lib.sh

start_fake --stream-chunks 4
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
start_sluice

"$PY" tests/python/openai_check.py "$sluice_url/v1"
