-- llm_cost_budget.lua - LLM spend per workflow over the last 24 hours
-- against a daily budget.
--
-- Warning at 80% of the workflow's budget, critical once it is spent.
-- The window rolls: spend older than 24 h leaves it, so the alert
-- resolves once the last day's spend is back under 80% (held for 30 min
-- so that it does not flap around the line).
local te = require "te"

local config = {
  default_budget_usd = 50,        -- per workflow and rolling 24 h
  budgets_usd = {                 -- per-workflow overrides
    ["code-review"] = 100,
    ["rag-answer"] = 200,
  },
  warn_ratio = 0.8,               -- share of the budget that warns
}

local function budget(g)
  return config.budgets_usd[g.workflow] or config.default_budget_usd
end

te.rule {
  name = "llm-cost-budget",
  description = "rolling 24 h LLM spend of a workflow against its daily budget",
  kind = "llm_call",
  group_by = { "workflow" },
  window = "24h", every = "5m",
  aggs = { spent = te.sum("cost_usd") },
  condition = function(a, g)
    return a.spent ~= nil and a.spent >= budget(g) * config.warn_ratio
  end,
  value = function(a) return a.spent end,
  severity = function(a, g)
    return a.spent >= budget(g) and "critical" or "warning"
  end,
  keep_firing = "30m",
  summary = "{{workflow}} spent ${{value}} on LLM calls in 24h",
  labels = { team = "llm-platform" },
  repeat_every = "6h",
}
