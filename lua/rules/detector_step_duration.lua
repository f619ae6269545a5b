-- detector_step_duration.lua - a pipeline step taking much longer than in
-- the previous runs of the same step (change, docs/detectors.md).
--
-- The mean duration of each pipeline/step over 30 minutes is compared with
-- the mean 2 hours earlier (four evaluations back, so a slow run does not
-- move the reference it is judged against); a rise of 50% or more fires.
local te = require "te"

te.detector {
  name = "step-duration-change",
  description = "mean step duration 50% above the same step's earlier runs",
  kind = "run_step",
  group_by = { "pipeline", "step" },
  field = "duration_s", stat = "avg",
  window = "30m", every = "30m",
  method = te.methods.change { pct = 50, window = 4, direction = "up" },
  severity = "warning",
  summary = "{{pipeline}}/{{step}} now takes {{value|round}} s, was {{labels.baseline}} s",
}
