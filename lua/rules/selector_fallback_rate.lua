-- selector_fallback_rate.lua - UI-automation selectors that needed a
-- fallback strategy or retries, per app and strategy over 15 minutes.
--
-- Fires when more than 15% of operations fell back to another strategy,
-- or when operations needed more than 1 retry on average.
local te = require "te"

local config = {
  max_fallback_share = 0.15,
  max_mean_retries = 1.0,
  min_ops = 30,
}

local function fallback_share(a)
  return a.fallbacks / a.ops
end

te.rule {
  name = "selector-fallback-rate",
  description = "share of selector operations that fell back or retried, per app/strategy",
  kind = "selector_op",
  group_by = { "app", "strategy" },
  window = "15m", every = "1m",
  aggs = {
    ops = te.count(),
    fallbacks = te.count { outcome = "fallback" },
    retries = te.avg("retries"),
  },
  condition = function(a)
    if a.ops < config.min_ops then return false end
    return fallback_share(a) > config.max_fallback_share
      or (a.retries ~= nil and a.retries > config.max_mean_retries)
  end,
  value = fallback_share,
  pending = "5m", keep_firing = "5m",
  severity = "warning",
  summary = "{{app}} selectors by {{strategy}}: {{value|pct}} fell back (15m)",
  labels = { team = "ui-automation" },
}
