-- Tests of llm_latency_p95.lua (format: docs/rules-testing.md).
local function calls(model, latency_ms, at, every, times, provider)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call",
                     tags = { provider = provider or "openai", model = model, status = "ok",
                              workflow = "rag-answer" },
                     fields = { latency_ms = latency_ms, cost_usd = 0.002 } } }
end

local gpt = { provider = "openai", model = "gpt-4o" }

return {
  rule_files = { "llm_latency_p95.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "p95 over 8 s fires after 3m pending and resolves once slow calls age out",
      events = {
        calls("gpt-4o", 600, "250ms", "1s", 1500),     -- 25 minutes of fast calls
        calls("gpt-4o", 20000, "500ms", "5s", 60),     -- 5 minutes with 1 call in 6 slow
      },
      expect = {
        { at = "1m", rule = "llm-latency-p95", group = gpt, state = "pending" },
        { at = "4m", rule = "llm-latency-p95", group = gpt, state = "firing",
          value = 20000, tolerance = 400, summary = "openai/gpt-4o p95 latency 20000 ms (10m)" },
        { at = "10m", rule = "llm-latency-p95", group = gpt, state = "firing" },
        { at = "20m", rule = "llm-latency-p95", group = gpt, state = "resolved" },
      },
      expect_transitions = {
        { at = "1m", rule = "llm-latency-p95", group = gpt, to = "pending" },
        { at = "4m", rule = "llm-latency-p95", group = gpt, to = "firing" },
      },
    },
    {
      name = "fast models, slow models under their own threshold and few calls never fire",
      events = {
        calls("gpt-4o-mini", 350, "0s", "1s", 900),
        calls("claude-3-opus", 20000, "0s", "2s", 450, "anthropic"),  -- threshold 30 s
        calls("gpt-4o", 25000, "0s", "30s", 30),                      -- 20 calls per 10m
      },
      expect = {
        { at = "10m", rule = "llm-latency-p95",
          group = { provider = "openai", model = "gpt-4o-mini" }, state = "inactive" },
        { at = "10m", rule = "llm-latency-p95",
          group = { provider = "anthropic", model = "claude-3-opus" }, state = "inactive" },
        { at = "10m", rule = "llm-latency-p95", group = gpt, state = "inactive" },
      },
    },
  },
}
