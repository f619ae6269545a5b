-- detector_llm_latency.lua - p95 latency per provider/model against its
-- own recent history (ewma_zscore, docs/detectors.md).
--
-- Models differ by an order of magnitude in latency, so one threshold
-- cannot fit them all; each model's p95 is compared with its own slowly
-- moving baseline and fires when it runs far above it for 2 minutes.
local te = require "te"

te.detector {
  name = "llm-latency-anomaly",
  description = "p95 latency per model far above its recent baseline",
  kind = "llm_call",
  group_by = { "provider", "model" },
  field = "latency_ms", stat = "p95",
  window = "5m", every = "1m",
  method = te.methods.ewma_zscore { alpha = 0.03, threshold = 4.2, warmup = 30,
                                    direction = "up" },
  pending = "2m", keep_firing = "5m",
  severity = "warning",
  summary = "{{provider}}/{{model}} p95 latency {{value|round}} ms, baseline {{labels.baseline}} ms",
  labels = { team = "llm-platform" },
}
