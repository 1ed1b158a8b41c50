-- wrk script: POST a longer chat completion (about 4 KB: a system prompt, six
-- turns, sampling options and a tool), a request unlike the one perf/pgo.sh
-- trains on, to check that a profile-guided build is not tuned to that one alone.
local turns = {}
for i = 1, 6 do
  local role = (i % 2 == 1) and "user" or "assistant"
  turns[#turns + 1] = string.format('{"role":"%s","content":"Turn %d: %s"}', role, i,
    string.rep("the quick brown fox jumps over the lazy dog. ", 8))
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-1234"
wrk.body = '{"model":"fake-gpt","temperature":0.2,"max_tokens":256,"user":"perf",' ..
  '"messages":[{"role":"system","content":"' ..
  string.rep("You are a careful assistant; answer briefly and cite sources. ", 20) .. '"},' ..
  table.concat(turns, ",") .. '],' ..
  '"tools":[{"type":"function","function":{"name":"lookup","description":"Look a term up",' ..
  '"parameters":{"type":"object","properties":{"term":{"type":"string"}},"required":["term"]}}}]}'
