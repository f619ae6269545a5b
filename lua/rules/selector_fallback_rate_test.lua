-- Tests of selector_fallback_rate.lua (format: docs/rules-testing.md).
local function ops(app, strategy, outcome, retries, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "selector_op",
                     tags = { app = app, strategy = strategy, outcome = outcome,
                              page = "login", selector = "#login-submit-btn" },
                     fields = { confidence = 0.9, duration_ms = 60, retries = retries } } }
end

local xpath = { app = "crm", strategy = "xpath" }

return {
  rule_files = { "selector_fallback_rate.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "a 25% fallback share fires after 5m pending",
      events = {
        ops("crm", "xpath", "found", 0, "500ms", "10s", 120),
        ops("crm", "xpath", "fallback", 1, "5500ms", "30s", 40),
      },
      expect = {
        { at = "3m", rule = "selector-fallback-rate", group = xpath, state = "inactive" },
        { at = "4m", rule = "selector-fallback-rate", group = xpath, state = "pending",
          value = 0.25 },
        { at = "9m", rule = "selector-fallback-rate", group = xpath, state = "firing",
          summary = "crm selectors by xpath: 25.0% fell back (15m)" },
      },
      expect_transitions = {
        { at = "9m", rule = "selector-fallback-rate", group = xpath, to = "firing" },
      },
    },
    {
      name = "more than one retry on average fires without fallbacks",
      events = { ops("web-shop", "css", "found", 2, "500ms", "10s", 120) },
      expect = {
        { at = "10m", rule = "selector-fallback-rate", group = { app = "web-shop", strategy = "css" },
          state = "firing", value = 0 },
      },
    },
    {
      name = "a 5% fallback share with few retries never fires",
      events = {
        ops("web-shop", "aria", "found", 0, "500ms", "5s", 240),
        ops("web-shop", "aria", "fallback", 1, "2500ms", "100s", 12),
      },
      expect = {
        { at = "20m", rule = "selector-fallback-rate", group = { app = "web-shop", strategy = "aria" },
          state = "inactive" },
      },
    },
  },
}
