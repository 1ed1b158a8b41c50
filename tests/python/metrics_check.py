"""Sends a known number of requests through sluice to fake-llm, then parses
/metrics with prometheus_client's own text parser and checks that the counters
match what was sent. Exits non-zero on any mismatch.

Usage: metrics_check.py SLUICE_URL MASTER_KEY"""

import json
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

base, key = sys.argv[1], sys.argv[2]
OK, STREAMED, UNKNOWN = 12, 5, 3


def post(body, auth=True):
    req = urllib.request.Request(
        base + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    if auth:
        req.add_header("authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


msg = [{"role": "user", "content": "hi"}]
statuses = [post({"model": "fake-gpt", "messages": msg}) for _ in range(OK)]
statuses += [post({"model": "fake-gpt", "messages": msg, "stream": True}) for _ in range(STREAMED)]
assert statuses == [200] * (OK + STREAMED), statuses
assert [post({"model": "no-such-model", "messages": msg}) for _ in range(UNKNOWN)] == [400] * UNKNOWN
assert post({"model": "fake-gpt", "messages": msg}, auth=False) == 401


def scrape():
    with urllib.request.urlopen(base + "/metrics") as r:  # no key needed
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return text, samples


def total(samples, name, **labels):
    return sum(
        v
        for have, v in samples.get(name, [])
        if all(have.get(k) == want for k, want in labels.items())
    )


sent = OK + STREAMED
# A body's end is recorded as its last bytes go out: allow a moment to settle.
for _ in range(50):
    text, samples = scrape()
    if total(samples, "litellm_deployment_success_responses_total") == sent:
        break
    time.sleep(0.05)

checks = {
    ("litellm_proxy_total_requests_metric_total", "fake-gpt 200"): (
        total(samples, "litellm_proxy_total_requests_metric_total", requested_model="fake-gpt", status_code="200"),
        sent,
    ),
    ("litellm_proxy_total_requests_metric_total", "unrouted 400"): (
        total(samples, "litellm_proxy_total_requests_metric_total", requested_model="", status_code="400"),
        UNKNOWN,
    ),
    ("litellm_proxy_total_requests_metric_total", "unrouted 401"): (
        total(samples, "litellm_proxy_total_requests_metric_total", requested_model="", status_code="401"),
        1,
    ),
    ("litellm_deployment_total_requests_total", "all"): (
        total(samples, "litellm_deployment_total_requests_total", requested_model="fake-gpt"),
        sent,
    ),
    ("litellm_deployment_success_responses_total", "all"): (
        total(samples, "litellm_deployment_success_responses_total", requested_model="fake-gpt"),
        sent,
    ),
    ("litellm_deployment_failure_responses_total", "all"): (
        total(samples, "litellm_deployment_failure_responses_total"),
        0,
    ),
    ("litellm_request_total_latency_metric_count", "fake-gpt"): (
        total(samples, "litellm_request_total_latency_metric_count", requested_model="fake-gpt"),
        sent,
    ),
    ("litellm_llm_api_latency_metric_count", "all"): (
        total(samples, "litellm_llm_api_latency_metric_count"),
        sent,
    ),
    ("sluice_deployment_in_flight", "all"): (total(samples, "sluice_deployment_in_flight"), 0),
}
bad = {k: v for k, v in checks.items() if v[0] != v[1]}
for (name, what), (got, want) in sorted(checks.items()):
    print(f"{name} [{what}]: {got:g} (want {want})")
assert not bad, f"mismatch: {bad}"
split = {
    labels["model_id"]: v
    for labels, v in samples["litellm_deployment_total_requests_total"]
}
assert len(split) == 2 and all(v > 0 for v in split.values()), split
assert key not in text and "upstream-key" not in text, "a key appears in /metrics"
print(f"metrics check: ok ({len(samples)} sample names parsed, split {split})")
