-- recommend_dominant_steps.lua - pipeline steps that dominate run time:
-- the first place to look when a pipeline is too slow.
--
-- Over the last 7 days, per pipeline: each step's share of the summed
-- duration of all finished steps (run_step events with fields.duration_s).
-- A step taking at least half of the pipeline's time, in enough runs, is
-- reported with its average duration.
local te = require "te"

local config = {
  since = "7d",
  min_runs = 3,
  min_share = 0.5,
  warning_share = 0.75,
}

local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "pipeline-dominant-step",
  description = "pipeline steps that take most of their pipeline's run time",
  every = "1h",
  fn = function(q)
    local pipelines = {}
    for _, row in ipairs(q.query { kind = "run_step", since = config.since,
                                   where = { status = { "succeeded", "failed" } },
                                   group_by = { "pipeline", "step" },
                                   aggs = { total = "sum:duration_s", avg = "avg:duration_s",
                                            runs = "distinct:run_id" } }) do
      if row.pipeline and row.step and row.total then
        local p = pipelines[row.pipeline] or { total = 0, steps = {} }
        pipelines[row.pipeline] = p
        p.total = p.total + row.total
        p.steps[#p.steps + 1] = row
      end
    end
    local out = {}
    for name, p in pairs(pipelines) do
      if #p.steps >= 2 and p.total > 0 then
        for _, s in ipairs(p.steps) do
          local share = s.total / p.total
          if share >= config.min_share and (s.runs or 0) >= config.min_runs then
            out[#out + 1] = {
              key = name .. "/" .. s.step,
              severity = share >= config.warning_share and "warning" or "info",
              title = string.format("pipeline %s: step %s dominates run time", name, s.step),
              detail = string.format("step %s took %.0f%% of the time of %s's steps over %d "
                .. "runs in the last %s (%.1f s per run on average).", s.step, share * 100,
                name, s.runs, config.since, s.avg or 0),
              action = string.format("speed up %s first: profile it, cache its inputs, or "
                .. "split and parallelise it; other steps matter less", s.step),
              evidence = { pipeline = name, step = s.step, window = config.since,
                           runs = s.runs, share = round(share, 0.0001),
                           avg_duration_s = round(s.avg or 0, 0.01),
                           step_total_s = round(s.total, 0.01),
                           pipeline_total_s = round(p.total, 0.01) },
            }
          end
        end
      end
    end
    table.sort(out, function(a, b) return a.key < b.key end)
    return out
  end,
}
