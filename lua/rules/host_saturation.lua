-- host_saturation.lua - a host running out of CPU or memory: 5-minute
-- average of cpu_pct or mem_pct above 90%, for 2 minutes.
local te = require "te"

local config = {
  threshold_pct = 90,
  critical_pct = 97,
}

local function peak(a)
  return math.max(a.cpu or 0, a.mem or 0)
end

te.rule {
  name = "host-saturation",
  description = "5m average CPU or memory use of a host above 90%",
  kind = "host_sample",
  group_by = { "host" },
  window = "5m", every = "30s",
  aggs = { cpu = te.avg("cpu_pct"), mem = te.avg("mem_pct") },
  condition = function(a) return peak(a) > config.threshold_pct end,
  value = peak,
  severity = function(a) return peak(a) > config.critical_pct and "critical" or "warning" end,
  pending = "2m", keep_firing = "1m",
  summary = "{{host}} saturated: {{value|round}}% CPU or memory (5m average)",
  labels = { team = "infra" },
}
