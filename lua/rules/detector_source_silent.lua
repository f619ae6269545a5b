-- detector_source_silent.lua - a dead man's switch per source (absent,
-- docs/detectors.md): any source that sent events and then nothing for 15
-- minutes. It runs on ticks, so it fires with no event arriving at all,
-- and its state survives restarts (a source that died while the engine
-- was down still fires).
local te = require "te"

te.detector {
  name = "source-silent",
  description = "a source that sent events and then nothing for 15 minutes",
  group_by = { "source" },
  stat = "count", window = "5m", every = "1m",
  method = te.methods.absent { after = "15m" },
  severity = "warning",
  summary = "source {{source}} silent for {{value|round}} s",
}
