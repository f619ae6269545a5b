-- detector_llm_cost.lua - LLM spend per workflow per hour against the same
-- hour of the previous days (seasonal, docs/detectors.md).
--
-- Spend follows the working day, so a fixed budget either pages every
-- afternoon or misses a runaway loop at night. The seasonal method
-- compares each hour with the median of the same hour over the last three
-- days and fires only upwards (spending less is not an incident).
local te = require "te"

te.detector {
  name = "llm-cost-anomaly",
  description = "hourly LLM spend per workflow far above the same hour on previous days",
  kind = "llm_call",
  group_by = { "workflow" },
  field = "cost_usd", stat = "sum",
  window = "1h", every = "1h",
  method = te.methods.seasonal { period = "1d", threshold = 4, direction = "up" },
  severity = "warning",
  summary = "{{workflow}} spent ${{value}} in the last hour (usually ${{labels.baseline}})",
  labels = { team = "llm-platform" },
}
