-- Tests of detector_llm_cost.lua (format: docs/rules-testing.md).
local function calls(workflow, cost, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call",
                     tags = { provider = "openai", model = "gpt-4o", workflow = workflow,
                              status = "ok" },
                     fields = { latency_ms = 700, cost_usd = cost } } }
end

local rag = { workflow = "rag-answer" }

return {
  rule_files = { "detector_llm_cost.lua" },
  start = "2026-11-20T00:00:00Z",
  tests = {
    {
      name = "an hour at ten times the usual spend fires once a day of history exists",
      events = {
        calls("rag-answer", 0.01, "30s", "1m", 2880),          -- 2 days at $0.60/h
        calls("rag-answer", 0.01, "47h5s", "6s", 600),         -- hour 47: +$6
      },
      expect = {
        { at = "47h", rule = "llm-cost-anomaly", group = rag, state = "inactive" },
        { at = "48h", rule = "llm-cost-anomaly", group = rag, state = "firing",
          value = 6.6, tolerance = 1e-6,
          summary = "rag-answer spent $6.6 in the last hour (usually $0.6)" },
        { at = "49h", rule = "llm-cost-anomaly", group = rag, state = "resolved" },
      },
    },
    {
      name = "no verdict during the first day, whatever the spend",
      events = {
        calls("batch", 0.01, "30s", "1m", 600),
        calls("batch", 1.00, "10h30s", "1m", 60),
      },
      expect = {
        { at = "11h", rule = "llm-cost-anomaly", group = { workflow = "batch" },
          state = "inactive" },
      },
    },
  },
}
