-- pipeline_step_failure.lua - a step of an ML pipeline failed.
--
-- One alert per pipeline and step (not per run, so that a step failing in
-- every nightly run is one alert): firing at once when a run_step event
-- with status "failed" arrives, critical from 3 failures in 15 minutes,
-- resolved when no failure of that step is left in the last 15 minutes.
local te = require "te"

te.rule {
  name = "pipeline-step-failure",
  description = "run_step events with status failed, per pipeline/step",
  kind = "run_step",
  where = { status = "failed" },
  group_by = { "pipeline", "step" },
  window = "15m", every = "30s",
  aggs = { failures = te.count(), runs = te.distinct("run_id") },
  condition = function(a) return a.failures > 0 end,
  value = function(a) return a.failures end,
  severity = function(a) return a.failures >= 3 and "critical" or "warning" end,
  summary = "{{pipeline}}: step {{step}} failed {{value|round}} time(s) in 15m",
  labels = { team = "ml-platform" },
}
