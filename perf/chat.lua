-- wrk script: POST a small non-streamed chat completion.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello in one short sentence, please."}]}'
