-- Tests of selector_confidence.lua (format: docs/rules-testing.md).
local function ops(app, strategy, confidence, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "selector_op",
                     tags = { app = app, strategy = strategy, outcome = "found",
                              page = "checkout", selector = "#checkout-submit-btn" },
                     fields = { confidence = confidence, duration_ms = 45, retries = 0 } } }
end

local visual = { app = "web-shop", strategy = "visual" }

return {
  rule_files = { "selector_confidence.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "mean confidence under 0.80 fires after 5m pending",
      events = {
        ops("web-shop", "visual", 0.6, "500ms", "10s", 120),
        ops("web-shop", "css", 0.95, "500ms", "10s", 120),
      },
      expect = {
        { at = "4m", rule = "selector-confidence", group = visual, state = "inactive" },  -- 24 ops
        { at = "5m", rule = "selector-confidence", group = visual, state = "pending" },
        { at = "10m", rule = "selector-confidence", group = visual, state = "firing",
          severity = "warning", value = 0.6,
          summary = "web-shop selectors by visual: mean confidence 60.0% (15m)" },
        { at = "10m", rule = "selector-confidence", group = { app = "web-shop", strategy = "css" },
          state = "inactive" },
      },
    },
    {
      name = "confidence under 0.50 is critical",
      events = { ops("crm", "xpath", 0.4, "500ms", "10s", 120) },
      expect = {
        { at = "10m", rule = "selector-confidence", group = { app = "crm", strategy = "xpath" },
          state = "firing", severity = "critical", value = 0.4 },
      },
    },
  },
}
