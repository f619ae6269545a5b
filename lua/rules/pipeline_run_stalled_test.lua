-- Tests of pipeline_run_stalled.lua (format: docs/rules-testing.md).
local function run(run_id, pipeline, status, at)
  return { at = at, event = { kind = "run",
                              tags = { run_id = run_id, pipeline = pipeline, status = status },
                              fields = { steps_total = 5 } } }
end

local function step(run_id, pipeline, ordinal, at)
  return { at = at, event = { kind = "run_step",
                              tags = { run_id = run_id, pipeline = pipeline,
                                       step = "step-" .. ordinal, status = "succeeded" },
                              fields = { step_ordinal = ordinal, steps_total = 5,
                                         duration_s = 60 } } }
end

local r1 = { pipeline = "nightly-etl", run_id = "r-1" }

return {
  rule_files = { "pipeline_run_stalled.lua" },
  start = "2026-11-20T02:00:00Z",
  tests = {
    {
      name = "a run silent for 15m fires, and resolves when it moves again",
      events = {
        run("r-1", "nightly-etl", "started", "0s"),
        step("r-1", "nightly-etl", 1, "1m"),
        step("r-1", "nightly-etl", 2, "2m"),
        step("r-1", "nightly-etl", 3, "3m"),      -- then nothing until 25m10s
        step("r-1", "nightly-etl", 4, "25m10s"),
      },
      expect = {
        { at = "17m", rule = "pipeline-run-stalled", group = r1, state = "inactive" },
        { at = "18m", rule = "pipeline-run-stalled", group = r1, state = "firing", value = 900,
          summary = "nightly-etl run r-1 silent for 900 s" },
        { at = "25m", rule = "pipeline-run-stalled", group = r1, state = "firing", value = 1320 },
        { at = "26m", rule = "pipeline-run-stalled", group = r1, state = "resolved" },
      },
      expect_transitions = {
        { at = "18m", rule = "pipeline-run-stalled", group = r1, to = "firing" },
        { at = "26m", rule = "pipeline-run-stalled", group = r1, to = "resolved" },
      },
    },
    {
      name = "finished runs and long-step pipelines under their limit never fire",
      events = {
        run("r-2", "nightly-etl", "started", "0s"),
        step("r-2", "nightly-etl", 1, "1m"),
        run("r-2", "nightly-etl", "succeeded", "5m"),
        run("r-3", "finetune-llm", "started", "0s"),
        step("r-3", "finetune-llm", 1, "10m"),     -- 2h allowed for finetune-llm
      },
      expect = {
        { at = "1h", rule = "pipeline-run-stalled",
          group = { pipeline = "nightly-etl", run_id = "r-2" }, state = "inactive" },
        { at = "1h", rule = "pipeline-run-stalled",
          group = { pipeline = "finetune-llm", run_id = "r-3" }, state = "inactive" },
        { at = "2h30m", rule = "pipeline-run-stalled",
          group = { pipeline = "finetune-llm", run_id = "r-3" }, state = "firing" },
      },
    },
  },
}
