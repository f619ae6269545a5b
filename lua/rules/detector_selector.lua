-- detector_selector.lua - UI-automation selectors: confidence per app and
-- strategy (mad) and p95 duration per app and strategy (ewma_zscore),
-- each against its own history (docs/detectors.md).
--
-- A confidence that falls well under its usual median means the
-- application's markup changed; the robust median/MAD ignores the odd bad
-- match. A duration far above its baseline means retries or fallbacks.
local te = require "te"

te.detector {
  name = "selector-confidence-anomaly",
  description = "mean selector confidence per app/strategy far under its median",
  kind = "selector_op",
  group_by = { "app", "strategy" },
  field = "confidence", stat = "avg",
  window = "15m", every = "1m",
  method = te.methods.mad { window = 60, threshold = 5, direction = "down" },
  pending = "3m", keep_firing = "5m",
  severity = "warning",
  summary = "{{app}} selectors by {{strategy}}: confidence {{value|pct}}, usually {{labels.baseline}}",
}

te.detector {
  name = "selector-duration-anomaly",
  description = "p95 selector duration per app/strategy far above its baseline",
  kind = "selector_op",
  group_by = { "app", "strategy" },
  field = "duration_ms", stat = "p95",
  window = "5m", every = "1m",
  method = te.methods.ewma_zscore { direction = "up" },
  pending = "3m", keep_firing = "5m",
  severity = "warning",
  summary = "{{app}} selectors by {{strategy}}: p95 {{value|round}} ms, baseline {{labels.baseline}} ms",
}
