-- Tests of llm_cost_budget.lua (format: docs/rules-testing.md).
local function spend(workflow, usd, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call",
                     tags = { provider = "openai", model = "gpt-4o", status = "ok",
                              workflow = workflow },
                     fields = { cost_usd = usd, latency_ms = 900 } } }
end

local review = { workflow = "code-review" }   -- budget 100 USD

return {
  rule_files = { "llm_cost_budget.lua" },
  start = "2026-11-20T00:00:00Z",
  tests = {
    {
      name = "warns at 80% of the workflow budget, critical once spent, resolves a day later",
      events = { spend("code-review", 1.0, "30s", "1m", 120) },  -- 1 USD a minute for 2 hours
      expect = {
        { at = "1h15m", rule = "llm-cost-budget", group = review, state = "inactive" },
        { at = "1h20m", rule = "llm-cost-budget", group = review, state = "firing",
          severity = "warning", value = 80,
          summary = "code-review spent $80 on LLM calls in 24h" },
        { at = "1h40m", rule = "llm-cost-budget", group = review, state = "firing",
          severity = "critical", value = 100 },
        { at = "12h", rule = "llm-cost-budget", group = review, state = "firing", value = 120 },
        -- the spend of the first hour leaves the 24h window
        { at = "26h", rule = "llm-cost-budget", group = review, state = "resolved" },
      },
      expect_transitions = {
        { at = "1h20m", rule = "llm-cost-budget", group = review, to = "firing" },
      },
    },
    {
      name = "the default budget applies to other workflows; small spend never fires",
      events = {
        spend("summarize-doc", 0.1, "30s", "1m", 120),   -- 12 USD of 50
        spend("sql-gen", 0.5, "30s", "1m", 120),         -- 60 USD of 50
      },
      expect = {
        { at = "2h", rule = "llm-cost-budget", group = { workflow = "summarize-doc" },
          state = "inactive" },
        { at = "2h", rule = "llm-cost-budget", group = { workflow = "sql-gen" },
          state = "firing", severity = "critical", value = 60 },
      },
    },
  },
}
