-- selector_confidence.lua - UI-automation selectors matching with low
-- confidence: mean confidence score per strategy and app over 15 minutes.
--
-- A strategy whose mean confidence drops under 0.80 usually means the
-- application's markup changed and selectors are about to break.
local te = require "te"

local config = {
  min_confidence = 0.80,
  critical_below = 0.50,
  min_ops = 30,
}

te.rule {
  name = "selector-confidence",
  description = "mean selector confidence per app/strategy under the floor",
  kind = "selector_op",
  group_by = { "app", "strategy" },
  window = "15m", every = "1m",
  aggs = { confidence = te.avg("confidence"), ops = te.count() },
  condition = function(a)
    return a.ops >= config.min_ops and a.confidence ~= nil
      and a.confidence < config.min_confidence
  end,
  value = function(a) return a.confidence end,
  severity = function(a)
    return a.confidence < config.critical_below and "critical" or "warning"
  end,
  pending = "5m", keep_firing = "5m",
  summary = "{{app}} selectors by {{strategy}}: mean confidence {{value|pct}} (15m)",
  labels = { team = "ui-automation" },
}
