-- detector_host.lua - host CPU and memory with the multivariate method
-- (k-means over value/difference feature vectors, a consensus of rolling
-- models, in the spirit of Netdata's ML; docs/detectors.md).
--
-- Fixed CPU thresholds (host_saturation.lua) catch saturation; these catch
-- a host behaving unlike its own last hours: a jump, a new oscillation, a
-- leak climbing faster than usual.
local te = require "te"

for _, m in ipairs { { "cpu", "cpu_pct", "CPU" }, { "memory", "mem_pct", "memory" } } do
  te.detector {
    name = "host-" .. m[1] .. "-anomaly",
    description = "host " .. m[3] .. " unlike its recent behaviour (multivariate)",
    kind = "host_sample",
    group_by = { "host" },
    field = m[2], stat = "avg",
    window = "1m", every = "1m",
    method = te.methods.multivariate {},
    pending = "2m", keep_firing = "5m",
    severity = "info",
    summary = "{{host}} " .. m[3] .. " at {{value|round}}% is unusual (score {{labels.score}})",
  }
end
