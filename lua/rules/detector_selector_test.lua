-- Tests of detector_selector.lua (format: docs/rules-testing.md).
local function ops(strategy, confidence, duration_ms, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "selector_op",
                     tags = { app = "crm", strategy = strategy, status = "ok" },
                     fields = { confidence = confidence, duration_ms = duration_ms } } }
end

local css = { app = "crm", strategy = "css" }

return {
  rule_files = { "detector_selector.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "confidence collapsing fires the mad detector, not the duration one",
      events = {
        ops("css", 0.95, 120, "1s", "5s", 1440),        -- 2 hours at 0.95
        ops("css", 0.40, 120, "7201s", "5s", 240),      -- then 20 minutes at 0.40
      },
      expect = {
        { at = "2h", rule = "selector-confidence-anomaly", group = css, state = "inactive" },
        { at = "2h1m", rule = "selector-confidence-anomaly", group = css, state = "pending" },
        { at = "2h4m", rule = "selector-confidence-anomaly", group = css, state = "firing" },
        { at = "2h10m", rule = "selector-duration-anomaly", group = css, state = "inactive" },
      },
    },
    {
      name = "selectors getting 20x slower fire the duration detector",
      events = {
        ops("xpath", 0.9, 150, "1s", "5s", 1440),
        ops("xpath", 0.9, 3000, "7201s", "5s", 240),
      },
      expect = {
        { at = "2h4m", rule = "selector-duration-anomaly", group = { app = "crm", strategy = "xpath" },
          state = "firing", value = 3000, tolerance = 60 },
        { at = "2h10m", rule = "selector-confidence-anomaly",
          group = { app = "crm", strategy = "xpath" }, state = "inactive" },
      },
    },
  },
}
