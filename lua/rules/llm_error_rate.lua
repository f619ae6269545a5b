-- llm_error_rate.lua - share of failed LLM calls per provider and model.
--
-- Fires when more than 5% of the calls of a provider/model in the last
-- 5 minutes ended in an error or a timeout, once that lasted 1 minute;
-- critical above 25%. At least 20 calls are needed, so that a quiet model
-- with 1 error out of 3 calls does not page anyone. Resolves after 2
-- minutes under the threshold.
local te = require "te"

local config = {
  threshold = 0.05,   -- error share that fires (warning)
  critical = 0.25,    -- error share that is critical
  min_calls = 20,     -- fewer calls in the window never fire
}

local function error_rate(a)
  return a.errors / a.total
end

te.rule {
  name = "llm-error-rate",
  description = "LLM calls failing (status error or timeout) per provider/model",
  kind = "llm_call",
  group_by = { "provider", "model" },
  window = "5m", every = "30s",
  aggs = {
    errors = te.count { status = { "error", "timeout" } },
    total = te.count(),
  },
  condition = function(a)
    return a.total >= config.min_calls and error_rate(a) > config.threshold
  end,
  value = error_rate,
  severity = function(a)
    return error_rate(a) > config.critical and "critical" or "warning"
  end,
  pending = "1m", keep_firing = "2m",
  summary = "{{provider}}/{{model}} error rate {{value|pct}} (5m)",
  labels = { team = "llm-platform" },
  repeat_every = "4h",
}
