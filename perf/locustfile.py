# Locust load for perf/locust.sh, after the load tests in LiteLLM's docs: every
# user POSTs one short, non-streamed chat completion after another, no pause.
# Run by hand:  locust -f perf/locustfile.py --headless -u 100 -r 100 -t 15s -H http://127.0.0.1:4000
# LOCUST_MODEL picks the model (default fake-openai-endpoint).
import os

from locust import HttpUser, constant, task

MODEL = os.environ.get("LOCUST_MODEL", "fake-openai-endpoint")
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
HEADERS = {"Authorization": "Bearer sk-1234"}


class ChatUser(HttpUser):
    wait_time = constant(0)  # closed loop: the next request as soon as the last one ends

    @task
    def chat(self):
        # catch_response: we decide what a failure is; anything but 200 is one, and
        # the message (one row per distinct message in _failures.csv) is its status.
        with self.client.post(
            "/chat/completions", json=BODY, headers=HEADERS, name="chat", catch_response=True
        ) as resp:
            if resp.status_code == 200:
                resp.success()
            elif resp.status_code:
                resp.failure(f"HTTP {resp.status_code}")
            else:  # no response at all (connection refused, reset, ...)
                resp.failure(f"no response: {type(resp.error).__name__}")
