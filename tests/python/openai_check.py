"""The official openai SDK against sluice: a plain call, a streamed call, and an
error status surfacing as the SDK's exception. Exits non-zero on any mismatch."""

import sys

import openai

base_url = sys.argv[1]
client = openai.OpenAI(api_key="sk-check", base_url=base_url, max_retries=0)

# Plain call: goes through sluice to fake-llm, which echoes the upstream model.
resp = client.chat.completions.create(
    model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
)
assert resp.choices[0].message.content, resp
assert resp.model == "fake-upstream-model", resp.model
raw = client.chat.completions.with_raw_response.create(
    model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
)
assert raw.headers["x-litellm-model-group"] == "fake-gpt", dict(raw.headers)
print("plain call: ok")

# Streamed call: content arrives in several chunks, usage in the last one.
stream = client.chat.completions.create(
    model="fake-gpt",
    messages=[{"role": "user", "content": "hi"}],
    stream=True,
    stream_options={"include_usage": True},
)
chunks = list(stream)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert len(chunks) >= 3 and text, chunks
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0, chunks[-1]
print(f"streamed call: ok ({len(chunks)} chunks)")

# Errors surface as the SDK's exceptions, with sluice's OpenAI-shaped body.
try:
    client.chat.completions.create(model="no-such-model", messages=[])
    raise SystemExit("unknown model did not raise")
except openai.BadRequestError as e:
    assert e.status_code == 400
    assert "Invalid model name" in str(e), e
try:
    client.chat.completions.create(
        model="fake-gpt",
        messages=[],
        extra_body={"mock_testing_rate_limit_error": True},
    )
    raise SystemExit("mock rate limit did not raise")
except openai.RateLimitError as e:
    assert e.status_code == 429
try:
    openai.OpenAI(api_key="wrong", base_url=base_url, max_retries=0).models.list()
    raise SystemExit("a wrong key did not raise")
except openai.AuthenticationError as e:
    assert e.status_code == 401
print("error statuses: ok")

models = [m.id for m in client.models.list()]
assert models == ["fake-gpt"], models
print("models list: ok")
print("4 passed, 0 failed")
