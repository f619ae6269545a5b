-- Tests of detector_step_duration.lua (format: docs/rules-testing.md).
local function steps(step, duration_s, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "run_step",
                     tags = { pipeline = "nightly-etl", step = step, status = "succeeded" },
                     fields = { duration_s = duration_s } } }
end

local load = { pipeline = "nightly-etl", step = "load" }

return {
  rule_files = { "detector_step_duration.lua" },
  start = "2026-11-20T00:00:00Z",
  tests = {
    {
      name = "a step three times slower than its earlier runs fires, a steady one does not",
      events = {
        steps("load", 20, "1m", "5m", 48),             -- 4 hours at 20 s
        steps("load", 60, "4h1m", "5m", 6),            -- half an hour at 60 s
        steps("extract", 30, "1m", "5m", 54),
      },
      expect = {
        { at = "4h", rule = "step-duration-change", group = load, state = "inactive" },
        { at = "4h30m", rule = "step-duration-change", group = load, state = "firing",
          value = 60, summary = "nightly-etl/load now takes 60 s, was 20 s" },
        { at = "4h30m", rule = "step-duration-change",
          group = { pipeline = "nightly-etl", step = "extract" }, state = "inactive" },
      },
    },
  },
}
