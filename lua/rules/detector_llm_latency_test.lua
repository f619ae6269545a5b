-- Tests of detector_llm_latency.lua (format: docs/rules-testing.md).
local function calls(model, latency_ms, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call",
                     tags = { provider = "openai", model = model, status = "ok",
                              workflow = "rag-answer" },
                     fields = { latency_ms = latency_ms, cost_usd = 0.002 } } }
end

local gpt = { provider = "openai", model = "gpt-4o" }

return {
  rule_files = { "detector_llm_latency.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "a model 10x slower than its baseline goes pending, then fires after 2m",
      events = {
        calls("gpt-4o", 800, "500ms", "1s", 3600),          -- an hour at 800 ms
        calls("gpt-4o", 8000, "3600500ms", "1s", 600),      -- then 10 minutes at 8 s
      },
      expect = {
        { at = "1h", rule = "llm-latency-anomaly", group = gpt, state = "inactive" },
        { at = "1h1m", rule = "llm-latency-anomaly", group = gpt, state = "pending" },
        { at = "1h3m", rule = "llm-latency-anomaly", group = gpt, state = "firing",
          value = 8000, tolerance = 200 },
      },
      expect_transitions = {
        { at = "1h3m", rule = "llm-latency-anomaly", group = gpt, to = "firing" },
      },
    },
    {
      name = "a steady model and faster calls never fire",
      events = {
        calls("gpt-4o-mini", 300, "0s", "1s", 3600),
        calls("gpt-4o-mini", 100, "3600s", "1s", 600),
      },
      expect = {
        { at = "1h10m", rule = "llm-latency-anomaly",
          group = { provider = "openai", model = "gpt-4o-mini" }, state = "inactive" },
      },
    },
  },
}
