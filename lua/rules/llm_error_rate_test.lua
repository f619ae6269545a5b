-- Tests of llm_error_rate.lua. Run: telemetry-engine rules test lua/rules
-- Format: docs/rules-testing.md. Offsets are from `start`; the rule
-- evaluates every 30s on the epoch-aligned clock (so at 30s, 1m, 1m30s...).

-- `times` calls of provider/model with status, the first at `at`, then every `every`.
local function calls(provider, model, status, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call",
                     tags = { provider = provider, model = model, status = status,
                              workflow = "code-review", tier = "capable" },
                     fields = { latency_ms = 812.5, cost_usd = 0.0123 } } }
end

local gpt = { provider = "openai", model = "gpt-4o" }

return {
  rule_files = { "llm_error_rate.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "errors over 5% go pending, fire after 1m and resolve 2m after recovery",
      events = {
        calls("openai", "gpt-4o", "ok", "250ms", "1s", 600),   -- 10 min of traffic
        calls("openai", "gpt-4o", "error", "500ms", "5s", 24), -- errors in the first 2 min
        calls("anthropic", "claude-3-5-sonnet", "ok", "250ms", "1s", 600),
      },
      expect = {
        -- at 30s: 6 errors out of 36 calls in the window
        { at = "30s", rule = "llm-error-rate", group = gpt, state = "pending",
          value = 6 / 36, summary = "openai/gpt-4o error rate 16.7% (5m)" },
        { at = "1m", rule = "llm-error-rate", group = gpt, state = "pending" },
        { at = "1m30s", rule = "llm-error-rate", group = gpt, state = "firing",
          severity = "warning", value = 18 / 108 },
        -- 5m30s: 18 of the errors still in the window, 18/318 = 5.7%
        { at = "5m30s", rule = "llm-error-rate", group = gpt, state = "firing" },
        -- 6m: 12/312 = 3.8% (false since 6m), kept firing for 2m
        { at = "7m30s", rule = "llm-error-rate", group = gpt, state = "firing" },
        { at = "8m", rule = "llm-error-rate", group = gpt, state = "resolved" },
        { at = "9m", rule = "llm-error-rate",
          group = { provider = "anthropic", model = "claude-3-5-sonnet" }, state = "inactive" },
      },
      expect_transitions = {
        { at = "30s", rule = "llm-error-rate", group = gpt, to = "pending" },
        { at = "1m30s", rule = "llm-error-rate", group = gpt, to = "firing" },
        { at = "8m", rule = "llm-error-rate", group = gpt, to = "resolved" },
      },
    },
    {
      name = "an error share over 25% is critical",
      events = {
        calls("openai", "gpt-4o", "ok", "250ms", "1s", 300),
        calls("openai", "gpt-4o", "timeout", "500ms", "2s", 150),
      },
      expect = {
        { at = "1m30s", rule = "llm-error-rate", group = gpt, state = "firing",
          severity = "critical", value = 45 / 135 },
      },
    },
    {
      name = "a short burst clears before the pending time (never notified)",
      events = {
        calls("openai", "gpt-4o", "ok", "250ms", "1s", 600),
        calls("openai", "gpt-4o", "error", "100500ms", "1s", 8),
      },
      expect = {
        { at = "2m", rule = "llm-error-rate", group = gpt, state = "pending" },
        { at = "3m", rule = "llm-error-rate", group = gpt, state = "inactive" },
        { at = "10m", rule = "llm-error-rate", group = gpt, state = "inactive" },
      },
      expect_transitions = {
        { at = "2m", rule = "llm-error-rate", group = gpt, to = "pending" },
        { at = "3m", rule = "llm-error-rate", group = gpt, to = "cleared" },
      },
    },
    {
      name = "4% errors, or too few calls, never fire",
      events = {
        calls("openai", "gpt-4o", "ok", "250ms", "1s", 600),
        calls("openai", "gpt-4o", "error", "500ms", "25s", 24),
        -- a quiet model: half its calls fail, but only 10 calls in 5 minutes
        calls("google", "gemini-1.5-pro", "ok", "0s", "1m", 5),
        calls("google", "gemini-1.5-pro", "error", "30s", "1m", 5),
      },
      expect = {
        { at = "5m", rule = "llm-error-rate", group = gpt, state = "inactive" },
        { at = "10m", rule = "llm-error-rate", group = gpt, state = "inactive" },
        { at = "5m", rule = "llm-error-rate",
          group = { provider = "google", model = "gemini-1.5-pro" }, state = "inactive" },
      },
    },
  },
}
