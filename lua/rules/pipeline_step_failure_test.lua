-- Tests of pipeline_step_failure.lua (format: docs/rules-testing.md).
local function step(run_id, name, status, ordinal, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "run_step",
                     tags = { run_id = run_id, pipeline = "nightly-etl", step = name,
                              status = status },
                     fields = { step_ordinal = ordinal, steps_total = 5, duration_s = 42 } } }
end

local load = { pipeline = "nightly-etl", step = "load" }

return {
  rule_files = { "pipeline_step_failure.lua" },
  start = "2026-11-20T02:00:00Z",
  tests = {
    {
      name = "a failed step fires at the next evaluation and resolves 15m later",
      events = {
        step("r-1", "extract", "succeeded", 1, "10s"),
        step("r-1", "load", "failed", 4, "1m10s"),
      },
      expect = {
        { at = "1m", rule = "pipeline-step-failure", group = load, state = "inactive" },
        { at = "1m30s", rule = "pipeline-step-failure", group = load, state = "firing",
          severity = "warning", value = 1,
          summary = "nightly-etl: step load failed 1 time(s) in 15m" },
        { at = "16m", rule = "pipeline-step-failure", group = load, state = "firing" },
        { at = "17m", rule = "pipeline-step-failure", group = load, state = "resolved" },
        { at = "17m", rule = "pipeline-step-failure",
          group = { pipeline = "nightly-etl", step = "extract" }, state = "inactive" },
      },
      expect_transitions = {
        { at = "1m30s", rule = "pipeline-step-failure", group = load, to = "firing" },
      },
    },
    {
      name = "three failures in 15m are critical",
      events = { step("r-2", "load", "failed", 4, "0s", "2m", 3) },
      expect = {
        { at = "4m30s", rule = "pipeline-step-failure", group = load, state = "firing",
          severity = "critical", value = 3 },
      },
    },
  },
}
