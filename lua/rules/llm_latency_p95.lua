-- llm_latency_p95.lua - slow LLM calls: 95th percentile latency per
-- provider and model over 10 minutes.
--
-- Fires when p95 stays above the model's threshold for 3 minutes, with at
-- least 50 calls in the window (a handful of slow calls is not a trend).
local te = require "te"

local config = {
  default_threshold_ms = 8000,
  threshold_ms = {                -- per-model overrides (slow reasoning models)
    ["o1"] = 60000,
    ["claude-3-opus"] = 30000,
  },
  min_calls = 50,
}

te.rule {
  name = "llm-latency-p95",
  description = "p95 latency of LLM calls per provider/model above the model's threshold",
  kind = "llm_call",
  group_by = { "provider", "model" },
  window = "10m", every = "1m",
  aggs = { p95 = te.quantile("latency_ms", 0.95), calls = te.count() },
  condition = function(a, g)
    local limit = config.threshold_ms[g.model] or config.default_threshold_ms
    return a.calls >= config.min_calls and a.p95 ~= nil and a.p95 > limit
  end,
  value = function(a) return a.p95 end,
  pending = "3m", keep_firing = "5m",
  severity = "warning",
  summary = "{{provider}}/{{model}} p95 latency {{value|round}} ms (10m)",
  labels = { team = "llm-platform" },
}
